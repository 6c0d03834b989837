use super::*;
use crate::ports::store::MemoryRunDocuments;

fn ts(s: &str) -> DateTime<Utc> {
    parse_ts(s).expect("a valid time")
}

fn window(start: &str, end: &str) -> Window {
    Window {
        start: ts(start),
        end: ts(end),
    }
}

#[test]
fn a_window_of_24_hours_is_one_run_and_a_longer_one_a_backfill() {
    assert!(!is_backfill(&window(
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z"
    )));
    assert!(is_backfill(&window(
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:01Z"
    )));
}

#[test]
fn a_40_hour_window_is_a_24_hour_slice_then_a_16_hour_one() {
    let b = Backfill::new(
        window("2026-01-01T06:30:00Z", "2026-01-02T22:30:00Z"),
        false,
        ts("2026-02-01T00:00:00Z"),
    );
    let spans: Vec<(&str, &str)> = b
        .slices
        .iter()
        .map(|s| (s.start.as_str(), s.end.as_str()))
        .collect();
    assert_eq!(
        spans,
        [
            ("2026-01-01T06:30:00Z", "2026-01-02T06:30:00Z"),
            ("2026-01-02T06:30:00Z", "2026-01-02T22:30:00Z"),
        ]
    );
    assert_eq!(b.slices[0].run_id, format!("{}-s0001", b.run_id));
    assert_eq!(b.slices[1].run_id, format!("{}-s0002", b.run_id));
}

#[test]
fn a_window_of_731_days_makes_731_slices_in_order() {
    let b = Backfill::new(
        window("2025-01-01T00:00:00Z", "2027-01-02T00:00:00Z"),
        true,
        ts("2027-01-03T00:00:00Z"),
    );
    assert_eq!(b.slices.len(), 731);
    assert!(
        b.slices
            .windows(2)
            .all(|p| p[0].end == p[1].start && p[0].run_id < p[1].run_id)
    );
    assert_eq!(
        b.slices.last().map(|s| s.end.as_str()),
        Some("2027-01-02T00:00:00Z")
    );
}

