//! A seeded generator of a realistic contact-centre day: the CTR objects Firehose writes
//! (DESIGN §3), the recordings in S3, what Verint holds and what `DescribeContact` answers,
//! plus the ground truth the end-to-end tests assert against. Also the benchmark corpus.

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
    /// Malformed inputs planted, as DESIGN §4 counts them in `ctr.malformed`: one per bad
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
    /// The S3 recordings of the latest copy, in DESIGN §4 order: (bucket, key, status).
    pub s3_recordings: Vec<(String, String, String)>,
    pub in_verint: bool,
    /// The scenario: `voice`, `outbound`, `callback`, `abandoned`, `chat`, `task`,
    /// `other_instance`, `transfer_first`, `transfer_second`, `deleted`, `partly_deleted`,
    /// `ivr_agent`, `long`, `legacy_only`, `array_only`, `with_video`.
    pub kind: String,
}

impl Truth {
    /// DESIGN §4: voice, ended, ours, with at least one S3 recording.
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

// ------------------------------------------------------------------ model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Voice,
    Outbound,
    Callback,
    Abandoned,
    Chat,
    Task,
    OtherInstance,
    Transfer,
    Deleted,
    PartlyDeleted,
    IvrAgent,
    Long,
    LegacyOnly,
    ArrayOnly,
    WithVideo,
}

const KINDS: [(Kind, u32); 15] = [
    (Kind::Voice, 520),
    (Kind::Outbound, 50),
    (Kind::Callback, 20),
    (Kind::Abandoned, 50),
    (Kind::Chat, 80),
    (Kind::Task, 40),
    (Kind::OtherInstance, 50),
    (Kind::Transfer, 25),
    (Kind::Deleted, 12),
    (Kind::PartlyDeleted, 3),
    (Kind::IvrAgent, 60),
    (Kind::Long, 25),
    (Kind::LegacyOnly, 20),
    (Kind::ArrayOnly, 20),
    (Kind::WithVideo, 20),
];

#[derive(Debug, Clone)]
struct Rec {
    bucket: String,
    key: String,
    status: &'static str,
    participant: &'static str,
    media: &'static str,
    in_array: bool,
    in_legacy: bool,
    /// Only in copies after after-contact work.
    bytes: u64,
}

#[derive(Debug, Clone)]
struct Copy {
    last_update: DateTime<Utc>,
    arrival: DateTime<Utc>,
    /// Before after-contact work ended: no recordings, no ACW end.
    early: bool,
    attrs: usize,
    future_field: bool,
}

#[derive(Debug, Clone)]
struct Party {
    id: String,
    arn: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Contact {
    id: String,
    kind: Kind,
    ours: bool,
    instance_id: String,
    channel: &'static str,
    method: &'static str,
    initiation: DateTime<Utc>,
    enqueue: Option<DateTime<Utc>>,
    connected: Option<DateTime<Utc>>,
    disconnect: DateTime<Utc>,
    acw_end: Option<DateTime<Utc>>,
    reason: &'static str,
    initial: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    transfer_to: Option<String>,
    agent: Option<Party>,
    queue: Option<Party>,
    customer: Option<String>,
    system: Option<String>,
    attributes: Vec<(String, String)>,
    recs: Vec<Rec>,
    copies: Vec<Copy>,
    in_verint: bool,
}

fn t(s: DateTime<Utc>) -> String {
    s.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn phone(rng: &mut impl Rng) -> String {
    format!(
        "+1{}{:03}{:04}",
        rng.random_range(201..990),
        rng.random_range(200..999),
        rng.random_range(0..10000)
    )
}

fn secs(rng: &mut impl Rng, r: Range<i64>) -> Duration {
    Duration::seconds(rng.random_range(r))
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

const FIRST: [&str; 12] = [
    "Ana", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
    "Lena",
];
const LAST: [&str; 10] = [
    "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Ulrich", "Varga", "Wong",
];
const QUEUES: [&str; 4] = ["Sales", "Support", "Billing", "Retention"];
const ALIAS: &str = "acme";

struct Ctx<'a> {
    spec: &'a DaySpec,
    our_arn: String,
    other_arn: String,
    agents: Vec<Party>,
    queues: Vec<Party>,
    system_numbers: Vec<String>,
}

impl Ctx<'_> {
    fn rec_key(&self, alias: &str, contact: &str, at: DateTime<Utc>) -> String {
        format!(
            "connect/{alias}/CallRecordings/{}/{contact}_{}_UTC.wav",
            at.format("%Y/%m/%d"),
            at.format("%Y%m%dT%H:%M")
        )
    }
}

/// Generates the day; the same spec gives the same bytes.
pub fn day(spec: &DaySpec) -> Day {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let our_arn = spec.instance_arn(&spec.instance_id);
    let other_arn = spec.instance_arn(&spec.other_instance_id);
    let agents = (0..12)
        .map(|i| {
            let id = uuid(&mut rng);
            Party {
                arn: format!("{our_arn}/agent/{id}"),
                id,
                name: format!(
                    "{}.{}",
                    FIRST[i % FIRST.len()].to_lowercase(),
                    LAST[i % LAST.len()].to_lowercase()
                ),
            }
        })
        .collect();
    let queues = QUEUES
        .iter()
        .map(|q| {
            let id = uuid(&mut rng);
            Party {
                arn: format!("{our_arn}/queue/{id}"),
                id,
                name: (*q).to_owned(),
            }
        })
        .collect();
    let system_numbers = (0..3).map(|_| phone(&mut rng)).collect();
    let ctx = Ctx {
        spec,
        our_arn,
        other_arn,
        agents,
        queues,
        system_numbers,
    };

    // Contacts: one of each kind first, then by weight.
    let mut contacts: Vec<Contact> = Vec::new();
    let total_weight: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut i = 0usize;
    while contacts.len() < spec.calls {
        let kind = if i < KINDS.len() {
            KINDS[i].0
        } else {
            let mut w = rng.random_range(0..total_weight);
            let mut pick = Kind::Voice;
            for (k, kw) in KINDS {
                if w < kw {
                    pick = k;
                    break;
                }
                w -= kw;
            }
            pick
        };
        let first_of_kind = i < KINDS.len();
        i += 1;
        let made = make_contacts(&ctx, &mut rng, kind, first_of_kind);
        contacts.extend(made);
    }

    // Copies: arrival after disconnect (and after-contact work); some contacts arrive twice
    // or three times, the later copy updated.
    for (n, c) in contacts.iter_mut().enumerate() {
        let dup = n < 3 || rng.random_bool(0.07);
        let copies = if dup { rng.random_range(2..=3) } else { 1 };
        let final_update = c.acw_end.unwrap_or(c.disconnect + secs(&mut rng, 1..5));
        let attrs = c.attributes.len();
        let has_recs = !c.recs.is_empty();
        let mut out = Vec::new();
        // An early copy (written at disconnect, before ACW) for half the duplicated calls.
        let early =
            copies > 1 && has_recs && c.acw_end.is_some() && (n == 0 || rng.random_bool(0.5));
        let mut last = if early {
            c.disconnect + secs(&mut rng, 1..5)
        } else {
            final_update
        };
        for k in 0..copies {
            let is_early = early && k == 0;
            let arrival = if k == 0 {
                (c.disconnect + secs(&mut rng, 60..600)).max(last + secs(&mut rng, 5..30))
            } else {
                last + secs(&mut rng, 5..120)
            };
            out.push(Copy {
                last_update: last,
                arrival,
                early: is_early,
                attrs: if k + 1 == copies {
                    attrs
                } else {
                    attrs.saturating_sub(1).max(1)
                },
                future_field: rng.random_bool(0.1),
            });
            let step = secs(&mut rng, 120..5400);
            last = if is_early {
                final_update.max(last + Duration::seconds(1))
            } else {
                last + step
            };
        }
        c.copies = out;
    }

    // Verint: eligible calls, less the missed ones; some kinds are always missed so every
    // path of a run gets exercised.
    let mut forced_long = false;
    let mut forced_transfer = false;
    let mut forced_ivr = false;
    let mut forced_dup = false;
    for c in contacts.iter_mut() {
        let eligible = c.ours && c.channel == "VOICE" && c.recs.iter().any(|r| r.media == "AUDIO");
        if !eligible {
            continue;
        }
        let mut miss = rng.random_bool(spec.verint_miss_rate);
        match c.kind {
            Kind::Deleted | Kind::PartlyDeleted => miss = true,
            Kind::Long if !forced_long => {
                forced_long = true;
                miss = true;
            }
            Kind::Transfer if c.previous.is_some() && !forced_transfer => {
                forced_transfer = true;
                miss = true;
            }
            Kind::IvrAgent if !forced_ivr => {
                forced_ivr = true;
                miss = true;
            }
            _ if c.copies.len() > 1 && c.copies[0].early && !forced_dup => {
                forced_dup = true;
                miss = true;
            }
            _ => {}
        }
        c.in_verint = !miss;
    }
    let mut verint = Vec::new();
    let mut seq = 0u64;
    let mut interaction = |rng: &mut StdRng| {
        seq += 1;
        format!(
            "{}{:06}{:02}",
            spec.date.format("%y%m%d"),
            seq,
            rng.random_range(0..100)
        )
    };
    for c in &contacts {
        if c.in_verint {
            let start = if rng.random_bool(0.5) {
                c.connected.unwrap_or(c.initiation)
            } else {
                c.initiation + secs(&mut rng, 0..4)
            };
            let start = start.min(c.disconnect);
            verint.push(VerintContact {
                amazon_contact_id: Some(c.id.clone()),
                interaction_id: interaction(&mut rng),
                start_time: start,
                end_time: c.disconnect,
            });
        }
    }
    let day_start = spec
        .date
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |d| d.and_utc());
    for _ in 0..(spec.calls / 100).max(3) {
        let start = day_start + secs(&mut rng, 0..86_000);
        verint.push(VerintContact {
            amazon_contact_id: None,
            interaction_id: interaction(&mut rng),
            start_time: start,
            end_time: start + secs(&mut rng, 30..900),
        });
    }

