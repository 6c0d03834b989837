//! The typed configuration (DESIGN §7), parsed once at start from a lookup function so that
//! tests never touch the process environment.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

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
    /// The instance id (the last part of the instance ARN).
    pub connect_instance_id: String,
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
    /// How far back automatic runs look for late objects (DESIGN §4).
    pub late_sweep: Duration,
    /// Optional (`MAX_RECEIVE_COUNT`, the work queue's `maxReceiveCount`): on its last receive, a
    /// transient failure is dead-lettered by the worker itself, with its `failure_reason`, rather
    /// than moved there by SQS without one.
    pub max_receive_count: Option<u32>,
    /// A transient failure's retry delay (DESIGN §5): `min(retry_max, retry_base × 2^(receive−1))`
    /// with full jitter, or Verint's `Retry-After` if longer (up to `retry_max`).
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A transfer that moves no byte for this long is abandoned as transient (DESIGN §5).
    pub stall_timeout: Duration,
    /// Where Connect writes call recordings (`RECORDINGS_BUCKET`, `RECORDINGS_PREFIX`, DESIGN
    /// §9); unset: manual runs list no recordings and find no orphans.
    pub recordings: Option<RecordingsLocation>,
    /// The planning queue (`PLANNING_QUEUE_URL`, DESIGN §4 backfills): a manual window over 24
    /// hours is sent there as one message per slice; unset, the slices run in this process.
    pub planning_queue_url: Option<String>,
    /// The backfill work queue (`BACKFILL_QUEUE_URL`): slices of a backfill queue their missing
    /// calls there, consumed with less concurrency, so live recovery is never stuck behind them;
    /// unset, they go to the work queue.
    pub backfill_queue_url: Option<String>,
}

/// The bucket and prefix under which Connect writes recordings, `{prefix}YYYY/MM/DD/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsLocation {
    pub bucket: String,
    pub prefix: String,
}

/// No duration setting needs more; larger ones would overflow time arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86400);
/// SQS's longest visibility timeout, and so the longest retry delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

