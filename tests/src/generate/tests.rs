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

/// Reads objects the way design §4 says; returns (records with a ContactId, malformed).
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
    let connect: BTreeSet<(&str, &str)> = d
        .connect
        .iter()
        .map(|c| (c.instance_id.as_str(), c.id.as_str()))
        .collect();
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
        // DescribeContact knows every contact, of either instance.
        assert!(connect.contains(&(t.instance_id.as_str(), t.contact_id.as_str())));
        assert_eq!(t.ours, t.instance_id == s.instance_id);
        assert_eq!(
            latest["InstanceARN"],
            s.instance_arn(&t.instance_id).as_str()
        );
        // A copy arrives after the disconnect, in an object named by the hour of its oldest
        // record, which arrived at most one 10-minute buffer earlier.
        for h in &t.arrival_hours {
            let ended = t.disconnect.expect("ended");
            assert!(*h >= floor_hour(ended - Duration::minutes(10)), "{t:?}");
        }
    }
    // Every scenario is there.
    let kinds: BTreeSet<&str> = d.truth.iter().map(|t| t.kind.as_str()).collect();
    for k in [
        "voice",
        "abandoned",
        "chat",
        "task",
        "transfer_first",
        "transfer_second",
        "transfer_third",
        "queue_transfer_from",
        "queue_transfer",
        "callback_request",
        "queued_callback",
        "ivr_only",
        "ivr_transfer",
        "deleted",
        "partly_deleted",
        "ivr_agent",
        "long",
    ] {
        assert!(kinds.contains(k), "{k}");
    }
    assert!(
        d.truth.iter().any(|t| !t.ours),
        "the other instance has contacts"
    );
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
    // Recordings are whole 8 kHz 16-bit PCM WAVs (stereo or mono) of a size in range.
    for r in &d.recordings {
        let w = parse_wav(&r.body);
        assert_eq!(w.data_len, r.body.len() as u64 - 44, "{}", r.key);
        let size = r.body.len() as u64;
        assert!(size < s.recording_bytes.end && size + 3 >= s.recording_bytes.start);
        assert_eq!(r.storage_class, None);
    }
    let channels: BTreeSet<u16> = d
        .recordings
        .iter()
        .map(|r| parse_wav(&r.body).channels)
        .collect();
    assert_eq!(
        channels,
        BTreeSet::from([1, 2]),
        "mono and stereo recordings"
    );
    assert!(d.redacted.is_empty(), "no redacted recordings by default");
    assert!(!d.truth.iter().any(|t| t.truncated || t.archived));
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

/// A WAV header read the way a worker reads one (design §10): `RIFF`/`WAVE`, a PCM `fmt `
/// chunk whose byte rate and block align agree with its channels, and the `data` size.
#[derive(Debug)]
struct Wav {
    channels: u16,
    byte_rate: u32,
    /// What the header's `data` chunk says.
    data_len: u64,
}

fn parse_wav(b: &[u8]) -> Wav {
    assert!(b.len() >= 44, "a whole header");
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..12], b"WAVE");
    assert_eq!(&b[12..16], b"fmt ");
    assert_eq!(u32_at(16), 16, "a PCM fmt chunk");
    assert_eq!(u16_at(20), 1, "PCM");
    let channels = u16_at(22);
    assert_eq!(u32_at(24), 8000, "8 kHz");
    let byte_rate = u32_at(28);
    match channels {
        1 => assert_eq!(byte_rate, 16_000, "mono"),
        2 => assert_eq!(byte_rate, 32_000, "stereo"),
        n => panic!("{n} channels"),
    }
    assert_eq!(u16_at(32), 2 * channels, "block align");
    assert_eq!(u16_at(34), 16, "16-bit");
    assert_eq!(&b[36..40], b"data");
    let data_len = u64::from(u32_at(40));
    assert_eq!(u64::from(u32_at(4)), 36 + data_len, "the RIFF size");
    assert_eq!(data_len % u64::from(2 * channels), 0, "whole frames");
    Wav {
        channels,
        byte_rate,
        data_len,
    }
}

