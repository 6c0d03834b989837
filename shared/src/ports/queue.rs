//! The queues, as the flows see them: where the planner puts its work messages, how the worker
//! settles the message it holds, and what a redrive moves between a dead-letter queue and its
//! source.

use serde::Serialize;

use crate::domain::message::WorkMessage;
use std::collections::HashMap;
use std::time::Duration;
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("sqs request failed: {what}")]
    Sqs {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("sqs rejected {count} message(s): {reason}")]
    Rejected { count: usize, reason: String },
    #[error("message could not be serialised")]
    Json(#[source] serde_json::Error),
}

/// What a batched send did: how many entries SQS accepted, and the ones it rejected as the
/// sender's fault (by index into the bodies given, with SQS's code and message). Those are never
/// retried: the same body would be rejected again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub accepted: u64,
    pub rejected: Vec<(usize, String)>,
}

/// Where the planner puts one message per missing contact.
pub trait WorkQueue: Send + Sync {
    /// Sends every message. Entries SQS rejects as the sender's fault are returned in
    /// [`Sent::rejected`]; any other failure that outlasts the retries is an error.
    fn send_all(
        &self,
        messages: &[WorkMessage],
    ) -> impl Future<Output = Result<Sent, QueueError>> + Send;
}

/// A message received from SQS.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
    pub attributes: HashMap<String, String>,
    /// SQS's `SentTimestamp` (epoch milliseconds), when it gave it.
    pub sent_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
}

