//! A seeded generator of a realistic contact-centre day: the CTR objects Firehose writes
//! (design §3), the recordings in S3, what Verint holds and what `DescribeContact` answers,
//! plus the ground truth the end-to-end tests assert against. Also the benchmark corpus.
//!
//! Written from the contract (`docs/design.md`: the CTRs of §3, the rules of §4, Verint's
//! interface of §6, recordings' integrity, archives and redaction of §10, transfer chains and
//! several instances of §11), not from the production code: the generator is an independent
//! reading of the contract, so that where the library and the generator disagree, one of them
//! misread it.
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
use rand::seq::{IndexedRandom as _, SliceRandom as _};
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
pub use audio::{SAMPLE_RATE, WAV_HEADER_BYTES, byte_rate, wav, wav_cut_short, wav_of};
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
    /// Contacts of every channel and both instances (each leg of a transfer chain counts, so a
    /// day can hold a few more).
    pub calls: usize,
    pub instance_id: String,
    /// Another instance writing to the same buckets, with contacts of every kind (about 5 %);
    /// eligible only for a deployment that plans for it too (design §11).
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
    /// That many recordings of missed calls ([`Truth::missing`], initiated on `date`, with one
    /// recording to ingest, listed in `Recordings[]`) are truncated (design §10): the CTR's
    /// `StopTimestamp − StartTimestamp` says the recording lasted as long as the call (at least
    /// 60 s), the WAV object holds what `recording_bytes` gives (a few seconds at most). The
    /// first (and every other one) has a header that claims the whole recording while the
    /// object ends early; the others are well-formed short WAVs. When the day misses too few
    /// calls, calls Verint held become missed; fewer when the day has too few calls at all.
    /// Default 0.
    pub truncated: usize,
    /// That many recordings of missed calls (as for `truncated`, other calls) are uploaded with
    /// storage class `GLACIER` (design §10's archived recordings). Default 0.
    pub archived: usize,
    /// The share (0 to 1) of voice calls with a recording not deleted (of either instance)
    /// that also have a Contact Lens redacted recording: `{redacted_prefix}YYYY/MM/DD/
    /// {contactId}_call_recording_redacted_{YYYY-MM-DDThh:mm:ssZ}.wav` in the recordings
    /// bucket, dated by the call's initiation, stamped a few minutes after its disconnect, as
    /// long as its (agent) recording. Default 0 (none).
    pub redacted: f64,
    /// That many missed calls (as for `truncated`, other calls) have no redacted recording
    /// whatever `redacted` draws. Default 0.
    pub redacted_missing: usize,
    /// Where Contact Lens writes redacted audio (design §10 `REDACTED_PREFIX`).
    pub redacted_prefix: String,
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
            truncated: 0,
            archived: 0,
            redacted: 0.0,
            redacted_missing: 0,
            redacted_prefix: "Analysis/Voice/Redacted/".to_owned(),
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
    /// One object per audio recording whose status is not `DELETED`.
    pub recordings: Vec<Object>,
    /// The Contact Lens redacted recordings ([`DaySpec::redacted`]), in the recordings bucket.
    #[serde(default)]
    pub redacted: Vec<Object>,
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
    /// The S3 storage class to upload with (`GLACIER` for archived recordings); `None` is
    /// the bucket's default (`STANDARD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
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
    /// The scenario: `voice`, `outbound`, `callback` (a callback with no earlier contact),
    /// `abandoned`, `chat`, `task`, `deleted`, `partly_deleted`, `ivr_agent`, `long`,
    /// `legacy_only`, `array_only`, `with_video`; or a leg of a transfer chain (design §11):
    /// `transfer_first` → `transfer_second` [→ `transfer_third`] (agent to agent),
    /// `queue_transfer_from` → `queue_transfer` (queue to queue, `QUEUE_TRANSFER`),
    /// `callback_request` → `queued_callback` (`CALLBACK`), `ivr_only` → `ivr_transfer`. The
    /// legs `queue_transfer_from`, `callback_request` and `ivr_only` reached no agent and have
    /// no recording. The other instance's contacts are of the same kinds (see `ours`).
    pub kind: String,
    /// The Connect instance the contact belongs to (`DaySpec::instance_id` or
    /// `other_instance_id`).
    #[serde(default)]
    pub instance_id: String,
    /// The CTR's `InitialContactId`: the chain's first leg, for every later leg; `None` for a
    /// first leg and for a contact outside any chain.
    #[serde(default)]
    pub initial_contact_id: Option<String>,
    /// The CTR's `PreviousContactId`: the leg before this one in its chain.
    #[serde(default)]
    pub previous_contact_id: Option<String>,
    /// One of its recordings is truncated ([`DaySpec::truncated`]).
    #[serde(default)]
    pub truncated: bool,
    /// One of its recordings is stored as `GLACIER` ([`DaySpec::archived`]).
    #[serde(default)]
    pub archived: bool,
    /// The key (in the recordings bucket) of its Contact Lens redacted recording, when one was
    /// written ([`DaySpec::redacted`]).
    #[serde(default)]
    pub redacted_key: Option<String>,
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

    /// [`Truth::eligible`] for a deployment planning for `instance_ids` (design §11).
    pub fn eligible_in(&self, instance_ids: &[&str]) -> bool {
        instance_ids.contains(&self.instance_id.as_str())
            && self.channel == "VOICE"
            && self.disconnect.is_some()
            && !self.s3_recordings.is_empty()
    }

    /// [`Truth::missing`] for a deployment planning for `instance_ids`.
    pub fn missing_in(&self, instance_ids: &[&str]) -> bool {
        self.eligible_in(instance_ids) && !self.in_verint && !self.all_deleted()
    }

    /// The id of the transfer chain the contact is a leg of (design §11): its
    /// `InitialContactId`, or its own id for a first leg.
    pub fn chain_id(&self) -> &str {
        self.initial_contact_id
            .as_deref()
            .unwrap_or(&self.contact_id)
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