/// Whole seconds of `data` bytes, rounded.
fn rounded_secs(data: u64, byte_rate: u32) -> i64 {
    let rate = u64::from(byte_rate);
    ((data + rate / 2) / rate) as i64
}

/// The audio an object holds after its 44-byte header.
fn held(o: &Object) -> u64 {
    o.body.len() as u64 - 44
}

/// The latest copy of every contact's CTR, by id.
fn latest_ctrs(s: &DaySpec, d: &Day) -> HashMap<String, Value> {
    let (records, _) = read_objects(&s.ctr_prefix, &d.ctr_objects);
    let mut out: HashMap<String, Value> = HashMap::new();
    for (_, v) in records {
        let id = v["ContactId"].as_str().expect("id").to_owned();
        let newer = out
            .get(&id)
            .is_none_or(|o| o["LastUpdateTimestamp"].as_str() < v["LastUpdateTimestamp"].as_str());
        if newer {
            out.insert(id, v);
        }
    }
    out
}

/// A CTR timestamp: RFC 3339, whole seconds, UTC (`2024-05-14T14:03:00Z`).
fn ctr_time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().expect("a timestamp");
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .and_utc()
}

/// The `Recordings[]` entry of a CTR at `bucket/key`.
fn ctr_recording<'a>(ctr: &'a Value, bucket: &str, key: &str) -> &'a Value {
    let location = format!("{bucket}/{key}");
    ctr["Recordings"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["Location"] == location.as_str()))
        .unwrap_or_else(|| panic!("{location} in Recordings[]"))
}

fn objects_by_key(objects: &[Object]) -> HashMap<(&str, &str), &Object> {
    objects
        .iter()
        .map(|o| ((o.bucket.as_str(), o.key.as_str()), o))
        .collect()
}

/// What identifies a day's contacts, whatever the knobs: id, kind, instance, initiation.
fn contacts_of(d: &Day) -> Vec<(String, String, String, DateTime<Utc>)> {
    d.truth
        .iter()
        .map(|t| {
            (
                t.contact_id.clone(),
                t.kind.clone(),
                t.instance_id.clone(),
                t.initiation,
            )
        })
        .collect()
}

#[test]
fn every_recording_lasts_what_its_ctr_says() {
    let s = spec(42);
    let d = day(&s);
    let ctrs = latest_ctrs(&s, &d);
    let objects = objects_by_key(&d.recordings);
    let mut checked = BTreeMap::<u16, usize>::new();
    for t in &d.truth {
        let ctr = &ctrs[&t.contact_id];
        for r in ctr["Recordings"].as_array().expect("an array") {
            if r["MediaStreamType"] == "CHAT" {
                assert!(r["StartTimestamp"].is_null() && r["StopTimestamp"].is_null());
                continue;
            }
            let start = ctr_time(&r["StartTimestamp"]);
            let stop = ctr_time(&r["StopTimestamp"]);
            assert!(t.initiation <= start && start <= stop, "{r}");
            assert!(Some(stop) <= t.disconnect, "{r}");
            if r["MediaStreamType"] != "AUDIO" || r["Status"] == "DELETED" {
                continue;
            }
            let (b, k) = r["Location"]
                .as_str()
                .and_then(|l| l.split_once('/'))
                .expect("bucket/key");
            let o = objects[&(b, k)];
            let w = parse_wav(&o.body);
            assert_eq!(
                w.data_len,
                held(o),
                "{k}: the header says what the object holds"
            );
            assert_eq!(
                (stop - start).num_seconds(),
                rounded_secs(w.data_len, w.byte_rate),
                "{k}: Stop − Start is the WAV's duration"
            );
            *checked.entry(w.channels).or_default() += 1;
        }
    }
    assert!(checked[&1] > 10 && checked[&2] > 50, "{checked:?}");
}