impl Config {
    /// Reads the process environment. Only `main` functions call this.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses the configuration from any lookup; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let duration = |name: &'static str, default: &str| -> Result<Duration, ConfigError> {
            let raw = get(name).unwrap_or_else(|| default.to_owned());
            let d = humantime::parse_duration(raw.trim()).map_err(|e| ConfigError::Malformed {
                name,
                reason: format!("{raw:?} is not a duration like 30m, 4h or 31d ({e})"),
            })?;
            if d > MAX_DURATION {
                return Err(ConfigError::Malformed {
                    name,
                    reason: format!("{raw:?} is longer than the 10 years any setting can use"),
                });
            }
            Ok(d)
        };
        let url = |name: &'static str| -> Result<Url, ConfigError> {
            let raw = required(name)?;
            let url = Url::parse(raw.trim()).map_err(|e| ConfigError::Malformed {
                name,
                reason: format!("{raw:?} is not a URL ({e})"),
            })?;
            check_verint_url(&url).map_err(|reason| ConfigError::Malformed { name, reason })?;
            Ok(url)
        };

        // Required variables first, in the order of DESIGN §7, so the first one missing is named.
        let ctr_bucket = required("CTR_BUCKET")?;
        let connect_instance_raw = required("CONNECT_INSTANCE_ID")?;
        let work_queue_url = required("WORK_QUEUE_URL")?;
        let dead_letter_queue_url = required("DEAD_LETTER_QUEUE_URL")?;
        let state_bucket = required("STATE_BUCKET")?;
        let verint_das_url = url("VERINT_DAS_URL")?;
        let verint_ingest_url = url("VERINT_INGEST_URL")?;

        let verint_key = match get("VERINT_API_KEY_SECRET_ID") {
            Some(id) => VerintKeySource::Secret(id),
            None => {
                let key_id = get("VERINT_API_KEY_ID").ok_or(ConfigError::Missing(
                    "VERINT_API_KEY_SECRET_ID (or VERINT_API_KEY_ID with VERINT_API_KEY)",
                ))?;
                let key = required("VERINT_API_KEY")?;
                crate::verint::auth::decode_key(&key).map_err(|reason| ConfigError::Malformed {
                    name: "VERINT_API_KEY",
                    reason,
                })?;
                VerintKeySource::Direct {
                    key_id,
                    key: SecretString::from(key),
                }
            }
        };

        let max_hours_per_run = match get("MAX_HOURS_PER_RUN") {
            None => 24,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConfigError::Malformed {
                        name: "MAX_HOURS_PER_RUN",
                        reason: format!("{raw:?} is not a whole number of at least 1"),
                    });
                }
            },
        };
        let connect_max_rps = match get("CONNECT_MAX_RPS") {
            None => 5.0,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => n,
                _ => {
                    return Err(ConfigError::Malformed {
                        name: "CONNECT_MAX_RPS",
                        reason: format!("{raw:?} is not a positive number"),
                    });
                }
            },
        };
        let max_receive_count = match get("MAX_RECEIVE_COUNT") {
            None => None,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(ConfigError::Malformed {
                        name: "MAX_RECEIVE_COUNT",
                        reason: format!("{raw:?} is not a whole number of at least 1"),
                    });
                }
            },
        };
        let connect_instance_id =
            instance_id_of(&connect_instance_raw).ok_or_else(|| ConfigError::Malformed {
                name: "CONNECT_INSTANCE_ID",
                reason: "expected an instance id or an instance ARN".into(),
            })?;

        let recordings = match (get("RECORDINGS_BUCKET"), lookup("RECORDINGS_PREFIX")) {
            (None, _) => None,
            (Some(bucket), Some(prefix)) => Some(RecordingsLocation { bucket, prefix }),
            (Some(_), None) => {
                return Err(ConfigError::Malformed {
                    name: "RECORDINGS_PREFIX",
                    reason: "must be set when RECORDINGS_BUCKET is (the folder before YYYY/MM/DD/, e.g. connect/acme/CallRecordings/)".into(),
                });
            }
        };
        let retry_base = duration("RETRY_BASE", "60s")?;
        let retry_max = duration("RETRY_MAX", "15m")?;
        if retry_max > MAX_RETRY_DELAY {
            return Err(ConfigError::Malformed {
                name: "RETRY_MAX",
                reason: "is longer than 12h, SQS's longest visibility timeout".into(),
            });
        }
        let stall_timeout = duration("STALL_TIMEOUT", "60s")?;
        if stall_timeout < Duration::from_secs(1) {
            return Err(ConfigError::Malformed {
                name: "STALL_TIMEOUT",
                reason: "must be at least 1s".into(),
            });
        }

        Ok(Config {
            ctr_bucket,
            ctr_prefix: get("CTR_PREFIX").unwrap_or_default(),
            connect_instance_id,
            work_queue_url,
            dead_letter_queue_url,
            state_bucket,
            // Unlike the others, an explicitly empty STATE_PREFIX means the bucket's root.
            state_prefix: lookup("STATE_PREFIX").unwrap_or_else(|| "call-recovery/".into()),
            verint_das_url,
            verint_ingest_url,
            verint_key,
            settle_delay: duration("SETTLE_DELAY", "30m")?,
            arrival_slack: duration("ARRIVAL_SLACK", "4h")?,
            das_margin: duration("DAS_MARGIN", "15m")?,
            max_hours_per_run,
            initial_lookback: duration("INITIAL_LOOKBACK", "24h")?,
            max_manual_span: duration("MAX_MANUAL_SPAN", "731d")?,
            connect_max_rps,
            late_sweep: duration("LATE_SWEEP", "24h")?,
            max_receive_count,
            recordings,
            retry_base,
            retry_max,
            stall_timeout,
            planning_queue_url: get("PLANNING_QUEUE_URL"),
            backfill_queue_url: get("BACKFILL_QUEUE_URL"),
        })
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

