//! The worker's flow against in-memory fakes of its ports: every failure path, how the message is
//! settled, and what the outcome says.

mod fakes;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use http::StatusCode;

use super::*;
use crate::domain::recording::Variant;

use fakes::*;

fn retry_reason(d: &Disposition) -> &str {
    match d {
        Disposition::Retry(r) => r,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_call_is_streamed_into_verint_and_its_outcome_recorded() {
    let fakes = Fakes::default();
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(fakes.stored(), [(ID.to_owned(), 1024)]);
    let o = fakes.outcome(ID);
    assert_eq!(
        (o.status, o.bytes, o.attempt),
        (OutcomeStatus::Recovered, 1024, 1)
    );
}

#[tokio::test]
async fn a_contact_id_that_is_not_a_uuid_is_dead_lettered_before_anything_is_sent() {
    let fakes = Fakes::default();
    let evil = "c-1\\r\\nX-Injected: 1";
    let d = fakes.work(&[incoming(evil, 1)], None).await;
    let Disposition::DeadLettered(reason) = &d[0] else {
        panic!("expected the dead-letter queue, got {d:?}");
    };
    assert!(reason.starts_with("malformed message"), "{reason}");
    assert!(reason.contains("UUID"), "{reason}");
    assert_eq!(fakes.verint.holds_calls.load(Ordering::SeqCst), 0);
    assert_eq!(fakes.connect.calls.load(Ordering::SeqCst), 0);
    assert_eq!(fakes.recordings.opens.load(Ordering::SeqCst), 0);
    assert_eq!(lock(&fakes.queue.dead).len(), 1);
    assert_eq!(
        lock(&fakes.queue.deleted).len(),
        1,
        "removed from the work queue"
    );
}

#[tokio::test]
async fn a_contact_verint_holds_in_upper_case_is_already_present() {
    let fakes = Fakes::default();
    lock(&fakes.verint.held).insert(ID.to_uppercase());
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::AlreadyPresent)]);
    assert_eq!(fakes.verint.uploads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connect_spelling_the_id_in_upper_case_is_the_same_contact() {
    let fakes = Fakes {
        connect: FakeConnect {
            spelled: Some("5F8A7B3C-1D2E-4F60-8A9B-0C1D2E3F4A5B"),
            ..Default::default()
        },
        ..Default::default()
    };
    fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(
        fakes.stored()[0].0,
        "5F8A7B3C-1D2E-4F60-8A9B-0C1D2E3F4A5B",
        "the metadata carries the id as the API gives it"
    );
}

#[tokio::test]
async fn a_409_is_a_success_and_nothing_is_stored_twice() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Conflict);
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::AlreadyPresent)]);
    assert!(fakes.stored().is_empty());
    let o = fakes.outcome(ID);
    assert_eq!(
        (o.status, o.interaction_id.as_deref()),
        (OutcomeStatus::AlreadyPresent, Some("INT-1"))
    );
}

#[tokio::test]
async fn a_lost_response_releases_the_message_and_the_next_receive_finds_it_in_verint() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| {
        VerintError::NoAnswer(Duration::from_secs(60))
    }));
    lock(&fakes.verint.answers).push_back(Answer::Conflict);
    let first = fakes.work(&[incoming(ID, 1)], None).await;
    assert!(retry_reason(&first[0]).starts_with("verint did not answer"));
    assert_eq!(
        fakes.verint.uploads.load(Ordering::SeqCst),
        1,
        "a lost response is not retried within the receive"
    );
    assert!(
        fakes.delay_of(ID).is_some(),
        "released with its retry delay"
    );
    assert_eq!(fakes.outcome(ID).status, OutcomeStatus::Failed);

    let second = fakes.work(&[incoming(ID, 2)], None).await;
    assert_eq!(second, [Disposition::Done(OutcomeStatus::AlreadyPresent)]);
    assert_eq!(fakes.outcome(ID).status, OutcomeStatus::AlreadyPresent);
}

