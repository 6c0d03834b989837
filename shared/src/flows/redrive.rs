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
//!
//! Lanes: when backfills have their own work queue, a dead letter of a backfill slice goes back
//! to it, and a live one to the work queue, so a failed backfill never jumps ahead of live calls.
//! A move task has one destination, so with two lanes the messages are moved one by one (by the
//! rules of step 3). [`preview`] says what a redrive would move, by lane and reason, and moves
//! nothing; [`drop_dead_letter`] removes one call deliberately, recording its outcome.

use std::collections::HashSet;

use serde::Serialize;

use crate::domain::message::WorkMessage;
use crate::domain::report::{Outcome, OutcomeStatus};
use crate::domain::time::format_ts;
use crate::ports::queue::{Lane, QueueError, Received};
use crate::ports::store::{OutcomeStore, StateError};

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
        /// Of `moved`, dead letters of backfill slices sent back to the backfill queue.
        #[serde(default)]
        to_backfill: u64,
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
    let lanes = queues.has_backfill_lane();
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
    let started = if lanes {
        Err(None)
    } else {
        queues.start_move_task().await.map_err(Some)
    };
    let because = match started {
        Err(None) => "backfill dead letters go back to the backfill queue, one by one".to_owned(),
        Ok(task_handle) => {
            return Ok(Redrive::StartMessageMoveTask {
                task_handle,
                depth_at_start,
            });
        }
        Err(Some(e)) if e.allows_fallback() => match because {
            Some(list) if list != e.to_string() => format!("{list}; {e}"),
            _ => e.to_string(),
        },
        Err(Some(e)) => return Err(RedriveError::Start(e)),
    };
    let m = move_one_by_one(queues, depth_at_start, progress).await?;
    Ok(Redrive::ReceiveSendDelete {
        moved: m.moved,
        to_backfill: m.to_backfill,
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
    to_backfill: u64,
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
    let mut to_backfill = 0u64;
    let lanes = queues.has_backfill_lane();
    let done = |moved, to_backfill, skipped, stopped| {
        Ok(Moved {
            moved,
            to_backfill,
            skipped,
            stopped,
        })
    };
    if limit == 0 {
        return done(0, 0, 0, Stop::Empty);
    }
    loop {
        let handled = moved + skipped;
        if handled >= limit {
            return done(moved, to_backfill, skipped, Stop::DepthReached);
        }
        let max = (limit - handled).min(10) as u32;
        let batch = queues
            .receive_dead_letters(max)
            .await
            .map_err(|source| RedriveError::Receive { moved, source })?;
        if batch.is_empty() {
            return done(moved, to_backfill, skipped, Stop::Empty);
        }
        for m in batch {
            if moved + skipped >= limit {
                // Received but not moved: it becomes visible again after the visibility timeout.
                return done(moved, to_backfill, skipped, Stop::DepthReached);
            }
            if !seen_ids.insert(m.message_id.clone()) {
                return done(moved, to_backfill, skipped, Stop::SeenBefore);
            }
            if moved_bodies.contains(&m.body) {
                skipped += 1;
                continue;
            }
            let lane = if lanes { lane_of(&m.body) } else { Lane::Live };
            let copy =
                queues
                    .send_to(lane, &m.body)
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
            to_backfill += u64::from(lane == Lane::Backfill);
            progress(moved);
        }
    }
}

/// The lane a dead letter belongs to: a backfill slice's run (`{parent}-sNNNN`) is the
/// backfill's; anything else, an unreadable body included, is live.
pub fn lane_of(body: &str) -> Lane {
    #[derive(serde::Deserialize)]
    struct RunOnly {
        run_id: String,
    }
    match serde_json::from_str::<RunOnly>(body) {
        Ok(m) if crate::flows::backfill::is_slice_run_id(&m.run_id) => Lane::Backfill,
        _ => Lane::Live,
    }
}

/// One dead letter as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub contact_id: Option<String>,
    pub run_id: Option<String>,
    pub lane: Lane,
    /// The worker's `failure_reason`, or why SQS moved it (its receives ran out).
    pub reason: String,
    /// Seconds since it was first sent, when SQS says.
    pub age_seconds: Option<i64>,
    pub receive_count: u32,
}

/// What a redrive would move, and nothing moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Dead letters seen (at most the depth at the start).
    pub total: u64,
    /// Counts by lane, then by reason.
    pub by_lane: std::collections::BTreeMap<Lane, std::collections::BTreeMap<String, u64>>,
    pub dead_letters: Vec<DeadLetter>,
}

/// The reason SQS gives no words for: the message used up its receives.
pub const RECEIVES_USED_UP: &str = "its receives ran out (moved by SQS, no reason recorded)";