#[test]
fn truncated_recordings_are_shorter_than_their_ctrs_say_and_one_header_claims_more() {
    let mut s = spec(42);
    s.truncated = 3;
    let d = day(&s);
    let plain = day(&spec(42));
    assert_eq!(contacts_of(&d), contacts_of(&plain), "the same contacts");
    let ctrs = latest_ctrs(&s, &d);
    let objects = objects_by_key(&d.recordings);
    let truncated: Vec<&Truth> = d.truth.iter().filter(|t| t.truncated).collect();
    assert_eq!(truncated.len(), 3);
    let mut header_longer = 0;
    for t in &truncated {
        assert!(t.missing() && t.ours, "{}: a call to recover", t.contact_id);
        assert_eq!(t.initiation.date_naive(), s.date);
        let ingest = t.recordings_to_ingest();
        assert_eq!(ingest.len(), 1);
        let (b, k) = &ingest[0];
        let o = objects[&(b.as_str(), k.as_str())];
        let w = parse_wav(&o.body);
        let r = ctr_recording(&ctrs[&t.contact_id], b, k);
        let expected =
            (ctr_time(&r["StopTimestamp"]) - ctr_time(&r["StartTimestamp"])).num_seconds();
        assert!(expected >= 60, "{expected}");
        // What the worker would measure, from the header and from the bytes streamed.
        let holds = held(o) as f64 / f64::from(w.byte_rate);
        assert!(
            holds < 65_536.0 / 16_000.0,
            "{holds}: what recording_bytes allows"
        );
        let tolerance = (expected as f64 * 0.02).max(5.0);
        assert!(
            expected as f64 - holds > tolerance,
            "truncated beyond tolerance"
        );
        if w.data_len > held(o) {
            header_longer += 1;
            assert_eq!(
                rounded_secs(w.data_len, w.byte_rate),
                expected,
                "the header claims the whole recording"
            );
        } else {
            assert_eq!(w.data_len, held(o), "a well-formed short WAV");
        }
    }
    assert!((1..3).contains(&header_longer), "{header_longer}");
    // Nothing else is cut.
    for t in d.truth.iter().filter(|t| !t.truncated) {
        for (b, k) in t.recordings_to_ingest() {
            let o = objects[&(b.as_str(), k.as_str())];
            assert_eq!(parse_wav(&o.body).data_len, held(o));
        }
    }
    assert!(summary(&d).contains("3 truncated recordings (2 with a header longer"));
}

#[test]
fn truncated_and_archived_calls_are_taken_from_calls_verint_held_when_too_few_are_missed() {
    let mut s = spec(5);
    s.calls = 80;
    s.verint_miss_rate = 0.0;
    let before = day(&s).truth.iter().filter(|t| t.missing()).count();
    s.truncated = 10;
    s.archived = 10;
    let d = day(&s);
    assert_eq!(d.truth.iter().filter(|t| t.truncated).count(), 10);
    assert_eq!(d.truth.iter().filter(|t| t.archived).count(), 10);
    assert!(
        d.truth
            .iter()
            .filter(|t| t.truncated || t.archived)
            .all(|t| t.missing() && !t.in_verint)
    );
    assert!(d.truth.iter().filter(|t| t.missing()).count() >= before.max(20));
    let verint: BTreeSet<&str> = d
        .verint
        .iter()
        .filter_map(|v| v.amazon_contact_id.as_deref())
        .collect();
    for t in &d.truth {
        assert_eq!(verint.contains(t.contact_id.as_str()), t.in_verint);
    }
}

#[test]
fn archived_recordings_are_uploaded_as_glacier() {
    let mut s = spec(42);
    s.archived = 2;
    s.truncated = 1;
    let d = day(&s);
    let archived: Vec<&Truth> = d.truth.iter().filter(|t| t.archived).collect();
    assert_eq!(archived.len(), 2);
    assert!(archived.iter().all(|t| t.missing() && !t.truncated));
    let expected: BTreeSet<String> = archived
        .iter()
        .flat_map(|t| t.recordings_to_ingest())
        .map(|(_, k)| k)
        .collect();
    let glacier: BTreeSet<String> = d
        .recordings
        .iter()
        .filter(|o| o.storage_class.as_deref() == Some("GLACIER"))
        .map(|o| o.key.clone())
        .collect();
    assert_eq!(glacier, expected);
    assert!(
        d.recordings
            .iter()
            .chain(&d.ctr_objects)
            .all(|o| o.storage_class.is_none() || o.storage_class.as_deref() == Some("GLACIER"))
    );
    assert!(d.ctr_objects.iter().all(|o| o.storage_class.is_none()));
    assert!(summary(&d).contains("2 archived (GLACIER)"));
}

