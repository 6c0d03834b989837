//! The planner Lambda: an EventBridge scheduled event runs an automatic run, a `{start, end}`
//! payload a manual one (DESIGN §4). The handler returns the run report; `main` is wiring only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use recovery::Config;
use recovery::aws::{Clients, StartError};
use recovery::connect::ConnectContacts;
use recovery::error::error_chain;
use recovery::metrics::{Metrics, Unit, names};
use recovery::orphans::RecordingOrphans;
use recovery::plan::{PlanError, Planner, Request, parse_event};
use recovery::queue::SqsQueue;
use recovery::report::RunReport;
use recovery::source::S3CtrSource;
use recovery::state::S3State;
use recovery::verint::VerintClient;

/// CTR objects read at once: S3 latency dominates, parsing uses every core.
pub const READ_CONCURRENCY: usize = 8;

/// What an invocation keeps, after it stops reading hours, to ask DAS, queue the missing calls,
/// move the checkpoint and write the report.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(120);

/// When a run stops reading hours: the invocation's deadline less [`DEADLINE_MARGIN`], as an
/// instant of this process's clock. AWS sends `Lambda-Runtime-Deadline-Ms` as epoch
/// milliseconds; cargo-lambda's local runtime sends the timeout itself (e.g. `600000`), taken as
/// time left (as the worker does). `None` without a deadline (0, as in a hand-built context) or
/// with one more than a day away.
pub fn reading_deadline(deadline_ms: u64) -> Option<Instant> {
    let left = recovery::time::invocation_time_left(deadline_ms)?;
    Instant::now().checked_add(left.saturating_sub(DEADLINE_MARGIN))
}

/// Everything the planner builds once per process.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub source: S3CtrSource,
    pub verint: VerintClient,
    pub queue: SqsQueue,
    pub store: S3State,
    /// Set when `RECORDINGS_BUCKET` is: manual runs look for orphan recordings (DESIGN §9).
    pub orphans: Option<RecordingOrphans>,
    cold: AtomicBool,
}

impl App {
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
        Ok(App {
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
        let planner = Planner {
            config: &self.config,
            source: &self.source,
            verint: &self.verint,
            queue: &self.queue,
            store: &self.store,
            concurrency: READ_CONCURRENCY,
            progress,
            orphans: self
                .orphans
                .as_ref()
                .map(|o| o as &dyn recovery::orphans::OrphanLookup),
            deadline,
        };
        planner.run(request, Utc::now()).await
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
    if report.mode == recovery::report::Mode::Automatic && !report.dry_run {
        metrics.count(names::AUTOMATIC_RUN_SUCCEEDED, 1);
    }
    metrics.add(
        names::RUN_DURATION_MS,
        report.duration_ms as f64,
        Unit::Milliseconds,
    );
}

/// The error a caller of the function sees: `InvalidRequest` for a payload rejected before any
/// work, `RunFailed` when a source could not be reached; the message carries the whole chain.
pub fn diagnostic(e: &PlanError) -> Diagnostic {
    let error_type = match e {
        PlanError::Invalid(_) => "InvalidRequest",
        _ => "RunFailed",
    };
    Diagnostic {
        error_type: error_type.into(),
        error_message: error_chain(e),
    }
}

/// The Lambda handler. An invalid event is rejected before any work, with the reason.
pub async fn handle(
    app: &App,
    event: LambdaEvent<serde_json::Value>,
) -> Result<RunReport, Diagnostic> {
    let mut metrics = Metrics::new("planner");
    if app.cold.swap(false, Ordering::Relaxed) {
        metrics.count(names::COLD_START, 1);
    }
    let result = async {
        let request = parse_event(&event.payload, &app.config, Utc::now())?;
        let deadline = reading_deadline(event.context.deadline);
        app.run_until(request, deadline, &|_, _| {}).await
    }
    .await;
    match result {
        Ok(report) => {
            report_metrics(&report, &mut metrics);
            metrics.flush();
            Ok(report)
        }
        Err(e) => {
            metrics.flush();
            Err(diagnostic(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn reading_stops_a_margin_before_the_invocations_deadline() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let left = |d: Option<Instant>| {
            d.expect("a deadline")
                .saturating_duration_since(Instant::now())
                .as_secs()
        };
        assert!((778..=780).contains(&left(reading_deadline(now_ms + 900_000))));
        assert!((478..=480).contains(&left(reading_deadline(600_000))));
        assert_eq!(
            left(reading_deadline(now_ms + 60_000)),
            0,
            "inside the margin"
        );
        assert!(reading_deadline(0).is_none());
        assert!(reading_deadline(u64::MAX).is_none());
    }
}