    // Recordings in S3: every one not deleted.
    let mut recordings = Vec::new();
    for c in &contacts {
        for r in &c.recs {
            if r.status != "DELETED" && r.media == "AUDIO" {
                recordings.push(Object {
                    bucket: r.bucket.clone(),
                    key: r.key.clone(),
                    body: wav(&mut rng, r.bytes),
                });
            }
        }
    }

    // DescribeContact: every contact of our instance, as its latest copy says.
    let connect = contacts
        .iter()
        .filter(|c| c.ours)
        .map(|c| describe(&ctx, c))
        .collect();

    // CTR objects: records grouped by Firehose buffer (10 minutes), named by the arrival
    // hour of the oldest record.
    let mut records: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    for (ci, c) in contacts.iter().enumerate() {
        for (k, cp) in c.copies.iter().enumerate() {
            records.push((cp.arrival, ci, k));
        }
    }
    records.sort();
    let mut groups: BTreeMap<i64, Vec<(DateTime<Utc>, usize, usize)>> = BTreeMap::new();
    let offset = rng.random_range(0..600);
    for r in records {
        groups
            .entry((r.0.timestamp() + offset) / 600)
            .or_default()
            .push(r);
    }
    let mut arrival_hours: Vec<Vec<DateTime<Utc>>> = contacts
        .iter()
        .map(|c| vec![day_start; c.copies.len()])
        .collect();
    let mut ctr_objects = Vec::new();
    let mut malformed_records = 0usize;
    let mut malformed_left = 3usize;
    for (_, group) in groups {
        let oldest = group[0].0;
        let hour = floor_hour(oldest);
        let framing = rng.random_range(0..4u8); // 0 concat, 1 ndjson, 2 gz concat, 3 gz ndjson
        let ndjson = framing % 2 == 1;
        let mut body = Vec::new();
        for &(_, ci, k) in &group {
            arrival_hours[ci][k] = hour;
            let v = ctr_json(&ctx, &contacts[ci], &contacts[ci].copies[k]);
            body.extend_from_slice(v.to_string().as_bytes());
            if ndjson {
                body.push(b'\n');
            }
        }
        if ndjson && malformed_left > 0 {
            malformed_left -= 1;
            let sample = ctr_json(&ctx, &contacts[group[0].1], &contacts[group[0].1].copies[0]);
            let junk: Vec<u8> = match malformed_left {
                2 => {
                    // A record cut short, of a contact that exists nowhere else.
                    let mut s = sample.clone();
                    s["ContactId"] = json!(uuid(&mut rng));
                    let full = s.to_string();
                    full.as_bytes()[..full.len() / 2].to_vec()
                }
                1 => {
                    let mut s = sample.clone();
                    if let Some(m) = s.as_object_mut() {
                        m.remove("ContactId");
                    }
                    s.to_string().into_bytes()
                }
                _ => b"<html><body>502 Bad Gateway</body></html>".to_vec(),
            };
            body.extend_from_slice(&junk);
            body.push(b'\n');
            malformed_records += 1;
        }
        if framing >= 2 {
            body = gzip(&body, 6);
        }
        ctr_objects.push(Object {
            bucket: spec.ctr_bucket.clone(),
            key: firehose_key(&spec.ctr_prefix, hour, oldest, &mut rng),
            body,
        });
    }
    // One object that is not readable at all.
    if let Some(hour) = ctr_objects
        .get(ctr_objects.len() / 2)
        .and_then(|o| key_hour(&spec.ctr_prefix, &o.key))
    {
        let mut body = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
        body.extend((0..512).map(|_| rng.random::<u8>()));
        let at = hour + secs(&mut rng, 0..3600);
        ctr_objects.push(Object {
            bucket: spec.ctr_bucket.clone(),
            key: firehose_key(&spec.ctr_prefix, hour, at, &mut rng),
            body,
        });
        malformed_records += 1;
    }

