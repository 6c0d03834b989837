//! Verint, as the flows see it (design §6): which contacts it holds, and the ingest of one call.
//! Its failures are one vocabulary ([`VerintError`]) whatever carries them.

use std::collections::HashSet;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::stream::BoxStream;
use http::StatusCode;
use tokio::time::Instant;

use crate::domain::contacts::ContactKey;
use crate::domain::metadata::Metadata;
use crate::domain::time::Window;

/// The longest `Retry-After` honoured within one receive.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum VerintError {
    /// The connection failed, or the answer did not come in time (`timeout`).
    #[error("verint could not be reached")]
    Transport {
        timeout: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("verint answered {status}: {detail}")]
    Status {
        status: StatusCode,
        detail: String,
        retry_after: Option<Duration>,
    },
    #[error("verint's answer could not be read")]
    Decode(#[source] serde_json::Error),
    /// An answer that is not the JSON the contract specifies (a gateway's or proxy's page):
    /// it proves nothing, whatever its status.
    #[error("an answer that is not verint's ({status}): {what}")]
    NotVerint {
        status: StatusCode,
        what: &'static str,
    },
    /// A DAS listing gave a cursor it had already given.
    #[error("verint das repeated a cursor of the same listing")]
    RepeatedCursor,
    /// Verint refused the key (401); `fresh_key` when a key read since is ready to try at once.
    #[error("verint refused the api key")]
    KeyRefused { fresh_key: bool },
    /// The whole call was sent and the answer was lost (a reset, a 502/504): Verint may have
    /// stored it and still be committing it.
    #[error("verint's answer to the whole upload was lost")]
    AnswerLost(#[source] Box<VerintError>),
    /// The recording (the request body's source) failed mid-stream: the S3 side, not Verint.
    #[error("the recording could not be streamed")]
    Body(#[source] std::io::Error),
    /// The recording's source gave no byte for the stall timeout: the S3 side, not Verint.
    #[error("the recording gave no byte for {}s", .0.as_secs())]
    BodyStalled(Duration),
    /// Verint accepted no byte of the upload for the stall timeout.
    #[error("verint accepted no byte for {}s", .0.as_secs())]
    Stalled(Duration),
    /// The whole call was sent but Verint did not answer within the stall timeout.
    #[error("verint did not answer within {}s of the upload's end", .0.as_secs())]
    NoAnswer(Duration),
    /// The time left before the invocation's deadline cannot cover another attempt; `last` is
    /// the failure of the attempt before, if there was one.
    #[error("the invocation's deadline left no time for another verint attempt")]
    OutOfTime { last: Option<Box<VerintError>> },
    #[error("{0}")]
    Url(String),
    #[error("contact id {0:?} is not a UUID")]
    BadContactId(String),
}

impl VerintError {
    /// Whether trying again later can succeed. Only `400` and `422` are rejections of the call
    /// (design §6); every other answer, connection problems, stalls and timeouts are transient,
    /// so a fixed key, route or Verint plus a redrive recovers them.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            VerintError::Transport { .. }
            | VerintError::Body(_)
            | VerintError::BodyStalled(_)
            | VerintError::Stalled(_)
            | VerintError::NoAnswer(_)
            | VerintError::NotVerint { .. }
            | VerintError::RepeatedCursor
            | VerintError::KeyRefused { .. }
            | VerintError::AnswerLost(_)
            | VerintError::OutOfTime { .. } => true,
            VerintError::Status { status, .. } => !matches!(
                *status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            VerintError::Decode(_) | VerintError::Url(_) | VerintError::BadContactId(_) => false,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            VerintError::Status { retry_after, .. } => *retry_after,
            VerintError::OutOfTime { last: Some(e) } => e.retry_after(),
            _ => None,
        }
    }

    /// A short, stable reason for reports and dead-letter attributes.
    pub fn reason(&self) -> String {
        match self {
            VerintError::Transport { timeout: true, .. } => "verint timed out".into(),
            VerintError::Transport { .. } => "verint connection failed".into(),
            VerintError::Status { status, detail, .. } => {
                format!("verint answered {}: {detail}", status.as_u16())
            }
            VerintError::Decode(_) => "verint's answer could not be read".into(),
            VerintError::NotVerint { status, what } => {
                format!(
                    "an answer that is not verint's ({}): {what}",
                    status.as_u16()
                )
            }
            VerintError::KeyRefused { .. } => "verint answered 401: the api key was refused".into(),
            VerintError::AnswerLost(e) => {
                format!("answer lost after the whole upload: {}", e.reason())
            }
            VerintError::Body(e) => format!("recording stream failed: {e}"),
            VerintError::OutOfTime { last: Some(e) } => {
                format!("{}; no time left to try again", e.reason())
            }
            other => other.to_string(),
        }
    }
}

/// How often and how patiently transient Verint failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Jittered exponential delays, one per retry.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
            .build()
    }

    /// The wait before the next try: the backoff's, or the server's `Retry-After` if longer.
    pub fn wait(backoff: Duration, error: &VerintError) -> Duration {
        error
            .retry_after()
            .map_or(backoff, |ra| ra.min(MAX_RETRY_AFTER).max(backoff))
    }
}

