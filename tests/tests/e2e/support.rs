//! The end-to-end tests' helpers live in the library (`local_stack::stack`), so that the CLI's
//! tests (`cli/tests/`) share them.
pub use local_stack::stack::*;

use recovery::message::WorkMessage;
use recovery::queue::{QueueError, Sent, SqsQueue, WorkQueue};
use std::time::Instant;

/// The work queue, whose first send holds the run until its `finish_by` has passed (as a slow
/// SQS or a long day would), so that the deadline falls between two chunks of messages.
pub struct SlowFirstSend<'a> {
    pub inner: &'a SqsQueue,
    pub until: Instant,
    pub calls: std::sync::atomic::AtomicUsize,
}

impl WorkQueue for SlowFirstSend<'_> {
    async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
        let sent = self.inner.send_all(messages).await;
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(self.until.saturating_duration_since(Instant::now())).await;
        }
        sent
    }
}