    let truth = contacts
        .iter()
        .zip(arrival_hours)
        .map(|(c, hours)| {
            let latest = c
                .copies
                .iter()
                .max_by_key(|cp| cp.last_update)
                .map(|cp| ctr_json(&ctx, c, cp))
                .unwrap_or(Value::Null);
            Truth {
                contact_id: c.id.clone(),
                channel: c.channel.to_owned(),
                ours: c.ours,
                initiation: c.initiation,
                disconnect: Some(c.disconnect),
                arrival_hours: hours,
                s3_recordings: s3_recordings(&latest),
                in_verint: c.in_verint,
                kind: kind_name(c),
            }
        })
        .collect();

    Day {
        ctr_objects,
        recordings,
        verint,
        connect,
        truth,
        malformed_records,
    }
}

fn kind_name(c: &Contact) -> String {
    let s = match c.kind {
        Kind::Voice => "voice",
        Kind::Outbound => "outbound",
        Kind::Callback => "callback",
        Kind::Abandoned => "abandoned",
        Kind::Chat => "chat",
        Kind::Task => "task",
        Kind::OtherInstance => "other_instance",
        Kind::Transfer if c.previous.is_some() => "transfer_second",
        Kind::Transfer => "transfer_first",
        Kind::Deleted => "deleted",
        Kind::PartlyDeleted => "partly_deleted",
        Kind::IvrAgent => "ivr_agent",
        Kind::Long => "long",
        Kind::LegacyOnly => "legacy_only",
        Kind::ArrayOnly => "array_only",
        Kind::WithVideo => "with_video",
    };
    s.to_owned()
}

fn key_hour(prefix: &str, key: &str) -> Option<DateTime<Utc>> {
    let rest = key.strip_prefix(prefix)?;
    let d = chrono::NaiveDateTime::parse_from_str(
        &format!("{}:00:00", rest.get(..13)?),
        "%Y/%m/%d/%H:%M:%S",
    )
    .ok()?;
    Some(d.and_utc())
}

fn firehose_key(
    prefix: &str,
    hour: DateTime<Utc>,
    at: DateTime<Utc>,
    rng: &mut impl Rng,
) -> String {
    format!(
        "{prefix}{}/connect-ctr-stream-1-{}-{}",
        hour.format("%Y/%m/%d/%H"),
        at.format("%Y-%m-%d-%H-%M-%S"),
        uuid(rng)
    )
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::new(level));
    e.write_all(data).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

/// A stereo 8 kHz 16-bit PCM WAV of `total` bytes (44-byte header included, rounded down to
/// whole frames), with deterministic noise-and-tone content.
pub fn wav(rng: &mut impl Rng, total: u64) -> Vec<u8> {
    let data_len = (total.max(48) - 44) / 4 * 4;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&2u16.to_le_bytes()); // stereo
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&32000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&4u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    let mut x: u32 = rng.random::<u32>() | 1;
    let period = rng.random_range(8..40u32);
    for i in 0..(data_len / 4) as u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let tone = if (i / period) % 2 == 0 {
            3000i16
        } else {
            -3000
        };
        let noise = (x & 0x3ff) as i16 - 512;
        out.extend_from_slice(&(tone + noise).to_le_bytes());
        out.extend_from_slice(&(noise / 2).to_le_bytes());
    }
    out
}

fn pick_day_time(ctx: &Ctx<'_>, rng: &mut StdRng) -> DateTime<Utc> {
    let start = ctx
        .spec
        .date
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |d| d.and_utc());
    // Most traffic in (US) business hours, some around the clock.
    let s = if rng.random_bool(0.7) {
        rng.random_range(13 * 3600..23 * 3600)
    } else {
        rng.random_range(0..86_340)
    };
    start + Duration::seconds(s)
}