/// The work queue and its dead-letter queue, as the worker settles a message.
pub trait MessageQueue: Send + Sync {
    fn delete(&self, receipt_handle: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Makes the message visible again after `delay` (its retry delay).
    fn retry_in(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Sends the body to the dead-letter queue with its `failure_reason`.
    fn dead_letter(
        &self,
        body: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Sends the body to the work queue again as a new message, visible after `delay` (at most
    /// 15 minutes): a wait that must not count toward `maxReceiveCount`.
    /// `attributes` are string message attributes of the new message.
    fn requeue(
        &self,
        body: &str,
        delay: Duration,
        attributes: &[(&str, String)],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Move-task statuses during which another redrive must not start (SQS's
/// `ListMessageMoveTasksResultEntry.Status`).
pub(crate) const ACTIVE_STATUSES: [&str; 3] = ["RUNNING", "SCHEDULED", "CANCELLING"];

/// One move task as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveTask {
    pub status: String,
    pub task_handle: Option<String>,
    pub destination_arn: Option<String>,
    pub moved: i64,
    pub to_move: Option<i64>,
    /// Epoch milliseconds.
    pub started_at_ms: i64,
}

impl MoveTask {
    pub(crate) fn is_active(&self) -> bool {
        ACTIVE_STATUSES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&self.status))
    }
}

/// How a move-task call (`ListMessageMoveTasks`, `StartMessageMoveTask`) failed.
#[derive(Debug, thiserror::Error)]
pub enum MoveTaskError {
    /// The endpoint does not implement the operation (an emulator, an unknown operation).
    #[error("the move-task api is not supported here ({what})")]
    Unsupported {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The caller may not use the operation.
    #[error("the move-task api is denied ({what})")]
    Denied {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else: no fallback, the redrive stops.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl MoveTaskError {
    /// Whether the receive → send → delete fallback may be used instead.
    pub(crate) fn allows_fallback(&self) -> bool {
        matches!(
            self,
            MoveTaskError::Unsupported { .. } | MoveTaskError::Denied { .. }
        )
    }
}

/// The two queues as the redrive sees them.
pub trait RedriveQueues: Send + Sync {
    /// Move tasks whose source is the DLQ (most recent first, as SQS lists them).
    fn move_tasks(&self) -> impl Future<Output = Result<Vec<MoveTask>, MoveTaskError>> + Send;
    /// Starts SQS's own move from the DLQ to the work queue; returns the task handle.
    fn start_move_task(&self)
    -> impl Future<Output = Result<Option<String>, MoveTaskError>> + Send;
    /// Visible messages in the DLQ.
    fn dead_letter_depth(&self) -> impl Future<Output = Result<u64, QueueError>> + Send;
    /// Up to ten DLQ messages, hidden for `FALLBACK_VISIBILITY`.
    fn receive_dead_letters(
        &self,
        max: u32,
    ) -> impl Future<Output = Result<Vec<Received>, QueueError>> + Send;
    /// Sends one body to the work queue of `lane`; returns the new message's id.
    fn send_to(
        &self,
        lane: Lane,
        body: &str,
    ) -> impl Future<Output = Result<String, QueueError>> + Send;
    fn delete_dead_letter(
        &self,
        receipt_handle: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Makes a received dead letter visible again at once (a preview that moves nothing).
    fn release_dead_letter(
        &self,
        receipt_handle: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Whether backfills have their own work queue, so that their dead letters go back there.
    fn has_backfill_lane(&self) -> bool;
}

/// The work queue a message belongs to: live recovery's, or the backfills' (design §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Live,
    Backfill,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Live => "live",
            Lane::Backfill => "backfill",
        }
    }
}

/// How long a message received by the fallback stays invisible in the DLQ while it is moved.
pub(crate) const FALLBACK_VISIBILITY: Duration = Duration::from_secs(60);

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::ports::lock;

    #[derive(Default)]
    pub(crate) struct FakeQueue {
        /// Receipt handles whose delete fails (gone stale).
        pub(crate) stale: Mutex<Vec<String>>,
        pub(crate) deleted: Mutex<Vec<String>>,
        pub(crate) delays: Mutex<Vec<(String, Duration)>>,
        pub(crate) dead: Mutex<Vec<(String, String)>>,
        /// Each message sent again: its body, delay and attributes.
        pub(crate) requeued: Mutex<Vec<Requeued>>,
    }

    impl MessageQueue for FakeQueue {
        async fn requeue(
            &self,
            body: &str,
            delay: Duration,
            attributes: &[(&str, String)],
        ) -> Result<(), QueueError> {
            let attributes = attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            lock(&self.requeued).push((body.to_owned(), delay, attributes));
            Ok(())
        }

        async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
            if lock(&self.stale).iter().any(|h| h == receipt_handle) {
                return Err(QueueError::Sqs {
                    what: "delete_message",
                    source: "ReceiptHandleIsInvalid".into(),
                });
            }
            lock(&self.deleted).push(receipt_handle.to_owned());
            Ok(())
        }

        async fn retry_in(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
            lock(&self.delays).push((receipt_handle.to_owned(), delay));
            Ok(())
        }

        async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError> {
            lock(&self.dead).push((body.to_owned(), reason.to_owned()));
            Ok(())
        }
    }

    /// The planner's side of the work queue: every message sent, none rejected.
    #[derive(Default)]
    pub(crate) struct FakeWorkQueue {
        pub(crate) sent: Mutex<Vec<WorkMessage>>,
    }

    impl WorkQueue for FakeWorkQueue {
        async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
            lock(&self.sent).extend(messages.iter().cloned());
            Ok(Sent {
                accepted: messages.len() as u64,
                rejected: vec![],
            })
        }
    }

    #[derive(Debug)]
    pub(crate) struct Boom;
    impl std::fmt::Display for Boom {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("boom")
        }
    }
    impl std::error::Error for Boom {}

    pub(crate) fn queue_err() -> QueueError {
        QueueError::Sqs {
            what: "send_message",
            source: Box::new(Boom),
        }
    }

    /// A message sent again: its body, delay and attributes.
    pub(crate) type Requeued = (String, Duration, Vec<(String, String)>);

    /// A DLQ and a work queue in memory. `redeadletter` makes every copy sent to the work queue
    /// come straight back to the DLQ: with the copy's id (SQS's redrive policy), or with a fresh
    /// id (the worker's own dead-lettering).
    #[derive(Debug, Default)]
    pub(crate) struct FakeRedriveQueues {
        pub(crate) tasks: Option<Vec<MoveTask>>,
        pub(crate) list_error: Option<fn() -> MoveTaskError>,
        pub(crate) start_error: Option<fn() -> MoveTaskError>,
        pub(crate) send_fails_on: Option<String>,
        pub(crate) delete_fails: bool,
        pub(crate) redeadletter: Option<Redeadletter>,
        pub(crate) backfill_lane: bool,
        pub(crate) state: Mutex<RedriveState>,
    }

    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Redeadletter {
        SameId,
        NewId,
    }

    #[derive(Debug, Default)]
    pub(crate) struct RedriveState {
        pub(crate) dlq: VecDeque<(String, String)>,
        pub(crate) work: Vec<(String, String)>,
        pub(crate) backfill: Vec<(String, String)>,
        pub(crate) next_id: u64,
        pub(crate) started: u32,
        pub(crate) calls: Vec<String>,
        pub(crate) in_flight: HashMap<String, (String, String)>,
    }

    impl FakeRedriveQueues {
        pub(crate) fn with_dead_letters(n: usize) -> Self {
            let f = FakeRedriveQueues::default();
            {
                let mut s = f.state.lock().expect("lock");
                for i in 0..n {
                    s.dlq.push_back((format!("dlq-{i}"), format!("body-{i}")));
                }
            }
            f
        }
        pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, RedriveState> {
            self.state.lock().expect("lock")
        }
    }

    impl RedriveQueues for FakeRedriveQueues {
        async fn move_tasks(&self) -> Result<Vec<MoveTask>, MoveTaskError> {
            self.state().calls.push("list".into());
            match self.list_error {
                Some(e) => Err(e()),
                None => Ok(self.tasks.clone().unwrap_or_default()),
            }
        }
        async fn start_move_task(&self) -> Result<Option<String>, MoveTaskError> {
            self.state().calls.push("start".into());
            match self.start_error {
                Some(e) => Err(e()),
                None => {
                    self.state().started += 1;
                    Ok(Some("handle-1".into()))
                }
            }
        }
        async fn dead_letter_depth(&self) -> Result<u64, QueueError> {
            Ok(self.state().dlq.len() as u64)
        }
        async fn receive_dead_letters(&self, max: u32) -> Result<Vec<Received>, QueueError> {
            let mut s = self.state();
            s.calls.push("receive".into());
            let mut out = Vec::new();
            while out.len() < max as usize {
                let Some((id, body)) = s.dlq.pop_front() else {
                    break;
                };
                let handle = format!("rh-{id}-{}", s.next_id);
                s.next_id += 1;
                s.in_flight
                    .insert(handle.clone(), (id.clone(), body.clone()));
                out.push(Received {
                    message_id: id,
                    receipt_handle: handle,
                    body,
                    receive_count: 1,
                    attributes: HashMap::new(),
                    sent_at_ms: None,
                });
            }
            Ok(out)
        }
        fn has_backfill_lane(&self) -> bool {
            self.backfill_lane
        }
        async fn release_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
            let mut s = self.state();
            if let Some(m) = s.in_flight.remove(receipt_handle) {
                s.dlq.push_back(m);
            }
            Ok(())
        }
        async fn send_to(&self, lane: Lane, body: &str) -> Result<String, QueueError> {
            let mut s = self.state();
            s.calls.push(format!("send {body}"));
            if lane == Lane::Backfill {
                s.next_id += 1;
                let id = format!("backfill-{}", s.next_id);
                s.backfill.push((id.clone(), body.to_owned()));
                return Ok(id);
            }
            if self.send_fails_on.as_deref() == Some(body) {
                return Err(queue_err());
            }
            s.next_id += 1;
            let id = format!("work-{}", s.next_id);
            match self.redeadletter {
                // A standard queue keeps no order: the copy may come back first.
                Some(Redeadletter::SameId) => s.dlq.push_front((id.clone(), body.to_owned())),
                Some(Redeadletter::NewId) => {
                    let fresh = format!("dead-{}", s.next_id);
                    s.dlq.push_front((fresh, body.to_owned()));
                }
                None => s.work.push((id.clone(), body.to_owned())),
            }
            Ok(id)
        }
        async fn delete_dead_letter(&self, receipt_handle: &str) -> Result<(), QueueError> {
            let mut s = self.state();
            s.calls.push(format!("delete {receipt_handle}"));
            if self.delete_fails {
                return Err(queue_err());
            }
            s.in_flight.remove(receipt_handle);
            Ok(())
        }
    }
}
