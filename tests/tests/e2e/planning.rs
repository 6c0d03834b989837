//! The planner against moto and the simulator: manual and automatic runs, the checkpoint, dry
//! runs, and the report and messages exactly as design §5 has them.

use std::collections::{BTreeSet, HashSet};

use chrono::{TimeDelta, Utc};
use recovery::adapters::state::S3State;
use recovery::domain::checkpoint::Checkpoint;
use recovery::domain::report::{Mode, RunReport, WindowBy};
use recovery::domain::time::{Window, format_ts, parse_ts};
use recovery::flows::plan::{PlanError, Request};
use recovery::ports::store::{RunStore, StateError, Version};
use serde_json::Value;

use local_stack::claims::*;

use crate::support::*;

fn manual(start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>, dry_run: bool) -> Request {
    Request::Manual {
        window: Window { start, end },
        dry_run,
    }
}

async fn stored_report(stack: &Stack, run_id: &str) -> RunReport {
    let store = stack.store();
    store
        .report(run_id)
        .await
        .expect("state bucket readable")
        .expect("the report was written")
}

/// A manual run over a whole past day, and the day it ran over.
struct Planned {
    stack: Stack,
    day: local_stack::generate::Day,
    window: Window,
    /// The calls the run must queue, from the generator's ground truth.
    expected: HashSet<String>,
    report: RunReport,
}

async fn plan_a_day() -> Planned {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(11, date, 160).await.expect("day");
    let window = day_window(date);
    let app = stack.planner().await.expect("planner");
    let report = app
        .run(manual(window.start, window.end, false), &|_, _| {})
        .await
        .expect("run succeeds");
    let expected = expected_missing(&day, window.start, window.end);
    assert!(!expected.is_empty(), "the generated day has missing calls");
    Planned {
        stack,
        day,
        window,
        expected,
        report,
    }
}

impl Planned {
    /// The ground truth of the eligible contacts that started in the window.
    fn eligible(&self) -> Vec<&local_stack::generate::Truth> {
        self.day
            .truth
            .iter()
            .filter(|t| {
                t.eligible() && self.window.start <= t.initiation && t.initiation < self.window.end
            })
            .collect()
    }
}

#[tokio::test]
async fn a_manual_run_reports_exactly_the_missing_calls_of_its_window_as_queued() {
    let p = plan_a_day().await;

    let reported: HashSet<String> = p.report.missing_contact_ids.iter().cloned().collect();
    assert_eq!(reported, p.expected);
    assert_eq!(
        (p.report.missing, p.report.enqueued),
        (p.expected.len() as u64, p.expected.len() as u64)
    );
}

#[tokio::test]
async fn a_manual_run_counts_the_eligible_calls_and_those_in_verint() {
    let p = plan_a_day().await;

    let eligible = p.eligible();
    assert_eq!(p.report.eligible, eligible.len() as u64);
    assert_eq!(
        p.report.in_verint,
        eligible.iter().filter(|t| t.in_verint).count() as u64
    );
}

#[tokio::test]
async fn a_manual_run_reports_calls_whose_recordings_are_all_deleted_as_unrecoverable() {
    let p = plan_a_day().await;

    let unrecoverable: BTreeSet<&str> = p
        .eligible()
        .into_iter()
        .filter(|t| !t.in_verint && t.all_deleted())
        .map(|t| t.contact_id.as_str())
        .collect();
    let reported: BTreeSet<&str> = p
        .report
        .unrecoverable
        .iter()
        .map(|u| u.contact_id.as_str())
        .collect();
    assert_eq!(reported, unrecoverable);
    assert!(
        p.report
            .unrecoverable
            .iter()
            .all(|u| u.reason.contains("DELETED"))
    );
}

#[tokio::test]
async fn a_manual_runs_eligible_calls_are_in_verint_unrecoverable_not_settled_or_missing() {
    let p = plan_a_day().await;

    let r = &p.report;
    assert_eq!(
        r.eligible,
        r.in_verint + r.unrecoverable.len() as u64 + r.not_settled + r.missing
    );
}