#[test]
fn a_slice_message_round_trips_and_a_wrong_one_is_named() {
    let b = Backfill::new(
        window("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"),
        false,
        ts("2026-02-01T00:00:00Z"),
    );
    let m = &b.messages()[1];
    let body = serde_json::to_string(m).expect("serialises");
    assert_eq!(SliceMessage::parse(&body).as_ref(), Ok(m));

    let mut long = m.clone();
    long.end = "2026-01-05T00:00:00Z".into();
    let err = SliceMessage::parse(&serde_json::to_string(&long).expect("serialises"));
    assert!(err.expect_err("too long").contains("longer than 24 hours"));
    let err = SliceMessage::parse(r#"{"v":1,"run_id":"x"}"#).expect_err("incomplete");
    assert!(err.contains("parent_run_id"), "{err}");
    let mut foreign = m.clone();
    foreign.run_id = "20260101T000000Z-00000000-s0001".into();
    let err = SliceMessage::parse(&serde_json::to_string(&foreign).expect("serialises"));
    assert!(err.expect_err("foreign").contains("is not a slice of"));
}

fn slice_report(run_id: &str, missing: &[&str], objects: u64) -> RunReport {
    RunReport {
        ctr: CtrCounts {
            objects,
            records: 10,
            malformed: 1,
            duplicates: 0,
        },
        eligible: 5,
        in_verint: 5 - missing.len() as u64,
        missing: missing.len() as u64,
        enqueued: missing.len() as u64,
        missing_contact_ids: missing.iter().map(|s| s.to_string()).collect(),
        duration_ms: 7,
        ..RunReport::empty(run_id, Mode::Manual)
    }
}

#[test]
fn the_parent_report_sums_its_slices_in_window_order() {
    let b = Backfill::new(
        window("2026-01-01T00:00:00Z", "2026-01-02T16:00:00Z"),
        false,
        ts("2026-02-01T00:00:00Z"),
    );
    let ends: Vec<SliceEntry> = b
        .slices
        .iter()
        .map(|s| SliceEntry {
            run_id: s.run_id.clone(),
            start: s.start.clone(),
            end: s.end.clone(),
            status: RunState::Completed,
            error: None,
        })
        .collect();
    // Read back in any order, summed in window order.
    let reports = [
        slice_report(&b.slices[1].run_id, &["c", "d"], 3),
        slice_report(&b.slices[0].run_id, &["a"], 4),
    ];
    let r = parent_report(
        &b,
        &slice_entries(&b, &ends),
        &reports,
        ts("2026-02-01T00:01:00Z"),
    );
    assert_eq!(r.run_id, b.run_id);
    assert_eq!(
        (r.eligible, r.in_verint, r.missing, r.enqueued),
        (10, 7, 3, 3)
    );
    assert_eq!((r.ctr.objects, r.ctr.records, r.ctr.malformed), (7, 20, 2));
    assert_eq!(r.missing_contact_ids, ["a", "c", "d"]);
    assert_eq!(r.duration_ms, 60_000);
    let window = r.window.expect("a window");
    assert_eq!(
        (window.start.as_str(), window.end.as_str()),
        ("2026-01-01T00:00:00Z", "2026-01-02T16:00:00Z")
    );
    let slices = r.slices.expect("slices");
    assert_eq!(slices.len(), 2);
    assert!(slices.iter().all(|s| s.status == RunState::Completed));
}

#[test]
fn a_slice_not_yet_ended_is_queued_and_a_failed_one_names_its_error() {
    let b = Backfill::new(
        window("2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),
        false,
        ts("2026-02-01T00:00:00Z"),
    );
    let ends = [SliceEntry {
        run_id: b.slices[1].run_id.clone(),
        start: b.slices[1].start.clone(),
        end: b.slices[1].end.clone(),
        status: RunState::Failed,
        error: Some("Verint DAS could not be asked".into()),
    }];
    let entries = slice_entries(&b, &ends);
    assert_eq!(
        entries.iter().map(|e| e.status).collect::<Vec<_>>(),
        [RunState::Queued, RunState::Failed, RunState::Queued]
    );
    let progress = progress_of(&entries);
    assert_eq!((progress.total, progress.done, progress.failed), (3, 0, 1));
    let status = parent_status(&b, &entries, progress, ts("2026-02-01T00:00:00Z"));
    assert_eq!(status.status, RunState::Running);
    let error = status.error.expect("the failed slice is named");
    assert!(
        error.contains(&b.slices[1].run_id) && error.contains("Verint DAS"),
        "{error}"
    );
}

#[test]
fn a_backfill_half_way_through_is_expected_to_finish_as_long_again_from_now() {
    let started = parse_ts("2026-12-01T00:00:00Z").expect("valid");
    let now = parse_ts("2026-12-01T10:00:00Z").expect("valid");
    // Half the slices planned, and the calls they queued half worked, in 10 hours.
    let p = progress(started, now, (15, 30), (500, 1000));
    // Slices: 15 left at 1.5 an hour = 10 h. Calls: 2000 expected, 1500 left at 50 an hour.
    assert_eq!(p.expected_finish.as_deref(), Some("2026-12-02T16:00:00Z"));
    let done = progress(started, now, (30, 30), (1000, 1000));
    assert_eq!(done.expected_finish, None, "nothing left");
    let early = progress(started, now, (0, 30), (0, 0));
    assert_eq!(early.expected_finish, None, "no rate yet");
}

/// A parent status of four slices, `done` and `failed` of them ended.
fn at(done: u32, failed: u32, state: RunState) -> RunStatus {
    RunStatus {
        run_id: "p".into(),
        mode: Mode::Manual,
        dry_run: false,
        status: state,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        error: None,
        slices: Some(SliceProgress {
            total: 4,
            done,
            failed,
        }),
    }
}

#[test]
fn an_abandoned_backfill_stays_failed_when_a_late_slice_settles() {
    assert!(!moves_forward(
        &at(0, 0, RunState::Failed),
        &at(1, 0, RunState::Running)
    ));
    assert!(!moves_forward(
        &at(2, 1, RunState::Failed),
        &at(3, 1, RunState::Running)
    ));
}

#[test]
fn the_status_never_moves_back_to_fewer_slices_ended() {
    assert!(moves_forward(
        &at(1, 0, RunState::Running),
        &at(2, 0, RunState::Running)
    ));
    assert!(!moves_forward(
        &at(3, 0, RunState::Running),
        &at(2, 0, RunState::Running)
    ));
    assert!(!moves_forward(
        &at(2, 0, RunState::Running),
        &at(2, 0, RunState::Running)
    ));
    // A failed slice run again and completed: as many ended, more done.
    assert!(moves_forward(
        &at(3, 1, RunState::Failed),
        &at(4, 0, RunState::Completed)
    ));
    assert!(!moves_forward(
        &at(4, 0, RunState::Completed),
        &at(3, 1, RunState::Failed)
    ));
}

#[tokio::test]
async fn slices_that_end_in_any_order_settle_their_parent_once_all_completed() {
    let store = MemoryRunDocuments::default();
    let now = ts("2026-11-30T12:00:00Z");
    let backfill = Backfill::new(
        window("2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z"),
        false,
        now,
    );
    begin(&store, &backfill).await.expect("begins");
    let messages = backfill.messages();
    assert_eq!(messages.len(), 3);
    // The last slice first, then a failed attempt of the first, then both again.
    let found = |m: &SliceMessage, missing: &'static [&'static str]| {
        let report = slice_report(&m.run_id, missing, 10);
        let store = &store;
        async move {
            store
                .put_run_json(&report.run_id, "report.json", &report)
                .await
                .expect("written");
            Ok(report)
        }
    };
    run_slice(&store, &messages[2], |_, _| found(&messages[2], &["c3"]))
        .await
        .expect("the slice completes");
    let failed = run_slice(&store, &messages[0], |_, _| async {
        Err(PlanError::Invalid("DAS down".into()))
    })
    .await;
    assert!(failed.is_err(), "the slice's own error is returned");
    let (_, entries) = read(&store, &backfill.run_id)
        .await
        .expect("read")
        .expect("a backfill");
    let states: Vec<RunState> = entries.iter().map(|e| e.status).collect();
    assert_eq!(
        states,
        [RunState::Failed, RunState::Queued, RunState::Completed]
    );
    let status: RunStatus = store
        .run_json(&backfill.run_id, STATUS)
        .await
        .expect("read")
        .expect("a status")
        .0;
    assert_eq!(
        status.status,
        RunState::Running,
        "one slice has not ended yet"
    );
    let error = status.error.expect("the failed slice is named");
    assert!(error.contains("DAS down"), "{error}");
    assert!(
        store
            .report(&backfill.run_id)
            .await
            .expect("read")
            .is_none()
    );

    run_slice(&store, &messages[0], |_, _| found(&messages[0], &["c1"]))
        .await
        .expect("the slice completes when run again");
    run_slice(&store, &messages[1], |_, _| {
        found(&messages[1], &["c2", "c2b"])
    })
    .await
    .expect("the slice completes");
    let settled = settle_parent(&store, &backfill.run_id)
        .await
        .expect("settles");
    assert_eq!(settled.status.status, RunState::Completed);
    let report = store
        .report(&backfill.run_id)
        .await
        .expect("read")
        .expect("the parent report, once every slice completed");
    assert_eq!(report.missing_contact_ids, ["c1", "c2", "c2b", "c3"]);
}
