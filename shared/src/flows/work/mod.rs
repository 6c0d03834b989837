//! Working one message (design §5, §6): re-check Verint, describe the contact in Connect, stream
//! its recordings from S3 into Verint's ingest endpoint, record the outcome, and settle the
//! message (delete it, release it with its retry delay, or dead-letter it). Shared by the worker
//! Lambda and `recoveryctl work`.
//!
//! The flow is generic over the ports it needs ([`VerintIngest`], [`ContactDirectory`],
//! [`RecordingStore`], [`MessageQueue`], [`OutcomeStore`]), so every failure path is tested with
//! in-memory fakes (`flow_tests`). What can fail is in `failure`, the ingest's metadata in
//! `metadata`.

mod failure;
mod metadata;
mod settings;

pub use settings::{ONE_INVOCATION_UPLOAD, WorkSettings};

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
use crate::domain::message::WorkMessage;
use crate::domain::metrics::{Metrics, Unit, names};
use crate::domain::report::{Outcome, OutcomeStatus};
use crate::domain::time::{format_ts, parse_ts};
use crate::ports::bounded;
use crate::ports::connect::ContactDirectory;
use crate::ports::queue::MessageQueue;
use crate::ports::queue::{QueueError, Received};
use crate::ports::recordings::Recording;
use crate::ports::recordings::RecordingStore;
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

/// What a series of messages came to (`recoveryctl work`'s summary): each disposition counted
/// once, a success by its status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub received: u64,
    pub recovered: u64,
    pub already_present: u64,
    pub retry_later: u64,
    pub dead_lettered: u64,
}

impl Tally {
    pub fn add(&mut self, d: &Disposition) {
        self.received += 1;
        match d {
            Disposition::Done(OutcomeStatus::Recovered) => self.recovered += 1,
            Disposition::Done(_) => self.already_present += 1,
            Disposition::Retry(_) => self.retry_later += 1,
            Disposition::DeadLettered(_) => self.dead_lettered += 1,
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
        contact: &DescribedContact,
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
    use super::*;

    #[test]
    fn only_retries_are_batch_item_failures() {
        assert!(Disposition::Retry("x".into()).is_batch_item_failure());
        assert!(!Disposition::DeadLettered("x".into()).is_batch_item_failure());
        assert!(!Disposition::Done(OutcomeStatus::Recovered).is_batch_item_failure());
    }
}
