//! The typed configuration (design §7), parsed once at start from a lookup function so that
//! tests never touch the process environment.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

pub use crate::domain::recording::{RestoreTier, Variant};

/// Where the Verint API key comes from.
#[derive(Debug, Clone)]
pub enum VerintKeySource {
    /// A Secrets Manager secret holding `{"keyId","key"}` (deployed functions).
    Secret(String),
    /// Given directly (local runs).
    Direct { key_id: String, key: SecretString },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub ctr_bucket: String,
    /// Precedes `YYYY/MM/DD/HH/`; may be empty.
    pub ctr_prefix: String,
    /// The instance id (the last part of the instance ARN): the first of
    /// [`Config::connect_instance_ids`].
    pub connect_instance_id: String,
    /// Every instance this deployment plans for (design §11): `CONNECT_INSTANCE_IDS`, or
    /// `CONNECT_INSTANCE_ID` alone.
    pub connect_instance_ids: Vec<String>,
    pub work_queue_url: String,
    pub dead_letter_queue_url: String,
    pub state_bucket: String,
    pub state_prefix: String,
    pub verint_das_url: Url,
    pub verint_ingest_url: Url,
    pub verint_key: VerintKeySource,
    pub settle_delay: Duration,
    pub arrival_slack: Duration,
    pub das_margin: Duration,
    pub max_hours_per_run: u32,
    pub initial_lookback: Duration,
    pub max_manual_span: Duration,
    pub connect_max_rps: f64,
    /// The slowest link to Verint the deployment must work over, in bytes per second: a call
    /// whose recordings cannot be uploaded within one invocation at this rate is dead-lettered
    /// at once, with its size, instead of failing every receive (design §5.5).
    pub min_link_rate: u64,
    /// Backfill pacing (design §4.8): a slice is planned only while the backfill queue holds
    /// fewer messages than this; `None` (unset): no pacing.
    pub backfill_max_queued: Option<u64>,
    /// How far back automatic runs look for late objects (design §4).
    pub late_sweep: Duration,
    /// Optional (`MAX_RECEIVE_COUNT`, the work queue's `maxReceiveCount`): on its last receive, a
    /// transient failure is dead-lettered by the worker itself, with its `failure_reason`, rather
    /// than moved there by SQS without one.
    pub max_receive_count: Option<u32>,
    /// A transient failure's retry delay (design §5): `min(retry_max, retry_base × 2^(receive−1))`
    /// with full jitter, or Verint's `Retry-After` if longer (up to `retry_max`).
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A transfer that moves no byte for this long is abandoned as transient (design §5).
    pub stall_timeout: Duration,
    /// Where Connect writes call recordings (`RECORDINGS_BUCKET`, `RECORDINGS_PREFIX`, design
    /// §9); unset: manual runs list no recordings and find no orphans.
    pub recordings: Option<RecordingsLocation>,
    /// The planning queue (`PLANNING_QUEUE_URL`, design §4 backfills): a manual window over 24
    /// hours is sent there as one message per slice; unset, the slices run in this process.
    pub planning_queue_url: Option<String>,
    /// The backfill work queue (`BACKFILL_QUEUE_URL`): slices of a backfill queue their missing
    /// calls there, consumed with less concurrency, so live recovery is never stuck behind them;
    /// unset, they go to the work queue.
    pub backfill_queue_url: Option<String>,
    /// Which audio of a call is sent, and where Contact Lens writes the redacted one (design
    /// §10).
    pub recording_variant: Variant,
    pub redacted_prefix: String,
    /// How archived recordings are restored, and how long that is waited for (design §10).
    pub restore_tier: RestoreTier,
    pub restore_max_wait: Duration,
}

/// The bucket and prefix under which Connect writes recordings, `{prefix}YYYY/MM/DD/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsLocation {
    pub bucket: String,
    pub prefix: String,
}

/// One environment variable of design §7: its name, its default, and what it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The value an unset (or empty) variable takes; `None`: required, or optional with no value.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn var(name: &'static str, default: Option<&'static str>, doc: &'static str) -> Variable {
    Variable { name, default, doc }
}