fn make_contacts(ctx: &Ctx<'_>, rng: &mut StdRng, kind: Kind, first: bool) -> Vec<Contact> {
    let spec = ctx.spec;
    let mut initiation = pick_day_time(ctx, rng);
    if kind == Kind::Long && first {
        // Starts late: its CTR arrives the next day.
        initiation = spec
            .date
            .and_hms_opt(21, 30, 0)
            .map_or(initiation, |d| d.and_utc())
            + secs(rng, 0..3600);
    }
    let ours = kind != Kind::OtherInstance;
    let id = uuid(rng);
    let customer_name = format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Ana"),
        LAST.choose(rng).unwrap_or(&"Novak")
    );
    let mut attributes = vec![
        ("customerName".to_owned(), customer_name),
        (
            "accountNumber".to_owned(),
            format!("{:010}", rng.random_range(0..10_000_000_000u64)),
        ),
        (
            "intent".to_owned(),
            ["billing", "support", "sales", "cancel"]
                .choose(rng)
                .unwrap_or(&"support")
                .to_string(),
        ),
    ];
    attributes.push(("disposition".to_owned(), "resolved".to_owned()));
    let (channel, method) = match kind {
        Kind::Chat => ("CHAT", "API"),
        Kind::Task => ("TASK", "API"),
        Kind::Outbound => ("VOICE", "OUTBOUND"),
        Kind::Callback => ("VOICE", "CALLBACK"),
        _ => ("VOICE", "INBOUND"),
    };
    let ivr = match kind {
        Kind::IvrAgent | Kind::PartlyDeleted => secs(rng, 61..150),
        Kind::Outbound | Kind::Task => Duration::zero(),
        _ => secs(rng, 5..90),
    };
    let enqueue = initiation + ivr;
    let wait = secs(rng, 0..300);
    let talk = match kind {
        Kind::Long => secs(rng, 3600..10_800),
        Kind::Chat => secs(rng, 120..1800),
        _ => secs(rng, 30..1200),
    };
    let agent = ctx.agents.choose(rng).cloned();
    let queue = ctx.queues.choose(rng).cloned();
    let mut c = Contact {
        id: id.clone(),
        kind,
        ours,
        instance_id: if ours {
            spec.instance_id.clone()
        } else {
            spec.other_instance_id.clone()
        },
        channel,
        method,
        initiation,
        enqueue: Some(enqueue),
        connected: Some(enqueue + wait),
        disconnect: enqueue + wait + talk,
        acw_end: None,
        reason: if rng.random_bool(0.5) {
            "CUSTOMER_DISCONNECT"
        } else {
            "AGENT_DISCONNECT"
        },
        initial: None,
        previous: None,
        next: None,
        transfer_to: None,
        agent,
        queue,
        customer: if channel == "VOICE" {
            Some(phone(rng))
        } else {
            None
        },
        system: if channel == "VOICE" {
            ctx.system_numbers.choose(rng).cloned()
        } else {
            None
        },
        attributes,
        recs: Vec::new(),
        copies: Vec::new(),
        in_verint: false,
    };
    if kind == Kind::Abandoned {
        c.agent = None;
        c.connected = None;
        c.disconnect = enqueue + secs(rng, 10..400);
        c.reason = "CUSTOMER_DISCONNECT";
        c.attributes.retain(|a| a.0 != "disposition");
        return vec![finish(ctx, rng, c)];
    }
    if kind == Kind::Task {
        c.enqueue = Some(initiation);
        c.connected = Some(initiation + wait);
        c.disconnect = initiation + wait + talk;
    }
    c.acw_end = Some(c.disconnect + secs(rng, 10..240));
    let alias = if ours { ALIAS } else { "other" };
    let size = |rng: &mut StdRng| rng.random_range(spec.recording_bytes.clone());
    if channel == "VOICE" {
        let connected = c.connected.unwrap_or(initiation);
        let agent_rec = Rec {
            bucket: spec.recordings_bucket.clone(),
            key: ctx.rec_key(alias, &id, connected),
            status: "AVAILABLE",
            participant: "AGENT",
            media: "AUDIO",
            in_array: true,
            in_legacy: true,
            bytes: size(rng),
        };
        match kind {
            Kind::IvrAgent | Kind::PartlyDeleted => {
                let ivr_rec = Rec {
                    key: ctx.rec_key(alias, &id, initiation),
                    participant: "IVR",
                    status: if kind == Kind::PartlyDeleted {
                        "DELETED"
                    } else {
                        "AVAILABLE"
                    },
                    bytes: size(rng),
                    ..agent_rec.clone()
                };
                c.recs = vec![
                    ivr_rec,
                    Rec {
                        in_legacy: false,
                        ..agent_rec
                    },
                ];
            }
            Kind::Deleted => {
                c.recs = vec![Rec {
                    status: "DELETED",
                    ..agent_rec
                }];
            }
            Kind::LegacyOnly => {
                c.recs = vec![Rec {
                    in_array: false,
                    ..agent_rec
                }];
            }
            Kind::ArrayOnly => {
                c.recs = vec![Rec {
                    in_legacy: false,
                    ..agent_rec
                }];
            }
            Kind::WithVideo => {
                let video = Rec {
                    key: format!(
                        "connect/{alias}/ScreenRecordings/{}/{id}_{}.mp4",
                        connected.format("%Y/%m/%d"),
                        connected.format("%Y%m%dT%H:%M")
                    ),
                    media: "VIDEO",
                    in_legacy: false,
                    ..agent_rec.clone()
                };
                c.recs = vec![agent_rec, video];
            }
            _ => c.recs = vec![agent_rec],
        }
    } else if channel == "CHAT" && rng.random_bool(0.5) {
        c.recs = vec![Rec {
            bucket: spec.recordings_bucket.clone(),
            key: format!(
                "connect/{alias}/ChatTranscripts/{}/{id}_{}_UTC.json",
                initiation.format("%Y/%m/%d"),
                initiation.format("%Y%m%dT%H:%M")
            ),
            status: "AVAILABLE",
            participant: "ALL",
            media: "CHAT",
            in_array: true,
            in_legacy: false,
            bytes: 0,
        }];
    }
    if kind != Kind::Transfer {
        return vec![finish(ctx, rng, c)];
    }
    // The second leg: the agent transferred the caller to another queue.
    let mut b = c.clone();
    b.id = uuid(rng);
    b.method = "TRANSFER";
    b.initial = Some(c.id.clone());
    b.previous = Some(c.id.clone());
    b.initiation = c.disconnect;
    b.enqueue = Some(b.initiation + secs(rng, 1..5));
    b.connected = b.enqueue.map(|e| e + secs(rng, 5..200));
    b.disconnect = b.connected.unwrap_or(b.initiation) + secs(rng, 30..900);
    b.acw_end = Some(b.disconnect + secs(rng, 10..240));
    b.agent = ctx.agents.choose(rng).cloned();
    b.queue = ctx.queues.choose(rng).cloned();
    b.reason = "CUSTOMER_DISCONNECT";
    let connected = b.connected.unwrap_or(b.initiation);
    b.recs = vec![Rec {
        key: ctx.rec_key(alias, &b.id, connected),
        bytes: size(rng),
        ..c.recs[0].clone()
    }];
    c.next = Some(b.id.clone());
    c.reason = "TRANSFER";
    c.transfer_to = Some(phone(rng));
    vec![finish(ctx, rng, c), finish(ctx, rng, b)]
}

fn finish(ctx: &Ctx<'_>, _rng: &mut StdRng, mut c: Contact) -> Contact {
    if !c.ours {
        let other = |p: Party| Party {
            arn: p.arn.replace(&ctx.our_arn, &ctx.other_arn),
            ..p
        };
        c.agent = c.agent.map(other);
        c.queue = c.queue.map(other);
    }
    c
}

fn ts_or_null(t_: Option<DateTime<Utc>>) -> Value {
    t_.map_or(Value::Null, |x| json!(t(x)))
}

