//! The deduplicated set of contacts read from CTRs, in compact form: a day of a large centre is
//! a million contacts, so each keeps only what matching needs (the id, three timestamps, flags and
//! its recording locations, stored in one string arena with interned directories).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use std::cmp::Ordering;

use crate::domain::ctr::CtrRecord;
use crate::domain::ctr::S3Location;
use crate::domain::time::parse_ts;

/// A contact id: a canonical (lowercase) UUID packs into 16 bytes; anything else is kept as is.
/// Connect keeps contacts for 24 months; a manual run cannot start earlier than this.
pub(crate) const CONNECT_RETENTION: TimeDelta = TimeDelta::days(730);

/// Amazon Connect contact ids are UUIDs (`8-4-4-4-12` hex digits, either case). Anything else
/// in a message is malformed, and is never put into a URL, a header or a filename.
pub(crate) fn is_contact_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactKey {
    Uuid([u8; 16]),
    Other(Box<str>),
}

impl ContactKey {
    pub fn new(id: &str) -> Self {
        parse_uuid(id).map_or_else(|| ContactKey::Other(id.into()), ContactKey::Uuid)
    }

    /// The key of an id compared case-insensitively (DAS's ids, design §4): lowercased first.
    pub fn folded(id: &str) -> Self {
        if id.bytes().any(|b| b.is_ascii_uppercase()) {
            Self::new(&id.to_ascii_lowercase())
        } else {
            Self::new(id)
        }
    }
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = hex_lower(b[i])?;
        let lo = hex_lower(b[i + 1])?;
        out[n] = hi << 4 | lo;
        n += 1;
        i += 2;
    }
    Some(out)
}

fn hex_lower(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContactKey::Other(s) => f.write_str(s),
            ContactKey::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

const VOICE: u8 = 1;
const OURS: u8 = 2;
/// The slot's id is an index into the set's non-UUID ids, not UUID bytes.
const OTHER_ID: u8 = 4;
/// Timestamps are whole seconds since 1970 in a `u32` (good until 2106); 0 means absent.
const NONE: u32 = 0;
/// No call lasts longer than this.
const MAX_CALL_SECS: u32 = 7 * 24 * 3600;

fn secs(t: Option<DateTime<Utc>>) -> u32 {
    t.and_then(|t| u32::try_from(t.timestamp()).ok())
        .unwrap_or(NONE)
}

fn time(s: u32) -> Option<DateTime<Utc>> {
    (s != NONE)
        .then(|| DateTime::from_timestamp(i64::from(s), 0))
        .flatten()
}

/// One copy of a contact, reduced to what matching needs. Built on a parsing thread, merged into
/// a [`ContactSet`] on one.
#[derive(Debug, Clone)]
pub struct ContactCopy {
    pub key: ContactKey,
    flags: u8,
    /// Its timestamps cannot be a call's (disconnect before initiation, or over 7 days after).
    implausible: bool,
    initiation: u32,
    disconnect: u32,
    last_update: u32,
    /// `(location, deleted, expected seconds or 0)`, kept only for voice contacts of our
    /// instance, and only locations that name a bucket and a key.
    recordings: Vec<(Box<str>, bool, u32)>,
    /// Which of the deployment's instances it is of: 1 + its place in the list, 0 for none.
    instance: u8,
    /// Its transfer chain, kept for voice contacts of our instances that are not a first leg.
    link: Option<Box<Link>>,
}

/// Where a contact sits in its transfer chain (design §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `InitialContactId`: the chain's first leg, whose id is the chain's.
    pub initial: ContactKey,
    /// `PreviousContactId`, when given.
    pub previous: Option<ContactKey>,
}

impl ContactCopy {
    /// Reduces a parsed record of a deployment with one instance; `None` when it has no
    /// `ContactId`.
    #[cfg(test)]
    pub(crate) fn from_record(record: &CtrRecord<'_>, instance_id: &str) -> Option<Self> {
        Self::from_record_in(record, &[instance_id])
    }

