//! Working one message (design §5, §6): re-check Verint, describe the contact in Connect, stream
//! its recordings from S3 into Verint's ingest endpoint, record the outcome, and settle the
//! message (delete it, release it with its retry delay, or dead-letter it). Shared by the worker
//! Lambda and `recoveryctl work`.
//!
//! The flow is generic over the ports it needs ([`VerintIngest`], [`ContactDirectory`],
//! [`RecordingStore`], [`MessageQueue`], [`OutcomeStore`]), so every failure path is tested with
//! in-memory fakes; the AWS and Verint adapters implement them at the bottom of this module.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use aws_sdk_connect::types::Contact;
use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use crate::adapters::connect::CONNECT_RETENTION;
use crate::adapters::connect::is_contact_id;
use crate::domain::ctr::S3Location;
use crate::domain::error::error_chain;
use crate::domain::message::WorkMessage;
use crate::domain::metadata::{Agent, Endpoint, Metadata, Queue, RecordingMeta, Recovery};
use crate::domain::metrics::{Metrics, Unit, names};
use crate::domain::report::{Outcome, OutcomeStatus};
use crate::domain::time::{format_ts, parse_ts};
use crate::ports::bounded;
use crate::ports::connect::ConnectError;
use crate::ports::connect::ContactDirectory;
use crate::ports::queue::MessageQueue;
use crate::ports::queue::{QueueError, Received};
use crate::ports::recordings::Recording;
use crate::ports::recordings::RecordingError;
use crate::ports::recordings::RecordingStore;
use crate::ports::store::OutcomeStore;
use crate::ports::verint::VerintIngest;
use crate::ports::verint::{AudioPart, Ingested};
use crate::ports::verint::{RetryPolicy, VerintError};

/// Screens are cached by Verint for this long after a call ends.
pub(crate) const SCREEN_CACHE: TimeDelta = TimeDelta::hours(2);
/// No transfer starts with less time than this left in the invocation.
pub(crate) const MIN_TIME_LEFT: Duration = Duration::from_secs(15);
/// The slowest transfer rate planned for when deciding whether a transfer fits the time left.
pub(crate) const PLANNING_RATE_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;
/// Kept free at the end of an invocation to write the outcome and settle the message, so that a
/// message that cannot finish is released with its retry delay, never killed with the invocation.
pub(crate) const SETTLE_RESERVE: Duration = Duration::from_secs(5);

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
    /// Transient: released with its retry delay for SQS to retry (a batch item failure).
    Retry(String),
    /// Permanent: it was sent to the dead-letter queue with its reason and removed.
    DeadLettered(String),
}

impl Disposition {
    pub fn is_batch_item_failure(&self) -> bool {
        matches!(self, Disposition::Retry(_))
    }
}

/// Every way working a message can fail. Whether it is transient or permanent, the metric's
/// `Reason` dimension and the start of the `failure_reason` text all come from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FailureKind {
    /// The body is not a work message, or its `contact_id` is not a UUID.
    MalformedMessage,
    /// Older than Connect's 24-month retention.
    ConnectRetention,
    /// `DescribeContact` does not know the contact.
    ConnectUnknownContact,
    /// Connect kept throttling after the SDK's retries.
    ConnectThrottled,
    /// Connect failed otherwise (network, 5xx, access).
    ConnectUnavailable,
    /// A recording object is gone (`NoSuchKey`/404).
    RecordingGone,
    /// A recording could not be opened (access, KMS, network): transient, so a fixed permission
    /// plus a redrive recovers it.
    RecordingUnreadable,
    /// S3 failed while the recording was being streamed.
    RecordingStreamFailed,
    /// S3 gave no byte of the recording for `STALL_TIMEOUT`.
    RecordingStalled,
    /// Verint rejected the call (`400`/`422`).
    VerintRejected,
    /// Verint could not take it now (`429`, `5xx`, other answers, dropped connections).
    VerintUnavailable,
    /// Verint accepted no byte of the upload for `STALL_TIMEOUT`.
    VerintStalled,
    /// The whole call was sent and Verint did not answer (a lost response).
    VerintNoAnswer,
    /// The invocation's deadline left no time to finish.
    Deadline,
    /// The code working the message panicked.
    Panicked,
    /// The call's recordings cannot be uploaded within one invocation at `MIN_LINK_RATE`: no
    /// receive could ever finish it, so it goes to the dead-letter queue at once, with its size.
    TooLargeForOneInvocation,
    /// Verint refused the API key, the one read again too (an operator mid-rotation): the
    /// message is sent again with a delay instead of being released, so that a rotation never
    /// uses up its receives (design §6: no call reaches the dead-letter queue for it).
    VerintKeyRefused,
}

impl FailureKind {
    /// Permanent failures go to the dead-letter queue at once; the others are retried.
    pub(crate) fn is_permanent(self) -> bool {
        matches!(
            self,
            FailureKind::MalformedMessage
                | FailureKind::ConnectRetention
                | FailureKind::ConnectUnknownContact
                | FailureKind::RecordingGone
                | FailureKind::VerintRejected
                | FailureKind::TooLargeForOneInvocation
        )
    }

