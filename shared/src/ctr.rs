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
pub(crate) struct CtrRecord<'a> {
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
pub(crate) struct LegacyRecording<'a> {
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
}

/// One entry of `Recordings[]`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RecordingEntry<'a> {
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
pub(crate) struct ReadStats {
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
pub(crate) enum ReadError {
    /// The source failed underneath (network, permissions): the run cannot trust what it read.
    #[error("reading the object failed")]
    Source(#[source] io::Error),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const CHUNK: usize = 256 * 1024;
/// No real CTR comes near this; a "record" that grows past it is a broken one swallowing the rest.
const MAX_RECORD: usize = 4 * 1024 * 1024;

/// Reads every record of one CTR object and hands each to `sink`. A corrupt gzip stream or a
/// malformed record is counted and skipped; only a failure of the source itself is an error.
pub(crate) fn read_object<R: Read>(
    reader: R,
    mut sink: impl FnMut(&CtrRecord<'_>),
) -> Result<ReadStats, ReadError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let head = buffered.fill_buf().map_err(ReadError::Source)?;
    if head.starts_with(&GZIP_MAGIC) {
        read_records(flate2::bufread::MultiGzDecoder::new(buffered), &mut sink)
    } else {
        read_records(buffered, &mut sink)
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

struct Parser {
    framing: Framing,
    /// Set after a malformed span in concatenated JSON: skip candidates until a whole record with
    /// a `ContactId` parses, so the tail of a broken record is not counted again.
    resync: bool,
    stats: ReadStats,
}

fn read_records<R: Read>(
    mut reader: R,
    sink: &mut impl FnMut(&CtrRecord<'_>),
) -> Result<ReadStats, ReadError> {
    let mut parser = Parser {
        framing: Framing::Unknown,
        resync: false,
        stats: ReadStats::default(),
    };
    // `buf[start..end]` holds bytes read but not yet parsed. The tail moves to the front only when
    // the buffer is full, and the buffer grows only for a record larger than it.
    let mut buf: Vec<u8> = vec![0; CHUNK * 2];
    let (mut start, mut end) = (0, 0);
    let mut eof = false;
    while !eof {
        if end == buf.len() {
            if start > 0 {
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
                // A corrupt or truncated gzip stream: keep what decoded cleanly, count the rest.
                // The corruption counts once, with a broken last record if there is one.
                let before = parser.stats.malformed;
                parser.parse(&buf[start..end], true, sink);
                if parser.stats.malformed == before {
                    parser.stats.malformed += 1;
                }
                return Ok(parser.stats);
            }
            Err(e) => return Err(ReadError::Source(e)),
        }
        start += parser.parse(&buf[start..end], eof, sink);
    }
    Ok(parser.stats)
}

impl Parser {
    /// Parses the complete records at the front of `buf`; returns how many bytes were consumed.
    /// With `eof`, whatever is left is final and a trailing fragment is malformed.
    fn parse(&mut self, buf: &[u8], eof: bool, sink: &mut impl FnMut(&CtrRecord<'_>)) -> usize {
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
                        self.line(&buf[pos..], sink);
                        return buf.len();
                    }
                    return pos;
                };
                self.line(&buf[pos..pos + nl], sink);
                pos += nl + 1;
                continue;
            }
            if buf[pos] != b'{' {
                match next_brace(buf, pos + 1) {
                    Some(p) => {
                        self.malformed_span();
                        pos = p;
                        continue;
                    }
                    None if eof => {
                        self.malformed_span();
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
                        self.stats.records += 1;
                        sink(&record);
                        pos = end;
                    } else if self.resync {
                        // A nested object of a broken record, not a record: look further.
                        pos += 1;
                    } else {
                        self.stats.malformed += 1;
                        pos = end;
                    }
                }
                // An incomplete record: wait for more bytes, up to a bound on a record's size.
                Some(Err(e)) if e.is_eof() && !eof && buf.len() - pos < MAX_RECORD => return pos,
                Some(Err(_)) | None => {
                    self.malformed_span();
                    match next_brace(buf, pos + 1) {
                        Some(p) => pos = p,
                        None if eof => return buf.len(),
                        // Keep the tail: the next chunk may hold the start of the next record.
                        None => return pos + 1,
                    }
                }
            }
        }
    }

    fn line(&mut self, line: &[u8], sink: &mut impl FnMut(&CtrRecord<'_>)) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        match serde_json::from_slice::<CtrRecord<'_>>(line) {
            Ok(record) if record.contact_id.is_some() => {
                self.stats.records += 1;
                sink(&record);
            }
            _ => self.stats.malformed += 1,
        }
    }

    fn malformed_span(&mut self) {
        if !self.resync {
            self.stats.malformed += 1;
            self.resync = true;
        }
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
        let stats = read_object(bytes, |r| {
            ids.push(r.contact_id.as_deref().unwrap_or("").to_owned())
        })
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