    /// Reduces a parsed record of a deployment of several instances (design §11).
    pub(crate) fn from_record_in(record: &CtrRecord<'_>, instances: &[&str]) -> Option<Self> {
        let id = record.contact_id.as_deref()?;
        let ts = |v: &Option<std::borrow::Cow<'_, str>>| secs(v.as_deref().and_then(parse_ts));
        let voice = record.channel.as_deref() == Some("VOICE");
        let instance = record
            .instance_arn
            .as_deref()
            .and_then(|arn| instances.iter().position(|i| arn_is_instance(arn, i)))
            .and_then(|i| u8::try_from(i + 1).ok())
            .unwrap_or(0);
        let ours = instance != 0;
        let flags = if voice { VOICE } else { 0 } | if ours { OURS } else { 0 };
        let recordings = if voice && ours {
            record
                .s3_recordings_timed()
                .into_iter()
                .filter(|(l, _, _)| S3Location::parse(l).is_some())
                .map(|(l, d, e)| (l.into(), d, e.unwrap_or(0)))
                .collect()
        } else {
            Vec::new()
        };
        let initiation = ts(&record.initiation_timestamp);
        let mut disconnect = ts(&record.disconnect_timestamp);
        // A disconnect before the initiation or more than a week after it is not a real call's:
        // such a copy is not eligible, cannot stretch DAS's spans to centuries, and is counted
        // as malformed by the reader (see `implausible`).
        let implausible = disconnect != NONE
            && (initiation == NONE
                || disconnect < initiation
                || disconnect - initiation > MAX_CALL_SECS);
        if implausible {
            disconnect = NONE;
        }
        let id_of = |v: &Option<std::borrow::Cow<'_, str>>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != id)
                .map(ContactKey::new)
        };
        let link = (voice && ours)
            .then(|| id_of(&record.initial_contact_id))
            .flatten()
            .map(|initial| {
                Box::new(Link {
                    initial,
                    previous: id_of(&record.previous_contact_id),
                })
            });
        Some(ContactCopy {
            key: ContactKey::new(id),
            flags,
            implausible,
            initiation,
            disconnect,
            last_update: ts(&record.last_update_timestamp),
            recordings,
            instance,
            link,
        })
    }
}

impl ContactCopy {
    /// Whether the record's timestamps cannot be a real call's: a disconnect without an
    /// initiation, before it, or more than 7 days after it. Such a record is malformed.
    pub(crate) fn implausible(&self) -> bool {
        self.implausible
    }

    /// Drops the recordings of a contact initiated outside `window`: `InitiationTimestamp` is
    /// the same in every copy, so such a contact is never eligible in a manual run over the
    /// window, and its locations would only take memory. The copy itself stays, so duplicates
    /// and newest-copy selection are counted as before.
    pub(crate) fn forget_recordings_outside(&mut self, window: crate::domain::time::Window) {
        let inside = time(self.initiation).is_some_and(|t| window.contains(t));
        if !inside && self.initiation != NONE {
            self.recordings = Vec::new();
            self.link = None;
        }
    }
}

/// `arn:aws:connect:REGION:ACCOUNT:instance/ID` names instance `ID`.
fn arn_is_instance(arn: &str, instance_id: &str) -> bool {
    arn.rsplit_once("instance/")
        .is_some_and(|(_, id)| id == instance_id)
}

/// One copy in the set: 40 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: [u8; 16],
    last_update: u32,
    initiation: u32,
    disconnect: u32,
    rec_start: u32,
    /// 1 + its place in the set's links; 0: a first leg.
    link: u32,
    rec_len: u8,
    flags: u8,
    /// 1 + the place of its instance in the deployment's list; 0: none of them.
    instance: u8,
}

