use super::*;
use crate::domain::checkpoint::HourDigest;
use crate::domain::time::parse_ts;
use chrono::DateTime;
use chrono::Utc;

fn ts(s: &str) -> DateTime<Utc> {
    parse_ts(s).expect("valid")
}

#[test]
fn an_hours_digest_does_not_depend_on_listing_order_but_on_every_key() {
    let h = ts("2026-11-27T10:00:00Z");
    let a = HourDigest::of(h, ["p/2026/11/27/10/b", "p/2026/11/27/10/a"]);
    let b = HourDigest::of(h, ["p/2026/11/27/10/a", "p/2026/11/27/10/b"]);
    assert_eq!(a, b);
    assert_eq!(a.objects, 2);
    assert_eq!(a.hour, "2026-11-27T10:00:00Z");
    assert_eq!(a.sha256.len(), 64);
    let late = HourDigest::of(
        h,
        [
            "p/2026/11/27/10/a",
            "p/2026/11/27/10/b",
            "p/2026/11/27/10/c",
        ],
    );
    assert_ne!(a.sha256, late.sha256);
    let renamed = HourDigest::of(h, ["p/2026/11/27/10/a", "p/2026/11/27/10/c"]);
    assert_eq!(renamed.objects, a.objects);
    assert_ne!(renamed.sha256, a.sha256, "same count, other keys");
    // "ab" + "c" and "a" + "bc" are different listings.
    assert_ne!(
        HourDigest::of(h, ["ab", "c"]).sha256,
        HourDigest::of(h, ["a", "bc"]).sha256
    );
    // SHA-256 of the empty string: an empty hour.
    assert_eq!(
        HourDigest::of(h, []).sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn a_checkpoint_written_before_late_sweeps_still_parses() {
    let old =
        r#"{"next_hour":"2026-11-27T10:00:00Z","updated_at":"2026-11-27T10:31:00Z","run_id":"r"}"#;
    let c: Checkpoint = serde_json::from_str(old).expect("parses");
    assert!(c.hours.is_empty());
    assert_eq!(c.next_hour(), Some(ts("2026-11-27T10:00:00Z")));
}

#[test]
fn a_next_hour_off_the_hour_is_floored() {
    let c = Checkpoint {
        next_hour: "2026-11-27T10:42:17Z".into(),
        updated_at: String::new(),
        run_id: "r".into(),
        hours: vec![],
    };
    assert_eq!(c.next_hour(), Some(ts("2026-11-27T10:00:00Z")));
    let bad = Checkpoint {
        next_hour: "tomorrow".into(),
        ..c
    };
    assert_eq!(bad.next_hour(), None);
}

#[test]
fn a_checkpoint_round_trips_with_its_hours() {
    let c = Checkpoint {
        next_hour: "2026-11-27T10:00:00Z".into(),
        updated_at: "2026-11-27T10:31:00Z".into(),
        run_id: "r".into(),
        hours: vec![HourDigest::of(ts("2026-11-27T09:00:00Z"), ["k"])],
    };
    let json = serde_json::to_string(&c).expect("serialises");
    assert!(json.contains(r#""hours":[{"hour":"2026-11-27T09:00:00Z","objects":1,"sha256":""#));
    assert_eq!(
        serde_json::from_str::<Checkpoint>(&json).expect("parses"),
        c
    );
}