#[tokio::test]
async fn a_manual_run_counts_every_ctr_object_malformed_record_and_duplicate_copy() {
    let p = plan_a_day().await;

    assert_eq!(
        p.report.ctr.objects,
        p.day.ctr_objects.len() as u64,
        "every object of the hours read is counted"
    );
    assert_eq!(p.report.ctr.malformed, p.day.malformed_records as u64);
    assert!(p.report.ctr.duplicates > 0, "the day has duplicate copies");
}

#[tokio::test]
async fn a_manual_run_reports_its_window_by_initiation() {
    let p = plan_a_day().await;

    assert_eq!(
        p.report
            .window
            .as_ref()
            .map(|w| (w.start.clone(), w.end.clone(), w.by)),
        Some((
            format_ts(p.window.start),
            format_ts(p.window.end),
            WindowBy::Initiation
        ))
    );
}

#[tokio::test]
async fn a_manual_run_writes_the_report_it_returns() {
    let p = plan_a_day().await;

    assert_eq!(stored_report(&p.stack, &p.report.run_id).await, p.report);
}

#[tokio::test]
async fn a_manual_run_queues_one_message_per_missing_call() {
    let p = plan_a_day().await;

    assert_queued_exactly(&p.stack.work_queue, &p.expected).await;
}

#[tokio::test]
async fn a_manual_runs_messages_are_exactly_as_design_5_has_them() {
    let p = plan_a_day().await;

    for m in Stack::all_messages(&p.stack.work_queue)
        .await
        .expect("queue readable")
    {
        let body: Value = serde_json::from_str(&m.body).expect("json body");
        let keys: BTreeSet<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "v",
                "run_id",
                "contact_id",
                "instance_id",
                "initiation_timestamp",
                "disconnect_timestamp",
                "recordings",
                "enqueued_at"
            ])
        );
        assert_eq!(body["v"], 1);
        assert_eq!(body["run_id"], p.report.run_id.as_str());
        assert_eq!(body["instance_id"], INSTANCE);
        let id = body["contact_id"].as_str().expect("id");
        let truth = p
            .day
            .truth
            .iter()
            .find(|t| t.contact_id == id)
            .expect("a generated contact");
        assert_eq!(body["initiation_timestamp"], format_ts(truth.initiation));
        assert_eq!(
            body["disconnect_timestamp"],
            format_ts(truth.disconnect.expect("ended"))
        );
        let recordings: Vec<(String, String)> = body["recordings"]
            .as_array()
            .expect("array")
            .iter()
            .map(|r| {
                let fields: Vec<&String> = r.as_object().expect("object").keys().collect();
                assert!(
                    fields
                        .iter()
                        .all(|f| ["bucket", "key", "expected_seconds"].contains(&f.as_str())),
                    "recordings carry bucket, key and (design §10) expected_seconds only: {fields:?}"
                );
                if let Some(s) = r.get("expected_seconds") {
                    assert!(s.as_u64().is_some(), "whole seconds: {s}");
                }
                (
                    r["bucket"].as_str().expect("bucket").to_owned(),
                    r["key"].as_str().expect("key").to_owned(),
                )
            })
            .collect();
        assert_eq!(recordings, truth.recordings_to_ingest());
        assert!(parse_ts(body["enqueued_at"].as_str().expect("enqueued_at")).is_some());
    }
}

#[tokio::test]
async fn a_dry_run_reports_the_missing_calls_but_queues_nothing_and_moves_no_checkpoint() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(12, date, 80).await.expect("day");
    let (start, end) = (midnight(date), midnight(date) + TimeDelta::days(1));
    let app = stack.planner().await.expect("planner");

    let report = app
        .run(manual(start, end, true), &|_, _| {})
        .await
        .expect("run succeeds");
    assert!(report.dry_run);
    assert_eq!(report.enqueued, 0);
    assert_eq!(
        report
            .missing_contact_ids
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        expected_missing(&day, start, end)
    );
    assert_eq!(stack.work_queue.depth().await.expect("depth").visible, 0);
    assert_eq!(
        stored_report(&stack, &report.run_id).await,
        report,
        "a dry run writes its report too"
    );

    let auto = app
        .run(Request::Automatic { dry_run: true }, &|_, _| {})
        .await
        .expect("run succeeds");
    assert_eq!(auto.enqueued, 0);
    let store = stack.store();
    assert_eq!(
        store.checkpoint().await.expect("readable").0,
        None,
        "a dry run writes no checkpoint"
    );
}