    /// The metric's `Reason` dimension (low cardinality, stable: alarms may use it).
    pub(crate) fn metric_reason(self) -> &'static str {
        match self {
            FailureKind::MalformedMessage => "malformed_message",
            FailureKind::ConnectRetention => "connect_retention",
            FailureKind::ConnectUnknownContact => "connect_unknown_contact",
            FailureKind::ConnectThrottled => "connect_throttled",
            FailureKind::ConnectUnavailable => "connect_unavailable",
            FailureKind::RecordingGone => "recording_gone",
            FailureKind::RecordingUnreadable => "recording_unreadable",
            FailureKind::RecordingStreamFailed => "recording_stream_failed",
            FailureKind::RecordingStalled => "recording_stalled",
            FailureKind::VerintRejected => "verint_rejected",
            FailureKind::VerintUnavailable => "verint_unavailable",
            FailureKind::VerintStalled => "verint_stalled",
            FailureKind::VerintNoAnswer => "verint_no_answer",
            FailureKind::Deadline => "deadline",
            FailureKind::Panicked => "panicked",
            FailureKind::TooLargeForOneInvocation => "too_large_for_one_invocation",
            FailureKind::VerintKeyRefused => "verint_key_refused",
        }
    }

    /// What an operator reads first in the outcome's `reason` and in `failure_reason`: it names
    /// the side that failed.
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::MalformedMessage => "malformed message",
            FailureKind::ConnectRetention => {
                "the contact is older than Amazon Connect's 24-month retention"
            }
            FailureKind::ConnectUnknownContact => "the contact is unknown to Amazon Connect",
            FailureKind::ConnectThrottled => "amazon connect throttled DescribeContact",
            FailureKind::ConnectUnavailable => "amazon connect DescribeContact failed",
            FailureKind::RecordingGone => "a recording is gone from S3",
            FailureKind::RecordingUnreadable => "a recording could not be opened in S3",
            FailureKind::RecordingStreamFailed => "S3 failed while streaming a recording",
            FailureKind::RecordingStalled => "S3 stopped sending a recording",
            FailureKind::VerintRejected => "verint rejected the call",
            FailureKind::VerintUnavailable => "verint could not take the call now",
            FailureKind::VerintStalled => "verint stopped accepting the upload",
            FailureKind::VerintNoAnswer => "verint did not answer after the upload",
            FailureKind::Deadline => "the invocation's deadline left no time to finish",
            FailureKind::Panicked => "the worker panicked on this message",
            FailureKind::TooLargeForOneInvocation => {
                "the call is too large to upload within one invocation at the minimum link rate"
            }
            FailureKind::VerintKeyRefused => {
                "verint refused the api key (a rotation in progress?); the call waits for the new key"
            }
        }
    }
}

/// Why a message failed: its kind, what the failing side said, and the wait it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    /// The failing side's own words (an error chain, a status), if any.
    pub detail: Option<String>,
    /// Verint's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(kind: FailureKind) -> Self {
        Failure {
            kind,
            detail: None,
            retry_after: None,
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub(crate) fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }

    /// The text of the outcome's `reason` and of `failure_reason`.
    pub fn reason(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {d}", self.kind.describe()),
            None => self.kind.describe().to_owned(),
        }
    }

    pub(crate) fn from_verint(e: &VerintError) -> Self {
        let kind = match e {
            VerintError::Body(_) => FailureKind::RecordingStreamFailed,
            VerintError::BodyStalled(_) => FailureKind::RecordingStalled,
            VerintError::Stalled(_) => FailureKind::VerintStalled,
            VerintError::NoAnswer(_) | VerintError::AnswerLost(_) => FailureKind::VerintNoAnswer,
            VerintError::KeyRefused { .. } => FailureKind::VerintKeyRefused,
            VerintError::OutOfTime { .. } => FailureKind::Deadline,
            VerintError::BadContactId(_) => FailureKind::MalformedMessage,
            e if e.is_transient() => FailureKind::VerintUnavailable,
            _ => FailureKind::VerintRejected,
        };
        Failure {
            kind,
            detail: Some(e.reason()),
            retry_after: e.retry_after(),
        }
    }

    pub(crate) fn from_connect(e: &ConnectError) -> Self {
        match e {
            ConnectError::NotFound => Failure::new(FailureKind::ConnectUnknownContact),
            ConnectError::Throttled(_) => Failure::new(FailureKind::ConnectThrottled),
            ConnectError::Other(_) => {
                Failure::new(FailureKind::ConnectUnavailable).with_detail(error_chain(e))
            }
            ConnectError::OutOfTime => {
                Failure::new(FailureKind::Deadline).with_detail("before DescribeContact")
            }
        }
    }

    pub(crate) fn from_recording(e: &RecordingError) -> Self {
        let kind = match e {
            RecordingError::Gone { .. } => FailureKind::RecordingGone,
            RecordingError::Unreadable { .. } => FailureKind::RecordingUnreadable,
            RecordingError::OutOfTime { .. } => FailureKind::Deadline,
        };
        Failure::new(kind).with_detail(error_chain(e))
    }
}

/// A transient failure's retry delay (design §5): full jitter over
/// `min(max, base × 2^(receive−1))`, or the server's `Retry-After` if longer, never over `max`.
/// `jitter` is uniform in `[0, 1)`.
pub(crate) fn retry_delay(
    receive: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let doublings = receive.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << doublings).min(max);
    let jittered = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(ra) => jittered.max(ra.min(max)),
        None => jittered,
    }
}