#[tokio::test]
async fn an_answer_lost_after_the_whole_upload_waits_at_least_retry_base_before_the_next_try() {
    for receive in 1..=2 {
        let fakes = Fakes::default();
        lock(&fakes.verint.answers).push_back(Answer::Fail(|| {
            VerintError::AnswerLost(Box::new(VerintError::Status {
                status: StatusCode::BAD_GATEWAY,
                detail: "Bad Gateway".into(),
                retry_after: None,
            }))
        }));
        let d = fakes.work(&[incoming(ID, receive)], None).await;
        assert!(
            retry_reason(&d[0]).starts_with("verint did not answer"),
            "{d:?}"
        );
        assert_eq!(
            fakes.verint.uploads.load(Ordering::SeqCst),
            1,
            "no second upload races the first inside the receive"
        );
        let delay = fakes.delay_of(ID).expect("a retry delay");
        assert!(
            delay >= Duration::from_secs(10),
            "receive {receive}: {delay:?} is shorter than RETRY_BASE"
        );
    }
}

#[tokio::test]
async fn a_gateway_page_for_an_answer_is_never_taken_as_recovered() {
    let fakes = Fakes::default();
    for _ in 0..3 {
        lock(&fakes.verint.answers).push_back(Answer::Fail(|| VerintError::NotVerint {
            status: StatusCode::OK,
            what: "an ingest answer other than 201 or 409",
        }));
    }
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert!(matches!(d[0], Disposition::Retry(_)), "{d:?}");
    assert_eq!(fakes.outcome(ID).status, OutcomeStatus::Failed);
    assert!(
        lock(&fakes.queue.dead).is_empty(),
        "transient, not dead-lettered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_key_with_a_fresh_one_read_is_tried_again_at_once() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers)
        .push_back(Answer::Fail(|| VerintError::KeyRefused { fresh_key: true }));
    let started = Instant::now();
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(fakes.verint.uploads.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() < Duration::from_millis(10),
        "no backoff before the retry with the fresh key"
    );
}

#[tokio::test]
async fn a_call_too_large_to_upload_in_one_invocation_is_dead_lettered_at_once_with_its_size() {
    let mut fakes = Fakes::default();
    fakes
        .recordings
        .by_key
        .insert(format!("{ID}.wav"), Audio::Bytes(2_000_000));
    let mut worker = fakes.worker();
    // 2 MB at 2 kB/s is 1000 s, over the 840 s one invocation can upload.
    worker.settings.min_link_rate = 2_000;
    let d = worker
        .work_batch(&[incoming(ID, 1)], None, &mut Metrics::new("test"))
        .await;
    let reason = match &d[0] {
        Disposition::DeadLettered(reason) => reason.clone(),
        other => panic!("expected the dead-letter queue, got {other:?}"),
    };
    assert!(reason.contains("2000000 bytes"), "{reason}");
    assert!(reason.contains("MIN_LINK_RATE"), "{reason}");
    assert_eq!(
        fakes.verint.uploads.load(Ordering::SeqCst),
        0,
        "no ingest is opened for a call that cannot finish"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_held_while_it_is_worked_is_kept_invisible_until_it_is_settled() {
    let fakes = Fakes {
        verint: FakeVerint {
            upload_time: Some(Duration::from_secs(10)),
            ..FakeVerint::default()
        },
        ..Fakes::default()
    };
    let mut worker = fakes.worker();
    worker.settings.hold = Some(Duration::from_secs(3));
    let d = worker
        .work_batch(&[incoming(ID, 1)], None, &mut Metrics::new("test"))
        .await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    let renewals: Vec<Duration> = lock(&fakes.queue.delays).iter().map(|(_, d)| *d).collect();
    assert!(
        renewals.len() >= 9,
        "every second of a 10 s upload: {renewals:?}"
    );
    assert!(renewals.iter().all(|d| *d == Duration::from_secs(3)));
}

#[tokio::test]
async fn a_key_refused_even_after_reading_it_again_never_uses_up_receives_even_on_the_last_one() {
    let fakes = Fakes::default();
    for _ in 0..5 {
        lock(&fakes.verint.answers).push_back(Answer::Fail(|| VerintError::KeyRefused {
            fresh_key: false,
        }));
    }
    let d = fakes.work(&[incoming(ID, 3)], None).await;
    assert!(matches!(d[0], Disposition::Retry(_)), "{d:?}");
    assert!(
        lock(&fakes.queue.dead).is_empty(),
        "never dead-lettered for a key"
    );
    let requeued = lock(&fakes.queue.requeued).clone();
    assert_eq!(requeued.len(), 1, "sent again as a new message");
    assert!(requeued[0].1 >= Duration::from_secs(30) && requeued[0].1 <= Duration::from_secs(900));
    assert!(
        lock(&fakes.queue.deleted).contains(&format!("r-{ID}")),
        "the original is deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_during_an_upload_waits_at_least_retry_base_before_the_next_try() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Hang);
    let deadline = Instant::now() + Duration::from_secs(30);
    let d = fakes.work(&[incoming(ID, 1)], Some(deadline)).await;
    assert!(matches!(d[0], Disposition::Retry(_)), "{d:?}");
    let delay = fakes.delay_of(ID).expect("released");
    assert!(
        delay >= Duration::from_secs(10),
        "{delay:?} under RETRY_BASE"
    );
}

#[tokio::test]
async fn a_stalled_upload_is_released_with_a_reason_naming_verint() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| {
        VerintError::Stalled(Duration::from_secs(60))
    }));
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    let reason = retry_reason(&d[0]);
    assert!(reason.starts_with("verint stopped accepting"), "{reason}");
    assert_eq!(fakes.verint.uploads.load(Ordering::SeqCst), 1);
    let delay = fakes.delay_of(ID).expect("a retry delay");
    assert!(
        delay <= Duration::from_secs(10),
        "first receive: within RETRY_BASE"
    );
}

#[tokio::test]
async fn a_recording_that_stalls_is_blamed_on_s3() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| {
        VerintError::BodyStalled(Duration::from_secs(60))
    }));
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert!(retry_reason(&d[0]).starts_with("S3 stopped sending"));
}

