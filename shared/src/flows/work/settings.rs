//! How the worker works: its concurrency, retry delays and the longest upload one invocation
//! carries (design §5, §7).

use super::*;

/// How the worker works: concurrency and the retry delays (design §5, §7).
#[derive(Debug, Clone)]
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
    /// Which audio is sent and how archives are restored (design §10).
    pub audio: AudioSettings,
}

/// Which audio of a call the worker sends, and how it waits for an archived one (design §10).
#[derive(Debug, Clone, Default)]
pub struct AudioSettings {
    pub variant: crate::domain::recording::Variant,
    pub redacted_prefix: String,
    pub restore_tier: crate::domain::recording::RestoreTier,
    pub restore_max_wait: Duration,
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
            audio: AudioSettings {
                variant: config.recording_variant,
                redacted_prefix: config.redacted_prefix.clone(),
                restore_tier: config.restore_tier,
                restore_max_wait: config.restore_max_wait,
            },
        }
    }

    /// Fails (permanently) a call of `bytes` that cannot be uploaded within one invocation at
    /// the minimum link rate, with a reason that says how large it is and what to do.
    pub(super) fn check_fits_one_invocation(&self, bytes: u64) -> Result<(), Failure> {
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
