//! One recovery run (design §4): pick the arrival hours, read the CTRs, ask DAS, classify, queue
//! one message per missing contact, move the checkpoint, write the report. Shared by the planner
//! Lambda and `recoveryctl plan`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::domain::checkpoint::{Checkpoint, HourDigest};
use crate::domain::contacts::CONNECT_RETENTION;
use crate::domain::contacts::{ContactKey, ContactSet};
use crate::domain::error::error_chain;
use crate::domain::ledger::{LedgerClass, LedgerError, LedgerRow};
use crate::domain::matching::{self, Rules};
use crate::domain::message::{MESSAGE_VERSION, WorkMessage};
use crate::domain::orphans::Orphan;
use crate::domain::report::{
    CtrCounts, Mode, ReportWindow, RunReport, RunState, RunStatus, UnrecoverableEntry, WindowBy,
    new_run_id,
};
use crate::domain::time::{HOUR, Window, delta, floor_hour, format_ts};
use crate::flows::scan::Scanner;
use crate::ports::ctr_source::{CtrObject, CtrSource, SourceError};
use crate::ports::orphans::{CallTimes, OrphanError, OrphanLookup};
use crate::ports::queue::{QueueError, WorkQueue};
use crate::ports::store::LedgerSink;
use crate::ports::store::{RunStore, StateError, Version};
use crate::ports::verint::VerintError;
use crate::ports::verint::VerintHoldings;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Manual { window: Window, dry_run: bool },
    Automatic { dry_run: bool },
}

impl Request {
    pub fn dry_run(&self) -> bool {
        match self {
            Request::Manual { dry_run, .. } | Request::Automatic { dry_run } => *dry_run,
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Request::Manual { .. } => Mode::Manual,
            Request::Automatic { .. } => Mode::Automatic,
        }
    }
}