pub const CTR_BUCKET: Variable = var("CTR_BUCKET", None, "where Firehose writes CTRs");
pub const CTR_PREFIX: Variable = var("CTR_PREFIX", Some(""), "precedes `YYYY/MM/DD/HH/`");
pub const CONNECT_INSTANCE_ID: Variable = var(
    "CONNECT_INSTANCE_ID",
    None,
    "the Amazon Connect instance, as an id or an instance ARN",
);
pub const CONNECT_INSTANCE_IDS: Variable = var(
    "CONNECT_INSTANCE_IDS",
    None,
    "several instances of the account, comma-separated (ids or ARNs); overrides CONNECT_INSTANCE_ID (§11)",
);
pub const WORK_QUEUE_URL: Variable = var("WORK_QUEUE_URL", None, "the work queue");
pub const DEAD_LETTER_QUEUE_URL: Variable = var(
    "DEAD_LETTER_QUEUE_URL",
    None,
    "the work queue's dead-letter queue",
);
pub const STATE_BUCKET: Variable = var("STATE_BUCKET", None, "checkpoint, run reports, outcomes");
pub const STATE_PREFIX: Variable = var(
    "STATE_PREFIX",
    Some("call-recovery/"),
    "the folder of the run state; set empty, the bucket's root",
);
pub const VERINT_DAS_URL: Variable = var(
    "VERINT_DAS_URL",
    None,
    "Verint's Data Access Services (https; http only to loopback)",
);
pub const VERINT_INGEST_URL: Variable = var(
    "VERINT_INGEST_URL",
    None,
    "Verint's ingestion API (https; http only to loopback)",
);
pub const VERINT_API_KEY_SECRET_ID: Variable = var(
    "VERINT_API_KEY_SECRET_ID",
    None,
    "a Secrets Manager secret `{\"keyId\",\"key\"}`",
);
pub const VERINT_API_KEY_ID: Variable = var(
    "VERINT_API_KEY_ID",
    None,
    "the key id, given directly (local runs)",
);
pub const VERINT_API_KEY: Variable = var(
    "VERINT_API_KEY",
    None,
    "the base64 key, given directly (local runs)",
);
pub const SETTLE_DELAY: Variable = var(
    "SETTLE_DELAY",
    Some("30m"),
    "how long after an hour ends it is read (§4)",
);
pub const ARRIVAL_SLACK: Variable = var(
    "ARRIVAL_SLACK",
    Some("4h"),
    "how late a CTR may arrive after its call (§4)",
);
pub const DAS_MARGIN: Variable = var(
    "DAS_MARGIN",
    Some("15m"),
    "how much wider than the calls DAS is asked (§4)",
);
pub const MAX_HOURS_PER_RUN: Variable = var(
    "MAX_HOURS_PER_RUN",
    Some("24"),
    "arrival hours an automatic run reads at most",
);
pub const INITIAL_LOOKBACK: Variable = var(
    "INITIAL_LOOKBACK",
    Some("24h"),
    "where the first automatic run starts, before now",
);
pub const MAX_MANUAL_SPAN: Variable = var(
    "MAX_MANUAL_SPAN",
    Some("731d"),
    "the longest window of a manual run",
);
pub const CONNECT_MAX_RPS: Variable = var(
    "CONNECT_MAX_RPS",
    Some("5"),
    "client-side ceiling on Connect API calls per second",
);
pub const LATE_SWEEP: Variable = var(
    "LATE_SWEEP",
    Some("24h"),
    "how far back automatic runs look for late objects (§4)",
);
pub const RETRY_BASE: Variable = var(
    "RETRY_BASE",
    Some("60s"),
    "a transient failure's first retry delay (§5)",
);
pub const RETRY_MAX: Variable = var(
    "RETRY_MAX",
    Some("15m"),
    "a transient failure's longest retry delay (§5)",
);
pub const STALL_TIMEOUT: Variable = var(
    "STALL_TIMEOUT",
    Some("60s"),
    "a transfer with no progress for this long is abandoned (§5)",
);
pub const RECORDINGS_BUCKET: Variable = var(
    "RECORDINGS_BUCKET",
    None,
    "where Connect writes call recordings (§9); unset: no orphan listing",
);
pub const RECORDINGS_PREFIX: Variable = var(
    "RECORDINGS_PREFIX",
    None,
    "the folder before `YYYY/MM/DD/`; required with RECORDINGS_BUCKET",
);
pub const MAX_RECEIVE_COUNT: Variable = var(
    "MAX_RECEIVE_COUNT",
    None,
    "the work queue's maxReceiveCount: the last receive dead-letters a transient failure",
);
pub const PLANNING_QUEUE_URL: Variable = var(
    "PLANNING_QUEUE_URL",
    None,
    "the planning queue of backfill slices; unset: slices run in this process",
);
pub const BACKFILL_MAX_QUEUED: Variable = var(
    "BACKFILL_MAX_QUEUED",
    None,
    "a backfill slice waits while the backfill queue holds this many messages (§4.8); unset: no pacing",
);
pub const MIN_LINK_RATE: Variable = var(
    "MIN_LINK_RATE",
    Some("1000000"),
    "the slowest link to Verint to plan for, in bytes per second (§5.5)",
);
pub const BACKFILL_QUEUE_URL: Variable = var(
    "BACKFILL_QUEUE_URL",
    None,
    "the work queue of backfill slices; unset: the work queue",
);

