//! The worker Lambda, on `SqsEvent`: each record's body is parsed on its own, so a bad body fails
//! that record only. Transient failures are returned as batch item failures; note that Lambda
//! ignores them unless the event source mapping has `ReportBatchItemFailures` on, and then
//! retries the whole batch. `main` is wiring only.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use recovery::domain::metrics::{Metrics, names};
use recovery::flows::work::{Disposition, Incoming};
use tokio::time::Instant;
use tracing::error;

/// The worker's wiring, built once per process by `main`.
pub use recovery::app::WorkerApp as App;

/// The records of an SQS event as messages to work.
pub fn incoming(event: &SqsEvent) -> Vec<Incoming> {
    event
        .records
        .iter()
        .map(|r| Incoming {
            message_id: r.message_id.clone().unwrap_or_default(),
            receipt_handle: r.receipt_handle.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            attributes: r
                .message_attributes
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.string_value.clone()?)))
                .collect(),
        })
        .collect()
}

/// The batch response: the ids of the records to retry, and only those. A record to retry that
/// has no id cannot be named, so the whole batch is failed instead (nothing is dropped).
pub fn batch_response(
    messages: &[Incoming],
    dispositions: &[Disposition],
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut response = SqsBatchResponse::default();
    for (m, d) in messages.iter().zip(dispositions) {
        if d.is_batch_item_failure() {
            if m.message_id.is_empty() {
                return Err("a record to retry has no messageId; failing the whole batch so that SQS retries it".into());
            }
            response.add_failure(m.message_id.clone());
        }
    }
    Ok(response)
}

/// The invocation's deadline as a monotonic instant. AWS sends `Lambda-Runtime-Deadline-Ms` as
/// epoch milliseconds; cargo-lambda's local runtime sends the timeout itself (e.g. `600000`),
/// which is taken as time left rather than as a deadline in 1970 that would fail every message.
pub fn deadline_of(deadline_ms: u64) -> Option<Instant> {
    Instant::now().checked_add(recovery::domain::time::invocation_time_left(deadline_ms)?)
}

/// The Lambda handler.
pub async fn handle(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut metrics = Metrics::new("worker");
    if app.cold_start() {
        metrics.count(names::COLD_START, 1);
    }
    let messages = incoming(&event.payload);
    // One event source mapping per queue, so every record of a batch comes from one queue.
    let queue_arn = event
        .payload
        .records
        .first()
        .and_then(|r| r.event_source_arn.as_deref());
    let dispositions = app
        .worker_for(queue_arn)
        .work_batch(&messages, deadline_of(event.context.deadline), &mut metrics)
        .await;
    metrics.flush();
    let response = batch_response(&messages, &dispositions);
    if let Err(e) = &response {
        error!(error.message = %e, "batch failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use recovery::domain::report::OutcomeStatus;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    fn msg(id: &str) -> Incoming {
        Incoming {
            message_id: id.into(),
            receipt_handle: "r".into(),
            body: "{}".into(),
            receive_count: 1,
            attributes: Default::default(),
        }
    }

    #[test]
    fn the_batch_response_names_only_the_records_to_retry() {
        let messages = [msg("a"), msg("b"), msg("c"), msg("d")];
        let dispositions = [
            Disposition::Done(OutcomeStatus::Recovered),
            Disposition::Retry("verint 503".into()),
            Disposition::DeadLettered("rejected".into()),
            Disposition::Retry("timeout".into()),
        ];
        let response = batch_response(&messages, &dispositions).expect("named");
        let ids: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["b", "d"]);
    }

    #[test]
    fn a_record_to_retry_without_an_id_fails_the_whole_batch_instead_of_an_empty_id() {
        let messages = [msg(""), msg("b")];
        let dispositions = [
            Disposition::Retry("x".into()),
            Disposition::Done(OutcomeStatus::Recovered),
        ];
        assert!(batch_response(&messages, &dispositions).is_err());
        let ok = [
            Disposition::Done(OutcomeStatus::Recovered),
            Disposition::Done(OutcomeStatus::AlreadyPresent),
        ];
        assert!(
            batch_response(&messages, &ok)
                .expect("nothing to retry")
                .batch_item_failures
                .is_empty()
        );
    }

    #[test]
    fn the_deadline_is_read_as_epoch_milliseconds_or_as_time_left() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let left = |d: Option<Instant>| {
            d.expect("a deadline")
                .saturating_duration_since(Instant::now())
                .as_secs()
        };
        assert!((58..=60).contains(&left(deadline_of(now_ms + 60_000))));
        assert!((598..=600).contains(&left(deadline_of(600_000))));
        assert_eq!(left(deadline_of(now_ms - 1_000)), 0);
        assert!(deadline_of(0).is_none());
        assert!(
            deadline_of(u64::MAX).is_none(),
            "an absurd deadline is no deadline, not a panic"
        );
    }

    #[test]
    fn records_are_read_with_their_receive_count() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"messageId": "m1", "receiptHandle": "h1", "body": "{\"v\":1}", "attributes": {"ApproximateReceiveCount": "3"},
             "messageAttributes": {"restore_since": {"stringValue": "2026-12-01T00:00:00Z", "stringListValues": [], "binaryListValues": [], "dataType": "String"}},
             "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-2:1:q", "awsRegion": "eu-west-2"}
        ]}))
        .expect("valid event");
        let m = incoming(&event);
        assert_eq!(
            (
                m[0].message_id.as_str(),
                m[0].receive_count,
                m[0].body.as_str()
            ),
            ("m1", 3, "{\"v\":1}")
        );
        assert_eq!(
            m[0].attributes.get("restore_since").map(String::as_str),
            Some("2026-12-01T00:00:00Z"),
            "a restore's wait travels in the message's attributes"
        );
    }
}
