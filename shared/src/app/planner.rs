//! The planner's side: the CTR source, Verint, the work queue, the run state and, when
//! `RECORDINGS_BUCKET` is set, the orphan lookups (design §9).

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;

use futures::StreamExt as _;
use futures::stream;

use crate::adapters::aws::{Clients, StartError};
use crate::adapters::connect::ConnectClient;
use crate::adapters::ctr_source::S3CtrSource;
use crate::adapters::orphans::RecordingOrphans;
use crate::adapters::recordings::S3Recordings;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::state::S3State;
use crate::adapters::verint::VerintClient;
use crate::config::Config;
use crate::domain::error::error_chain;
use crate::domain::metrics::{Metrics, Unit, names};
use crate::domain::report::{Mode, RunReport, RunStatus};
use crate::domain::time::Window;
use crate::flows::backfill::{self, Backfill, SliceMessage};
use crate::flows::plan::{Deadlines, PlanError, Planner, Request};
use crate::ports::orphans::OrphanLookup;
use crate::ports::recordings::KeyListing;

/// CTR objects read at once: S3 latency dominates, parsing uses every core.
pub(crate) const READ_CONCURRENCY: usize = 8;

/// Everything the planner builds once per process.
#[derive(Debug)]
pub struct PlannerApp {
    pub config: Config,
    pub source: S3CtrSource,
    pub verint: VerintClient,
    pub queue: SqsQueue,
    /// Where a backfill's slices queue their calls (`BACKFILL_QUEUE_URL`, else the work queue).
    pub backfill_queue: SqsQueue,
    /// Where a backfill's slices are sent, one message each (`PLANNING_QUEUE_URL`).
    pub planning_queue: Option<SqsQueue>,
    pub store: S3State,
    /// Set when `RECORDINGS_BUCKET` is: manual runs look for orphan recordings (design §9).
    pub orphans: Option<RecordingOrphans>,
    /// Where redacted audio is looked for (design §10).
    pub recordings: S3Recordings,
    cold: AtomicBool,
}

impl PlannerApp {
    /// Builds the clients from `lookup` (the SDK's endpoint variables) and the adapters from
    /// `config`; fails only when the Verint key cannot be read.
    pub async fn load(
        config: Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartError> {
        let clients = Clients::load(lookup).await;
        let verint = clients.verint(&config).await?;
        let orphans = config.recordings.clone().map(|location| RecordingOrphans {
            s3: clients.s3.clone(),
            location,
            verint: verint.clone(),
            connect: ConnectClient::new(clients.connect.clone(), config.connect_max_rps),
            instance_id: config.connect_instance_id.clone(),
        });
        Ok(PlannerApp {
            orphans,
            recordings: S3Recordings(clients.s3.clone()),
            source: S3CtrSource::new(clients.s3.clone(), &config.ctr_bucket, &config.ctr_prefix),
            queue: SqsQueue::new(clients.sqs.clone(), &config.work_queue_url),
            backfill_queue: SqsQueue::new(
                clients.sqs.clone(),
                config
                    .backfill_queue_url
                    .as_deref()
                    .unwrap_or(&config.work_queue_url),
            ),
            planning_queue: config
                .planning_queue_url
                .as_deref()
                .map(|url| SqsQueue::new(clients.sqs.clone(), url)),
            store: S3State::new(
                clients.s3.clone(),
                &config.state_bucket,
                &config.state_prefix,
            ),
            verint,
            config,
            cold: AtomicBool::new(true),
        })
    }

    /// True the first time it is asked in this process: the invocation is a cold start.
    pub fn cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }

    /// Runs once, without a deadline, with a progress callback `(objects read, objects)`.
    pub async fn run(
        &self,
        request: Request,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<RunReport, PlanError> {
        self.run_until(request, None, progress).await
    }

    /// Runs once within `deadlines` (design §4.7).
    pub async fn run_until(
        &self,
        request: Request,
        deadlines: Option<Deadlines>,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<RunReport, PlanError> {
        self.planner(deadlines, progress)
            .run(request, Utc::now())
            .await
    }

    /// The flow of one run over this process's adapters.
    pub fn planner<'a>(
        &'a self,
        deadlines: Option<Deadlines>,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> Planner<'a, S3CtrSource, VerintClient, SqsQueue, S3State> {
        self.planner_on(&self.queue, deadlines, progress)
    }

    /// [`PlannerApp::planner`], queueing its missing calls on `queue`.
    fn planner_on<'a>(
        &'a self,
        queue: &'a SqsQueue,
        deadlines: Option<Deadlines>,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> Planner<'a, S3CtrSource, VerintClient, SqsQueue, S3State> {
        Planner {
            config: &self.config,
            source: &self.source,
            verint: &self.verint,
            queue,
            store: &self.store,
            concurrency: READ_CONCURRENCY,
            progress,
            orphans: self.orphans.as_ref().map(|o| o as &dyn OrphanLookup),
            redacted: Some(&self.recordings as &dyn KeyListing),
            deadline: deadlines.map(|d| d.reading),
            finish_by: deadlines.map(|d| d.finish_by),
        }
    }
}

