//! Moving the dead-letter queue's messages back to the work queue, safely enough to run twice.
//!
//! The rules, in order:
//! 1. `ListMessageMoveTasks` on the DLQ first: a task that is `RUNNING`, `SCHEDULED` or
//!    `CANCELLING` is reported and nothing else is done (a second redrive would duplicate every
//!    message the first one has not moved yet).
//! 2. `StartMessageMoveTask`: SQS moves the messages itself.
//! 3. Only where that API is **unsupported** (an emulator without it: moto answers HTTP 500 with
//!    no AWS error code; an unknown operation) or **denied** (`AccessDenied`) does the redrive
//!    move messages itself, receive → send → delete, and then:
//!    - at most the DLQ's depth measured before it started (a worker that keeps dead-lettering
//!      the same call cannot keep it going),
//!    - stopping at the first message id it has already seen (received here, or the id of a copy
//!      it sent: SQS keeps that id when its redrive policy dead-letters the copy again),
//!    - never deleting a message before its copy was sent.
//!
//! Any other error (throttling, a task already running that the listing did not show, a real
//! `InternalError`) stops the redrive with that error: falling back then could duplicate messages.

use std::collections::HashSet;

use serde::Serialize;

use crate::ports::queue::QueueError;

use crate::ports::queue::MoveTask;
use crate::ports::queue::MoveTaskError;
use crate::ports::queue::RedriveQueues;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("listing the dead-letter queue's move tasks failed")]
    List(#[source] MoveTaskError),
    #[error("starting a move task failed")]
    Start(#[source] MoveTaskError),
    #[error("reading the dead-letter queue's depth failed")]
    Depth(#[source] QueueError),
    #[error("receiving from the dead-letter queue failed after moving {moved} message(s)")]
    Receive {
        moved: u64,
        #[source]
        source: QueueError,
    },
    #[error(
        "sending message {message_id} to the work queue failed after moving {moved} message(s); it stays in the dead-letter queue"
    )]
    Send {
        moved: u64,
        message_id: String,
        #[source]
        source: QueueError,
    },
    #[error(
        "message {message_id} was copied to the work queue but could not be deleted from the dead-letter queue (moved {moved} before it); delete it by hand or let the worker see it twice"
    )]
    Delete {
        moved: u64,
        message_id: String,
        #[source]
        source: QueueError,
    },
}

/// Why the fallback stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// A receive found no visible message.
    Empty,
    /// It moved as many messages as the DLQ held when it started.
    DepthReached,
    /// It received a message it had seen (or sent) before.
    SeenBefore,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Redrive {
    /// A move task was already under way: nothing was done.
    AlreadyRunning { task: MoveTask },
    /// SQS moves the messages (`StartMessageMoveTask`).
    StartMessageMoveTask {
        task_handle: Option<String>,
        depth_at_start: u64,
    },
    /// The fallback moved the messages itself.
    ReceiveSendDelete {
        moved: u64,
        /// Messages left in the DLQ because a message with the same body was moved by this run
        /// (the worker dead-lettered the copy again).
        skipped: u64,
        depth_at_start: u64,
        stopped: Stop,
        /// Why the move-task api could not be used.
        because: String,
    },
}

