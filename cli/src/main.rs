//! `recoveryctl`: the operator's CLI (design §8). It reads the same configuration and runs the
//! same code as the functions.

mod commands;
mod exit;
mod failure;
mod feedback;
mod settings;
mod table;

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "recoveryctl",
    version,
    about = "Operate call recovery: plan runs, work the queue, inspect runs, redrive the dead-letter queue"
)]
#[command(after_help = after_help())]
pub struct Cli {
    /// Print exactly one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Read the settings of this deployed CloudFormation stack (needs
    /// cloudformation:DescribeStacks and lambda:GetFunctionConfiguration).
    #[arg(long, global = true, env = "RECOVERYCTL_STACK", value_name = "NAME")]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The log filter without `--json`: the warnings of recoveryctl and its library (retries,
/// transient failures), the errors of the rest.
const LOG_HUMAN: &str = "error,recovery=warn,recoveryctl=warn";
/// The log filter with `--json`: errors only, so that a script reads stdout and one line.
const LOG_JSON: &str = "error";

/// The top-level help's end: configuration, what goes to stderr, and the exit codes.
fn after_help() -> String {
    format!(
        "\
Configuration comes from the environment, as for the functions (CTR_BUCKET,
CONNECT_INSTANCE_ID, WORK_QUEUE_URL, ...), or with --stack NAME from the deployed stack (its
outputs and its planner function's environment; a variable set in the environment wins). Each
command needs only the variables it uses; `recoveryctl doctor` shows every setting, where it
came from, and probes each queue, bucket, the secret and Verint.

Output: a table on stdout, or exactly one JSON document with --json.
Progress (a ticking line: counts, rate, ETA) goes to stderr only when stderr is a terminal,
and never with --json. Colour only at a terminal, without --json (NO_COLOR turns it off).
Log lines go to stderr, one line each: by default the warnings of recoveryctl and its library
(a retry, a transient failure) and the errors of the rest ({LOG_HUMAN}); with --json errors
only ({LOG_JSON}). RECOVERYCTL_LOG sets another filter (e.g. info, or error for quiet).

{}

Completions and man pages: recoveryctl completions bash|zsh|fish, recoveryctl man [COMMAND].",
        exit::HELP
    )
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a recovery here and now: manual (--from/--to) or automatic (--auto).
    #[command(
        after_help = "Examples:\n  recoveryctl plan --from 2026-11-26T00:00:00Z --to 2026-11-27T00:00:00Z --dry-run\n  recoveryctl plan --from 2026-11-26 --to 2026-11-27   (the whole 26th, UTC)\n  recoveryctl plan --auto --json\n  recoveryctl plan --auto --deadline 10m\n  recoveryctl plan --from 2026-03-01T00:00:00Z --to 2026-06-01T00:00:00Z --jobs 4"
    )]
    Plan {
        /// Start of the window, by contact initiation time: an RFC 3339 time
        /// (2026-11-26T00:00:00Z) or a date (2026-11-26, midnight UTC).
        #[arg(
            long,
            value_name = "TIME",
            value_parser = commands::parse_time,
            required_unless_present = "auto",
            conflicts_with = "auto"
        )]
        from: Option<DateTime<Utc>>,
        /// End of the window, exclusive: an RFC 3339 time or a date (midnight UTC, so
        /// `--to 2026-11-27` ends as the 27th begins).
        #[arg(
            long,
            value_name = "TIME",
            value_parser = commands::parse_time,
            required_unless_present = "auto",
            conflicts_with = "auto"
        )]
        to: Option<DateTime<Utc>>,
        /// An automatic run: the settled arrival hours from the checkpoint on.
        #[arg(long)]
        auto: bool,
        /// Read and match only: queue nothing, move no checkpoint.
        #[arg(long)]
        dry_run: bool,
        /// Stop reading further arrival hours once this long has passed (e.g. 10m), then match
        /// and queue what was read and move the checkpoint past it; no deadline when absent.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        deadline: Option<std::time::Duration>,
        /// A window over 24 hours is a backfill of 24-hour slices: plan this many at once
        /// (default: the number of cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
    },
    /// Work the queue with the worker's code, as the Lambda trigger would (then the backfill queue,
    /// when the work queue is empty).
    ///
    /// Each message it holds stays invisible while it is worked (its visibility renewed every
    /// 40 s), so a Lambda worker never takes the same call at the same time.
    #[command(
        after_help = "Examples:\n  recoveryctl work --until-empty\n  recoveryctl work --until-empty --json\n  recoveryctl work --for 2h"
    )]
    Work {
        /// Stop when a receive finds no visible message.
        #[arg(long)]
        until_empty: bool,
        /// Stop taking new messages after this long (e.g. `30m`, `2h`); the messages in hand
        /// are settled before it ends.
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        for_: Option<std::time::Duration>,
    },
    /// Queue and dead-letter depths, the checkpoint, the latest runs.
    #[command(after_help = "Example:\n  recoveryctl status")]
    Status,
    /// Runs with Detected / Queued / Recovered / Already present / Failed; or one run in detail.
    #[command(
        after_help = "Examples:\n  recoveryctl runs\n  recoveryctl runs 20261127T034512Z-1a2b3c4d --json"
    )]
    Runs {
        /// One run's id.
        run_id: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Per day: every recorded call in Verint, recovered, or why not (from the runs' ledgers).
    #[command(
        after_help = "Examples:\n  recoveryctl coverage --from 2026-11-01 --to 2026-11-30\n  recoveryctl coverage --from 2026-11-30 --to 2026-11-30 --csv > 2026-11-30.csv"
    )]
    Coverage {
        /// First day (YYYY-MM-DD, UTC, by call start).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// One CSV row per contact with its final state and reason, instead of the table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Move the dead-letter queue's messages back: a backfill's to the backfill queue (when
    /// backfills have their own), live ones to the work queue.
    #[command(after_help = "Examples:\n  recoveryctl redrive --dry-run\n  recoveryctl redrive")]
    Redrive {
        /// Show what would move, by lane and reason, and move nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the dead letters (contact, run, lane, reason, age), or drop one call deliberately.
    #[command(
        after_help = "Examples:\n  recoveryctl dlq\n  recoveryctl dlq --drop 5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b --reason \"customer withdrew consent\""
    )]
    Dlq {
        /// Drop this contact's dead letters: its outcome records the drop and the reason given,
        /// then the messages are deleted.
        #[arg(long, value_name = "CONTACT_ID", requires = "reason")]
        drop: Option<String>,
        /// Why the call is dropped (recorded in its outcome; coverage shows it).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every effective setting with its source, then a probe of each queue, bucket, secret and
    /// Verint: what works and what to fix.
    #[command(
        after_help = "Examples:\n  recoveryctl doctor\n  recoveryctl --stack call-recovery-prod doctor"
    )]
    Doctor,
    /// A shell's completion script, on stdout
    /// (e.g. `recoveryctl completions bash > /etc/bash_completion.d/recoveryctl`).
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), on stdout (e.g. `recoveryctl man | man -l -`); with a command's
    /// name, that command's page (`recoveryctl-plan(1)`).
    #[command(hide = true)]
    Man {
        /// A command's name (plan, work, ...).
        command: Option<String>,
    },
    /// One call as the customer lived it: the transfer chain of a contact, each leg's class,
    /// recordings, outcome and run, and where its audio is in Verint.
    #[command(after_help = "Example:\n  recoveryctl call 5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b")]
    Call {
        /// Any leg's contact id.
        contact_id: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // The whole of clap's answer: --help and --version on stdout (exit 0); an error on
            // stderr naming the argument, with the usage (exit 2).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    log(cli.json);
    match commands::run(cli).await {
        Ok(exit) => exit.into(),
        Err(e) => {
            let failure = failure::render(&e);
            feedback::note(failure.to_string().trim_end());
            ExitCode::from(failure.code)
        }
    }
}

/// The log on stderr (`RECOVERYCTL_LOG`, else [`LOG_HUMAN`] or [`LOG_JSON`]): one compact,
/// coloured line per event above the progress for a person at a terminal; plain lines
/// otherwise.
fn log(json: bool) {
    let default = if json { LOG_JSON } else { LOG_HUMAN };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECOVERYCTL_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| feedback::Stderr)
        .with_ansi(feedback::colour(json));
    if feedback::interactive(json) {
        builder
            .compact()
            .with_target(false)
            .with_timer(Clock)
            .init();
    } else {
        builder.init();
    }
}

/// The time of a log line at a terminal: UTC, to the second, as everything else is.
#[derive(Debug, Clone, Copy)]
struct Clock;

impl tracing_subscriber::fmt::time::FormatTime for Clock {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", Utc::now().format("%H:%M:%SZ"))
    }
}
