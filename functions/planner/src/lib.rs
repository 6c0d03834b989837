//! The planner Lambda: an EventBridge scheduled event runs an automatic run, a `{start, end}`
//! payload a manual one (DESIGN §4). The handler returns the run report; `main` is wiring only.

use std::time::{Duration, Instant};

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use recovery::app::report_metrics;
use recovery::error::error_chain;
use recovery::metrics::{Metrics, names};
use recovery::plan::{PlanError, parse_event};
use recovery::report::RunReport;

/// The planner's wiring, built once per process by `main`.
pub use recovery::app::PlannerApp as App;

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
    if app.cold_start() {
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