/// Redrives the DLQ by the rules of this module. `progress` is called with the number moved so
/// far by the fallback.
pub async fn redrive<Q: RedriveQueues>(
    queues: &Q,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Redrive, RedriveError> {
    let because = match queues.move_tasks().await {
        Ok(tasks) => {
            if let Some(task) = tasks.into_iter().find(MoveTask::is_active) {
                return Ok(Redrive::AlreadyRunning { task });
            }
            None
        }
        // Without a listing, nothing is known to be running: StartMessageMoveTask itself
        // refuses a second task, and its error is not one that allows the fallback.
        Err(e) if e.allows_fallback() => Some(e.to_string()),
        Err(e) => return Err(RedriveError::List(e)),
    };
    let depth_at_start = queues
        .dead_letter_depth()
        .await
        .map_err(RedriveError::Depth)?;
    let because = match queues.start_move_task().await {
        Ok(task_handle) => {
            return Ok(Redrive::StartMessageMoveTask {
                task_handle,
                depth_at_start,
            });
        }
        Err(e) if e.allows_fallback() => match because {
            Some(list) if list != e.to_string() => format!("{list}; {e}"),
            _ => e.to_string(),
        },
        Err(e) => return Err(RedriveError::Start(e)),
    };
    let m = move_one_by_one(queues, depth_at_start, progress).await?;
    Ok(Redrive::ReceiveSendDelete {
        moved: m.moved,
        skipped: m.skipped,
        depth_at_start,
        stopped: m.stopped,
        because,
    })
}

/// What the fallback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Moved {
    moved: u64,
    skipped: u64,
    stopped: Stop,
}