pub const RECORDING_VARIANT: Variable = var(
    "RECORDING_VARIANT",
    Some("original"),
    "which audio is sent: original, redacted or redacted-else-original (§10)",
);
pub const REDACTED_PREFIX: Variable = var(
    "REDACTED_PREFIX",
    Some("Analysis/Voice/Redacted/"),
    "where Contact Lens writes redacted audio, before `YYYY/MM/DD/` (§10)",
);
pub const RESTORE_TIER: Variable = var(
    "RESTORE_TIER",
    Some("Standard"),
    "the restore tier of archived recordings: Expedited, Standard or Bulk (§10)",
);
pub const RESTORE_MAX_WAIT: Variable = var(
    "RESTORE_MAX_WAIT",
    Some("48h"),
    "how long a restore is waited for before it fails like any transient failure (§10)",
);

/// Every variable, in the order of design §7 (then those §7 does not list).
pub const VARIABLES: [Variable; 35] = [
    CTR_BUCKET,
    CTR_PREFIX,
    CONNECT_INSTANCE_ID,
    WORK_QUEUE_URL,
    DEAD_LETTER_QUEUE_URL,
    STATE_BUCKET,
    STATE_PREFIX,
    VERINT_DAS_URL,
    VERINT_INGEST_URL,
    VERINT_API_KEY_SECRET_ID,
    VERINT_API_KEY_ID,
    VERINT_API_KEY,
    SETTLE_DELAY,
    ARRIVAL_SLACK,
    DAS_MARGIN,
    MAX_HOURS_PER_RUN,
    INITIAL_LOOKBACK,
    MAX_MANUAL_SPAN,
    CONNECT_MAX_RPS,
    LATE_SWEEP,
    RETRY_BASE,
    RETRY_MAX,
    STALL_TIMEOUT,
    RECORDINGS_BUCKET,
    RECORDINGS_PREFIX,
    CONNECT_INSTANCE_IDS,
    RECORDING_VARIANT,
    REDACTED_PREFIX,
    RESTORE_TIER,
    RESTORE_MAX_WAIT,
    MAX_RECEIVE_COUNT,
    PLANNING_QUEUE_URL,
    BACKFILL_QUEUE_URL,
    MIN_LINK_RATE,
    BACKFILL_MAX_QUEUED,
];

/// No duration setting needs more; larger ones would overflow time arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86400);
/// SQS's longest visibility timeout, and so the longest retry delay.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);

/// What is wrong with one variable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Problem {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

/// Every variable that is missing or malformed, in the order of [`VARIABLES`]; displayed one
/// per line, each line naming its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a lookup, noting every problem instead of stopping at the first.
struct Reader<L> {
    lookup: L,
    problems: Vec<Problem>,
    /// Only these variables' problems are noted (an operator's command that needs a few);
    /// `None`: every variable's.
    needed: Option<Vec<&'static str>>,
}

impl<L: Fn(&str) -> Option<String>> Reader<L> {
    /// The variable's value as given, an empty one included.
    fn raw(&self, var: Variable) -> Option<String> {
        (self.lookup)(var.name)
    }

    /// The variable's value; an empty value counts as unset.
    fn get(&self, var: Variable) -> Option<String> {
        self.raw(var).filter(|v| !v.trim().is_empty())
    }

