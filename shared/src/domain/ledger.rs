//! The ledger of a run (design §9): `{STATE_PREFIX}runs/{run_id}/ledger.csv.gz`, one row per
//! eligible contact with its class, plus one per orphan recording. It is what `recoveryctl
//! coverage` reads to show, for any day, where every recorded call is.
//!
//! The ledger is gzip-compressed as it is written and uploaded in parts (S3 multipart), so a day
//! of a million contacts never needs its whole CSV in memory.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::domain::time::{format_ts, parse_ts};

/// S3's smallest part (but the last) is 5 MiB; parts are cut at this much compressed data.
pub(crate) const PART_BYTES: usize = 8 * 1024 * 1024;

/// The CSV header, exactly as the contract gives it (design §11 added `initial_contact_id`).
pub(crate) const HEADER: &str =
    "contact_id,initiation_timestamp,disconnect_timestamp,class,reason,initial_contact_id";

/// The header of ledgers written before design §11, still read.
const HEADER_V1: &str = "contact_id,initiation_timestamp,disconnect_timestamp,class,reason";

/// The class of a ledger row: the four classes of an eligible contact, or an orphan recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerClass {
    InVerint,
    Unrecoverable,
    NotSettled,
    Missing,
    Orphan,
}

impl LedgerClass {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerClass::InVerint => "in_verint",
            LedgerClass::Unrecoverable => "unrecoverable",
            LedgerClass::NotSettled => "not_settled",
            LedgerClass::Missing => "missing",
            LedgerClass::Orphan => "orphan",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_verint" => LedgerClass::InVerint,
            "unrecoverable" => LedgerClass::Unrecoverable,
            "not_settled" => LedgerClass::NotSettled,
            "missing" => LedgerClass::Missing,
            "orphan" => LedgerClass::Orphan,
            _ => return None,
        })
    }
}

