//! A private corner of the local stack per test: its own buckets and queues in the shared moto
//! server, its own simulator, and a configuration that points at them (passed as a lookup, never
//! through the process environment).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::generate::{self, Day, DaySpec};
use crate::sim::{SimConfig, Simulator};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use recovery::Config;
use recovery::adapters::sqs::SqsQueue;
use recovery::domain::metrics::Metrics;
use recovery::flows::work::Disposition;
use recovery::ports::queue::Received;
use recovery::ports::verint::RetryPolicy;

pub const INSTANCE: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";
/// The Verint API key of the long-running local stack (`scripts/stack.sh`): the simulator's
/// default and what `.stack/env` holds.
pub const LOCAL_KEY_ID: &str = "local-key";
/// base64url (no padding) of 32 fixed bytes: a local key, not a secret.
pub const LOCAL_KEY: &str = "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w";
const KEY_ID: &str = "test-key";
const KEY: &str = "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w";

pub fn moto_url() -> String {
    std::env::var("MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

#[derive(Debug)]
pub struct Stack {
    pub sim: Simulator,
    pub vars: HashMap<String, String>,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ctr_bucket: String,
    pub recordings_bucket: String,
    pub state_bucket: String,
    pub work_queue: SqsQueue,
    pub dead_letter_queue: SqsQueue,
    /// Where backfill slices queue their calls (design §4.8); shares the dead-letter queue.
    pub backfill_queue: SqsQueue,
    /// One message per backfill slice, as the planner sends them in AWS.
    pub planning_queue: SqsQueue,
}

/// Keeps every version of a bucket's objects, as the template's state bucket does.
pub async fn version(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("versioning bucket {bucket}"))?;
    Ok(())
}

/// Creates buckets in moto (at `moto`, named in the error); a bucket that already exists is kept.
pub async fn create_buckets(s3: &aws_sdk_s3::Client, moto: &str, buckets: &[&str]) -> Result<()> {
    for b in buckets {
        match s3.create_bucket().bucket(*b).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "creating bucket {b} in moto at {moto}: is the stack up (scripts/stack.sh up)?"
                    )
                });
            }
        }
    }
    Ok(())
}

/// A queue whose messages move to a dead-letter queue after `max_receive_count` receives.
#[derive(Debug, Clone, Copy)]
pub struct RedrivenQueue<'a> {
    pub name: &'a str,
    pub dead_letter_name: &'a str,
    pub visibility_secs: u32,
    pub max_receive_count: u32,
}

impl RedrivenQueue<'_> {
    /// Creates the dead-letter queue, then the queue (both idempotent, as SQS's `CreateQueue` is
    /// with the same attributes); returns their URLs `(queue, dead-letter)`.
    pub async fn create(&self, sqs: &aws_sdk_sqs::Client) -> Result<(String, String)> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let dlq_url = sqs
            .create_queue()
            .queue_name(self.dead_letter_name)
            .send()
            .await
            .with_context(|| format!("creating queue {}", self.dead_letter_name))?
            .queue_url
            .context("dlq url")?;
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .context("dlq arn")?;
        let url = sqs
            .create_queue()
            .queue_name(self.name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                self.visibility_secs.to_string(),
            )
            .attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({
                    "deadLetterTargetArn": dlq_arn,
                    "maxReceiveCount": self.max_receive_count.to_string(),
                })
                .to_string(),
            )
            .send()
            .await
            .with_context(|| format!("creating queue {}", self.name))?
            .queue_url
            .context("queue url")?;
        Ok((url, dlq_url))
    }
}

/// Creates a dead-letter queue `dlq-{name}` and a work queue `work-{name}` that moves a message
/// there after `max_receive_count` receives; returns their URLs `(work, dead-letter)`.
pub async fn create_work_queues(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_secs: u32,
    max_receive_count: u32,
) -> Result<(String, String)> {
    RedrivenQueue {
        name: &format!("work-{name}"),
        dead_letter_name: &format!("dlq-{name}"),
        visibility_secs,
        max_receive_count,
    }
    .create(sqs)
    .await
}

