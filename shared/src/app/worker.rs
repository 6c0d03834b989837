//! The worker's side: Verint, Connect, the recordings in S3, the run state and the two queues.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::adapters::aws::{Clients, StartError};
use crate::adapters::connect::ConnectClient;
use crate::adapters::recordings::S3Recordings;
use crate::adapters::sqs::SqsMessages;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::state::S3State;
use crate::adapters::verint::VerintClient;
use crate::config::Config;
use crate::flows::work::{WorkSettings, Worker};
use crate::ports::queue::{QueueError, Received};

/// Messages worked at once within one invocation: a whole batch (SQS delivers at most ten), so
/// that the look-ups, `DescribeContact`'s turns under `CONNECT_MAX_RPS` and the retry waits of
/// one message never hold up the others.
pub(crate) const CONCURRENCY: usize = 10;

/// Uploads at once within one invocation. The batch's calls share the line to Verint: split four
/// ways rather than ten, the first calls finish and are settled before the deadline instead of
/// every one of them being cut by it (a batch of long calls on a slow line wants a batch size of
/// one, the template's default).
pub(crate) const UPLOADS: usize = 4;

/// Everything the worker builds once per process.
#[derive(Debug)]
pub struct WorkerApp {
    pub config: Config,
    pub verint: VerintClient,
    pub connect: ConnectClient,
    pub recordings: S3Recordings,
    pub store: S3State,
    pub work_queue: SqsQueue,
    pub dead_letter_queue: SqsQueue,
    pub queues: SqsMessages,
    /// The backfill queue and the same dead-letter queue (design §4.8), when
    /// `BACKFILL_QUEUE_URL` is set: its messages are deleted and retried there.
    pub backfill_queues: Option<SqsMessages>,
    cold: AtomicBool,
}

/// The worker over the deployed adapters.
pub type WorkerOverAws<'a> =
    Worker<'a, VerintClient, ConnectClient, S3Recordings, SqsMessages, S3State>;

impl WorkerApp {
    /// Builds the clients from `lookup` (the SDK's endpoint variables) and the adapters from
    /// `config`; fails only when the Verint key cannot be read.
    pub async fn load(
        config: Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartError> {
        let clients = Clients::load(lookup).await;
        let verint = clients.verint(&config).await?;
        let work_queue = SqsQueue::new(clients.sqs.clone(), &config.work_queue_url);
        let dead_letter_queue = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_queue_url);
        Ok(WorkerApp {
            connect: ConnectClient::new(clients.connect.clone(), config.connect_max_rps),
            recordings: S3Recordings(clients.s3.clone()),
            store: S3State::new(
                clients.s3.clone(),
                &config.state_bucket,
                &config.state_prefix,
            ),
            queues: SqsMessages {
                work: work_queue.clone(),
                dead_letter: dead_letter_queue.clone(),
            },
            backfill_queues: config.backfill_queue_url.as_deref().map(|url| SqsMessages {
                work: SqsQueue::new(clients.sqs.clone(), url),
                dead_letter: dead_letter_queue.clone(),
            }),
            work_queue,
            dead_letter_queue,
            verint,
            config,
            cold: AtomicBool::new(true),
        })
    }

    /// True the first time it is asked in this process: the invocation is a cold start.
    pub fn cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }

    /// The flow of one message over this process's adapters, for messages of the work queue.
    pub fn worker(&self) -> WorkerOverAws<'_> {
        self.worker_on(&self.queues)
    }

    /// The flow for messages of the queue `queue_arn` names (an SQS record's
    /// `eventSourceARN`): the backfill queue's own, or else the work queue's.
    pub fn worker_for(&self, queue_arn: Option<&str>) -> WorkerOverAws<'_> {
        let name = |url: &str| url.rsplit('/').next().map(str::to_owned);
        let from = queue_arn.and_then(|arn| arn.rsplit(':').next());
        match &self.backfill_queues {
            Some(backfill) if from.is_some() && from == name(backfill.work.url()).as_deref() => {
                self.worker_on(backfill)
            }
            _ => self.worker(),
        }
    }

    /// Up to ten messages to work by hand (`recoveryctl work`), live recovery first (design
    /// §4.8): the work queue's, and only when it has none the backfill queue's, waiting up to
    /// `wait` for them; each held invisible for `hold` at a time while it is worked. With the flow
    /// for the queue they came from.
    pub async fn receive_by_hand<'a>(
        &'a self,
        wait: Duration,
        hold: Duration,
    ) -> Result<(Vec<Received>, WorkerOverAws<'a>), QueueError> {
        let holding = |mut worker: WorkerOverAws<'a>| -> WorkerOverAws<'a> {
            worker.settings.hold = Some(hold);
            worker
        };
        let Some(backfill) = &self.backfill_queues else {
            let received = self.work_queue.receive(10, wait, Some(hold)).await?;
            return Ok((received, holding(self.worker())));
        };
        let live = self
            .work_queue
            .receive(10, Duration::from_secs(1), Some(hold))
            .await?;
        if !live.is_empty() {
            return Ok((live, holding(self.worker())));
        }
        let received = backfill.work.receive(10, wait, Some(hold)).await?;
        Ok((received, holding(self.worker_on(backfill))))
    }

    fn worker_on<'a>(&'a self, queues: &'a SqsMessages) -> WorkerOverAws<'a> {
        Worker {
            verint: &self.verint,
            connect: &self.connect,
            recordings: &self.recordings,
            queue: queues,
            outcomes: &self.store,
            settings: WorkSettings::new(&self.config, CONCURRENCY, UPLOADS),
        }
    }
}
