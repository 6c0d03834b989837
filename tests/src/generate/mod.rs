//! A seeded generator of a realistic contact-centre day: the CTR objects Firehose writes
//! (design §3), the recordings in S3, what Verint holds and what `DescribeContact` answers,
//! plus the ground truth the end-to-end tests assert against. Also the benchmark corpus.
//!
//! Written from the contract (`docs/design.md`: the CTRs of §3, the rules of §4, Verint's
//! interface of §6), not from the production code: the generator is an independent reading of
//! the contract, so that where the library and the generator disagree, one of them misread it.
//!
//! A module for each thing generated: the contact model, a day put together ([`day`]), CTR
//! records and objects, recordings' audio ([`wav`]), `DescribeContact`'s answers, the upload to
//! S3 and the simulator ([`upload`], [`seed_simulator`]), and the benchmark corpus
//! ([`bench_corpus`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Timelike as _, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::{StreamExt as _, TryStreamExt as _};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

mod assemble;
mod audio;
mod bench;
mod connect;
mod ctr;
mod model;
#[cfg(test)]
mod tests;
mod upload;

pub use assemble::day;
pub use audio::wav;
pub use bench::{BenchCorpus, bench_corpus, bench_corpus_on};
pub use ctr::s3_recordings;
pub use upload::{seed_simulator, summary, upload};

use connect::*;
use ctr::*;
use model::*;

use crate::sim::{ConnectAgent, ConnectContact, ConnectEndpoint, ConnectQueue, VerintContact};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DaySpec {
    pub seed: u64,
    /// The UTC day the contacts start in (CTRs of late calls arrive the next day).
    pub date: NaiveDate,
    /// Contacts of every channel and both instances (a transfer counts two).
    pub calls: usize,
    pub instance_id: String,
    /// Another instance writing to the same bucket; its contacts are never eligible.
    pub other_instance_id: String,
    pub region: String,
    pub account: String,
    pub ctr_bucket: String,
    /// Precedes `YYYY/MM/DD/HH/`, e.g. `connect/ctr/`.
    pub ctr_prefix: String,
    pub recordings_bucket: String,
    /// Size of each WAV file, header included.
    pub recording_bytes: Range<u64>,
    /// Share of eligible calls Verint lacks (some kinds are always missing, see [`Truth::kind`]).
    pub verint_miss_rate: f64,
}

impl DaySpec {
    /// A 400-contact day with the local stack's names.
    pub fn new(seed: u64, date: NaiveDate, instance_id: &str) -> Self {
        DaySpec {
            seed,
            date,
            calls: 400,
            instance_id: instance_id.to_owned(),
            other_instance_id: "0b9c3d1e-7777-4aaa-9bbb-0123456789ab".to_owned(),
            region: "us-east-1".to_owned(),
            account: "123456789012".to_owned(),
            ctr_bucket: "ctr-bucket".to_owned(),
            ctr_prefix: "connect/ctr/".to_owned(),
            recordings_bucket: "connect-recordings".to_owned(),
            recording_bytes: 4096..65536,
            verint_miss_rate: 0.08,
        }
    }

    pub fn instance_arn(&self, instance_id: &str) -> String {
        format!(
            "arn:aws:connect:{}:{}:instance/{}",
            self.region, self.account, instance_id
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Day {
    pub ctr_objects: Vec<Object>,
    /// One object per recording whose status is not `DELETED`.
    pub recordings: Vec<Object>,
    pub verint: Vec<VerintContact>,
    pub connect: Vec<ConnectContact>,
    pub truth: Vec<Truth>,
    /// Malformed inputs planted, as design §4 counts them in `ctr.malformed`: one per bad
    /// NDJSON line (truncated, non-JSON, or a record without `ContactId`) and one per
    /// unreadable (corrupt gzip) object.
    pub malformed_records: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// The ground truth of one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub contact_id: String,
    pub channel: String,
    /// Of `instance_id` (not `other_instance_id`).
    pub ours: bool,
    pub initiation: DateTime<Utc>,
    pub disconnect: Option<DateTime<Utc>>,
    /// The arrival hour (object key hour) of each copy, in copy order.
    pub arrival_hours: Vec<DateTime<Utc>>,
    /// The S3 recordings of the latest copy, in design §4 order: (bucket, key, status).
    pub s3_recordings: Vec<(String, String, String)>,
    pub in_verint: bool,
    /// The scenario: `voice`, `outbound`, `callback`, `abandoned`, `chat`, `task`,
    /// `other_instance`, `transfer_first`, `transfer_second`, `deleted`, `partly_deleted`,
    /// `ivr_agent`, `long`, `legacy_only`, `array_only`, `with_video`.
    pub kind: String,
}

impl Truth {
    /// design §4: voice, ended, ours, with at least one S3 recording.
    pub fn eligible(&self) -> bool {
        self.ours
            && self.channel == "VOICE"
            && self.disconnect.is_some()
            && !self.s3_recordings.is_empty()
    }

    /// Every S3 recording is `DELETED`.
    pub fn all_deleted(&self) -> bool {
        !self.s3_recordings.is_empty() && self.s3_recordings.iter().all(|r| r.2 == "DELETED")
    }

    /// Eligible, not in Verint, with something to ingest: what a run must queue (once settled).
    pub fn missing(&self) -> bool {
        self.eligible() && !self.in_verint && !self.all_deleted()
    }

    /// The `(bucket, key)` a worker streams, in order.
    pub fn recordings_to_ingest(&self) -> Vec<(String, String)> {
        self.s3_recordings
            .iter()
            .filter(|r| r.2 != "DELETED")
            .map(|r| (r.0.clone(), r.1.clone()))
            .collect()
    }
}
