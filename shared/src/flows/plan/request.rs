//! What a run is asked to do (design §4): an EventBridge scheduled event or a manual payload,
//! checked before any work, and the arrival hours each kind reads.

use super::*;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Manual { window: Window, dry_run: bool },
    Automatic { dry_run: bool },
}

impl Request {
    pub fn dry_run(&self) -> bool {
        match self {
            Request::Manual { dry_run, .. } | Request::Automatic { dry_run } => *dry_run,
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Request::Manual { .. } => Mode::Manual,
            Request::Automatic { .. } => Mode::Automatic,
        }
    }
}

/// The manual payload (contract): `{"start": RFC 3339, "end": RFC 3339, "dry_run": false}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualPayload {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub dry_run: bool,
}

impl ManualPayload {
    /// Checks the payload against the rules of design §4, before any work.
    pub fn validate(&self, config: &Config, now: DateTime<Utc>) -> Result<Request, PlanError> {
        let parse = |name: &str, value: &str| {
            DateTime::parse_from_rfc3339(value.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    PlanError::Invalid(format!("{name} {value:?} is not an RFC 3339 time ({e})"))
                })
        };
        let start = parse("start", &self.start)?;
        let end = parse("end", &self.end)?;
        if start >= end {
            return Err(PlanError::Invalid(format!(
                "start {} must be before end {}",
                format_ts(start),
                format_ts(end)
            )));
        }
        if end > now {
            return Err(PlanError::Invalid(format!(
                "end {} is in the future (now is {})",
                format_ts(end),
                format_ts(now)
            )));
        }
        let max = delta(config.max_manual_span);
        if end - start > max {
            return Err(PlanError::Invalid(format!(
                "the window spans {}, more than MAX_MANUAL_SPAN ({})",
                humantime::format_duration((end - start).to_std().unwrap_or_default()),
                humantime::format_duration(config.max_manual_span)
            )));
        }
        if start < now - CONNECT_RETENTION {
            return Err(PlanError::Invalid(format!(
                "start {} is older than 730 days: Amazon Connect keeps contacts for 24 months",
                format_ts(start)
            )));
        }
        Ok(Request::Manual {
            window: Window { start, end },
            dry_run: self.dry_run,
        })
    }
}

