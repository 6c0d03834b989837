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
}

impl CtrRecord<'_> {
    /// The contact's S3 recordings in the order of design §4: the `Recordings[]` entries with
    /// `StorageType` S3, a `Location` and `MediaStreamType` AUDIO or absent; then the legacy
    /// `Recording` when its `Location` is not already among them. Yields `(location, deleted)`.
    pub fn s3_recordings(&self) -> Vec<(&str, bool)> {
        let mut out: Vec<(&str, bool)> = Vec::new();
        for r in self.recordings.iter().flatten() {
            let s3 = r.storage_type.as_deref() == Some("S3");
            let audio = matches!(r.media_stream_type.as_deref(), None | Some("AUDIO"));
            if let (true, true, Some(location)) = (s3, audio, r.location.as_deref()) {
                out.push((location, is_deleted(r.status.as_deref())));
            }
        }
        if let Some(legacy) = &self.recording
            && let Some(location) = legacy.location.as_deref()
            && !out.iter().any(|(l, _)| *l == location)
        {
            out.push((location, is_deleted(legacy.status.as_deref())));
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
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_location_splits_at_the_first_slash_and_keeps_colons() {
        let l = S3Location::parse(
            "rec/connect/acme/CallRecordings/2024/05/14/id_20240514T14:03_UTC.wav",
        )
        .expect("valid");
        assert_eq!(l.bucket, "rec");
        assert_eq!(
            l.key,
            "connect/acme/CallRecordings/2024/05/14/id_20240514T14:03_UTC.wav"
        );
        assert!(S3Location::parse("no-key").is_none());
    }

    fn record(id: &str, last_update: &str) -> String {
        format!(
            r#"{{"AWSAccountId":"123456789012","Agent":null,"Channel":"VOICE","ContactId":"{id}","InitiationTimestamp":"2024-05-14T14:00:00Z","DisconnectTimestamp":"2024-05-14T14:05:00Z","LastUpdateTimestamp":"{last_update}","InstanceARN":"arn:aws:connect:eu-west-2:1:instance/i","Attributes":{{"a":"{{not json}}"}},"SomethingNew":{{"x":[1,2,{{"y":null}}]}},"Recording":{{"Location":"rec/connect/x/CallRecordings/2024/05/14/{id}_20240514T14:03_UTC.wav","Status":"AVAILABLE","Type":"AUDIO"}},"Recordings":[{{"Location":"rec/connect/x/CallRecordings/2024/05/14/{id}_20240514T14:03_UTC.wav","MediaStreamType":"AUDIO","ParticipantType":"CUSTOMER","StorageType":"S3","Status":"AVAILABLE"}}]}}"#
        )
    }

    fn ids(bytes: &[u8]) -> (Vec<String>, ReadStats) {
        let mut ids = Vec::new();
        let stats = read_object(
            bytes,
            |r| r.contact_id.as_deref().unwrap_or("").to_owned(),
            &mut ids,
        )
        .expect("no source error");
        (ids, stats)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).expect("in memory");
        enc.finish().expect("in memory")
    }

    #[test]
    fn concatenated_json_without_a_delimiter_is_read() {
        let body = format!(
            "{}{}{}",
            record("a", "t"),
            record("b", "t"),
            record("c", "t")
        );
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 3,
                malformed: 0
            }
        );
    }

    #[test]
    fn ndjson_is_read() {
        let body = format!(
            "{}\n{}\r\n{}\n",
            record("a", "t"),
            record("b", "t"),
            record("c", "t")
        );
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes_in_either_framing() {
        let concatenated = format!("{}{}", record("a", "t"), record("b", "t"));
        let ndjson = format!("{}\n{}\n", record("a", "t"), record("b", "t"));
        for body in [concatenated, ndjson] {
            let (ids, stats) = ids(&gzip(body.as_bytes()));
            assert_eq!(ids, ["a", "b"]);
            assert_eq!(stats.malformed, 0);
        }
    }

    #[test]
    fn records_larger_than_a_read_chunk_and_split_across_chunks_are_read() {
        let big = "x".repeat(CHUNK + 17);
        let body: String = (0..5)
            .map(|i| {
                record(&format!("id{i}"), "t").replacen(
                    "\"Agent\":null",
                    &format!("\"Agent\":\"{big}\""),
                    1,
                )
            })
            .collect();
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["id0", "id1", "id2", "id3", "id4"]);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn a_malformed_ndjson_line_is_counted_and_skipped() {
        let truncated = &record("bad", "t")[..120];
        let body = format!(
            "{}\n{truncated}\nnot json at all\n{{\"Channel\":\"VOICE\"}}\n{}\n",
            record("a", "t"),
            record("b", "t")
        );
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 2,
                malformed: 3
            }
        );
    }

    #[test]
    fn concatenated_json_resumes_at_the_next_whole_record_after_a_truncated_one() {
        let truncated = &record("bad", "t")[..400];
        let body = format!(
            "{}{truncated}{}{}",
            record("a", "t"),
            record("b", "t"),
            record("c", "t")
        );
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 3,
                malformed: 1
            }
        );
    }

    #[test]
    fn a_record_without_contact_id_is_malformed() {
        let body = format!(
            "{}{{\"Channel\":\"VOICE\"}}{}",
            record("a", "t"),
            record("b", "t")
        );
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 2,
                malformed: 1
            }
        );
    }

    #[test]
    fn a_corrupt_gzip_object_is_counted_not_fatal() {
        let mut body = gzip(format!("{}{}", record("a", "t"), record("b", "t")).as_bytes());
        let n = body.len();
        body[20..n - 8].iter_mut().for_each(|b| *b ^= 0x5a);
        let (_, stats) = ids(&body);
        assert_eq!(stats.malformed, 1, "{stats:?}");
        let (ids, stats) = ids(&[0x1f, 0x8b, 0x08, 0x00, 0x01]);
        assert!(ids.is_empty());
        assert_eq!(stats.malformed, 1);
    }

    /// Two records of the same shape whose one differing character a flipped bit could make.
    fn day_of(n: usize) -> (String, Vec<String>) {
        let ids: Vec<String> = (0..n)
            .map(|i| format!("66c7ea48-1d2e-4f60-8a9b-{i:012x}"))
            .collect();
        let body = ids.iter().map(|id| record(id, "t") + "\n").collect();
        (body, ids)
    }

    #[test]
    fn a_gzip_member_with_a_flipped_bit_contributes_no_contact() {
        let (body, good) = day_of(40);
        let clean = gzip(body.as_bytes());
        let mut invented = 0;
        let mut reads = 0;
        // Every bit of the compressed data (header and trailer aside), one at a time.
        for byte in 10..clean.len() - 8 {
            for bit in 0..8 {
                let mut damaged = clean.clone();
                damaged[byte] ^= 1 << bit;
                let (ids, stats) = ids(&damaged);
                reads += 1;
                invented += ids.iter().filter(|id| !good.contains(id)).count();
                assert!(
                    ids.is_empty() || ids == good,
                    "byte {byte} bit {bit}: a damaged member gave {} ids",
                    ids.len()
                );
                if ids.is_empty() {
                    assert_eq!(stats.malformed, 1, "byte {byte} bit {bit}: {stats:?}");
                    assert_eq!(stats.records, 0, "no duplicate count from a damaged member");
                }
            }
        }
        assert_eq!(invented, 0, "over {reads} damaged copies");
    }

    #[test]
    fn a_damaged_crc_or_length_in_the_trailer_makes_the_member_count_for_nothing() {
        let (body, _) = day_of(3);
        for at in 1..=8 {
            let mut damaged = gzip(body.as_bytes());
            let n = damaged.len();
            damaged[n - at] ^= 0x01;
            let (ids, stats) = ids(&damaged);
            assert!(ids.is_empty(), "trailer byte -{at}");
            assert_eq!(
                stats,
                ReadStats {
                    records: 0,
                    malformed: 1
                }
            );
        }
    }

    #[test]
    fn a_gzip_object_cut_short_contributes_no_record() {
        let (body, _) = day_of(200);
        let clean = gzip(body.as_bytes());
        for cut in [
            11,
            clean.len() / 3,
            clean.len() / 2,
            clean.len() - 9,
            clean.len() - 1,
        ] {
            let (ids, stats) = ids(&clean[..cut]);
            assert!(
                ids.is_empty(),
                "cut at {cut} of {}: {} ids",
                clean.len(),
                ids.len()
            );
            assert_eq!(
                stats,
                ReadStats {
                    records: 0,
                    malformed: 1
                },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_members_before_a_damaged_one_still_count() {
        let first = gzip(format!("{}\n{}\n", record("a", "t"), record("b", "t")).as_bytes());
        let mut second = gzip(format!("{}\n", record("c", "t")).as_bytes());
        let n = second.len();
        second[n - 6] ^= 0x10;
        let third = gzip(format!("{}\n", record("d", "t")).as_bytes());
        let object = [first.clone(), second, third.clone()].concat();
        let (ids_read, stats) = ids(&object);
        assert_eq!(ids_read, ["a", "b"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 2,
                malformed: 1
            }
        );
        let whole = [first, third].concat();
        assert_eq!(ids(&whole).0, ["a", "b", "d"], "every good member is read");
    }

    #[test]
    fn a_record_split_across_two_members_counts_once_both_are_verified() {
        let body = format!("{}{}", record("a", "t"), record("b", "t"));
        let cut = body.len() - 100;
        let object = [gzip(&body.as_bytes()[..cut]), gzip(&body.as_bytes()[cut..])].concat();
        let (ids_read, stats) = ids(&object);
        assert_eq!(ids_read, ["a", "b"]);
        assert_eq!(stats.malformed, 0);
        let mut damaged = object.clone();
        let n = damaged.len();
        damaged[n - 5] ^= 0x01;
        let (ids_read, _) = ids(&damaged);
        assert_eq!(ids_read, ["a"], "b's bytes were not all vouched for");
    }

    #[test]
    fn bytes_after_the_last_member_that_are_not_gzip_count_once() {
        let object = [
            gzip(format!("{}\n", record("a", "t")).as_bytes()),
            b"garbage".to_vec(),
        ]
        .concat();
        let (ids_read, stats) = ids(&object);
        assert_eq!(ids_read, ["a"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 1,
                malformed: 1
            }
        );
    }

    #[test]
    fn a_truncated_object_keeps_its_whole_records() {
        let body = format!("{}{}", record("a", "t"), &record("b", "t")[..50]);
        let (ids, stats) = ids(body.as_bytes());
        assert_eq!(ids, ["a"]);
        assert_eq!(
            stats,
            ReadStats {
                records: 1,
                malformed: 1
            }
        );
    }

    #[test]
    fn s3_recordings_follow_the_design_order_and_deduplicate_the_legacy_copy() {
        let json = r#"{"ContactId":"c","Recording":{"Location":"b/legacy-only","Status":"AVAILABLE"},
          "Recordings":[
            {"Location":"b/ivr","StorageType":"S3","Status":"AVAILABLE"},
            {"Location":"b/video","StorageType":"S3","MediaStreamType":"VIDEO","Status":"AVAILABLE"},
            {"Location":"b/kvs","StorageType":"KINESIS_VIDEO_STREAM","MediaStreamType":"AUDIO"},
            {"StorageType":"S3","MediaStreamType":"AUDIO"},
            {"Location":"b/agent","StorageType":"S3","MediaStreamType":"AUDIO","Status":"DELETED"}]}"#;
        let record: CtrRecord<'_> = serde_json::from_str(json).expect("valid");
        assert_eq!(
            record.s3_recordings(),
            [
                ("b/ivr", false),
                ("b/agent", true),
                ("b/legacy-only", false)
            ]
        );
        let json = r#"{"ContactId":"c","Recording":{"Location":"b/one","Status":"AVAILABLE"},
          "Recordings":[{"Location":"b/one","StorageType":"S3","MediaStreamType":"AUDIO","Status":"AVAILABLE"}]}"#;
        let record: CtrRecord<'_> = serde_json::from_str(json).expect("valid");
        assert_eq!(record.s3_recordings(), [("b/one", false)]);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let body = r#"{"ContactId":"a\u0062c","Channel":"VOICE"}"#;
        let (ids, _) = ids(body.as_bytes());
        assert_eq!(ids, ["abc"]);
    }
}
