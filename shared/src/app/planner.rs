//! The planner's side: the CTR source, Verint, the work queue, the run state and, when
//! `RECORDINGS_BUCKET` is set, the orphan lookups (DESIGN §9).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::Utc;

use crate::aws::{Clients, StartError};
use crate::config::Config;
use crate::connect::ConnectContacts;
use crate::metrics::{Metrics, Unit, names};
use crate::orphans::{OrphanLookup, RecordingOrphans};
use crate::plan::{PlanError, Planner, Request};
use crate::queue::SqsQueue;
use crate::report::{Mode, RunReport};
use crate::source::S3CtrSource;
use crate::state::S3State;
use crate::verint::VerintClient;

/// CTR objects read at once: S3 latency dominates, parsing uses every core.
pub(crate) const READ_CONCURRENCY: usize = 8;

/// Everything the planner builds once per process.
#[derive(Debug)]
pub struct PlannerApp {
    pub config: Config,
    pub source: S3CtrSource,
    pub verint: VerintClient,
    pub queue: SqsQueue,
    pub store: S3State,
    /// Set when `RECORDINGS_BUCKET` is: manual runs look for orphan recordings (DESIGN §9).
    pub orphans: Option<RecordingOrphans>,
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
            connect: ConnectContacts::new(clients.connect.clone(), config.connect_max_rps),
            instance_id: config.connect_instance_id.clone(),
        });
        Ok(PlannerApp {
            orphans,
            source: S3CtrSource::new(clients.s3.clone(), &config.ctr_bucket, &config.ctr_prefix),
            queue: SqsQueue::new(clients.sqs.clone(), &config.work_queue_url),
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

    /// Runs once; an automatic run stops reading further hours at `deadline` (DESIGN §4).
    pub async fn run_until(
        &self,
        request: Request,
        deadline: Option<Instant>,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<RunReport, PlanError> {
        self.planner(deadline, progress)
            .run(request, Utc::now())
            .await
    }

    /// The flow of one run over this process's adapters.
    pub fn planner<'a>(
        &'a self,
        deadline: Option<Instant>,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> Planner<'a, S3CtrSource, VerintClient, SqsQueue, S3State> {
        Planner {
            config: &self.config,
            source: &self.source,
            verint: &self.verint,
            queue: &self.queue,
            store: &self.store,
            concurrency: READ_CONCURRENCY,
            progress,
            orphans: self.orphans.as_ref().map(|o| o as &dyn OrphanLookup),
            deadline,
        }
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
    if report.eligible > 0 {
        metrics.add(
            names::CAPTURE_RATE,
            100.0 * report.in_verint as f64 / report.eligible as f64,
            Unit::Percent,
        );
    }
    metrics.count(names::ORPHANS, report.orphans);
    if report.mode == Mode::Automatic && !report.dry_run {
        metrics.count(names::AUTOMATIC_RUN_SUCCEEDED, 1);
    }
    metrics.add(
        names::RUN_DURATION_MS,
        report.duration_ms as f64,
        Unit::Milliseconds,
    );
}
