//! The commands: each builds what it needs from the configuration, does its work with the shared
//! library, and prints one JSON document or a table.

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
use recovery::flows::redrive::{self, Redrive};
use recovery::flows::work::Disposition;
use recovery::ports::store::RunStore;
use serde::Serialize;
use serde_json::json;

use crate::table::table;
use crate::{Cli, Command};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn config() -> Result<Config> {
    Config::from_env().context("configuration")
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

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Plan {
            from,
            to,
            auto,
            dry_run,
            deadline,
            jobs,
        } => {
            let jobs = jobs.map_or_else(
                || std::thread::available_parallelism().map_or(2, |n| n.get()),
                usize::from,
            );
            plan(cli.json, from, to, auto, dry_run, deadline, jobs).await
        }
        Command::Work { until_empty, for_ } => work(cli.json, until_empty, for_).await,
        Command::Status => status(cli.json).await,
        Command::Runs { run_id, limit } => runs(cli.json, run_id, limit).await,
        Command::Redrive => redrive(cli.json).await,
        Command::Coverage { from, to, csv } => {
            let (_, _, store) = state().await?;
            let format = match (cli.json, csv) {
                (true, _) => crate::coverage::Format::Json,
                (false, true) => crate::coverage::Format::Csv,
                (false, false) => crate::coverage::Format::Table,
            };
            crate::coverage::coverage(&store, &from, &to, format).await
        }
    }
}