/// Which contacts Verint holds.
pub trait VerintHoldings: Send + Sync {
    /// The contacts whose start time is in one of `spans` (sorted, disjoint, of any length).
    fn completed_contacts(
        &self,
        spans: &[Window],
    ) -> impl Future<Output = Result<HashSet<ContactKey>, VerintError>> + Send;
}

/// Verint, as the worker uses it.
pub trait VerintIngest: Send + Sync {
    /// Whether Verint already holds the contact; retries stop when `deadline` leaves no time.
    fn holds(
        &self,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Option<String>, VerintError>> + Send;
    /// One upload attempt (a stream cannot be replayed).
    fn ingest(
        &self,
        metadata: &Metadata,
        audio: Vec<AudioPart>,
    ) -> impl Future<Output = Result<Ingested, VerintError>> + Send;
    /// How often an upload is tried again within one receive.
    fn retry_policy(&self) -> RetryPolicy;
}

/// A request or part body: a stream of byte chunks.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// One audio part: its exact length and its bytes as a stream.
pub struct AudioPart {
    pub len: u64,
    pub body: BodyStream,
}

impl std::fmt::Debug for AudioPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioPart")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What Verint did with the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// 201: stored now.
    Created { interaction_id: String },
    /// 409: it was already there (a success: the call is in Verint).
    AlreadyPresent { interaction_id: String },
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{HashSet, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::StreamExt;
    use tokio::time::Instant;

    use super::*;
    use crate::ports::lock;

    /// What the fake Verint does with one upload.
    #[derive(Debug)]
    pub(crate) enum Answer {
        Created,
        Conflict,
        Fail(fn() -> VerintError),
        /// Never answers (a transfer cut by the deadline).
        Hang,
    }

    #[derive(Default)]
    pub(crate) struct FakeVerint {
        /// Ids Verint holds, as DAS spells them.
        pub(crate) held: Mutex<HashSet<String>>,
        pub(crate) holds_error: Mutex<Option<fn() -> VerintError>>,
        /// One answer per upload, in order; `Created` once they run out.
        pub(crate) answers: Mutex<VecDeque<Answer>>,
        pub(crate) panic_for: Option<&'static str>,
        pub(crate) holds_calls: AtomicUsize,
        /// Contact ids and bytes of the uploads Verint stored.
        pub(crate) stored: Mutex<Vec<(String, u64)>>,
        pub(crate) uploads: AtomicUsize,
        /// How long each upload takes (a slow line), and the most that ran at once.
        pub(crate) upload_time: Option<Duration>,
        pub(crate) uploading: AtomicUsize,
        pub(crate) most_uploading: AtomicUsize,
    }

    impl VerintIngest for FakeVerint {
        async fn holds(
            &self,
            contact_id: &str,
            _deadline: Option<Instant>,
        ) -> Result<Option<String>, VerintError> {
            self.holds_calls.fetch_add(1, Ordering::SeqCst);
            if self.panic_for == Some(contact_id) {
                panic!("fake verint panics for {contact_id}");
            }
            if let Some(e) = *lock(&self.holds_error) {
                return Err(e());
            }
            let held = lock(&self.held)
                .iter()
                .any(|h| h.eq_ignore_ascii_case(contact_id));
            Ok(held.then(|| "INT-1".to_owned()))
        }

        async fn ingest(
            &self,
            metadata: &Metadata,
            audio: Vec<AudioPart>,
        ) -> Result<Ingested, VerintError> {
            self.uploads.fetch_add(1, Ordering::SeqCst);
            if let Some(t) = self.upload_time {
                let now = self.uploading.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_uploading.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(t).await;
                self.uploading.fetch_sub(1, Ordering::SeqCst);
            }
            let answer = lock(&self.answers).pop_front().unwrap_or(Answer::Created);
            if let Answer::Hang = answer {
                return std::future::pending().await;
            }
            let mut bytes = 0;
            for mut part in audio {
                while let Some(chunk) = part.body.next().await {
                    bytes += chunk.map_err(VerintError::Body)?.len() as u64;
                }
            }
            match answer {
                Answer::Created => {
                    lock(&self.stored).push((metadata.amazon_contact_id.clone(), bytes));
                    Ok(Ingested::Created {
                        interaction_id: "INT-9".into(),
                    })
                }
                Answer::Conflict => Ok(Ingested::AlreadyPresent {
                    interaction_id: "INT-1".into(),
                }),
                Answer::Fail(e) => Err(e()),
                Answer::Hang => unreachable!("handled above"),
            }
        }

        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                attempts: 3,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            }
        }
    }

    /// Which contacts Verint holds, whatever the spans asked.
    #[derive(Default)]
    pub(crate) struct FakeHoldings {
        pub(crate) held: HashSet<ContactKey>,
    }

    impl VerintHoldings for FakeHoldings {
        async fn completed_contacts(
            &self,
            _spans: &[Window],
        ) -> Result<HashSet<ContactKey>, VerintError> {
            Ok(self.held.clone())
        }
    }
}
