//! Planner then worker against moto and the simulator: every missing call ends in Verint exactly
//! once, byte for byte, or in the dead-letter queue with its reason, faults or not.
//!
//! Each test makes one claim about a scenario that it runs itself (nextest runs each test in a
//! process of its own, so a scenario cannot be shared): a clean day ([`recover_a_day`]) or a day
//! worked through faults ([`recover_through_faults`]).

use std::collections::HashSet;
use std::time::Duration;

use local_stack::claims::*;
use local_stack::generate::Day;
use local_stack::sim::Faults;
use recovery::domain::report::{OutcomeStatus, RunReport};

use crate::support::*;

/// A past day planned by a manual run and worked until the queue is empty, without faults.
struct Recovered {
    stack: Stack,
    day: Day,
    window: recovery::domain::time::Window,
    /// The calls the run had to queue, from the generator's ground truth.
    expected: HashSet<String>,
    report: RunReport,
}

async fn recover_a_day() -> Recovered {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(21, date, 120).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let planner = stack.planner().await.expect("planner");
    let worker = stack.worker().await.expect("worker");
    let report = plan_manual(&planner, window).await.expect("plan");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");
    Recovered {
        stack,
        day,
        window,
        expected,
        report,
    }
}

#[tokio::test]
async fn a_full_manual_recovery_queues_every_missing_call() {
    let r = recover_a_day().await;

    assert_eq!(r.report.enqueued, r.expected.len() as u64);
}

#[tokio::test]
async fn a_full_manual_recovery_puts_exactly_the_missing_calls_into_verint_once_each() {
    let r = recover_a_day().await;

    assert_in_verint_exactly(&r.stack.sim, &r.expected);
    for id in &r.expected {
        assert_in_verint_once(&r.stack.sim, id);
    }
}

#[tokio::test]
async fn a_full_manual_recovery_streams_every_recording_byte_for_byte_in_order() {
    let r = recover_a_day().await;

    assert_audio_byte_for_byte(&r.stack.sim, &r.day);
}

#[tokio::test]
async fn a_full_manual_recovery_sends_metadata_naming_the_contact_and_expecting_no_screens() {
    let r = recover_a_day().await;

    assert_metadata_names_the_contact_and_expects_no_screens(&r.stack.sim);
}

#[tokio::test]
async fn a_full_manual_recovery_sends_each_call_once() {
    let r = recover_a_day().await;

    let stats = r.stack.sim.state().stats();
    assert_sent_once_each(&stats, &r.expected);
}

#[tokio::test]
async fn a_full_manual_recovery_dead_letters_nothing() {
    let r = recover_a_day().await;

    assert_dead_letter_queue_empty(&r.stack).await;
}

#[tokio::test]
async fn a_full_manual_recovery_records_each_call_as_recovered_with_its_bytes_and_interaction() {
    let r = recover_a_day().await;

    let outcomes = r
        .stack
        .store()
        .outcomes(&r.report.run_id)
        .await
        .expect("outcomes");
    assert_eq!(outcomes.len(), r.expected.len());
    assert!(outcomes.iter().all(|o| o.status == OutcomeStatus::Recovered
        && o.bytes > 0
        && o.interaction_id.is_some()));
}

#[tokio::test]
async fn a_second_run_after_a_full_recovery_finds_the_recovered_calls_in_verint() {
    let r = recover_a_day().await;
    let planner = r.stack.planner().await.expect("planner");

    let again = plan_manual(&planner, r.window).await.expect("second plan");

    assert_eq!(
        (again.missing, again.enqueued),
        (0, 0),
        "a second run finds nothing missing"
    );
    assert_eq!(again.in_verint, r.report.in_verint + r.report.missing);
}

/// A past day planned and worked while Verint and Connect misbehave: transient ingest faults
/// (503, 429, 500, a body dropped, a response lost after the call was stored), Connect
/// throttling, DAS page faults; one call Verint always rejects, one contact Connect does not
/// know, and one work message that is not JSON.
struct Faulted {
    stack: Stack,
    expected: HashSet<String>,
    rejected: String,
    unknown: String,
    report: RunReport,
    dead: DeadLetters,
}

