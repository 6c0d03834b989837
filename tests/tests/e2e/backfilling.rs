//! Backfills (design §4.8): a manual window over 24 hours is planned as 24-hour slices, each an
//! ordinary manual run, fanned out through the planning queue (one planner invocation per
//! slice), their calls queued on the backfill queue, and summed in a parent report.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use lambda_runtime::{Context, LambdaEvent};
use local_stack::claims::assert_queued_exactly;
use local_stack::generate::Day;
use local_stack::sim::Faults;
use local_stack::stack::{Stack, expected_missing, midnight, past_day};
use recovery::domain::report::{RunReport, RunState, RunStatus};
use recovery::domain::time::format_ts;
use serde_json::{Value, json};

/// Two generated days and a 40-hour window across them: two slices, of 24 and 16 hours.
struct Scenario {
    stack: Stack,
    app: planner::App,
    days: [Day; 2],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Scenario {
    async fn new() -> Scenario {
        let stack = Stack::new(&[]).await.expect("stack");
        let second = past_day();
        let first = second - TimeDelta::days(1);
        let days = [
            stack.day(41, first, 30).await.expect("first day"),
            stack.day(42, second, 30).await.expect("second day"),
        ];
        let app = stack.planner().await.expect("planner");
        let start = midnight(first) + TimeDelta::hours(4);
        Scenario {
            stack,
            app,
            days,
            start,
            end: start + TimeDelta::hours(40),
        }
    }

    /// What the generator says the window misses.
    fn truth(&self) -> HashSet<String> {
        self.days
            .iter()
            .flat_map(|d| expected_missing(d, self.start, self.end))
            .collect()
    }

    /// Invokes the planner with the window, as an operator's `aws lambda invoke` would.
    async fn invoke(&self) -> Value {
        let payload = json!({"start": format_ts(self.start), "end": format_ts(self.end)});
        planner::handle(&self.app, LambdaEvent::new(payload, Context::default()))
            .await
            .expect("the backfill starts")
    }

    /// Delivers each planning-queue message to the planner as its event source mapping would:
    /// one record per invocation. Returns each invocation's answer.
    async fn deliver_slices(&self) -> Vec<Value> {
        let messages = Stack::all_messages(&self.stack.planning_queue)
            .await
            .expect("the planning queue is readable");
        let mut answers = Vec::new();
        for m in messages {
            let event = json!({"Records": [{
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:planning",
                "awsRegion": "us-east-1"
            }]});
            let answer = planner::handle(&self.app, LambdaEvent::new(event, Context::default()))
                .await
                .expect("a slice batch is answered");
            self.stack
                .planning_queue
                .delete(&m.receipt_handle)
                .await
                .expect("deleted, as Lambda does after a batch");
            answers.push(answer);
        }
        answers
    }

    async fn report(&self, run_id: &str) -> RunReport {
        self.stack
            .store()
            .report(run_id)
            .await
            .expect("readable")
            .unwrap_or_else(|| panic!("run {run_id} has a report"))
    }

    async fn status(&self, run_id: &str) -> RunStatus {
        self.stack
            .store()
            .status(run_id)
            .await
            .expect("readable")
            .unwrap_or_else(|| panic!("run {run_id} has a status"))
    }
}

fn run_id_of(answer: &Value) -> String {
    answer["run_id"].as_str().expect("a run id").to_owned()
}

#[tokio::test]
async fn a_40_hour_window_is_sent_as_two_slices_on_the_planning_queue() {
    let s = Scenario::new().await;
    let answer = s.invoke().await;
    let run_id = run_id_of(&answer);
    let slices: Vec<(&str, &str)> = answer["slices"]
        .as_array()
        .expect("slices")
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap_or(""),
                s["end"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let middle = format_ts(s.start + TimeDelta::hours(24));
    assert_eq!(
        slices,
        [
            (format_ts(s.start).as_str(), middle.as_str()),
            (middle.as_str(), format_ts(s.end).as_str())
        ]
    );
    let queued = Stack::all_messages(&s.stack.planning_queue)
        .await
        .expect("readable");
    assert_eq!(queued.len(), 2, "one planning message per slice");
    assert!(
        queued.iter().all(|m| m.body.contains(&run_id)),
        "each names its parent"
    );
    let status = s.status(&run_id).await;
    assert_eq!(status.status, RunState::Running);
    assert_eq!(status.slices.map(|p| (p.total, p.done)), Some((2, 0)));
}

#[tokio::test]
async fn the_slices_queue_the_union_of_their_missing_calls_once_each_on_the_backfill_queue() {
    let s = Scenario::new().await;
    let run_id = run_id_of(&s.invoke().await);
    let answers = s.deliver_slices().await;
    assert!(
        answers
            .iter()
            .all(|a| a["batchItemFailures"].as_array().is_some_and(Vec::is_empty)),
        "no slice failed: {answers:?}"
    );
    let parent = s.report(&run_id).await;
    let mut union = HashSet::new();
    for slice in parent
        .slices
        .as_deref()
        .expect("the parent names its slices")
    {
        union.extend(s.report(&slice.run_id).await.missing_contact_ids);
    }
    assert_eq!(
        union,
        s.truth(),
        "the slices found what the generator made missing"
    );
    assert!(!union.is_empty(), "the window misses calls");
    assert_queued_exactly(&s.stack.backfill_queue, &union).await;
    assert_queued_exactly(&s.stack.work_queue, &HashSet::new()).await;
}

#[tokio::test]
async fn the_parent_report_sums_its_slices_once_both_completed() {
    let s = Scenario::new().await;
    let run_id = run_id_of(&s.invoke().await);
    s.deliver_slices().await;
    let parent = s.report(&run_id).await;
    let entries = parent.slices.clone().expect("slices");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.status == RunState::Completed));
    let slices = [
        s.report(&entries[0].run_id).await,
        s.report(&entries[1].run_id).await,
    ];
    let sum = |f: fn(&RunReport) -> u64| slices.iter().map(f).sum::<u64>();
    assert_eq!(parent.eligible, sum(|r| r.eligible));
    assert_eq!(parent.in_verint, sum(|r| r.in_verint));
    assert_eq!(parent.missing, sum(|r| r.missing));
    assert_eq!(parent.enqueued, sum(|r| r.enqueued));
    assert_eq!(parent.ctr.records, sum(|r| r.ctr.records));
    let concatenated: Vec<String> = slices
        .iter()
        .flat_map(|r| r.missing_contact_ids.clone())
        .collect();
    assert_eq!(parent.missing_contact_ids, concatenated);
    let window = parent.window.expect("a window");
    assert_eq!(
        (window.start, window.end),
        (format_ts(s.start), format_ts(s.end))
    );
    let status = s.status(&run_id).await;
    assert_eq!(status.status, RunState::Completed);
    assert_eq!(
        status.slices.map(|p| (p.total, p.done, p.failed)),
        Some((2, 2, 0))
    );
}

