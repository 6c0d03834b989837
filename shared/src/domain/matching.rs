//! The rules of a run (design §4) as pure functions: which contacts are eligible, which window
//! DAS is asked for, and the class of every eligible contact. No I/O, no clock.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::contacts::{ContactKey, ContactSet, ContactView};
use crate::domain::ctr::S3Location;
use crate::domain::ledger::{LedgerClass, LedgerRow};
use crate::domain::message::QueuedRecording;
use crate::domain::recording::{NO_REDACTED, REDACTED_WAIT};
use crate::domain::time::Window;

/// What a run's kind adds to the rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Manual runs keep only contacts whose `InitiationTimestamp` is in this window.
    pub initiation_window: Option<Window>,
    /// Manual runs: a contact that ended after this instant (less than `SETTLE_DELAY` ago) is not
    /// settled yet.
    pub settled_before: Option<DateTime<Utc>>,
}

/// An eligible contact: its place in the [`ContactSet`] and what the DAS window needs.
#[derive(Debug, Clone, Copy)]
pub struct Eligible {
    pub index: u32,
    pub initiation: DateTime<Utc>,
    pub disconnect: DateTime<Utc>,
}

/// A contact Verint lacks, to be queued: borrowed from the [`ContactSet`], so that a day of a
/// million missing calls costs a few dozen bytes each until its messages are built, a chunk at a
/// time (design §4.7), instead of an owned id and recording locations each.
#[derive(Debug, Clone, Copy)]
pub struct Missing<'a> {
    pub contact: ContactView<'a>,
    pub initiation: DateTime<Utc>,
    pub disconnect: DateTime<Utc>,
}

/// The same call to queue: the same id, times and recordings (whichever set they are in).
impl PartialEq for Missing<'_> {
    fn eq(&self, other: &Self) -> bool {
        (
            self.contact.key(),
            self.initiation,
            self.disconnect,
            self.recordings(),
        ) == (
            other.contact.key(),
            other.initiation,
            other.disconnect,
            other.recordings(),
        )
    }
}