/// The manual payload (contract): `{"start": RFC 3339, "end": RFC 3339, "dry_run": false}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualPayload {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the CTR bucket could not be read")]
    Source(#[from] SourceError),
    #[error("Verint DAS could not be asked which contacts it holds")]
    Verint(#[from] VerintError),
    #[error("missing calls could not be queued")]
    Queue(#[from] QueueError),
    #[error("the run state could not be written")]
    State(#[from] StateError),
    #[error("the run's ledger could not be written")]
    Ledger(#[from] LedgerError),
    #[error("orphan recordings could not be looked for")]
    Orphans(#[from] OrphanError),
    /// The deadline stopped the run before it queued every missing call; what it queued is
    /// recorded, and the next attempt of the same plan continues from there.
    #[error(
        "the deadline stopped the run after {queued} of {missing} missing calls were queued; the next attempt continues"
    )]
    Unfinished {
        queued: u64,
        missing: u64,
        /// CTR records an automatic run read (its report holds the rest): the no-CTR alarm
        /// must still hear that records arrive while a backlog takes several attempts.
        automatic_ctr_records: Option<u64>,
    },
}

impl ManualPayload {
    /// Checks the payload against the rules of design §4, before any work.
    pub fn validate(&self, config: &Config, now: DateTime<Utc>) -> Result<Request, PlanError> {
        let parse = |name: &str, value: &str| {
            DateTime::parse_from_rfc3339(value.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    PlanError::Invalid(format!("{name} {value:?} is not an RFC 3339 time ({e})"))
                })
        };
        let start = parse("start", &self.start)?;
        let end = parse("end", &self.end)?;
        if start >= end {
            return Err(PlanError::Invalid(format!(
                "start {} must be before end {}",
                format_ts(start),
                format_ts(end)
            )));
        }
        if end > now {
            return Err(PlanError::Invalid(format!(
                "end {} is in the future (now is {})",
                format_ts(end),
                format_ts(now)
            )));
        }
        let max = delta(config.max_manual_span);
        if end - start > max {
            return Err(PlanError::Invalid(format!(
                "the window spans {}, more than MAX_MANUAL_SPAN ({})",
                humantime::format_duration((end - start).to_std().unwrap_or_default()),
                humantime::format_duration(config.max_manual_span)
            )));
        }
        if start < now - CONNECT_RETENTION {
            return Err(PlanError::Invalid(format!(
                "start {} is older than 730 days: Amazon Connect keeps contacts for 24 months",
                format_ts(start)
            )));
        }
        Ok(Request::Manual {
            window: Window { start, end },
            dry_run: self.dry_run,
        })
    }
}

/// Reads a planner invocation: an EventBridge scheduled event is an automatic run, a
/// `{start, end}` payload a manual one; anything else is rejected with the reason.
pub fn parse_event(
    event: &serde_json::Value,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Request, PlanError> {
    let Some(object) = event.as_object() else {
        return Err(PlanError::Invalid(format!(
            "expected a JSON object (a scheduled event or {{\"start\",\"end\",\"dry_run\"}}), got {}",
            json_kind(event)
        )));
    };
    if let Some(detail_type) = object.get("detail-type") {
        return match detail_type.as_str() {
            Some("Scheduled Event") => Ok(Request::Automatic { dry_run: false }),
            other => Err(PlanError::Invalid(format!(
                "an EventBridge event of detail-type {:?} is not a schedule; expected \"Scheduled Event\"",
                other.unwrap_or("")
            ))),
        };
    }
    if object.contains_key("start") || object.contains_key("end") {
        let payload: ManualPayload = serde_json::from_value(event.clone())
            .map_err(|e| PlanError::Invalid(format!("manual payload: {e}")))?;
        return payload.validate(config, now);
    }
    Err(PlanError::Invalid(
        "the event is neither an EventBridge scheduled event nor a manual payload {\"start\",\"end\",\"dry_run\"}".into(),
    ))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The arrival hours a manual run reads: `floor_hour(start) ≤ H < end + ARRIVAL_SLACK`, and none
/// after the current hour.
pub(crate) fn manual_hours(
    window: Window,
    slack: TimeDelta,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut hours = Vec::new();
    let mut h = floor_hour(window.start);
    while h < window.end + slack && h <= now {
        hours.push(h);
        h += HOUR;
    }
    hours
}

/// The settled arrival hours an automatic run reads from `next`: `now ≥ H + 1h + SETTLE_DELAY`,
/// at most `max` of them.
pub(crate) fn automatic_hours(
    next: DateTime<Utc>,
    settle: TimeDelta,
    max: u32,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut hours = Vec::new();
    let mut h = next;
    while hours.len() < max as usize && now >= h + HOUR + settle {
        hours.push(h);
        h += HOUR;
    }
    hours
}

/// Orphans looked up at once (Connect's rate limit paces them anyway).
const ORPHAN_CONCURRENCY: usize = 8;

/// What reading a run's hours gave: the rules of its kind, the window its report names, the
/// hours read again for late objects, and (automatic runs) the checkpoint to write with the
/// version it was read at.
#[derive(Debug)]
struct Read {
    rules: Rules,
    window: Option<ReportWindow>,
    late_hours: Vec<DateTime<Utc>>,
    moved: Option<(Version, Checkpoint)>,
    /// An automatic run's first checkpoint, pinned at its first hour, written when there was none
    /// and the run could not finish: the next attempt then reads the same hours under the same
    /// plan key, instead of starting later (`now − INITIAL_LOOKBACK` moves with the clock).
    pin: Option<(Version, Checkpoint)>,
    /// What names this plan across attempts, for the queued log (design §4.7): a manual run's
    /// window, or an automatic run's first hour (its checkpoint, which stays put until the
    /// plan finished).
    plan_key: String,
}

/// A timestamp as a key part: `20261127T030000Z`.
fn key_ts(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Messages sent between two looks at the clock: three rounds of `SEND_CONCURRENCY` batches.
const QUEUE_CHUNK: usize = 480;

/// What an invocation keeps, after the run stops reading hours, to ask DAS, look up orphans,
/// queue, write the ledger, move the checkpoint and write the report (design §4.7).
pub const READING_MARGIN: Duration = Duration::from_secs(120);

/// What an invocation keeps, after the run's look-ups and queueing stop, for the queued record,
/// the ledger, the checkpoint and the report (design §4.7).
pub const FINISH_MARGIN: Duration = Duration::from_secs(20);

/// The two instants a run keeps to (design §4.7): it reads no further hour after `reading`, and
/// starts no look-up or queueing chunk after `finish_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub reading: Instant,
    pub finish_by: Instant,
}

impl Deadlines {
    /// Of an invocation that ends at `end`: reading stops [`READING_MARGIN`] before it, look-ups
    /// and queueing [`FINISH_MARGIN`] before it. An invocation shorter than a margin has no time
    /// for that step: its instant has passed when the run starts.
    pub fn of_invocation(end: Instant) -> Self {
        let before = |margin: Duration| end.checked_sub(margin).unwrap_or(end);
        Deadlines {
            reading: before(READING_MARGIN),
            finish_by: before(FINISH_MARGIN),
        }
    }

    /// Set by hand (`recoveryctl plan --deadline`): reading stops at `reading`, and look-ups and
    /// queueing may go on as long after it as an invocation leaves them.
    pub fn reading_until(reading: Instant) -> Self {
        Deadlines {
            reading,
            finish_by: reading + (READING_MARGIN - FINISH_MARGIN),
        }
    }
}

/// What queueing a plan's messages did.
#[derive(Debug, Default)]
struct Queued {
    /// Accepted by SQS in this run, plus those an earlier attempt queued.
    enqueued: u64,
    /// Queued by an earlier attempt of the same plan, not sent again.
    already: u64,
    /// Contacts whose message SQS rejected as the sender's fault, with the reason.
    rejected: HashMap<String, String>,
    /// False when the deadline stopped the queueing.
    complete: bool,
}

/// An orphan the run found, and what became of it.
#[derive(Debug)]
struct FoundOrphan {
    orphan: Orphan,
    times: Option<CallTimes>,
    in_verint: bool,
}

impl FoundOrphan {
    /// Asks Verint whether it holds the orphan's contact and, when it does not, Connect for the
    /// call's times; an orphan Connect cannot time is not queued.
    async fn look_up(lookup: &dyn OrphanLookup, orphan: Orphan) -> Result<Self, PlanError> {
        if lookup.in_verint(&orphan.contact_id).await? {
            return Ok(FoundOrphan {
                orphan,
                times: None,
                in_verint: true,
            });
        }
        let times = lookup.times(&orphan.contact_id).await?;
        if times.is_none() {
            let contact_id = &orphan.contact_id;
            warn!(
                %contact_id,
                "orphan recording of a contact Connect does not describe (or not ended): not queued"
            );
        }
        Ok(FoundOrphan {
            orphan,
            times,
            in_verint: false,
        })
    }

    fn queued(&self) -> bool {
        !self.in_verint && self.times.is_some()
    }
}

/// Everything a run needs, borrowed from the caller (built once per process).
pub struct Planner<'a, S, V, Q, R> {
    pub config: &'a Config,
    pub source: &'a S,
    pub verint: &'a V,
    pub queue: &'a Q,
    pub store: &'a R,
    /// CTR objects read at once.
    pub concurrency: usize,
    /// Called with `(objects read, objects)` while the CTRs are read.
    pub progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    /// Orphan recordings are looked for by manual runs when this is set.
    pub orphans: Option<&'a dyn OrphanLookup>,
    /// When an automatic run stops reading further hours (the invocation's deadline less a
    /// margin); it then matches and queues what it read. `None`: no deadline.
    pub deadline: Option<Instant>,
    /// When the run must have finished its look-ups and queueing, to leave time for the ledger
    /// and the report (the invocation's deadline less a few seconds). `None`: no deadline.
    pub finish_by: Option<Instant>,
}

impl<S, V, Q, R> std::fmt::Debug for Planner<'_, S, V, Q, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl<S: CtrSource, V: VerintHoldings, Q: WorkQueue, R: RunStore> Planner<'_, S, V, Q, R> {
    /// The orphan recordings of a manual run's window (design §9): recordings whose time lies in
    /// the window and whose contact has no CTR among the hours read; each asked of Verint by id,
    /// and, when Verint lacks it, of Connect for its times.
    async fn orphans(
        &self,
        lookup: &dyn OrphanLookup,
        window: Window,
        contacts: &crate::domain::contacts::ContactSet,
    ) -> Result<(Vec<FoundOrphan>, u64), PlanError> {
        let keys = lookup.recording_keys(window).await?;
        let listed = keys.len();
        // The contact set has no index by id: find, in one pass, which listed contacts have a CTR.
        let listed_ids: HashSet<ContactKey> = keys
            .iter()
            .filter_map(|k| crate::domain::orphans::parse_recording_key(k))
            .map(|name| ContactKey::new(&name.contact_id))
            .collect();
        let with_ctr: HashSet<ContactKey> = contacts
            .iter()
            .map(|c| c.key())
            .filter(|k| listed_ids.contains(k))
            .collect();
        let orphans: Vec<Orphan> =
            crate::domain::orphans::find(lookup.bucket(), keys, window, |k| with_ctr.contains(k));
        // Each look-up is isolated and bounded: one that fails (a throttled DescribeContact, a
        // DAS that does not answer) or that the deadline leaves no time for is counted and left
        // for the next run, never fatal to this one.
        let finish_by = self.finish_by;
        let looked: Vec<Result<FoundOrphan, (Orphan, String)>> = stream::iter(orphans)
            .map(|orphan| async move {
                let contact_id = orphan.contact_id.clone();
                let result = match finish_by {
                    Some(d) if Instant::now() >= d => Err("no time left before the deadline".into()),
                    Some(d) => {
                        match tokio::time::timeout_at(d.into(), FoundOrphan::look_up(lookup, orphan.clone())).await {
                            Ok(r) => r.map_err(|e| error_chain(&e)),
                            Err(_) => Err("the deadline came during the look-up".into()),
                        }
                    }
                    None => FoundOrphan::look_up(lookup, orphan.clone())
                        .await
                        .map_err(|e| error_chain(&e)),
                };
                result.map_err(|why| {
                    warn!(%contact_id, reason = %why, "orphan look-up failed; the next run tries it again");
                    (orphan, why)
                })
            })
            .buffer_unordered(ORPHAN_CONCURRENCY)
            .collect()
            .await;
        let mut found = Vec::with_capacity(looked.len());
        let mut failed = 0u64;
        for r in looked {
            match r {
                Ok(f) => found.push(f),
                Err((orphan, _)) => {
                    failed += 1;
                    found.push(FoundOrphan {
                        orphan,
                        times: None,
                        in_verint: false,
                    });
                }
            }
        }
        found.sort_by(|a, b| a.orphan.contact_id.cmp(&b.orphan.contact_id));
        info!(
            recordings = listed,
            orphans = found.len(),
            queued = found.iter().filter(|f| f.queued()).count(),
            lookups_failed = failed,
            "orphan recordings looked for"
        );
        Ok((found, failed))
    }

    /// Runs once; the report is written to the state bucket and returned. An automatic run reads
    /// its checkpoint before it writes anything, so one that cannot be parsed stops the run with
    /// nothing written and nothing queued.
    pub async fn run(&self, request: Request, now: DateTime<Utc>) -> Result<RunReport, PlanError> {
        self.run_as(&new_run_id(now), request, now).await
    }

    /// [`Planner::run`] under a given run id: a backfill's slice runs under the id its parent
    /// gave it, so running it again (a retried message, a redrive) rewrites the same report.
    #[tracing::instrument(
        name = "run",
        skip_all,
        fields(run_id = %run_id, mode = ?request.mode(), dry_run = request.dry_run())
    )]
    pub async fn run_as(
        &self,
        run_id: &str,
        request: Request,
        now: DateTime<Utc>,
    ) -> Result<RunReport, PlanError> {
        let checkpoint = match request {
            Request::Automatic { .. } => match self.store.checkpoint().await {
                Ok(read) => Some(read),
                Err(e) => {
                    error!(
                        error.message = %e,
                        error.cause_chain = ?e,
                        "run failed before it started"
                    );
                    return Err(e.into());
                }
            },
            Request::Manual { .. } => None,
        };
        let mut status = RunStatus {
            run_id: run_id.to_owned(),
            mode: request.mode(),
            dry_run: request.dry_run(),
            status: RunState::Running,
            started_at: format_ts(now),
            finished_at: None,
            error: None,
            slices: None,
        };
        self.store.put_status(&status).await?;
        let result = self.run_inner(run_id, request, checkpoint, now).await;
        status.finished_at = Some(format_ts(Utc::now()));
        match &result {
            Ok(report) => {
                status.status = RunState::Completed;
                info!(
                    eligible = report.eligible,
                    in_verint = report.in_verint,
                    missing = report.missing,
                    enqueued = report.enqueued,
                    late_hours = report.late_hours.len(),
                    "run completed"
                );
            }
            Err(e) => {
                status.status = RunState::Failed;
                status.error = Some(error_chain(e));
                error!(error.message = %e, error.cause_chain = ?e, "run failed");
            }
        }
        if let Err(e) = self.store.put_status(&status).await {
            error!(error.message = %e, "run status could not be written");
        }
        result
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Lists every remembered hour again (design §4, late objects): the hours whose listing
    /// differs from their digest, with that listing, oldest first.
    async fn sweep(
        &self,
        remembered: &BTreeMap<DateTime<Utc>, HourDigest>,
    ) -> Result<Vec<(DateTime<Utc>, Vec<CtrObject>)>, SourceError> {
        let relisted: Vec<(DateTime<Utc>, Vec<CtrObject>)> = stream::iter(
            remembered
                .keys()
                .map(|&hour| async move { self.source.list_hour(hour).await.map(|o| (hour, o)) }),
        )
        .buffered(4)
        .try_collect()
        .await?;
        Ok(relisted
            .into_iter()
            .filter(|(hour, objects)| {
                let now = HourDigest::of(*hour, objects.iter().map(|o| o.key.as_str()));
                remembered
                    .get(hour)
                    .is_none_or(|then| (then.objects, &then.sha256) != (now.objects, &now.sha256))
            })
            .collect())
    }

    /// The run itself: read the hours, ask DAS, classify, look for orphans, queue, write the
    /// ledger, move the checkpoint and write the report.
    async fn run_inner(
        &self,
        run_id: &str,
        request: Request,
        checkpoint: Option<(Option<Checkpoint>, Version)>,
        now: DateTime<Utc>,
    ) -> Result<RunReport, PlanError> {
        let started = Instant::now();
        let initiation_window = match request {
            Request::Manual { window, .. } => Some(window),
            Request::Automatic { .. } => None,
        };
        let mut scanner = Scanner::new(
            self.source,
            &self.config.connect_instance_id,
            initiation_window,
            self.concurrency,
            self.progress,
        );
        let read = match request {
            Request::Manual { window, .. } => self.read_manual(&mut scanner, window, now).await?,
            Request::Automatic { .. } => {
                let (checkpoint, version) = checkpoint.unwrap_or((None, Version::Absent));
                self.read_automatic(&mut scanner, run_id, checkpoint, version, now)
                    .await?
            }
        };
        let scanned = scanner.finish();
        let (contacts, stats) = (scanned.contacts, scanned.stats);
        let eligible = matching::eligible(&contacts, &read.rules);
        let held = self.held(&eligible).await?;
        let mut class = matching::classify(&contacts, &eligible, &held, &read.rules);
        // The ordinary missing calls are queued first: orphan look-ups (Verint and Connect, one
        // contact at a time) can be slow or fail, and must never hold them back.
        let queued = self
            .enqueue(request, run_id, &read.plan_key, &mut class)
            .await?;
        let (mut enqueued, mut rejected) = (queued.enqueued, queued.rejected);
        // A run the deadline stopped leaves its orphans to the attempt that continues it.
        let (found, orphan_lookups_failed) = match (request, self.orphans) {
            (Request::Manual { window, .. }, Some(lookup)) if queued.complete => {
                self.orphans(lookup, window, &contacts).await?
            }
            _ => (Vec::new(), 0),
        };
        let orphan_messages = self.orphan_messages(run_id, &found);
        let (orphans_enqueued, orphans_rejected) =
            self.enqueue_orphans(request, &orphan_messages).await?;
        enqueued += orphans_enqueued;
        rejected.extend(orphans_rejected);
        self.write_ledger(run_id, &contacts, &eligible, &class, &found, &rejected)
            .await?;
        let duplicates = stats.records.saturating_sub(contacts.len() as u64);
        // The report names every missing call; the set they borrow from goes first.
        let missing_contact_ids: Vec<String> = class
            .missing
            .iter()
            .map(matching::Missing::contact_id)
            .collect();
        let (eligible_count, in_verint, not_settled, unrecoverable) = (
            class.eligible,
            class.in_verint,
            class.not_settled,
            class.unrecoverable,
        );
        drop((eligible, contacts));
        match (read.moved, read.pin, request.dry_run(), queued.complete) {
            (Some((version, checkpoint)), _, false, true) => {
                self.move_checkpoint(checkpoint, &version).await?;
            }
            (_, Some((version, checkpoint)), false, false) => {
                if let Err(e) = self.move_checkpoint(checkpoint, &version).await {
                    warn!(error.message = %e, "the first checkpoint could not be pinned");
                }
            }
            _ => {}
        }
        let report = RunReport {
            run_id: run_id.to_owned(),
            mode: request.mode(),
            dry_run: request.dry_run(),
            window: read.window,
            ctr: CtrCounts {
                objects: stats.objects,
                records: stats.records,
                malformed: stats.malformed,
                duplicates,
            },
            eligible: eligible_count,
            in_verint,
            not_settled,
            missing: missing_contact_ids.len() as u64,
            enqueued,
            missing_contact_ids,
            unrecoverable: unrecoverable
                .into_iter()
                .map(|u| UnrecoverableEntry {
                    contact_id: u.contact_id,
                    reason: u.reason,
                })
                .collect(),
            late_hours: read.late_hours.iter().map(|h| format_ts(*h)).collect(),
            duration_ms: started.elapsed().as_millis() as u64,
            orphans: found.len() as u64,
            orphan_lookups_failed,
            already_queued: queued.already,
            complete: queued.complete,
            orphan_contact_ids: found
                .iter()
                .filter(|f| f.queued() && !rejected.contains_key(&f.orphan.contact_id))
                .map(|f| f.orphan.contact_id.clone())
                .collect(),
            slices: None,
        };
        self.store.put_report(&report).await?;
        if !report.complete {
            return Err(PlanError::Unfinished {
                queued: report.enqueued,
                missing: report.missing,
                automatic_ctr_records: (report.mode == Mode::Automatic)
                    .then_some(report.ctr.records),
            });
        }
        Ok(report)
    }

    /// A manual run reads every hour its window's calls can have arrived in (design §4).
    async fn read_manual(
        &self,
        scanner: &mut Scanner<'_, S>,
        window: Window,
        now: DateTime<Utc>,
    ) -> Result<Read, PlanError> {
        let hours = manual_hours(window, delta(self.config.arrival_slack), now);
        let first_hour = hours.first().map(|h| format_ts(*h));
        info!(hours = hours.len(), ?first_hour, "reading ctr objects");
        let listings: Vec<Vec<CtrObject>> =
            stream::iter(hours.iter().map(|h| self.source.list_hour(*h)))
                .buffered(4)
                .try_collect()
                .await?;
        scanner
            .read(listings.into_iter().flatten().collect())
            .await?;
        Ok(Read {
            rules: Rules {
                initiation_window: Some(window),
                settled_before: Some(now - delta(self.config.settle_delay)),
            },
            window: Some(ReportWindow {
                start: format_ts(window.start),
                end: format_ts(window.end),
                by: WindowBy::Initiation,
            }),
            late_hours: Vec::new(),
            moved: None,
            pin: None,
            plan_key: format!("manual-{}-{}", key_ts(window.start), key_ts(window.end)),
        })
    }

    /// An automatic run reads again the remembered hours whose listing changed (late objects),
    /// then the settled hours from its checkpoint, until its deadline; the checkpoint moves past
    /// the hours read.
    async fn read_automatic(
        &self,
        scanner: &mut Scanner<'_, S>,
        run_id: &str,
        checkpoint: Option<Checkpoint>,
        version: Version,
        now: DateTime<Utc>,
    ) -> Result<Read, PlanError> {
        let config = self.config;
        let next = checkpoint
            .as_ref()
            .and_then(Checkpoint::next_hour)
            .unwrap_or_else(|| floor_hour(now - delta(config.initial_lookback)));
        let sweep_from = next - delta(config.late_sweep);
        let mut remembered: BTreeMap<DateTime<Utc>, HourDigest> = checkpoint
            .iter()
            .flat_map(|c| &c.hours)
            .filter_map(|d| d.hour().map(|h| (h, d.clone())))
            .filter(|(h, _)| *h >= sweep_from && *h < next)
            .collect();
        let late = self.sweep(&remembered).await?;
        let settle = delta(config.settle_delay);
        let new_hours = automatic_hours(next, settle, config.max_hours_per_run, now);
        let first_hour = new_hours.first().map(|h| format_ts(*h));
        let late_count = late.len();
        info!(
            hours = new_hours.len(),
            ?first_hour,
            late_hours = late_count,
            "reading ctr objects"
        );
        let late_hours = self.read_late(scanner, late, &mut remembered).await?;
        let mut finished = Vec::new();
        if late_hours.len() == late_count {
            finished = self.read_new(scanner, &new_hours, &mut remembered).await?;
        }
        if late_hours.len() < late_count || finished.len() < new_hours.len() {
            warn!(
                hours_read = finished.len(),
                hours_left = new_hours.len() - finished.len(),
                "deadline near: stopped reading hours; the checkpoint moves past the hours read"
            );
        }
        let pin = checkpoint.is_none().then(|| {
            (
                version.clone(),
                Checkpoint {
                    next_hour: format_ts(next),
                    updated_at: String::new(),
                    run_id: run_id.to_owned(),
                    hours: Vec::new(),
                },
            )
        });
        let next_after = finished.last().map_or(next, |h| *h + HOUR);
        let keep_from = next_after - delta(config.late_sweep);
        let moved = (!finished.is_empty() || !late_hours.is_empty()).then(|| {
            let checkpoint = Checkpoint {
                next_hour: format_ts(next_after),
                updated_at: String::new(),
                run_id: run_id.to_owned(),
                hours: remembered
                    .into_values()
                    .filter(|d| d.hour().is_some_and(|h| h >= keep_from))
                    .collect(),
            };
            (version, checkpoint)
        });
        let first = late_hours.iter().chain(&finished).min();
        let last = late_hours.iter().chain(&finished).max();
        let window = first.zip(last).map(|(first, last)| ReportWindow {
            start: format_ts(*first),
            end: format_ts(*last + HOUR),
            by: WindowBy::Arrival,
        });
        let rules = Rules {
            initiation_window: None,
            settled_before: None,
        };
        Ok(Read {
            rules,
            window,
            late_hours,
            moved,
            pin,
            plan_key: format!("automatic-{}", key_ts(next)),
        })
    }

    /// Reads again the hours with late objects, until the deadline; the hours read.
    async fn read_late(
        &self,
        scanner: &mut Scanner<'_, S>,
        late: Vec<(DateTime<Utc>, Vec<CtrObject>)>,
        remembered: &mut BTreeMap<DateTime<Utc>, HourDigest>,
    ) -> Result<Vec<DateTime<Utc>>, PlanError> {
        let mut read = Vec::new();
        for (hour, objects) in late {
            if self.out_of_time() {
                break;
            }
            let digest = HourDigest::of(hour, objects.iter().map(|o| o.key.as_str()));
            let (at, objects_late) = (format_ts(hour), digest.objects);
            warn!(hour = %at, objects = objects_late, "late objects: reading the hour again");
            scanner.read(objects).await?;
            remembered.insert(hour, digest);
            read.push(hour);
        }
        Ok(read)
    }

    /// Reads the new settled hours in order, until the deadline; the hours read.
    async fn read_new(
        &self,
        scanner: &mut Scanner<'_, S>,
        hours: &[DateTime<Utc>],
        remembered: &mut BTreeMap<DateTime<Utc>, HourDigest>,
    ) -> Result<Vec<DateTime<Utc>>, PlanError> {
        let mut read = Vec::new();
        for &hour in hours {
            if self.out_of_time() {
                break;
            }
            let objects = self.source.list_hour(hour).await?;
            let digest = HourDigest::of(hour, objects.iter().map(|o| o.key.as_str()));
            scanner.read(objects).await?;
            remembered.insert(hour, digest);
            read.push(hour);
        }
        Ok(read)
    }

    /// The eligible contacts Verint holds, asked over the DAS spans they need.
    async fn held(
        &self,
        eligible: &[matching::Eligible],
    ) -> Result<HashSet<ContactKey>, PlanError> {
        let spans = matching::das_spans(eligible, delta(self.config.das_margin));
        if spans.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(self.verint.completed_contacts(&spans).await?)
    }

    /// One message per missing contact of `missing`, then one per orphan to queue (design §5).
    fn messages<'m, 'c: 'm>(
        &self,
        run_id: &str,
        missing: impl IntoIterator<Item = &'m matching::Missing<'c>>,
        found: &[FoundOrphan],
    ) -> Vec<WorkMessage> {
        let enqueued_at = format_ts(Utc::now());
        let message =
            |contact_id: String, (initiation, disconnect): CallTimes, recordings| WorkMessage {
                v: MESSAGE_VERSION,
                run_id: run_id.to_owned(),
                contact_id,
                instance_id: self.config.connect_instance_id.clone(),
                initiation_timestamp: format_ts(initiation),
                disconnect_timestamp: format_ts(disconnect),
                recordings,
                enqueued_at: enqueued_at.clone(),
            };
        let missing = missing
            .into_iter()
            .map(|m| message(m.contact_id(), (m.initiation, m.disconnect), m.recordings()));
        let orphans = found.iter().filter(|f| f.queued()).filter_map(|f| {
            Some(message(
                f.orphan.contact_id.clone(),
                f.times?,
                f.orphan.recordings.clone(),
            ))
        });
        missing.chain(orphans).collect()
    }

    /// One message per orphan to queue.
    fn orphan_messages(&self, run_id: &str, found: &[FoundOrphan]) -> Vec<WorkMessage> {
        self.messages(run_id, std::iter::empty(), found)
    }

    /// Queues the orphans' messages (none in a dry run): how many SQS accepted, and the reason
    /// of each it rejected (the orphan stays an orphan, reported as not queued).
    async fn enqueue_orphans(
        &self,
        request: Request,
        messages: &[WorkMessage],
    ) -> Result<(u64, HashMap<String, String>), PlanError> {
        let mut rejected_ids = HashMap::new();
        if request.dry_run() || messages.is_empty() {
            return Ok((0, rejected_ids));
        }
        let sent = self.queue.send_all(messages).await?;
        for (i, reason) in sent.rejected {
            if let Some(m) = messages.get(i) {
                let reason = format!("sqs rejected the work message: {reason}");
                error!(contact_id = %m.contact_id, %reason, "sqs rejected the work message of an orphan");
                rejected_ids.insert(m.contact_id.clone(), reason);
            }
        }
        Ok((sent.accepted, rejected_ids))
    }

    /// Queues the plan's messages (none in a dry run), [`QUEUE_CHUNK`] at a time while the run
    /// has time (design §4.7): what an earlier attempt of the same plan queued is skipped, and if
    /// the deadline (or a failure of SQS) stops this one, every id queued so far is recorded for
    /// the next attempt. A message SQS rejects as the sender's fault would be rejected by every
    /// later run too: its contact becomes unrecoverable with the reason, and the run goes on.
    async fn enqueue(
        &self,
        request: Request,
        run_id: &str,
        plan_key: &str,
        class: &mut matching::Classification<'_>,
    ) -> Result<Queued, PlanError> {
        let mut queued = Queued {
            complete: true,
            ..Queued::default()
        };
        if request.dry_run() {
            return Ok(queued);
        }
        let before: HashSet<String> = self.store.queued_log(plan_key).await?.into_iter().collect();
        let had_log = !before.is_empty();
        // Messages are built a chunk at a time: a day of a million missing calls is hundreds of
        // MB of messages, and only the chunk in flight needs to exist.
        let fresh: Vec<&matching::Missing> = class
            .missing
            .iter()
            .filter(|m| !had_log || !before.contains(&m.contact_id()))
            .collect();
        let total = class.missing.len();
        queued.already = (total - fresh.len()) as u64;
        if queued.already > 0 {
            info!(
                already_queued = queued.already,
                left = fresh.len(),
                "continuing a plan an earlier attempt stopped"
            );
        }
        // The fresh calls of the chunks sent so far; the ids queued are recorded only when the
        // run stops short, so a complete run never holds a million of them at once.
        let mut sent_calls = 0;
        let mut failure = None;
        for (n, missing) in fresh.chunks(QUEUE_CHUNK).enumerate() {
            // Every attempt queues at least one chunk, so that a run whose reading and DAS took
            // the time still makes progress, and the next attempt has less to do.
            if n > 0 && self.finish_by.is_some_and(|d| Instant::now() >= d) {
                queued.complete = false;
                break;
            }
            let chunk = self.messages(run_id, missing.iter().copied(), &[]);
            let sent = match self.queue.send_all(&chunk).await {
                Ok(sent) => sent,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            queued.enqueued += sent.accepted;
            for (i, reason) in sent.rejected {
                if let Some(m) = chunk.get(i) {
                    let reason = format!("sqs rejected the work message: {reason}");
                    error!(contact_id = %m.contact_id, %reason, "sqs rejected the work message");
                    queued.rejected.insert(m.contact_id.clone(), reason);
                }
            }
            sent_calls += missing.len();
        }
        if !queued.complete || failure.is_some() {
            let mut ids: Vec<String> = before.into_iter().collect();
            ids.extend(
                fresh[..sent_calls]
                    .iter()
                    .map(|m| m.contact_id())
                    .filter(|id| !queued.rejected.contains_key(id)),
            );
            self.store.put_queued_log(plan_key, Some(&ids)).await?;
            warn!(
                queued = ids.len(),
                missing = total,
                "queueing stopped; the queued ids are recorded for the next attempt"
            );
        } else if had_log {
            self.store.put_queued_log(plan_key, None).await?;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        queued.enqueued += queued.already;
        let rejected = &queued.rejected;
        if !rejected.is_empty() {
            let (kept, lost): (Vec<_>, Vec<_>) = std::mem::take(&mut class.missing)
                .into_iter()
                .partition(|m| !rejected.contains_key(&m.contact_id()));
            class.missing = kept;
            for m in lost {
                let contact_id = m.contact_id();
                class.unrecoverable.push(matching::Unrecoverable {
                    reason: rejected[&contact_id].clone(),
                    contact_id,
                });
            }
        }
        Ok(queued)
    }

    /// The ledger, once every class is final (an entry SQS rejected is unrecoverable).
    async fn write_ledger(
        &self,
        run_id: &str,
        contacts: &ContactSet,
        eligible: &[matching::Eligible],
        class: &matching::Classification<'_>,
        found: &[FoundOrphan],
        rejected: &HashMap<String, String>,
    ) -> Result<(), PlanError> {
        let mut ledger = self.store.ledger(run_id);
        for mut row in matching::ledger_rows(contacts, eligible, class) {
            if let Some(reason) = rejected.get(&row.contact_id) {
                row.class = LedgerClass::Unrecoverable;
                row.reason = reason.clone();
            }
            ledger.push(row).await?;
        }
        for f in found {
            ledger
                .push(LedgerRow {
                    contact_id: f.orphan.contact_id.clone(),
                    initiation: Some(f.times.map_or(f.orphan.at, |t| t.0)),
                    disconnect: f.times.map(|t| t.1),
                    class: LedgerClass::Orphan,
                    reason: String::new(),
                })
                .await?;
        }
        let rows = ledger.finish().await?;
        info!(rows, "ledger written");
        Ok(())
    }

    /// Writes the checkpoint an automatic run moved, conditional on the version it read.
    async fn move_checkpoint(
        &self,
        mut checkpoint: Checkpoint,
        version: &Version,
    ) -> Result<(), PlanError> {
        checkpoint.updated_at = format_ts(Utc::now());
        self.store.put_checkpoint(&checkpoint, version).await?;
        info!(next_hour = %checkpoint.next_hour, "checkpoint moved");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::time::parse_ts;

    fn config() -> Config {
        let vars = HashMap::from([
            ("CTR_BUCKET", "ctr"),
            ("CONNECT_INSTANCE_ID", "i"),
            ("WORK_QUEUE_URL", "q"),
            ("DEAD_LETTER_QUEUE_URL", "d"),
            ("STATE_BUCKET", "s"),
            ("VERINT_DAS_URL", "https://v/das"),
            ("VERINT_INGEST_URL", "https://v/ingest"),
            ("VERINT_API_KEY_ID", "k"),
            ("VERINT_API_KEY", "a2V5"),
        ]);
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).expect("valid")
    }

    fn ts(s: &str) -> DateTime<Utc> {
        parse_ts(s).expect("valid")
    }

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn invalid(event: serde_json::Value) -> String {
        match parse_event(&event, &config(), ts(NOW)) {
            Err(PlanError::Invalid(reason)) => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_scheduled_event_is_an_automatic_run() {
        let event = serde_json::json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":NOW,"resources":[],"detail":{}});
        assert_eq!(
            parse_event(&event, &config(), ts(NOW)).expect("valid"),
            Request::Automatic { dry_run: false }
        );
    }

    #[test]
    fn a_manual_payload_is_a_manual_run() {
        let event = serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00+00:00","dry_run":true});
        let window = Window {
            start: ts("2026-11-26T00:00:00Z"),
            end: ts("2026-11-27T00:00:00Z"),
        };
        assert_eq!(
            parse_event(&event, &config(), ts(NOW)).expect("valid"),
            Request::Manual {
                window,
                dry_run: true
            }
        );
        let no_dry_run =
            serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z"});
        assert_eq!(
            parse_event(&no_dry_run, &config(), ts(NOW)).expect("valid"),
            Request::Manual {
                window,
                dry_run: false
            }
        );
    }

    #[test]
    fn every_invalid_manual_payload_is_rejected_with_its_reason() {
        assert!(
            invalid(serde_json::json!({"start":"yesterday","end":"2026-11-27T00:00:00Z"}))
                .contains("start \"yesterday\" is not an RFC 3339")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2026-11-27T00:00:00Z","end":"2026-11-27T00:00:00Z"})
            )
            .contains("must be before end")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2026-11-27T00:00:00Z","end":"2026-11-27T13:00:00Z"})
            )
            .contains("in the future")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2024-10-01T00:00:00Z","end":"2026-11-02T00:00:00Z"})
            )
            .contains("MAX_MANUAL_SPAN")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2024-11-26T00:00:00Z","end":"2024-11-27T00:00:00Z"})
            )
            .contains("730 days")
        );
        assert!(
            invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z"}))
                .contains("missing field `end`")
        );
        assert!(invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z","dryrun":true})).contains("unknown field `dryrun`"));
        assert!(invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z","dry_run":"yes"})).contains("expected a boolean"));
    }

    #[test]
    fn anything_else_is_rejected() {
        assert!(
            invalid(serde_json::json!({"detail-type":"Object Created","detail":{}}))
                .contains("not a schedule")
        );
        assert!(invalid(serde_json::json!({"hello":"world"})).contains("neither"));
        assert!(invalid(serde_json::json!([1, 2])).contains("an array"));
    }

    #[test]
    fn manual_runs_read_from_the_start_hour_to_end_plus_arrival_slack() {
        let w = Window {
            start: ts("2026-11-26T10:30:00Z"),
            end: ts("2026-11-26T12:00:00Z"),
        };
        let hours = manual_hours(w, TimeDelta::hours(4), ts(NOW));
        assert_eq!(hours.first(), Some(&ts("2026-11-26T10:00:00Z")));
        assert_eq!(hours.last(), Some(&ts("2026-11-26T15:00:00Z")));
        assert_eq!(hours.len(), 6);
        let recent = Window {
            start: ts("2026-11-27T10:00:00Z"),
            end: ts("2026-11-27T11:00:00Z"),
        };
        assert_eq!(
            manual_hours(recent, TimeDelta::hours(4), ts(NOW)).last(),
            Some(&ts("2026-11-27T12:00:00Z"))
        );
    }

    #[test]
    fn automatic_runs_read_only_settled_hours_up_to_the_maximum() {
        let settle = TimeDelta::minutes(30);
        let hours = automatic_hours(
            ts("2026-11-27T09:00:00Z"),
            settle,
            24,
            ts("2026-11-27T12:29:59Z"),
        );
        assert_eq!(
            hours,
            [ts("2026-11-27T09:00:00Z"), ts("2026-11-27T10:00:00Z")]
        );
        let hours = automatic_hours(
            ts("2026-11-27T09:00:00Z"),
            settle,
            24,
            ts("2026-11-27T12:30:00Z"),
        );
        assert_eq!(hours.len(), 3);
        let hours = automatic_hours(ts("2026-11-20T00:00:00Z"), settle, 24, ts(NOW));
        assert_eq!(hours.len(), 24);
        assert!(automatic_hours(ts("2026-11-27T11:00:00Z"), settle, 24, ts(NOW)).is_empty());
    }
}
