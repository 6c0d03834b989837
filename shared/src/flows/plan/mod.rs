//! One recovery run (design §4): pick the arrival hours, read the CTRs, ask DAS, classify, queue
//! one message per missing contact, move the checkpoint, write the report. Shared by the planner
//! Lambda and `recoveryctl plan`. What a run is asked to do is in `request`, its queueing (and
//! its deadlines) in `queueing`, its search for orphan recordings in `orphans`.

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
use crate::domain::message::{MESSAGE_VERSION, QueuedRecording, WorkMessage};
use crate::domain::orphans::Orphan;
use crate::domain::recording::{Variant, choose_audio};
use crate::domain::report::{
    CtrCounts, InstanceCounts, Mode, ReportWindow, RunReport, RunState, RunStatus,
    UnrecoverableEntry, WindowBy, new_run_id,
};
use crate::domain::time::{HOUR, Window, delta, floor_hour, format_ts};
use crate::flows::scan::Scanner;
use crate::ports::ctr_source::{CtrObject, CtrSource, SourceError};
use crate::ports::orphans::{CallTimes, OrphanError, OrphanLookup};
use crate::ports::queue::{QueueError, WorkQueue};
use crate::ports::recordings::KeyListing;
use crate::ports::store::LedgerSink;
use crate::ports::store::{RunStore, StateError, Version};
use crate::ports::verint::VerintError;
use crate::ports::verint::VerintHoldings;

mod orphans;
mod queueing;
mod redacted;
mod request;

use orphans::FoundOrphan;
pub use queueing::{Deadlines, FINISH_MARGIN, READING_MARGIN};
pub use request::{ManualPayload, Request, parse_event};
pub(crate) use request::{automatic_hours, manual_hours};

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
    #[error("redacted recordings could not be looked for")]
    Redacted(#[source] crate::ports::recordings::RecordingError),
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
    /// Where redacted audio is looked for when `RECORDING_VARIANT` asks for it (design §10).
    pub redacted: Option<&'a dyn KeyListing>,
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
            &self.config.connect_instance_ids,
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
        let redacted = self.redacted_audio(&mut class, &eligible, now).await?;
        // The ordinary missing calls are queued first: orphan look-ups (Verint and Connect, one
        // contact at a time) can be slow or fail, and must never hold them back.
        let queued = self
            .enqueue(request, run_id, &read.plan_key, &mut class, &redacted)
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
        let ids = &self.config.connect_instance_ids;
        let instances: BTreeMap<String, InstanceCounts> = ids
            .iter()
            .cloned()
            .zip(matching::instance_counts(
                &contacts,
                &eligible,
                &class,
                |id| rejected.contains_key(id),
                ids.len(),
            ))
            .collect();
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
            instances,
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
                    initial_contact_id: String::new(),
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
mod tests;
