//! `recoveryctl redrive`'s fallback against moto (which has no `StartMessageMoveTask`): a worker
//! that dead-letters every copy again while the redrive runs cannot make it move a call twice or
//! run forever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use local_stack::sim::Faults;
use recovery::adapters::sqs_redrive::SqsRedrive;
use recovery::flows::redrive::{self, Redrive, Stop};
use recovery::ports::queue::{Lane, MoveTask, MoveTaskError, RedriveQueues};
use recovery::ports::queue::{QueueError, Received};

use local_stack::claims::*;

use crate::support::*;

/// The real queues, with a worker alongside that takes each copy as soon as it is sent and, Verint
/// still rejecting the call, dead-letters it again as the worker does: a new message in the DLQ
/// with its `failure_reason`, then a delete from the work queue.
struct WorkerAlongside<'a> {
    queues: SqsRedrive,
    stack: &'a Stack,
    sent: Mutex<HashMap<String, u32>>,
}

impl RedriveQueues for WorkerAlongside<'_> {
    async fn move_tasks(&self) -> Result<Vec<MoveTask>, MoveTaskError> {
        self.queues.move_tasks().await
    }
    async fn start_move_task(&self) -> Result<Option<String>, MoveTaskError> {
        self.queues.start_move_task().await
    }
    async fn dead_letter_depth(&self) -> Result<u64, QueueError> {
        self.queues.dead_letter_depth().await
    }
    async fn receive_dead_letters(&self, max: u32) -> Result<Vec<Received>, QueueError> {
        self.queues.receive_dead_letters(max).await
    }
    fn has_backfill_lane(&self) -> bool {
        self.queues.has_backfill_lane()
    }
    async fn release_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.queues.release_dead_letter(receipt_handle).await
    }
    async fn send_to(&self, lane: Lane, body: &str) -> Result<String, QueueError> {
        let id = self.queues.send_to(lane, body).await?;
        *self
            .sent
            .lock()
            .expect("lock")
            .entry(body.to_owned())
            .or_default() += 1;
        for m in self
            .stack
            .work_queue
            .receive(10, Duration::from_secs(1), Some(Duration::from_secs(60)))
            .await?
        {
            self.stack
                .dead_letter_queue
                .send_with_reason(&m.body, "verint rejected the call (422)")
                .await?;
            self.stack.work_queue.delete(&m.receipt_handle).await?;
        }
        Ok(id)
    }
    async fn delete_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.queues.delete_dead_letter(receipt_handle).await
    }
}

#[tokio::test]
async fn a_call_dead_lettered_again_during_the_fallback_is_not_moved_twice() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(41, date, 40).await.expect("day");
    let window = day_window(date);
    let ids = sorted(&expected_missing(&day, window.start, window.end));
    assert!(ids.len() >= 3, "the day has calls to dead-letter");
    stack.sim.state().set_faults(Faults {
        reject_contact_ids: ids.clone(),
        ..Faults::default()
    });
    let planner = stack.planner().await.expect("planner");
    plan_manual(&planner, window).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(60))
        .await
        .expect("drained");
    assert_eq!(
        dead_letter_depth(&stack).await,
        ids.len() as u64,
        "Verint rejected every call"
    );

    let queues = WorkerAlongside {
        queues: SqsRedrive::new(
            stack.sqs.clone(),
            stack.dead_letter_queue.url(),
            stack.work_queue.url(),
        )
        .await
        .expect("arns"),
        stack: &stack,
        sent: Mutex::new(HashMap::new()),
    };
    let outcome =
        tokio::time::timeout(Duration::from_secs(300), redrive::redrive(&queues, &|_| {}))
            .await
            .expect("the redrive ends while the worker keeps dead-lettering")
            .expect("redrive");

    let Redrive::ReceiveSendDelete {
        moved,
        depth_at_start,
        stopped,
        because,
        ..
    } = outcome
    else {
        panic!("moto has no StartMessageMoveTask: {outcome:?}");
    };
    assert!(because.contains("not supported"), "{because}");
    assert_eq!(depth_at_start, ids.len() as u64);
    assert_eq!(moved, ids.len() as u64, "each call moved once");
    assert_ne!(stopped, Stop::Empty, "the DLQ never emptied");
    let sent = queues.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), ids.len());
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
    assert_eq!(
        dead_letter_depth(&stack).await,
        ids.len() as u64,
        "every call is back in the DLQ, none lost"
    );
    assert!(stack.sim.state().ingested().is_empty());
}
