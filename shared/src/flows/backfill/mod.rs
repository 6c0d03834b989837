//! Backfills (design §4.8): a manual window longer than 24 hours is planned as consecutive slices
//! of at most 24 hours, each an ordinary manual run under its own id, so that no invocation's
//! memory or time grows with the window. The window's own run id names a parent:
//!
//! - `runs/{parent}/backfill.json`: the plan (window, slices), written before any slice runs;
//! - `runs/{parent}/slices/{slice}.json`: one end marker per slice (completed or failed, why);
//! - `runs/{parent}/status.json`: progress, moved forward only by conditional writes, so slices
//!   ending at the same moment in different invocations never move it back;
//! - `runs/{parent}/report.json`: the slices' reports summed, written once every slice completed.
//!
//! In AWS the slices are messages on the planning queue, one invocation each; `recoveryctl plan`
//! runs them here, a bounded number at once. Either way each slice ends by [`settle_parent`]-ing the
//! parent, and whichever slice sees the last end writes the parent report: no coordinator.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

use crate::domain::report::{
    CtrCounts, Mode, ReportWindow, RunReport, RunState, RunStatus, SliceEntry, SliceProgress,
    WindowBy, new_run_id,
};
use crate::domain::time::{Window, format_ts, parse_ts};
use crate::flows::plan::{PlanError, Request};
use crate::ports::store::{RunDocuments, StateError, Version};

/// The longest window one run plans; a longer manual window is a backfill.
pub const SLICE: TimeDelta = TimeDelta::hours(24);

/// The version of [`SliceMessage`] this code writes and reads.
pub const SLICE_MESSAGE_VERSION: u32 = 1;

const PLAN: &str = "backfill.json";
const STATUS: &str = "status.json";
const ENDS: &str = "slices";

/// Whether a manual window is planned as a backfill.
pub fn is_backfill(window: &Window) -> bool {
    window.end - window.start > SLICE
}

/// Whether a run id is a backfill slice's (`{parent}-sNNNN`, as [`slices`] names them).
pub fn is_slice_run_id(run_id: &str) -> bool {
    run_id.rsplit_once("-s").is_some_and(|(parent, n)| {
        !parent.is_empty() && n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The slices of a window: `[start, start+24h)`, `[start+24h, start+48h)`, …, the last ending
/// at `end`.
pub fn slices(window: &Window) -> Vec<Window> {
    window.pieces(SLICE)
}

/// One slice as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicePlan {
    pub run_id: String,
    pub start: String,
    pub end: String,
}

/// `runs/{parent}/backfill.json`: what the backfill is to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    pub run_id: String,
    pub dry_run: bool,
    pub start: String,
    pub end: String,
    pub started_at: String,
    pub slices: Vec<SlicePlan>,
}

impl Backfill {
    /// The plan of a window: slices `[start, start+24h)`, `[start+24h, start+48h)`, …, the
    /// last ending at `end`, named `{parent}-s0001`, `{parent}-s0002`, … so they sort in order.
    pub fn new(window: Window, dry_run: bool, now: DateTime<Utc>) -> Self {
        let run_id = new_run_id(now);
        let slices = slices(&window)
            .into_iter()
            .enumerate()
            .map(|(n, w)| SlicePlan {
                run_id: format!("{run_id}-s{:04}", n + 1),
                start: format_ts(w.start),
                end: format_ts(w.end),
            })
            .collect();
        Backfill {
            run_id,
            dry_run,
            start: format_ts(window.start),
            end: format_ts(window.end),
            started_at: format_ts(now),
            slices,
        }
    }

    /// One planning-queue message per slice.
    pub fn messages(&self) -> Vec<SliceMessage> {
        self.slices
            .iter()
            .map(|s| SliceMessage {
                v: SLICE_MESSAGE_VERSION,
                parent_run_id: self.run_id.clone(),
                run_id: s.run_id.clone(),
                start: s.start.clone(),
                end: s.end.clone(),
                dry_run: self.dry_run,
            })
            .collect()
    }

    /// What starting the backfill answers: the parent, its window, and every slice queued.
    pub fn started(&self) -> Started {
        Started {
            run_id: self.run_id.clone(),
            mode: Mode::Manual,
            dry_run: self.dry_run,
            window: ReportWindow {
                start: self.start.clone(),
                end: self.end.clone(),
                by: WindowBy::Initiation,
            },
            status: RunState::Running,
            slices: slice_entries(self, &[]),
        }
    }

    /// The parent's `status.json` in `state`.
    fn status(
        &self,
        state: RunState,
        progress: SliceProgress,
        finished_at: Option<String>,
        error: Option<String>,
    ) -> RunStatus {
        RunStatus {
            run_id: self.run_id.clone(),
            mode: Mode::Manual,
            dry_run: self.dry_run,
            status: state,
            started_at: self.started_at.clone(),
            finished_at,
            error,
            slices: Some(progress),
        }
    }

    /// No slice ended yet.
    fn none_ended(&self) -> SliceProgress {
        SliceProgress {
            total: self.total(),
            ..SliceProgress::default()
        }
    }

    fn total(&self) -> u32 {
        self.slices.len() as u32
    }
}

/// The answer of a planner invocation that started a backfill: its report comes later, at
/// `runs/{run_id}/report.json`, once every slice completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub run_id: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub window: ReportWindow,
    pub status: RunState,
    pub slices: Vec<SliceEntry>,
}

