//! The planner Lambda: an EventBridge scheduled event runs an automatic run, a `{start, end}`
//! payload a manual one (design §4), a window over 24 hours a backfill and a planning-queue
//! record one of its slices (design §4.8). `main` is wiring only.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent};
use recovery::app::report_metrics;
use recovery::domain::error::error_chain;
use recovery::domain::metrics::{Metrics, names};
use recovery::flows::backfill::{SliceMessage, is_backfill};
use recovery::flows::plan::{Deadlines, PlanError, Request, parse_event};

/// The planner's wiring, built once per process by `main`.
pub use recovery::app::PlannerApp as App;

/// How soon a slice the deadline stopped mid-queueing is received again to continue.
pub const UNFINISHED_SLICE_DELAY: Duration = Duration::from_secs(10);

/// When a run stops reading hours and when it stops its look-ups and queueing
/// ([`Deadlines::of_invocation`]), as instants of this process's clock. AWS sends
/// `Lambda-Runtime-Deadline-Ms` as epoch milliseconds; cargo-lambda's local runtime sends the
/// timeout itself (e.g. `600000`), taken as time left (as the worker does). `None` without a
/// deadline (0, as in a hand-built context) or with one more than a day away.
pub fn deadlines(deadline_ms: u64) -> Option<Deadlines> {
    let left = recovery::domain::time::invocation_time_left(deadline_ms)?;
    Some(Deadlines::of_invocation(Instant::now().checked_add(left)?))
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

/// The Lambda handler. Three kinds of event arrive:
/// - an EventBridge scheduled event: an automatic run, answered with its report's summary (the
///   counts, `run_id`, `status` and `report_key`, never the id lists: design §5);
/// - a manual payload: a manual run answered with its summary, or, for a window over 24 hours, a
///   backfill (design §4.8) answered with its parent run and slices, once they are queued;
/// - an SQS event from the planning queue: one slice of a backfill per record, answered with the
///   records to retry (a slice that failed, or a body that is not a slice message).
///
/// An invalid event is rejected before any work, with the reason.
pub async fn handle(
    app: &App,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Diagnostic> {
    let mut metrics = Metrics::new("planner");
    if app.cold_start() {
        metrics.count(names::COLD_START, 1);
    }
    let deadlines = deadlines(event.context.deadline);
    let answer = match slices_of(&event.payload) {
        Some(slices) => to_json(&plan_slices(app, slices, deadlines, &mut metrics).await),
        None => plan(app, &event.payload, deadlines, &mut metrics).await,
    };
    metrics.flush();
    answer
}

/// A manual or automatic run, or the start of a backfill.
async fn plan(
    app: &App,
    payload: &serde_json::Value,
    deadlines: Option<Deadlines>,
    metrics: &mut Metrics,
) -> Result<serde_json::Value, Diagnostic> {
    let request = parse_event(payload, &app.config, Utc::now()).map_err(|e| diagnostic(&e))?;
    if let Request::Manual { window, dry_run } = request
        && is_backfill(&window)
    {
        let started = app
            .start_backfill(window, dry_run)
            .await
            .map_err(|e| diagnostic(&e))?;
        return to_json(&started.started());
    }
    let report = match app.run_until(request, deadlines, &|_, _| {}).await {
        Ok(report) => report,
        Err(e) => {
            if let PlanError::Unfinished {
                automatic_ctr_records: Some(records),
                ..
            } = e
            {
                metrics.count(names::AUTOMATIC_CTR_RECORDS, records);
            }
            return Err(diagnostic(&e));
        }
    };
    report_metrics(&report, metrics);
    Ok(report.summary(&app.store.report_key(&report.run_id)))
}

/// The planning queue's records, when the event is an SQS event.
fn slices_of(payload: &serde_json::Value) -> Option<SqsEvent> {
    let records = payload.get("Records")?.as_array()?;
    let from_sqs = records
        .iter()
        .all(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs"));
    if !from_sqs || records.is_empty() {
        return None;
    }
    serde_json::from_value(payload.clone()).ok()
}

/// Plans each slice of the batch (one, as the template sets it) and names the ones to retry.
async fn plan_slices(
    app: &App,
    event: SqsEvent,
    deadlines: Option<Deadlines>,
    metrics: &mut Metrics,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        match wait_for_the_lane(app, &record).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(message_id = %id, error.message = %error_chain(&e), "backfill pacing failed; SQS will retry the slice");
                response.add_failure(id);
                continue;
            }
        }
        let result = match SliceMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(message) => app.run_slice(&message, deadlines).await,
            Err(why) => Err(PlanError::Invalid(format!("message {id}: {why}"))),
        };
        match result {
            Ok(report) => report_metrics(&report, metrics),
            Err(e @ PlanError::Unfinished { .. }) => {
                // The deadline stopped the slice mid-queueing; what it queued is recorded. It is
                // sent again to continue 10 s later as a new message, so that however many
                // attempts a large day takes, it never uses up the planning queue's receives.
                tracing::warn!(message_id = %id, error.message = %error_chain(&e), "slice unfinished; continued by a new message");
                let body = record.body.as_deref().unwrap_or_default();
                let sent = match &app.planning_queue {
                    Some(queue) => queue
                        .send_delayed(body, UNFINISHED_SLICE_DELAY, &[])
                        .await
                        .is_ok(),
                    None => false,
                };
                if !sent {
                    response.add_failure(id);
                }
            }
            Err(e) => {
                tracing::error!(message_id = %id, error.message = %error_chain(&e), "slice failed; SQS will retry it");
                response.add_failure(id);
            }
        }
    }
    response
}