#[test]
fn the_knobs_leave_the_rest_of_the_day_as_it_was() {
    let plain = day(&spec(42));
    let mut s = spec(42);
    s.truncated = 2;
    s.archived = 2;
    s.redacted = 0.5;
    s.redacted_missing = 2;
    let d = day(&s);
    assert_eq!(contacts_of(&d), contacts_of(&plain));
    let keys = |d: &Day| -> Vec<String> {
        d.ctr_objects
            .iter()
            .chain(&d.recordings)
            .map(|o| o.key.clone())
            .collect()
    };
    assert_eq!(keys(&d), keys(&plain));
    let cut: BTreeSet<String> = d
        .truth
        .iter()
        .filter(|t| t.truncated)
        .flat_map(|t| t.recordings_to_ingest())
        .map(|(_, k)| k)
        .collect();
    for (a, b) in d.recordings.iter().zip(&plain.recordings) {
        if !cut.contains(&a.key) {
            assert_eq!(a.body, b.body, "{}", a.key);
        }
    }
}

#[test]
fn redacted_recordings_are_named_as_contact_lens_names_them() {
    let mut s = spec(42);
    s.redacted = 1.0;
    s.redacted_missing = 2;
    let d = day(&s);
    let objects = objects_by_key(&d.recordings);
    let redacted = objects_by_key(&d.redacted);
    let recorded = |t: &&Truth| t.channel == "VOICE" && !t.recordings_to_ingest().is_empty();
    let without: Vec<&Truth> = d
        .truth
        .iter()
        .filter(recorded)
        .filter(|t| t.redacted_key.is_none())
        .collect();
    assert_eq!(without.len(), 2, "only the calls chosen to lack one");
    assert!(without.iter().all(|t| t.missing()));
    let with: Vec<&Truth> = d
        .truth
        .iter()
        .filter(|t| t.redacted_key.is_some())
        .collect();
    assert_eq!(with.len(), d.redacted.len());
    assert!(
        with.iter().any(|t| !t.ours),
        "the other instance's calls too"
    );
    for t in &with {
        assert!(recorded(t), "{}", t.contact_id);
        let key = t.redacted_key.as_deref().expect("a key");
        // Analysis/Voice/Redacted/2024/05/14/{id}_call_recording_redacted_2024-05-14T21:14:16Z.wav
        let rest = key
            .strip_prefix("Analysis/Voice/Redacted/")
            .expect("the default prefix");
        assert_eq!(&rest[..11], t.initiation.format("%Y/%m/%d/").to_string());
        let name = rest[11..].strip_suffix(".wav").expect(".wav");
        let (id, stamp) = name
            .split_once("_call_recording_redacted_")
            .expect("Contact Lens's name");
        assert_eq!(id, t.contact_id);
        assert_eq!(stamp.len(), 20, "{stamp}");
        let written = ctr_time(&json!(stamp));
        let ended = t.disconnect.expect("ended");
        assert!(ended < written && written < ended + Duration::minutes(15));
        let o = redacted[&(s.recordings_bucket.as_str(), key)];
        let w = parse_wav(&o.body);
        assert_eq!(w.data_len, held(o));
        // As long as (the agent's) recording of the call.
        assert!(
            t.recordings_to_ingest().iter().any(|(b, k)| {
                let r = objects[&(b.as_str(), k.as_str())];
                held(r) == w.data_len && parse_wav(&r.body).channels == w.channels
            }),
            "{key}"
        );
    }
    assert!(summary(&d).contains(&format!("{} redacted recordings", d.redacted.len())));

    // A share, and none by default.
    let mut half = spec(42);
    half.redacted = 0.5;
    let h = day(&half);
    let share = h.redacted.len() as f64 / d.redacted.len() as f64;
    assert!((0.35..0.65).contains(&share), "{share}");
    assert!(day(&spec(42)).redacted.is_empty());
}