/// One row of a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub contact_id: String,
    /// Absent only for an orphan whose contact Connect could not describe.
    pub initiation: Option<DateTime<Utc>>,
    pub disconnect: Option<DateTime<Utc>>,
    pub class: LedgerClass,
    /// Empty except for `unrecoverable` rows.
    pub reason: String,
    /// The first leg of the contact's transfer chain (design §11); empty for a first leg and
    /// for orphans.
    pub initial_contact_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger line {line}: {problem}")]
    Malformed { line: u64, problem: String },
    #[error("reading the ledger failed")]
    Io(#[from] std::io::Error),
    #[error("state bucket request failed: {what}")]
    S3 {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Appends one CSV line for `row`. Fields holding a comma, a quote or a line break are quoted
/// (RFC 4180); ids and timestamps never need it, a reason may.
pub(crate) fn encode_row(out: &mut String, row: &LedgerRow) {
    let ts = |t: Option<DateTime<Utc>>| t.map(format_ts).unwrap_or_default();
    out.push_str(&csv_field(&row.contact_id));
    let _ = write!(
        out,
        ",{},{},{},",
        ts(row.initiation),
        ts(row.disconnect),
        row.class.as_str()
    );
    out.push_str(&csv_field(&row.reason));
    out.push(',');
    out.push_str(&csv_field(&row.initial_contact_id));
    out.push('\n');
}

/// One CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Splits one CSV line into its fields (RFC 4180 quoting, no line breaks inside a field).
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::with_capacity(5);
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Some(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Parses one data line of a ledger (not the header).
pub(crate) fn parse_row(line: &str, number: u64) -> Result<LedgerRow, LedgerError> {
    let bad = |problem: String| LedgerError::Malformed {
        line: number,
        problem,
    };
    let mut fields = csv_fields(line).ok_or_else(|| bad("unbalanced quotes".into()))?;
    // A ledger written before design §11 has five fields: no chain is known.
    if fields.len() == 5 {
        fields.push(String::new());
    }
    let [id, initiation, disconnect, class, reason, initial]: [String; 6] = fields
        .try_into()
        .map_err(|f: Vec<String>| bad(format!("{} fields, expected 6", f.len())))?;
    let ts = |s: &str, name: &str| -> Result<Option<DateTime<Utc>>, LedgerError> {
        if s.is_empty() {
            return Ok(None);
        }
        parse_ts(s)
            .map(Some)
            .ok_or_else(|| bad(format!("{name} {s:?} is not a timestamp")))
    };
    Ok(LedgerRow {
        initiation: ts(&initiation, "initiation_timestamp")?,
        disconnect: ts(&disconnect, "disconnect_timestamp")?,
        class: LedgerClass::parse(&class).ok_or_else(|| bad(format!("unknown class {class:?}")))?,
        contact_id: id,
        reason,
        initial_contact_id: initial,
    })
}

/// Reads a whole ledger (gzip CSV) from a reader, row by row; the header is checked.
pub(crate) fn read_rows<R: std::io::Read>(
    gz: R,
) -> impl Iterator<Item = Result<LedgerRow, LedgerError>> {
    let reader =
        std::io::BufReader::with_capacity(256 * 1024, flate2::read::MultiGzDecoder::new(gz));
    let mut lines = reader.lines();
    let mut number = 0u64;
    std::iter::from_fn(move || {
        loop {
            let line = match lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e.into())),
            };
            number += 1;
            if number == 1 {
                if line != HEADER && line != HEADER_V1 {
                    return Some(Err(LedgerError::Malformed {
                        line: 1,
                        problem: format!("header {line:?}, expected {HEADER:?}"),
                    }));
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            return Some(parse_row(&line, number));
        }
    })
}

/// Compresses ledger rows and cuts the compressed stream into parts of about 8 MiB.
#[derive(Debug)]
pub(crate) struct LedgerEncoder {
    gz: GzEncoder<Vec<u8>>,
    line: String,
    rows: u64,
    part_bytes: usize,
}

impl Default for LedgerEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LedgerEncoder {
    pub fn new() -> Self {
        Self::with_part_bytes(PART_BYTES)
    }

    /// An encoder that cuts parts at `part_bytes` of compressed data.
    pub(crate) fn with_part_bytes(part_bytes: usize) -> Self {
        let mut gz = GzEncoder::new(
            Vec::with_capacity(part_bytes + 64 * 1024),
            Compression::default(),
        );
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(HEADER.as_bytes());
        let _ = gz.write_all(b"\n");
        LedgerEncoder {
            gz,
            line: String::with_capacity(256),
            rows: 0,
            part_bytes,
        }
    }

    /// Adds a row; returns a part of compressed bytes when one is full.
    pub fn push(&mut self, row: &LedgerRow) -> Option<Vec<u8>> {
        self.line.clear();
        encode_row(&mut self.line, row);
        let _ = self.gz.write_all(self.line.as_bytes());
        self.rows += 1;
        (self.gz.get_ref().len() >= self.part_bytes).then(|| std::mem::take(self.gz.get_mut()))
    }

    /// The rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Ends the gzip stream; returns the last part (never empty: it holds at least the trailer).
    pub fn finish(&mut self) -> Vec<u8> {
        // Writing into a Vec cannot fail.
        let _ = self.gz.try_finish();
        std::mem::take(self.gz.get_mut())
    }
}

/// Reads every row of a ledger held in memory (as `fetch` returns it).
pub fn rows_of(gz: &[u8]) -> impl Iterator<Item = Result<LedgerRow, LedgerError>> + '_ {
    read_rows(gz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, class: LedgerClass, reason: &str) -> LedgerRow {
        LedgerRow {
            contact_id: id.into(),
            initiation: parse_ts("2026-11-30T10:00:00Z"),
            disconnect: parse_ts("2026-11-30T10:05:00Z"),
            class,
            reason: reason.into(),
            initial_contact_id: String::new(),
        }
    }

    #[test]
    fn a_ledger_reads_back_row_for_row_with_the_contract_header() {
        let rows = vec![
            row("a", LedgerClass::InVerint, ""),
            row(
                "b",
                LedgerClass::Unrecoverable,
                "every S3 recording has Status DELETED, \"2\"",
            ),
            LedgerRow {
                initiation: None,
                disconnect: None,
                ..row("c", LedgerClass::Orphan, "")
            },
        ];
        let mut enc = LedgerEncoder::new();
        let mut gz = Vec::new();
        for r in &rows {
            if let Some(part) = enc.push(r) {
                gz.extend(part);
            }
        }
        gz.extend(enc.finish());
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
            .expect("gzip");
        assert!(text.starts_with(&format!("{HEADER}\n")));
        assert!(text.contains(
            "b,2026-11-30T10:00:00Z,2026-11-30T10:05:00Z,unrecoverable,\"every S3 recording has Status DELETED, \"\"2\"\"\",\n"
        ));
        assert!(text.contains("c,,,orphan,,\n"));
        let back: Vec<LedgerRow> = rows_of(&gz).collect::<Result<_, _>>().expect("parses");
        assert_eq!(back, rows);
    }

    #[test]
    fn a_leg_names_its_chain_and_a_ledger_of_five_columns_still_reads() {
        let leg = LedgerRow {
            initial_contact_id: "0b7c2c4e-9a51-4d0e-8f3a-6a1d2b3c4d5e".into(),
            ..row("a", LedgerClass::Missing, "")
        };
        let mut line = String::new();
        encode_row(&mut line, &leg);
        assert_eq!(
            line,
            "a,2026-11-30T10:00:00Z,2026-11-30T10:05:00Z,missing,,0b7c2c4e-9a51-4d0e-8f3a-6a1d2b3c4d5e\n"
        );
        // Written before design §11: the old header and five fields.
        let old = "contact_id,initiation_timestamp,disconnect_timestamp,class,reason\n\
                   b,2026-11-30T10:00:00Z,2026-11-30T10:05:00Z,in_verint,\n";
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(old.as_bytes()).expect("written");
        let gz = gz.finish().expect("gzip");
        let rows: Vec<LedgerRow> = rows_of(&gz).collect::<Result<_, _>>().expect("parses");
        assert_eq!(rows, [row("b", LedgerClass::InVerint, "")]);
    }

    #[test]
    fn a_large_ledger_is_cut_into_parts_that_concatenate_to_one_stream() {
        let mut enc = LedgerEncoder::with_part_bytes(64 * 1024);
        let mut gz = Vec::new();
        let mut parts = 0;
        let n = 50_000u64;
        for i in 0..n {
            // Random-looking ids compress like real UUIDs do.
            let id = format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i);
            if let Some(part) = enc.push(&row(&id, LedgerClass::InVerint, "")) {
                parts += 1;
                gz.extend(part);
            }
        }
        gz.extend(enc.finish());
        assert!(parts >= 2, "{} compressed bytes in {parts} parts", gz.len());
        assert_eq!(rows_of(&gz).count() as u64, n);
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let mut enc = LedgerEncoder::new();
        let _ = enc.push(&row("a", LedgerClass::Missing, ""));
        let mut gz = enc.finish();
        let mut extra = GzEncoder::new(Vec::new(), Compression::default());
        extra.write_all(b"b,yesterday,,missing,\n").expect("vec");
        gz.extend(extra.finish().expect("vec"));
        let results: Vec<_> = rows_of(&gz).collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().expect_err("bad timestamp");
        assert_eq!(
            err.to_string(),
            "ledger line 3: initiation_timestamp \"yesterday\" is not a timestamp"
        );
    }

    #[test]
    fn a_wrong_header_is_refused() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"id,class\n").expect("vec");
        let gz = gz.finish().expect("vec");
        let first = rows_of(&gz).next().expect("one item");
        assert!(matches!(first, Err(LedgerError::Malformed { line: 1, .. })));
    }
}