/// One CTR copy as Amazon Connect writes it.
fn ctr_json(ctx: &Ctx<'_>, c: &Contact, cp: &Copy) -> Value {
    let spec = ctx.spec;
    let instance_arn = if c.ours { &ctx.our_arn } else { &ctx.other_arn };
    let acw_end = if cp.early { None } else { c.acw_end };
    let agent = match &c.agent {
        Some(a) => {
            let connected = c.connected.unwrap_or(c.initiation);
            json!({
                "ARN": a.arn,
                "AfterContactWorkDuration": acw_end.map(|e| (e - c.disconnect).num_seconds()),
                "AfterContactWorkEndTimestamp": ts_or_null(acw_end),
                "AfterContactWorkStartTimestamp": t(c.disconnect),
                "AgentInteractionDuration": (c.disconnect - connected).num_seconds(),
                "AgentPauseDuration": 0,
                "ConnectedToAgentTimestamp": t(connected),
                "CustomerHoldDuration": 0,
                "DeviceInfo": null,
                "HierarchyGroups": null,
                "LongestHoldDuration": 0,
                "NumberOfHolds": 0,
                "RoutingProfile": {"ARN": format!("{instance_arn}/routing-profile/basic"), "Name": "Basic Routing Profile"},
                "Username": a.name,
            })
        }
        None => Value::Null,
    };
    let queue = match &c.queue {
        Some(q) => {
            let enq = c.enqueue.unwrap_or(c.initiation);
            let deq = c.connected.unwrap_or(c.disconnect);
            json!({
                "ARN": q.arn,
                "DequeueTimestamp": t(deq),
                "Duration": (deq - enq).num_seconds(),
                "EnqueueTimestamp": t(enq),
                "Name": q.name,
            })
        }
        None => Value::Null,
    };
    let recs: Vec<&Rec> = if cp.early {
        Vec::new()
    } else {
        c.recs.iter().collect()
    };
    let legacy = recs
        .iter()
        .find(|r| r.in_legacy)
        .map_or(Value::Null, |r| {
            json!({
                "DeletionReason": if r.status == "DELETED" { json!("Deleted by retention policy") } else { Value::Null },
                "Location": format!("{}/{}", r.bucket, r.key),
                "Status": r.status,
                "Type": "AUDIO",
            })
        });
    let array: Vec<Value> = recs
        .iter()
        .filter(|r| r.in_array)
        .map(|r| {
            json!({
                "DeletionReason": if r.status == "DELETED" { json!("Deleted by retention policy") } else { Value::Null },
                "FragmentStartNumber": null,
                "FragmentStopNumber": null,
                "Location": format!("{}/{}", r.bucket, r.key),
                "MediaStreamType": r.media,
                "ParticipantType": r.participant,
                "StartTimestamp": null,
                "Status": r.status,
                "StopTimestamp": null,
                "StorageType": "S3",
            })
        })
        .collect();
    let attributes: Map<String, Value> = c
        .attributes
        .iter()
        .take(cp.attrs)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let endpoint = |a: &Option<String>| {
        a.as_ref().map_or(
            Value::Null,
            |a| json!({"Address": a, "Type": "TELEPHONE_NUMBER"}),
        )
    };
    let mut v = json!({
        "AWSAccountId": spec.account,
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "Agent": agent,
        "AgentConnectionAttempts": if c.agent.is_some() { 1 } else { 0 },
        "Attributes": attributes,
        "Campaign": {"CampaignId": null},
        "Channel": c.channel,
        "ConnectedToSystemTimestamp": if c.channel == "VOICE" { json!(t(c.initiation + Duration::seconds(1))) } else { Value::Null },
        "ContactDetails": {},
        "ContactId": c.id,
        "CustomerEndpoint": endpoint(&c.customer),
        "CustomerVoiceActivity": null,
        "DisconnectReason": c.reason,
        "DisconnectTimestamp": t(c.disconnect),
        "InitialContactId": c.initial,
        "InitiationMethod": c.method,
        "InitiationTimestamp": t(c.initiation),
        "InstanceARN": instance_arn,
        "LastUpdateTimestamp": t(cp.last_update),
        "MediaStreams": [{"Type": if c.channel == "VOICE" { "AUDIO" } else { c.channel }}],
        "NextContactId": c.next,
        "PreviousContactId": c.previous,
        "Queue": queue,
        "Recording": legacy,
        "Recordings": array,
        "References": [],
        "ScheduledTimestamp": null,
        "SystemEndpoint": endpoint(&c.system),
        "Tags": {"aws:connect:instanceId": c.instance_id},
        "TransferCompletedTimestamp": if c.transfer_to.is_some() { json!(t(c.disconnect)) } else { Value::Null },
        "TransferredToEndpoint": endpoint(&c.transfer_to),
        "VoiceIdResult": null,
    });
    if cp.future_field {
        v["QualityMetrics"] =
            json!({"Agent": {"Audio": {"QualityScore": 4.6, "PotentialQualityIssues": []}}});
    }
    v
}

/// DESIGN §4's S3 recordings of one CTR, in order: (bucket, key, status).
pub fn s3_recordings(ctr: &Value) -> Vec<(String, String, String)> {
    let split = |loc: &str| {
        loc.split_once('/')
            .map(|(b, k)| (b.to_owned(), k.to_owned()))
    };
    let mut out: Vec<(String, String, String)> = Vec::new();
    if let Some(arr) = ctr.get("Recordings").and_then(Value::as_array) {
        for r in arr {
            let s3 = r.get("StorageType").and_then(Value::as_str) == Some("S3");
            let audio = matches!(r.get("MediaStreamType"), None | Some(Value::Null))
                || r.get("MediaStreamType").and_then(Value::as_str) == Some("AUDIO");
            if let (true, true, Some((b, k))) = (
                s3,
                audio,
                r.get("Location").and_then(Value::as_str).and_then(split),
            ) {
                let status = r
                    .get("Status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                out.push((b, k, status));
            }
        }
    }
    if let Some(r) = ctr.get("Recording").filter(|r| r.is_object())
        && let Some((b, k)) = r.get("Location").and_then(Value::as_str).and_then(split)
        && !out.iter().any(|o| o.0 == b && o.1 == k)
    {
        let status = r
            .get("Status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        out.push((b, k, status));
    }
    out
}

fn describe(ctx: &Ctx<'_>, c: &Contact) -> ConnectContact {
    let latest = c
        .copies
        .iter()
        .map(|cp| cp.last_update)
        .max()
        .unwrap_or(c.disconnect);
    let attrs = c
        .copies
        .iter()
        .max_by_key(|cp| cp.last_update)
        .map_or(c.attributes.len(), |cp| cp.attrs);
    ConnectContact {
        instance_id: c.instance_id.clone(),
        id: c.id.clone(),
        arn: format!("{}/contact/{}", ctx.our_arn, c.id),
        initial_contact_id: c.initial.clone(),
        previous_contact_id: c.previous.clone(),
        channel: c.channel.to_owned(),
        initiation_method: c.method.to_owned(),
        initiation_timestamp: c.initiation,
        disconnect_timestamp: Some(c.disconnect),
        last_update_timestamp: latest,
        agent: c.agent.as_ref().map(|a| ConnectAgent {
            id: a.id.clone(),
            connected_to_agent_timestamp: c.connected,
        }),
        queue: c.queue.as_ref().map(|q| ConnectQueue {
            id: q.id.clone(),
            enqueue_timestamp: c.enqueue,
        }),
        customer_endpoint: c.customer.as_ref().map(|a| ConnectEndpoint {
            endpoint_type: "TELEPHONE_NUMBER".into(),
            address: a.clone(),
        }),
        system_endpoint: c.system.as_ref().map(|a| ConnectEndpoint {
            endpoint_type: "TELEPHONE_NUMBER".into(),
            address: a.clone(),
        }),
        attributes: c.attributes.iter().take(attrs).cloned().collect(),
    }
}

// ------------------------------------------------------------------ S3 and the simulator

/// Puts every CTR and recording object, creating the buckets when absent.
pub async fn upload(s3: &aws_sdk_s3::Client, day: &Day) -> anyhow::Result<()> {
    let buckets: BTreeSet<&str> = day
        .ctr_objects
        .iter()
        .chain(&day.recordings)
        .map(|o| o.bucket.as_str())
        .collect();
    for b in buckets {
        ensure_bucket(s3, b).await?;
    }
    futures::stream::iter(day.ctr_objects.iter().chain(&day.recordings))
        .map(|o| async move {
            s3.put_object()
                .bucket(&o.bucket)
                .key(&o.key)
                .body(aws_sdk_s3::primitives::ByteStream::from(o.body.clone()))
                .send()
                .await
                .with_context(|| format!("put s3://{}/{}", o.bucket, o.key))
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut req = s3.create_bucket().bucket(bucket);
    if let Some(region) = s3.config().region().map(|r| r.as_ref().to_owned())
        && region != "us-east-1"
    {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let se = e.into_service_error();
            if se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists() {
                Ok(())
            } else {
                Err(anyhow::Error::new(se).context(format!("create bucket {bucket}")))
            }
        }
    }
}

/// Appends the day's Verint holdings and Connect contacts to a running simulator.
pub async fn seed_simulator(base_url: &str, day: &Day) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = base_url.trim_end_matches('/');
    http.post(format!("{base}/_admin/verint"))
        .json(&day.verint)
        .send()
        .await
        .context("seed verint")?
        .error_for_status()?;
    http.post(format!("{base}/_admin/connect"))
        .json(&day.connect)
        .send()
        .await
        .context("seed connect")?
        .error_for_status()?;
    Ok(())
}

/// A one-paragraph description of a day.
pub fn summary(day: &Day) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for tr in &day.truth {
        *kinds.entry(tr.kind.as_str()).or_default() += 1;
    }
    let eligible = day.truth.iter().filter(|t| t.eligible()).count();
    let missing = day.truth.iter().filter(|t| t.missing()).count();
    let unrecoverable = day
        .truth
        .iter()
        .filter(|t| t.eligible() && !t.in_verint && t.all_deleted())
        .count();
    let dups = day
        .truth
        .iter()
        .filter(|t| t.arrival_hours.len() > 1)
        .count();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "{} CTR objects ({} malformed inputs planted), {} recordings, {} contacts ({}), {} with \
         duplicate copies; {} eligible calls, Verint lacks {} of them ({} unrecoverable: every \
         recording deleted, {} to recover); Verint holds {} contacts, Connect knows {}.",
        day.ctr_objects.len(),
        day.malformed_records,
        day.recordings.len(),
        day.truth.len(),
        kinds.join(", "),
        dups,
        eligible,
        missing + unrecoverable,
        unrecoverable,
        missing,
        day.verint.len(),
        day.connect.len(),
    )
}