fn dead_letter(m: &Received, now_ms: i64) -> DeadLetter {
    let parsed = WorkMessage::parse(&m.body).ok();
    DeadLetter {
        message_id: m.message_id.clone(),
        contact_id: parsed.as_ref().map(|p| p.contact_id.clone()),
        run_id: parsed.as_ref().map(|p| p.run_id.clone()),
        lane: lane_of(&m.body),
        reason: m
            .attributes
            .get("failure_reason")
            .cloned()
            .unwrap_or_else(|| RECEIVES_USED_UP.to_owned()),
        age_seconds: m.sent_at_ms.map(|t| (now_ms - t).max(0) / 1000),
        receive_count: m.receive_count,
    }
}

/// Receives every dead letter (at most the depth at the start, each once), hands them to `f`,
/// then makes the ones `f` kept visible again. `f` returns whether it deleted the message.
async fn each_dead_letter<Q: RedriveQueues>(
    queues: &Q,
    mut f: impl FnMut(&Received) -> bool,
) -> Result<(), RedriveError> {
    let limit = queues
        .dead_letter_depth()
        .await
        .map_err(RedriveError::Depth)?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut held: Vec<String> = Vec::new();
    let result = async {
        while (seen.len() as u64) < limit {
            let batch = queues
                .receive_dead_letters(10)
                .await
                .map_err(|source| RedriveError::Receive { moved: 0, source })?;
            if batch.is_empty() {
                break;
            }
            let mut fresh = false;
            for m in batch {
                if !seen.insert(m.message_id.clone()) {
                    held.push(m.receipt_handle);
                    continue;
                }
                fresh = true;
                if !f(&m) {
                    held.push(m.receipt_handle);
                }
            }
            if !fresh {
                break;
            }
        }
        Ok(())
    }
    .await;
    for handle in held {
        // Best effort: one not released is visible again after the fallback's visibility.
        let _ = queues.release_dead_letter(&handle).await;
    }
    result
}

/// What a redrive would move, by lane and reason; nothing is moved (`redrive --dry-run`,
/// `recoveryctl dlq`).
pub async fn preview<Q: RedriveQueues>(queues: &Q) -> Result<Preview, RedriveError> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut out = Preview::default();
    each_dead_letter(queues, |m| {
        let d = dead_letter(m, now_ms);
        let lane = if queues.has_backfill_lane() {
            d.lane
        } else {
            Lane::Live
        };
        *out.by_lane
            .entry(lane)
            .or_default()
            .entry(d.reason.clone())
            .or_default() += 1;
        out.total += 1;
        out.dead_letters.push(d);
        false
    })
    .await?;
    out.dead_letters
        .sort_by(|a, b| (&a.run_id, &a.contact_id).cmp(&(&b.run_id, &b.contact_id)));
    Ok(out)
}

/// Why a dead letter could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error(transparent)]
    Queue(#[from] RedriveError),
    #[error("no dead letter of contact {0} (recoveryctl dlq lists them); nothing was changed")]
    NotFound(String),
    #[error("the outcome of contact {contact_id} could not be recorded; the dead letter was kept")]
    Outcome {
        contact_id: String,
        #[source]
        source: StateError,
    },
    #[error(
        "the outcome of contact {contact_id} was recorded but its dead letter could not be deleted; run the same command again"
    )]
    Delete {
        contact_id: String,
        #[source]
        source: QueueError,
    },
}

