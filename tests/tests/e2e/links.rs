//! The worker on real links (issue 9): the simulator reads ingest bodies at a WAN link's rate, or
//! stops reading mid-body. A long upload that keeps moving must arrive on its first attempt; a
//! stalled one must be abandoned after `STALL_TIMEOUT` and recovered by the next receive.

use std::time::{Duration, Instant};

use local_stack::generate::Day;
use local_stack::sim::Faults;
use recovery::domain::report::OutcomeStatus;
use sha2::{Digest, Sha256};

use local_stack::claims::*;

use crate::support::*;

const INGEST_ROUTE: &str = "POST /ingest/recovered-calls";

/// Plans exactly one missing call of `day` (the first by id) over a one-second window around its
/// start, after replacing its first recording in S3 with `bytes` pseudo-random bytes. Returns
/// its id, the run id and the new recording's SHA-256.
async fn one_call_of(
    stack: &Stack,
    day: &Day,
    date: chrono::NaiveDate,
    bytes: usize,
) -> (String, String, String) {
    let window = day_window(date);
    let id = sorted(&expected_missing(day, window.start, window.end))
        .into_iter()
        .next()
        .expect("the day has a missing call");
    let truth = day
        .truth
        .iter()
        .find(|t| t.contact_id == id)
        .expect("generated");
    let (bucket, key) = truth.recordings_to_ingest()[0].clone();
    // A WAV (the worker reads its header as it streams, design §10) of `bytes` in all.
    let data = (bytes - 44) as u32;
    let mut body: Vec<u8> = Vec::with_capacity(bytes);
    for part in [
        &b"RIFF"[..],
        &(36 + data).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &2u16.to_le_bytes(),
        &8000u32.to_le_bytes(),
        &32_000u32.to_le_bytes(),
        &4u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data.to_le_bytes(),
    ] {
        body.extend_from_slice(part);
    }
    body.extend((44..bytes).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0]));
    let sha = hex::encode(Sha256::digest(&body));
    stack
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(body.into())
        .send()
        .await
        .expect("recording replaced");
    let planner = stack.planner().await.expect("planner");
    let start = truth.initiation;
    let report = plan_manual(
        &planner,
        recovery::domain::time::Window {
            start,
            end: start + chrono::TimeDelta::seconds(1),
        },
    )
    .await
    .expect("plan");
    assert_eq!(
        report.missing_contact_ids,
        vec![id.clone()],
        "only the chosen call is queued"
    );
    (id, report.run_id, sha)
}

#[tokio::test]
async fn a_call_whose_upload_outlasts_a_minute_on_a_slow_link_is_recovered_on_its_first_attempt() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(51, date, 20).await.expect("day");
    // 24 MiB at 256 KiB/s: 96 s on the wire, well past the 60 s that a total timeout allowed.
    let bytes = 24 << 20;
    let rate = 256 << 10;
    let (id, run_id, sha) = one_call_of(&stack, &day, date, bytes).await;
    stack.sim.state().set_faults(Faults {
        read_bytes_per_sec: rate,
        ..Faults::default()
    });
    let worker = stack.worker().await.expect("worker");

    let started = Instant::now();
    stack
        .drain(&worker, Duration::from_secs(600))
        .await
        .expect("drained");
    let secs = started.elapsed().as_secs();

    let ingested = stack.sim.state().ingested();
    assert_eq!(ingested.len(), 1, "the call is in Verint");
    assert_eq!(ingested[0].contact_id, id);
    assert_eq!(ingested[0].audio[0].bytes, bytes as u64);
    assert_eq!(ingested[0].audio[0].sha256, sha, "byte for byte");
    let stats = stack.sim.state().stats();
    assert_eq!(
        stats.requests.get(INGEST_ROUTE),
        Some(&1),
        "one upload, no retry"
    );
    let outcomes = stack.store().outcomes(&run_id).await.expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        (outcomes[0].status, outcomes[0].attempt),
        (OutcomeStatus::Recovered, 1),
        "recovered on the first receive"
    );
    assert!(
        secs >= bytes as u64 / rate * 9 / 10,
        "the link really held it back ({secs} s)"
    );
    assert_dead_letter_queue_empty(&stack).await;
}

#[tokio::test]
async fn a_stalled_upload_is_abandoned_after_the_stall_timeout_and_recovered_by_the_next_receive() {
    let stack = Stack::new(&[
        ("STALL_TIMEOUT", "3s"),
        ("RETRY_BASE", "1s"),
        ("RETRY_MAX", "2s"),
    ])
    .await
    .expect("stack");
    let date = past_day();
    let day = stack.day(52, date, 20).await.expect("day");
    // Larger than the sockets' buffers, so a server that stops reading holds the upload back.
    let bytes = 32 << 20;
    let (id, run_id, sha) = one_call_of(&stack, &day, date, bytes).await;
    stack.sim.state().set_faults(Faults {
        stall_first: 1,
        stall_after_bytes: 1 << 20,
        ..Faults::default()
    });
    let worker = stack.worker().await.expect("worker");

    let started = Instant::now();
    stack
        .drain(&worker, Duration::from_secs(180))
        .await
        .expect("drained");
    let secs = started.elapsed().as_secs();

    let stats = stack.sim.state().stats();
    assert_eq!(
        stats.faults.get("stall"),
        Some(&1),
        "the first upload stalled"
    );
    assert_eq!(
        stats.requests.get(INGEST_ROUTE),
        Some(&2),
        "abandoned, then sent again"
    );
    let ingested = stack.sim.state().ingested();
    assert_eq!(ingested.len(), 1);
    assert_eq!(
        (
            ingested[0].contact_id.as_str(),
            ingested[0].audio[0].sha256.as_str()
        ),
        (id.as_str(), sha.as_str())
    );
    let outcomes = stack.store().outcomes(&run_id).await.expect("outcomes");
    assert_eq!(
        (outcomes[0].status, outcomes[0].attempt),
        (OutcomeStatus::Recovered, 2),
        "recovered by the next receive"
    );
    assert!(
        secs < 30,
        "abandoned after STALL_TIMEOUT (3 s) and retried promptly, not after a minute: {secs} s"
    );
}