impl Missing<'_> {
    /// Its id, as queued and reported.
    pub fn contact_id(&self) -> String {
        self.contact.key().to_string()
    }

    /// The recordings that are not `DELETED`, in order.
    pub fn recordings(&self) -> Vec<QueuedRecording> {
        self.contact
            .recordings()
            .iter()
            .filter(|r| !r.deleted)
            .filter_map(|r| {
                let location = S3Location::parse(&r.location)?;
                Some(QueuedRecording::new(
                    location,
                    r.expected_seconds.map(f64::from),
                ))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecoverable {
    pub contact_id: String,
    pub reason: String,
}

/// Every eligible contact lands in exactly one class:
/// `eligible = in_verint + unrecoverable + not_settled + missing`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classification<'a> {
    pub eligible: u64,
    pub in_verint: u64,
    pub not_settled: u64,
    pub unrecoverable: Vec<Unrecoverable>,
    /// Sorted by initiation time, then id.
    pub missing: Vec<Missing<'a>>,
    /// The class of each eligible contact, in the order of the `eligible` slice classified (what
    /// the run's ledger writes, design §9).
    pub classes: Vec<LedgerClass>,
}

/// The eligible contacts of the set under `rules`: VOICE, `DisconnectTimestamp` set, our
/// instance, at least one S3 recording, and (manual runs) initiated inside the window. Sorted by
/// initiation time, then id.
pub fn eligible(contacts: &ContactSet, rules: &Rules) -> Vec<Eligible> {
    let mut out: Vec<Eligible> = contacts
        .iter()
        .filter_map(|c| eligible_one(&c, rules))
        .collect();
    out.sort_unstable_by_key(|e| (e.initiation, e.index));
    out
}

fn eligible_one(c: &ContactView<'_>, rules: &Rules) -> Option<Eligible> {
    if !c.voice() || !c.ours() || c.recording_count() == 0 {
        return None;
    }
    let initiation = c.initiation()?;
    let disconnect = c.disconnect()?;
    if let Some(w) = rules.initiation_window
        && !w.contains(initiation)
    {
        return None;
    }
    Some(Eligible {
        index: c.index,
        initiation,
        disconnect,
    })
}

/// Where DAS is asked (design §4): each eligible contact lived in
/// `[initiation − margin, disconnect + margin)`; spans that overlap or lie less than `margin`
/// apart are merged. Sorted, disjoint; empty when there is no eligible contact. One old contact
/// adds its own short span, never the time between it and the others.
pub(crate) fn das_spans(eligible: &[Eligible], margin: TimeDelta) -> Vec<Window> {
    let mut spans: Vec<Window> = eligible
        .iter()
        .map(|e| Window {
            start: e.initiation - margin,
            end: e.disconnect.max(e.initiation) + margin,
        })
        .collect();
    spans.sort_unstable_by_key(|w| (w.start, w.end));
    let mut merged: Vec<Window> = Vec::with_capacity(spans.len().min(64));
    for w in spans {
        match merged.last_mut() {
            Some(last) if w.start < last.end + margin => last.end = last.end.max(w.end),
            _ => merged.push(w),
        }
    }
    merged
}

/// Whether DAS listed the contact, comparing ids case-insensitively: a UUID key is already
/// canonical (lowercase); any other id is also looked up lowercased, as DAS's ids are.
fn held_by_verint(in_verint: &HashSet<ContactKey>, key: &ContactKey) -> bool {
    in_verint.contains(key)
        || match key {
            ContactKey::Other(id) => in_verint.contains(&ContactKey::folded(id)),
            ContactKey::Uuid(_) => false,
        }
}

/// Classifies every eligible contact, in the order of design §4: in Verint, unrecoverable, not
/// settled, missing.
pub fn classify<'a>(
    contacts: &'a ContactSet,
    eligible: &[Eligible],
    in_verint: &HashSet<ContactKey>,
    rules: &Rules,
) -> Classification<'a> {
    let mut out = Classification {
        eligible: eligible.len() as u64,
        classes: Vec::with_capacity(eligible.len()),
        ..Default::default()
    };
    for e in eligible {
        let Some(c) = contacts.view(e.index) else {
            continue;
        };
        let key = c.key();
        let class = if held_by_verint(in_verint, &key) {
            LedgerClass::InVerint
        } else if c.all_deleted() {
            LedgerClass::Unrecoverable
        } else if rules
            .settled_before
            .is_some_and(|cutoff| e.disconnect > cutoff)
        {
            LedgerClass::NotSettled
        } else {
            LedgerClass::Missing
        };
        out.classes.push(class);
        match class {
            LedgerClass::InVerint => out.in_verint += 1,
            LedgerClass::Unrecoverable => {
                let n = c.recording_count();
                out.unrecoverable.push(Unrecoverable {
                    contact_id: key.to_string(),
                    reason: format!(
                        "every S3 recording has Status DELETED ({n} recording{})",
                        if n == 1 { "" } else { "s" }
                    ),
                });
            }
            LedgerClass::NotSettled => out.not_settled += 1,
            // Classification never yields an orphan; those come from the recordings listing.
            LedgerClass::Missing | LedgerClass::Orphan => out.missing.push(Missing {
                contact: c,
                initiation: e.initiation,
                disconnect: e.disconnect,
            }),
        }
    }
    out
}

/// With `RECORDING_VARIANT=redacted` (design §10), a missing call whose redacted audio is not
/// there cannot be sent: it is not settled for [`REDACTED_WAIT`] after its disconnect (post-call
/// analysis takes minutes), then unrecoverable with [`NO_REDACTED`]. `has_redacted` says which
/// calls have it.
pub fn withhold_unredacted(
    class: &mut Classification<'_>,
    eligible: &[Eligible],
    has_redacted: impl Fn(&ContactKey) -> bool,
    now: DateTime<Utc>,
) {
    let missing = std::mem::take(&mut class.missing);
    for m in missing {
        let key = m.contact.key();
        if has_redacted(&key) {
            class.missing.push(m);
            continue;
        }
        let at = eligible.binary_search_by_key(&(m.initiation, m.contact.index), |e| {
            (e.initiation, e.index)
        });
        let waiting = m.disconnect + REDACTED_WAIT > now;
        let new_class = if waiting {
            class.not_settled += 1;
            LedgerClass::NotSettled
        } else {
            class.unrecoverable.push(Unrecoverable {
                contact_id: key.to_string(),
                reason: NO_REDACTED.to_owned(),
            });
            LedgerClass::Unrecoverable
        };
        if let Ok(i) = at
            && let Some(c) = class.classes.get_mut(i)
        {
            *c = new_class;
        }
    }
}

