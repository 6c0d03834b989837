//! The streaming CTR reader: Firehose objects in either framing (concatenated JSON with no
//! delimiter, or NDJSON), optionally GZIP-compressed (detected by the magic bytes, never the key
//! name). Records are parsed one at a time from a bounded buffer, never a whole object at once.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

use serde::Deserialize;

/// An S3 object named by a CTR `Location` (`bucket/key`; the key may hold `:`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Splits a `Location` at its first `/`; never rebuilds or re-encodes the key.
    pub fn parse(location: &str) -> Option<Self> {
        let (bucket, key) = location.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| S3Location {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

/// The fields of a CTR that matching needs; every other field is skipped while parsing.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CtrRecord<'a> {
    #[serde(borrow)]
    pub contact_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "InstanceARN")]
    pub instance_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub initiation_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub disconnect_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub last_update_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub recording: Option<LegacyRecording<'a>>,
    #[serde(borrow)]
    pub recordings: Option<Vec<RecordingEntry<'a>>>,
    /// The first contact of its transfer chain; absent or null for a first leg (design §11).
    #[serde(borrow)]
    pub initial_contact_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub previous_contact_id: Option<Cow<'a, str>>,
}

/// The legacy, singular `Recording`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyRecording<'a> {
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
}

/// One entry of `Recordings[]`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingEntry<'a> {
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub media_stream_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub storage_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub start_timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub stop_timestamp: Option<Cow<'a, str>>,
}

impl RecordingEntry<'_> {
    /// `StopTimestamp − StartTimestamp` in whole seconds, when both are there and in order
    /// (design §10).
    pub fn expected_seconds(&self) -> Option<u32> {
        let at = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(crate::domain::time::parse_ts);
        let seconds = (at(&self.stop_timestamp)? - at(&self.start_timestamp)?).num_seconds();
        u32::try_from(seconds).ok().filter(|s| *s > 0)
    }
}

impl CtrRecord<'_> {
    /// The contact's S3 recordings in the order of design §4: the `Recordings[]` entries with
    /// `StorageType` S3, a `Location` and `MediaStreamType` AUDIO or absent; then the legacy
    /// `Recording` when its `Location` is not already among them. Yields `(location, deleted)`.
    pub fn s3_recordings(&self) -> Vec<(&str, bool)> {
        self.s3_recordings_timed()
            .into_iter()
            .map(|(l, d, _)| (l, d))
            .collect()
    }

    /// [`CtrRecord::s3_recordings`], each with its expected length in seconds when the entry
    /// gives its start and stop (the legacy `Recording` never does).
    pub fn s3_recordings_timed(&self) -> Vec<(&str, bool, Option<u32>)> {
        let mut out: Vec<(&str, bool, Option<u32>)> = Vec::new();
        for r in self.recordings.iter().flatten() {
            let s3 = r.storage_type.as_deref() == Some("S3");
            let audio = matches!(r.media_stream_type.as_deref(), None | Some("AUDIO"));
            if let (true, true, Some(location)) = (s3, audio, r.location.as_deref()) {
                out.push((
                    location,
                    is_deleted(r.status.as_deref()),
                    r.expected_seconds(),
                ));
            }
        }
        if let Some(legacy) = &self.recording
            && let Some(location) = legacy.location.as_deref()
            && !out.iter().any(|(l, _, _)| *l == location)
        {
            out.push((location, is_deleted(legacy.status.as_deref()), None));
        }
        out
    }
}

fn is_deleted(status: Option<&str>) -> bool {
    status == Some("DELETED")
}

/// What reading one object found, besides its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Records that parsed and carry a `ContactId`.
    pub records: u64,
    /// Lines, spans or whole objects that could not be read, and records without a `ContactId`.
    pub malformed: u64,
}

impl std::ops::AddAssign for ReadStats {
    fn add_assign(&mut self, o: Self) {
        self.records += o.records;
        self.malformed += o.malformed;
    }
}