/// A recording location: the interned directory (`bucket/…/`) and the file name in the arena.
/// Connect names recordings `<ContactId>_<time>_UTC.wav`: when the name starts with the contact's
/// id, only the rest is stored (`id_prefix`), and the exact name is rebuilt from the id.
#[derive(Debug, Clone, Copy)]
struct Rec {
    dir: u32,
    name_start: u32,
    /// The CTR's `StopTimestamp − StartTimestamp` in seconds; 0 when unknown.
    expected: u32,
    name_len: u16,
    deleted: bool,
    id_prefix: bool,
}

/// The contacts read from CTRs: every copy is appended while reading; [`ContactSet::finish`]
/// sorts them and keeps, per contact, the copy with the greatest `LastUpdateTimestamp`
/// (design §3). A sorted vector costs a third of a hash map for a million contacts.
#[derive(Debug, Default)]
pub struct ContactSet {
    slots: Vec<Slot>,
    dirs: Vec<Box<str>>,
    dir_index: HashMap<Box<str>, u32>,
    names: String,
    recs: Vec<Rec>,
    others: Vec<Box<str>>,
    other_index: HashMap<Box<str>, u32>,
    /// The chains of the contacts that are not a first leg (a minority).
    links: Vec<Link>,
    records: u64,
    finished: bool,
}

/// A recording of a contact as the CTR gave it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordingRef {
    /// `bucket/key`, exactly as in the CTR's `Location`.
    pub location: String,
    pub deleted: bool,
    /// How long the CTR says it lasted (design §10).
    pub expected_seconds: Option<u32>,
}

/// A contact as matching sees it, borrowed from the set.
#[derive(Debug, Clone, Copy)]
pub struct ContactView<'a> {
    set: &'a ContactSet,
    slot: &'a Slot,
    /// Its position in the set (the set is ordered by contact id).
    pub index: u32,
}

impl ContactView<'_> {
    pub fn key(&self) -> ContactKey {
        self.set.key_of(self.slot)
    }
    pub fn voice(&self) -> bool {
        self.slot.flags & VOICE != 0
    }
    pub fn ours(&self) -> bool {
        self.slot.flags & OURS != 0
    }
    pub fn initiation(&self) -> Option<DateTime<Utc>> {
        time(self.slot.initiation)
    }
    pub fn disconnect(&self) -> Option<DateTime<Utc>> {
        time(self.slot.disconnect)
    }
    /// How many S3 recordings it has.
    pub(crate) fn recording_count(&self) -> usize {
        usize::from(self.slot.rec_len)
    }
    /// Whether every S3 recording has `Status` `DELETED` (false with none).
    pub fn all_deleted(&self) -> bool {
        let recs = self.set.recs_of(self.slot);
        !recs.is_empty() && recs.iter().all(|r| r.deleted)
    }
    /// Its S3 recordings, in design §4 order.
    pub fn recordings(&self) -> Vec<RecordingRef> {
        self.set.recordings_of(self.slot)
    }
    /// The place of its instance in the deployment's list (design §11).
    pub fn instance(&self) -> Option<usize> {
        usize::from(self.slot.instance).checked_sub(1)
    }
    /// Its transfer chain, when it is not a first leg (design §11).
    pub fn link(&self) -> Option<&Link> {
        (self.slot.link as usize)
            .checked_sub(1)
            .and_then(|i| self.set.links.get(i))
    }
}

/// The 36 characters of a canonical UUID, without allocating.
fn uuid_ascii(b: &[u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut o = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            o += 1;
        }
        out[o] = HEX[usize::from(byte >> 4)];
        out[o + 1] = HEX[usize::from(byte & 0xf)];
        o += 2;
    }
    out
}

