//! Orphan recordings (design §9): a second source of truth beside the CTR stream. When Firehose
//! delivery breaks (a KMS permission, a deleted stream), Connect goes on recording calls into S3
//! while no CTR says so, and the CTR diff cannot see them. A manual run lists the recordings of
//! its window's days and finds those whose contact has no CTR among the hours it read.
//!
//! Amazon Connect names a recording `{contactId}_{YYYYMMDDThh:mm}_UTC.wav` under
//! `{RECORDINGS_PREFIX}YYYY/MM/DD/`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::domain::contacts::ContactKey;
use crate::domain::ctr::S3Location;
use crate::domain::time::Window;

/// What a recording's object key says: whose it is, and when it was made (to the minute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordingName {
    /// Lowercase, as contact ids are compared.
    pub contact_id: String,
    pub at: DateTime<Utc>,
}

/// Reads a recording's key; `None` for an object that is not named like a Connect recording.
pub(crate) fn parse_recording_key(key: &str) -> Option<RecordingName> {
    let name = key.rsplit('/').next()?;
    let (id, rest) = name.split_once('_')?;
    if id.len() != 36
        || !matches!(
            ContactKey::new(&id.to_ascii_lowercase()),
            ContactKey::Uuid(_)
        )
    {
        return None;
    }
    let stamp = rest.get(..14)?;
    let at = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H:%M").ok()?;
    Some(RecordingName {
        contact_id: id.to_ascii_lowercase(),
        at: at.and_utc(),
    })
}

/// The day folders that can hold recordings of `window`: `{prefix}YYYY/MM/DD/` for every day the
/// window touches.
pub(crate) fn day_prefixes(prefix: &str, window: Window) -> Vec<String> {
    let mut out = Vec::new();
    let mut day = window.start.date_naive();
    while day.and_time(chrono::NaiveTime::MIN).and_utc() < window.end {
        out.push(format!("{prefix}{}/", day.format("%Y/%m/%d")));
        day += TimeDelta::days(1);
    }
    out
}

/// A contact whose recordings are in S3 but whose CTR is not among the hours read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub contact_id: String,
    /// The earliest recording time (from the names), in the window.
    pub at: DateTime<Utc>,
    /// Every recording of the contact in the listing, in key order.
    pub recordings: Vec<S3Location>,
}

/// Groups a listing of recordings by contact and keeps the orphans: contacts with a recording
/// whose time lies in `window` and that `has_ctr` does not know. Sorted by time, then id.
pub fn find(
    bucket: &str,
    keys: impl IntoIterator<Item = String>,
    window: Window,
    has_ctr: impl Fn(&ContactKey) -> bool,
) -> Vec<Orphan> {
    let mut by_contact: BTreeMap<String, (Option<DateTime<Utc>>, Vec<String>)> = BTreeMap::new();
    for key in keys {
        let Some(name) = parse_recording_key(&key) else {
            continue;
        };
        let entry = by_contact.entry(name.contact_id).or_default();
        if window.contains(name.at) {
            entry.0 = Some(entry.0.map_or(name.at, |t| t.min(name.at)));
        }
        entry.1.push(key);
    }
    let mut out: Vec<Orphan> = by_contact
        .into_iter()
        .filter_map(|(id, (at, mut keys))| {
            let at = at?;
            if has_ctr(&ContactKey::new(&id)) {
                return None;
            }
            keys.sort();
            Some(Orphan {
                recordings: keys
                    .into_iter()
                    .map(|key| S3Location {
                        bucket: bucket.to_owned(),
                        key,
                    })
                    .collect(),
                contact_id: id,
                at,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.at, &a.contact_id).cmp(&(b.at, &b.contact_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::parse_ts;

    const A: &str = "0b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3";
    const B: &str = "1b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3";

    fn window() -> Window {
        Window {
            start: parse_ts("2026-11-30T00:00:00Z").expect("ts"),
            end: parse_ts("2026-12-01T00:00:00Z").expect("ts"),
        }
    }

    fn key(id: &str, stamp: &str) -> String {
        format!("connect/acme/CallRecordings/2026/11/30/{id}_{stamp}_UTC.wav")
    }

    #[test]
    fn a_connect_recording_key_names_its_contact_and_minute() {
        let name = parse_recording_key(&key(&A.to_uppercase(), "20261130T14:03")).expect("parses");
        assert_eq!(name.contact_id, A);
        assert_eq!(name.at, parse_ts("2026-11-30T14:03:00Z").expect("ts"));
        assert_eq!(
            parse_recording_key("connect/acme/CallRecordings/2026/11/30/notes.txt"),
            None
        );
        assert_eq!(
            parse_recording_key(&key("not-a-uuid", "20261130T14:03")),
            None
        );
        assert_eq!(parse_recording_key(&key(A, "2026-11-30")), None);
    }

    #[test]
    fn a_window_lists_every_day_it_touches() {
        let w = Window {
            start: parse_ts("2026-11-29T22:00:00Z").expect("ts"),
            end: parse_ts("2026-12-01T00:00:00Z").expect("ts"),
        };
        assert_eq!(
            day_prefixes("rec/", w),
            ["rec/2026/11/29/", "rec/2026/11/30/"]
        );
    }

    #[test]
    fn orphans_are_recordings_in_the_window_without_a_ctr_with_all_their_recordings_in_key_order() {
        let known = ContactKey::new(B);
        let keys = vec![
            key(A, "20261130T14:09"),
            key(A, "20261130T14:03"),
            key(B, "20261130T15:00"),
            key("2b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3", "20261201T00:10"),
        ];
        let orphans = find("rec-bucket", keys, window(), |k| *k == known);
        assert_eq!(orphans.len(), 1, "{orphans:?}");
        assert_eq!(orphans[0].contact_id, A);
        assert_eq!(orphans[0].at, parse_ts("2026-11-30T14:03:00Z").expect("ts"));
        let keys: Vec<&str> = orphans[0]
            .recordings
            .iter()
            .map(|r| r.key.as_str())
            .collect();
        assert_eq!(keys, [key(A, "20261130T14:03"), key(A, "20261130T14:09")]);
        assert_eq!(orphans[0].recordings[0].bucket, "rec-bucket");
    }
}