/// Fails (transiently) when the invocation has too little time left to move `bytes`.
pub(crate) fn check_time_left(deadline: Option<Instant>, bytes: u64) -> Result<(), Failure> {
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let needed = MIN_TIME_LEFT + Duration::from_secs(bytes / PLANNING_RATE_BYTES_PER_SEC);
    let left = deadline.saturating_duration_since(Instant::now());
    if left < needed {
        return Err(Failure::new(FailureKind::Deadline).with_detail(format!(
            "only {}s left; {}s needed to move {bytes} bytes",
            left.as_secs(),
            needed.as_secs()
        )));
    }
    Ok(())
}

/// A panic's message, as far as it can be read.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The `metadata` part, from `DescribeContact` (ids as the API gives them) and the message.
pub(crate) fn build_metadata(
    contact: &Contact,
    message: &WorkMessage,
    recordings: &[(S3Location, u64)],
    now: DateTime<Utc>,
) -> Metadata {
    let disconnect = connect_ts(contact.disconnect_timestamp())
        .unwrap_or_else(|| message.disconnect_timestamp.clone());
    let screens_expected = parse_ts(&disconnect).is_some_and(|d| now - d < SCREEN_CACHE);
    Metadata {
        amazon_contact_id: contact_id_of(contact, message),
        instance_arn: instance_arn_of(contact, message),
        channel: contact.channel().map_or("VOICE", |c| c.as_str()).to_owned(),
        initiation_method: contact
            .initiation_method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        initiation_timestamp: connect_ts(contact.initiation_timestamp())
            .unwrap_or_else(|| message.initiation_timestamp.clone()),
        disconnect_timestamp: disconnect,
        agent: contact.agent_info().and_then(|a| {
            Some(Agent {
                id: a.id()?.to_owned(),
                connected_to_agent_timestamp: connect_ts(a.connected_to_agent_timestamp()),
            })
        }),
        queue: contact.queue_info().and_then(|q| {
            Some(Queue {
                id: q.id()?.to_owned(),
                enqueue_timestamp: Some(connect_ts(q.enqueue_timestamp())?),
            })
        }),
        customer_endpoint: endpoint_of(contact.customer_endpoint()),
        system_endpoint: endpoint_of(contact.system_endpoint()),
        attributes: contact
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        recordings: recordings_meta(recordings),
        recovery: Recovery {
            run_id: message.run_id.clone(),
            recovered_at: format_ts(now),
            screens_expected,
        },
    }
}

/// A Connect timestamp as the contract writes times.
fn connect_ts(t: Option<&aws_sdk_connect::primitives::DateTime>) -> Option<String> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .map(format_ts)
}

/// The API's spelling of the id, unless it names another contact (ids compare
/// case-insensitively): the message's id is the one being recovered.
fn contact_id_of(contact: &Contact, message: &WorkMessage) -> String {
    contact
        .id()
        .filter(|id| id.eq_ignore_ascii_case(&message.contact_id))
        .unwrap_or(&message.contact_id)
        .to_owned()
}

/// The instance ARN: the contact's ARN up to `/contact/`, or the message's instance id.
fn instance_arn_of(contact: &Contact, message: &WorkMessage) -> String {
    contact
        .arn()
        .and_then(|arn| {
            arn.split_once("/contact/")
                .map(|(instance, _)| instance.to_owned())
        })
        .unwrap_or_else(|| message.instance_id.clone())
}

/// An endpoint with an address; `None` without one.
fn endpoint_of(e: Option<&aws_sdk_connect::types::EndpointInfo>) -> Option<Endpoint> {
    let e = e?;
    Some(Endpoint {
        kind: e
            .r#type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        address: e.address()?.to_owned(),
    })
}

/// Each recording's place and size, as the metadata lists them.
fn recordings_meta(recordings: &[(S3Location, u64)]) -> Vec<RecordingMeta> {
    recordings
        .iter()
        .map(|(l, bytes)| RecordingMeta {
            bucket: l.bucket.clone(),
            key: l.key.clone(),
            bytes: *bytes,
            content_type: "audio/wav".into(),
        })
        .collect()
}

/// How the worker works: concurrency and the retry delays (design §5, §7).
#[derive(Debug, Clone, Copy)]
pub struct WorkSettings {
    /// Messages worked at once: the Verint look-up, `DescribeContact` (under its rate ceiling)
    /// and the retry waits of every message of a batch overlap.
    pub concurrency: usize,
    /// Uploads at once within a batch: they share the link to Verint, so a batch of long calls
    /// on a slow line does not split it so thin that none finishes before the deadline.
    pub uploads: usize,
    /// The work queue's `maxReceiveCount`, when known: see [`crate::Config::max_receive_count`].
    pub max_receive_count: Option<u32>,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `MIN_LINK_RATE`, bytes per second: a call larger than [`ONE_INVOCATION_UPLOAD`] at this
    /// rate is dead-lettered at once.
    pub min_link_rate: u64,
    /// While a message is worked, keep it invisible for this long at a time, renewed with
    /// `ChangeMessageVisibility` (`recoveryctl work`, whose receives would otherwise hold it for
    /// the queue's whole visibility timeout, or lose it to a Lambda worker). `None` in the Lambda,
    /// whose trigger's visibility (6 × the timeout) outlasts the invocation.
    pub hold: Option<Duration>,
}

