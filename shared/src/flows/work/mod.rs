//! Working one message (design §5, §6): re-check Verint, describe the contact in Connect, stream
//! its recordings from S3 into Verint's ingest endpoint, record the outcome, and settle the
//! message (delete it, release it with its retry delay, or dead-letter it). Shared by the worker
//! Lambda and `recoveryctl work`.
//!
//! The flow is generic over the ports it needs ([`VerintIngest`], [`ContactDirectory`],
//! [`RecordingStore`], [`MessageQueue`], [`OutcomeStore`]), so every failure path is tested with
//! in-memory fakes (`flow_tests`). What can fail is in `failure`, the ingest's metadata in
//! `metadata`.

mod audio;
mod failure;
mod metadata;
mod settings;

pub use settings::{AudioSettings, ONE_INVOCATION_UPLOAD, WorkSettings};

use audio::{Probes, Truncation};
use failure::caught;
pub(crate) use failure::{Failure, FailureKind, MIN_TIME_LEFT, check_time_left, retry_delay};
use metadata::build_metadata;

use std::time::Duration;

use crate::ports::connect::DescribedContact;
use chrono::Utc;
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use crate::domain::contacts::CONNECT_RETENTION;
use crate::domain::contacts::is_contact_id;
use crate::domain::ctr::S3Location;
use crate::domain::error::error_chain;
use crate::domain::message::{QueuedRecording, WorkMessage};
use crate::domain::metrics::{Metrics, Unit, names};
use crate::domain::recording::{
    choose_audio, is_redacted_key, redacted_contact_prefix, restore_check_delay,
};
use crate::domain::report::{Outcome, OutcomeStatus};
use crate::domain::time::{format_ts, parse_ts};
use crate::ports::bounded;
use crate::ports::connect::ContactDirectory;
use crate::ports::queue::MessageQueue;
use crate::ports::queue::{QueueError, Received};
use crate::ports::recordings::RecordingStore;
use crate::ports::recordings::{Recording, RecordingError, Restore};
use crate::ports::store::OutcomeStore;
use crate::ports::verint::VerintIngest;
use crate::ports::verint::{AudioPart, Ingested};
use crate::ports::verint::{RetryPolicy, VerintError};

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
    /// Its string message attributes (a restore's wait, design §10).
    pub attributes: std::collections::HashMap<String, String>,
}

