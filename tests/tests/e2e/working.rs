//! Planner then worker against moto and the simulator: every missing call ends in Verint exactly
//! once, byte for byte, or in the dead-letter queue with its reason, faults or not.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use local_stack::generate::Day;
use local_stack::sim::Faults;
use sha2::{Digest, Sha256};

use crate::support::*;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every ingested call is a missing one, stored once, its audio parts byte-identical to the S3
/// objects in DESIGN §4 order.
fn assert_ingested_exactly(stack: &Stack, day: &Day, expected: &HashSet<String>) {
    let bodies: HashMap<(String, String), &Vec<u8>> = day
        .recordings
        .iter()
        .map(|o| ((o.bucket.clone(), o.key.clone()), &o.body))
        .collect();
    let ingested = stack.sim.state().ingested();
    let ids: HashSet<String> = ingested.iter().map(|c| c.contact_id.clone()).collect();
    assert_eq!(&ids, expected, "Verint holds exactly the missing calls");
    for call in &ingested {
        assert_eq!(call.stored_times, 1, "{} stored once", call.contact_id);
        let truth = day
            .truth
            .iter()
            .find(|t| t.contact_id == call.contact_id)
            .expect("generated");
        let recordings = truth.recordings_to_ingest();
        assert_eq!(
            call.audio.len(),
            recordings.len(),
            "{}: one audio part per recording",
            call.contact_id
        );
        for (n, (part, location)) in call.audio.iter().zip(&recordings).enumerate() {
            let body = bodies[location];
            assert_eq!(part.filename, format!("{}-{}.wav", call.contact_id, n + 1));
            assert_eq!(part.bytes, body.len() as u64);
            assert_eq!(
                part.sha256,
                sha256(body),
                "{} part {} is byte-identical",
                call.contact_id,
                n + 1
            );
        }
        assert_eq!(call.metadata["amazonContactId"], call.contact_id.as_str());
        assert_eq!(
            call.metadata["recovery"]["screensExpected"], false,
            "the day ended long ago"
        );
    }
}

#[tokio::test]
async fn a_full_manual_recovery_puts_exactly_the_missing_calls_into_verint() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(21, date, 120).await.expect("day");
    let window = day_window(date);
    let planner = stack.planner().await.expect("planner");
    let worker = stack.worker().await.expect("worker");

    let report = plan_manual(&planner, window).await.expect("plan");
    let expected = expected_missing(&day, window.start, window.end);
    assert_eq!(report.enqueued, expected.len() as u64);
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    assert_ingested_exactly(&stack, &day, &expected);
    assert_eq!(
        stack
            .dead_letter_queue
            .depth()
            .await
            .expect("depth")
            .visible,
        0
    );
    let store = stack.store();
    let outcomes = store.outcomes(&report.run_id).await.expect("outcomes");
    assert_eq!(outcomes.len(), expected.len());
    assert!(
        outcomes
            .iter()
            .all(|o| o.status == recovery::report::OutcomeStatus::Recovered
                && o.bytes > 0
                && o.interaction_id.is_some())
    );

    let again = plan_manual(&planner, window).await.expect("second plan");
    assert_eq!(
        (again.missing, again.enqueued),
        (0, 0),
        "a second run finds nothing missing"
    );
    assert_eq!(again.in_verint, report.in_verint + report.missing);
}

#[tokio::test]
async fn with_faults_every_missing_call_ends_in_verint_once_or_in_the_dead_letter_queue_with_its_reason()
 {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(22, date, 120).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let ids = sorted(&expected);
    let poison = ids[0].clone();
    let unknown = ids[1].clone();
    stack.sim.state().set_faults(Faults {
        seed: 7,
        status_503: 0.12,
        status_429: 0.08,
        status_500: 0.08,
        retry_after_secs: 1,
        drop_mid_body: 0.08,
        lost_response: 0.1,
        slow_ms: 5,
        reject_contact_ids: vec![poison.clone()],
        connect_throttle: 0.15,
        connect_unknown_contact_ids: vec![unknown.clone()],
        das_page_fault: 0.3,
        ..Faults::default()
    });
    let planner = stack.planner().await.expect("planner");
    let worker = stack.worker().await.expect("worker");

    let report = plan_manual(&planner, window)
        .await
        .expect("plan survives DAS page faults");
    assert_eq!(
        report
            .missing_contact_ids
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        expected
    );
    stack
        .work_queue
        .send_bodies(&[("{\"v\":1,\"contact_id\":".to_owned(), None)])
        .await
        .expect("poison body sent");
    stack
        .drain(&worker, Duration::from_secs(240))
        .await
        .expect("drained");

    let dead = Stack::all_messages(&stack.dead_letter_queue)
        .await
        .expect("dlq");
    let mut dead_ids = HashSet::new();
    let mut malformed = 0;
    for m in &dead {
        let reason = m
            .attributes
            .get("failure_reason")
            .expect("every dead letter carries failure_reason");
        assert!(!reason.is_empty());
        match serde_json::from_str::<serde_json::Value>(&m.body)
            .ok()
            .and_then(|b| b["contact_id"].as_str().map(str::to_owned))
        {
            Some(id) => {
                dead_ids.insert(id);
            }
            None => {
                assert!(reason.contains("malformed message"), "{reason}");
                malformed += 1;
            }
        }
    }
    assert_eq!(malformed, 1, "the poison body is dead-lettered on its own");
    assert!(
        dead_ids.contains(&poison),
        "a call Verint rejects goes to the DLQ"
    );
    assert!(
        dead_ids.contains(&unknown),
        "a contact unknown to Connect goes to the DLQ"
    );
    let stats = stack.sim.state().stats();
    let ingested: HashSet<String> = stack
        .sim
        .state()
        .ingested()
        .iter()
        .map(|c| c.contact_id.clone())
        .collect();
    for id in &expected {
        assert!(
            ingested.contains(id) ^ dead_ids.contains(id),
            "{id} is in Verint or in the DLQ, not both or neither"
        );
    }
    assert!(
        stats.ingest_stores.values().all(|n| *n == 1),
        "nothing duplicated"
    );
    let recovered: HashSet<String> = ingested.intersection(&expected).cloned().collect();
    assert_eq!(
        ingested, recovered,
        "nothing outside the missing calls was ingested"
    );
    let injected: u64 = stats.faults.values().sum();
    assert!(
        injected >= 10,
        "faults were really injected: {:?}",
        stats.faults
    );
    assert!(
        stats.faults.get("lost_response").copied().unwrap_or(0) > 0,
        "{:?}",
        stats.faults
    );
}
