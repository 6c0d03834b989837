//! The work queue and its dead-letter queue in SQS: batched sends that retry the entries SQS
//! rejects, dead-lettering with a reason, depths, and a redrive that never deletes a message
//! before its copy was sent.

use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use futures::StreamExt as _;
use tracing::warn;

use crate::domain::message::WorkMessage;
use crate::ports::queue::Depth;
use crate::ports::queue::MessageQueue;
use crate::ports::queue::QueueError;
use crate::ports::queue::Received;
use crate::ports::queue::Sent;
use crate::ports::queue::WorkQueue;

/// SQS takes at most ten entries per `SendMessageBatch`.
pub(crate) const SQS_BATCH: usize = 10;
const SEND_ATTEMPTS: usize = 5;
/// `SendMessageBatch` calls in flight at once.
pub(crate) const SEND_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

fn sqs_err<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> QueueError {
    move |e| QueueError::Sqs {
        what,
        source: Box::new(e),
    }
}

impl SqsQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        SqsQueue {
            sqs,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends raw bodies in batches of ten, retrying the entries SQS fails (unless it blames the
    /// sender). Each body may carry a `failure_reason` attribute. An entry SQS blames on the
    /// sender is an error.
    pub async fn send_bodies(
        &self,
        bodies: &[(String, Option<String>)],
    ) -> Result<u64, QueueError> {
        let sent = self.send_bodies_each(bodies).await?;
        match sent.rejected.first() {
            None => Ok(sent.accepted),
            Some((_, reason)) => Err(QueueError::Rejected {
                count: sent.rejected.len(),
                reason: reason.clone(),
            }),
        }
    }

    /// As [`SqsQueue::send_bodies`], but an entry SQS blames on the sender is reported in
    /// [`Sent::rejected`] and the others are still sent.
    pub async fn send_bodies_each(
        &self,
        bodies: &[(String, Option<String>)],
    ) -> Result<Sent, QueueError> {
        // SendMessageBatch takes 10 messages; a round trip is tens of milliseconds, so a
        // million messages one batch at a time would take hours. Batches go out
        // SEND_CONCURRENCY at a time (SQS has no per-queue send limit for standard queues).
        let batches: Vec<_> = bodies
            .chunks(SQS_BATCH)
            .enumerate()
            .map(|(n, chunk)| self.send_batch(n * SQS_BATCH, chunk))
            .collect();
        let mut batches = futures::stream::iter(batches).buffer_unordered(SEND_CONCURRENCY);
        let mut sent = Sent::default();
        let mut failed = None;
        while let Some(batch) = batches.next().await {
            match batch {
                Ok(batch) => {
                    sent.accepted += batch.accepted;
                    sent.rejected.extend(batch.rejected);
                }
                // The other batches in flight finish first: what they queued stays queued.
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        sent.rejected.sort_unstable_by_key(|r| r.0);
        match failed {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// One `SendMessageBatch` of at most 10 bodies (the first at index `first`), its entries that
    /// failed on SQS's side retried up to [`SEND_ATTEMPTS`] times.
    async fn send_batch(
        &self,
        first: usize,
        chunk: &[(String, Option<String>)],
    ) -> Result<Sent, QueueError> {
        let mut sent = Sent::default();
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut last_reason = String::new();
        for attempt in 0..SEND_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|&i| {
                    let (body, reason) = &chunk[i];
                    let mut e = SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(body);
                    if let Some(reason) = reason {
                        e = e.message_attributes("failure_reason", reason_attribute(reason)?);
                    }
                    e.build().map_err(sqs_err("build batch entry"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = match self
                .sqs
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let e = e.into_service_error();
                    last_reason = e.to_string();
                    warn!(error.message = %e, attempt, "send_message_batch failed");
                    continue;
                }
            };
            sent.accepted += out.successful.len() as u64;
            let mut retry = Vec::new();
            for f in out.failed {
                let i: usize = f.id.trim_start_matches('m').parse().unwrap_or(usize::MAX);
                last_reason = format!("{}: {}", f.code, f.message.unwrap_or_default());
                if i >= chunk.len() {
                    continue;
                }
                if f.sender_fault {
                    warn!(reason = %last_reason, "sqs rejected an entry as the sender's fault");
                    sent.rejected.push((first + i, last_reason.clone()));
                } else {
                    retry.push(i);
                }
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err(QueueError::Rejected {
                count: pending.len(),
                reason: format!("{last_reason} (after {SEND_ATTEMPTS} attempts)"),
            });
        }
        Ok(sent)
    }

    /// Sends one message that becomes visible only after `delay` (at most SQS's 15 minutes).
    pub async fn send_delayed(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(&str, String)],
    ) -> Result<(), QueueError> {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay.as_secs().min(900) as i32);
        for (name, value) in attributes {
            let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| QueueError::Sqs {
                    what: "send_message",
                    source: Box::new(e),
                })?;
            send = send.message_attributes(*name, attribute);
        }
        send.send()
            .await
            .map_err(|e| sqs_err("send_message")(e.into_service_error()))?;
        Ok(())
    }

    /// Sends one message with its `failure_reason` (used for the dead-letter queue).
    pub async fn send_with_reason(&self, body: &str, reason: &str) -> Result<(), QueueError> {
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("failure_reason", reason_attribute(reason)?)
            .send()
            .await
            .map_err(|e| sqs_err("send_message")(e.into_service_error()))?;
        Ok(())
    }

    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sqs_err("delete_message")(e.into_service_error()))?;
        Ok(())
    }

    /// Makes a received message visible again after `delay` (`ChangeMessageVisibility`, whole
    /// seconds, rounded up): how a transient failure waits its retry delay rather than the
    /// queue's whole visibility timeout.
    pub async fn change_visibility(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs.min(12 * 3600) as i32)
            .send()
            .await
            .map_err(|e| sqs_err("change_message_visibility")(e.into_service_error()))?;
        Ok(())
    }