#[test]
fn transfer_chains_link_their_legs_as_ctrs_and_describe_contact_do() {
    let s = spec(42);
    let d = day(&s);
    let ctrs = latest_ctrs(&s, &d);
    let truth: HashMap<&str, &Truth> = d.truth.iter().map(|t| (t.contact_id.as_str(), t)).collect();
    let id_of = |v: &Value| v.as_str().map(str::to_owned);
    for t in &d.truth {
        let c = &ctrs[&t.contact_id];
        assert_eq!(id_of(&c["InitialContactId"]), t.initial_contact_id);
        assert_eq!(id_of(&c["PreviousContactId"]), t.previous_contact_id);
        match &t.previous_contact_id {
            Some(prev) => {
                let p = truth[prev.as_str()];
                assert_eq!(ctrs[prev]["NextContactId"], t.contact_id.as_str());
                assert_eq!(t.initial_contact_id.as_deref(), Some(p.chain_id()));
                assert_eq!(t.instance_id, p.instance_id);
                assert!(Some(t.initiation) >= p.disconnect);
            }
            None => assert_eq!(t.initial_contact_id, None, "a first leg names no initial"),
        }
        if let Some(next) = c["NextContactId"].as_str() {
            assert_eq!(
                truth[next].previous_contact_id.as_deref(),
                Some(t.contact_id.as_str())
            );
        }
    }
    for c in &d.connect {
        let t = truth[c.id.as_str()];
        assert_eq!(c.initial_contact_id, t.initial_contact_id);
        assert_eq!(c.previous_contact_id, t.previous_contact_id);
        assert_eq!(c.initiation_method, ctrs[&c.id]["InitiationMethod"]);
    }

    // The chains, legs in order.
    let mut chains: BTreeMap<&str, Vec<&Truth>> = BTreeMap::new();
    for t in &d.truth {
        if t.initial_contact_id.is_some() || ctrs[&t.contact_id]["NextContactId"].is_string() {
            chains.entry(t.chain_id()).or_default().push(t);
        }
    }
    for legs in chains.values_mut() {
        legs.sort_by_key(|t| t.initiation);
        assert_eq!(legs[0].initial_contact_id, None);
    }
    let method = |t: &Truth| ctrs[&t.contact_id]["InitiationMethod"].clone();
    let shapes: BTreeSet<Vec<&str>> = chains
        .values()
        .map(|legs| legs.iter().map(|t| t.kind.as_str()).collect())
        .collect();
    for shape in [
        vec!["transfer_first", "transfer_second"],
        vec!["transfer_first", "transfer_second", "transfer_third"],
        vec!["queue_transfer_from", "queue_transfer"],
        vec!["callback_request", "queued_callback"],
        vec!["ivr_only", "ivr_transfer"],
    ] {
        assert!(shapes.contains(&shape), "{shape:?} in {shapes:?}");
    }
    for legs in chains.values() {
        for (k, t) in legs.iter().enumerate() {
            let expected = match (k, t.kind.as_str()) {
                (0, _) => "INBOUND",
                (_, "queue_transfer") => "QUEUE_TRANSFER",
                (_, "queued_callback") => "CALLBACK",
                _ => "TRANSFER",
            };
            assert_eq!(method(t), expected, "{}", t.kind);
            // A leg that reached no agent has no recording: it is not a gap.
            let no_agent = ["queue_transfer_from", "callback_request", "ivr_only"];
            assert_eq!(
                no_agent.contains(&t.kind.as_str()),
                t.s3_recordings.is_empty(),
                "{}",
                t.kind
            );
            if t.s3_recordings.is_empty() {
                assert!(!t.eligible() && !t.in_verint);
                assert!(ctrs[&t.contact_id]["Agent"].is_null());
            }
        }
    }
    // The queued callback points at the call it was asked on.
    let callback = d
        .truth
        .iter()
        .find(|t| t.kind == "queued_callback")
        .expect("a queued callback");
    assert_eq!(callback.initial_contact_id, callback.previous_contact_id);
    assert_eq!(
        truth[callback.previous_contact_id.as_deref().expect("previous")].kind,
        "callback_request"
    );
    assert!(callback.eligible());
    // The IVR-only leg has neither queue nor recording.
    let ivr = d.truth.iter().find(|t| t.kind == "ivr_only").expect("one");
    assert!(ctrs[&ivr.contact_id]["Queue"].is_null());
    assert!(ctrs[&ivr.contact_id]["Recording"].is_null());
    // A chain with its middle leg missing, and one whose legs start on two days.
    assert!(
        chains.values().any(|legs| {
            legs.len() == 3 && legs[1].missing() && legs[0].eligible() && legs[2].eligible()
        }),
        "{:#?}",
        chains.values().filter(|l| l.len() == 3).collect::<Vec<_>>()
    );
    let next_day = s.date.succ_opt().expect("a next day");
    assert!(
        chains.values().any(|legs| {
            legs[0].initiation.date_naive() == s.date
                && legs
                    .last()
                    .is_some_and(|t| t.initiation.date_naive() == next_day)
        }),
        "{:?}",
        chains
            .values()
            .map(|l| l.iter().map(|t| (t.initiation, t.ours)).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert!(summary(&d).contains("crossing midnight"));
}

#[test]
fn the_other_instance_has_contacts_of_every_kind_described_and_recorded() {
    let mut s = spec(9);
    s.calls = 1200;
    let d = day(&s);
    let others: Vec<&Truth> = d.truth.iter().filter(|t| !t.ours).collect();
    assert!(others.iter().all(|t| t.instance_id == s.other_instance_id));
    assert!(
        d.truth
            .iter()
            .filter(|t| t.ours)
            .all(|t| t.instance_id == s.instance_id)
    );
    let kinds: BTreeSet<&str> = others.iter().map(|t| t.kind.as_str()).collect();
    assert!(kinds.len() >= 6, "{kinds:?}");
    let other = [s.other_instance_id.as_str()];
    let both = [s.instance_id.as_str(), s.other_instance_id.as_str()];
    assert!(others.iter().all(|t| !t.eligible() && !t.missing()));
    let eligible = others.iter().filter(|t| t.eligible_in(&other)).count();
    assert!(eligible > 10, "{eligible}");
    assert!(
        others.iter().any(|t| t.missing_in(&other)),
        "{:?}",
        others
            .iter()
            .filter(|t| t.eligible_in(&other))
            .map(|t| (t.kind.as_str(), t.in_verint))
            .collect::<Vec<_>>()
    );
    assert!(others.iter().any(|t| t.eligible_in(&other) && t.in_verint));
    assert_eq!(
        d.truth.iter().filter(|t| t.eligible_in(&both)).count(),
        d.truth.iter().filter(|t| t.eligible()).count() + eligible
    );
    // Their recordings are in the shared bucket under their own alias.
    let keys: BTreeSet<&str> = d.recordings.iter().map(|o| o.key.as_str()).collect();
    for t in others.iter().filter(|t| t.eligible_in(&other)) {
        for (b, k) in t.recordings_to_ingest() {
            assert_eq!(b, s.recordings_bucket);
            assert!(k.starts_with("connect/other/CallRecordings/"), "{k}");
            assert!(keys.contains(k.as_str()));
        }
    }
    // DescribeContact knows them under their instance.
    let arn = s.instance_arn(&s.other_instance_id);
    let described: Vec<_> = d
        .connect
        .iter()
        .filter(|c| c.instance_id == s.other_instance_id)
        .collect();
    assert_eq!(described.len(), others.len());
    assert!(described.iter().all(|c| c.arn.starts_with(&arn)));
    assert!(summary(&d).contains(&format!("{} contacts of the other instance", others.len())));
}
