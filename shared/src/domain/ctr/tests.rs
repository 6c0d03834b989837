use std::io::Write;

use super::*;

#[test]
fn a_location_splits_at_the_first_slash_and_keeps_colons() {
    let l =
        S3Location::parse("rec/connect/acme/CallRecordings/2024/05/14/id_20240514T14:03_UTC.wav")
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