impl From<&Received> for Incoming {
    fn from(r: &Received) -> Self {
        Incoming {
            message_id: r.message_id.clone(),
            receipt_handle: r.receipt_handle.clone(),
            body: r.body.clone(),
            receive_count: r.receive_count,
            attributes: r.attributes.clone(),
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
    /// A recording is archived: its restore was requested and the message waits for it without
    /// using up its receives (design §10).
    Restoring(String),
}

impl Disposition {
    pub fn is_batch_item_failure(&self) -> bool {
        matches!(self, Disposition::Retry(_) | Disposition::Restoring(_))
    }
}

/// What a series of messages came to (`recoveryctl work`'s summary): each disposition counted
/// once, a success by its status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub received: u64,
    pub recovered: u64,
    pub already_present: u64,
    pub retry_later: u64,
    pub dead_lettered: u64,
    pub restoring: u64,
}

impl Tally {
    pub fn add(&mut self, d: &Disposition) {
        self.received += 1;
        match d {
            Disposition::Done(OutcomeStatus::Recovered) => self.recovered += 1,
            Disposition::Done(_) => self.already_present += 1,
            Disposition::Retry(_) => self.retry_later += 1,
            Disposition::DeadLettered(_) => self.dead_lettered += 1,
            Disposition::Restoring(_) => self.restoring += 1,
        }
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
    /// Recordings ingested shorter than their CTR says.
    truncated: u32,
}

/// A message's work that succeeded.
#[derive(Debug)]
struct Done {
    status: OutcomeStatus,
    interaction_id: String,
    bytes: u64,
    truncated: Option<Truncation>,
    /// The archive class of a recording restored before it was sent.
    restored_from: Option<String>,
    /// Sent as its redacted audio.
    redacted: bool,
}

impl Done {
    fn present(interaction_id: String) -> Self {
        Done {
            status: OutcomeStatus::AlreadyPresent,
            interaction_id,
            bytes: 0,
            truncated: None,
            restored_from: None,
            redacted: false,
        }
    }
}

/// Message attributes of a message waiting for a restore (design §10): when the wait began,
/// how many checks it has had, and when the next one is due.
const RESTORE_SINCE: &str = "restore_since";
const RESTORE_WAITS: &str = "restore_waits";
const RESTORE_CHECK_AT: &str = "restore_check_at";
/// SQS's longest `DelaySeconds`, and its longest visibility timeout.
const MAX_SQS_DELAY: Duration = Duration::from_secs(900);
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

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
                    match caught(self.work(m, deadline, uploads)).await {
                        Ok((d, f, e)) => (i, d, f, e),
                        Err(failure) => {
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
                (Disposition::Restoring(_), _) => metrics.count(names::RESTORING, 1),
                (Disposition::Done(_), _) => metrics.count(names::ALREADY_PRESENT, 1),
                // Every path that does not end in `Done` names its kind.
                (_, kind) => metrics.failed(kind.unwrap_or(FailureKind::Panicked).metric_reason()),
            }
            if effort.truncated > 0 {
                metrics.count(names::TRUNCATED_RECORDINGS, u64::from(effort.truncated));
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
        if let Some(d) = self.before_restore_check(incoming, deadline).await {
            return (d, None, Effort::default());
        }
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
    ) -> Result<Done, Failure> {
        let work_deadline = deadline.map(|d| d.checked_sub(SETTLE_RESERVE).unwrap_or(d));
        let recovering = caught(self.recover(message, attempt, work_deadline, uploads, effort));
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
        .unwrap_or_else(Err)
    }

    /// Settles the message by the result of its work (done, released for a retry, or
    /// dead-lettered) and says what the outcome records.
    async fn settle(
        &self,
        incoming: &Incoming,
        message: &WorkMessage,
        result: Result<Done, Failure>,
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
            integrity: None,
            expected_seconds: None,
            actual_seconds: None,
            restored_from: None,
            redacted: false,
        };
        let failure = match result {
            Ok(done) => {
                info!(status = ?done.status, bytes = done.bytes, "contact done");
                outcome.status = done.status;
                outcome.bytes = done.bytes;
                outcome.interaction_id = Some(done.interaction_id).filter(|s| !s.is_empty());
                outcome.restored_from = done.restored_from;
                outcome.redacted = done.redacted;
                if let Some(t) = done.truncated {
                    warn!(
                        key = %t.key,
                        expected_s = t.expected_seconds,
                        actual_s = t.actual_seconds,
                        recordings = t.recordings,
                        "a recording is shorter than its CTR says; ingested as the best copy there is"
                    );
                    outcome.integrity = Some(crate::domain::report::TRUNCATED.to_owned());
                    outcome.expected_seconds = Some(t.expected_seconds);
                    outcome.actual_seconds = Some(t.actual_seconds);
                }
                return (Disposition::Done(done.status), None, outcome);
            }
            Err(failure) => failure,
        };
        outcome.reason = Some(failure.reason());
        if failure.kind == FailureKind::RecordingRestoring {
            match self.wait_for_restore(incoming, &failure, deadline).await {
                Some(d) => {
                    outcome.status = OutcomeStatus::Restoring;
                    return (d, Some(failure.kind), outcome);
                }
                None => {
                    // Waited for longer than RESTORE_MAX_WAIT: a transient failure like any other.
                    let archived = Failure {
                        kind: FailureKind::RecordingArchived,
                        ..failure.clone()
                    };
                    outcome.reason = Some(archived.reason());
                    let d = if self
                        .settings
                        .max_receive_count
                        .is_some_and(|max| incoming.receive_count >= max)
                    {
                        self.dead_letter(incoming, &archived, deadline).await
                    } else {
                        self.release(incoming, &archived, deadline).await
                    };
                    return (d, Some(archived.kind), outcome);
                }
            }
        }
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
        match bounded(deadline, self.queue.requeue(&incoming.body, delay, &[])).await {
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
    ) -> Result<Done, Failure> {
        let oldest = Utc::now() - CONNECT_RETENTION;
        if parse_ts(&message.initiation_timestamp).is_some_and(|t| t < oldest) {
            return Err(Failure::new(FailureKind::ConnectRetention));
        }
        check_time_left(deadline, 0)?;
        if let Some(interaction_id) = self.already_held(message, deadline).await? {
            return Ok(Done::present(interaction_id));
        }
        // Which audio is sent, and every recording of it readable (an archived one is restored
        // first), before Connect is asked and before any ingest is opened (design §10).
        let audio = self.choose_audio(message, deadline).await?;
        let mut opened = Some(self.open_all(&audio, deadline).await?);
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
                let recordings = match opened.take() {
                    Some(r) => r,
                    None => self.open_all(&audio, deadline).await?,
                };
                self.upload(&contact, message, &audio, recordings, deadline, effort)
                    .await
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
        contact: &DescribedContact,
        message: &WorkMessage,
        audio: &[QueuedRecording],
        recordings: Vec<Recording>,
        deadline: Option<Instant>,
        effort: &mut Effort,
    ) -> Result<Result<Done, VerintError>, Failure> {
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
        let lens: Vec<u64> = recordings.iter().map(|r| r.len).collect();
        let restored_from = recordings.iter().find_map(|r| r.restored_from.clone());
        let mut probes = Probes::default();
        let parts = recordings
            .into_iter()
            .map(|r| AudioPart {
                len: r.len,
                body: probes.watch(r.body),
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
                let truncated = probes.truncation(audio, &lens);
                effort.truncated += truncated.as_ref().map_or(0, |t| t.recordings);
                Ok(Ok(Done {
                    status: OutcomeStatus::Recovered,
                    interaction_id,
                    bytes: total,
                    truncated,
                    restored_from,
                    redacted: self.settings.audio.variant.wants_redacted()
                        && audio
                            .iter()
                            .all(|r| is_redacted_key(&self.settings.audio.redacted_prefix, &r.key)),
                }))
            }
            Some(Ok(Ingested::AlreadyPresent { interaction_id })) => {
                Ok(Ok(Done::present(interaction_id)))
            }
            Some(Err(e)) => {
                match probes.not_wav(audio) {
                    // The upload was stopped because a recording is not audio: no attempt can
                    // succeed (design §10).
                    Some((key, wav)) => Err(Failure::new(FailureKind::RecordingNotWav)
                        .with_detail(format!("{key}: {wav}"))),
                    None => Ok(Err(e)),
                }
            }
        }
    }

    /// Opens every recording; a missing object is permanent, any other error (access, KMS,
    /// network) transient, so that a fixed permission plus a redrive recovers it. Archived
    /// recordings are all restored (each asked for once) and the call waits for them.
    async fn open_all(
        &self,
        queued: &[QueuedRecording],
        deadline: Option<Instant>,
    ) -> Result<Vec<Recording>, Failure> {
        let mut out = Vec::with_capacity(queued.len());
        let mut archived = Vec::new();
        for q in queued {
            match self.recordings.open(&q.location(), deadline).await {
                Ok(r) => out.push(r),
                Err(e @ RecordingError::Archived { .. }) => archived.push(e),
                Err(e) => return Err(Failure::from_recording(&e)),
            }
        }
        if archived.is_empty() {
            return Ok(out);
        }
        let tier = self.settings.audio.restore_tier;
        let mut detail = Vec::new();
        for e in &archived {
            if let RecordingError::Archived {
                bucket,
                key,
                storage_class,
                restore,
            } = e
            {
                let location = S3Location {
                    bucket: bucket.clone(),
                    key: key.clone(),
                };
                if *restore == Restore::NotRequested {
                    self.recordings
                        .restore(&location, tier, deadline)
                        .await
                        .map_err(|e| Failure::from_recording(&e))?;
                    info!(%key, %storage_class, tier = tier.as_str(), "restore requested");
                }
                detail.push(format!(
                    "s3://{bucket}/{key} ({storage_class}, {} restore)",
                    tier.as_str()
                ));
            }
        }
        Err(Failure {
            deep_archive: archived.iter().any(RecordingError::is_deep_archive),
            ..Failure::new(FailureKind::RecordingRestoring).with_detail(detail.join(", "))
        })
    }

    /// The audio this message sends under `RECORDING_VARIANT` (design §10): its recordings, or
    /// the call's redacted audio, looked for beside them when the planner did not name it.
    async fn choose_audio(
        &self,
        message: &WorkMessage,
        deadline: Option<Instant>,
    ) -> Result<Vec<QueuedRecording>, Failure> {
        let settings = &self.settings.audio;
        let prefix = &settings.redacted_prefix;
        let already_redacted = message
            .recordings
            .iter()
            .all(|r| is_redacted_key(prefix, &r.key));
        if !settings.variant.wants_redacted() || already_redacted {
            return Ok(message.recordings.clone());
        }
        let (Some(first), Some(initiation)) = (
            message.recordings.first(),
            parse_ts(&message.initiation_timestamp),
        ) else {
            return Ok(message.recordings.clone());
        };
        let bucket = first.bucket.clone();
        let contact_prefix = redacted_contact_prefix(prefix, initiation, &message.contact_id);
        let keys = self
            .recordings
            .keys(&bucket, &contact_prefix, deadline)
            .await
            .map_err(|e| Failure::from_recording(&e))?;
        choose_audio(settings.variant, &message.recordings, &bucket, &keys).ok_or_else(|| {
            Failure::new(FailureKind::NoRedactedRecording)
                .with_detail(format!("nothing under s3://{bucket}/{contact_prefix} yet"))
        })
    }

    /// A message that waits for a restore comes back after at most SQS's 15-minute delay; until
    /// its check is due it is made invisible again (at most 12 hours at a time). `None` when
    /// the message is not waiting, or its check is due.
    async fn before_restore_check(
        &self,
        incoming: &Incoming,
        deadline: Option<Instant>,
    ) -> Option<Disposition> {
        let check_at = incoming
            .attributes
            .get(RESTORE_CHECK_AT)
            .and_then(|t| parse_ts(t))?;
        let wait = (check_at - Utc::now()).to_std().ok()?;
        if wait < Duration::from_secs(1) || incoming.receipt_handle.is_empty() {
            return None;
        }
        let wait = wait.min(MAX_VISIBILITY);
        if let Some(Err(e)) = bounded(
            deadline,
            self.queue.retry_in(&incoming.receipt_handle, wait),
        )
        .await
        {
            warn!(error.message = %e, "the wait for a restore could not be set; checked early");
            return None;
        }
        Some(Disposition::Restoring(format!(
            "waiting for a restore; next check at {}",
            format_ts(check_at)
        )))
    }

    /// Sends the message again as a new one that comes back when the restore is worth checking
    /// (a delay that grows toward the tier's typical restore time), and deletes this one, so
    /// that waiting never uses up its receives. `None` when it has waited `RESTORE_MAX_WAIT`.
    async fn wait_for_restore(
        &self,
        incoming: &Incoming,
        failure: &Failure,
        deadline: Option<Instant>,
    ) -> Option<Disposition> {
        let now = Utc::now();
        let since = incoming
            .attributes
            .get(RESTORE_SINCE)
            .and_then(|t| parse_ts(t))
            .unwrap_or(now);
        let waits: u32 = incoming
            .attributes
            .get(RESTORE_WAITS)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let max_wait = self.settings.audio.restore_max_wait;
        if (now - since).to_std().unwrap_or_default() >= max_wait {
            warn!(since = %format_ts(since), "a restore waited longer than RESTORE_MAX_WAIT");
            return None;
        }
        let delay = restore_check_delay(
            self.settings.audio.restore_tier,
            failure.deep_archive,
            waits,
            self.settings.retry_base,
        );
        let check_at = now + chrono::TimeDelta::from_std(delay).unwrap_or_default();
        let mut attributes = vec![
            (RESTORE_SINCE, format_ts(since)),
            (RESTORE_WAITS, (waits + 1).to_string()),
        ];
        if delay > MAX_SQS_DELAY {
            attributes.push((RESTORE_CHECK_AT, format_ts(check_at)));
        }
        info!(
            reason = %failure.reason(),
            check_in_s = delay.as_secs(),
            waits,
            "recording archived; the call waits for its restore without using up its receives"
        );
        let requeued = bounded(
            deadline,
            self.queue
                .requeue(&incoming.body, delay.min(MAX_SQS_DELAY), &attributes),
        )
        .await;
        match requeued {
            Some(Ok(())) => {
                if !incoming.receipt_handle.is_empty()
                    && let Some(Err(e)) =
                        bounded(deadline, self.queue.delete(&incoming.receipt_handle)).await
                {
                    warn!(error.message = %e, "the original could not be deleted; it comes back too");
                }
            }
            _ => {
                // Not sent again: released with the delay instead (this receive counts).
                if !incoming.receipt_handle.is_empty() {
                    let _ = bounded(
                        deadline,
                        self.queue
                            .retry_in(&incoming.receipt_handle, delay.min(MAX_VISIBILITY)),
                    )
                    .await;
                }
            }
        }
        Some(Disposition::Restoring(failure.reason()))
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
    use super::*;

    #[test]
    fn only_retries_are_batch_item_failures() {
        assert!(Disposition::Retry("x".into()).is_batch_item_failure());
        assert!(!Disposition::DeadLettered("x".into()).is_batch_item_failure());
        assert!(!Disposition::Done(OutcomeStatus::Recovered).is_batch_item_failure());
    }
}