    /// The variable's value, or its default.
    fn get_or_default(&self, var: Variable) -> String {
        self.get(var)
            .or_else(|| var.default.map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether a problem of the variable (or of a problem naming it first) is noted.
    fn needs(&self, name: &str) -> bool {
        self.needed
            .as_ref()
            .is_none_or(|needed| needed.iter().any(|n| name.starts_with(n)))
    }

    fn missing(&mut self, name: &'static str) {
        if self.needs(name) {
            self.problems.push(Problem::Missing(name));
        }
    }

    fn malformed(&mut self, var: Variable, reason: String) {
        if self.needs(var.name) {
            self.problems.push(Problem::Malformed {
                name: var.name,
                reason,
            });
        }
    }

    /// A required variable's value; empty (and noted) when missing.
    fn required(&mut self, var: Variable) -> String {
        let value = self.get(var);
        if value.is_none() {
            self.missing(var.name);
        }
        value.unwrap_or_default()
    }

    /// A variable parsed by `parse` (from its trimmed value, with the raw value for the reason),
    /// or by its default when unset; `None` when unset with no default, or malformed (noted).
    fn parsed<T>(
        &mut self,
        var: Variable,
        parse: impl FnOnce(&str, &str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.get(var).or_else(|| var.default.map(str::to_owned))?;
        parse(raw.trim(), &raw)
            .map_err(|reason| self.malformed(var, reason))
            .ok()
    }

    /// A required variable parsed by `parse`; `None` when missing or malformed (noted).
    fn required_parsed<T>(
        &mut self,
        var: Variable,
        parse: impl FnOnce(&str, &str) -> Result<T, String>,
    ) -> Option<T> {
        if self.get(var).is_none() {
            self.missing(var.name);
            return None;
        }
        self.parsed(var, parse)
    }

    /// A setting with a default, parsed by `parse`; the type's default when malformed (noted),
    /// never used since the configuration is then rejected.
    fn setting<T: Default>(
        &mut self,
        var: Variable,
        parse: impl FnOnce(&str, &str) -> Result<T, String>,
    ) -> T {
        self.parsed(var, parse).unwrap_or_default()
    }

    /// The configuration if nothing was noted.
    fn finish(self, config: Option<Config>) -> Result<Config, ConfigError> {
        match config {
            Some(config) if self.problems.is_empty() => Ok(config),
            _ => Err(ConfigError {
                problems: self.problems,
            }),
        }
    }
}

/// A duration like `30m`, `4h` or `31d`, at most ten years.
fn duration(value: &str, raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value)
        .map_err(|e| format!("{raw:?} is not a duration like 30m, 4h or 31d ({e})"))?;
    if d > MAX_DURATION {
        return Err(format!(
            "{raw:?} is longer than the 10 years any setting can use"
        ));
    }
    Ok(d)
}

/// A whole number of at least 1.
fn count(value: &str, raw: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{raw:?} is not a whole number of at least 1")),
    }
}

/// A whole number of bytes per second, at least 1000 (a link slower than 1 kB/s carries no call).
fn bytes_per_second(value: &str, raw: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1000 => Ok(n),
        _ => Err(format!(
            "{raw:?} is not a whole number of bytes per second of at least 1000"
        )),
    }
}

/// A finite number above 0.
fn positive(value: &str, raw: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("{raw:?} is not a positive number")),
    }
}

/// A Verint base URL: https, or http to a loopback address.
fn verint_url(value: &str, raw: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    crate::domain::verint::check_url(&url)?;
    Ok(url)
}