/// A planning-queue message: run one slice of a backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceMessage {
    pub v: u32,
    pub parent_run_id: String,
    pub run_id: String,
    pub start: String,
    pub end: String,
    pub dry_run: bool,
}

impl SliceMessage {
    /// Reads a message body; the error names what is wrong with it.
    pub fn parse(body: &str) -> Result<Self, String> {
        let message: SliceMessage =
            serde_json::from_str(body).map_err(|e| format!("not a slice message: {e}"))?;
        if message.v != SLICE_MESSAGE_VERSION {
            return Err(format!(
                "slice message version {} (this code reads {SLICE_MESSAGE_VERSION})",
                message.v
            ));
        }
        if !message
            .run_id
            .starts_with(&format!("{}-s", message.parent_run_id))
        {
            return Err(format!(
                "slice {:?} is not a slice of {:?}",
                message.run_id, message.parent_run_id
            ));
        }
        let window = message.window()?;
        if window.start >= window.end || window.end - window.start > SLICE {
            return Err(format!(
                "slice window [{}, {}) is empty or longer than 24 hours",
                message.start, message.end
            ));
        }
        Ok(message)
    }

    pub fn window(&self) -> Result<Window, String> {
        let ts = |name: &str, v: &str| {
            parse_ts(v).ok_or_else(|| format!("{name} {v:?} is not an RFC 3339 time"))
        };
        Ok(Window {
            start: ts("start", &self.start)?,
            end: ts("end", &self.end)?,
        })
    }

    /// The slice as an ordinary manual run. A slice's window is checked when its backfill is
    /// planned, not again when it runs: retried weeks later, it must still run.
    pub fn request(&self) -> Result<Request, String> {
        Ok(Request::Manual {
            window: self.window()?,
            dry_run: self.dry_run,
        })
    }
}

/// Starts a backfill: writes its plan, then its status (queued, none of its slices ended).
pub async fn begin(store: &impl RunDocuments, backfill: &Backfill) -> Result<(), StateError> {
    store.put_run_json(&backfill.run_id, PLAN, backfill).await?;
    let status = backfill.status(RunState::Running, backfill.none_ended(), None, None);
    store.put_run_json(&backfill.run_id, STATUS, &status).await
}

/// Marks a backfill failed before its slices could all be handed out (the planning queue
/// refused them): its status names why, so it is never left running forever.
pub async fn abandon(
    store: &impl RunDocuments,
    backfill: &Backfill,
    why: &str,
) -> Result<(), StateError> {
    let status = backfill.status(
        RunState::Failed,
        backfill.none_ended(),
        Some(format_ts(Utc::now())),
        Some(why.to_owned()),
    );
    store.put_run_json(&backfill.run_id, STATUS, &status).await
}

