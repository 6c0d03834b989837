//! The end-to-end tests' helpers live in the library (`local_stack::stack`), so that the CLI's
//! tests (`cli/tests/`) share them.
pub use local_stack::stack::*;

use recovery::adapters::sqs::SqsQueue;
use recovery::domain::message::WorkMessage;
use recovery::ports::queue::{QueueError, Sent, WorkQueue};
use std::time::Instant;

/// The work queue, whose first send holds the run until its `finish_by` has passed (as a slow
/// SQS or a long day would), so that the deadline falls between two chunks of messages.
pub struct SlowFirstSend<'a> {
    inner: &'a SqsQueue,
    until: Instant,
    calls: std::sync::atomic::AtomicUsize,
}

impl<'a> SlowFirstSend<'a> {
    /// `app`'s work queue, its first send held until `until`.
    pub fn new(app: &'a planner::App, until: Instant) -> Self {
        SlowFirstSend {
            inner: &app.queue,
            until,
            calls: Default::default(),
        }
    }

    /// `app`'s planner over this queue, whose look-ups and queueing must end by `until`.
    pub fn planner(
        &'a self,
        app: &'a planner::App,
    ) -> recovery::flows::plan::Planner<
        'a,
        recovery::adapters::ctr_source::S3CtrSource,
        recovery::adapters::verint::VerintClient,
        SlowFirstSend<'a>,
        recovery::adapters::state::S3State,
    > {
        recovery::flows::plan::Planner {
            config: &app.config,
            source: &app.source,
            verint: &app.verint,
            queue: self,
            store: &app.store,
            concurrency: 4,
            progress: &no_progress,
            orphans: app
                .orphans
                .as_ref()
                .map(|o| o as &dyn recovery::ports::orphans::OrphanLookup),
            redacted: Some(&app.recordings as &dyn recovery::ports::recordings::KeyListing),
            deadline: None,
            finish_by: Some(self.until),
        }
    }
}

fn no_progress(_: u64, _: u64) {}

impl WorkQueue for SlowFirstSend<'_> {
    async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
        let sent = self.inner.send_all(messages).await;
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(self.until.saturating_duration_since(Instant::now())).await;
        }
        sent
    }
}