/// The fallback: receive, send, and only then delete. It handles at most `limit` messages
/// (moved or skipped), stops at the first message id seen before, and skips (leaves in the DLQ)
/// a message whose body it has already moved: the worker dead-lettered that copy again under a
/// new id.
async fn move_one_by_one<Q: RedriveQueues>(
    queues: &Q,
    limit: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Moved, RedriveError> {
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut moved_bodies: HashSet<String> = HashSet::new();
    let (mut moved, mut skipped) = (0u64, 0u64);
    let done = |moved, skipped, stopped| {
        Ok(Moved {
            moved,
            skipped,
            stopped,
        })
    };
    if limit == 0 {
        return done(0, 0, Stop::Empty);
    }
    loop {
        let handled = moved + skipped;
        if handled >= limit {
            return done(moved, skipped, Stop::DepthReached);
        }
        let max = (limit - handled).min(10) as u32;
        let batch = queues
            .receive_dead_letters(max)
            .await
            .map_err(|source| RedriveError::Receive { moved, source })?;
        if batch.is_empty() {
            return done(moved, skipped, Stop::Empty);
        }
        for m in batch {
            if moved + skipped >= limit {
                // Received but not moved: it becomes visible again after the visibility timeout.
                return done(moved, skipped, Stop::DepthReached);
            }
            if !seen_ids.insert(m.message_id.clone()) {
                return done(moved, skipped, Stop::SeenBefore);
            }
            if moved_bodies.contains(&m.body) {
                skipped += 1;
                continue;
            }
            let copy = queues
                .send_to_work(&m.body)
                .await
                .map_err(|source| RedriveError::Send {
                    moved,
                    message_id: m.message_id.clone(),
                    source,
                })?;
            seen_ids.insert(copy);
            moved_bodies.insert(m.body.clone());
            queues
                .delete_dead_letter(&m.receipt_handle)
                .await
                .map_err(|source| RedriveError::Delete {
                    moved,
                    message_id: m.message_id.clone(),
                    source,
                })?;
            moved += 1;
            progress(moved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::queue::fake::{Boom, FakeRedriveQueues as Fake, Redeadletter};

    fn unsupported() -> MoveTaskError {
        MoveTaskError::Unsupported {
            what: "http 500".into(),
            source: Box::new(Boom),
        }
    }
    fn denied() -> MoveTaskError {
        MoveTaskError::Denied {
            what: "AccessDenied".into(),
            source: Box::new(Boom),
        }
    }
    fn failed() -> MoveTaskError {
        MoveTaskError::Failed {
            what: "InternalError".into(),
            source: Box::new(Boom),
        }
    }
    fn task(status: &str) -> MoveTask {
        MoveTask {
            status: status.into(),
            task_handle: Some("h".into()),
            destination_arn: None,
            moved: 3,
            to_move: Some(10),
            started_at_ms: 0,
        }
    }

    async fn run(fake: &Fake) -> Result<Redrive, RedriveError> {
        redrive(fake, &|_| {}).await
    }

    #[tokio::test]
    async fn a_running_scheduled_or_cancelling_task_is_reported_and_nothing_else_is_done() {
        for status in ["RUNNING", "SCHEDULED", "CANCELLING"] {
            let fake = Fake {
                tasks: Some(vec![task("COMPLETED"), task(status)]),
                ..Fake::with_dead_letters(3)
            };
            let out = run(&fake).await.expect("redrive");
            assert_eq!(
                out,
                Redrive::AlreadyRunning { task: task(status) },
                "{status}"
            );
            let s = fake.state();
            assert_eq!(s.calls, ["list"], "{status}: no start, no receive");
            assert_eq!(s.dlq.len(), 3);
        }
    }

    #[tokio::test]
    async fn finished_tasks_do_not_stop_a_new_move_task() {
        let fake = Fake {
            tasks: Some(vec![task("COMPLETED"), task("FAILED"), task("CANCELLED")]),
            ..Fake::with_dead_letters(2)
        };
        let out = run(&fake).await.expect("redrive");
        assert_eq!(
            out,
            Redrive::StartMessageMoveTask {
                task_handle: Some("handle-1".into()),
                depth_at_start: 2
            }
        );
        let s = fake.state();
        assert_eq!(s.started, 1);
        assert!(s.work.is_empty(), "SQS moves them, not the fallback");
    }

    #[tokio::test]
    async fn any_other_start_error_stops_the_redrive_without_moving_anything() {
        let fake = Fake {
            start_error: Some(failed),
            ..Fake::with_dead_letters(4)
        };
        let err = run(&fake).await.expect_err("no fallback");
        assert!(matches!(
            err,
            RedriveError::Start(MoveTaskError::Failed { .. })
        ));
        let s = fake.state();
        assert_eq!(s.dlq.len(), 4);
        assert!(s.work.is_empty());
    }

    #[tokio::test]
    async fn a_listing_that_fails_for_another_reason_stops_before_starting_anything() {
        let fake = Fake {
            list_error: Some(failed),
            ..Fake::with_dead_letters(2)
        };
        let err = run(&fake).await.expect_err("stops");
        assert!(matches!(err, RedriveError::List(_)));
        assert_eq!(fake.state().calls, ["list"]);
    }

    #[tokio::test]
    async fn an_unsupported_api_falls_back_and_moves_every_message_once() {
        let fake = Fake {
            list_error: Some(unsupported),
            start_error: Some(unsupported),
            ..Fake::with_dead_letters(25)
        };
        let out = run(&fake).await.expect("redrive");
        let Redrive::ReceiveSendDelete {
            moved,
            depth_at_start,
            ..
        } = out
        else {
            panic!("fallback expected: {out:?}");
        };
        assert_eq!((moved, depth_at_start), (25, 25));
        let s = fake.state();
        assert!(s.dlq.is_empty() && s.in_flight.is_empty());
        let mut bodies: Vec<&str> = s.work.iter().map(|(_, b)| b.as_str()).collect();
        bodies.sort_unstable();
        bodies.dedup();
        assert_eq!(bodies.len(), 25, "each body sent exactly once");
        assert_eq!(s.work.len(), 25);
    }

    #[tokio::test]
    async fn a_denied_api_falls_back_too() {
        let fake = Fake {
            start_error: Some(denied),
            ..Fake::with_dead_letters(3)
        };
        let out = run(&fake).await.expect("redrive");
        assert!(
            matches!(out, Redrive::ReceiveSendDelete { moved: 3, ref because, .. } if because.contains("denied")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn the_fallback_never_deletes_before_the_send_succeeded() {
        let fake = Fake {
            start_error: Some(unsupported),
            send_fails_on: Some("body-1".into()),
            ..Fake::with_dead_letters(3)
        };
        let err = run(&fake).await.expect_err("send fails");
        assert!(
            matches!(err, RedriveError::Send { moved: 1, ref message_id, .. } if message_id == "dlq-1"),
            "{err:?}"
        );
        let s = fake.state();
        assert!(
            !s.calls.iter().any(|c| c.starts_with("delete rh-dlq-1")),
            "{:?}",
            s.calls
        );
        assert!(
            s.in_flight.values().any(|(id, _)| id == "dlq-1"),
            "the unsent message stays in the DLQ (invisible until its timeout)"
        );
        // Every delete follows the send of the same message.
        for (i, c) in s.calls.iter().enumerate() {
            if let Some(handle) = c.strip_prefix("delete rh-") {
                let n = handle
                    .trim_start_matches("dlq-")
                    .split('-')
                    .next()
                    .expect("n");
                assert_eq!(s.calls[i - 1], format!("send body-{n}"));
            }
        }
    }

    #[tokio::test]
    async fn a_failed_delete_is_reported_and_ends_the_fallback() {
        let fake = Fake {
            start_error: Some(unsupported),
            delete_fails: true,
            ..Fake::with_dead_letters(3)
        };
        let err = run(&fake).await.expect_err("delete fails");
        assert!(
            matches!(err, RedriveError::Delete { moved: 0, .. }),
            "{err:?}"
        );
        assert_eq!(fake.state().work.len(), 1, "one copy sent, then it stopped");
    }

    #[tokio::test]
    async fn the_fallback_stops_at_a_message_it_moved_before_when_sqs_dead_letters_the_copy() {
        let fake = Fake {
            start_error: Some(unsupported),
            redeadletter: Some(Redeadletter::SameId),
            ..Fake::with_dead_letters(30)
        };
        let out = run(&fake).await.expect("redrive");
        let Redrive::ReceiveSendDelete { moved, stopped, .. } = out else {
            panic!("{out:?}");
        };
        assert_eq!(stopped, Stop::SeenBefore);
        assert_eq!(moved, 10, "the first batch, then a copy of it came back");
        let s = fake.state();
        let sends: Vec<&String> = s.calls.iter().filter(|c| c.starts_with("send ")).collect();
        let unique: HashSet<&String> = sends.iter().copied().collect();
        assert_eq!(sends.len(), unique.len(), "{sends:?}");
    }

    #[tokio::test]
    async fn the_fallback_moves_at_most_the_depth_at_the_start_while_a_worker_keeps_dead_lettering()
    {
        let fake = Fake {
            start_error: Some(unsupported),
            redeadletter: Some(Redeadletter::NewId),
            ..Fake::with_dead_letters(12)
        };
        let out = run(&fake).await.expect("ends");
        assert_eq!(
            out,
            Redrive::ReceiveSendDelete {
                moved: 10,
                skipped: 2,
                depth_at_start: 12,
                stopped: Stop::DepthReached,
                because: "the move-task api is not supported here (http 500)".into(),
            }
        );
        let s = fake.state();
        let sends: Vec<&String> = s.calls.iter().filter(|c| c.starts_with("send ")).collect();
        let unique: HashSet<&String> = sends.iter().copied().collect();
        assert_eq!((sends.len(), unique.len()), (10, 10), "no body sent twice");
        assert_eq!(
            s.dlq.len() + s.in_flight.len(),
            12,
            "the re-dead-lettered copies and the two originals not reached stay"
        );
    }

    #[tokio::test]
    async fn an_empty_dead_letter_queue_moves_nothing() {
        let fake = Fake {
            start_error: Some(unsupported),
            ..Fake::with_dead_letters(0)
        };
        let out = run(&fake).await.expect("redrive");
        assert!(
            matches!(
                out,
                Redrive::ReceiveSendDelete {
                    moved: 0,
                    stopped: Stop::Empty,
                    ..
                }
            ),
            "{out:?}"
        );
        assert!(!fake.state().calls.iter().any(|c| c == "receive"));
    }

    #[test]
    fn task_statuses_are_compared_without_regard_to_case() {
        assert!(task("running").is_active());
        assert!(!task("COMPLETED").is_active());
    }
}