/// Runs one slice with `run` (the planner, under the slice's run id), records how it ended
/// under the parent, and settles the parent. The slice's own result is returned, so that a
/// failed slice is retried by whoever runs it (SQS, or the operator).
pub async fn run_slice<F, Fut>(
    store: &impl RunDocuments,
    message: &SliceMessage,
    run: F,
) -> Result<RunReport, PlanError>
where
    F: FnOnce(String, Request) -> Fut,
    Fut: Future<Output = Result<RunReport, PlanError>>,
{
    let request = message.request().map_err(PlanError::Invalid)?;
    let result = run(message.run_id.clone(), request).await;
    if let Err(e @ PlanError::Unfinished { .. }) = result {
        // Not an end: the slice's next receive continues where this one stopped (design §4.7),
        // and its parent stays Running.
        return Err(e);
    }
    let end = SliceEntry {
        run_id: message.run_id.clone(),
        start: message.start.clone(),
        end: message.end.clone(),
        status: if result.is_ok() {
            RunState::Completed
        } else {
            RunState::Failed
        },
        error: result
            .as_ref()
            .err()
            .map(|e| crate::domain::error::error_chain(e)),
    };
    store
        .put_run_json(
            &message.parent_run_id,
            &format!("{ENDS}/{}.json", message.run_id),
            &end,
        )
        .await?;
    settle_parent(store, &message.parent_run_id).await?;
    result
}

/// Where a backfill stands and when it should end, for an operator (design §4.8): the slices
/// planned and the calls worked so far, each at the rate seen since the backfill started.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    pub slices_total: u64,
    pub slices_ended: u64,
    pub calls_queued: u64,
    pub calls_worked: u64,
    /// When the last slice should be planned and the last call worked, at the rates seen so
    /// far; `None` until there is a rate to go by (or when everything is done).
    pub expected_finish: Option<String>,
}

/// Estimates a backfill's finish: what is left of the slices and of the calls, each divided by
/// its own rate since `started`; the later of the two.
pub fn progress(
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    slices: (u64, u64),
    calls: (u64, u64),
) -> Progress {
    let ((slices_ended, slices_total), (calls_worked, calls_queued)) = (slices, calls);
    let elapsed = (now - started).num_milliseconds().max(1) as f64 / 1000.0;
    let left = |done: u64, total: u64| -> Option<f64> {
        if done >= total {
            return Some(0.0);
        }
        (done > 0).then(|| (total - done) as f64 / (done as f64 / elapsed))
    };
    // Calls still to be queued by the slices left: assume they find as many as the slices so far.
    let calls_expected = if slices_ended > 0 && slices_ended < slices_total {
        calls_queued * slices_total / slices_ended
    } else {
        calls_queued
    };
    let finish = match (
        left(slices_ended, slices_total),
        left(calls_worked, calls_expected),
    ) {
        (Some(a), Some(b)) if a + b > 0.0 => {
            let secs = a.max(b);
            Some(format_ts(
                now + chrono::TimeDelta::milliseconds((secs * 1000.0) as i64),
            ))
        }
        _ => None,
    };
    Progress {
        slices_total,
        slices_ended,
        calls_queued,
        calls_worked,
        expected_finish: finish,
    }
}

/// A backfill's plan and where each of its slices stands; `None` when the run is not one.
pub async fn read(
    store: &impl RunDocuments,
    parent: &str,
) -> Result<Option<(Backfill, Vec<SliceEntry>)>, StateError> {
    let Some((backfill, _)) = store.run_json::<Backfill>(parent, PLAN).await? else {
        return Ok(None);
    };
    let ends: Vec<SliceEntry> = store.run_folder(parent, ENDS).await?;
    let entries = slice_entries(&backfill, &ends);
    Ok(Some((backfill, entries)))
}

/// Where a backfill stands after [`settle_parent`].
#[derive(Debug, Clone)]
pub struct Settled {
    pub status: RunStatus,
    /// The parent report, once every slice completed (it is then stored too).
    pub report: Option<RunReport>,
}