// ------------------------------------------------------------------ benchmark corpus

/// What [`bench_corpus`] wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchCorpus {
    pub dir: PathBuf,
    pub date: NaiveDate,
    /// `ctr/` under `dir`: the CTR prefix to read from.
    pub ctr_dir: PathBuf,
    pub objects: usize,
    pub records: usize,
    pub voice: usize,
    pub chat: usize,
    /// Voice calls with one S3 recording (all of them).
    pub with_recording: usize,
    /// Lines of `verint_ids.txt`.
    pub in_verint: usize,
    /// Voice calls not in `verint_ids.txt`.
    pub expected_missing: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

const BENCH_TARGET_OBJECT: usize = 5 * 1024 * 1024;

/// Writes `n` CTRs of one day (2024-05-14) as gzip Firehose objects of about 5 MB under
/// `dir/ctr/YYYY/MM/DD/HH/`, and `dir/verint_ids.txt` (sorted, 97 % of the voice calls).
pub fn bench_corpus(
    dir: &Path,
    n: usize,
    seed: u64,
    instance_id: &str,
) -> anyhow::Result<BenchCorpus> {
    let date = NaiveDate::from_ymd_opt(2024, 5, 14).context("fixed date")?;
    bench_corpus_on(dir, date, n, seed, instance_id)
}

/// [`bench_corpus`] for any day: a backfill's corpus is one such day after another in the same
/// `dir/ctr/` (each call rewrites `dir/verint_ids.txt`: move it away before the next day).
pub fn bench_corpus_on(
    dir: &Path,
    date: NaiveDate,
    n: usize,
    seed: u64,
    instance_id: &str,
) -> anyhow::Result<BenchCorpus> {
    let day_start = date.and_hms_opt(0, 0, 0).context("midnight")?.and_utc();
    let instance_arn = format!("arn:aws:connect:us-east-1:123456789012:instance/{instance_id}");

    // Calibrate records per object on a sample.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = Vec::new();
    for i in 0..1000 {
        bench_record(
            &mut sample,
            &mut rng,
            &instance_arn,
            day_start + Duration::hours(12),
            i,
        )?;
    }
    let per_record = gzip(&sample, 6).len().max(1) as f64 / 1000.0;
    let per_object = ((BENCH_TARGET_OBJECT as f64 / per_record) as usize).max(1);
    let objects = n.div_ceil(per_object).max(1);

    let ctr_dir = dir.join("ctr");
    std::fs::create_dir_all(&ctr_dir)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .min(objects);
    struct Part {
        voice: usize,
        chat: usize,
        ids: Vec<String>,
        compressed: u64,
        uncompressed: u64,
    }
    let parts: Vec<anyhow::Result<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Part> {
                    let mut part = Part {
                        voice: 0,
                        chat: 0,
                        ids: Vec::new(),
                        compressed: 0,
                        uncompressed: 0,
                    };
                    let mut buf = Vec::new();
                    loop {
                        let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if j >= objects {
                            return Ok(part);
                        }
                        let lo = j * n / objects;
                        let hi = (j + 1) * n / objects;
                        let hour = day_start + Duration::hours((j * 24 / objects) as i64);
                        let mut rng = StdRng::seed_from_u64(
                            seed ^ (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        );
                        buf.clear();
                        let mut oldest = hour + Duration::hours(1);
                        for i in lo..hi {
                            let (id, voice, arrival) =
                                bench_record(&mut buf, &mut rng, &instance_arn, hour, i)?;
                            oldest = oldest.min(arrival);
                            if voice {
                                part.voice += 1;
                                if rng.random_bool(0.97) {
                                    part.ids.push(id);
                                }
                            } else {
                                part.chat += 1;
                            }
                        }
                        let gz = gzip(&buf, 6);
                        part.compressed += gz.len() as u64;
                        part.uncompressed += buf.len() as u64;
                        let key = firehose_key("", hour, oldest, &mut rng);
                        let path = ctr_dir.join(&key);
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent)?;
                        }
                        std::fs::write(&path, gz)
                            .with_context(|| format!("write {}", path.display()))?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")))
            })
            .collect()
    });
    let mut corpus = BenchCorpus {
        dir: dir.to_owned(),
        date,
        ctr_dir: ctr_dir.clone(),
        objects,
        records: n,
        voice: 0,
        chat: 0,
        with_recording: 0,
        in_verint: 0,
        expected_missing: 0,
        compressed_bytes: 0,
        uncompressed_bytes: 0,
    };
    let mut ids = Vec::new();
    for p in parts {
        let p = p?;
        corpus.voice += p.voice;
        corpus.chat += p.chat;
        corpus.compressed_bytes += p.compressed;
        corpus.uncompressed_bytes += p.uncompressed;
        ids.extend(p.ids);
    }
    ids.sort_unstable();
    corpus.with_recording = corpus.voice;
    corpus.in_verint = ids.len();
    corpus.expected_missing = corpus.voice - ids.len();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("verint_ids.txt"))?);
    for id in &ids {
        writeln!(out, "{id}")?;
    }
    out.flush()?;
    Ok(corpus)
}