/// How long a slice waits when the backfill queue is full (SQS's longest message delay).
pub const SLICE_PACING_DELAY: Duration = Duration::from_secs(900);

/// Backfill pacing (design §4.8): while the backfill queue holds `BACKFILL_MAX_QUEUED` messages
/// or more, the slice is sent again with a 15-minute delay and this copy is done (`true`), so
/// that waiting never uses up the planning queue's receives (a release would count toward
/// its `maxReceiveCount` and end in its dead-letter queue).
async fn wait_for_the_lane(
    app: &App,
    record: &aws_lambda_events::event::sqs::SqsMessage,
) -> Result<bool, PlanError> {
    let (Some((queued, bound)), Some(planning)) =
        (app.slice_must_wait().await?, &app.planning_queue)
    else {
        return Ok(false);
    };
    let body = record.body.as_deref().unwrap_or_default();
    planning.send_delayed(body, SLICE_PACING_DELAY, &[]).await?;
    tracing::info!(
        message_id = record.message_id.as_deref().unwrap_or_default(),
        queued,
        bound,
        "backfill queue full: the slice waits 15 minutes"
    );
    Ok(true)
}

fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value, Diagnostic> {
    serde_json::to_value(value).map_err(|e| Diagnostic {
        error_type: "RunFailed".into(),
        error_message: format!("the answer could not be serialised: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn a_run_stops_reading_120_s_and_queueing_20_s_before_the_invocations_deadline() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let left = |d: Instant| d.saturating_duration_since(Instant::now()).as_secs();
        let lambda = deadlines(now_ms + 900_000).expect("a deadline");
        assert!((778..=780).contains(&left(lambda.reading)));
        assert!((878..=880).contains(&left(lambda.finish_by)));
        let local = deadlines(600_000).expect("a deadline");
        assert!((478..=480).contains(&left(local.reading)));
        assert!((578..=580).contains(&left(local.finish_by)));
        // A minute's invocation: no time to read, 40 s to queue (not 100 s past the reading
        // deadline, which would be past the invocation's end).
        let short = deadlines(now_ms + 60_000).expect("a deadline");
        assert_eq!(left(short.reading), 0, "inside the margin");
        assert!((38..=40).contains(&left(short.finish_by)));
        assert!(deadlines(0).is_none());
        assert!(deadlines(u64::MAX).is_none());
    }
}