impl Config {
    /// Reads the process environment. Only `main` functions call this.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses the configuration from any lookup; an empty value counts as unset. Every missing
    /// or malformed variable is reported, not only the first.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Reader {
            lookup,
            problems: Vec::new(),
            needed: None,
        })
    }

    /// [`Config::from_lookup`] for a command that uses only the variables `needed`: any other
    /// that is missing or malformed is left at a value that is never used, and not reported.
    pub fn from_lookup_needing(
        lookup: impl Fn(&str) -> Option<String>,
        needed: &[Variable],
    ) -> Result<Self, ConfigError> {
        Self::read(Reader {
            lookup,
            problems: Vec::new(),
            needed: Some(needed.iter().map(|v| v.name).collect()),
        })
    }

    fn read(mut r: Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let ctr_bucket = r.required(CTR_BUCKET);
        let ctr_prefix = r.get_or_default(CTR_PREFIX);
        let connect_instance_ids = connect_instances(&mut r);
        let connect_instance_id = connect_instance_ids.first().cloned().unwrap_or_default();
        let work_queue_url = r.required(WORK_QUEUE_URL);
        let dead_letter_queue_url = r.required(DEAD_LETTER_QUEUE_URL);
        let state_bucket = r.required(STATE_BUCKET);
        // Unlike the others, an explicitly empty STATE_PREFIX means the bucket's root.
        let state_prefix = r
            .raw(STATE_PREFIX)
            .unwrap_or_else(|| r.get_or_default(STATE_PREFIX));
        let verint_das_url = r.required_parsed(VERINT_DAS_URL, verint_url);
        let verint_ingest_url = r.required_parsed(VERINT_INGEST_URL, verint_url);
        let verint_key = verint_key(&mut r);
        let timing = Timing::read(&mut r);
        let recordings = recordings(&mut r);
        let max_receive_count = r.parsed(MAX_RECEIVE_COUNT, count);
        let planning_queue_url = r.get(PLANNING_QUEUE_URL);
        let backfill_queue_url = r.get(BACKFILL_QUEUE_URL);
        let min_link_rate = r.parsed(MIN_LINK_RATE, bytes_per_second).unwrap_or(1);
        let backfill_max_queued = r.parsed(BACKFILL_MAX_QUEUED, count).map(u64::from);
        let recording_variant = r.setting(RECORDING_VARIANT, |value, raw| {
            Variant::parse(value).ok_or_else(|| {
                format!("{raw:?} is not one of original, redacted, redacted-else-original")
            })
        });
        let redacted_prefix = r.get_or_default(REDACTED_PREFIX);
        let restore_tier = r.setting(RESTORE_TIER, |value, raw| {
            RestoreTier::parse(value)
                .ok_or_else(|| format!("{raw:?} is not one of Expedited, Standard, Bulk"))
        });
        let restore_max_wait = r.setting(RESTORE_MAX_WAIT, duration);

        // What a command does not use may be absent: it gets a value that is never used.
        let not_used = || Url::parse("http://127.0.0.1:9/not-configured/").ok();
        let verint_das_url =
            verint_das_url.or_else(|| (!r.needs(VERINT_DAS_URL.name)).then(not_used).flatten());
        let verint_ingest_url = verint_ingest_url
            .or_else(|| (!r.needs(VERINT_INGEST_URL.name)).then(not_used).flatten());
        let verint_key = verint_key.or_else(|| {
            (!r.needs(VERINT_API_KEY_SECRET_ID.name) && !r.needs(VERINT_API_KEY.name)).then(|| {
                VerintKeySource::Direct {
                    key_id: "not-configured".into(),
                    key: SecretString::from(String::new()),
                }
            })
        });
        let config = match (verint_das_url, verint_ingest_url, verint_key) {
            (Some(verint_das_url), Some(verint_ingest_url), Some(verint_key)) => Some(Config {
                ctr_bucket,
                ctr_prefix,
                connect_instance_id,
                connect_instance_ids,
                work_queue_url,
                dead_letter_queue_url,
                state_bucket,
                state_prefix,
                verint_das_url,
                verint_ingest_url,
                verint_key,
                settle_delay: timing.settle_delay,
                arrival_slack: timing.arrival_slack,
                das_margin: timing.das_margin,
                max_hours_per_run: timing.max_hours_per_run,
                initial_lookback: timing.initial_lookback,
                max_manual_span: timing.max_manual_span,
                connect_max_rps: timing.connect_max_rps,
                min_link_rate,
                backfill_max_queued,
                late_sweep: timing.late_sweep,
                max_receive_count,
                retry_base: timing.retry_base,
                retry_max: timing.retry_max,
                stall_timeout: timing.stall_timeout,
                recordings,
                planning_queue_url,
                backfill_queue_url,
                recording_variant,
                redacted_prefix,
                restore_tier,
                restore_max_wait,
            }),
            _ => None,
        };
        r.finish(config)
    }
}

