//! The commands, one file each: each builds what it needs from the configuration, does its work
//! with the shared library, and prints one JSON document or a table. `run` only dispatches.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
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

use crate::settings::Settings;
use crate::table::table;
use crate::{Cli, Command};

mod call;
mod coverage;
mod dlq;
mod doctor;
mod plan;
mod redrive;
mod runs;
mod status;
mod work;

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

/// The whole configuration (`plan` and `work` run the functions' code).
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
}

fn progress(json: bool, len: u64, template: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
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

pub async fn run(cli: Cli) -> Result<()> {
    let loaded = Settings::load(cli.stack.as_deref()).await?;
    let _ = SETTINGS.set(loaded);
    match cli.command {
        Command::Plan {
            from,
            to,
            auto,
            dry_run,
            deadline,
            jobs,
        } => plan::plan(cli.json, from, to, auto, dry_run, deadline, jobs).await,
        Command::Work { until_empty, for_ } => work::work(cli.json, until_empty, for_).await,
        Command::Status => status::status(cli.json).await,
        Command::Runs { run_id, limit } => runs::runs(cli.json, run_id, limit).await,
        Command::Redrive { dry_run } => redrive::redrive(cli.json, dry_run).await,
        Command::Dlq { drop, reason } => dlq::dlq(cli.json, drop, reason).await,
        Command::Coverage { from, to, csv } => coverage::coverage(cli.json, csv, &from, &to).await,
        Command::Call { contact_id } => call::call(cli.json, &contact_id).await,
        Command::Doctor => doctor::doctor(cli.json).await,
    }
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