#[tokio::test]
async fn an_s3_failure_mid_stream_is_a_recording_failure_not_a_verint_one() {
    let mut fakes = Fakes::default();
    fakes
        .recordings
        .by_key
        .insert(format!("{ID}.wav"), Audio::BreaksMidStream);
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    let reason = retry_reason(&d[0]);
    assert!(reason.starts_with("S3 failed while streaming"), "{reason}");
    assert!(reason.contains("connection reset by S3"), "{reason}");
    assert_eq!(
        fakes.recordings.opens.load(Ordering::SeqCst),
        3,
        "each try opens the recordings afresh"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retried_within_the_receive_with_fresh_recordings() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| VerintError::Status {
        status: StatusCode::BAD_GATEWAY,
        detail: "Bad Gateway".into(),
        retry_after: None,
    }));
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(fakes.recordings.opens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_long_retry_after_releases_the_message_for_at_least_that_long() {
    let fakes = Fakes::default();
    *lock(&fakes.verint.holds_error) = Some(|| VerintError::Status {
        status: StatusCode::TOO_MANY_REQUESTS,
        detail: "Too Many Requests".into(),
        retry_after: Some(Duration::from_secs(300)),
    });
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert!(retry_reason(&d[0]).starts_with("verint could not take the call now"));
    assert_eq!(fakes.delay_of(ID), Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn a_retry_after_beyond_retry_max_is_capped() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| VerintError::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        detail: "Service Unavailable".into(),
        retry_after: Some(Duration::from_secs(86_400)),
    }));
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    assert!(d[0].is_batch_item_failure());
    assert_eq!(
        fakes.verint.uploads.load(Ordering::SeqCst),
        1,
        "a long Retry-After is waited out in the queue, not in the invocation"
    );
    assert_eq!(fakes.delay_of(ID), Some(Duration::from_secs(600)));
}