/// Why reading an object stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source failed underneath (network, permissions): the run cannot trust what it read.
    #[error("reading the object failed")]
    Source(#[source] io::Error),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const CHUNK: usize = 256 * 1024;
/// The parse buffer of an object before it has read more than this.
const FIRST_BUFFER: usize = 16 * 1024;
/// No real CTR comes near this; a "record" that grows past it is a broken one swallowing the rest.
const MAX_RECORD: usize = 4 * 1024 * 1024;

/// Reads every record of one CTR object: `convert` reduces each record as it is parsed, and
/// `out` receives the reductions of the records whose bytes are verified, in order. A corrupt
/// gzip member or a malformed record is counted and skipped; only a failure of the source itself
/// is an error.
///
/// Design §4, "only verified bytes are used": inflate cannot know a gzip member decoded cleanly
/// until the member's trailer (CRC-32 and length) has been checked, and a flipped bit often
/// inflates into one wrong character of a record that still parses. So what a member decoded is
/// held, already reduced by `convert` (never the raw bytes), until the member ends with a
/// matching trailer; a member that fails or ends early contributes nothing (no record, no
/// malformed line of its own: `out` is cut back to what was verified) and the object counts once
/// as malformed. Plain objects carry no checksum of their own: their records count as they
/// parse (the caller drops the whole read if the source fails underneath).
pub fn read_object<R: Read, T>(
    reader: R,
    mut convert: impl FnMut(&CtrRecord<'_>) -> T,
    out: &mut Vec<T>,
) -> Result<ReadStats, ReadError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf().map_err(ReadError::Source)?;
    if head.starts_with(&GZIP_MAGIC) {
        read_records(
            Members::new(buffered),
            |m| m.verified,
            true,
            &mut convert,
            out,
        )
    } else {
        read_records(buffered, |_| u64::MAX, false, &mut convert, out)
    }
}

/// A gzip stream read member by member, each with its own trailer check: `verified` is the
/// number of decoded bytes up to the end of the last member whose CRC-32 and length matched.
/// flate2's single-member decoder answers `Ok(0)` only once the trailer has matched (and an
/// error when it does not), which is what moves `verified`.
struct Members<R: BufRead> {
    state: MemberState<R>,
    decoded: u64,
    verified: u64,
}

enum MemberState<R: BufRead> {
    Member(Box<flate2::bufread::GzDecoder<R>>),
    Between(R),
    Done,
}

impl<R: BufRead> Members<R> {
    fn new(reader: R) -> Self {
        Members {
            state: MemberState::Between(reader),
            decoded: 0,
            verified: 0,
        }
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, MemberState::Done) {
                MemberState::Member(mut member) => match member.read(buf) {
                    Ok(0) => {
                        self.verified = self.decoded;
                        self.state = MemberState::Between(member.into_inner());
                    }
                    Ok(n) => {
                        self.decoded += n as u64;
                        self.state = MemberState::Member(member);
                        return Ok(n);
                    }
                    Err(e) => {
                        self.state = MemberState::Member(member);
                        return Err(e);
                    }
                },
                MemberState::Between(mut reader) => {
                    if reader.fill_buf()?.is_empty() {
                        return Ok(0);
                    }
                    // Whatever follows a member must be another one: the decoder's header
                    // check rejects anything else as corrupt.
                    self.state =
                        MemberState::Member(Box::new(flate2::bufread::GzDecoder::new(reader)));
                }
                MemberState::Done => return Ok(0),
            }
        }
    }
}

/// An I/O error that means "these bytes are not a valid stream" rather than "the source failed".
fn is_corruption(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Unknown,
    Lines,
    Concatenated,
}

/// What the parser found, and where in the decoded stream it ends.
enum Found<'r, 'a> {
    Record(&'r CtrRecord<'a>),
    Malformed,
}

struct Parser {
    framing: Framing,
    /// Set after a malformed span in concatenated JSON: skip candidates until a whole record with
    /// a `ContactId` parses, so the tail of a broken record is not counted again.
    resync: bool,
    /// The decoded-stream offset of the first byte of the slice being parsed.
    offset: u64,
}

