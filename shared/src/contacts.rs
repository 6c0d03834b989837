//! The deduplicated set of contacts read from CTRs, in compact form: a day of a large centre is
//! a million contacts, so each keeps only what matching needs (the id, three timestamps, flags and
//! its recording locations, stored in one string arena with interned directories).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::ctr::CtrRecord;
use crate::time::parse_ts;

/// A contact id: a canonical (lowercase) UUID packs into 16 bytes; anything else is kept as is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactKey {
    Uuid([u8; 16]),
    Other(Box<str>),
}

impl ContactKey {
    pub fn new(id: &str) -> Self {
        parse_uuid(id).map_or_else(|| ContactKey::Other(id.into()), ContactKey::Uuid)
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
const NONE: i64 = i64::MIN;

/// One copy of a contact, reduced to what matching needs. Built on a parsing thread, merged into
/// a [`ContactSet`] on one.
#[derive(Debug, Clone)]
pub struct ContactCopy {
    pub key: ContactKey,
    flags: u8,
    initiation: i64,
    disconnect: i64,
    last_update: i64,
    /// `(location, deleted)`, kept only for voice contacts of our instance.
    recordings: Vec<(Box<str>, bool)>,
}

impl ContactCopy {
    /// Reduces a parsed record; `None` when it has no `ContactId`.
    pub fn from_record(record: &CtrRecord<'_>, instance_id: &str) -> Option<Self> {
        let id = record.contact_id.as_deref()?;
        let secs = |v: &Option<std::borrow::Cow<'_, str>>| {
            v.as_deref()
                .and_then(parse_ts)
                .map_or(NONE, |t| t.timestamp())
        };
        let voice = record.channel.as_deref() == Some("VOICE");
        let ours = record
            .instance_arn
            .as_deref()
            .is_some_and(|arn| arn_is_instance(arn, instance_id));
        let flags = if voice { VOICE } else { 0 } | if ours { OURS } else { 0 };
        let recordings = if voice && ours {
            record
                .s3_recordings()
                .into_iter()
                .map(|(l, d)| (l.into(), d))
                .collect()
        } else {
            Vec::new()
        };
        Some(ContactCopy {
            key: ContactKey::new(id),
            flags,
            initiation: secs(&record.initiation_timestamp),
            disconnect: secs(&record.disconnect_timestamp),
            last_update: secs(&record.last_update_timestamp),
            recordings,
        })
    }
}

/// `arn:aws:connect:REGION:ACCOUNT:instance/ID` names instance `ID`.
fn arn_is_instance(arn: &str, instance_id: &str) -> bool {
    arn.rsplit_once("instance/")
        .is_some_and(|(_, id)| id == instance_id)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    initiation: i64,
    disconnect: i64,
    last_update: i64,
    rec_start: u32,
    rec_len: u8,
    flags: u8,
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    dir: u32,
    name_start: u32,
    name_len: u32,
    deleted: bool,
}

/// The copy of each contact with the greatest `LastUpdateTimestamp` (DESIGN §3).
#[derive(Debug, Default)]
pub struct ContactSet {
    map: HashMap<ContactKey, Entry>,
    dirs: Vec<Box<str>>,
    dir_index: HashMap<Box<str>, u32>,
    names: String,
    recs: Vec<Rec>,
    records: u64,
}

/// A recording of a contact as the CTR gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRef {
    /// `bucket/key`, exactly as in the CTR's `Location`.
    pub location: String,
    pub deleted: bool,
}

/// A contact as matching sees it.
#[derive(Debug, Clone)]
pub struct ContactView {
    pub key: ContactKey,
    pub voice: bool,
    pub ours: bool,
    pub initiation: Option<DateTime<Utc>>,
    pub disconnect: Option<DateTime<Utc>>,
    pub recordings: Vec<RecordingRef>,
}

impl ContactSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records merged, duplicates included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Number of distinct contacts.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Merges one copy: it replaces the kept one when its `LastUpdateTimestamp` is greater. Ties
    /// are broken on the content, so the result never depends on the order records are read in.
    pub fn insert(&mut self, copy: ContactCopy) {
        self.records += 1;
        if let Some(kept) = self.map.get(&copy.key)
            && !self.newer(&copy, kept)
        {
            return;
        }
        let rec_start = u32::try_from(self.recs.len()).unwrap_or(u32::MAX);
        let rec_len = u8::try_from(copy.recordings.len()).unwrap_or(u8::MAX);
        for (location, deleted) in copy.recordings.iter().take(usize::from(rec_len)) {
            let rec = self.intern(location, *deleted);
            self.recs.push(rec);
        }
        let entry = Entry {
            initiation: copy.initiation,
            disconnect: copy.disconnect,
            last_update: copy.last_update,
            rec_start,
            rec_len,
            flags: copy.flags,
        };
        self.map.insert(copy.key, entry);
    }

    fn newer(&self, copy: &ContactCopy, kept: &Entry) -> bool {
        use std::cmp::Ordering::*;
        let a = (
            copy.last_update,
            copy.disconnect,
            copy.initiation,
            copy.flags,
            copy.recordings.len(),
        );
        let b = (
            kept.last_update,
            kept.disconnect,
            kept.initiation,
            kept.flags,
            usize::from(kept.rec_len),
        );
        match a.cmp(&b) {
            Greater => true,
            Less => false,
            Equal => {
                let ours: Vec<(String, bool)> = copy
                    .recordings
                    .iter()
                    .map(|(l, d)| (l.to_string(), *d))
                    .collect();
                let theirs: Vec<(String, bool)> = self
                    .recordings_of(kept)
                    .into_iter()
                    .map(|r| (r.location, r.deleted))
                    .collect();
                ours > theirs
            }
        }
    }

    fn intern(&mut self, location: &str, deleted: bool) -> Rec {
        let (dir, name) = location
            .rsplit_once('/')
            .map_or(("", location), |(d, n)| (d, n));
        let dir = match self.dir_index.get(dir) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.dirs.len()).unwrap_or(u32::MAX);
                self.dirs.push(dir.into());
                self.dir_index.insert(dir.into(), i);
                i
            }
        };
        let name_start = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push_str(name);
        Rec {
            dir,
            name_start,
            name_len: u32::try_from(name.len()).unwrap_or(0),
            deleted,
        }
    }

    fn recordings_of(&self, e: &Entry) -> Vec<RecordingRef> {
        let start = e.rec_start as usize;
        self.recs[start..start + usize::from(e.rec_len)]
            .iter()
            .map(|r| {
                let dir = &self.dirs[r.dir as usize];
                let start = r.name_start as usize;
                let name = &self.names[start..start + r.name_len as usize];
                let location = if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                };
                RecordingRef {
                    location,
                    deleted: r.deleted,
                }
            })
            .collect()
    }

    /// Every contact, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = ContactView> + '_ {
        let ts = |s: i64| {
            (s != NONE)
                .then(|| DateTime::from_timestamp(s, 0))
                .flatten()
        };
        self.map.iter().map(move |(key, e)| ContactView {
            key: key.clone(),
            voice: e.flags & VOICE != 0,
            ours: e.flags & OURS != 0,
            initiation: ts(e.initiation),
            disconnect: ts(e.disconnect),
            recordings: self.recordings_of(e),
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
    fn an_entry_stays_small() {
        assert!(std::mem::size_of::<Entry>() <= 32);
        assert!(std::mem::size_of::<ContactKey>() <= 24);
    }
}