/// The longest upload one worker invocation can carry: Lambda's 900 s, less what the worker keeps
/// to look the call up before and to settle it after.
pub const ONE_INVOCATION_UPLOAD: Duration = Duration::from_secs(840);

impl WorkSettings {
    pub fn new(config: &crate::Config, concurrency: usize, uploads: usize) -> Self {
        WorkSettings {
            concurrency,
            uploads,
            max_receive_count: config.max_receive_count,
            retry_base: config.retry_base,
            retry_max: config.retry_max,
            min_link_rate: config.min_link_rate,
            hold: None,
        }
    }

    /// Fails (permanently) a call of `bytes` that cannot be uploaded within one invocation at
    /// the minimum link rate, with a reason that says how large it is and what to do.
    fn check_fits_one_invocation(&self, bytes: u64) -> Result<(), Failure> {
        let rate = self.min_link_rate.max(1);
        let needs = Duration::from_secs(bytes.div_ceil(rate));
        if needs <= ONE_INVOCATION_UPLOAD {
            return Ok(());
        }
        Err(
            Failure::new(FailureKind::TooLargeForOneInvocation).with_detail(format!(
                "{bytes} bytes ({:.0} MB) need {}s at MIN_LINK_RATE {rate} bytes/s, over the {}s one invocation can upload; raise MIN_LINK_RATE if the link is faster, then redrive",
                bytes as f64 / 1e6,
                needs.as_secs(),
                ONE_INVOCATION_UPLOAD.as_secs()
            )),
        )
    }
}

/// Everything working a message needs, built once per process.
pub struct Worker<'a, V, C, R, Q, O> {
    pub verint: &'a V,
    pub connect: &'a C,
    pub recordings: &'a R,
    pub queue: &'a Q,
    pub outcomes: &'a O,
    pub settings: WorkSettings,
}

impl<V, C, R, Q, O> std::fmt::Debug for Worker<'_, V, C, R, Q, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What working one message did, for metrics.
#[derive(Debug, Default)]
struct Effort {
    bytes: u64,
    transfer: Duration,
}