/// Verint is reached over https; plain http only to this machine (the local simulator).
pub(crate) fn check_verint_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url} must use https (http is allowed only to a loopback address)"
                ))
            }
        }
        other => Err(format!("{url} has scheme {other:?}; expected https")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("CTR_BUCKET", "ctr"),
            (
                "CONNECT_INSTANCE_ID",
                "11111111-2222-3333-4444-555555555555",
            ),
            ("WORK_QUEUE_URL", "http://127.0.0.1:5055/123456789012/work"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "http://127.0.0.1:5055/123456789012/dlq",
            ),
            ("STATE_BUCKET", "state"),
            ("VERINT_DAS_URL", "https://verint.example.com/das"),
            ("VERINT_INGEST_URL", "http://127.0.0.1:5056/ingest"),
            ("VERINT_API_KEY_ID", "kid"),
            ("VERINT_API_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHM"),
        ])
    }

    fn parse(vars: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let c = parse(&base()).expect("valid config");
        assert_eq!(c.ctr_prefix, "");
        assert_eq!(c.state_prefix, "call-recovery/");
        assert_eq!(c.settle_delay, Duration::from_secs(30 * 60));
        assert_eq!(c.arrival_slack, Duration::from_secs(4 * 3600));
        assert_eq!(c.das_margin, Duration::from_secs(15 * 60));
        assert_eq!(c.max_hours_per_run, 24);
        assert_eq!(c.initial_lookback, Duration::from_secs(24 * 3600));
        assert_eq!(c.max_manual_span, Duration::from_secs(731 * 86400));
        assert_eq!(c.connect_max_rps, 5.0);
        assert_eq!(c.retry_base, Duration::from_secs(60));
        assert_eq!(c.retry_max, Duration::from_secs(15 * 60));
        assert_eq!(c.stall_timeout, Duration::from_secs(60));
        assert_eq!(c.late_sweep, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        for name in [
            "CTR_BUCKET",
            "CONNECT_INSTANCE_ID",
            "WORK_QUEUE_URL",
            "STATE_BUCKET",
            "VERINT_DAS_URL",
        ] {
            let mut vars = base();
            vars.remove(name);
            let err = parse(&vars).expect_err("must fail");
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn a_malformed_variable_is_named_with_its_value() {
        let cases = [
            ("SETTLE_DELAY", "half an hour"),
            ("INITIAL_LOOKBACK", "300000y"),
            ("MAX_HOURS_PER_RUN", "0"),
            ("CONNECT_MAX_RPS", "-1"),
            ("VERINT_DAS_URL", "http://verint.example.com/das"),
            ("VERINT_INGEST_URL", "not a url"),
            ("VERINT_API_KEY", "not base64!"),
            ("RETRY_BASE", "soon"),
            ("RETRY_MAX", "13h"),
            ("STALL_TIMEOUT", "0s"),
        ];
        for (name, value) in cases {
            let mut vars = base();
            vars.insert(name, value);
            let err = parse(&vars).expect_err("must fail");
            let text = err.to_string();
            assert!(text.starts_with(name), "{text}");
            assert!(matches!(err, ConfigError::Malformed { .. }), "{text}");
        }
    }

    #[test]
    fn the_api_key_may_come_from_a_secret_instead() {
        let mut vars = base();
        vars.remove("VERINT_API_KEY_ID");
        vars.remove("VERINT_API_KEY");
        assert!(parse(&vars).is_err());
        vars.insert(
            "VERINT_API_KEY_SECRET_ID",
            "arn:aws:secretsmanager:eu-west-2:1:secret:verint",
        );
        let c = parse(&vars).expect("valid");
        assert!(matches!(c.verint_key, VerintKeySource::Secret(ref s) if s.ends_with(":verint")));
    }

    #[test]
    fn the_instance_may_be_given_as_an_arn() {
        let mut vars = base();
        vars.insert(
            "CONNECT_INSTANCE_ID",
            "arn:aws:connect:eu-west-2:123456789012:instance/11111111-2222-3333-4444-555555555555",
        );
        let c = parse(&vars).expect("valid");
        assert_eq!(
            c.connect_instance_id,
            "11111111-2222-3333-4444-555555555555"
        );
    }
}
