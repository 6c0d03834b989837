//! Working one message (DESIGN §5, §6): re-check Verint, describe the contact in Connect, stream
//! its recordings from S3 into Verint's ingest endpoint, record the outcome. Shared by the worker
//! Lambda and `recoveryctl work`.

use std::time::Duration;

use aws_sdk_connect::types::Contact;
use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tokio_util::io::ReaderStream;
use tracing::{Instrument, error, info, info_span, warn};

use crate::connect::{ConnectContacts, ConnectError};
use crate::matching::S3Location;
use crate::message::WorkMessage;
use crate::metrics::{Metrics, Unit, names};
use crate::plan::{CONNECT_RETENTION, error_chain};
use crate::queue::{QueueError, Received, SqsQueue};
use crate::report::{Outcome, OutcomeStatus};
use crate::state::S3State;
use crate::time::{format_ts, parse_ts};
use crate::verint::ingest::{
    Agent, AudioPart, Endpoint, Ingested, Metadata, Queue, RecordingMeta, Recovery,
};
use crate::verint::{RetryPolicy, VerintClient, VerintError};

/// Screens are cached by Verint for this long after a call ends.
pub const SCREEN_CACHE: TimeDelta = TimeDelta::hours(2);
/// No transfer starts with less time than this left in the invocation.
pub const MIN_TIME_LEFT: Duration = Duration::from_secs(15);
/// The slowest transfer rate planned for when deciding whether a transfer fits the time left.
pub const PLANNING_RATE_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;

/// One message as received, from a Lambda SQS event or from `ReceiveMessage`.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// SQS's `ApproximateReceiveCount`.
    pub receive_count: u32,
}

impl From<&Received> for Incoming {
    fn from(r: &Received) -> Self {
        Incoming {
            message_id: r.message_id.clone(),
            receipt_handle: r.receipt_handle.clone(),
            body: r.body.clone(),
            receive_count: r.receive_count,
        }
    }
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Recovered or already present: delete it.
    Done(OutcomeStatus),
    /// Transient: leave it for SQS to retry (a batch item failure).
    Retry(String),
    /// Permanent: it was sent to the dead-letter queue with its reason and removed.
    DeadLettered(String),
}

impl Disposition {
    pub fn is_batch_item_failure(&self) -> bool {
        matches!(self, Disposition::Retry(_))
    }
}

/// Why a message failed, with its kind for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub permanent: bool,
    /// Low-cardinality category: the metric's `Reason` dimension.
    pub kind: &'static str,
    /// What an operator reads in the outcome and in `failure_reason`.
    pub reason: String,
}

impl Failure {
    fn permanent(kind: &'static str, reason: impl Into<String>) -> Self {
        Failure {
            permanent: true,
            kind,
            reason: reason.into(),
        }
    }

    fn transient(kind: &'static str, reason: impl Into<String>) -> Self {
        Failure {
            permanent: false,
            kind,
            reason: reason.into(),
        }
    }

    fn from_verint(e: &VerintError) -> Self {
        if e.is_transient() {
            Failure::transient("verint_unavailable", e.reason())
        } else {
            Failure::permanent("verint_rejected", e.reason())
        }
    }