#[tokio::test]
async fn automatic_runs_read_settled_hours_from_the_checkpoint_on() {
    let date = past_day();
    // The first run starts at the day's first hour: INITIAL_LOOKBACK reaches back to it.
    let lookback = format!("{}h", (Utc::now() - midnight(date)).num_hours());
    let stack = Stack::new(&[
        ("INITIAL_LOOKBACK", lookback.as_str()),
        ("MAX_HOURS_PER_RUN", "24"),
    ])
    .await
    .expect("stack");
    let day = stack.day(13, date, 160).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let store = stack.store();

    let first = app
        .run(Request::Automatic { dry_run: false }, &|_, _| {})
        .await
        .expect("first run");
    assert_eq!(first.mode, Mode::Automatic);
    let w = first.window.clone().expect("hours were read");
    assert_eq!(
        (w.start.as_str(), w.by),
        (format_ts(midnight(date)).as_str(), WindowBy::Arrival)
    );
    assert_eq!(w.end, format_ts(midnight(date) + TimeDelta::hours(24)));
    let (checkpoint, _) = store.checkpoint().await.expect("readable");
    assert_eq!(
        checkpoint.expect("written").next_hour,
        w.end,
        "the checkpoint names the next hour to read"
    );

    let second = app
        .run(Request::Automatic { dry_run: false }, &|_, _| {})
        .await
        .expect("second run");
    let w2 = second.window.clone().expect("hours were read");
    assert_eq!(
        w2.start, w.end,
        "the second run starts where the first stopped"
    );

    // Every missing call of the day was queued by one of the runs, and nothing else was.
    let queued: HashSet<String> = first
        .missing_contact_ids
        .iter()
        .chain(&second.missing_contact_ids)
        .cloned()
        .collect();
    let missing: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.missing())
        .map(|t| t.contact_id.clone())
        .collect();
    assert!(
        queued.is_superset(&missing),
        "not queued: {:?}",
        missing.difference(&queued).collect::<Vec<_>>()
    );
    for id in &queued {
        let t = day
            .truth
            .iter()
            .find(|t| &t.contact_id == id)
            .expect("generated");
        assert!(
            t.ours && t.channel == "VOICE" && !t.in_verint,
            "{id} should not have been queued"
        );
    }
    let messages = Stack::all_messages(&stack.work_queue).await.expect("queue");
    assert_eq!(messages.len() as u64, first.enqueued + second.enqueued);
}

/// A store that lets another run move the checkpoint between this run's read and its write.
struct Racing<'a> {
    inner: &'a S3State,
}

impl RunStore for Racing<'_> {
    async fn checkpoint(&self) -> Result<(Option<Checkpoint>, Version), StateError> {
        let read = self.inner.checkpoint().await?;
        let other = Checkpoint {
            next_hour: "2030-01-01T00:00:00Z".into(),
            updated_at: format_ts(Utc::now()),
            run_id: "the-other-run".into(),
            hours: vec![],
        };
        self.inner.put_checkpoint(&other, &read.1).await?;
        Ok(read)
    }
    async fn put_checkpoint(&self, c: &Checkpoint, v: &Version) -> Result<(), StateError> {
        self.inner.put_checkpoint(c, v).await
    }
    async fn put_report(&self, r: &RunReport) -> Result<(), StateError> {
        self.inner.put_report(r).await
    }
    async fn put_status(&self, s: &recovery::domain::report::RunStatus) -> Result<(), StateError> {
        self.inner.put_status(s).await
    }
    type Ledger = recovery::ports::store::MemoryLedger;
    fn ledger(&self, _run_id: &str) -> Self::Ledger {
        recovery::ports::store::MemoryLedger::default()
    }
}

