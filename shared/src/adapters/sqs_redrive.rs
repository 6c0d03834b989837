//! The redrive's two queues in SQS: the move-task API, and what the fallback receives, sends
//! and deletes (flows::redrive holds the rules).

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::adapters::sqs::SqsQueue;
use crate::ports::queue::{
    FALLBACK_VISIBILITY, Lane, MoveTask, MoveTaskError, QueueError, Received, RedriveQueues,
};
use std::time::Duration;

/// The DLQ and the work queue in SQS.
#[derive(Debug, Clone)]
pub struct SqsRedrive {
    sqs: aws_sdk_sqs::Client,
    dead_letter_queue: SqsQueue,
    work_url: String,
    /// The backfills' own work queue, when they have one (design §4.8).
    backfill_url: Option<String>,
    dead_letter_arn: String,
    work_arn: String,
}

impl SqsRedrive {
    /// Reads both queues' ARNs.
    pub async fn new(
        sqs: aws_sdk_sqs::Client,
        dead_letter_url: &str,
        work_url: &str,
    ) -> Result<Self, QueueError> {
        let dead_letter_arn = queue_arn(&sqs, dead_letter_url).await?;
        let work_arn = queue_arn(&sqs, work_url).await?;
        Ok(SqsRedrive {
            dead_letter_queue: SqsQueue::new(sqs.clone(), dead_letter_url),
            sqs,
            work_url: work_url.to_owned(),
            backfill_url: None,
            dead_letter_arn,
            work_arn,
        })
    }
}

impl SqsRedrive {
    /// Dead letters of backfill slices go back to `backfill_url` (when it is not the work queue).
    pub fn with_backfill_lane(mut self, backfill_url: Option<&str>) -> Self {
        self.backfill_url = backfill_url
            .filter(|u| *u != self.work_url)
            .map(str::to_owned);
        self
    }
}

fn sqs_err(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError::Sqs {
        what,
        source: Box::new(e),
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, QueueError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_err("get_queue_attributes", e.into_service_error()))?;
    out.attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or_else(|| QueueError::Rejected {
            count: 0,
            reason: format!("{url} has no QueueArn"),
        })
}

/// Error codes that say the operation does not exist at this endpoint.
const UNSUPPORTED_CODES: [&str; 5] = [
    "UnsupportedOperation",
    "InvalidAction",
    "UnknownOperationException",
    "UnknownOperation",
    "NotImplemented",
];
const DENIED_CODES: [&str; 3] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];

/// What a move-task call's failure allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unsupported,
    Denied,
    Failed,
}

/// Classifies a move-task call's failure from its error code, message and HTTP status. A 500 or
/// 501 with no AWS error code at all is an endpoint that does not know the operation (moto answers
/// an HTML "Internal Server Error" for it); a real SQS 500 carries `InternalError` and is not.
/// SQS answers a second task on a queue with `UnsupportedOperation` too ("There is already a task
/// running"): that one is never a reason to fall back.
fn kind_of(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> Kind {
    // Query-protocol codes may carry a prefix (`AWS.SimpleQueueService.UnsupportedOperation`).
    let bare = code.map(|c| c.rsplit('.').next().unwrap_or(c));
    let is = |list: &[&str]| bare.is_some_and(|c| list.iter().any(|l| l.eq_ignore_ascii_case(c)));
    let busy = message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("already") || m.contains("running") || m.contains("active task")
    });
    if is(&DENIED_CODES) {
        Kind::Denied
    } else if is(&UNSUPPORTED_CODES) && !busy {
        Kind::Unsupported
    } else if code.is_none() && status == Some(403) {
        Kind::Denied
    } else if code.is_none() && matches!(status, Some(404 | 500 | 501)) {
        Kind::Unsupported
    } else {
        Kind::Failed
    }
}

fn classify<E>(what: &'static str, e: SdkError<E, HttpResponse>) -> MoveTaskError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().map(str::to_owned);
    let kind = kind_of(code.as_deref(), e.message(), status);
    let what = match (&code, status) {
        (Some(c), Some(s)) => format!("{what}: {c}, http {s}"),
        (Some(c), None) => format!("{what}: {c}"),
        (None, Some(s)) => format!("{what}: http {s}"),
        (None, None) => what.to_owned(),
    };
    let source: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match kind {
        Kind::Unsupported => MoveTaskError::Unsupported { what, source },
        Kind::Denied => MoveTaskError::Denied { what, source },
        Kind::Failed => MoveTaskError::Failed { what, source },
    }
}

