//! Design §10 against moto and the simulator: a truncated recording recovered and flagged, an
//! archived one really restored by moto (unreadable until `RestoreObject`) and then recovered,
//! and the redacted audio sent instead of the original.

use std::collections::HashMap;
use std::time::Duration;

use recovery::domain::report::OutcomeStatus;
use recovery::flows::work::Disposition;
use sha2::{Digest, Sha256};

use local_stack::claims::*;

use crate::support::*;

#[tokio::test]
async fn a_truncated_recording_is_recovered_and_flagged_in_its_outcome_and_in_coverage() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack
        .day_of(81, date, 80, |spec| spec.truncated = 2)
        .await
        .expect("day");
    let truncated: Vec<String> = day
        .truth
        .iter()
        .filter(|t| t.truncated)
        .map(|t| t.contact_id.clone())
        .collect();
    assert_eq!(truncated.len(), 2, "the day plants two");
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    let expected = expected_missing(&day, day_window(date).start, day_window(date).end);
    assert_in_verint_exactly(&stack.sim, &expected);
    let outcomes = stack
        .store()
        .outcomes(&report.run_id)
        .await
        .expect("outcomes");
    let flagged: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.integrity.as_deref() == Some("truncated"))
        .map(|o| o.contact_id.as_str())
        .collect();
    let mut want: Vec<&str> = truncated.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(flagged, want, "exactly the truncated ones");
    for o in outcomes.iter().filter(|o| o.integrity.is_some()) {
        let (expected, actual) = (
            o.expected_seconds.expect("both"),
            o.actual_seconds.expect("both"),
        );
        assert!(expected >= 60.0 && actual < 5.0, "{o:?}");
        assert_eq!(o.status, OutcomeStatus::Recovered, "the best copy there is");
    }
    let coverage = recovery::flows::coverage::read(&stack.store(), date, date, true)
        .await
        .expect("coverage");
    assert_eq!(coverage.days[0].truncated, 2);
    let csv_flagged = coverage
        .contacts
        .iter()
        .filter(|c| c.integrity == "truncated")
        .count();
    assert_eq!(csv_flagged, 2);
}

#[tokio::test]
async fn an_archived_recording_is_restored_by_moto_and_recovered_without_using_up_receives() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack
        .day_of(82, date, 60, |spec| spec.archived = 1)
        .await
        .expect("day");
    let archived = day.truth.iter().find(|t| t.archived).expect("one archived");
    let (bucket, key) = archived.recordings_to_ingest()[0].clone();
    // moto keeps it unreadable until it is restored.
    let denied = stack.s3.get_object().bucket(&bucket).key(&key).send().await;
    let code = denied
        .expect_err("archived")
        .into_service_error()
        .meta()
        .code()
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("InvalidObjectState"));

    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    let dispositions = stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    assert!(
        dispositions
            .iter()
            .any(|d| matches!(d, Disposition::Restoring(_))),
        "it waited for the restore: {dispositions:?}"
    );
    assert_in_verint_once(&stack.sim, &archived.contact_id);
    assert_dead_letter_queue_empty(&stack).await;
    let outcome = stack
        .store()
        .outcomes(&report.run_id)
        .await
        .expect("outcomes")
        .into_iter()
        .find(|o| o.contact_id == archived.contact_id)
        .expect("its outcome");
    assert_eq!(
        (outcome.status, outcome.restored_from.as_deref()),
        (OutcomeStatus::Recovered, Some("GLACIER"))
    );
    let head = stack
        .s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert!(
        head.restore()
            .is_some_and(|r| r.contains("ongoing-request=\"false\"")),
        "restored by RestoreObject: {:?}",
        head.restore()
    );
    // Byte for byte, as streamed from the restored copy.
    let call = stack
        .sim
        .state()
        .ingested()
        .into_iter()
        .find(|c| c.contact_id == archived.contact_id)
        .expect("ingested");
    let body = &day
        .recordings
        .iter()
        .find(|o| o.key == key)
        .expect("generated")
        .body;
    assert_eq!(call.audio[0].sha256, hex::encode(Sha256::digest(body)));
}

/// The SHA-256 of every redacted object, by key.
fn redacted_bodies(day: &local_stack::generate::Day) -> HashMap<String, String> {
    day.redacted
        .iter()
        .map(|o| (o.key.clone(), hex::encode(Sha256::digest(&o.body))))
        .collect()
}

#[tokio::test]
async fn redacted_else_original_sends_each_calls_redacted_audio_when_it_has_one() {
    let stack = Stack::new(&[("RECORDING_VARIANT", "redacted-else-original")])
        .await
        .expect("stack");
    let date = past_day();
    let day = stack
        .day_of(83, date, 80, |spec| {
            spec.redacted = 1.0;
            spec.redacted_missing = 1;
        })
        .await
        .expect("day");
    let planner = stack.planner().await.expect("planner");
    plan_manual(&planner, day_window(date)).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    let expected = expected_missing(&day, day_window(date).start, day_window(date).end);
    assert_in_verint_exactly(&stack.sim, &expected);
    let redacted = redacted_bodies(&day);
    let mut with_redacted = 0;
    let mut without = 0;
    for call in stack.sim.state().ingested() {
        let truth = day
            .truth
            .iter()
            .find(|t| t.contact_id == call.contact_id)
            .expect("generated");
        match &truth.redacted_key {
            Some(key) => {
                with_redacted += 1;
                assert_eq!(call.audio.len(), 1, "the redacted recording alone");
                assert_eq!(call.audio[0].sha256, redacted[key], "{}", call.contact_id);
                let sent = &call.metadata["recordings"][0]["key"];
                assert_eq!(sent, key.as_str());
            }
            None => {
                without += 1;
                let original = &truth.recordings_to_ingest()[0].1;
                assert_eq!(&call.metadata["recordings"][0]["key"], original.as_str());
            }
        }
    }
    assert!(with_redacted > 0, "calls with redacted audio");
    assert_eq!(without, 1, "the one without it sends its original");
}

#[tokio::test]
async fn redacted_never_sends_an_original_and_names_why_a_call_has_none() {
    let stack = Stack::new(&[("RECORDING_VARIANT", "redacted")])
        .await
        .expect("stack");
    let date = past_day();
    let day = stack
        .day_of(84, date, 80, |spec| {
            spec.redacted = 1.0;
            spec.redacted_missing = 1;
        })
        .await
        .expect("day");
    let lacking = day
        .truth
        .iter()
        .find(|t| t.missing() && t.redacted_key.is_none() && t.eligible())
        .expect("a missed call without redacted audio")
        .contact_id
        .clone();
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    let unrecoverable: Vec<(&str, &str)> = report
        .unrecoverable
        .iter()
        .map(|u| (u.contact_id.as_str(), u.reason.as_str()))
        .collect();
    assert!(
        unrecoverable.contains(&(lacking.as_str(), "no redacted recording")),
        "the call ended over 24 h ago: {unrecoverable:?}"
    );
    assert!(!ingested_ids(&stack.sim).contains(&lacking), "never sent");
    let redacted = redacted_bodies(&day);
    for call in stack.sim.state().ingested() {
        let key = call.metadata["recordings"][0]["key"]
            .as_str()
            .unwrap_or_default();
        assert!(
            redacted.contains_key(key),
            "only redacted audio is sent: {key}"
        );
    }
}