    /// Receives up to ten messages, long-polling `wait`.
    pub async fn receive(
        &self,
        max: i32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<Received>, QueueError> {
        let mut request = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All");
        if let Some(v) = visibility {
            request = request.visibility_timeout(v.as_secs() as i32);
        }
        let out = request
            .send()
            .await
            .map_err(|e| sqs_err("receive_message")(e.into_service_error()))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let system = m.attributes.unwrap_or_default();
                let receive_count = system
                    .get(&MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let attributes = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                    .collect();
                Received {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    receive_count,
                    attributes,
                    sent_at_ms: system
                        .get(&MessageSystemAttributeName::SentTimestamp)
                        .and_then(|v| v.parse().ok()),
                }
            })
            .collect())
    }

    pub async fn depth(&self) -> Result<Depth, QueueError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sqs_err("get_queue_attributes")(e.into_service_error()))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |n: QueueAttributeName| attrs.get(&n).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Depth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }
}

fn reason_attribute(reason: &str) -> Result<MessageAttributeValue, QueueError> {
    // SQS attribute values must be non-empty.
    let reason: String = if reason.is_empty() {
        "unknown".into()
    } else {
        reason.chars().take(1000).collect()
    };
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(reason)
        .build()
        .map_err(sqs_err("build message attribute"))
}

impl WorkQueue for SqsQueue {
    async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
        let bodies = messages
            .iter()
            .map(|m| serde_json::to_string(m).map(|b| (b, None)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(QueueError::Json)?;
        self.send_bodies_each(&bodies).await
    }
}

/// The work queue and its dead-letter queue in SQS.
#[derive(Debug, Clone)]
pub struct SqsMessages {
    pub work: SqsQueue,
    pub dead_letter: SqsQueue,
}

impl MessageQueue for SqsMessages {
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.work.delete(receipt_handle).await
    }

    async fn retry_in(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.work.change_visibility(receipt_handle, delay).await
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError> {
        self.dead_letter.send_with_reason(body, reason).await
    }

    async fn requeue(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(&str, String)],
    ) -> Result<(), QueueError> {
        self.work.send_delayed(body, delay, attributes).await
    }
}