#[tokio::test]
async fn a_failed_slice_is_named_with_its_error_and_completes_the_parent_when_run_again() {
    let s = Scenario::new().await;
    let run_id = run_id_of(&s.invoke().await);
    s.stack.sim.state().set_faults(Faults {
        das_page_fault: 1.0,
        ..Faults::default()
    });
    let messages = Stack::all_messages(&s.stack.planning_queue)
        .await
        .expect("readable");
    let first = recovery::flows::backfill::SliceMessage::parse(&messages[0].body).expect("a slice");
    let failed = s.app.run_slice(&first, None).await;
    assert!(failed.is_err(), "the slice fails while DAS does");
    let status = s.status(&run_id).await;
    let error = status.error.expect("the parent names the failure");
    assert!(error.contains(&first.run_id), "{error}");
    assert!(error.contains("DAS"), "{error}");
    assert_eq!(status.slices.map(|p| (p.done, p.failed)), Some((0, 1)));
    assert!(
        s.stack
            .store()
            .report(&run_id)
            .await
            .expect("readable")
            .is_none()
    );

    s.stack.sim.state().set_faults(Faults::default());
    for m in &messages {
        let slice = recovery::flows::backfill::SliceMessage::parse(&m.body).expect("a slice");
        s.app.run_slice(&slice, None).await.expect("the slice runs");
    }
    let status = s.status(&run_id).await;
    assert_eq!(status.status, RunState::Completed, "{status:?}");
    assert_eq!(status.error, None);
    assert_eq!(s.report(&run_id).await.missing as usize, s.truth().len());
}

#[tokio::test]
async fn a_slice_waits_without_using_up_its_receives_while_the_backfill_queue_is_full() {
    let mut s = Scenario::new().await;
    s.stack
        .vars
        .insert("BACKFILL_MAX_QUEUED".into(), "3".into());
    s.app = s.stack.planner().await.expect("planner");
    let bodies: Vec<(String, Option<String>)> = (0..3)
        .map(|i| (format!("{{\"queued\":{i}}}"), None))
        .collect();
    s.stack
        .backfill_queue
        .send_bodies(&bodies)
        .await
        .expect("the backfill lane is full");
    let run_id = run_id_of(&s.invoke().await);

    let answers = s.deliver_slices().await;

    assert_eq!(answers.len(), 2);
    for answer in &answers {
        assert_eq!(
            answer["batchItemFailures"].as_array().map(Vec::len),
            Some(0),
            "waiting is not a failure: {answer}"
        );
    }
    let depth = s.stack.planning_queue.depth().await.expect("depth");
    assert_eq!(
        depth.visible + depth.in_flight,
        0,
        "the waiting copies are delayed, not visible yet"
    );
    let status = s.status(&run_id).await;
    assert_eq!(
        status.status,
        RunState::Running,
        "no slice planned, none failed"
    );
    assert_eq!(
        status.slices.map(|p| (p.done, p.failed)),
        Some((0, 0)),
        "{status:?}"
    );
    assert_eq!(
        s.stack.backfill_queue.depth().await.expect("depth").visible,
        3,
        "nothing queued on a full lane"
    );
}