impl<V, C, R, Q, O> Worker<'_, V, C, R, Q, O>
where
    V: VerintIngest,
    C: ContactDirectory,
    R: RecordingStore,
    Q: MessageQueue,
    O: OutcomeStore,
{
    /// Works a batch with bounded concurrency (at most `settings.uploads` of its uploads at
    /// once); returns each message's disposition, in input order. A panic while working one
    /// message fails that message only (transient): the others finish and get their outcomes.
    pub async fn work_batch(
        &self,
        messages: &[Incoming],
        deadline: Option<Instant>,
        metrics: &mut Metrics,
    ) -> Vec<Disposition> {
        let uploads = Semaphore::new(self.settings.uploads.max(1));
        let uploads = &uploads;
        let results: Vec<(usize, Disposition, Option<FailureKind>, Effort)> =
            stream::iter(messages.iter().enumerate())
                .map(|(i, m)| async move {
                    match AssertUnwindSafe(self.work(m, deadline, uploads))
                        .catch_unwind()
                        .await
                    {
                        Ok((d, f, e)) => (i, d, f, e),
                        Err(panic) => {
                            let failure = Failure::new(FailureKind::Panicked)
                                .with_detail(panic_message(panic.as_ref()));
                            error!(
                                message_id = %m.message_id,
                                reason = %failure.reason(),
                                "panic while settling a message; left for SQS to retry"
                            );
                            (
                                i,
                                Disposition::Retry(failure.reason()),
                                Some(failure.kind),
                                Effort::default(),
                            )
                        }
                    }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        let mut out = vec![Disposition::Retry("not worked".into()); messages.len()];
        for (i, disposition, failure, effort) in results {
            match (&disposition, failure) {
                (Disposition::Done(OutcomeStatus::Recovered), _) => {
                    metrics.count(names::RECOVERED, 1)
                }
                (Disposition::Done(_), _) => metrics.count(names::ALREADY_PRESENT, 1),
                // Every path that does not end in `Done` names its kind.
                (_, kind) => metrics.failed(kind.unwrap_or(FailureKind::Panicked).metric_reason()),
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
    /// deleted, a transient failure was released with its retry delay, a permanent one was
    /// already moved to the dead-letter queue.
    pub async fn work_received(
        &self,
        received: &[Received],
        metrics: &mut Metrics,
    ) -> Result<Vec<Disposition>, QueueError> {
        self.work_received_by(received, None, metrics).await
    }

    /// [`Worker::work_received`], every message settled before `deadline`.
    pub async fn work_received_by(
        &self,
        received: &[Received],
        deadline: Option<Instant>,
        metrics: &mut Metrics,
    ) -> Result<Vec<Disposition>, QueueError> {
        let messages: Vec<Incoming> = received.iter().map(Incoming::from).collect();
        let dispositions = self.work_batch(&messages, deadline, metrics).await;
        for (m, d) in messages.iter().zip(&dispositions) {
            if matches!(d, Disposition::Done(_))
                && let Err(e) = self.queue.delete(&m.receipt_handle).await
            {
                // A receipt handle gone stale (the message outlasted its visibility and was
                // received again) fails this delete only: the message comes back, and the next
                // receive finds the contact in Verint. The rest of the batch is still settled.
                warn!(
                    message_id = %m.message_id,
                    error.message = %e,
                    error.cause_chain = ?e,
                    "a worked message could not be deleted; it will be received again"
                );
            }
        }
        Ok(dispositions)
    }

    /// Works one message. Never drops a message: every path ends in success, a release with
    /// its retry delay, or the dead-letter queue. `deadline` is the invocation's: the work
    /// stops [`SETTLE_RESERVE`] before it, so the outcome and the message's settling still fit.
    #[tracing::instrument(
        name = "message",
        skip_all,
        fields(message_id = %incoming.message_id, contact_id, run_id)
    )]
    async fn work(
        &self,
        incoming: &Incoming,
        deadline: Option<Instant>,
        uploads: &Semaphore,
    ) -> (Disposition, Option<FailureKind>, Effort) {
        let message = match WorkMessage::parse(&incoming.body) {
            Ok(m) if is_contact_id(&m.contact_id) => m,
            parsed => {
                let detail = match parsed {
                    Ok(_) => "contact_id is not a UUID".to_owned(),
                    Err(e) => error_chain(&e),
                };
                let failure = Failure::new(FailureKind::MalformedMessage).with_detail(detail);
                let d = self.dead_letter(incoming, &failure, deadline).await;
                return (d, Some(failure.kind), Effort::default());
            }
        };
        let span = Span::current();
        span.record("contact_id", message.contact_id.as_str());
        span.record("run_id", message.run_id.as_str());
        let mut effort = Effort::default();
        let recovering = self.recover_before(
            &message,
            incoming.receive_count,
            deadline,
            uploads,
            &mut effort,
        );
        let result = match self.settings.hold {
            Some(hold) if !incoming.receipt_handle.is_empty() => {
                tokio::select! {
                    r = recovering => r,
                    never = self.hold_invisible(&incoming.receipt_handle, hold) => match never {},
                }
            }
            _ => recovering.await,
        };
        let (disposition, kind, outcome) = self.settle(incoming, &message, result, deadline).await;
        self.write_outcome(&message.run_id, &outcome, deadline)
            .await;
        (disposition, kind, effort)
    }

    /// Keeps a message invisible while it is worked: every third of `hold`, its visibility is
    /// set to `hold` again. Runs until dropped (when the work ends, before the message is
    /// settled, so a retry delay set by the settling is never overwritten).
    async fn hold_invisible(
        &self,
        receipt_handle: &str,
        hold: Duration,
    ) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(hold / 3).await;
            if let Err(e) = self.queue.retry_in(receipt_handle, hold).await {
                warn!(error.message = %e, "message visibility not extended; it may be received again");
            }
        }
    }

    /// [`Worker::recover`], cut short [`SETTLE_RESERVE`] before the deadline; a panic is a
    /// transient failure of this message alone.
    async fn recover_before(
        &self,
        message: &WorkMessage,
        attempt: u32,
        deadline: Option<Instant>,
        uploads: &Semaphore,
        effort: &mut Effort,
    ) -> Result<(OutcomeStatus, String, u64), Failure> {
        let work_deadline = deadline.map(|d| d.checked_sub(SETTLE_RESERVE).unwrap_or(d));
        let recovering =
            AssertUnwindSafe(self.recover(message, attempt, work_deadline, uploads, effort))
                .catch_unwind();
        let cut_short = || {
            Ok(Err(
                Failure::new(FailureKind::Deadline).with_detail("the work was cut short")
            ))
        };
        match work_deadline {
            Some(d) => tokio::time::timeout_at(d, recovering)
                .await
                .unwrap_or_else(|_| cut_short()),
            None => recovering.await,
        }
        .unwrap_or_else(|panic| {
            Err(Failure::new(FailureKind::Panicked).with_detail(panic_message(panic.as_ref())))
        })
    }

    /// Settles the message by the result of its work (done, released for a retry, or
    /// dead-lettered) and says what the outcome records.
    async fn settle(
        &self,
        incoming: &Incoming,
        message: &WorkMessage,
        result: Result<(OutcomeStatus, String, u64), Failure>,
        deadline: Option<Instant>,
    ) -> (Disposition, Option<FailureKind>, Outcome) {
        let mut outcome = Outcome {
            contact_id: message.contact_id.clone(),
            status: OutcomeStatus::Failed,
            attempt: incoming.receive_count,
            reason: None,
            bytes: 0,
            interaction_id: None,
            at: format_ts(Utc::now()),
        };
        let failure = match result {
            Ok((status, interaction_id, bytes)) => {
                info!(status = ?status, bytes, "contact done");
                outcome.status = status;
                outcome.bytes = bytes;
                outcome.interaction_id = Some(interaction_id).filter(|s| !s.is_empty());
                return (Disposition::Done(status), None, outcome);
            }
            Err(failure) => failure,
        };
        outcome.reason = Some(failure.reason());
        let last_receive = self
            .settings
            .max_receive_count
            .is_some_and(|max| incoming.receive_count >= max);
        let d = if failure.is_permanent() {
            self.dead_letter(incoming, &failure, deadline).await
        } else if failure.kind == FailureKind::VerintKeyRefused {
            self.wait_for_the_key(incoming, &failure, deadline).await
        } else if last_receive {
            let gave_up = Failure {
                detail: Some(format!(
                    "gave up after {} attempts: {}",
                    incoming.receive_count,
                    failure.detail.as_deref().unwrap_or("no detail")
                )),
                ..failure.clone()
            };
            self.dead_letter(incoming, &gave_up, deadline).await
        } else {
            self.release(incoming, &failure, deadline).await
        };
        (d, Some(failure.kind), outcome)
    }

    /// Writes the message's outcome; a failure is logged, and the message stays settled.
    async fn write_outcome(&self, run_id: &str, outcome: &Outcome, deadline: Option<Instant>) {
        match bounded(deadline, self.outcomes.put_outcome(run_id, outcome)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                error!(error.message = %e, error.cause_chain = ?e, "outcome could not be written")
            }
            None => error!("outcome could not be written before the deadline"),
        }
    }

    /// Sets the message's visibility to its retry delay and leaves it for SQS to retry. If the
    /// visibility cannot be changed, SQS retries it after the queue's visibility timeout.
    async fn release(
        &self,
        incoming: &Incoming,
        failure: &Failure,
        deadline: Option<Instant>,
    ) -> Disposition {
        let mut delay = retry_delay(
            incoming.receive_count,
            self.settings.retry_base,
            self.settings.retry_max,
            failure.retry_after,
            rand::random::<f64>(),
        );
        if matches!(
            failure.kind,
            FailureKind::VerintNoAnswer | FailureKind::Deadline
        ) {
            // Verint may have stored the call and still be committing it (its answer was lost,
            // or the deadline came while it was awaited): the next attempt must find it there
            // (409), not race it (design §5).
            delay = delay.max(self.settings.retry_base);
        }
        warn!(
            reason = %failure.reason(),
            kind = failure.kind.metric_reason(),
            attempt = incoming.receive_count,
            retry_in_s = delay.as_secs_f64(),
            "transient failure; released for SQS to retry"
        );
        if !incoming.receipt_handle.is_empty() {
            match bounded(
                deadline,
                self.queue.retry_in(&incoming.receipt_handle, delay),
            )
            .await
            {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    warn!(
                        error.message = %e,
                        error.cause_chain = ?e,
                        "retry delay not set; SQS retries after the queue's visibility timeout"
                    )
                }
                None => warn!("retry delay not set before the deadline"),
            }
        }
        Disposition::Retry(failure.reason())
    }

    /// A message whose call Verint refused for its key, the one read again too: sent again as
    /// a new message after the retry delay (at most 15 minutes) and deleted, so that however long
    /// the rotation takes it never uses up its receives; released as usual if that send fails.
    async fn wait_for_the_key(
        &self,
        incoming: &Incoming,
        failure: &Failure,
        deadline: Option<Instant>,
    ) -> Disposition {
        let delay = retry_delay(
            incoming.receive_count,
            self.settings.retry_base,
            self.settings.retry_max,
            None,
            rand::random::<f64>(),
        )
        .clamp(Duration::from_secs(30), Duration::from_secs(900));
        warn!(
            reason = %failure.reason(),
            retry_in_s = delay.as_secs(),
            "verint refused the api key; the call waits for the new key without using up its receives"
        );
        match bounded(deadline, self.queue.requeue(&incoming.body, delay)).await {
            Some(Ok(())) => {
                if !incoming.receipt_handle.is_empty()
                    && let Some(Err(e)) =
                        bounded(deadline, self.queue.delete(&incoming.receipt_handle)).await
                {
                    warn!(error.message = %e, "the original could not be deleted; it comes back too");
                }
                Disposition::Retry(failure.reason())
            }
            _ => self.release(incoming, failure, deadline).await,
        }
    }

    /// Sends a message to the DLQ with its reason, then deletes it from the work queue. If the
    /// send fails it is retried by SQS instead (nothing is ever dropped).
    async fn dead_letter(
        &self,
        incoming: &Incoming,
        failure: &Failure,
        deadline: Option<Instant>,
    ) -> Disposition {
        let reason = failure.reason();
        let kind = failure.kind.metric_reason();
        error!(%reason, kind, "permanent failure; sending to the dead-letter queue");
        match bounded(deadline, self.queue.dead_letter(&incoming.body, &reason)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                error!(
                    error.message = %e,
                    error.cause_chain = ?e,
                    "dead-letter send failed; leaving the message for SQS to retry"
                );
                return Disposition::Retry(format!("dead-letter send failed: {reason}"));
            }
            None => {
                error!(
                    "dead-letter send did not finish before the deadline; leaving the message for SQS to retry"
                );
                return Disposition::Retry(format!("dead-letter send timed out: {reason}"));
            }
        }
        if !incoming.receipt_handle.is_empty() {
            match bounded(deadline, self.queue.delete(&incoming.receipt_handle)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    warn!(
                        error.message = %e,
                        "delete after dead-lettering failed; the trigger deletes it on success"
                    )
                }
                None => warn!("delete after dead-lettering did not finish before the deadline"),
            }
        }
        Disposition::DeadLettered(reason)
    }

    /// Recovers one contact: unless it is past Connect's retention or already in Verint, its
    /// recordings are uploaded with the metadata `DescribeContact` gives; an upload that fails
    /// transiently is tried again in this invocation while Verint's retry policy and the
    /// deadline allow, each time with fresh recordings (a stream cannot be replayed).
    #[tracing::instrument(name = "recover", skip_all, fields(attempt = attempt))]
    async fn recover(
        &self,
        message: &WorkMessage,
        attempt: u32,
        deadline: Option<Instant>,
        uploads: &Semaphore,
        effort: &mut Effort,
    ) -> Result<(OutcomeStatus, String, u64), Failure> {
        let oldest = Utc::now() - CONNECT_RETENTION;
        if parse_ts(&message.initiation_timestamp).is_some_and(|t| t < oldest) {
            return Err(Failure::new(FailureKind::ConnectRetention));
        }
        check_time_left(deadline, 0)?;
        if let Some(interaction_id) = self.already_held(message, deadline).await? {
            return Ok((OutcomeStatus::AlreadyPresent, interaction_id, 0));
        }
        let contact = self
            .connect
            .describe(&message.instance_id, &message.contact_id, deadline)
            .await
            .map_err(|e| Failure::from_connect(&e))?;
        let policy = self.verint.retry_policy();
        let mut delays = policy.delays();
        loop {
            let upload = async {
                let _turn = uploads.acquire().await;
                self.upload(&contact, message, deadline, effort).await
            };
            let e = match upload.await? {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            let failure = Failure::from_verint(&e);
            let Some(wait) = retry_wait(&policy, delays.next(), &failure, &e, deadline) else {
                return Err(failure);
            };
            let wait_ms = wait.as_millis() as u64;
            let reason = failure.reason();
            warn!(%reason, wait_ms, "ingest failed; retrying with fresh recordings");
            tokio::time::sleep(wait).await;
        }
    }

    /// The contact's interaction id when Verint already holds it.
    async fn already_held(
        &self,
        message: &WorkMessage,
        deadline: Option<Instant>,
    ) -> Result<Option<String>, Failure> {
        self.verint
            .holds(&message.contact_id, deadline)
            .await
            .map_err(|e| Failure::from_verint(&e))
    }

    /// One upload of the contact's recordings, opened afresh; the outer error ends the work,
    /// the inner one is Verint's answer, which may be worth another attempt.
    async fn upload(
        &self,
        contact: &Contact,
        message: &WorkMessage,
        deadline: Option<Instant>,
        effort: &mut Effort,
    ) -> Result<Result<(OutcomeStatus, String, u64), VerintError>, Failure> {
        let recordings = self.open_all(&message.recordings, deadline).await?;
        let total: u64 = recordings.iter().map(|r| r.len).sum();
        if self.settings.hold.is_none() {
            // recoveryctl (which holds its messages) has no 900 s limit: it can take them.
            self.settings.check_fits_one_invocation(total)?;
        }
        check_time_left(deadline, total)?;
        let meta: Vec<(S3Location, u64)> = recordings
            .iter()
            .map(|r| (r.location.clone(), r.len))
            .collect();
        let metadata = build_metadata(contact, message, &meta, Utc::now());
        let parts = recordings
            .into_iter()
            .map(|r| AudioPart {
                len: r.len,
                body: r.body,
            })
            .collect();
        let started = Instant::now();
        let sent = bounded(deadline, self.verint.ingest(&metadata, parts)).await;
        effort.transfer += started.elapsed();
        match sent {
            None => Err(Failure::new(FailureKind::Deadline)
                .with_detail("the deadline came during the upload")),
            Some(Ok(Ingested::Created { interaction_id })) => {
                effort.bytes += total;
                Ok(Ok((OutcomeStatus::Recovered, interaction_id, total)))
            }
            Some(Ok(Ingested::AlreadyPresent { interaction_id })) => {
                Ok(Ok((OutcomeStatus::AlreadyPresent, interaction_id, 0)))
            }
            Some(Err(e)) => Ok(Err(e)),
        }
    }

    /// Opens every recording; a missing object is permanent, any other error (access, KMS,
    /// network) transient, so that a fixed permission plus a redrive recovers it.
    async fn open_all(
        &self,
        locations: &[S3Location],
        deadline: Option<Instant>,
    ) -> Result<Vec<Recording>, Failure> {
        let mut out = Vec::with_capacity(locations.len());
        for l in locations {
            let r = self
                .recordings
                .open(l, deadline)
                .await
                .map_err(|e| Failure::from_recording(&e))?;
            out.push(r);
        }
        Ok(out)
    }
}