/// Drops the dead letters of one contact deliberately: its outcome in its run records who
/// dropped it and why (coverage shows it failed with that reason), then it is deleted. Safe to
/// run twice: the second finds nothing.
pub async fn drop_dead_letter<Q: RedriveQueues, O: OutcomeStore>(
    queues: &Q,
    outcomes: &O,
    contact_id: &str,
    why: &str,
) -> Result<u64, DropError> {
    let wanted = contact_id.to_ascii_lowercase();
    let mut found: Vec<(Received, WorkMessage)> = Vec::new();
    each_dead_letter(queues, |m| {
        match WorkMessage::parse(&m.body) {
            Ok(w) if w.contact_id.to_ascii_lowercase() == wanted => {
                found.push((m.clone(), w));
                // Kept invisible until it is deleted below.
                true
            }
            _ => false,
        }
    })
    .await?;
    if found.is_empty() {
        return Err(DropError::NotFound(contact_id.to_owned()));
    }
    let mut dropped = 0;
    for (m, w) in found {
        let outcome = Outcome {
            contact_id: w.contact_id.clone(),
            status: OutcomeStatus::Failed,
            attempt: m.receive_count,
            reason: Some(format!(
                "dropped from the dead-letter queue by an operator: {why} (it had failed: {})",
                m.attributes
                    .get("failure_reason")
                    .map_or(RECEIVES_USED_UP, String::as_str)
            )),
            bytes: 0,
            interaction_id: None,
            at: format_ts(chrono::Utc::now()),
            integrity: None,
            expected_seconds: None,
            actual_seconds: None,
            restored_from: None,
            redacted: false,
        };
        if let Err(source) = outcomes.put_outcome(&w.run_id, &outcome).await {
            let _ = queues.release_dead_letter(&m.receipt_handle).await;
            return Err(DropError::Outcome {
                contact_id: w.contact_id,
                source,
            });
        }
        queues
            .delete_dead_letter(&m.receipt_handle)
            .await
            .map_err(|source| DropError::Delete {
                contact_id: w.contact_id.clone(),
                source,
            })?;
        dropped += 1;
    }
    Ok(dropped)
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
                to_backfill: 0,
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

    fn body(contact: &str, run_id: &str) -> String {
        format!(
            r#"{{"v":1,"run_id":"{run_id}","contact_id":"{contact}","instance_id":"i","initiation_timestamp":"2026-11-30T10:00:00Z","disconnect_timestamp":"2026-11-30T10:05:00Z","recordings":[{{"bucket":"b","key":"k"}}],"enqueued_at":"2026-11-30T11:00:00Z"}}"#
        )
    }

    /// A DLQ of two live dead letters and one of a backfill slice.
    fn mixed(backfill_lane: bool) -> Fake {
        let fake = Fake {
            backfill_lane,
            ..Fake::default()
        };
        {
            let mut s = fake.state();
            s.dlq
                .push_back(("m1".into(), body("c1", "20261201T0100Z-0a1b2c3d")));
            s.dlq
                .push_back(("m2".into(), body("c2", "20261130T0000Z-99aa88bb-s0003")));
            s.dlq.push_back(("m3".into(), "not a work message".into()));
        }
        fake
    }

    #[tokio::test]
    async fn dead_letters_of_backfills_go_back_to_the_backfill_queue_and_live_ones_to_the_work_queue()
     {
        let fake = mixed(true);
        let out = run(&fake).await.expect("ends");
        assert!(
            matches!(
                out,
                Redrive::ReceiveSendDelete {
                    moved: 3,
                    to_backfill: 1,
                    ..
                }
            ),
            "{out:?}"
        );
        let s = fake.state();
        assert_eq!(
            s.started, 0,
            "a move task has one destination: not used with two lanes"
        );
        assert_eq!(s.backfill.len(), 1);
        assert!(s.backfill[0].1.contains("\"c2\""));
        assert_eq!(
            s.work.len(),
            2,
            "live and unreadable ones to the work queue"
        );
        assert!(s.dlq.is_empty());
    }

    #[tokio::test]
    async fn without_a_backfill_queue_everything_goes_to_the_work_queue_by_move_task() {
        let fake = mixed(false);
        let out = run(&fake).await.expect("ends");
        assert!(
            matches!(out, Redrive::StartMessageMoveTask { .. }),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn a_preview_counts_by_lane_and_reason_and_moves_nothing() {
        let fake = mixed(true);
        let p = preview(&fake).await.expect("previewed");
        assert_eq!(p.total, 3);
        assert_eq!(p.by_lane[&Lane::Live][RECEIVES_USED_UP], 2);
        assert_eq!(p.by_lane[&Lane::Backfill][RECEIVES_USED_UP], 1);
        let s = fake.state();
        assert_eq!(s.dlq.len(), 3, "every one visible again");
        assert!(s.work.is_empty() && s.backfill.is_empty());
        assert!(s.in_flight.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_dead_letter_is_deleted_with_its_outcome_recorded_and_a_second_drop_finds_nothing()
     {
        let fake = mixed(true);
        let outcomes = crate::ports::store::fake::FakeOutcomes::default();
        let n = drop_dead_letter(&fake, &outcomes, "C1", "the customer withdrew consent")
            .await
            .expect("dropped");
        assert_eq!(n, 1);
        let written = outcomes.0.lock().expect("lock").clone();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].status, OutcomeStatus::Failed);
        assert!(written[0].reason.as_deref().unwrap_or("").contains(
            "dropped from the dead-letter queue by an operator: the customer withdrew consent"
        ));
        assert_eq!(fake.state().dlq.len(), 2, "the others stay");
        assert!(matches!(
            drop_dead_letter(&fake, &outcomes, "c1", "again").await,
            Err(DropError::NotFound(_))
        ));
    }

    #[test]
    fn slice_run_ids_are_told_from_others() {
        assert_eq!(
            lane_of(&body("c", "20261130T0000Z-99aa88bb-s0003")),
            Lane::Backfill
        );
        assert_eq!(lane_of(&body("c", "20261130T0000Z-99aa88bb")), Lane::Live);
        assert_eq!(lane_of("{}"), Lane::Live);
    }
}