/// Appends one ~2.4 KB NDJSON CTR arriving in `hour`; returns (id, is voice, arrival).
fn bench_record(
    buf: &mut Vec<u8>,
    rng: &mut StdRng,
    instance_arn: &str,
    hour: DateTime<Utc>,
    i: usize,
) -> anyhow::Result<(String, bool, DateTime<Utc>)> {
    let id = uuid(rng);
    let voice = rng.random_bool(0.8);
    let arrival = hour + secs(rng, 0..3600);
    let disconnect = arrival - secs(rng, 60..600);
    let connected = disconnect - secs(rng, 30..1200);
    let enqueue = connected - secs(rng, 0..300);
    let initiation = enqueue - secs(rng, 5..90);
    let acw_end = disconnect + secs(rng, 10..59);
    let agent = uuid(rng);
    let queue = uuid(rng);
    let (channel, method, stream) = if voice {
        ("VOICE", "INBOUND", "AUDIO")
    } else {
        ("CHAT", "API", "CHAT")
    };
    let (cust, sys) = if voice {
        (
            format!(
                r#"{{"Address":"{}","Type":"TELEPHONE_NUMBER"}}"#,
                phone(rng)
            ),
            r#"{"Address":"+18005550100","Type":"TELEPHONE_NUMBER"}"#.to_owned(),
        )
    } else {
        ("null".to_owned(), "null".to_owned())
    };
    let (rec, recs) = if voice {
        let loc = format!(
            "connect-recordings/connect/acme/CallRecordings/{}/{id}_{}_UTC.wav",
            connected.format("%Y/%m/%d"),
            connected.format("%Y%m%dT%H:%M")
        );
        (
            format!(
                r#"{{"DeletionReason":null,"Location":"{loc}","Status":"AVAILABLE","Type":"AUDIO"}}"#
            ),
            format!(
                r#"[{{"DeletionReason":null,"FragmentStartNumber":null,"FragmentStopNumber":null,"Location":"{loc}","MediaStreamType":"AUDIO","ParticipantType":"AGENT","StartTimestamp":null,"Status":"AVAILABLE","StopTimestamp":null,"StorageType":"S3"}}]"#
            ),
        )
    } else {
        ("null".to_owned(), "[]".to_owned())
    };
    let name = format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Ana"),
        LAST.choose(rng).unwrap_or(&"Novak")
    );
    writeln!(
        buf,
        r#"{{"AWSAccountId":"123456789012","AWSContactTraceRecordFormatVersion":"2017-03-10","Agent":{{"ARN":"{ia}/agent/{agent}","AfterContactWorkDuration":{acw},"AfterContactWorkEndTimestamp":"{acwe}","AfterContactWorkStartTimestamp":"{disc}","AgentInteractionDuration":{talk},"ConnectedToAgentTimestamp":"{conn}","CustomerHoldDuration":0,"DeviceInfo":null,"HierarchyGroups":null,"LongestHoldDuration":0,"NumberOfHolds":0,"RoutingProfile":{{"ARN":"{ia}/routing-profile/{queue}","Name":"Basic Routing Profile"}},"Username":"agent{an}"}},"AgentConnectionAttempts":1,"Attributes":{{"customerName":"{name}","accountNumber":"{acct:010}","intent":"billing","language":"en-US","disposition":"resolved"}},"Channel":"{channel}","ConnectedToSystemTimestamp":"{init}","ContactId":"{id}","CustomerEndpoint":{cust},"DisconnectReason":"CUSTOMER_DISCONNECT","DisconnectTimestamp":"{disc}","InitialContactId":null,"InitiationMethod":"{method}","InitiationTimestamp":"{init}","InstanceARN":"{ia}","LastUpdateTimestamp":"{acwe}","MediaStreams":[{{"Type":"{stream}"}}],"NextContactId":null,"PreviousContactId":null,"Queue":{{"ARN":"{ia}/queue/{queue}","DequeueTimestamp":"{conn}","Duration":{qd},"EnqueueTimestamp":"{enq}","Name":"Support"}},"Recording":{rec},"Recordings":{recs},"References":[],"ScheduledTimestamp":null,"SystemEndpoint":{sys},"Tags":{{"aws:connect:instanceId":"{iid}","record":"{i}"}},"TransferCompletedTimestamp":null,"TransferredToEndpoint":null}}"#,
        ia = instance_arn,
        acw = (acw_end - disconnect).num_seconds(),
        acwe = t(acw_end),
        disc = t(disconnect),
        talk = (disconnect - connected).num_seconds(),
        conn = t(connected),
        an = rng.random_range(100..999),
        acct = rng.random_range(0..10_000_000_000u64),
        init = t(initiation),
        enq = t(enqueue),
        qd = (connected - enqueue).num_seconds(),
        iid = instance_arn.rsplit('/').next().unwrap_or_default(),
    )?;
    Ok((id, voice, arrival))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Read as _;

    use super::*;

    fn spec(seed: u64) -> DaySpec {
        let date = NaiveDate::from_ymd_opt(2024, 5, 14).expect("date");
        let mut s = DaySpec::new(seed, date, "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b");
        s.calls = 300;
        s
    }

    fn fingerprint(day: &Day) -> String {
        let mut h = sha2::Sha256::default();
        use sha2::Digest as _;
        for o in day.ctr_objects.iter().chain(&day.recordings) {
            h.update(o.key.as_bytes());
            h.update(&o.body);
        }
        h.update(serde_json::to_vec(&day.truth).expect("json"));
        h.update(serde_json::to_vec(&day.verint).expect("json"));
        h.update(serde_json::to_vec(&day.connect).expect("json"));
        hex::encode(h.finalize())
    }

    #[test]
    fn the_same_seed_gives_the_same_day_and_another_seed_another() {
        assert_eq!(fingerprint(&day(&spec(7))), fingerprint(&day(&spec(7))));
        assert_ne!(fingerprint(&day(&spec(7))), fingerprint(&day(&spec(8))));
    }

    /// Reads objects the way DESIGN §4 says; returns (records with a ContactId, malformed).
    fn read_objects(prefix: &str, objects: &[Object]) -> (Vec<(DateTime<Utc>, Value)>, usize) {
        let mut records = Vec::new();
        let mut malformed = 0;
        for o in objects {
            let hour = key_hour(prefix, &o.key).expect("firehose key");
            assert!(!o.key.ends_with(".gz"));
            let body = if o.body.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                match flate2::read::GzDecoder::new(&o.body[..]).read_to_end(&mut out) {
                    Ok(_) => out,
                    Err(_) => {
                        malformed += 1;
                        continue;
                    }
                }
            } else {
                o.body.clone()
            };
            let mut values: Vec<Option<Value>> = Vec::new();
            if body.contains(&b'\n') {
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    values.push(serde_json::from_slice::<Value>(line).ok());
                }
            } else {
                for v in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
                    values.push(Some(v.expect("concatenated objects hold whole records")));
                }
            }
            for v in values {
                match v {
                    Some(v) if v.get("ContactId").and_then(Value::as_str).is_some() => {
                        records.push((hour, v));
                    }
                    _ => malformed += 1,
                }
            }
        }
        (records, malformed)
    }

    #[test]
    fn the_truth_agrees_with_the_ctr_objects() {
        let s = spec(42);
        let d = day(&s);
        let (records, malformed) = read_objects(&s.ctr_prefix, &d.ctr_objects);
        assert_eq!(malformed, d.malformed_records);
        assert_eq!(malformed, 4);

        let mut by_id: HashMap<&str, Vec<(DateTime<Utc>, &Value)>> = HashMap::new();
        for (hour, v) in &records {
            let id = v["ContactId"].as_str().expect("id");
            by_id.entry(id).or_default().push((*hour, v));
        }
        assert_eq!(by_id.len(), d.truth.len());
        let recordings: BTreeSet<(&str, &str)> = d
            .recordings
            .iter()
            .map(|o| (o.bucket.as_str(), o.key.as_str()))
            .collect();
        let verint: HashMap<&str, &VerintContact> = d
            .verint
            .iter()
            .filter_map(|v| v.amazon_contact_id.as_deref().map(|id| (id, v)))
            .collect();
        let connect: BTreeSet<&str> = d.connect.iter().map(|c| c.id.as_str()).collect();
        let our_arn = s.instance_arn(&s.instance_id);
        for t in &d.truth {
            let copies = &by_id[t.contact_id.as_str()];
            assert_eq!(copies.len(), t.arrival_hours.len(), "{}", t.contact_id);
            let mut hours: Vec<_> = copies.iter().map(|c| c.0).collect();
            let mut expected = t.arrival_hours.clone();
            hours.sort();
            expected.sort();
            assert_eq!(hours, expected);
            let latest = copies
                .iter()
                .max_by_key(|c| c.1["LastUpdateTimestamp"].as_str().map(str::to_owned))
                .expect("a copy")
                .1;
            assert_eq!(s3_recordings(latest), t.s3_recordings, "{}", t.contact_id);
            assert_eq!(latest["Channel"], t.channel.as_str());
            assert_eq!(latest["InstanceARN"] == our_arn.as_str(), t.ours);
            assert_eq!(
                latest["InitiationTimestamp"],
                super::t(t.initiation).as_str()
            );
            for (b, k) in t.recordings_to_ingest() {
                assert!(recordings.contains(&(b.as_str(), k.as_str())), "{k}");
                assert!(k.contains("_UTC.wav") && k.contains(':'), "{k}");
            }
            if t.eligible() {
                assert_eq!(verint.contains_key(t.contact_id.as_str()), t.in_verint);
            }
            if let Some(v) = verint.get(t.contact_id.as_str()) {
                assert!(v.start_time >= t.initiation);
                assert!(Some(v.start_time) <= t.disconnect);
            }
            assert_eq!(t.ours, connect.contains(t.contact_id.as_str()));
            for h in &t.arrival_hours {
                assert!(*h >= floor_hour(t.disconnect.expect("ended")));
            }
        }
        // Every scenario is there.
        let kinds: BTreeSet<&str> = d.truth.iter().map(|t| t.kind.as_str()).collect();
        for k in [
            "voice",
            "abandoned",
            "chat",
            "task",
            "other_instance",
            "transfer_first",
            "transfer_second",
            "deleted",
            "partly_deleted",
            "ivr_agent",
            "long",
        ] {
            assert!(kinds.contains(k), "{k}");
        }
        assert!(d.truth.iter().any(|t| t.arrival_hours.len() > 1));
        assert!(d.truth.iter().any(|t| t.missing()));
        assert!(
            d.truth
                .iter()
                .any(|t| t.eligible() && t.all_deleted() && !t.in_verint)
        );
        let partly = d
            .truth
            .iter()
            .find(|t| t.kind == "partly_deleted")
            .expect("one");
        assert!(partly.missing());
        assert_eq!(partly.s3_recordings.len(), 2);
        assert_eq!(partly.recordings_to_ingest().len(), 1);
        assert!(d.verint.iter().any(|v| v.amazon_contact_id.is_none()));
        // A long call that started late in the day arrives the next day.
        assert!(
            d.truth
                .iter()
                .any(|t| t.kind == "long" && t.arrival_hours[0].date_naive() > s.date)
        );
        // Recordings are stereo 8 kHz 16-bit WAV in range.
        for r in &d.recordings {
            assert_eq!(&r.body[..4], b"RIFF");
            assert_eq!(&r.body[22..24], &2u16.to_le_bytes());
            assert_eq!(&r.body[24..28], &8000u32.to_le_bytes());
            assert!(s.recording_bytes.contains(&(r.body.len() as u64 + 3)));
        }
    }

    #[test]
    fn the_bench_corpus_writes_objects_and_verint_ids() {
        let dir = std::env::temp_dir().join(format!(
            "bench-corpus-test-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let c = bench_corpus(&dir, 3000, 5, "inst").expect("written");
        assert_eq!(c.records, 3000);
        assert_eq!(c.voice + c.chat, 3000);
        let ids = std::fs::read_to_string(dir.join("verint_ids.txt")).expect("ids");
        let ids: Vec<&str> = ids.lines().collect();
        assert_eq!(ids.len(), c.in_verint);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(c.expected_missing, c.voice - c.in_verint);
        let per_record = c.uncompressed_bytes as f64 / 3000.0;
        assert!((2000.0..2900.0).contains(&per_record), "{per_record}");
        let mut lines = 0;
        let mut files = vec![c.ctr_dir.clone()];
        while let Some(p) = files.pop() {
            if p.is_dir() {
                for e in std::fs::read_dir(&p).expect("dir") {
                    files.push(e.expect("entry").path());
                }
            } else {
                let mut s = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&p).expect("file"))
                    .read_to_string(&mut s)
                    .expect("gzip");
                for l in s.lines() {
                    serde_json::from_str::<Value>(l).expect("a whole record");
                    lines += 1;
                }
            }
        }
        assert_eq!(lines, 3000);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