/// How long to wait before trying a failed upload again in this invocation; `None` when the
/// failure is better left to the queue: a permanent one, a stall (it already cost
/// `STALL_TIMEOUT`), no answer, the deadline, a `Retry-After` longer than the policy's longest
/// delay, a wait the deadline leaves no room for, or no attempt left (`backoff` is `None`).
fn retry_wait(
    policy: &RetryPolicy,
    backoff: Option<Duration>,
    failure: &Failure,
    error: &VerintError,
    deadline: Option<Instant>,
) -> Option<Duration> {
    let too_late_for =
        |wait: Duration| deadline.is_some_and(|d| Instant::now() + wait + MIN_TIME_LEFT > d);
    if matches!(error, VerintError::KeyRefused { fresh_key: true }) {
        // A rotated key, read again since the refusal: try again at once (design §6).
        return (backoff.is_some() && !too_late_for(Duration::ZERO)).then_some(Duration::ZERO);
    }
    let in_process = !failure.is_permanent()
        && !matches!(
            failure.kind,
            FailureKind::VerintStalled
                | FailureKind::VerintNoAnswer
                | FailureKind::RecordingStalled
                | FailureKind::Deadline
        );
    let wait = RetryPolicy::wait(backoff.filter(|_| in_process)?, error);
    (wait <= policy.max_delay && !too_late_for(wait)).then_some(wait)
}

