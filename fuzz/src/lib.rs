//! What each fuzz target does with one input: the calls the deployed code makes on bytes that
//! come from outside (a CTR object, a planner payload, an SQS event, a queue message, an answer
//! from Verint), and the invariants that must hold whatever the bytes are.
//!
//! The fuzz targets in `fuzz_targets/` call these functions, and so does the stable regression
//! test `tests/tests/fuzz_regressions.rs` (it includes this file as a module), so the committed
//! corpus in `fuzz/regressions/` is replayed through exactly the calls that were fuzzed. Any
//! panic, including a failed invariant, is a finding. See docs/fuzzing.md.

use std::sync::OnceLock;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, TimeDelta, Utc};
use recovery::adapters::verint::answer;
use recovery::config::Config;
use recovery::domain::ctr::{S3Location, read_object};
use recovery::domain::message::WorkMessage;
use recovery::flows::backfill::{SliceMessage, is_backfill, slices};
use recovery::flows::plan::{Request, parse_event};

/// The fixed "now" a manual payload is checked against, so that a corpus replays the same way on
/// any day.
pub const NOW: &str = "2026-12-04T12:00:00Z";

fn now() -> DateTime<Utc> {
    static NOW_TS: OnceLock<DateTime<Utc>> = OnceLock::new();
    *NOW_TS.get_or_init(|| recovery::domain::time::parse_ts(NOW).expect("NOW is an RFC 3339 time"))
}

/// A valid configuration with every optional setting at its default, built once (as the
/// planner builds its own, once per process).
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let vars = [
            ("CTR_BUCKET", "ctr"),
            (
                "CONNECT_INSTANCE_ID",
                "11111111-2222-3333-4444-555555555555",
            ),
            ("WORK_QUEUE_URL", "http://127.0.0.1:5055/123456789012/work"),
            (
                "DEAD_LETTER_QUEUE_URL",
                "http://127.0.0.1:5055/123456789012/dlq",
            ),
            ("STATE_BUCKET", "state"),
            ("VERINT_DAS_URL", "https://verint.example.com/das"),
            ("VERINT_INGEST_URL", "https://verint.example.com/ingest"),
            ("VERINT_API_KEY_ID", "kid"),
            ("VERINT_API_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHM"),
        ];
        Config::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("the fuzzing configuration is valid")
    })
}

/// The streaming CTR reader over an in-memory object (plain, NDJSON, concatenated JSON, gzip,
/// anything). Reading a slice can never fail at the source, so it never returns an error. It
/// appends to what `out` already holds (a record of an earlier object stays), every record it
/// appends carries a `ContactId`, and it appends exactly as many as it counts.
pub fn ctr_reader(data: &[u8]) {
    // An earlier object's record, which reading this one (even a damaged one) must leave alone.
    let mut out: Vec<Option<usize>> = vec![None];
    let stats = read_object(
        data,
        |r| {
            // What the scan does next with a record: its S3 recordings and their locations.
            for (location, _deleted) in r.s3_recordings() {
                let _ = S3Location::parse(location);
            }
            r.contact_id.as_deref().map(str::len)
        },
        &mut out,
    )
    .expect("read_object returned an error on an in-memory slice");
    assert_eq!(
        out.first(),
        Some(&None),
        "an earlier object's record was lost"
    );
    let appended = &out[1..];
    assert!(
        appended.iter().all(Option::is_some),
        "a record without a ContactId was kept"
    );
    assert_eq!(
        appended.len() as u64,
        stats.records,
        "the records kept and the records counted differ: {stats:?}"
    );
}

/// The planner's reading of its invocation payload, on any JSON value (inputs that are not JSON
/// are skipped: Lambda hands the planner parsed JSON only). An accepted manual window is
/// non-empty, ends no later than now and is no longer than `MAX_MANUAL_SPAN`; the planner then
/// decides whether it is a backfill and cuts it into slices.
pub fn manual_payload(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = config();
    match parse_event(&event, config, now()) {
        Ok(Request::Manual { window, .. }) => {
            assert!(window.start < window.end, "an empty window was accepted");
            assert!(
                window.end <= now(),
                "a window ending in the future was accepted"
            );
            let max = TimeDelta::from_std(config.max_manual_span).unwrap_or(TimeDelta::MAX);
            assert!(
                window.end - window.start <= max,
                "a window over MAX_MANUAL_SPAN was accepted"
            );
            if is_backfill(&window) {
                let pieces = slices(&window);
                assert_eq!(pieces.first().map(|s| s.start), Some(window.start));
                assert_eq!(pieces.last().map(|s| s.end), Some(window.end));
            }
        }
        Ok(Request::Automatic { .. }) => {
            assert_eq!(
                event.get("detail-type").and_then(|d| d.as_str()),
                Some("Scheduled Event"),
                "an automatic run from an event that is not a schedule"
            );
        }
        Err(_) => {}
    }
}

/// The worker's reading of an SQS event: the event, its records as messages to work (one each),
/// and each record's body as a work message. The planner reads a planning-queue record's body as
/// a slice message, so each body is read that way too.
pub fn sqs_event(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<SqsEvent>(data) else {
        return;
    };
    let messages = worker::incoming(&event);
    assert_eq!(
        messages.len(),
        event.records.len(),
        "a record was lost or invented"
    );
    for m in &messages {
        let _ = WorkMessage::parse(&m.body);
        let _ = SliceMessage::parse(&m.body);
    }
}

/// A queue message's body, as the worker reads a work message and the planner a slice message.
/// A body that is accepted survives being written and read again unchanged.
pub fn work_message(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = WorkMessage::parse(body) {
        let written = serde_json::to_string(&m).expect("a work message serialises");
        let again = WorkMessage::parse(&written).expect("a written work message is read again");
        assert_eq!(again, m, "a work message changed on a round trip");
    }
    if let Ok(m) = SliceMessage::parse(body) {
        let written = serde_json::to_string(&m).expect("a slice message serialises");
        let again = SliceMessage::parse(&written).expect("a written slice message is read again");
        assert_eq!(again, m, "a slice message changed on a round trip");
    }
}

/// Verint's answers: a DAS page, a contact look-up and an ingest answer, each over the same
/// bytes. For the look-up, the first byte gives the length of the id asked for, taken from the
/// bytes that follow it; the rest is the body. An accepted ingest answer has an interaction id.
pub fn verint_answers(data: &[u8]) {
    let _ = answer::das_page(data);
    if let Ok(id) = answer::ingest(data) {
        assert!(
            !id.trim().is_empty(),
            "an ingest answer with a blank interactionId was accepted"
        );
    }
    if let Some((&n, rest)) = data.split_first() {
        let (asked, body) = rest.split_at(usize::from(n).min(rest.len()));
        let asked = String::from_utf8_lossy(asked);
        let _ = answer::contact(body, &asked);
    }
}