/// No SDK retries on the move-task calls: an emulator's 500 would be retried three times for
/// nothing, and a real failure is the operator's to retry.
fn no_retries() -> aws_sdk_sqs::config::Builder {
    aws_sdk_sqs::config::Builder::default()
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
}

impl RedriveQueues for SqsRedrive {
    async fn move_tasks(&self) -> Result<Vec<MoveTask>, MoveTaskError> {
        let out = self
            .sqs
            .list_message_move_tasks()
            .source_arn(&self.dead_letter_arn)
            .max_results(10)
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| classify("ListMessageMoveTasks", e))?;
        Ok(out
            .results
            .unwrap_or_default()
            .into_iter()
            .map(|t| MoveTask {
                status: t.status.unwrap_or_default(),
                task_handle: t.task_handle,
                destination_arn: t.destination_arn,
                moved: t.approximate_number_of_messages_moved,
                to_move: t.approximate_number_of_messages_to_move,
                started_at_ms: t.started_timestamp,
            })
            .collect())
    }

    async fn start_move_task(&self) -> Result<Option<String>, MoveTaskError> {
        let out = self
            .sqs
            .start_message_move_task()
            .source_arn(&self.dead_letter_arn)
            .destination_arn(&self.work_arn)
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| classify("StartMessageMoveTask", e))?;
        Ok(out.task_handle)
    }

    async fn dead_letter_depth(&self) -> Result<u64, QueueError> {
        Ok(self.dead_letter_queue.depth().await?.visible)
    }

    async fn receive_dead_letters(&self, max: u32) -> Result<Vec<Received>, QueueError> {
        self.dead_letter_queue
            .receive(
                max as i32,
                Duration::from_secs(1),
                Some(FALLBACK_VISIBILITY),
            )
            .await
    }

    fn has_backfill_lane(&self) -> bool {
        self.backfill_url.is_some()
    }

    async fn release_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.dead_letter_queue
            .change_visibility(receipt_handle, Duration::ZERO)
            .await
    }

    async fn send_to(&self, lane: Lane, body: &str) -> Result<String, QueueError> {
        let url = match (lane, &self.backfill_url) {
            (Lane::Backfill, Some(url)) => url,
            _ => &self.work_url,
        };
        let out = self
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sqs_err("send_message", e.into_service_error()))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn delete_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.dead_letter_queue.delete(receipt_handle).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unknown_operation_or_a_denial_allows_the_fallback() {
        let cases = [
            // moto: an HTML 500 without an AWS error code.
            ((None, None, Some(500)), Kind::Unsupported),
            (
                (Some("UnknownOperationException"), None, Some(400)),
                Kind::Unsupported,
            ),
            (
                (
                    Some("AWS.SimpleQueueService.UnsupportedOperation"),
                    Some("Unsupported operation."),
                    Some(400),
                ),
                Kind::Unsupported,
            ),
            (
                (
                    Some("UnsupportedOperation"),
                    Some(
                        "There is already a task running. Only one active task is allowed for each source queue arn at a given time.",
                    ),
                    Some(400),
                ),
                Kind::Failed,
            ),
            ((Some("AccessDenied"), None, Some(403)), Kind::Denied),
            (
                (Some("AccessDeniedException"), None, Some(400)),
                Kind::Denied,
            ),
            ((None, None, Some(403)), Kind::Denied),
            ((Some("InternalError"), None, Some(500)), Kind::Failed),
            ((Some("RequestThrottled"), None, Some(400)), Kind::Failed),
            (
                (Some("ResourceNotFoundException"), None, Some(400)),
                Kind::Failed,
            ),
            ((None, None, None), Kind::Failed),
        ];
        for ((code, message, status), want) in cases {
            assert_eq!(
                kind_of(code, message, status),
                want,
                "{code:?} {message:?} {status:?}"
            );
        }
    }
}