/// Backfills (design §4.8): a manual window over 24 hours, planned as 24-hour slices.
impl PlannerApp {
    /// Plans one slice under its own run id, queueing its calls on the backfill queue, then
    /// settles its parent. A slice that fails is named in its parent's status and returned as
    /// an error, so that whoever ran it (SQS, the operator) runs it again.
    /// Backfill pacing (design §4.8): `Some((queued, bound))` when the backfill queue already
    /// holds `BACKFILL_MAX_QUEUED` messages or more, so that the slice should wait rather than
    /// add calls that could expire before the lane drains them.
    pub async fn slice_must_wait(&self) -> Result<Option<(u64, u64)>, PlanError> {
        let Some(bound) = self.config.backfill_max_queued else {
            return Ok(None);
        };
        let depth = self.backfill_queue.depth().await?;
        let queued = depth.visible + depth.in_flight;
        Ok((queued >= bound).then_some((queued, bound)))
    }

    pub async fn run_slice(
        &self,
        message: &SliceMessage,
        deadlines: Option<Deadlines>,
    ) -> Result<RunReport, PlanError> {
        backfill::run_slice(&self.store, message, |run_id, request| async move {
            self.planner_on(&self.backfill_queue, deadlines, &|_, _| {})
                .run_as(&run_id, request, Utc::now())
                .await
        })
        .await
    }