#[tokio::test]
async fn a_concurrent_checkpoint_write_is_detected_and_nothing_is_overwritten() {
    let date = past_day();
    let lookback = format!("{}h", (Utc::now() - midnight(date)).num_hours());
    let stack = Stack::new(&[("INITIAL_LOOKBACK", lookback.as_str())])
        .await
        .expect("stack");
    stack.day(14, date, 40).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let store = stack.store();

    // Directly: a write with a stale version fails.
    let (_, absent) = store.checkpoint().await.expect("readable");
    let c = |h: &str| Checkpoint {
        next_hour: h.into(),
        updated_at: format_ts(Utc::now()),
        run_id: format!("t-{h}"),
        hours: vec![],
    };
    store
        .put_checkpoint(&c("2026-01-01T00:00:00Z"), &absent)
        .await
        .expect("first write");
    assert!(matches!(
        store
            .put_checkpoint(&c("2026-01-01T01:00:00Z"), &absent)
            .await,
        Err(StateError::Conflict)
    ));
    let (_, current) = store.checkpoint().await.expect("readable");
    store
        .put_checkpoint(&c("2026-01-01T02:00:00Z"), &current)
        .await
        .expect("write on the current version");
    assert!(matches!(
        store
            .put_checkpoint(&c("2026-01-01T03:00:00Z"), &current)
            .await,
        Err(StateError::Conflict)
    ));
    store
        .put_checkpoint(
            &c(&format_ts(midnight(date))),
            &store.checkpoint().await.expect("readable").1,
        )
        .await
        .expect("reset");

    // Through a run: the other run's checkpoint survives and the run fails, saying why.
    let racing = Racing { inner: &store };
    let planner = recovery::flows::plan::Planner {
        config: &app.config,
        source: &app.source,
        verint: &app.verint,
        queue: &app.queue,
        store: &racing,
        concurrency: 4,
        progress: &|_, _| {},
        orphans: None,
        redacted: None,
        deadline: None,
        finish_by: None,
    };
    let err = planner
        .run(Request::Automatic { dry_run: false }, Utc::now())
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, PlanError::State(StateError::Conflict)),
        "{err:?}"
    );
    assert_eq!(
        store
            .checkpoint()
            .await
            .expect("readable")
            .0
            .expect("present")
            .run_id,
        "the-other-run"
    );
}

#[tokio::test]
async fn an_invalid_invocation_is_rejected_before_any_work() {
    let stack = Stack::new(&[]).await.expect("stack");
    let app = stack.planner().await.expect("planner");
    for (payload, expected) in [
        (
            serde_json::json!({"start": "2026-13-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}),
            "not an RFC 3339 time",
        ),
        (
            serde_json::json!({"start": format_ts(Utc::now()), "end": format_ts(Utc::now() - TimeDelta::hours(1))}),
            "must be before end",
        ),
        (
            serde_json::json!({"detail-type": "Object Created"}),
            "not a schedule",
        ),
        (serde_json::json!("run please"), "a string"),
    ] {
        let event = lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default());
        let err = planner::handle(&app, event).await.expect_err("rejected");
        assert_eq!(err.error_type, "InvalidRequest");
        assert!(
            err.error_message.contains(expected),
            "{}",
            err.error_message
        );
    }
    let store = stack.store();
    assert!(
        store.run_ids().await.expect("readable").is_empty(),
        "no run was started"
    );
}

#[tokio::test]
async fn an_automatic_run_with_no_settled_hour_reports_a_null_window() {
    let stack = Stack::new(&[("INITIAL_LOOKBACK", "0s")])
        .await
        .expect("stack");
    let app = stack.planner().await.expect("planner");
    let report = app
        .run(Request::Automatic { dry_run: false }, &|_, _| {})
        .await
        .expect("run");
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["window"], Value::Null);
    assert_eq!(
        json["ctr"],
        serde_json::json!({"objects": 0, "records": 0, "malformed": 0, "duplicates": 0})
    );
    assert_eq!(
        (report.eligible, report.missing, report.enqueued),
        (0, 0, 0)
    );
}