async fn recover_through_faults() -> Faulted {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(22, date, 120).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let ids = sorted(&expected);
    let (rejected, unknown) = (ids[0].clone(), ids[1].clone());
    stack.sim.state().set_faults(Faults {
        seed: 7,
        status_503: 0.12,
        status_429: 0.08,
        status_500: 0.08,
        retry_after_secs: 1,
        drop_mid_body: 0.08,
        lost_response: 0.1,
        lose_first: 2,
        slow_ms: 5,
        reject_contact_ids: vec![rejected.clone()],
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
    stack
        .work_queue
        .send_bodies(&[("{\"v\":1,\"contact_id\":".to_owned(), None)])
        .await
        .expect("poison body sent");
    stack
        .drain(&worker, Duration::from_secs(240))
        .await
        .expect("drained");
    let dead = DeadLetters::read(&stack).await;
    Faulted {
        stack,
        expected,
        rejected,
        unknown,
        report,
        dead,
    }
}

#[tokio::test]
async fn with_faults_every_missing_call_ends_in_verint_once_or_in_the_dead_letter_queue_with_its_reason()
 {
    let f = recover_through_faults().await;

    assert_eq!(
        f.report
            .missing_contact_ids
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        f.expected,
        "the plan survives DAS page faults"
    );
    let ingested = ingested_ids(&f.stack.sim);
    for id in &f.expected {
        assert!(
            ingested.contains(id) ^ f.dead.by_contact.contains_key(id),
            "{id} is in Verint or in the DLQ, not both or neither"
        );
    }
}

#[tokio::test]
async fn with_faults_nothing_outside_the_missing_calls_is_ingested() {
    let f = recover_through_faults().await;

    let ingested = ingested_ids(&f.stack.sim);
    assert!(
        ingested.is_subset(&f.expected),
        "ingested but not missing: {:?}",
        ingested.difference(&f.expected).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn with_faults_no_call_is_sent_again_after_verint_said_it_had_it() {
    let f = recover_through_faults().await;

    assert_nothing_sent_twice(&f.stack.sim.state().stats());
}

#[tokio::test]
async fn with_faults_each_recovered_call_is_stored_once_and_sent_again_only_after_a_fault() {
    let f = recover_through_faults().await;

    let stats = f.stack.sim.state().stats();
    assert_stored_once_and_sent_again_only_after_faults(&stats, &ingested_ids(&f.stack.sim));
    assert_eq!(
        stats.requests.get("POST /ingest/recovered-calls").copied(),
        Some(stats.ingest_answers.values().map(|a| a.len() as u64).sum()),
        "every ingest attempt is one of the contacts' attempts"
    );
}

#[tokio::test]
async fn with_faults_a_call_verint_rejects_is_dead_lettered_with_its_reason() {
    let f = recover_through_faults().await;

    let reason = f.dead.by_contact.get(&f.rejected).expect("in the DLQ");
    assert!(reason.contains("422"), "{reason}");
}

#[tokio::test]
async fn with_faults_a_contact_unknown_to_connect_is_dead_lettered() {
    let f = recover_through_faults().await;

    assert!(
        f.dead.by_contact.contains_key(&f.unknown),
        "a contact unknown to Connect goes to the DLQ"
    );
}

#[tokio::test]
async fn with_faults_an_unparsable_message_is_dead_lettered_on_its_own() {
    let f = recover_through_faults().await;

    assert_eq!(f.dead.unparsable.len(), 1, "{:?}", f.dead.unparsable);
    assert!(
        f.dead.unparsable[0].contains("malformed message"),
        "{}",
        f.dead.unparsable[0]
    );
}

#[tokio::test]
async fn with_faults_the_faults_were_really_injected() {
    let f = recover_through_faults().await;

    let stats = f.stack.sim.state().stats();
    let injected: u64 = stats.faults.values().sum();
    assert!(injected >= 10, "{:?}", stats.faults);
    assert!(
        stats.faults.get("lost_response").copied().unwrap_or(0) > 0,
        "a response was lost after the call was stored: {:?}",
        stats.faults
    );
}