/// `CONNECT_INSTANCE_IDS` (several, comma-separated), else `CONNECT_INSTANCE_ID`; each an id or
/// an instance ARN. Empty (and noted) when missing or malformed.
fn connect_instances(r: &mut Reader<impl Fn(&str) -> Option<String>>) -> Vec<String> {
    if let Some(list) = r.get(CONNECT_INSTANCE_IDS) {
        let mut ids: Vec<String> = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match instance_id_of(part) {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => {
                    r.malformed(
                        CONNECT_INSTANCE_IDS,
                        format!("{part:?} is not an instance id or an instance ARN"),
                    );
                    return Vec::new();
                }
            }
        }
        if ids.len() > usize::from(u8::MAX - 1) {
            r.malformed(CONNECT_INSTANCE_IDS, "lists more than 254 instances".into());
            return Vec::new();
        }
        return ids;
    }
    let raw = r.required(CONNECT_INSTANCE_ID);
    if raw.is_empty() {
        return Vec::new();
    }
    match instance_id_of(&raw) {
        Some(id) => vec![id],
        None => {
            r.malformed(
                CONNECT_INSTANCE_ID,
                "expected an instance id or an instance ARN".into(),
            );
            Vec::new()
        }
    }
}

/// The Verint key: a secret's id, or the key id and key given directly.
fn verint_key(r: &mut Reader<impl Fn(&str) -> Option<String>>) -> Option<VerintKeySource> {
    if let Some(id) = r.get(VERINT_API_KEY_SECRET_ID) {
        return Some(VerintKeySource::Secret(id));
    }
    let Some(key_id) = r.get(VERINT_API_KEY_ID) else {
        r.missing("VERINT_API_KEY_SECRET_ID (or VERINT_API_KEY_ID with VERINT_API_KEY)");
        return None;
    };
    let key = r.required_parsed(VERINT_API_KEY, |_, raw| {
        crate::domain::verint::decode_key(raw)?;
        Ok(raw.to_owned())
    });
    Some(VerintKeySource::Direct {
        key_id,
        key: SecretString::from(key?),
    })
}

/// `RECORDINGS_BUCKET` and `RECORDINGS_PREFIX`, set together or not at all.
fn recordings(r: &mut Reader<impl Fn(&str) -> Option<String>>) -> Option<RecordingsLocation> {
    let bucket = r.get(RECORDINGS_BUCKET)?;
    let Some(prefix) = r.raw(RECORDINGS_PREFIX) else {
        r.malformed(
            RECORDINGS_PREFIX,
            "must be set when RECORDINGS_BUCKET is (the folder before YYYY/MM/DD/, e.g. connect/acme/CallRecordings/)".into(),
        );
        return None;
    };
    Some(RecordingsLocation { bucket, prefix })
}

/// The numbers and durations of design §4 and §5, each with its default.
struct Timing {
    settle_delay: Duration,
    arrival_slack: Duration,
    das_margin: Duration,
    max_hours_per_run: u32,
    initial_lookback: Duration,
    max_manual_span: Duration,
    connect_max_rps: f64,
    late_sweep: Duration,
    retry_base: Duration,
    retry_max: Duration,
    stall_timeout: Duration,
}

impl Timing {
    fn read(r: &mut Reader<impl Fn(&str) -> Option<String>>) -> Self {
        Timing {
            settle_delay: r.setting(SETTLE_DELAY, duration),
            arrival_slack: r.setting(ARRIVAL_SLACK, duration),
            das_margin: r.setting(DAS_MARGIN, duration),
            max_hours_per_run: r.setting(MAX_HOURS_PER_RUN, count),
            initial_lookback: r.setting(INITIAL_LOOKBACK, duration),
            max_manual_span: r.setting(MAX_MANUAL_SPAN, duration),
            connect_max_rps: r.setting(CONNECT_MAX_RPS, positive),
            late_sweep: r.setting(LATE_SWEEP, duration),
            retry_base: r.setting(RETRY_BASE, duration),
            retry_max: r.setting(RETRY_MAX, |value, raw| {
                let d = duration(value, raw)?;
                if d > MAX_RETRY_DELAY {
                    return Err("is longer than 12h, SQS's longest visibility timeout".into());
                }
                Ok(d)
            }),
            stall_timeout: r.setting(STALL_TIMEOUT, |value, raw| {
                let d = duration(value, raw)?;
                if d < Duration::from_secs(1) {
                    return Err("must be at least 1s".into());
                }
                Ok(d)
            }),
        }
    }
}

/// The instance id from either an id or an instance ARN
/// (`arn:aws:connect:REGION:ACCOUNT:instance/ID`).
pub fn instance_id_of(value: &str) -> Option<String> {
    let value = value.trim();
    let id = match value.strip_prefix("arn:") {
        Some(_) => value.rsplit_once("instance/")?.1.split('/').next()?,
        None => value,
    };
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
}

#[cfg(test)]
mod tests;
