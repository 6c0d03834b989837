//! Runs inside their deadline (design §4.7): a run the deadline stops mid-queueing records what
//! it queued, and the next attempt of the same plan continues from there, sending nothing twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use recovery::message::WorkMessage;
use recovery::plan::{PlanError, Request};

use crate::support::*;

#[tokio::test]
async fn a_run_stopped_by_its_deadline_mid_queueing_is_continued_by_the_next_attempt_without_sending_anything_twice()
 {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day_with(91, date, 750, Some(1.0)).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    assert!(
        expected.len() > 480,
        "{} missing: more than one chunk",
        expected.len()
    );
    let app = stack.planner().await.expect("planner");
    let request = Request::Manual {
        window,
        dry_run: false,
    };

    let finish_by = Instant::now() + Duration::from_secs(8);
    let slow = SlowFirstSend {
        inner: &app.queue,
        until: finish_by,
        calls: Default::default(),
    };
    let first = recovery::plan::Planner {
        config: &app.config,
        source: &app.source,
        verint: &app.verint,
        queue: &slow,
        store: &app.store,
        concurrency: 4,
        progress: &|_, _| {},
        orphans: None,
        deadline: None,
        finish_by: Some(finish_by),
    }
    .run_as("first-attempt", request, chrono::Utc::now())
    .await;
    let stopped_at = match first {
        Err(PlanError::Unfinished { queued, missing }) => {
            assert_eq!(missing, expected.len() as u64);
            queued
        }
        other => panic!("expected the deadline to stop the run, got {other:?}"),
    };
    assert!(
        stopped_at > 0 && stopped_at < expected.len() as u64,
        "{stopped_at}"
    );

    let second = app
        .planner(None, &|_, _| {})
        .run_as("second-attempt", request, chrono::Utc::now())
        .await
        .expect("the next attempt finishes");

    assert_eq!(second.already_queued, stopped_at);
    assert_eq!(second.enqueued, expected.len() as u64);
    let messages = Stack::all_messages(&stack.work_queue)
        .await
        .expect("messages");
    let mut times: HashMap<String, u32> = HashMap::new();
    for m in &messages {
        let body = WorkMessage::parse(&m.body).expect("a work message");
        *times.entry(body.contact_id).or_default() += 1;
    }
    assert_eq!(
        times
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        expected,
        "every missing call queued"
    );
    assert!(
        times.values().all(|n| *n == 1),
        "queued twice: {:?}",
        times.iter().filter(|(_, n)| **n > 1).count()
    );
}