async fn plan(
    json: bool,
    from: Option<String>,
    to: Option<String>,
    auto: bool,
    dry_run: bool,
    deadline: Option<std::time::Duration>,
    jobs: usize,
) -> Result<()> {
    let deadlines = deadline.map(|d| Deadlines::reading_until(std::time::Instant::now() + d));
    let config = config()?;
    let request = if auto {
        Request::Automatic { dry_run }
    } else {
        let payload = ManualPayload {
            start: from.unwrap_or_default(),
            end: to.unwrap_or_default(),
            dry_run,
        };
        payload.validate(&config, chrono::Utc::now())?
    };
    let app = PlannerApp::load(config, env).await?;
    if let Request::Manual { window, dry_run } = request
        && is_backfill(&window)
    {
        return plan_backfill(json, &app, window, dry_run, jobs).await;
    }
    let pb = progress(
        json,
        0,
        "{spinner} reading CTR objects {pos}/{len} {wide_bar} {eta}",
    );
    let report = app
        .run_until(request, deadlines, &|done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .await;
    pb.finish_and_clear();
    let report = report?;
    if json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

/// A backfill here (design §4.8): its 24-hour slices, `jobs` at a time, one progress bar for the
/// slices; prints the parent report, and fails naming each slice that failed.
async fn plan_backfill(
    json: bool,
    app: &PlannerApp,
    window: recovery::domain::time::Window,
    dry_run: bool,
    jobs: usize,
) -> Result<()> {
    let slices = recovery::flows::backfill::slices(&window).len() as u64;
    let pb = progress(
        json,
        slices,
        "{spinner} planning 24-hour slices {pos}/{len} {wide_bar} {eta}",
    );
    let settled = app
        .backfill_here(window, dry_run, jobs, &|message, result| {
            if let Err(e) = result {
                pb.println(format!(
                    "slice {} [{}, {}) failed: {}",
                    message.run_id,
                    message.start,
                    message.end,
                    recovery::domain::error::error_chain(e)
                ));
            }
            pb.inc(1);
        })
        .await;
    pb.finish_and_clear();
    let (status, report) = settled?;
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
        print_slices(report.slices.as_deref().unwrap_or_default());
    }
    if status.status != RunState::Completed {
        bail!(
            "backfill {} is incomplete: {}. Run a failed slice again with `recoveryctl plan --from START --to END`",
            status.run_id,
            status
                .error
                .as_deref()
                .unwrap_or("not every slice completed")
        );
    }
    Ok(())
}

fn print_slices(slices: &[SliceEntry]) {
    let mut t = table(&["slice", "window", "status", "error"]);
    for s in slices {
        t.add_row(vec![
            s.run_id.clone(),
            format!("{} .. {}", s.start, s.end),
            format!("{:?}", s.status).to_lowercase(),
            s.error.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

fn print_report(r: &RunReport) {
    let window = r
        .window
        .as_ref()
        .map_or("none (no settled hour to read)".to_owned(), |w| {
            let by = match w.by {
                recovery::domain::report::WindowBy::Initiation => "initiation",
                recovery::domain::report::WindowBy::Arrival => "arrival",
            };
            format!("[{}, {}) by {by}", w.start, w.end)
        });
    let mode = match r.mode {
        recovery::domain::report::Mode::Manual => "manual",
        recovery::domain::report::Mode::Automatic => "automatic",
    };
    let dry = if r.dry_run { ", dry run" } else { "" };
    println!("run {}  ({mode}{dry})  window {window}", r.run_id);
    let mut t = table(&[
        "CTR objects",
        "records",
        "malformed",
        "duplicates",
        "eligible",
        "in Verint",
        "unrecoverable",
        "not settled",
        "missing",
        "queued",
        "ms",
    ]);
    t.add_row(vec![
        r.ctr.objects.to_string(),
        r.ctr.records.to_string(),
        r.ctr.malformed.to_string(),
        r.ctr.duplicates.to_string(),
        r.eligible.to_string(),
        r.in_verint.to_string(),
        r.unrecoverable.len().to_string(),
        r.not_settled.to_string(),
        r.missing.to_string(),
        r.enqueued.to_string(),
        r.duration_ms.to_string(),
    ]);
    println!("{t}");
    if !r.late_hours.is_empty() {
        println!(
            "late objects: read again the arrival hours {}",
            r.late_hours.join(", ")
        );
    }
    for u in &r.unrecoverable {
        println!("unrecoverable {}: {}", u.contact_id, u.reason);
    }
    if r.dry_run && !r.missing_contact_ids.is_empty() {
        println!(
            "missing (not queued, dry run): {}",
            r.missing_contact_ids.join(", ")
        );
    }
}

#[derive(Debug, Default, Serialize)]
struct WorkSummary {
    received: u64,
    recovered: u64,
    already_present: u64,
    retry_later: u64,
    dead_lettered: u64,
}

/// How long `recoveryctl work` keeps a message invisible at a time while it works on it.
const HOLD: Duration = Duration::from_secs(120);
/// `recoveryctl work --for`: no new message is taken with less than this left, so that the
/// messages in hand can be settled.
const LAST_TAKE: Duration = Duration::from_secs(60);

async fn work(json: bool, until_empty: bool, for_: Option<Duration>) -> Result<()> {
    let config = config()?;
    let app = WorkerApp::load(config, env).await?;
    let deadline = for_.map(|d| tokio::time::Instant::now() + d);
    let mut worker = app.worker();
    worker.settings.hold = Some(HOLD);
    let backfill = app.backfill_worker().map(|(queue, mut w)| {
        w.settings.hold = Some(HOLD);
        (queue, w)
    });
    let mut summary = WorkSummary::default();
    let pb = progress(json, 0, "{spinner} {msg}");
    pb.enable_steady_tick(Duration::from_millis(200));
    let mut metrics = Metrics::new("recoveryctl");
    loop {
        if deadline
            .is_some_and(|d| d.saturating_duration_since(tokio::time::Instant::now()) < LAST_TAKE)
        {
            break;
        }
        let wait = if until_empty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(20)
        };
        // Live recovery first: the backfill queue is worked only when the work queue is empty.
        let received = match &backfill {
            None => app.work_queue.receive(10, wait, Some(HOLD)).await?,
            Some(_) => {
                app.work_queue
                    .receive(10, Duration::from_secs(1), Some(HOLD))
                    .await?
            }
        };
        let (received, worker) = match &backfill {
            Some((queue, backfill_worker)) if received.is_empty() => {
                (queue.receive(10, wait, Some(HOLD)).await?, backfill_worker)
            }
            _ => (received, &worker),
        };
        if received.is_empty() {
            if until_empty {
                break;
            }
            continue;
        }
        let dispositions = worker
            .work_received_by(&received, deadline, &mut metrics)
            .await?;
        for d in &dispositions {
            summary.received += 1;
            match d {
                Disposition::Done(status) => {
                    if *status == OutcomeStatus::Recovered {
                        summary.recovered += 1;
                    } else {
                        summary.already_present += 1;
                    }
                }
                Disposition::Retry(_) => summary.retry_later += 1,
                Disposition::DeadLettered(_) => summary.dead_lettered += 1,
            }
        }
        pb.set_message(format!(
            "{} received: {} recovered, {} already present, {} left for retry, {} dead-lettered",
            summary.received,
            summary.recovered,
            summary.already_present,
            summary.retry_later,
            summary.dead_lettered
        ));
    }
    pb.finish_and_clear();
    if json {
        return print_json(&summary);
    }
    println!(
        "worked {} message(s): {} recovered, {} already in Verint, {} left for SQS to retry, {} sent to the dead-letter queue",
        summary.received,
        summary.recovered,
        summary.already_present,
        summary.retry_later,
        summary.dead_lettered
    );
    Ok(())
}

/// One line of the runs table: Verint's recovery status model.
#[derive(Debug, Serialize)]
struct RunRow {
    run_id: String,
    mode: Option<String>,
    status: Option<String>,
    dry_run: Option<bool>,
    window: Option<String>,
    detected: u64,
    queued: u64,
    recovered: u64,
    already_present: u64,
    failed: u64,
    duration_ms: Option<u64>,
    started_at: Option<String>,
    error: Option<String>,
}

async fn run_row(
    store: &S3State,
    run_id: &str,
    with_outcomes: bool,
) -> Result<(
    RunRow,
    Option<RunReport>,
    Vec<recovery::domain::report::Outcome>,
)> {
    let status: Option<RunStatus> = store.status(run_id).await?;
    let report = store.report(run_id).await?;
    let outcomes = if with_outcomes {
        store.outcomes(run_id).await?
    } else {
        Vec::new()
    };
    let count = |s: OutcomeStatus| outcomes.iter().filter(|o| o.status == s).count() as u64;
    let row = RunRow {
        run_id: run_id.to_owned(),
        mode: status
            .as_ref()
            .map(|s| format!("{:?}", s.mode).to_lowercase())
            .or_else(|| {
                report
                    .as_ref()
                    .map(|r| format!("{:?}", r.mode).to_lowercase())
            }),
        status: status
            .as_ref()
            .map(|s| format!("{:?}", s.status).to_lowercase())
            .or_else(|| report.as_ref().map(|_| "completed".into())),
        dry_run: status
            .as_ref()
            .map(|s| s.dry_run)
            .or(report.as_ref().map(|r| r.dry_run)),
        window: report
            .as_ref()
            .and_then(|r| r.window.as_ref())
            .map(|w| format!("{} .. {}", w.start, w.end)),
        detected: report.as_ref().map_or(0, |r| r.missing),
        queued: report.as_ref().map_or(0, |r| r.enqueued),
        recovered: count(OutcomeStatus::Recovered),
        already_present: count(OutcomeStatus::AlreadyPresent),
        failed: count(OutcomeStatus::Failed),
        duration_ms: report.as_ref().map(|r| r.duration_ms),
        started_at: status.as_ref().map(|s| s.started_at.clone()),
        error: status.and_then(|s| s.error),
    };
    Ok((row, report, outcomes))
}

/// One run in a few plain sentences, for an operator: what was detected, what Verint already had,
/// what was queued and what became of it, failures by reason, and the dead-letter queue's depth
/// (all runs', when it could be read).
fn plain_words(
    report: &RunReport,
    row: &RunRow,
    outcomes: &[recovery::domain::report::Outcome],
    dead_letters: Option<u64>,
) -> String {
    let mut lines = vec![format!(
        "In plain words: of the {} recorded calls of the window, Verint already held {}. \
         It had missed {}; {} were queued for recovery.",
        report.eligible, report.in_verint, report.missing, report.enqueued
    )];
    if report.orphans > 0 {
        lines.push(format!(
            "{} recording(s) had no CTR (orphans); {} of them were queued.",
            report.orphans,
            report.orphan_contact_ids.len()
        ));
    }
    lines.push(format!(
        "Recovered into Verint: {}; found there already: {}; failed: {}.",
        row.recovered, row.already_present, row.failed
    ));
    let mut reasons = std::collections::BTreeMap::<&str, u64>::new();
    for o in outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Failed)
    {
        *reasons
            .entry(o.reason.as_deref().unwrap_or("no reason given"))
            .or_default() += 1;
    }
    for (reason, n) in reasons {
        lines.push(format!("  failed ({n}): {reason}"));
    }
    if !report.unrecoverable.is_empty() {
        lines.push(format!(
            "{} missed call(s) cannot be recovered: every recording was deleted in S3.",
            report.unrecoverable.len()
        ));
    }
    if report.not_settled > 0 {
        lines.push(format!(
            "{} call(s) ended less than SETTLE_DELAY ago and are left for a later run.",
            report.not_settled
        ));
    }
    if let Some(n) = dead_letters {
        lines.push(format!(
            "The dead-letter queue holds {n} message(s) (of every run); `recoveryctl redrive` \
             moves them back to the work queue."
        ));
    }
    lines.join("\n")
}

fn runs_table(rows: &[RunRow]) -> Table {
    let mut t = table(&[
        "run",
        "mode",
        "status",
        "window",
        "Detected",
        "Queued",
        "Recovered",
        "Already present",
        "Failed",
        "time",
    ]);
    for r in rows {
        t.add_row(vec![
            r.run_id.clone(),
            format!(
                "{}{}",
                r.mode.clone().unwrap_or_default(),
                if r.dry_run == Some(true) {
                    " (dry)"
                } else {
                    ""
                }
            ),
            r.status.clone().unwrap_or_else(|| "unknown".into()),
            r.window.clone().unwrap_or_else(|| "-".into()),
            r.detected.to_string(),
            r.queued.to_string(),
            r.recovered.to_string(),
            r.already_present.to_string(),
            r.failed.to_string(),
            r.duration_ms
                .map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
        ]);
    }
    t
}

async fn state() -> Result<(Config, Clients, S3State)> {
    let config = config()?;
    let clients = Clients::load(env).await;
    let store = S3State::new(
        clients.s3.clone(),
        &config.state_bucket,
        &config.state_prefix,
    );
    Ok((config, clients, store))
}

async fn runs(json: bool, run_id: Option<String>, limit: usize) -> Result<()> {
    let (config, clients, store) = state().await?;
    if let Some(id) = run_id {
        let (mut row, report, mut outcomes) = run_row(&store, &id, true).await?;
        if row.status.is_none() && report.is_none() {
            bail!("no run {id} in the state bucket");
        }
        let backfill = recovery::flows::backfill::read(&store, &id).await?;
        let slices = backfill.as_ref().map(|(_, entries)| entries.clone());
        if let Some(entries) = &slices {
            // A backfill's calls were queued by its slices, and their outcomes are theirs.
            for e in entries {
                outcomes.extend(store.outcomes(&e.run_id).await?);
            }
            let count = |s| outcomes.iter().filter(|o| o.status == s).count() as u64;
            row.recovered = count(OutcomeStatus::Recovered);
            row.already_present = count(OutcomeStatus::AlreadyPresent);
            row.failed = count(OutcomeStatus::Failed);
        }
        let progress = match &backfill {
            Some((plan, entries)) => {
                Some(backfill_progress(&store, plan, entries, outcomes.len()).await?)
            }
            None => None,
        };
        if json {
            return print_json(&json!({
                "run": row, "report": report, "outcomes": outcomes, "slices": slices,
                "progress": progress,
            }));
        }
        println!("{}", runs_table(std::slice::from_ref(&row)));
        if let Some((plan, entries)) = &backfill {
            let ended = |state| entries.iter().filter(|e| e.status == state).count();
            println!(
                "backfill of [{}, {}): {} of {} slices completed, {} failed",
                plan.start,
                plan.end,
                ended(RunState::Completed),
                entries.len(),
                ended(RunState::Failed)
            );
            print_slices(entries);
            if let Some(p) = &progress {
                println!(
                    "{} calls queued by the slices so far, {} worked; expected to finish: {}",
                    p.calls_queued,
                    p.calls_worked,
                    p.expected_finish
                        .as_deref()
                        .unwrap_or("not yet known (no rate yet) or done")
                );
            }
        }
        if let Some(e) = &row.error {
            println!("error: {e}");
        }
        let failed: Vec<_> = outcomes
            .iter()
            .filter(|o| o.status == OutcomeStatus::Failed)
            .collect();
        if !failed.is_empty() {
            let mut t = table(&["failed contact", "attempt", "reason", "at"]);
            for o in failed {
                t.add_row(vec![
                    o.contact_id.clone(),
                    o.attempt.to_string(),
                    o.reason.clone().unwrap_or_default(),
                    o.at.clone(),
                ]);
            }
            println!("{t}");
        }
        if let Some(report) = &report {
            let dead_letters = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_queue_url)
                .depth()
                .await
                .ok()
                .map(|d| d.visible + d.in_flight);
            println!("\n{}", plain_words(report, &row, &outcomes, dead_letters));
        }
        return Ok(());
    }
    let ids = store.run_ids().await?;
    let mut rows = Vec::new();
    for id in ids.iter().take(limit) {
        rows.push(run_row(&store, id, true).await?.0);
    }
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("no runs yet");
    } else {
        println!("{}", runs_table(&rows));
    }
    Ok(())
}

/// A backfill's progress (design §4.8): slices ended, calls its slices queued and calls worked,
/// and when it should finish at the rates seen since it started.
async fn backfill_progress(
    store: &S3State,
    plan: &recovery::flows::backfill::Backfill,
    entries: &[SliceEntry],
    worked: usize,
) -> Result<recovery::flows::backfill::Progress> {
    let mut queued = 0;
    let mut ended = 0;
    for e in entries {
        if e.status != RunState::Queued {
            ended += 1;
        }
        if e.status == RunState::Completed
            && let Some(report) = store.report(&e.run_id).await?
        {
            queued += report.enqueued;
        }
    }
    let started =
        recovery::domain::time::parse_ts(&plan.started_at).unwrap_or_else(chrono::Utc::now);
    Ok(recovery::flows::backfill::progress(
        started,
        chrono::Utc::now(),
        (ended, entries.len() as u64),
        (worked as u64, queued),
    ))
}

async fn status(json: bool) -> Result<()> {
    let (config, clients, store) = state().await?;
    let work = SqsQueue::new(clients.sqs.clone(), &config.work_queue_url)
        .depth()
        .await
        .context("work queue")?;
    let dlq = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_queue_url)
        .depth()
        .await
        .context("dead-letter queue")?;
    let backfill = match &config.backfill_queue_url {
        Some(url) => Some(
            SqsQueue::new(clients.sqs.clone(), url)
                .depth()
                .await
                .context("backfill queue")?,
        ),
        None => None,
    };
    let (checkpoint, _) = store.checkpoint().await?;
    let mut rows = Vec::new();
    for id in store.run_ids().await?.iter().take(5) {
        rows.push(run_row(&store, id, true).await?.0);
    }
    if json {
        return print_json(&json!({
            "work_queue": work, "dead_letter_queue": dlq, "backfill_queue": backfill,
            "checkpoint": checkpoint, "latest_runs": rows,
        }));
    }
    let mut t = table(&["queue", "visible", "in flight"]);
    t.add_row(vec![
        "work".to_owned(),
        work.visible.to_string(),
        work.in_flight.to_string(),
    ]);
    if let Some(b) = backfill {
        t.add_row(vec![
            "backfill".to_owned(),
            b.visible.to_string(),
            b.in_flight.to_string(),
        ]);
    }
    t.add_row(vec![
        "dead-letter".to_owned(),
        dlq.visible.to_string(),
        dlq.in_flight.to_string(),
    ]);
    println!("{t}");
    match checkpoint {
        Some(c) => println!(
            "checkpoint: next arrival hour {} (moved by run {} at {})",
            c.next_hour, c.run_id, c.updated_at
        ),
        None => {
            println!("checkpoint: none yet (the first automatic run starts INITIAL_LOOKBACK ago)")
        }
    }
    if rows.is_empty() {
        println!("no runs yet");
    } else {
        println!("latest runs:\n{}", runs_table(&rows));
    }
    if dlq.visible > 0 {
        println!(
            "{} message(s) in the dead-letter queue: see `recoveryctl runs RUN_ID` for reasons, then `recoveryctl redrive`",
            dlq.visible
        );
    }
    Ok(())
}

