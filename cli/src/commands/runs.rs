//! `recoveryctl runs [RUN_ID]` (design §8): the latest runs, or one run with its outcomes and,
//! for a backfill, its slices and progress.

use super::*;
use recovery::config::*;

/// One line of the runs table: Verint's recovery status model.
#[derive(Debug, Serialize)]
pub(super) struct RunRow {
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
    /// Each Connect instance's counts (design §11).
    instances: std::collections::BTreeMap<String, recovery::domain::report::InstanceCounts>,
}

pub(super) async fn run_row(
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
        instances: report
            .as_ref()
            .map(|r| r.instances.clone())
            .unwrap_or_default(),
    };
    Ok((row, report, outcomes))
}

/// One run in a few plain sentences, for an operator: what was detected, what Verint already had,
/// what was queued and what became of it, failures by reason, and the dead-letter queue's depth
/// (all runs', when it could be read).
pub(super) fn plain_words(
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
    let restoring = outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Restoring)
        .count();
    if restoring > 0 {
        lines.push(format!(
            "{restoring} call(s) wait for an archived recording to be restored from Glacier; \
             they are recovered once it is readable."
        ));
    }
    let restored = outcomes
        .iter()
        .filter(|o| o.restored_from.is_some())
        .count();
    if restored > 0 {
        lines.push(format!(
            "{restored} recovered call(s) had a recording in an archive (Glacier): it was restored \
             first, then sent."
        ));
    }
    let redacted = outcomes.iter().filter(|o| o.redacted).count();
    let variant = env("RECORDING_VARIANT").unwrap_or_else(|| "original".into());
    if redacted > 0 || variant != "original" {
        let recovered = outcomes
            .iter()
            .filter(|o| o.status == OutcomeStatus::Recovered)
            .count();
        lines.push(format!(
            "Audio sent as RECORDING_VARIANT={variant}: {redacted} call(s) as their Contact Lens \
             redacted recording, {} as their original.",
            recovered.saturating_sub(redacted)
        ));
    }
    let truncated = outcomes
        .iter()
        .filter(|o| o.integrity.as_deref() == Some("truncated"))
        .count();
    if truncated > 0 {
        lines.push(format!(
            "{truncated} recovered call(s) had a recording shorter than its contact record \
             says (truncated); it was sent as the best copy there is."
        ));
    }
    let mut unrecoverable = std::collections::BTreeMap::<&str, u64>::new();
    for u in &report.unrecoverable {
        *unrecoverable.entry(u.reason.as_str()).or_default() += 1;
    }
    for (reason, n) in unrecoverable {
        lines.push(format!("{n} missed call(s) cannot be recovered: {reason}."));
    }
    if report.instances.len() > 1 {
        for (id, c) in &report.instances {
            lines.push(format!(
                "  instance {id}: {} recorded, {} in Verint, {} missed.",
                c.eligible, c.in_verint, c.missing
            ));
        }
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

pub(super) fn runs_table(rows: &[RunRow]) -> Table {
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
        "instances (missing / eligible)",
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
            r.instances
                .iter()
                .map(|(id, c)| format!("{id}: {} / {}", c.missing, c.eligible))
                .collect::<Vec<_>>()
                .join("\n"),
        ]);
    }
    t
}

pub(super) async fn runs(json: bool, run_id: Option<String>, limit: usize) -> Result<()> {
    let (config, clients, store) = state(&[STATE_BUCKET, STATE_PREFIX]).await?;
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
pub(super) async fn backfill_progress(
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