/// Each instance's counts (design §11), by its place in the deployment's list; a contact whose
/// message SQS rejected (`rejected`, by id) is unrecoverable, as in the ledger.
pub fn instance_counts(
    contacts: &ContactSet,
    eligible: &[Eligible],
    class: &Classification<'_>,
    rejected: impl Fn(&str) -> bool,
    instances: usize,
) -> Vec<crate::domain::report::InstanceCounts> {
    let mut out = vec![crate::domain::report::InstanceCounts::default(); instances];
    for (e, &c) in eligible.iter().zip(&class.classes) {
        let Some(view) = contacts.view(e.index) else {
            continue;
        };
        let Some(counts) = view.instance().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        counts.eligible += 1;
        match c {
            LedgerClass::InVerint => counts.in_verint += 1,
            LedgerClass::Unrecoverable => counts.unrecoverable += 1,
            LedgerClass::NotSettled => counts.not_settled += 1,
            LedgerClass::Missing | LedgerClass::Orphan => {
                if rejected(&view.key().to_string()) {
                    counts.unrecoverable += 1;
                } else {
                    counts.missing += 1;
                }
            }
        }
    }
    out
}

/// The ledger rows of a classification (design §9): one per eligible contact, in the order of
/// `eligible`, with its class and, for an unrecoverable one, its reason.
pub(crate) fn ledger_rows<'a>(
    contacts: &'a ContactSet,
    eligible: &'a [Eligible],
    class: &'a Classification<'a>,
) -> impl Iterator<Item = LedgerRow> + 'a {
    let reasons: std::collections::HashMap<&str, &str> = class
        .unrecoverable
        .iter()
        .map(|u| (u.contact_id.as_str(), u.reason.as_str()))
        .collect();
    eligible
        .iter()
        .filter_map(|e| contacts.view(e.index).map(|c| (e, c)))
        .zip(&class.classes)
        .map(move |((e, view), &c)| (e, view.key(), view.link().map(|l| l.initial.to_string()), c))
        .map(move |(e, key, initial, c)| LedgerRow {
            initial_contact_id: initial.unwrap_or_default(),
            contact_id: key.to_string(),
            initiation: Some(e.initiation),
            disconnect: Some(e.disconnect),
            class: c,
            reason: if c == LedgerClass::Unrecoverable {
                reasons
                    .get(key.to_string().as_str())
                    .map(|r| (*r).to_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            },
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::contacts::ContactCopy;
    use crate::domain::ctr::CtrRecord;
    use crate::domain::time::parse_ts;

    const INSTANCE: &str = "11111111-2222-3333-4444-555555555555";

    #[derive(Debug, Clone)]
    struct Ctr {
        id: String,
        channel: &'static str,
        instance: &'static str,
        initiation: &'static str,
        disconnect: Option<&'static str>,
        last_update: &'static str,
        /// `(location, status, storage type, media stream type)`
        recordings: Vec<(String, &'static str, &'static str, Option<&'static str>)>,
        legacy: Option<(String, &'static str)>,
    }

    fn call(id: &str) -> Ctr {
        Ctr {
            id: id.into(),
            channel: "VOICE",
            instance: INSTANCE,
            initiation: "2024-05-14T10:00:00Z",
            disconnect: Some("2024-05-14T10:05:00Z"),
            last_update: "2024-05-14T10:06:00Z",
            recordings: vec![(
                format!("rec/connect/x/CallRecordings/2024/05/14/{id}_20240514T10:00_UTC.wav"),
                "AVAILABLE",
                "S3",
                Some("AUDIO"),
            )],
            legacy: None,
        }
    }

    impl Ctr {
        fn json(&self) -> String {
            let recs: Vec<serde_json::Value> = self
                .recordings
                .iter()
                .map(|(l, s, st, m)| serde_json::json!({"Location": l, "Status": s, "StorageType": st, "MediaStreamType": m}))
                .collect();
            serde_json::json!({
                "ContactId": self.id, "Channel": self.channel,
                "InstanceARN": format!("arn:aws:connect:eu-west-2:123456789012:instance/{}", self.instance),
                "InitiationTimestamp": self.initiation, "DisconnectTimestamp": self.disconnect,
                "LastUpdateTimestamp": self.last_update, "Recordings": recs,
                "Recording": self.legacy.as_ref().map(|(l, s)| serde_json::json!({"Location": l, "Status": s, "Type": "AUDIO"})),
            })
            .to_string()
        }
    }

    fn set_of(ctrs: &[Ctr]) -> ContactSet {
        let mut set = ContactSet::new();
        for c in ctrs {
            let json = c.json();
            let record: CtrRecord<'_> = serde_json::from_str(&json).expect("valid json");
            set.insert(ContactCopy::from_record(&record, INSTANCE).expect("has id"));
        }
        set.finish();
        set
    }

    fn ts(s: &str) -> DateTime<Utc> {
        parse_ts(s).expect("valid")
    }

    const AUTO: Rules = Rules {
        initiation_window: None,
        settled_before: None,
    };

    /// The classification of `ctrs`; the set it borrows lives for the rest of the test.
    fn run(ctrs: &[Ctr], verint: &[&str], rules: &Rules) -> Classification<'static> {
        let set: &'static ContactSet = Box::leak(Box::new(set_of(ctrs)));
        let held: HashSet<ContactKey> = verint.iter().map(|id| ContactKey::folded(id)).collect();
        classify(set, &eligible(set, rules), &held, rules)
    }

    fn missing_ids(c: &Classification) -> Vec<String> {
        c.missing.iter().map(Missing::contact_id).collect()
    }

    #[test]
    fn a_contact_already_in_verint_is_not_queued() {
        let c = run(&[call("a"), call("b")], &["a"], &AUTO);
        assert_eq!((c.eligible, c.in_verint), (2, 1));
        assert_eq!(missing_ids(&c), ["b"]);
    }

    #[test]
    fn only_voice_calls_of_our_instance_that_ended_with_an_s3_recording_are_eligible() {
        let chat = Ctr {
            channel: "CHAT",
            ..call("chat")
        };
        let task = Ctr {
            channel: "TASK",
            ..call("task")
        };
        let other = Ctr {
            instance: "99999999-2222-3333-4444-555555555555",
            ..call("other")
        };
        let ongoing = Ctr {
            disconnect: None,
            ..call("ongoing")
        };
        let unrecorded = Ctr {
            recordings: vec![],
            ..call("unrecorded")
        };
        let kvs = Ctr {
            recordings: vec![(
                "rec/k".into(),
                "AVAILABLE",
                "KINESIS_VIDEO_STREAM",
                Some("AUDIO"),
            )],
            ..call("kvs")
        };
        let video = Ctr {
            recordings: vec![("rec/v".into(), "AVAILABLE", "S3", Some("VIDEO"))],
            ..call("video")
        };
        let no_type = Ctr {
            recordings: vec![("rec/n".into(), "AVAILABLE", "S3", None)],
            ..call("no-type")
        };
        let legacy_only = Ctr {
            recordings: vec![],
            legacy: Some(("rec/l".into(), "AVAILABLE")),
            ..call("legacy")
        };
        let c = run(
            &[
                chat,
                task,
                other,
                ongoing,
                unrecorded,
                kvs,
                video,
                no_type,
                legacy_only,
            ],
            &[],
            &AUTO,
        );
        assert_eq!(c.eligible, 2);
        let mut ids = missing_ids(&c);
        ids.sort();
        assert_eq!(ids, ["legacy", "no-type"]);
    }

    #[test]
    fn the_copy_with_the_greatest_last_update_counts() {
        let early = Ctr {
            recordings: vec![],
            last_update: "2024-05-14T10:06:00Z",
            ..call("a")
        };
        let late = Ctr {
            last_update: "2024-05-14T12:00:00Z",
            ..call("a")
        };
        for order in [[early.clone(), late.clone()], [late.clone(), early.clone()]] {
            let c = run(&order, &[], &AUTO);
            assert_eq!(missing_ids(&c), ["a"], "{order:?}");
        }
        // A later copy can also take eligibility away.
        let chat_later = Ctr {
            channel: "CHAT",
            last_update: "2024-05-14T12:00:00Z",
            ..call("b")
        };
        let c = run(&[call("b"), chat_later], &[], &AUTO);
        assert_eq!(c.eligible, 0);
    }

    #[test]
    fn a_contact_whose_recordings_are_all_deleted_is_unrecoverable_with_a_reason() {
        let deleted = Ctr {
            recordings: vec![("rec/a".into(), "DELETED", "S3", Some("AUDIO"))],
            ..call("gone")
        };
        let half = Ctr {
            recordings: vec![
                ("rec/ivr".into(), "DELETED", "S3", Some("AUDIO")),
                ("rec/agent".into(), "AVAILABLE", "S3", Some("AUDIO")),
            ],
            ..call("half")
        };
        let c = run(&[deleted, half], &[], &AUTO);
        assert_eq!(c.unrecoverable.len(), 1);
        assert_eq!(c.unrecoverable[0].contact_id, "gone");
        assert!(c.unrecoverable[0].reason.contains("DELETED"));
        assert_eq!(missing_ids(&c), ["half"]);
        assert_eq!(
            c.missing[0].recordings(),
            [QueuedRecording::new(
                S3Location {
                    bucket: "rec".into(),
                    key: "agent".into()
                },
                None
            )]
        );
    }

    #[test]
    fn a_deleted_call_already_in_verint_counts_as_in_verint() {
        let deleted = Ctr {
            recordings: vec![("rec/a".into(), "DELETED", "S3", Some("AUDIO"))],
            ..call("gone")
        };
        let c = run(&[deleted], &["gone"], &AUTO);
        assert_eq!((c.in_verint, c.unrecoverable.len()), (1, 0));
    }

    #[test]
    fn manual_runs_keep_contacts_initiated_inside_the_half_open_window() {
        let at_start = Ctr {
            initiation: "2024-05-14T10:00:00Z",
            ..call("at-start")
        };
        let before = Ctr {
            initiation: "2024-05-14T09:59:59Z",
            ..call("before")
        };
        let at_end = Ctr {
            initiation: "2024-05-14T11:00:00Z",
            disconnect: Some("2024-05-14T11:01:00Z"),
            ..call("at-end")
        };
        let rules = Rules {
            initiation_window: Some(Window {
                start: ts("2024-05-14T10:00:00Z"),
                end: ts("2024-05-14T11:00:00Z"),
            }),
            settled_before: None,
        };
        let c = run(&[at_start, before, at_end], &[], &rules);
        assert_eq!(missing_ids(&c), ["at-start"]);
    }

    #[test]
    fn manual_runs_leave_calls_that_ended_less_than_the_settle_delay_ago() {
        // The cutoff is now − SETTLE_DELAY: a call that ended exactly then has settled.
        let after_cutoff = Ctr {
            disconnect: Some("2024-05-14T10:30:01Z"),
            ..call("after")
        };
        let at_cutoff = Ctr {
            disconnect: Some("2024-05-14T10:30:00Z"),
            ..call("at")
        };
        let rules = Rules {
            initiation_window: None,
            settled_before: Some(ts("2024-05-14T10:30:00Z")),
        };
        let c = run(&[after_cutoff, at_cutoff], &[], &rules);
        assert_eq!(c.not_settled, 1);
        assert_eq!(missing_ids(&c), ["at"]);
    }

    #[test]
    fn a_call_with_an_implausible_disconnect_is_not_eligible() {
        let before_start = Ctr {
            disconnect: Some("2024-05-14T09:00:00Z"),
            ..call("before-start")
        };
        let far_future = Ctr {
            disconnect: Some("9999-12-31T23:59:59Z"),
            ..call("far-future")
        };
        let long = Ctr {
            disconnect: Some("2024-05-14T13:00:00Z"),
            ..call("three-hours")
        };
        let c = run(&[before_start, far_future, long], &[], &AUTO);
        assert_eq!(missing_ids(&c), ["three-hours"]);
    }

    fn span(start: &str, end: &str) -> Window {
        Window {
            start: ts(start),
            end: ts(end),
        }
    }

    #[test]
    fn das_is_asked_for_each_contacts_span_with_margins_merged_when_close() {
        let a = Ctr {
            initiation: "2024-05-14T10:00:00Z",
            disconnect: Some("2024-05-14T10:05:00Z"),
            ..call("a")
        };
        // Starts 20 minutes after a's span ends: less than the margin apart once both have it.
        let b = Ctr {
            initiation: "2024-05-14T10:40:00Z",
            disconnect: Some("2024-05-14T11:00:00Z"),
            ..call("b")
        };
        let c = Ctr {
            initiation: "2024-05-14T12:00:00Z",
            disconnect: Some("2024-05-14T15:00:00Z"),
            ..call("c")
        };
        let set = set_of(&[a, b, c]);
        assert_eq!(
            das_spans(&eligible(&set, &AUTO), TimeDelta::minutes(15)),
            [
                span("2024-05-14T09:45:00Z", "2024-05-14T11:15:00Z"),
                span("2024-05-14T11:45:00Z", "2024-05-14T15:15:00Z"),
            ]
        );
        assert!(das_spans(&[], TimeDelta::minutes(15)).is_empty());
    }

    #[test]
    fn an_old_contact_adds_its_own_span_and_not_the_weeks_between() {
        let old = Ctr {
            initiation: "2024-04-20T08:00:00Z",
            disconnect: Some("2024-04-20T08:10:00Z"),
            last_update: "2024-05-14T10:06:00Z",
            ..call("old")
        };
        let set = set_of(&[old, call("new")]);
        assert_eq!(
            das_spans(&eligible(&set, &AUTO), TimeDelta::minutes(15)),
            [
                span("2024-04-20T07:45:00Z", "2024-04-20T08:25:00Z"),
                span("2024-05-14T09:45:00Z", "2024-05-14T10:20:00Z"),
            ]
        );
    }

    #[test]
    fn spans_exactly_a_margin_apart_stay_apart_and_nested_spans_merge() {
        let m = TimeDelta::minutes(15);
        let e = |i: &str, d: &str, index| Eligible {
            index,
            initiation: ts(i),
            disconnect: ts(d),
        };
        // a: [09:45, 10:15); b starts at 10:45 - 15m = 10:30 = a.end + margin: apart.
        let spans = das_spans(
            &[
                e("2024-05-14T10:00:00Z", "2024-05-14T10:00:00Z", 0),
                e("2024-05-14T10:45:00Z", "2024-05-14T10:50:00Z", 1),
                e("2024-05-14T10:46:00Z", "2024-05-14T10:47:00Z", 2),
            ],
            m,
        );
        assert_eq!(
            spans,
            [
                span("2024-05-14T09:45:00Z", "2024-05-14T10:15:00Z"),
                span("2024-05-14T10:30:00Z", "2024-05-14T11:05:00Z"),
            ]
        );
    }

    #[test]
    fn ids_are_matched_case_insensitively() {
        let upper = call("ABCDEF01-2345-6789-ABCD-EF0123456789");
        let lower = call("12345678-9abc-def0-1234-56789abcdef0");
        let c = run(
            &[upper, lower],
            &[
                "abcdef01-2345-6789-abcd-ef0123456789",
                "12345678-9ABC-DEF0-1234-56789ABCDEF0",
            ],
            &AUTO,
        );
        assert_eq!(c.in_verint, 2, "{c:?}");
        assert!(c.missing.is_empty());
    }

    fn arb_ctr() -> impl Strategy<Value = Ctr> {
        (0u8..12, 0u8..4, 0u8..6, prop::bool::ANY, 0u8..3).prop_map(
            |(id, ch, lu, deleted, kind)| {
                let channel = ["VOICE", "VOICE", "CHAT", "TASK"][ch as usize];
                let last_update = [
                    "2024-05-14T10:06:00Z",
                    "2024-05-14T10:07:00Z",
                    "2024-05-14T10:08:00Z",
                    "2024-05-14T11:00:00Z",
                    "2024-05-14T12:00:00Z",
                    "2024-05-14T10:06:00Z",
                ][lu as usize];
                let status = if deleted { "DELETED" } else { "AVAILABLE" };
                let mut c = Ctr {
                    channel,
                    last_update,
                    ..call(&format!("c{id}"))
                };
                c.recordings[0].1 = status;
                if kind == 1 {
                    c.recordings.clear();
                }
                if kind == 2 {
                    c.disconnect = None;
                }
                c
            },
        )
    }

    proptest! {
        #[test]
        fn no_contact_held_by_verint_is_ever_missing(
            ctrs in prop::collection::vec(arb_ctr(), 0..40),
            held in prop::collection::hash_set(0u8..12, 0..12),
        ) {
            let held: Vec<String> = held.iter().map(|i| format!("c{i}")).collect();
            let held_refs: Vec<&str> = held.iter().map(String::as_str).collect();
            let c = run(&ctrs, &held_refs, &AUTO);
            for m in &c.missing {
                prop_assert!(!held.contains(&m.contact_id()));
            }
            prop_assert_eq!(c.eligible, c.in_verint + c.unrecoverable.len() as u64 + c.not_settled + c.missing.len() as u64);
        }

        #[test]
        fn the_result_does_not_depend_on_record_order_or_duplication(
            ctrs in prop::collection::vec(arb_ctr(), 0..40),
            seed in any::<u64>(),
            held in prop::collection::hash_set(0u8..12, 0..6),
        ) {
            let held: Vec<String> = held.iter().map(|i| format!("c{i}")).collect();
            let held_refs: Vec<&str> = held.iter().map(String::as_str).collect();
            let base = run(&ctrs, &held_refs, &AUTO);
            let mut shuffled = ctrs.clone();
            shuffled.extend(ctrs.iter().take((seed % 7) as usize).cloned());
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(base, run(&shuffled, &held_refs, &AUTO));
        }
    }
}
