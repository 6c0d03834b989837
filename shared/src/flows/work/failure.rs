//! Every way working a message can fail ([`FailureKind`], [`Failure`]): transient or permanent,
//! its metric reason and text, and the retry delay a transient one waits (design §5).

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;

use tokio::time::Instant;

use crate::domain::error::error_chain;
use crate::ports::connect::ConnectError;
use crate::ports::recordings::RecordingError;
use crate::ports::verint::VerintError;

/// No transfer starts with less time than this left in the invocation.
pub(crate) const MIN_TIME_LEFT: Duration = Duration::from_secs(15);
/// The slowest transfer rate planned for when deciding whether a transfer fits the time left.
pub(crate) const PLANNING_RATE_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;

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
    /// A recording is not RIFF/WAVE audio (design §10).
    RecordingNotWav,
    /// A recording is archived and its restore was asked for: the message waits for it
    /// without using up its receives (design §10).
    RecordingRestoring,
    /// A recording is still archived after `RESTORE_MAX_WAIT`: transient like any other.
    RecordingArchived,
    /// `RECORDING_VARIANT` is `redacted` and the call has no redacted recording yet.
    NoRedactedRecording,
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
                | FailureKind::RecordingNotWav
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
            FailureKind::RecordingNotWav => "recording_not_wav",
            FailureKind::RecordingRestoring => "recording_restoring",
            FailureKind::RecordingArchived => "recording_archived",
            FailureKind::NoRedactedRecording => "no_redacted_recording",
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
            FailureKind::RecordingNotWav => "a recording is not RIFF/WAVE audio",
            FailureKind::RecordingRestoring => {
                "a recording is archived; its restore was requested and the call waits for it"
            }
            FailureKind::RecordingArchived => {
                "a recording is still archived after RESTORE_MAX_WAIT"
            }
            FailureKind::NoRedactedRecording => crate::domain::recording::NO_REDACTED,
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
    /// A restore waited for is Deep Archive's (the slowest).
    pub deep_archive: bool,
}

impl Failure {
    pub fn new(kind: FailureKind) -> Self {
        Failure {
            kind,
            detail: None,
            retry_after: None,
            deep_archive: false,
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
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
            deep_archive: false,
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
            RecordingError::Archived { .. } => FailureKind::RecordingRestoring,
            RecordingError::Listing { .. } => FailureKind::RecordingUnreadable,
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

/// Runs `work`; a panic inside it becomes a transient [`FailureKind::Panicked`] failure that
/// names the panic's message. The one place the worker catches panics: a panic fails the message
/// it happened in, never the batch or the process. A combinator, not an `async fn`: the future it
/// wraps (an upload's, large in a debug build) is never copied into a state machine of its own.
pub(crate) fn caught<F: Future>(work: F) -> impl Future<Output = Result<F::Output, Failure>> {
    AssertUnwindSafe(work).catch_unwind().map(|result| {
        result.map_err(|panic| {
            Failure::new(FailureKind::Panicked).with_detail(panic_message(panic.as_ref()))
        })
    })
}

/// A panic's message, as far as it can be read.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
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
            status: http::StatusCode::from_u16(code).expect("valid"),
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
}
