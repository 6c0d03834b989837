//! The commands, one file each: each builds what it needs from the configuration, does its work
//! with the shared library, and prints one JSON document or a table. `run` only dispatches.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use comfy_table::Table;
use indicatif::ProgressBar;
use recovery::Config;
use recovery::adapters::aws::Clients;
use recovery::adapters::sqs::SqsQueue;
use recovery::adapters::sqs_redrive::SqsRedrive;
use recovery::adapters::state::S3State;
use recovery::app::{PlannerApp, WorkerApp};
use recovery::domain::metrics::Metrics;
use recovery::domain::report::{OutcomeStatus, RunReport, RunState, RunStatus, SliceEntry};
use recovery::flows::backfill::is_backfill;
use recovery::flows::plan::{Deadlines, ManualPayload, Request};
use recovery::flows::redrive::Redrive;
use recovery::ports::store::RunStore;
use serde::Serialize;
use serde_json::json;

use crate::exit::Exit;
use crate::failure::{Changed, Invalid, unless_said};
use crate::settings::Settings;
use crate::table::table;
use crate::{Cli, Command};

mod call;
mod coverage;
mod dlq;
mod doctor;
mod generated;
mod plan;
mod redrive;
mod runs;
mod status;
mod work;

pub(crate) use plan::parse_time;
use plan::print_slices;
use runs::{run_row, runs_table};

/// This invocation's settings (the environment, and the stack given with `--stack`).
static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(Settings::default)
}

/// A setting, from the environment or the stack.
fn env(name: &str) -> Option<String> {
    settings().get(name)
}

/// The whole configuration (`plan` and `work` run the functions' code); a bad one is the
/// operator's input (exit 2).
fn config() -> Result<Config> {
    Config::from_lookup(env).map_err(config_error)
}

/// The configuration of a command that uses only the variables `needed`.
fn config_needing(needed: &[recovery::config::Variable]) -> Result<Config> {
    Config::from_lookup_needing(env, needed).map_err(config_error)
}

/// Each problem named, and where to get the values.
fn config_error(e: recovery::config::ConfigError) -> anyhow::Error {
    let problems: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
    anyhow::anyhow!(
        "configuration: {}; set them in the environment, or use --stack NAME to read them from the deployed stack (recoveryctl doctor shows every setting and its source)",
        problems.join("; ")
    )
    .context(Invalid)
}

/// A progress line on stderr, ticking on its own; hidden with `--json` or when stderr is not a
/// terminal (see `feedback`).
fn progress(json: bool, len: u64, template: &str) -> ProgressBar {
    crate::feedback::line(json, len, template)
}

/// Prints one JSON document. A reader that stops reading early (`| grep -m1`, `| head`) has what
/// it wanted: a broken pipe is not an error.
fn print_json<T: Serialize>(value: &T) -> Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

/// Runs the command `cli` names. A failure says what it changed: the commands that change
/// something say it themselves, the others changed nothing.
pub async fn run(cli: Cli) -> Result<Exit> {
    let loaded = Settings::load(cli.stack.as_deref()).await?;
    let _ = SETTINGS.set(loaded);
    let done = |r: Result<()>| r.map(|()| Exit::Success);
    let exit = match cli.command {
        Command::Plan {
            from,
            to,
            auto,
            dry_run,
            deadline,
            jobs,
        } => plan::plan(cli.json, from, to, auto, dry_run, deadline, jobs).await,
        Command::Work { until_empty, for_ } => work::work(cli.json, until_empty, for_).await,
        Command::Status => done(status::status(cli.json).await),
        Command::Runs { run_id, limit } => done(runs::runs(cli.json, run_id, limit).await),
        Command::Redrive { dry_run } => done(redrive::redrive(cli.json, dry_run).await),
        Command::Dlq { drop, reason } => done(dlq::dlq(cli.json, drop, reason).await),
        Command::Coverage { from, to, csv } => {
            done(coverage::coverage(cli.json, csv, &from, &to).await)
        }
        Command::Call { contact_id } => done(call::call(cli.json, &contact_id).await),
        Command::Doctor => done(doctor::doctor(cli.json).await),
        Command::Completions { shell } => done(generated::completions(shell)),
        Command::Man { command } => done(generated::man(command.as_deref())),
    };
    exit.map_err(|e| unless_said(e, Changed::nothing))
}

async fn state(needed: &[recovery::config::Variable]) -> Result<(Config, Clients, S3State)> {
    let config = config_needing(needed)?;
    let clients = Clients::load(env).await;
    let store = S3State::new(
        clients.s3.clone(),
        &config.state_bucket,
        &config.state_prefix,
    );
    Ok((config, clients, store))
}