    fn from_connect(e: &ConnectError) -> Self {
        match e {
            ConnectError::NotFound => Failure::permanent(
                "connect_unknown_contact",
                "the contact is unknown to Amazon Connect",
            ),
            ConnectError::Throttled(_) => Failure::transient(
                "connect_throttled",
                "amazon connect throttled DescribeContact",
            ),
            ConnectError::Other(_) => Failure::transient("connect_unavailable", error_chain(e)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("recording s3://{bucket}/{key} is gone (NoSuchKey)")]
    Gone { bucket: String, key: String },
    #[error("recording s3://{bucket}/{key} could not be read")]
    Unreadable {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A recording about to be streamed: its size and ETag from `HeadObject`. The `GetObject` starts
/// only when its part is reached, so a second recording's connection never sits idle while the
/// first one streams; `If-Match` pins the bytes to the size declared in `Content-Length`.
#[derive(Debug)]
pub struct OpenRecording {
    pub location: S3Location,
    pub len: u64,
    etag: Option<String>,
    s3: aws_sdk_s3::Client,
}

/// `HeadObject` on a recording: a missing object is [`RecordingError::Gone`].
pub async fn open_recording(
    s3: &aws_sdk_s3::Client,
    location: &S3Location,
) -> Result<OpenRecording, RecordingError> {
    let out = s3
        .head_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let e = e.into_service_error();
            if e.is_not_found() || status == Some(404) {
                RecordingError::Gone {
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                }
            } else {
                RecordingError::Unreadable {
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                    source: Box::new(e),
                }
            }
        })?;
    Ok(OpenRecording {
        location: location.clone(),
        len: out.content_length.unwrap_or(0).max(0) as u64,
        etag: out.e_tag,
        s3: s3.clone(),
    })
}

impl OpenRecording {
    /// The part's body: `GetObject` when first polled, then its bytes in 64 KiB chunks.
    pub fn into_part(self) -> AudioPart {
        let len = self.len;
        let body = stream::once(async move {
            let mut request = self
                .s3
                .get_object()
                .bucket(&self.location.bucket)
                .key(&self.location.key);
            if let Some(etag) = &self.etag {
                request = request.if_match(etag);
            }
            match request.send().await {
                Ok(out) => {
                    ReaderStream::with_capacity(out.body.into_async_read(), 64 * 1024).boxed()
                }
                Err(e) => {
                    let e = std::io::Error::other(format!(
                        "GetObject s3://{}/{} failed: {}",
                        self.location.bucket,
                        self.location.key,
                        e.into_service_error()
                    ));
                    stream::once(futures::future::ready(Err(e))).boxed()
                }
            }
        })
        .flatten()
        .boxed();
        AudioPart { len, body }
    }
}

/// The `metadata` part, from `DescribeContact` (ids as the API gives them) and the message.
pub fn build_metadata(
    contact: &Contact,
    message: &WorkMessage,
    recordings: &[(S3Location, u64)],
    now: DateTime<Utc>,
) -> Metadata {
    let ts = |t: Option<&aws_sdk_connect::primitives::DateTime>| {
        t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .map(format_ts)
    };
    let instance_arn = contact
        .arn()
        .and_then(|arn| {
            arn.split_once("/contact/")
                .map(|(instance, _)| instance.to_owned())
        })
        .unwrap_or_else(|| message.instance_id.clone());
    let disconnect =
        ts(contact.disconnect_timestamp()).unwrap_or_else(|| message.disconnect_timestamp.clone());
    let disconnect_at = parse_ts(&disconnect);
    let endpoint = |e: Option<&aws_sdk_connect::types::EndpointInfo>| {
        e.and_then(|e| {
            Some(Endpoint {
                kind: e
                    .r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                address: e.address()?.to_owned(),
            })
        })
    };
    Metadata {
        amazon_contact_id: contact.id().unwrap_or(&message.contact_id).to_owned(),
        instance_arn,
        channel: contact.channel().map_or("VOICE", |c| c.as_str()).to_owned(),
        initiation_method: contact
            .initiation_method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        initiation_timestamp: ts(contact.initiation_timestamp())
            .unwrap_or_else(|| message.initiation_timestamp.clone()),
        disconnect_timestamp: disconnect,
        agent: contact.agent_info().and_then(|a| {
            Some(Agent {
                id: a.id()?.to_owned(),
                connected_to_agent_timestamp: ts(a.connected_to_agent_timestamp()),
            })
        }),
        queue: contact.queue_info().and_then(|q| {
            Some(Queue {
                id: q.id()?.to_owned(),
                enqueue_timestamp: Some(ts(q.enqueue_timestamp())?),
            })
        }),
        customer_endpoint: endpoint(contact.customer_endpoint()),
        system_endpoint: endpoint(contact.system_endpoint()),
        attributes: contact
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        recordings: recordings
            .iter()
            .map(|(l, bytes)| RecordingMeta {
                bucket: l.bucket.clone(),
                key: l.key.clone(),
                bytes: *bytes,
                content_type: "audio/wav".into(),
            })
            .collect(),
        recovery: Recovery {
            run_id: message.run_id.clone(),
            recovered_at: format_ts(now),
            screens_expected: disconnect_at.is_some_and(|d| now - d < SCREEN_CACHE),
        },
    }
}

/// Everything working a message needs, built once per process.
#[derive(Debug)]
pub struct Worker<'a> {
    pub verint: &'a VerintClient,
    pub connect: &'a ConnectContacts,
    pub s3: &'a aws_sdk_s3::Client,
    pub store: &'a S3State,
    pub work_queue: &'a SqsQueue,
    pub dead_letter_queue: &'a SqsQueue,
    /// Messages worked at once.
    pub concurrency: usize,
    /// The work queue's `maxReceiveCount`, when known: see [`crate::Config::max_receive_count`].
    pub max_receive_count: Option<u32>,
}

/// What working one message did, for metrics.
#[derive(Debug, Default)]
struct Effort {
    bytes: u64,
    transfer: Duration,
}

impl Worker<'_> {
    /// Works a batch with bounded concurrency; returns each message's disposition, in input order.
    pub async fn work_batch(
        &self,
        messages: &[Incoming],
        deadline: Option<Instant>,
        metrics: &mut Metrics,
    ) -> Vec<Disposition> {
        let results: Vec<(usize, Disposition, Option<Failure>, Effort)> =
            stream::iter(messages.iter().enumerate())
                .map(|(i, m)| async move {
                    let (d, f, e) = self.work(m, deadline).await;
                    (i, d, f, e)
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
        let mut out = vec![Disposition::Retry("not worked".into()); messages.len()];
        for (i, disposition, failure, effort) in results {
            match (&disposition, failure) {
                (Disposition::Done(OutcomeStatus::Recovered), _) => {
                    metrics.count(names::RECOVERED, 1)
                }
                (Disposition::Done(_), _) => metrics.count(names::ALREADY_PRESENT, 1),
                (_, Some(f)) => metrics.failed(f.kind),
                (_, None) => metrics.failed("unknown"),
            }
            metrics.add(names::BYTES_STREAMED, effort.bytes as f64, Unit::Bytes);
            metrics.add(
                names::TRANSFER_SECONDS,
                effort.transfer.as_secs_f64(),
                Unit::Seconds,
            );
            out[i] = disposition;
        }
        out
    }

    /// Works messages received from the work queue as the Lambda trigger would: each success is
    /// deleted, a transient failure is left for SQS's visibility timeout, a permanent one was
    /// already moved to the dead-letter queue.
    pub async fn work_received(
        &self,
        received: &[Received],
        metrics: &mut Metrics,
    ) -> Result<Vec<Disposition>, QueueError> {
        let messages: Vec<Incoming> = received.iter().map(Incoming::from).collect();
        let dispositions = self.work_batch(&messages, None, metrics).await;
        for (m, d) in messages.iter().zip(&dispositions) {
            if matches!(d, Disposition::Done(_)) {
                self.work_queue.delete(&m.receipt_handle).await?;
            }
        }
        Ok(dispositions)
    }

    /// Works one message. Never panics, never drops a message: every path ends in success, a
    /// retry, or the dead-letter queue.
    async fn work(
        &self,
        incoming: &Incoming,
        deadline: Option<Instant>,
    ) -> (Disposition, Option<Failure>, Effort) {
        let message = match WorkMessage::parse(&incoming.body) {
            Ok(m) => m,
            Err(e) => {
                let span = info_span!("message", message_id = %incoming.message_id, contact_id = tracing::field::Empty);
                let failure = Failure::permanent(
                    "malformed_message",
                    format!("malformed message: {}", error_chain(&e)),
                );
                let d = self.dead_letter(incoming, &failure).instrument(span).await;
                return (d, Some(failure), Effort::default());
            }
        };
        let span = info_span!("message", message_id = %incoming.message_id, contact_id = %message.contact_id, run_id = %message.run_id);
        async {
            let mut effort = Effort::default();
            let result = self.recover(&message, incoming.receive_count, deadline, &mut effort).await;
            let now = Utc::now();
            let (disposition, failure, outcome) = match result {
                Ok((status, interaction_id, bytes)) => {
                    info!(status = ?status, bytes, "contact done");
                    let outcome = Outcome {
                        contact_id: message.contact_id.clone(),
                        status,
                        attempt: incoming.receive_count,
                        reason: None,
                        bytes,
                        interaction_id: Some(interaction_id).filter(|s| !s.is_empty()),
                        at: format_ts(now),
                    };
                    (Disposition::Done(status), None, outcome)
                }
                Err(failure) => {
                    let outcome = Outcome {
                        contact_id: message.contact_id.clone(),
                        status: OutcomeStatus::Failed,
                        attempt: incoming.receive_count,
                        reason: Some(failure.reason.clone()),
                        bytes: 0,
                        interaction_id: None,
                        at: format_ts(now),
                    };
                    let last_receive = self.max_receive_count.is_some_and(|max| incoming.receive_count >= max);
                    let d = if failure.permanent {
                        self.dead_letter(incoming, &failure).await
                    } else if last_receive {
                        let gave_up = Failure {
                            reason: format!("gave up after {} attempts: {}", incoming.receive_count, failure.reason),
                            ..failure.clone()
                        };
                        self.dead_letter(incoming, &gave_up).await
                    } else {
                        warn!(reason = %failure.reason, attempt = incoming.receive_count, "transient failure; left for SQS to retry");
                        Disposition::Retry(failure.reason.clone())
                    };
                    (d, Some(failure), outcome)
                }
            };
            if let Err(e) = self.store.put_outcome(&message.run_id, &outcome).await {
                error!(error.message = %e, error.cause_chain = ?e, "outcome could not be written");
            }
            (disposition, failure, effort)
        }
        .instrument(span)
        .await
    }

    /// Sends a message to the DLQ with its reason, then deletes it from the work queue. If the
    /// send fails it is retried by SQS instead (nothing is ever dropped).
    async fn dead_letter(&self, incoming: &Incoming, failure: &Failure) -> Disposition {
        error!(reason = %failure.reason, kind = failure.kind, "permanent failure; sending to the dead-letter queue");
        if let Err(e) = self
            .dead_letter_queue
            .send_with_reason(&incoming.body, &failure.reason)
            .await
        {
            error!(error.message = %e, error.cause_chain = ?e, "dead-letter send failed; leaving the message for SQS to retry");
            return Disposition::Retry(format!("dead-letter send failed: {}", failure.reason));
        }
        if !incoming.receipt_handle.is_empty()
            && let Err(e) = self.work_queue.delete(&incoming.receipt_handle).await
        {
            warn!(error.message = %e, "delete after dead-lettering failed; the trigger deletes it on success");
        }
        Disposition::DeadLettered(failure.reason.clone())
    }

    async fn recover(
        &self,
        message: &WorkMessage,
        attempt: u32,
        deadline: Option<Instant>,
        effort: &mut Effort,
    ) -> Result<(OutcomeStatus, String, u64), Failure> {
        let now = Utc::now();
        if parse_ts(&message.initiation_timestamp).is_some_and(|t| t < now - CONNECT_RETENTION) {
            return Err(Failure::permanent(
                "connect_retention",
                "the contact is older than Amazon Connect's 24-month retention",
            ));
        }
        check_time_left(deadline, 0)?;
        match self.verint.holds(&message.contact_id).await {
            Ok(Some(interaction_id)) => {
                return Ok((OutcomeStatus::AlreadyPresent, interaction_id, 0));
            }
            Ok(None) => {}
            Err(e) => return Err(Failure::from_verint(&e)),
        }
        let contact = self
            .connect
            .describe(&message.instance_id, &message.contact_id)
            .await
            .map_err(|e| Failure::from_connect(&e))?;

        let policy = self.verint.retry_policy();
        let mut delays = policy.delays();
        loop {
            let recordings = self.open_all(&message.recordings).await?;
            let total: u64 = recordings.iter().map(|r| r.len).sum();
            check_time_left(deadline, total)?;
            let meta: Vec<(S3Location, u64)> = recordings
                .iter()
                .map(|r| (r.location.clone(), r.len))
                .collect();
            let metadata = build_metadata(&contact, message, &meta, Utc::now());
            let parts = recordings
                .into_iter()
                .map(OpenRecording::into_part)
                .collect();
            let started = Instant::now();
            let sent = match deadline {
                Some(d) => match tokio::time::timeout_at(
                    d.checked_sub(Duration::from_secs(2)).unwrap_or(d),
                    self.verint.ingest(&metadata, parts),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Failure::transient(
                            "deadline",
                            "the invocation's deadline cut the transfer short",
                        ));
                    }
                },
                None => self.verint.ingest(&metadata, parts).await,
            };
            effort.transfer += started.elapsed();
            match sent {
                Ok(Ingested::Created { interaction_id }) => {
                    effort.bytes += total;
                    return Ok((OutcomeStatus::Recovered, interaction_id, total));
                }
                Ok(Ingested::AlreadyPresent { interaction_id }) => {
                    return Ok((OutcomeStatus::AlreadyPresent, interaction_id, 0));
                }
                Err(e) if e.is_transient() => match delays.next() {
                    Some(backoff) => {
                        let wait = RetryPolicy::wait(backoff, &e);
                        warn!(reason = %e.reason(), attempt, wait_ms = wait.as_millis() as u64, "ingest failed; retrying with fresh recordings");
                        if deadline.is_some_and(|d| Instant::now() + wait + MIN_TIME_LEFT > d) {
                            return Err(Failure::from_verint(&e));
                        }
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(Failure::from_verint(&e)),
                },
                Err(e) => return Err(Failure::from_verint(&e)),
            }
        }
    }

    /// Opens every recording; a missing object is permanent, any other error (access, KMS,
    /// network) transient, so that a fixed permission plus a redrive recovers it.
    async fn open_all(&self, locations: &[S3Location]) -> Result<Vec<OpenRecording>, Failure> {
        let mut out = Vec::with_capacity(locations.len());
        for l in locations {
            match open_recording(self.s3, l).await {
                Ok(r) => out.push(r),
                Err(e @ RecordingError::Gone { .. }) => {
                    return Err(Failure::permanent("recording_gone", e.to_string()));
                }
                Err(e) => return Err(Failure::transient("recording_unreadable", error_chain(&e))),
            }
        }
        Ok(out)
    }
}

/// Fails (transiently) when the invocation has too little time left to move `bytes`.
pub fn check_time_left(deadline: Option<Instant>, bytes: u64) -> Result<(), Failure> {
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let needed = MIN_TIME_LEFT + Duration::from_secs(bytes / PLANNING_RATE_BYTES_PER_SEC);
    let left = deadline.saturating_duration_since(Instant::now());
    if left < needed {
        return Err(Failure::transient(
            "deadline",
            format!(
                "only {}s left in the invocation; {}s needed to move {bytes} bytes",
                left.as_secs(),
                needed.as_secs()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_connect::primitives::DateTime as AwsDateTime;
    use aws_sdk_connect::types::{
        AgentInfo, Channel, ContactInitiationMethod, EndpointInfo, EndpointType, QueueInfo,
    };

    use super::*;

    fn message() -> WorkMessage {
        WorkMessage::parse(r#"{"v":1,"run_id":"run-1","contact_id":"c-1","instance_id":"inst","initiation_timestamp":"2024-05-14T10:00:00Z","disconnect_timestamp":"2024-05-14T10:05:00Z","recordings":[{"bucket":"rec","key":"a:b.wav"}],"enqueued_at":"2024-05-14T11:00:00Z"}"#).expect("valid")
    }

    fn contact() -> Contact {
        Contact::builder()
            .arn("arn:aws:connect:eu-west-2:123456789012:instance/inst/contact/c-1")
            .id("c-1")
            .channel(Channel::Voice)
            .initiation_method(ContactInitiationMethod::Inbound)
            .initiation_timestamp(AwsDateTime::from_secs(1_715_680_800))
            .disconnect_timestamp(AwsDateTime::from_secs(1_715_681_100))
            .agent_info(
                AgentInfo::builder()
                    .id("agent-9")
                    .connected_to_agent_timestamp(AwsDateTime::from_secs(1_715_680_830))
                    .build(),
            )
            .queue_info(
                QueueInfo::builder()
                    .id("queue-3")
                    .enqueue_timestamp(AwsDateTime::from_secs(1_715_680_810))
                    .build(),
            )
            .customer_endpoint(
                EndpointInfo::builder()
                    .r#type(EndpointType::TelephoneNumber)
                    .address("+441234567890")
                    .build(),
            )
            .attributes("customerName", "Ada")
            .build()
    }

    #[test]
    fn metadata_is_built_from_describe_contact_and_the_message() {
        let rec = (
            S3Location {
                bucket: "rec".into(),
                key: "a:b.wav".into(),
            },
            42,
        );
        let now = parse_ts("2024-05-14T11:00:00Z").expect("valid");
        let m = build_metadata(&contact(), &message(), &[rec], now);
        let json = serde_json::to_value(&m).expect("serialises");
        assert_eq!(json["amazonContactId"], "c-1");
        assert_eq!(
            json["instanceArn"],
            "arn:aws:connect:eu-west-2:123456789012:instance/inst"
        );
        assert_eq!(json["channel"], "VOICE");
        assert_eq!(json["initiationMethod"], "INBOUND");
        assert_eq!(json["initiationTimestamp"], "2024-05-14T10:00:00Z");
        assert_eq!(json["disconnectTimestamp"], "2024-05-14T10:05:00Z");
        assert_eq!(
            json["agent"],
            serde_json::json!({"id": "agent-9", "connectedToAgentTimestamp": "2024-05-14T10:00:30Z"})
        );
        assert_eq!(
            json["queue"],
            serde_json::json!({"id": "queue-3", "enqueueTimestamp": "2024-05-14T10:00:10Z"})
        );
        assert_eq!(
            json["customerEndpoint"],
            serde_json::json!({"type": "TELEPHONE_NUMBER", "address": "+441234567890"})
        );
        assert_eq!(json["systemEndpoint"], serde_json::Value::Null);
        assert_eq!(
            json["attributes"],
            serde_json::json!({"customerName": "Ada"})
        );
        assert_eq!(
            json["recordings"],
            serde_json::json!([{"bucket": "rec", "key": "a:b.wav", "bytes": 42, "contentType": "audio/wav"}])
        );
        assert_eq!(
            json["recovery"],
            serde_json::json!({"runId": "run-1", "recoveredAt": "2024-05-14T11:00:00Z", "screensExpected": true})
        );
    }

    #[test]
    fn screens_are_expected_only_within_two_hours_of_the_call_ending() {
        let at = |s: &str| {
            build_metadata(&contact(), &message(), &[], parse_ts(s).expect("valid"))
                .recovery
                .screens_expected
        };
        assert!(at("2024-05-14T12:04:59Z"));
        assert!(!at("2024-05-14T12:05:00Z"));
    }

    #[test]
    fn an_abandoned_call_has_null_agent_and_queue() {
        let bare = Contact::builder().id("c-1").channel(Channel::Voice).build();
        let m = build_metadata(
            &bare,
            &message(),
            &[],
            parse_ts("2024-05-14T11:00:00Z").expect("valid"),
        );
        assert_eq!((m.agent, m.queue), (None, None));
        assert_eq!(m.initiation_timestamp, "2024-05-14T10:00:00Z");
        assert_eq!(m.instance_arn, "inst");
    }

    #[tokio::test(start_paused = true)]
    async fn no_transfer_starts_without_time_to_finish_it() {
        assert!(check_time_left(None, u64::MAX).is_ok());
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(check_time_left(Some(deadline), 10 * 1024 * 1024).is_ok());
        let err = check_time_left(Some(deadline), 800 * 1024 * 1024).expect_err("100 s needed");
        assert!(!err.permanent);
        assert_eq!(err.kind, "deadline");
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(check_time_left(Some(soon), 0).is_err());
    }

    #[test]
    fn failures_are_classified_permanent_or_transient() {
        let status = |code: u16| VerintError::Status {
            status: reqwest::StatusCode::from_u16(code).expect("valid"),
            detail: String::new(),
            retry_after: None,
        };
        assert!(Failure::from_verint(&status(422)).permanent);
        assert!(Failure::from_verint(&status(400)).permanent);
        assert!(!Failure::from_verint(&status(503)).permanent);
        assert!(!Failure::from_verint(&status(429)).permanent);
        assert!(!Failure::from_verint(&status(500)).permanent);
        assert!(Failure::from_connect(&ConnectError::NotFound).permanent);
        assert!(!Failure::from_connect(&ConnectError::Throttled("slow down".into())).permanent);
    }

    #[test]
    fn only_retries_are_batch_item_failures() {
        assert!(Disposition::Retry("x".into()).is_batch_item_failure());
        assert!(!Disposition::DeadLettered("x".into()).is_batch_item_failure());
        assert!(!Disposition::Done(OutcomeStatus::Recovered).is_batch_item_failure());
    }
}
