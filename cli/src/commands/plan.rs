//! `recoveryctl plan` (design §8): a manual window, an automatic run, or a backfill of 24-hour
//! slices, with a progress line that keeps ticking through every phase; prints the report.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use recovery::flows::plan::PlanError;

use super::*;
use crate::failure::{Changed, Hint, Invalid};

/// What `--from` and `--to` take, for their help and their errors.
pub(crate) const TIME_FORMS: &str =
    "an RFC 3339 time such as 2026-11-26T00:00:00Z, or a date such as 2026-11-26 (midnight UTC)";

/// `--from`/`--to`: an RFC 3339 time, or a bare date `YYYY-MM-DD` meaning midnight UTC of that
/// day (so `--from 2026-11-26 --to 2026-11-27` is that whole day).
pub(crate) fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!("expected {TIME_FORMS}"))
}

/// A time as the manual payload takes it, to the precision it was given.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) async fn plan(
    json: bool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    auto: bool,
    dry_run: bool,
    deadline: Option<std::time::Duration>,
    jobs: Option<u16>,
) -> Result<Exit> {
    // A backfill's slices at once: the number of cores unless given.
    let jobs = jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        usize::from,
    );
    let deadlines = deadline.map(|d| Deadlines::reading_until(std::time::Instant::now() + d));
    let config = config()?;
    let request = if auto {
        Request::Automatic { dry_run }
    } else {
        manual(&config, from, to, dry_run)?
    };
    let app = PlannerApp::load(config, env).await?;
    // From here on a failure may have recorded a run and queued calls.
    let changed = || {
        Changed(if dry_run {
            "a dry run queues nothing; safe to re-run".to_owned()
        } else {
            "calls queued before the failure stay queued; safe to re-run (a call queued twice \
             is found in Verint and not sent again)"
                .to_owned()
        })
    };
    if let Request::Manual { window, dry_run } = request
        && is_backfill(&window)
    {
        return plan_backfill(json, &app, window, dry_run, jobs)
            .await
            .map(|()| Exit::Success)
            .map_err(|e| crate::failure::unless_said(e, changed));
    }
    let pb = progress(json, 0, PHASE);
    pb.set_message("listing the arrival hours to read…");
    let reading = AtomicBool::new(false);
    let report = app
        .run_until(request, deadlines, &|done, total| {
            // The library reports only the reading; once every object is read, the spinner
            // and the elapsed time go on ticking through the rest.
            let now_reading = done < total;
            if reading.swap(now_reading, Ordering::Relaxed) != now_reading {
                pb.set_style(crate::feedback::style(if now_reading {
                    READING
                } else {
                    PHASE
                }));
            }
            pb.set_length(total);
            pb.set_position(done);
            if !now_reading {
                pb.set_message(format!(
                    "read {total} CTR object(s); matching, asking Verint and queueing…"
                ));
            }
        })
        .await;
    pb.finish_and_clear();
    let report = report.map_err(|e| anyhow::Error::new(e).context(changed()))?;
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(Exit::Success)
}

/// The progress line while CTR objects are read.
const READING: &str = "{spinner} {elapsed:>4} reading CTR objects {pos}/{len} {wide_bar} {eta}";
/// The progress line of a phase the library gives no count for.
const PHASE: &str = "{spinner} {elapsed:>4} {msg}";

/// A manual request from `--from` and `--to`, checked before any work; a window that is not
/// allowed is the operator's input (exit 2), named by its flags.
fn manual(
    config: &Config,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    dry_run: bool,
) -> Result<Request> {
    // clap requires both unless --auto.
    let (Some(from), Some(to)) = (from, to) else {
        return Err(
            anyhow::anyhow!("--from and --to are both required without --auto").context(Invalid),
        );
    };
    let hint = || {
        Hint(format!(
            "--from and --to take {TIME_FORMS}; the window is [--from, --to), e.g. \
             `recoveryctl plan --from 2026-11-26 --to 2026-11-27` is the 26th"
        ))
    };
    if from >= to {
        return Err(anyhow::anyhow!(
            "--from {} must be before --to {}",
            rfc3339(from),
            rfc3339(to)
        )
        .context(hint())
        .context(Invalid));
    }
    let payload = ManualPayload {
        start: rfc3339(from),
        end: rfc3339(to),
        dry_run,
    };
    match payload.validate(config, chrono::Utc::now()) {
        Ok(request) => Ok(request),
        Err(PlanError::Invalid(why)) => Err(anyhow::anyhow!(
            "the window --from {} --to {} is not allowed: {why}",
            payload.start,
            payload.end
        )
        .context(hint())
        .context(Invalid)),
        Err(e) => Err(anyhow::Error::new(e).context(Invalid)),
    }
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
        "{spinner} {elapsed:>4} planning 24-hour slices {pos}/{len} {wide_bar} {eta}",
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

pub(super) fn print_slices(slices: &[SliceEntry]) {
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

pub(super) fn print_report(r: &RunReport) {
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