impl ContactSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records merged, duplicates included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Number of distinct contacts (after [`ContactSet::finish`]).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Appends one copy; duplicates are resolved by [`ContactSet::finish`].
    pub fn insert(&mut self, copy: ContactCopy) {
        self.records += 1;
        self.finished = false;
        let (id, flags) = match &copy.key {
            ContactKey::Uuid(b) => (*b, copy.flags),
            ContactKey::Other(s) => {
                let i = match self.other_index.get(s) {
                    Some(&i) => i,
                    None => {
                        let i = u32::try_from(self.others.len()).unwrap_or(u32::MAX);
                        self.others.push(s.clone());
                        self.other_index.insert(s.clone(), i);
                        i
                    }
                };
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_be_bytes());
                (id, copy.flags | OTHER_ID)
            }
        };
        let id_text = match &copy.key {
            ContactKey::Uuid(b) => Some(uuid_ascii(b)),
            ContactKey::Other(_) => None,
        };
        let rec_start = u32::try_from(self.recs.len()).unwrap_or(u32::MAX);
        let rec_len = u8::try_from(copy.recordings.len()).unwrap_or(u8::MAX);
        for (location, deleted, expected) in copy.recordings.iter().take(usize::from(rec_len)) {
            let mut rec = self.intern(location, *deleted, id_text.as_ref());
            rec.expected = *expected;
            self.recs.push(rec);
        }
        let link = match copy.link {
            Some(link) => {
                self.links.push(*link);
                u32::try_from(self.links.len()).unwrap_or(0)
            }
            None => 0,
        };
        self.slots.push(Slot {
            id,
            last_update: copy.last_update,
            initiation: copy.initiation,
            disconnect: copy.disconnect,
            rec_start,
            link,
            rec_len,
            flags,
            instance: copy.instance,
        });
    }

    /// Keeps, per contact, the copy with the greatest `LastUpdateTimestamp`. Ties are broken on
    /// the content, so the result never depends on the order records were read in.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        let mut slots = std::mem::take(&mut self.slots);
        // Per contact, the newest copy first; `dedup_by` keeps the first of each run.
        slots.sort_unstable_by(|a, b| self.id_cmp(a, b).then_with(|| self.newness(b, a)));
        slots.dedup_by(|later, first| self.id_cmp(later, first) == Ordering::Equal);
        self.slots = slots;
        self.finished = true;
    }

    /// UUIDs by their bytes (which is their text order), then other ids by their text.
    fn id_cmp(&self, a: &Slot, b: &Slot) -> Ordering {
        match (a.flags & OTHER_ID, b.flags & OTHER_ID) {
            (0, 0) => a.id.cmp(&b.id),
            (0, _) => Ordering::Less,
            (_, 0) => Ordering::Greater,
            _ => self.key_of(a).cmp(&self.key_of(b)),
        }
    }

    fn newness(&self, a: &Slot, b: &Slot) -> Ordering {
        let head = |s: &Slot| {
            (
                s.last_update,
                s.disconnect,
                s.initiation,
                s.flags,
                s.rec_len,
            )
        };
        head(a)
            .cmp(&head(b))
            .then_with(|| self.recordings_of(a).cmp(&self.recordings_of(b)))
    }

    fn intern(&mut self, location: &str, deleted: bool, id_text: Option<&[u8; 36]>) -> Rec {
        let (dir, name) = location.rsplit_once('/').unwrap_or(("", location));
        let dir = match self.dir_index.get(dir) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.dirs.len()).unwrap_or(u32::MAX);
                self.dirs.push(dir.into());
                self.dir_index.insert(dir.into(), i);
                i
            }
        };
        let id_prefix = id_text.is_some_and(|id| name.as_bytes().starts_with(id));
        let stored = if id_prefix { &name[36..] } else { name };
        let name_start = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push_str(stored);
        Rec {
            dir,
            name_start,
            expected: 0,
            name_len: u16::try_from(stored.len()).unwrap_or(0),
            deleted,
            id_prefix,
        }
    }

    fn key_of(&self, s: &Slot) -> ContactKey {
        if s.flags & OTHER_ID == 0 {
            return ContactKey::Uuid(s.id);
        }
        let i = u32::from_be_bytes([s.id[0], s.id[1], s.id[2], s.id[3]]) as usize;
        ContactKey::Other(self.others.get(i).cloned().unwrap_or_default())
    }

    fn recs_of(&self, s: &Slot) -> &[Rec] {
        let start = s.rec_start as usize;
        self.recs
            .get(start..start + usize::from(s.rec_len))
            .unwrap_or(&[])
    }

    fn recordings_of(&self, s: &Slot) -> Vec<RecordingRef> {
        self.recs_of(s)
            .iter()
            .map(|r| {
                let dir = self.dirs.get(r.dir as usize).map_or("", |d| d);
                let start = r.name_start as usize;
                let rest = self
                    .names
                    .get(start..start + usize::from(r.name_len))
                    .unwrap_or("");
                let mut location = String::with_capacity(dir.len() + 1 + 36 + rest.len());
                if !dir.is_empty() {
                    location.push_str(dir);
                    location.push('/');
                }
                if r.id_prefix {
                    location.push_str(&String::from_utf8_lossy(&uuid_ascii(&s.id)));
                }
                location.push_str(rest);
                RecordingRef {
                    location,
                    deleted: r.deleted,
                    expected_seconds: (r.expected > 0).then_some(r.expected),
                }
            })
            .collect()
    }

    /// The contact at `index`.
    pub(crate) fn view(&self, index: u32) -> Option<ContactView<'_>> {
        self.slots.get(index as usize).map(|slot| ContactView {
            set: self,
            slot,
            index,
        })
    }

    /// Every contact, ordered by id. Call [`ContactSet::finish`] first.
    pub fn iter(&self) -> impl Iterator<Item = ContactView<'_>> + '_ {
        debug_assert!(
            self.finished || self.slots.is_empty(),
            "ContactSet::finish was not called"
        );
        self.slots
            .iter()
            .enumerate()
            .map(move |(i, slot)| ContactView {
                set: self,
                slot,
                index: i as u32,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_pack_and_print_back_unchanged() {
        for id in [
            "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            "ABCDEF00-0000-0000-0000-000000000000",
            "x",
        ] {
            assert_eq!(ContactKey::new(id).to_string(), id);
        }
        assert!(matches!(
            ContactKey::new("0a1b2c3d-4e5f-6789-abcd-ef0123456789"),
            ContactKey::Uuid(_)
        ));
        assert!(matches!(
            ContactKey::new("ABCDEF00-0000-0000-0000-000000000000"),
            ContactKey::Other(_)
        ));
    }

    #[test]
    fn a_copy_stays_small() {
        // 36 bytes of contact, 4 of transfer chain (design §11).
        assert!(std::mem::size_of::<Slot>() <= 40);
        // 12 bytes of location and 4 of expected length (design §10).
        assert!(std::mem::size_of::<Rec>() <= 16);
    }

    #[test]
    fn recording_names_that_start_with_the_id_round_trip_exactly() {
        let id = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
        let json = format!(
            r#"{{"ContactId":"{id}","Channel":"VOICE","InstanceARN":"arn:aws:connect:r:1:instance/i","LastUpdateTimestamp":"2024-05-14T10:00:00Z",
            "Recordings":[{{"Location":"rec/connect/x/CallRecordings/2024/05/14/{id}_20240514T10:00_UTC.wav","StorageType":"S3","Status":"AVAILABLE"}},
                          {{"Location":"rec/other-name.wav","StorageType":"S3","Status":"DELETED"}},
                          {{"Location":"no-key","StorageType":"S3","Status":"AVAILABLE"}}]}}"#
        );
        let record: CtrRecord<'_> = serde_json::from_str(&json).expect("valid");
        let mut set = ContactSet::new();
        set.insert(ContactCopy::from_record(&record, "i").expect("has id"));
        set.finish();
        let view = set.iter().next().expect("one contact");
        assert_eq!(view.key().to_string(), id);
        assert_eq!(
            view.recordings(),
            [
                RecordingRef {
                    location: format!(
                        "rec/connect/x/CallRecordings/2024/05/14/{id}_20240514T10:00_UTC.wav"
                    ),
                    deleted: false,
                    expected_seconds: None,
                },
                RecordingRef {
                    location: "rec/other-name.wav".into(),
                    deleted: true,
                    expected_seconds: None,
                },
            ]
        );
        assert!(!view.all_deleted());
    }

    #[test]
    fn a_manual_window_drops_only_the_recordings_of_contacts_initiated_outside_it() {
        let window = crate::domain::time::Window {
            start: parse_ts("2024-05-14T10:00:00Z").expect("valid"),
            end: parse_ts("2024-05-14T11:00:00Z").expect("valid"),
        };
        let mut set = ContactSet::new();
        for (id, start) in [
            (
                "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
                "2024-05-14T10:30:00Z",
            ),
            (
                "1a1b2c3d-4e5f-6789-abcd-ef0123456789",
                "2024-05-14T11:00:00Z",
            ),
        ] {
            let json = format!(
                r#"{{"ContactId":"{id}","Channel":"VOICE","InstanceARN":"arn:aws:connect:r:1:instance/i","InitiationTimestamp":"{start}",
                "Recordings":[{{"Location":"rec/{id}.wav","StorageType":"S3","Status":"AVAILABLE"}}]}}"#
            );
            let record: CtrRecord<'_> = serde_json::from_str(&json).expect("valid");
            let mut copy = ContactCopy::from_record(&record, "i").expect("has id");
            copy.forget_recordings_outside(window);
            set.insert(copy);
        }
        set.finish();
        let counts: Vec<(String, usize)> = set
            .iter()
            .map(|v| (v.key().to_string(), v.recording_count()))
            .collect();
        assert_eq!(
            counts,
            [
                ("0a1b2c3d-4e5f-6789-abcd-ef0123456789".to_owned(), 1),
                ("1a1b2c3d-4e5f-6789-abcd-ef0123456789".to_owned(), 0)
            ]
        );
        assert_eq!(set.records(), 2, "the copy itself is still counted");
    }

    #[test]
    fn duplicates_collapse_to_the_newest_copy_for_any_id() {
        let mut set = ContactSet::new();
        for (id, lu, channel) in [
            ("x-1", "2024-05-14T10:00:00Z", "CHAT"),
            ("x-1", "2024-05-14T11:00:00Z", "VOICE"),
            (
                "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
                "2024-05-14T10:00:00Z",
                "VOICE",
            ),
            ("x-1", "2024-05-14T09:00:00Z", "TASK"),
        ] {
            let json = format!(
                r#"{{"ContactId":"{id}","Channel":"{channel}","LastUpdateTimestamp":"{lu}"}}"#
            );
            let record: CtrRecord<'_> = serde_json::from_str(&json).expect("valid");
            set.insert(ContactCopy::from_record(&record, "i").expect("has id"));
        }
        set.finish();
        assert_eq!((set.records(), set.len()), (4, 2));
        let other = set
            .iter()
            .find(|v| v.key().to_string() == "x-1")
            .expect("kept");
        assert!(other.voice());
    }

    #[test]
    fn contact_ids_are_uuids_in_either_case() {
        assert!(is_contact_id("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"));
        assert!(is_contact_id("5F8A7B3C-1D2E-4F60-8A9B-0C1D2E3F4A5B"));
        for bad in [
            "",
            "c-1",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b\r\nX-Evil: 1",
            "5f8a7b3c\"1d2e-4f60-8a9b-0c1d2e3f4a5b",
            "5f8a7b3cx1d2e-4f60-8a9b-0c1d2e3f4a5b",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5g",
        ] {
            assert!(!is_contact_id(bad), "{bad:?}");
        }
    }
}