#[tokio::test]
async fn the_last_receive_of_a_transient_failure_is_dead_lettered_by_the_worker_with_its_reason() {
    let fakes = Fakes::default();
    *lock(&fakes.verint.holds_error) = Some(|| VerintError::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        detail: "Service Unavailable".into(),
        retry_after: None,
    });
    let d = fakes.work(&[incoming(ID, 3)], None).await;
    let Disposition::DeadLettered(reason) = &d[0] else {
        panic!("expected the dead-letter queue, got {d:?}");
    };
    assert!(
        reason.starts_with("verint could not take the call now"),
        "{reason}"
    );
    assert!(reason.contains("gave up after 3 attempts"), "{reason}");
    let dead = lock(&fakes.queue.dead);
    assert_eq!(dead[0].1, *reason);
    assert!(dead[0].0.contains(ID), "the message's own body");
    assert_eq!(lock(&fakes.queue.deleted).as_slice(), [format!("r-{ID}")]);
    assert!(fakes.delay_of(ID).is_none());
}

#[tokio::test]
async fn permanent_failures_go_to_the_dead_letter_queue_at_once() {
    let mut fakes = Fakes {
        connect: FakeConnect {
            unknown: HashSet::from([OTHER]),
            ..Default::default()
        },
        ..Default::default()
    };
    fakes
        .recordings
        .by_key
        .insert(format!("{THIRD}.wav"), Audio::Gone);
    lock(&fakes.verint.answers).push_back(Answer::Fail(|| VerintError::Status {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        detail: "Unprocessable Entity".into(),
        retry_after: None,
    }));
    let d = fakes
        .work(
            &[incoming(ID, 1), incoming(OTHER, 1), incoming(THIRD, 1)],
            None,
        )
        .await;
    let reasons: Vec<&str> = d
        .iter()
        .map(|d| match d {
            Disposition::DeadLettered(r) => r.as_str(),
            other => panic!("expected the dead-letter queue, got {other:?}"),
        })
        .collect();
    assert!(
        reasons[0].starts_with("verint rejected the call"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].starts_with("the contact is unknown to Amazon Connect"));
    assert!(
        reasons[2].starts_with("a recording is gone from S3"),
        "{}",
        reasons[2]
    );
    assert!(fakes.delay_of(ID).is_none());
}