#[cfg(test)]
mod flow_tests;

#[cfg(test)]
mod tests {
    use aws_sdk_connect::primitives::DateTime as AwsDateTime;
    use aws_sdk_connect::types::{
        AgentInfo, Channel, ContactInitiationMethod, EndpointInfo, EndpointType, QueueInfo,
    };

    use super::*;

    /// Every kind, for the tests that check each has its own metric reason and text.
    const ALL: [FailureKind; 17] = [
        FailureKind::MalformedMessage,
        FailureKind::ConnectRetention,
        FailureKind::ConnectUnknownContact,
        FailureKind::ConnectThrottled,
        FailureKind::ConnectUnavailable,
        FailureKind::RecordingGone,
        FailureKind::RecordingUnreadable,
        FailureKind::RecordingStreamFailed,
        FailureKind::RecordingStalled,
        FailureKind::VerintRejected,
        FailureKind::VerintUnavailable,
        FailureKind::VerintStalled,
        FailureKind::VerintNoAnswer,
        FailureKind::Deadline,
        FailureKind::Panicked,
        FailureKind::TooLargeForOneInvocation,
        FailureKind::VerintKeyRefused,
    ];

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
        assert!(!err.is_permanent());
        assert_eq!(err.kind, FailureKind::Deadline);
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
        assert!(Failure::from_verint(&status(422)).is_permanent());
        assert!(Failure::from_verint(&status(400)).is_permanent());
        assert!(!Failure::from_verint(&status(503)).is_permanent());
        assert!(!Failure::from_verint(&status(429)).is_permanent());
        assert!(!Failure::from_verint(&status(500)).is_permanent());
        assert!(Failure::from_connect(&ConnectError::NotFound).is_permanent());
        assert!(
            !Failure::from_connect(&ConnectError::Throttled("slow down".into())).is_permanent()
        );
        assert!(!Failure::from_connect(&ConnectError::OutOfTime).is_permanent());
    }

    #[test]
    fn a_failure_mid_stream_names_the_side_that_failed() {
        let s3 = Failure::from_verint(&VerintError::Body(std::io::Error::other("reset by S3")));
        assert_eq!(s3.kind, FailureKind::RecordingStreamFailed);
        assert!(s3.reason().starts_with("S3 failed"), "{}", s3.reason());
        let stalled = Failure::from_verint(&VerintError::BodyStalled(Duration::from_secs(60)));
        assert_eq!(stalled.kind, FailureKind::RecordingStalled);
        let verint = Failure::from_verint(&VerintError::Stalled(Duration::from_secs(60)));
        assert_eq!(verint.kind, FailureKind::VerintStalled);
        assert!(verint.reason().starts_with("verint"), "{}", verint.reason());
        let lost = Failure::from_verint(&VerintError::NoAnswer(Duration::from_secs(60)));
        assert_eq!(lost.kind, FailureKind::VerintNoAnswer);
        assert!(!lost.is_permanent());
    }

    #[test]
    fn every_failure_kind_has_its_own_metric_reason_and_text() {
        let reasons: std::collections::HashSet<_> = ALL.iter().map(|k| k.metric_reason()).collect();
        let texts: std::collections::HashSet<_> = ALL.iter().map(|k| k.describe()).collect();
        assert_eq!(reasons.len(), ALL.len());
        assert_eq!(texts.len(), ALL.len());
        for k in ALL {
            let r = k.metric_reason();
            assert!(
                r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{r}"
            );
        }
    }

    #[test]
    fn the_retry_delay_doubles_per_receive_up_to_its_ceiling_with_full_jitter() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(15 * 60);
        let ceiling = |receive| retry_delay(receive, base, max, None, 1.0);
        assert_eq!(ceiling(1), Duration::from_secs(60));
        assert_eq!(ceiling(2), Duration::from_secs(120));
        assert_eq!(ceiling(4), Duration::from_secs(480));
        assert_eq!(ceiling(5), max);
        assert_eq!(
            ceiling(u32::MAX),
            max,
            "no overflow on absurd receive counts"
        );
        assert_eq!(retry_delay(3, base, max, None, 0.0), Duration::ZERO);
        assert_eq!(
            retry_delay(3, base, max, None, 0.5),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn a_longer_retry_after_wins_but_never_beyond_the_maximum() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(15 * 60);
        let ra = |secs| Some(Duration::from_secs(secs));
        assert_eq!(
            retry_delay(1, base, max, ra(300), 0.9),
            Duration::from_secs(300)
        );
        assert_eq!(
            retry_delay(4, base, max, ra(5), 1.0),
            Duration::from_secs(480),
            "a shorter Retry-After does not shorten the backoff"
        );
        assert_eq!(retry_delay(1, base, max, ra(7200), 0.0), max);
    }

    #[test]
    fn only_retries_are_batch_item_failures() {
        assert!(Disposition::Retry("x".into()).is_batch_item_failure());
        assert!(!Disposition::DeadLettered("x".into()).is_batch_item_failure());
        assert!(!Disposition::Done(OutcomeStatus::Recovered).is_batch_item_failure());
    }
}
