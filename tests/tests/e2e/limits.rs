//! Runs inside their deadline (design §4.7): a run the deadline stops mid-queueing records what
//! it queued, and the next attempt of the same plan continues from there, sending nothing twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use recovery::domain::message::WorkMessage;
use recovery::flows::plan::{PlanError, Request};

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
    let slow = SlowFirstSend::new(&app, finish_by);
    let first = slow
        .planner(&app)
        .run_as("first-attempt", request, chrono::Utc::now())
        .await;
    let stopped_at = match first {
        Err(PlanError::Unfinished {
            queued, missing, ..
        }) => {
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

#[tokio::test]
async fn a_first_automatic_run_stopped_by_its_deadline_pins_its_start_so_the_next_continues_the_same_hours()
 {
    let date = past_day();
    let lookback = format!("{}h", (chrono::Utc::now() - midnight(date)).num_hours());
    let stack = Stack::new(&[("INITIAL_LOOKBACK", lookback.as_str())])
        .await
        .expect("stack");
    let day = stack.day_with(93, date, 750, Some(1.0)).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let finish_by = Instant::now() + Duration::from_secs(8);
    let slow = SlowFirstSend::new(&app, finish_by);
    let first = slow
        .planner(&app)
        .run(Request::Automatic { dry_run: false }, chrono::Utc::now())
        .await;
    assert!(
        matches!(first, Err(PlanError::Unfinished { .. })),
        "{first:?}"
    );
    let (pinned, _) = recovery::ports::store::RunStore::checkpoint(&app.store)
        .await
        .expect("readable");
    let pinned = pinned.expect("the first checkpoint is pinned");
    assert!(pinned.hours.is_empty(), "no hour counts as read yet");

    // An hour later by the clock, the next run still starts at the pinned hour.
    let second = app
        .planner(None, &|_, _| {})
        .run(
            Request::Automatic { dry_run: false },
            chrono::Utc::now() + chrono::TimeDelta::hours(1),
        )
        .await
        .expect("the next run finishes");

    assert_eq!(
        second.window.as_ref().map(|w| w.start.clone()),
        Some(pinned.next_hour.clone())
    );
    assert!(second.already_queued > 0);
    let messages = Stack::all_messages(&stack.work_queue)
        .await
        .expect("messages");
    let ids: Vec<String> = messages
        .iter()
        .map(|m| {
            WorkMessage::parse(&m.body)
                .expect("a work message")
                .contact_id
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "nothing queued twice");
    assert_eq!(
        distinct.len() as u64,
        second.enqueued,
        "every call the plan found missing is in the queue, once"
    );
    let in_day = expected_missing(
        &day,
        midnight(date),
        midnight(date) + chrono::TimeDelta::days(1),
    );
    assert!(
        distinct.iter().all(|id| in_day.contains(*id)),
        "only the day's missing calls"
    );
}