/// Brings the parent's status (and, once every slice completed, its report) up to date with
/// the slices' end markers. Any number of slices may settle at once: the status only moves
/// forward (more slices ended, more completed), by writes conditional on its ETag.
pub async fn settle_parent(store: &impl RunDocuments, parent: &str) -> Result<Settled, PlanError> {
    let Some((backfill, _)) = store.run_json::<Backfill>(parent, PLAN).await? else {
        return Err(PlanError::Invalid(format!(
            "run {parent} is not a backfill (it has no {PLAN})"
        )));
    };
    let ends: Vec<SliceEntry> = store.run_folder(parent, ENDS).await?;
    let entries = slice_entries(&backfill, &ends);
    let progress = progress_of(&entries);
    let now = Utc::now();
    // The slices' reports are read once, by the settle that sees the last slice complete; an
    // earlier settle only counts end markers, so a backfill of N slices reads N reports, not N².
    let report = if progress.done == progress.total {
        let report = summed(store, &backfill, &entries, now).await?;
        store.put_run_json(parent, "report.json", &report).await?;
        Some(report)
    } else {
        None
    };
    let status = parent_status(&backfill, &entries, progress, now);
    for _ in 0..8 {
        let current = store.run_json::<RunStatus>(parent, STATUS).await?;
        let version = match &current {
            Some((stored, _)) if !moves_forward(stored, &status) => break,
            Some((_, version)) => version.clone(),
            None => Version::Absent,
        };
        if store
            .put_run_json_if(parent, STATUS, &status, &version)
            .await?
        {
            break;
        }
    }
    Ok(Settled { status, report })
}

/// The parent report of what has completed so far, stored or not: for an operator looking at a
/// backfill some of whose slices failed.
pub async fn report_so_far(
    store: &impl RunDocuments,
    parent: &str,
) -> Result<RunReport, PlanError> {
    let Some((backfill, entries)) = read(store, parent).await? else {
        return Err(PlanError::Invalid(format!(
            "run {parent} is not a backfill (it has no {PLAN})"
        )));
    };
    Ok(summed(store, &backfill, &entries, Utc::now()).await?)
}

/// Reads the completed slices' reports and sums them into the parent report.
async fn summed(
    store: &impl RunDocuments,
    backfill: &Backfill,
    entries: &[SliceEntry],
    now: DateTime<Utc>,
) -> Result<RunReport, StateError> {
    let reports: Vec<RunReport> = stream::iter(
        entries
            .iter()
            .filter(|e| e.status == RunState::Completed)
            .map(|e| store.report(&e.run_id)),
    )
    .buffered(16)
    .try_collect::<Vec<_>>()
    .await?
    .into_iter()
    .flatten()
    .collect();
    Ok(parent_report(backfill, entries, &reports, now))
}

/// Every slice of the plan with how it ended, or queued.
pub fn slice_entries(backfill: &Backfill, ends: &[SliceEntry]) -> Vec<SliceEntry> {
    backfill
        .slices
        .iter()
        .map(|s| {
            ends.iter()
                .find(|e| e.run_id == s.run_id)
                .cloned()
                .unwrap_or_else(|| SliceEntry {
                    run_id: s.run_id.clone(),
                    start: s.start.clone(),
                    end: s.end.clone(),
                    status: RunState::Queued,
                    error: None,
                })
        })
        .collect()
}

fn progress_of(entries: &[SliceEntry]) -> SliceProgress {
    let count = |state| entries.iter().filter(|e| e.status == state).count() as u32;
    SliceProgress {
        total: entries.len() as u32,
        done: count(RunState::Completed),
        failed: count(RunState::Failed),
    }
}