/// What was parsed and not yet vouched for: records are pushed to `out` as they parse (no
/// second move), each with the decoded-stream offset where it ends (`ends`, only while a
/// checksum is pending); malformed spans likewise. `release` counts what a verified offset
/// covers; `discard` cuts `out` back to it.
struct Held<'o, T> {
    out: &'o mut Vec<T>,
    /// `out`'s length before this object.
    base: usize,
    /// Whether anything waits for a checksum (gzip); plain objects count at once.
    checked: bool,
    ends: Vec<u64>,
    /// Records of this object counted so far.
    committed: usize,
    malformed_ends: std::collections::VecDeque<(u64, u64)>,
}

impl<T> Held<'_, T> {
    fn push(&mut self, at: u64, item: Option<T>, stats: &mut ReadStats) {
        match (item, self.checked) {
            (Some(item), true) => {
                self.out.push(item);
                self.ends.push(at);
            }
            (Some(item), false) => {
                self.out.push(item);
                self.committed += 1;
                stats.records += 1;
            }
            // Consecutive malformed spans are kept as one entry (the last end, the count), so
            // a member of non-CTR lines holds a few bytes, not one entry per line.
            // Pending malformed spans are kept as one entry (the last end, the count), so a
            // member of non-CTR lines holds a few bytes, not one entry per line.
            (None, true) => match self.malformed_ends.back_mut() {
                Some((end, n)) => {
                    *end = at;
                    *n += 1;
                }
                None => self.malformed_ends.push_back((at, 1)),
            },
            (None, false) => stats.malformed += 1,
        }
    }

    /// Counts everything that ends at or before `verified`.
    fn release(&mut self, verified: u64, stats: &mut ReadStats) {
        while self
            .ends
            .get(self.committed)
            .is_some_and(|end| *end <= verified)
        {
            self.committed += 1;
            stats.records += 1;
        }
        while let Some(&(end, n)) = self.malformed_ends.front() {
            if end > verified {
                break;
            }
            self.malformed_ends.pop_front();
            stats.malformed += n;
        }
    }

    /// Drops everything not counted: `out` holds only verified records again.
    fn discard(&mut self) {
        self.out.truncate(self.base + self.committed);
        self.ends.truncate(self.committed);
        self.malformed_ends.clear();
    }

    fn pending(&self) -> bool {
        self.out.len() > self.base + self.committed || !self.malformed_ends.is_empty()
    }
}

fn read_records<R: Read, T>(
    mut reader: R,
    verified: impl Fn(&R) -> u64,
    checked: bool,
    convert: &mut impl FnMut(&CtrRecord<'_>) -> T,
    out: &mut Vec<T>,
) -> Result<ReadStats, ReadError> {
    let mut parser = Parser {
        framing: Framing::Unknown,
        resync: false,
        offset: 0,
    };
    let mut stats = ReadStats::default();
    let base = out.len();
    let mut held = Held {
        out,
        base,
        checked,
        ends: Vec::new(),
        committed: 0,
        malformed_ends: std::collections::VecDeque::new(),
    };
    let mut hold =
        |held: &mut Held<'_, T>, stats: &mut ReadStats, at: u64, found: Found<'_, '_>| {
            let item = match found {
                Found::Record(r) => Some(convert(r)),
                Found::Malformed => None,
            };
            held.push(at, item, stats);
        };
    // `buf[start..end]` holds bytes read but not yet parsed. The buffer starts small (most
    // objects of a quiet hour are a few KiB) and doubles while it is full up to `CHUNK * 2`; from
    // then on the tail moves to the front when it is full, and it grows only for a record larger
    // than it.
    let mut buf: Vec<u8> = vec![0; FIRST_BUFFER];
    let (mut start, mut end) = (0, 0);
    let mut eof = false;
    while !eof {
        if end == buf.len() {
            if start > 0 && buf.len() >= CHUNK * 2 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else {
                buf.resize(buf.len() * 2, 0);
            }
        }
        match reader.read(&mut buf[end..]) {
            Ok(0) => eof = true,
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_corruption(&e) => {
                // A member failed its check or ended early: nothing it decoded is used, and the
                // object counts once. What earlier members vouched for stays.
                let _ = parser.parse(&buf[start..end], false, &mut |at, f| {
                    hold(&mut held, &mut stats, at, f)
                });
                held.release(verified(&reader), &mut stats);
                held.discard();
                stats.malformed += 1;
                return Ok(stats);
            }
            Err(e) => return Err(ReadError::Source(e)),
        }
        let consumed = parser.parse(&buf[start..end], eof, &mut |at, f| {
            hold(&mut held, &mut stats, at, f)
        });
        start += consumed;
        parser.offset += consumed as u64;
        if checked {
            held.release(verified(&reader), &mut stats);
        }
    }
    held.release(verified(&reader), &mut stats);
    if held.pending() {
        // The stream ended without vouching for its last bytes (cannot happen for a stream that
        // ends cleanly; kept so that nothing unverified is ever used).
        held.discard();
        stats.malformed += 1;
    }
    Ok(stats)
}

