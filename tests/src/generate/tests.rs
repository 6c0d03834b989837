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