#[tokio::test(start_paused = true)]
async fn the_deadline_mid_upload_releases_the_message_before_the_invocation_ends() {
    let fakes = Fakes::default();
    lock(&fakes.verint.answers).push_back(Answer::Hang);
    let deadline = Instant::now() + Duration::from_secs(60);
    let d = fakes.work(&[incoming(ID, 1)], Some(deadline)).await;
    assert!(Instant::now() < deadline, "settled before the deadline");
    let reason = retry_reason(&d[0]);
    assert!(reason.starts_with("the invocation's deadline"), "{reason}");
    assert!(
        fakes.delay_of(ID).is_some(),
        "released with its retry delay"
    );
    assert_eq!(fakes.outcome(ID).status, OutcomeStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_message_without_time_to_finish_is_released_untouched() {
    let fakes = Fakes::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = fakes.work(&[incoming(ID, 1)], Some(deadline)).await;
    assert!(retry_reason(&d[0]).starts_with("the invocation's deadline"));
    assert_eq!(fakes.verint.holds_calls.load(Ordering::SeqCst), 0);
    assert!(fakes.delay_of(ID).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_looked_up_all_at_once_but_shares_the_line_four_uploads_at_a_time() {
    let fakes = Fakes {
        verint: FakeVerint {
            upload_time: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        connect: FakeConnect {
            latency: Some(Duration::from_secs(1)),
            ..Default::default()
        },
        ..Default::default()
    };
    let ids: Vec<String> = (0..10)
        .map(|i| format!("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a{i:02}"))
        .collect();
    let batch: Vec<Incoming> = ids.iter().map(|id| incoming(id, 1)).collect();
    let started = Instant::now();
    let d = fakes.work(&batch, None).await;
    assert!(
        d.iter()
            .all(|d| *d == Disposition::Done(OutcomeStatus::Recovered)),
        "{d:?}"
    );
    assert_eq!(fakes.connect.most_describing.load(Ordering::SeqCst), 10);
    assert_eq!(fakes.verint.most_uploading.load(Ordering::SeqCst), 4);
    // One second of look-ups for all ten, then three rounds of uploads (4 + 4 + 2).
    assert_eq!(started.elapsed().as_secs(), 181);
}

#[tokio::test]
async fn a_panic_fails_that_message_only_and_the_others_finish() {
    let fakes = Fakes {
        verint: FakeVerint {
            panic_for: Some(OTHER),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut metrics = Metrics::new("test");
    let d = fakes
        .worker()
        .work_batch(
            &[incoming(ID, 1), incoming(OTHER, 1), incoming(THIRD, 1)],
            None,
            &mut metrics,
        )
        .await;
    assert_eq!(d[0], Disposition::Done(OutcomeStatus::Recovered));
    assert!(retry_reason(&d[1]).starts_with("the worker panicked"));
    assert_eq!(d[2], Disposition::Done(OutcomeStatus::Recovered));
    assert_eq!(fakes.outcome(OTHER).status, OutcomeStatus::Failed);
    assert!(
        fakes.delay_of(OTHER).is_some(),
        "released with its retry delay"
    );
    let docs = metrics.documents(0);
    assert!(
        docs.iter().any(|doc| doc["Reason"] == "panicked"),
        "{docs:?}"
    );
}

#[tokio::test]
async fn a_stale_receipt_handle_fails_its_delete_only_and_the_batch_is_still_settled() {
    let fakes = Fakes::default();
    lock(&fakes.queue.stale).push(format!("r-{ID}"));
    let received: Vec<crate::ports::queue::Received> = [ID, OTHER]
        .iter()
        .map(|id| {
            let m = incoming(id, 1);
            crate::ports::queue::Received {
                message_id: m.message_id,
                receipt_handle: m.receipt_handle,
                body: m.body,
                receive_count: 1,
                attributes: Default::default(),
                sent_at_ms: None,
            }
        })
        .collect();
    let d = fakes
        .worker()
        .work_received(&received, &mut Metrics::new("test"))
        .await
        .expect("the batch is settled");
    assert_eq!(
        d,
        [
            Disposition::Done(OutcomeStatus::Recovered),
            Disposition::Done(OutcomeStatus::Recovered)
        ]
    );
    assert_eq!(*lock(&fakes.queue.deleted), [format!("r-{OTHER}")]);
}

/// A message of `ID` whose one recording the CTR says lasted `expected` seconds.
fn incoming_expecting(expected: u32) -> Incoming {
    let mut m = incoming(ID, 1);
    m.body = m.body.replace(
        &format!(r#""key":"{ID}.wav"}}"#),
        &format!(r#""key":"{ID}.wav","expected_seconds":{expected}}}"#),
    );
    assert!(m.body.contains("expected_seconds"), "{}", m.body);
    m
}

#[tokio::test]
async fn a_recording_shorter_than_its_ctr_says_is_ingested_and_flagged_truncated() {
    let mut fakes = Fakes::default();
    // The header claims 120 s of mono 8 kHz; the object holds 3 s of it.
    fakes.recordings.by_key.insert(
        format!("{ID}.wav"),
        Audio::Wav(wav_declaring(44 + 3 * 16_000, 120 * 16_000)),
    );
    let mut metrics = Metrics::new("test");
    let d = fakes
        .worker()
        .work_batch(&[incoming_expecting(120)], None, &mut metrics)
        .await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(
        lock(&fakes.verint.stored).len(),
        1,
        "the best copy there is"
    );
    let outcome = lock(&fakes.outcomes.0)[0].clone();
    assert_eq!(outcome.integrity.as_deref(), Some("truncated"));
    assert_eq!(
        (outcome.expected_seconds, outcome.actual_seconds),
        (Some(120.0), Some(3.0))
    );
    let json = serde_json::to_string(&outcome).expect("serialises");
    assert!(
        json.contains(r#""integrity":"truncated","expected_seconds":120.0,"actual_seconds":3.0"#),
        "{json}"
    );
    let documents = serde_json::to_string(&metrics.documents(0)).expect("json");
    assert!(documents.contains("TruncatedRecordings"), "{documents}");
}

#[tokio::test]
async fn a_recording_as_long_as_its_ctr_says_carries_no_integrity_flag() {
    let mut fakes = Fakes::default();
    fakes.recordings.by_key.insert(
        format!("{ID}.wav"),
        Audio::Wav(silent_wav(44 + 118 * 16_000)),
    );
    let d = fakes.work(&[incoming_expecting(120)], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    let outcome = lock(&fakes.outcomes.0)[0].clone();
    assert_eq!(outcome.integrity, None, "2 s short is within max(5 s, 2 %)");
    assert!(
        !serde_json::to_string(&outcome)
            .expect("json")
            .contains("integrity")
    );
}

#[tokio::test]
async fn a_recording_that_is_not_a_wav_is_dead_lettered_with_that_reason_and_nothing_is_stored() {
    let mut fakes = Fakes::default();
    fakes.recordings.by_key.insert(
        format!("{ID}.wav"),
        Audio::Wav(b"<html><body>Access denied</body></html>".repeat(50)),
    );
    let d = fakes.work(&[incoming(ID, 1)], None).await;
    let reason = match &d[0] {
        Disposition::DeadLettered(reason) => reason.clone(),
        other => panic!("expected the dead-letter queue, got {other:?}"),
    };
    assert!(reason.contains("not RIFF/WAVE"), "{reason}");
    assert!(lock(&fakes.verint.stored).is_empty());
    assert_eq!(
        fakes.verint.uploads.load(Ordering::SeqCst),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn an_archived_recording_is_restored_once_and_waits_without_using_up_receives() {
    let mut fakes = Fakes::default();
    fakes
        .recordings
        .by_key
        .insert(format!("{ID}.wav"), Audio::Archived(silent_wav(4044)));
    // Even on what would be its last receive.
    let d = fakes.work(&[incoming(ID, 3)], None).await;
    assert!(matches!(d[0], Disposition::Restoring(_)), "{d:?}");
    assert_eq!(*lock(&fakes.recordings.restores), [format!("{ID}.wav")]);
    assert_eq!(
        fakes.verint.uploads.load(Ordering::SeqCst),
        0,
        "no ingest opened"
    );
    assert!(lock(&fakes.queue.dead).is_empty());
    assert!(lock(&fakes.queue.deleted).contains(&format!("r-{ID}")));
    let outcome = lock(&fakes.outcomes.0)[0].clone();
    assert_eq!(outcome.status, OutcomeStatus::Restoring);
    assert!(outcome.reason.as_deref().unwrap_or("").contains("GLACIER"));
    let (body, delay, attributes) = lock(&fakes.queue.requeued)[0].clone();
    assert_eq!(
        delay,
        Duration::from_secs(10),
        "the first check after RETRY_BASE"
    );
    assert!(
        attributes
            .iter()
            .any(|(k, v)| k == "restore_waits" && v == "1")
    );
    let since = attributes
        .iter()
        .find(|(k, _)| k == "restore_since")
        .map(|(_, v)| v.clone())
        .expect("restore_since");

    // Checked again while the restore is under way: not asked for twice, the delay grows.
    let mut again = incoming(ID, 1);
    again.body = body.clone();
    again.attributes = attributes.into_iter().collect();
    let d = fakes.work(std::slice::from_ref(&again), None).await;
    assert!(matches!(d[0], Disposition::Restoring(_)), "{d:?}");
    assert_eq!(lock(&fakes.recordings.restores).len(), 1, "asked for once");
    let (_, delay, attributes) = lock(&fakes.queue.requeued)[1].clone();
    assert_eq!(delay, Duration::from_secs(40));
    assert!(attributes.contains(&("restore_since".into(), since)));

    // Restored: recovered, and its outcome says from where.
    fakes.recordings.finish_restores();
    let d = fakes.work(&[again], None).await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(lock(&fakes.verint.stored).len(), 1);
    let last = lock(&fakes.outcomes.0).last().cloned().expect("an outcome");
    assert_eq!(last.restored_from.as_deref(), Some("GLACIER"));
}

#[tokio::test]
async fn a_restore_waited_for_longer_than_restore_max_wait_fails_like_any_transient_failure() {
    let mut fakes = Fakes::default();
    fakes
        .recordings
        .by_key
        .insert(format!("{ID}.wav"), Audio::Archived(silent_wav(4044)));
    let mut m = incoming(ID, 3);
    m.attributes.insert(
        "restore_since".into(),
        format_ts(Utc::now() - TimeDelta::hours(49)),
    );
    let d = fakes.work(&[m], None).await;
    let reason = match &d[0] {
        Disposition::DeadLettered(reason) => reason.clone(),
        other => panic!("its last receive dead-letters it, got {other:?}"),
    };
    assert!(reason.contains("still archived"), "{reason}");
}

#[tokio::test]
async fn a_message_back_before_its_restore_check_is_due_is_put_back_without_any_lookup() {
    let fakes = Fakes::default();
    let mut m = incoming(ID, 1);
    m.attributes.insert(
        "restore_check_at".into(),
        format_ts(Utc::now() + TimeDelta::hours(2)),
    );
    let d = fakes.work(&[m], None).await;
    assert!(matches!(d[0], Disposition::Restoring(_)), "{d:?}");
    assert!(
        d[0].is_batch_item_failure(),
        "the trigger must not delete it"
    );
    let delays = lock(&fakes.queue.delays).clone();
    assert_eq!(delays.len(), 1);
    assert!(delays[0].1 > Duration::from_secs(7000) && delays[0].1 <= Duration::from_secs(7200));
    assert_eq!(fakes.recordings.opens.load(Ordering::SeqCst), 0);
    assert!(lock(&fakes.outcomes.0).is_empty());
}

#[tokio::test]
async fn redacted_sends_only_the_redacted_audio_and_waits_when_there_is_none() {
    let mut fakes = Fakes::default();
    fn worker_with(
        fakes: &Fakes,
        variant: Variant,
    ) -> Worker<'_, FakeVerint, FakeConnect, FakeRecordings, FakeQueue, FakeOutcomes> {
        let mut w = fakes.worker();
        w.settings.audio.variant = variant;
        w
    }
    // No redacted audio yet: with `redacted` the original is never sent.
    let d = worker_with(&fakes, Variant::Redacted)
        .work_batch(&[incoming(ID, 1)], None, &mut Metrics::new("test"))
        .await;
    match &d[0] {
        Disposition::Retry(reason) => assert!(reason.contains("no redacted recording"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(fakes.verint.uploads.load(Ordering::SeqCst), 0);
    // `redacted-else-original` sends the original.
    let d = worker_with(&fakes, Variant::RedactedElseOriginal)
        .work_batch(&[incoming(ID, 1)], None, &mut Metrics::new("test"))
        .await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(
        lock(&fakes.verint.stored)[0].1,
        1024,
        "the original's bytes"
    );
    // Once Contact Lens wrote it, `redacted` sends it, and only it.
    let day = (Utc::now() - TimeDelta::hours(3)).format("%Y/%m/%d");
    let redacted = format!(
        "Analysis/Voice/Redacted/{day}/{ID}_call_recording_redacted_2026-01-01T00:00:00Z.wav"
    );
    fakes = Fakes::default();
    fakes
        .recordings
        .by_key
        .insert(redacted, Audio::Wav(silent_wav(3000)));
    let d = worker_with(&fakes, Variant::Redacted)
        .work_batch(&[incoming(ID, 1)], None, &mut Metrics::new("test"))
        .await;
    assert_eq!(d, [Disposition::Done(OutcomeStatus::Recovered)]);
    assert_eq!(
        *lock(&fakes.verint.stored),
        [(ID.to_owned(), 3000)],
        "the redacted object's bytes, and no other"
    );
}