impl Stack {
    /// A fresh corner of the stack with the given extra variables.
    pub async fn new(extra: &[(&str, &str)]) -> Result<Stack> {
        let sim = Simulator::start(
            SimConfig {
                key_id: KEY_ID.into(),
                api_key: KEY.into(),
                max_page_size: 500,
            },
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await?;
        let suffix = format!("{:08x}", rand::random::<u32>());
        let moto = moto_url();
        let mut vars: HashMap<String, String> = [
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL_S3", moto.clone()),
            ("AWS_ENDPOINT_URL_SQS", moto.clone()),
            ("AWS_ENDPOINT_URL_CONNECT", sim.base_url()),
            ("CTR_BUCKET", format!("ctr-{suffix}")),
            ("CTR_PREFIX", "connect/ctr/".to_owned()),
            ("CONNECT_INSTANCE_ID", INSTANCE.to_owned()),
            ("STATE_BUCKET", format!("state-{suffix}")),
            ("VERINT_DAS_URL", sim.das_url()),
            ("VERINT_INGEST_URL", sim.ingest_url()),
            ("VERINT_API_KEY_ID", KEY_ID.to_owned()),
            ("VERINT_API_KEY", KEY.to_owned()),
            ("MAX_RECEIVE_COUNT", "3".to_owned()),
            // Retry delays of seconds, not minutes, so that faults drain within a test.
            ("RETRY_BASE", "1s".to_owned()),
            // The simulator is not the account's shared Connect quota.
            ("CONNECT_MAX_RPS", "50".to_owned()),
            ("RETRY_MAX", "4s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let clients = recovery::adapters::aws::Clients::load(|k| vars.get(k).cloned()).await;
        let (s3, sqs) = (clients.s3.clone(), clients.sqs.clone());
        let recordings_bucket = format!("rec-{suffix}");
        create_buckets(
            &s3,
            &moto,
            &[
                &vars["CTR_BUCKET"],
                &vars["STATE_BUCKET"],
                &recordings_bucket,
            ],
        )
        .await?;
        version(&s3, &vars["STATE_BUCKET"]).await?;
        let (work_url, dlq_url) = create_work_queues(&sqs, &suffix, 2, 3).await?;
        vars.insert("WORK_QUEUE_URL".into(), work_url.clone());
        vars.insert("DEAD_LETTER_QUEUE_URL".into(), dlq_url.clone());
        let (backfill_url, _) = RedrivenQueue {
            name: &format!("backfill-{suffix}"),
            dead_letter_name: &format!("dlq-{suffix}"),
            visibility_secs: 2,
            max_receive_count: 3,
        }
        .create(&sqs)
        .await?;
        let (planning_url, _) = RedrivenQueue {
            name: &format!("planning-{suffix}"),
            dead_letter_name: &format!("planning-dlq-{suffix}"),
            visibility_secs: 30,
            max_receive_count: 3,
        }
        .create(&sqs)
        .await?;
        vars.insert("BACKFILL_QUEUE_URL".into(), backfill_url.clone());
        vars.insert("PLANNING_QUEUE_URL".into(), planning_url.clone());
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        Ok(Stack {
            ctr_bucket: vars["CTR_BUCKET"].clone(),
            state_bucket: vars["STATE_BUCKET"].clone(),
            work_queue: SqsQueue::new(sqs.clone(), work_url),
            dead_letter_queue: SqsQueue::new(sqs.clone(), dlq_url),
            backfill_queue: SqsQueue::new(sqs.clone(), backfill_url),
            planning_queue: SqsQueue::new(sqs.clone(), planning_url),
            recordings_bucket,
            sim,
            vars,
            s3,
            sqs,
        })
    }

    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |k| self.vars.get(k).cloned()
    }

    /// The run state this stack's functions write (`STATE_PREFIX` left at its default).
    pub fn store(&self) -> recovery::adapters::state::S3State {
        recovery::adapters::state::S3State::new(
            self.s3.clone(),
            &self.state_bucket,
            "call-recovery/",
        )
    }

    pub fn config(&self) -> Config {
        Config::from_lookup(self.lookup()).expect("the test configuration is valid")
    }

    /// Generates a day (`calls` contacts starting on `date`), uploads it and seeds the simulator.
    pub async fn day(&self, seed: u64, date: NaiveDate, calls: usize) -> Result<Day> {
        self.day_with(seed, date, calls, None).await
    }

    /// [`Stack::day`], with Verint missing `verint_miss_rate` of the eligible calls instead of
    /// the generator's default.
    pub async fn day_with(
        &self,
        seed: u64,
        date: NaiveDate,
        calls: usize,
        verint_miss_rate: Option<f64>,
    ) -> Result<Day> {
        self.day_of(seed, date, calls, |spec| {
            if let Some(rate) = verint_miss_rate {
                spec.verint_miss_rate = rate;
            }
        })
        .await
    }

    /// A day of `calls` in this stack's buckets, with `shape` setting the rest of its spec
    /// (truncated, archived or redacted recordings, design §10).
    pub async fn day_of(
        &self,
        seed: u64,
        date: NaiveDate,
        calls: usize,
        shape: impl FnOnce(&mut DaySpec),
    ) -> Result<Day> {
        let mut spec = DaySpec::new(seed, date, INSTANCE);
        spec.calls = calls;
        shape(&mut spec);
        spec.ctr_bucket = self.ctr_bucket.clone();
        spec.ctr_prefix = self.vars["CTR_PREFIX"].clone();
        spec.recordings_bucket = self.recordings_bucket.clone();
        spec.recording_bytes = 2048..12_288;
        let day = generate::day(&spec);
        generate::upload(&self.s3, &day).await?;
        self.sim.state().seed_verint(day.verint.clone());
        self.sim.state().seed_connect(day.connect.clone());
        Ok(day)
    }

    pub async fn planner(&self) -> Result<planner::App> {
        let mut app = planner::App::load(self.config(), self.lookup()).await?;
        app.verint = app
            .verint
            .clone()
            .with_retry(fast_retry())
            .with_page_limit(25);
        Ok(app)
    }

    pub async fn worker(&self) -> Result<worker::App> {
        let mut app = worker::App::load(self.config(), self.lookup()).await?;
        app.verint = app.verint.clone().with_retry(fast_retry());
        Ok(app)
    }

    /// Works the queue as the Lambda trigger would (successes deleted, failures left to SQS's
    /// visibility timeout) until it is empty and nothing is in flight, or `limit` passes.
    pub async fn drain(&self, app: &worker::App, limit: Duration) -> Result<Vec<Disposition>> {
        let worker = app.worker();
        let mut all = Vec::new();
        let until = tokio::time::Instant::now() + limit;
        let mut metrics = Metrics::new("test");
        while tokio::time::Instant::now() < until {
            let batch = self
                .work_queue
                .receive(10, Duration::from_secs(1), None)
                .await?;
            if batch.is_empty() {
                let depth = self.work_queue.depth().await?;
                if depth.visible == 0 && depth.in_flight == 0 {
                    return Ok(all);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            all.extend(worker.work_received(&batch, &mut metrics).await?);
        }
        anyhow::bail!("the work queue did not drain within {limit:?}")
    }

    /// Every message in a queue (received with a long visibility so each is seen once).
    pub async fn all_messages(queue: &SqsQueue) -> Result<Vec<Received>> {
        let mut out = Vec::new();
        loop {
            let batch = queue
                .receive(10, Duration::from_secs(1), Some(Duration::from_secs(300)))
                .await?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch);
        }
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

/// A day that ended well before now, inside Connect's retention.
pub fn past_day() -> NaiveDate {
    (Utc::now() - TimeDelta::days(3)).date_naive()
}

pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("valid time").and_utc()
}

/// The ids a manual run over `[start, end)` must queue, from the generator's ground truth.
pub fn expected_missing(day: &Day, start: DateTime<Utc>, end: DateTime<Utc>) -> HashSet<String> {
    day.truth
        .iter()
        .filter(|t| t.missing() && start <= t.initiation && t.initiation < end)
        .map(|t| t.contact_id.clone())
        .collect()
}

/// The whole of `date`, as a manual run's window.
pub fn day_window(date: NaiveDate) -> recovery::domain::time::Window {
    recovery::domain::time::Window {
        start: midnight(date),
        end: midnight(date) + TimeDelta::days(1),
    }
}

/// A manual (not dry) run over `window`.
pub async fn plan_manual(
    planner: &planner::App,
    window: recovery::domain::time::Window,
) -> Result<recovery::domain::report::RunReport, recovery::flows::plan::PlanError> {
    planner
        .run(
            recovery::flows::plan::Request::Manual {
                window,
                dry_run: false,
            },
            &|_, _| {},
        )
        .await
}

/// Ids in a stable order, so a test can pick "the first missing call".
pub fn sorted(ids: &HashSet<String>) -> Vec<String> {
    let mut out: Vec<String> = ids.iter().cloned().collect();
    out.sort();
    out
}