impl Parser {
    /// Parses the complete records at the front of `buf`; returns how many bytes were consumed.
    /// With `eof`, whatever is left is final and a trailing fragment is malformed.
    fn parse(&mut self, buf: &[u8], eof: bool, sink: &mut impl FnMut(u64, Found<'_, '_>)) -> usize {
        let base = self.offset;
        let at = move |pos: usize| base + pos as u64;
        let mut pos = 0;
        loop {
            while pos < buf.len() && buf[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos >= buf.len() {
                return pos;
            }
            if self.framing == Framing::Lines {
                let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
                    if eof || buf.len() - pos >= MAX_RECORD {
                        line(&buf[pos..], at(buf.len()), sink);
                        return buf.len();
                    }
                    return pos;
                };
                line(&buf[pos..pos + nl], at(pos + nl), sink);
                pos += nl + 1;
                continue;
            }
            if buf[pos] != b'{' {
                match next_brace(buf, pos + 1) {
                    Some(p) => {
                        self.malformed_span(at(p), sink);
                        pos = p;
                        continue;
                    }
                    None if eof => {
                        self.malformed_span(at(buf.len()), sink);
                        return buf.len();
                    }
                    None => return pos,
                }
            }
            let mut stream =
                serde_json::Deserializer::from_slice(&buf[pos..]).into_iter::<CtrRecord<'_>>();
            match stream.next() {
                Some(Ok(record)) => {
                    let end = pos + stream.byte_offset();
                    if self.framing == Framing::Unknown {
                        self.framing = detect_framing(buf, end);
                    }
                    let has_id = record.contact_id.is_some();
                    if has_id {
                        self.resync = false;
                        sink(at(end), Found::Record(&record));
                        pos = end;
                    } else if self.resync {
                        // A nested object of a broken record, not a record: look further.
                        pos += 1;
                    } else {
                        sink(at(end), Found::Malformed);
                        pos = end;
                    }
                }
                // An incomplete record: wait for more bytes, up to a bound on a record's size.
                Some(Err(e)) if e.is_eof() && !eof && buf.len() - pos < MAX_RECORD => return pos,
                Some(Err(_)) | None => {
                    let next = next_brace(buf, pos + 1);
                    self.malformed_span(at(next.unwrap_or(buf.len())), sink);
                    match next {
                        Some(p) => pos = p,
                        None if eof => return buf.len(),
                        // Keep the tail: the next chunk may hold the start of the next record.
                        None => return pos + 1,
                    }
                }
            }
        }
    }

    fn malformed_span(&mut self, at: u64, sink: &mut impl FnMut(u64, Found<'_, '_>)) {
        if !self.resync {
            sink(at, Found::Malformed);
            self.resync = true;
        }
    }
}

fn line(line: &[u8], at: u64, sink: &mut impl FnMut(u64, Found<'_, '_>)) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    match serde_json::from_slice::<CtrRecord<'_>>(line) {
        Ok(record) if record.contact_id.is_some() => sink(at, Found::Record(&record)),
        _ => sink(at, Found::Malformed),
    }
}

fn next_brace(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == b'{')
        .map(|p| from + p)
}

/// After the first record: NDJSON when a newline follows it before the next record starts.
fn detect_framing(buf: &[u8], end: usize) -> Framing {
    for &b in &buf[end..] {
        match b {
            b'\n' => return Framing::Lines,
            b' ' | b'\t' | b'\r' => continue,
            _ => return Framing::Concatenated,
        }
    }
    // Nothing follows yet: undecided; the next record decides.
    Framing::Unknown
}

#[cfg(test)]
mod tests;