/// Reads a planner invocation: an EventBridge scheduled event is an automatic run, a
/// `{start, end}` payload a manual one; anything else is rejected with the reason.
pub fn parse_event(
    event: &serde_json::Value,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Request, PlanError> {
    let Some(object) = event.as_object() else {
        return Err(PlanError::Invalid(format!(
            "expected a JSON object (a scheduled event or {{\"start\",\"end\",\"dry_run\"}}), got {}",
            json_kind(event)
        )));
    };
    if let Some(detail_type) = object.get("detail-type") {
        return match detail_type.as_str() {
            Some("Scheduled Event") => Ok(Request::Automatic { dry_run: false }),
            other => Err(PlanError::Invalid(format!(
                "an EventBridge event of detail-type {:?} is not a schedule; expected \"Scheduled Event\"",
                other.unwrap_or("")
            ))),
        };
    }
    if object.contains_key("start") || object.contains_key("end") {
        let payload: ManualPayload = serde_json::from_value(event.clone())
            .map_err(|e| PlanError::Invalid(format!("manual payload: {e}")))?;
        return payload.validate(config, now);
    }
    Err(PlanError::Invalid(
        "the event is neither an EventBridge scheduled event nor a manual payload {\"start\",\"end\",\"dry_run\"}".into(),
    ))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The arrival hours a manual run reads: `floor_hour(start) ≤ H < end + ARRIVAL_SLACK`, and none
/// after the current hour.
pub(crate) fn manual_hours(
    window: Window,
    slack: TimeDelta,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut hours = Vec::new();
    let mut h = floor_hour(window.start);
    while h < window.end + slack && h <= now {
        hours.push(h);
        h += HOUR;
    }
    hours
}

/// The settled arrival hours an automatic run reads from `next`: `now ≥ H + 1h + SETTLE_DELAY`,
/// at most `max` of them.
pub(crate) fn automatic_hours(
    next: DateTime<Utc>,
    settle: TimeDelta,
    max: u32,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut hours = Vec::new();
    let mut h = next;
    while hours.len() < max as usize && now >= h + HOUR + settle {
        hours.push(h);
        h += HOUR;
    }
    hours
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_ts;
    use crate::flows::plan::tests::config;

    fn ts(s: &str) -> DateTime<Utc> {
        parse_ts(s).expect("valid")
    }

    const NOW: &str = "2026-11-27T12:00:00Z";

    fn invalid(event: serde_json::Value) -> String {
        match parse_event(&event, &config(), ts(NOW)) {
            Err(PlanError::Invalid(reason)) => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_scheduled_event_is_an_automatic_run() {
        let event = serde_json::json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":NOW,"resources":[],"detail":{}});
        assert_eq!(
            parse_event(&event, &config(), ts(NOW)).expect("valid"),
            Request::Automatic { dry_run: false }
        );
    }

    #[test]
    fn a_manual_payload_is_a_manual_run() {
        let event = serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00+00:00","dry_run":true});
        let window = Window {
            start: ts("2026-11-26T00:00:00Z"),
            end: ts("2026-11-27T00:00:00Z"),
        };
        assert_eq!(
            parse_event(&event, &config(), ts(NOW)).expect("valid"),
            Request::Manual {
                window,
                dry_run: true
            }
        );
        let no_dry_run =
            serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z"});
        assert_eq!(
            parse_event(&no_dry_run, &config(), ts(NOW)).expect("valid"),
            Request::Manual {
                window,
                dry_run: false
            }
        );
    }

    #[test]
    fn every_invalid_manual_payload_is_rejected_with_its_reason() {
        assert!(
            invalid(serde_json::json!({"start":"yesterday","end":"2026-11-27T00:00:00Z"}))
                .contains("start \"yesterday\" is not an RFC 3339")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2026-11-27T00:00:00Z","end":"2026-11-27T00:00:00Z"})
            )
            .contains("must be before end")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2026-11-27T00:00:00Z","end":"2026-11-27T13:00:00Z"})
            )
            .contains("in the future")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2024-10-01T00:00:00Z","end":"2026-11-02T00:00:00Z"})
            )
            .contains("MAX_MANUAL_SPAN")
        );
        assert!(
            invalid(
                serde_json::json!({"start":"2024-11-26T00:00:00Z","end":"2024-11-27T00:00:00Z"})
            )
            .contains("730 days")
        );
        assert!(
            invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z"}))
                .contains("missing field `end`")
        );
        assert!(invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z","dryrun":true})).contains("unknown field `dryrun`"));
        assert!(invalid(serde_json::json!({"start":"2026-11-26T00:00:00Z","end":"2026-11-27T00:00:00Z","dry_run":"yes"})).contains("expected a boolean"));
    }

    #[test]
    fn anything_else_is_rejected() {
        assert!(
            invalid(serde_json::json!({"detail-type":"Object Created","detail":{}}))
                .contains("not a schedule")
        );
        assert!(invalid(serde_json::json!({"hello":"world"})).contains("neither"));
        assert!(invalid(serde_json::json!([1, 2])).contains("an array"));
    }

    #[test]
    fn manual_runs_read_from_the_start_hour_to_end_plus_arrival_slack() {
        let w = Window {
            start: ts("2026-11-26T10:30:00Z"),
            end: ts("2026-11-26T12:00:00Z"),
        };
        let hours = manual_hours(w, TimeDelta::hours(4), ts(NOW));
        assert_eq!(hours.first(), Some(&ts("2026-11-26T10:00:00Z")));
        assert_eq!(hours.last(), Some(&ts("2026-11-26T15:00:00Z")));
        assert_eq!(hours.len(), 6);
        let recent = Window {
            start: ts("2026-11-27T10:00:00Z"),
            end: ts("2026-11-27T11:00:00Z"),
        };
        assert_eq!(
            manual_hours(recent, TimeDelta::hours(4), ts(NOW)).last(),
            Some(&ts("2026-11-27T12:00:00Z"))
        );
    }

    #[test]
    fn automatic_runs_read_only_settled_hours_up_to_the_maximum() {
        let settle = TimeDelta::minutes(30);
        let hours = automatic_hours(
            ts("2026-11-27T09:00:00Z"),
            settle,
            24,
            ts("2026-11-27T12:29:59Z"),
        );
        assert_eq!(
            hours,
            [ts("2026-11-27T09:00:00Z"), ts("2026-11-27T10:00:00Z")]
        );
        let hours = automatic_hours(
            ts("2026-11-27T09:00:00Z"),
            settle,
            24,
            ts("2026-11-27T12:30:00Z"),
        );
        assert_eq!(hours.len(), 3);
        let hours = automatic_hours(ts("2026-11-20T00:00:00Z"), settle, 24, ts(NOW));
        assert_eq!(hours.len(), 24);
        assert!(automatic_hours(ts("2026-11-27T11:00:00Z"), settle, 24, ts(NOW)).is_empty());
    }
}