fn parent_status(
    backfill: &Backfill,
    entries: &[SliceEntry],
    progress: SliceProgress,
    now: DateTime<Utc>,
) -> RunStatus {
    let failed: Vec<String> = entries
        .iter()
        .filter(|e| e.status == RunState::Failed)
        .map(|e| {
            format!(
                "slice {} [{}, {}) failed: {}",
                e.run_id,
                e.start,
                e.end,
                e.error.as_deref().unwrap_or("no reason recorded")
            )
        })
        .collect();
    let ended = progress.done + progress.failed == progress.total;
    let state = match (ended, failed.is_empty()) {
        (true, true) => RunState::Completed,
        (true, false) => RunState::Failed,
        (false, _) => RunState::Running,
    };
    backfill.status(
        state,
        progress,
        ended.then(|| format_ts(now)),
        (!failed.is_empty()).then(|| failed.join("; ")),
    )
}

/// Whether `next` says more than `stored`: more slices ended, or more of them completed (a
/// failed slice run again). Slice ends only ever move that way, so a settle that read fewer
/// ends than another never overwrites it.
///
/// A Failed status never moves back to Running: a backfill abandoned before all its slices were
/// handed out (or one whose slices all ended, some failed) is final until an operator plans the
/// window again; a late slice settling does not revive it. It may still become Completed when a
/// failed slice is run again and completes.
fn moves_forward(stored: &RunStatus, next: &RunStatus) -> bool {
    if stored.status == RunState::Failed && next.status == RunState::Running {
        return false;
    }
    let key = |s: &RunStatus| {
        s.slices
            .map(|p| (p.done + p.failed, p.done))
            .unwrap_or_default()
    };
    let (stored_ended, stored_done) = key(stored);
    let (next_ended, next_done) = key(next);
    next_ended >= stored_ended
        && next_done >= stored_done
        && (next_ended, next_done) != (stored_ended, stored_done)
        || stored.status == RunState::Running && next.status != RunState::Running
}

/// The parent report (design §4, backfills): the report fields of the slices that completed,
/// counts summed and lists concatenated in window order, plus every slice with its state.
pub fn parent_report(
    backfill: &Backfill,
    entries: &[SliceEntry],
    reports: &[RunReport],
    now: DateTime<Utc>,
) -> RunReport {
    let mut ordered: Vec<&RunReport> = reports.iter().collect();
    ordered.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let sum = |f: fn(&RunReport) -> u64| ordered.iter().map(|r| f(r)).sum::<u64>();
    let started = parse_ts(&backfill.started_at).unwrap_or(now);
    RunReport {
        run_id: backfill.run_id.clone(),
        mode: Mode::Manual,
        dry_run: backfill.dry_run,
        window: Some(ReportWindow {
            start: backfill.start.clone(),
            end: backfill.end.clone(),
            by: WindowBy::Initiation,
        }),
        ctr: CtrCounts {
            objects: sum(|r| r.ctr.objects),
            records: sum(|r| r.ctr.records),
            malformed: sum(|r| r.ctr.malformed),
            duplicates: sum(|r| r.ctr.duplicates),
        },
        eligible: sum(|r| r.eligible),
        in_verint: sum(|r| r.in_verint),
        not_settled: sum(|r| r.not_settled),
        missing: sum(|r| r.missing),
        enqueued: sum(|r| r.enqueued),
        missing_contact_ids: ordered
            .iter()
            .flat_map(|r| r.missing_contact_ids.iter().cloned())
            .collect(),
        unrecoverable: ordered
            .iter()
            .flat_map(|r| r.unrecoverable.iter().cloned())
            .collect(),
        late_hours: Vec::new(),
        duration_ms: (now - started).num_milliseconds().max(0) as u64,
        orphans: sum(|r| r.orphans),
        orphan_lookups_failed: sum(|r| r.orphan_lookups_failed),
        already_queued: sum(|r| r.already_queued),
        complete: true,
        orphan_contact_ids: ordered
            .iter()
            .flat_map(|r| r.orphan_contact_ids.iter().cloned())
            .collect(),
        slices: Some(entries.to_vec()),
        instances: ordered.iter().fold(Default::default(), |mut all, r| {
            for (id, counts) in &r.instances {
                *all.entry(id.clone()).or_default() += *counts;
            }
            all
        }),
    }
}

#[cfg(test)]
mod tests;