async fn redrive(json: bool) -> Result<()> {
    let (config, clients, _) = state().await?;
    let queues = SqsRedrive::new(
        clients.sqs.clone(),
        &config.dead_letter_queue_url,
        &config.work_queue_url,
    )
    .await
    .context("reading the queues' ARNs")?;
    let pb = progress(json, 0, "{spinner} moved {pos} message(s)");
    let outcome = redrive::redrive(&queues, &|moved| pb.set_position(moved)).await;
    pb.finish_and_clear();
    let outcome = outcome?;
    if json {
        return print_json(&outcome);
    }
    match &outcome {
        Redrive::AlreadyRunning { task } => println!(
            "a move task is already {} for the dead-letter queue ({} moved{}); nothing was done: run `recoveryctl redrive` again once it has finished",
            task.status.to_lowercase(),
            task.moved,
            task.to_move.map_or(String::new(), |n| format!(" of {n}")),
        ),
        Redrive::StartMessageMoveTask { depth_at_start, .. } => println!(
            "started an SQS move task for {depth_at_start} message(s) from the dead-letter queue to the work queue"
        ),
        Redrive::ReceiveSendDelete {
            moved,
            skipped,
            depth_at_start,
            stopped,
            because,
        } => {
            let why = match stopped {
                redrive::Stop::Empty => "the dead-letter queue is empty".to_owned(),
                redrive::Stop::DepthReached => format!(
                    "that is the {depth_at_start} it held at the start; messages dead-lettered since are left for the next redrive"
                ),
                redrive::Stop::SeenBefore => {
                    "a message moved by this redrive came back: the worker is still failing it"
                        .to_owned()
                }
            };
            println!(
                "moved {moved} message(s) from the dead-letter queue to the work queue one by one ({because}); stopped: {why}"
            );
            if *skipped > 0 {
                println!(
                    "left {skipped} message(s) in the dead-letter queue: the worker dead-lettered them again during this redrive"
                );
            }
        }
    }
    Ok(())
}