    /// Starts a backfill in AWS: writes its plan and sends one planning-queue message per
    /// slice, each of which triggers one planner invocation. If the slices cannot all be sent,
    /// the parent is marked failed with the reason, and the error returned.
    pub async fn start_backfill(
        &self,
        window: Window,
        dry_run: bool,
    ) -> Result<Backfill, PlanError> {
        let Some(planning) = &self.planning_queue else {
            return Err(PlanError::Invalid(
                "a window over 24 hours is a backfill, sent as one message per 24-hour slice to \
                 the planning queue, and PLANNING_QUEUE_URL is not set"
                    .into(),
            ));
        };
        let backfill = Backfill::new(window, dry_run, Utc::now());
        backfill::begin(&self.store, &backfill).await?;
        let bodies = backfill
            .messages()
            .iter()
            .map(|m| serde_json::to_string(m).map(|body| (body, None)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PlanError::Invalid(format!("a slice message: {e}")))?;
        if let Err(e) = planning.send_bodies(&bodies).await {
            let why = format!("its slices could not be queued: {}", error_chain(&e));
            if let Err(abandon) = backfill::abandon(&self.store, &backfill, &why).await {
                tracing::error!(error.message = %abandon, "the failed backfill's status could not be written");
            }
            return Err(e.into());
        }
        Ok(backfill)
    }

    /// Runs a backfill here, as `recoveryctl plan` does: its slices `jobs` at a time, each as
    /// the planning queue's consumer would run it; `on_end` is told of each slice as it ends.
    /// Returns the parent's status and its report: the stored one once every slice completed,
    /// else what the completed slices sum to.
    pub async fn backfill_here(
        &self,
        window: Window,
        dry_run: bool,
        jobs: usize,
        on_end: &(dyn Fn(&SliceMessage, &Result<RunReport, PlanError>) + Send + Sync),
    ) -> Result<(RunStatus, RunReport), PlanError> {
        let backfill = Backfill::new(window, dry_run, Utc::now());
        backfill::begin(&self.store, &backfill).await?;
        stream::iter(backfill.messages())
            .map(|message| async move {
                let result = self.run_slice(&message, None).await;
                on_end(&message, &result);
            })
            .buffer_unordered(jobs.max(1))
            .collect::<Vec<()>>()
            .await;
        let settled = backfill::settle_parent(&self.store, &backfill.run_id).await?;
        let report = match settled.report {
            Some(report) => report,
            None => backfill::report_so_far(&self.store, &backfill.run_id).await?,
        };
        Ok((settled.status, report))
    }
}

/// The planner's metrics for one report.
pub fn report_metrics(report: &RunReport, metrics: &mut Metrics) {
    metrics.count(names::CTR_OBJECTS, report.ctr.objects);
    metrics.count(names::CTR_RECORDS, report.ctr.records);
    metrics.count(names::CTR_MALFORMED, report.ctr.malformed);
    metrics.count(names::ELIGIBLE, report.eligible);
    metrics.count(names::IN_VERINT, report.in_verint);
    metrics.count(names::NOT_SETTLED, report.not_settled);
    metrics.count(names::UNRECOVERABLE, report.unrecoverable.len() as u64);
    metrics.count(names::MISSING, report.missing);
    metrics.count(names::ENQUEUED, report.enqueued);
    // Design §9.3: a drop of the capture rate means Verint is losing calls now; manual runs and
    // backfill slices look at the past (a backfill of history is mostly missing on purpose).
    if report.mode == Mode::Automatic && report.eligible > 0 {
        metrics.add(
            names::CAPTURE_RATE,
            100.0 * report.in_verint as f64 / report.eligible as f64,
            Unit::Percent,
        );
    }
    metrics.count(names::ORPHANS, report.orphans);
    // Each instance's share (design §11), beside the totals the alarms watch.
    for (id, c) in &report.instances {
        for (name, n) in [
            (names::ELIGIBLE, c.eligible),
            (names::IN_VERINT, c.in_verint),
            (names::NOT_SETTLED, c.not_settled),
            (names::UNRECOVERABLE, c.unrecoverable),
            (names::MISSING, c.missing),
        ] {
            metrics.add_for(id, name, n as f64, Unit::Count);
        }
        if report.mode == Mode::Automatic && c.eligible > 0 {
            let rate = 100.0 * c.in_verint as f64 / c.eligible as f64;
            metrics.add_for(id, names::CAPTURE_RATE, rate, Unit::Percent);
        }
    }
    if report.mode == Mode::Automatic && !report.dry_run {
        metrics.count(names::AUTOMATIC_CTR_RECORDS, report.ctr.records);
    }
    if report.mode == Mode::Automatic && !report.dry_run && report.complete {
        metrics.count(names::AUTOMATIC_RUN_SUCCEEDED, 1);
    }
    metrics.add(
        names::RUN_DURATION_MS,
        report.duration_ms as f64,
        Unit::Milliseconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(mode: Mode) -> RunReport {
        RunReport {
            eligible: 100,
            in_verint: 10,
            missing: 90,
            enqueued: 90,
            ..RunReport::empty("r", mode)
        }
    }

    fn emitted(report: &RunReport) -> String {
        let mut metrics = Metrics::new("test");
        report_metrics(report, &mut metrics);
        serde_json::to_string(&metrics.documents(0)).unwrap_or_default()
    }

    #[test]
    fn each_instance_is_a_dimension_beside_the_totals() {
        let mut r = report(Mode::Automatic);
        for (id, in_verint) in [("inst-a", 9), ("inst-b", 1)] {
            r.instances.insert(
                id.into(),
                crate::domain::report::InstanceCounts {
                    eligible: 50,
                    in_verint,
                    missing: 50 - in_verint,
                    ..Default::default()
                },
            );
        }
        let mut metrics = Metrics::new("planner");
        report_metrics(&r, &mut metrics);
        let docs = metrics.documents(0);
        let of = |id: &str| {
            docs.iter()
                .find(|d| d["InstanceId"] == id)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(of("inst-a")["Missing"], 41.0);
        assert_eq!(of("inst-b")["CaptureRate"], 2.0);
        assert_eq!(
            of("inst-a")["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "InstanceId"]])
        );
        let total = docs
            .iter()
            .find(|d| d.get("InstanceId").is_none() && d.get("Reason").is_none())
            .expect("the totals");
        assert_eq!(total["Missing"], 90.0, "the alarms' totals stay");
    }

    #[test]
    fn only_automatic_runs_feed_the_no_ctr_alarm() {
        assert!(emitted(&report(Mode::Automatic)).contains(names::AUTOMATIC_CTR_RECORDS));
        assert!(!emitted(&report(Mode::Manual)).contains(names::AUTOMATIC_CTR_RECORDS));
    }

    #[test]
    fn only_automatic_runs_report_a_capture_rate() {
        assert!(emitted(&report(Mode::Automatic)).contains(names::CAPTURE_RATE));
        assert!(
            !emitted(&report(Mode::Manual)).contains(names::CAPTURE_RATE),
            "a backfill of history must not page as 'Verint is losing calls now'"
        );
    }
}
