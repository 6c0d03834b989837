//! Time in the shapes the contracts use: CTR timestamps (`YYYY-MM-DDThh:mm:ssZ`, UTC), arrival
//! hours, and half-open windows.

use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, Utc};

/// One hour, the unit Firehose partitions CTR objects by.
pub(crate) const HOUR: TimeDelta = TimeDelta::hours(1);

/// Formats a timestamp the way CTRs and every contract document carry it: `2024-05-14T14:03:00Z`.
pub fn format_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a CTR timestamp. CTRs use `YYYY-MM-DDThh:mm:ssZ`; fractional seconds and offsets are
/// accepted too, since any RFC 3339 value is unambiguous.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ") {
        return Some(t.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The start of the hour that holds `t`.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(HOUR).unwrap_or(t)
}

/// Converts a `std::time::Duration` from the configuration into chrono's delta, saturating.
pub(crate) fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// A half-open interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Splits the window into consecutive pieces of at most `max` each (DAS answers at most
    /// 24 hours per request).
    pub(crate) fn pieces(&self, max: TimeDelta) -> Vec<Window> {
        let mut out = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let end = (start + max).min(self.end);
            out.push(Window { start, end });
            start = end;
        }
        out
    }
}

/// Values below this cannot be epoch milliseconds (they would be before 2001).
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;
/// One day in milliseconds: a Lambda invocation lasts at most 15 minutes.
const MAX_LEFT_MS: u64 = 24 * 3600 * 1000;

/// The time an invocation has left, from its `Lambda-Runtime-Deadline-Ms`. AWS sends epoch
/// milliseconds; cargo-lambda's local runtime sends the timeout itself (e.g. `600000`), which is
/// taken as time left rather than as a deadline in 1970. `None` without a deadline (0, as in a
/// hand-built context) or with one more than a day away.
pub fn invocation_time_left(deadline_ms: u64) -> Option<std::time::Duration> {
    let left_ms = match deadline_ms {
        0 => return None,
        ms if ms < EPOCH_MS_FLOOR => ms,
        ms => ms.saturating_sub(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as u64,
        ),
    };
    (left_ms <= MAX_LEFT_MS).then(|| std::time::Duration::from_millis(left_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        parse_ts(s).expect("valid timestamp")
    }

    #[test]
    fn ctr_timestamps_round_trip() {
        assert_eq!(
            format_ts(ts("2024-05-14T14:03:09Z")),
            "2024-05-14T14:03:09Z"
        );
        assert_eq!(ts("2024-05-14T16:03:09+02:00"), ts("2024-05-14T14:03:09Z"));
        assert!(parse_ts("14/05/2024").is_none());
    }

    #[test]
    fn floor_hour_drops_minutes_and_seconds() {
        assert_eq!(
            floor_hour(ts("2024-05-14T14:59:59Z")),
            ts("2024-05-14T14:00:00Z")
        );
        assert_eq!(
            floor_hour(ts("2024-05-14T14:00:00Z")),
            ts("2024-05-14T14:00:00Z")
        );
    }

    #[test]
    fn a_window_is_half_open_and_splits_into_day_pieces() {
        let w = Window {
            start: ts("2024-05-01T00:00:00Z"),
            end: ts("2024-05-03T12:00:00Z"),
        };
        assert!(w.contains(w.start));
        assert!(!w.contains(w.end));
        let pieces = w.pieces(TimeDelta::hours(24));
        assert_eq!(pieces.len(), 3);
        assert_eq!(
            pieces[2],
            Window {
                start: ts("2024-05-03T00:00:00Z"),
                end: w.end
            }
        );
    }
}
