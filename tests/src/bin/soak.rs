//! The worker's soak (issue 9): N missing calls queued at once, drained by concurrent
//! "invocations" of the worker's code against an in-process simulator that injects transient
//! Verint faults (statuses, connections dropped mid-body, lost responses) and Connect throttling,
//! with S3 and SQS in this process too (`local_stack::s3`, `local_stack::sqs`; `--s3 moto`,
//! `--sqs moto` use moto instead). Reports calls lost, calls ingested twice, and the drain's wall
//! time against the Connect rate limit's floor (N / CONNECT_MAX_RPS).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use clap::Parser;
use futures::StreamExt as _;
use local_stack::sim::{ConnectContact, Faults, SimConfig, Simulator};
use local_stack::stack::{create_buckets, create_work_queues};
use recovery::adapters::sqs::SqsQueue;
use recovery::domain::message::{MESSAGE_VERSION, QueuedRecording, WorkMessage};
use recovery::domain::metrics::Metrics;
use recovery::domain::time::format_ts;
use recovery::flows::work::Disposition;

const INSTANCE: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";
const KEY_ID: &str = "soak-key";
// base64url (no padding) of 32 fixed bytes: a local key, not a secret.
const KEY: &str = "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w";

#[derive(Debug, Parser)]
#[command(about = "Soaks the worker: N missing calls through transient faults and throttling")]
struct Args {
    /// moto, for `--s3 moto` or `--sqs moto` (scripts/stack.sh up starts it).
    #[arg(long, env = "MOTO_URL", default_value = "http://127.0.0.1:5055")]
    moto_url: String,
    /// Where the queues are: `local` (`local_stack::sqs`, in this process) or `moto`. moto's
    /// SQS serves a few dozen requests a second with thousands of messages queued, so a soak of
    /// 10,000 calls on it measures moto.
    #[arg(long, default_value = "local", value_parser = ["local", "moto"])]
    sqs: String,
    /// Where the recordings and outcomes are: `local` (`local_stack::s3`, in this process) or
    /// `moto`. The worker makes four S3 requests per call, and moto's S3 held the drain near
    /// 34 calls a second on this machine, so a soak on it measures moto.
    #[arg(long, default_value = "local", value_parser = ["local", "moto"])]
    s3: String,
    /// Missing calls queued.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Share of ingest requests that fail transiently (split over 503, 429, 500, a connection
    /// dropped mid-body and a lost response).
    #[arg(long, default_value_t = 0.20)]
    verint_faults: f64,
    /// Share of DescribeContact calls throttled (429).
    #[arg(long, default_value_t = 0.10)]
    connect_throttle: f64,
    #[arg(long, default_value_t = 50)]
    connect_max_rps: u32,
    /// Worker invocations running at once (each receives batches of ten).
    #[arg(long, default_value_t = 10)]
    invocations: usize,
    /// The work queue's visibility timeout, seconds (a transient failure comes back after it,
    /// unless the worker sets a shorter retry delay).
    #[arg(long, default_value_t = 30)]
    visibility_secs: u32,
    #[arg(long, default_value_t = 5)]
    max_receive_count: u32,
    /// Recording sizes, bytes (uniform in [min, max)).
    #[arg(long, default_value_t = 4096)]
    min_bytes: usize,
    #[arg(long, default_value_t = 16_384)]
    max_bytes: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give up after this long (seconds).
    #[arg(long, default_value_t = 3600)]
    limit_secs: u64,
}

fn uuid(rng: &mut impl rand::Rng) -> String {
    let h = hex::encode(rng.random::<[u8; 16]>());
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use rand::{Rng as _, SeedableRng as _};
    let args = Args::parse();
    let load_before = local_stack::load_average();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOAK_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let sim = Simulator::start(
        SimConfig {
            key_id: KEY_ID.into(),
            api_key: KEY.into(),
            max_page_size: 500,
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let sqs_url = match args.sqs.as_str() {
        "local" => local_stack::sqs::LocalSqs::start().await?.url,
        _ => args.moto_url.clone(),
    };
    let s3_url = match args.s3.as_str() {
        "local" => local_stack::s3::LocalS3::start().await?.url,
        _ => args.moto_url.clone(),
    };
    let suffix = format!("{:08x}", rand::random::<u32>());
    let mut vars: HashMap<String, String> = [
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_S3", s3_url.clone()),
        ("AWS_ENDPOINT_URL_SQS", sqs_url),
        ("AWS_ENDPOINT_URL_CONNECT", sim.base_url()),
        ("CTR_BUCKET", format!("soak-ctr-{suffix}")),
        ("CONNECT_INSTANCE_ID", INSTANCE.to_owned()),
        ("STATE_BUCKET", format!("soak-state-{suffix}")),
        ("VERINT_DAS_URL", sim.das_url()),
        ("VERINT_INGEST_URL", sim.ingest_url()),
        ("VERINT_API_KEY_ID", KEY_ID.to_owned()),
        ("VERINT_API_KEY", KEY.to_owned()),
        ("CONNECT_MAX_RPS", args.connect_max_rps.to_string()),
        ("MAX_RECEIVE_COUNT", args.max_receive_count.to_string()),
        // Read by a worker that sets retry delays (issue 9); ignored by one that does not.
        ("RETRY_BASE", "1s".to_owned()),
        ("RETRY_MAX", "10s".to_owned()),
        ("STALL_TIMEOUT", "10s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let clients = recovery::adapters::aws::Clients::load(|k| vars.get(k).cloned()).await;
    let (s3, sqs) = (clients.s3.clone(), clients.sqs.clone());
    let recordings = format!("soak-rec-{suffix}");
    create_buckets(
        &s3,
        &s3_url,
        &[&vars["CTR_BUCKET"], &vars["STATE_BUCKET"], &recordings],
    )
    .await?;
    let (work_url, dlq_url) = create_work_queues(
        &sqs,
        &format!("soak-{suffix}"),
        args.visibility_secs,
        args.max_receive_count,
    )
    .await?;
    vars.insert("WORK_QUEUE_URL".into(), work_url.clone());
    vars.insert("DEAD_LETTER_QUEUE_URL".into(), dlq_url.clone());
    let work_queue = SqsQueue::new(sqs.clone(), &work_url);
    let dead_letter_queue = SqsQueue::new(sqs.clone(), &dlq_url);

    // The calls: a recording each in S3, a contact in Connect, a message in the work queue.
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let ended = Utc::now() - TimeDelta::days(3);
    let mut messages = Vec::with_capacity(args.calls);
    let mut contacts = Vec::with_capacity(args.calls);
    let mut objects = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let id = uuid(&mut rng);
        let start = ended - TimeDelta::seconds(60 + (i % 600) as i64);
        let end = ended;
        let key = format!(
            "connect/soak/CallRecordings/{}/{id}_{}_UTC.wav",
            start.format("%Y/%m/%d"),
            start.format("%Y%m%dT%H:%M")
        );
        let size = rng.random_range(args.min_bytes..args.max_bytes.max(args.min_bytes + 1));
        let body: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        objects.push((key.clone(), body));
        contacts.push(ConnectContact {
            instance_id: INSTANCE.into(),
            id: id.clone(),
            arn: format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}/contact/{id}"),
            initial_contact_id: None,
            previous_contact_id: None,
            channel: "VOICE".into(),
            initiation_method: "INBOUND".into(),
            initiation_timestamp: start,
            disconnect_timestamp: Some(end),
            last_update_timestamp: end,
            agent: None,
            queue: None,
            customer_endpoint: None,
            system_endpoint: None,
            attributes: Default::default(),
        });
        messages.push(WorkMessage {
            v: MESSAGE_VERSION,
            run_id: format!("soak-{suffix}"),
            contact_id: id,
            instance_id: INSTANCE.into(),
            initiation_timestamp: format_ts(start),
            disconnect_timestamp: format_ts(end),
            recordings: vec![QueuedRecording {
                bucket: recordings.clone(),
                key,
                expected_seconds: None,
            }],
            enqueued_at: format_ts(Utc::now()),
        });
    }
    let expected: HashSet<String> = messages.iter().map(|m| m.contact_id.clone()).collect();
    eprintln!("soak: uploading {} recordings", objects.len());
    let uploads = futures::stream::iter(objects.into_iter().map(|(key, body)| {
        let s3 = s3.clone();
        let bucket = recordings.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .with_context(|| format!("PutObject {key}"))
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for u in uploads {
        u?;
    }
    sim.state().seed_connect(contacts);
    let t = args.verint_faults;
    sim.state().set_faults(Faults {
        seed: args.seed,
        status_503: t * 0.25,
        status_429: t * 0.15,
        status_500: t * 0.15,
        drop_mid_body: t * 0.25,
        lost_response: t * 0.20,
        retry_after_secs: 1,
        connect_throttle: args.connect_throttle,
        ..Faults::default()
    });
    let config = recovery::Config::from_lookup(|k| vars.get(k).cloned())
        .map_err(|e| anyhow::anyhow!("soak configuration: {e}"))?;
    let app = worker::App::load(config, |k| vars.get(k).cloned()).await?;
    eprintln!("soak: queueing {} messages", messages.len());
    use recovery::ports::queue::WorkQueue as _;
    work_queue.send_all(&messages).await?;

    eprintln!(
        "soak: draining with {} invocations of the worker",
        args.invocations
    );
    let started = Instant::now();
    let limit = Duration::from_secs(args.limit_secs);
    let empty = Arc::new(AtomicBool::new(false));
    let outcomes: Vec<anyhow::Result<HashMap<&'static str, u64>>> =
        futures::future::join_all((0..args.invocations).map(|_| {
            let (app, work_queue, empty) = (&app, &work_queue, empty.clone());
            async move {
                let worker = app.worker();
                let mut metrics = Metrics::new("soak");
                let mut counts: HashMap<&'static str, u64> = HashMap::new();
                while !empty.load(Ordering::Relaxed) {
                    anyhow::ensure!(
                        started.elapsed() < limit,
                        "the queue did not drain in {limit:?}"
                    );
                    let batch = work_queue.receive(10, Duration::from_secs(1), None).await?;
                    if batch.is_empty() {
                        let depth = work_queue.depth().await?;
                        if depth.visible == 0 && depth.in_flight == 0 {
                            empty.store(true, Ordering::Relaxed);
                        } else {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        continue;
                    }
                    // A batch whose bookkeeping fails (a delete with a receipt handle that
                    // expired while the batch ran) is counted; its messages come back to the
                    // queue, as they would after a failed Lambda invocation.
                    match worker.work_received(&batch, &mut metrics).await {
                        Ok(dispositions) => {
                            for d in dispositions {
                                let name = match d {
                                    Disposition::Done(_) => "done",
                                    Disposition::Retry(_) => "retry",
                                    Disposition::DeadLettered(_) => "dead_lettered",
                                    Disposition::Restoring(_) => "restoring",
                                };
                                *counts.entry(name).or_default() += 1;
                            }
                        }
                        Err(e) => {
                            eprintln!("soak: a batch failed: {e}");
                            *counts.entry("batch_errors").or_default() += 1;
                        }
                    }
                }
                Ok(counts)
            }
        }))
        .await;
    let drain = started.elapsed().as_secs_f64();
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    for o in outcomes {
        for (k, v) in o? {
            *counts.entry(k).or_default() += v;
        }
    }

    let ingested = sim.state().ingested();
    let stats = sim.state().stats();
    let in_verint: HashSet<String> = ingested.iter().map(|c| c.contact_id.clone()).collect();
    let mut dead = HashSet::new();
    loop {
        let batch = dead_letter_queue
            .receive(10, Duration::from_secs(1), Some(Duration::from_secs(600)))
            .await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            if let Ok(w) = WorkMessage::parse(&m.body) {
                dead.insert(w.contact_id);
            }
        }
    }
    let lost = expected
        .iter()
        .filter(|id| !in_verint.contains(*id) && !dead.contains(*id))
        .count();
    let twice = stats.ingest_stores.values().filter(|n| **n > 1).count()
        + ingested.len().saturating_sub(in_verint.len());
    let strangers = in_verint.difference(&expected).count();
    let floor = args.calls as f64 / f64::from(args.connect_max_rps);
    let injected = |name: &str| stats.faults.get(name).copied().unwrap_or(0);
    println!(
        "soak: {} calls, {} invocations, CONNECT_MAX_RPS={}, {:.0}% Verint faults, {:.0}% Connect throttling",
        args.calls,
        args.invocations,
        args.connect_max_rps,
        t * 100.0,
        args.connect_throttle * 100.0
    );
    println!(
        "recovered:           {}",
        in_verint.intersection(&expected).count()
    );
    println!("dead-lettered:       {}", dead.len());
    println!("lost:                {lost}");
    println!("ingested twice:      {twice}");
    println!("ingested, not asked: {strangers}");
    println!(
        "receives:            {} done, {} left for retry, {} dead-lettered by the worker, {} batches failed",
        counts.get("done").unwrap_or(&0),
        counts.get("retry").unwrap_or(&0),
        counts.get("dead_lettered").unwrap_or(&0),
        counts.get("batch_errors").unwrap_or(&0)
    );
    println!(
        "ingest requests:     {} ({} answered 409)",
        stats
            .requests
            .get("POST /ingest/recovered-calls")
            .unwrap_or(&0),
        stats.ingest_conflicts.values().sum::<u32>()
    );
    println!(
        "faults injected:     503 {}, 429 {}, 500 {}, dropped mid-body {}, lost response {}, connect throttled {}",
        injected("status_503"),
        injected("status_429"),
        injected("status_500"),
        injected("drop_mid_body"),
        injected("lost_response"),
        injected("connect_throttle")
    );
    println!(
        "describe contact:    {} requests",
        stats
            .requests
            .iter()
            .filter(|(k, _)| k.contains("/contacts/{instance_id}"))
            .map(|(_, v)| v)
            .sum::<u64>()
    );
    println!("drain wall:          {drain:.1} s");
    println!(
        "rate floor:          {floor:.1} s ({} / {})",
        args.calls, args.connect_max_rps
    );
    println!("drain / floor:       {:.2}x", drain / floor);
    println!(
        "peak rss (VmHWM):    {} MiB",
        local_stack::peak_rss_kib() / 1024
    );
    let ratio = drain / floor;
    println!(
        "\n== bench-soak summary: {} calls, {} cores ==",
        args.calls,
        local_stack::cores()
    );
    println!(
        "load average before {load_before}, after {} (other work on the machine shows here)",
        local_stack::load_average()
    );
    println!("| measure                 | value | target | met |");
    println!("|-------------------------|-------|--------|-----|");
    println!(
        "| lost                    | {lost} | 0 | {} |",
        local_stack::met(lost == 0)
    );
    println!(
        "| ingested twice          | {twice} | 0 | {} |",
        local_stack::met(twice == 0)
    );
    println!(
        "| drain wall / (CALLS/{}) | {ratio:.2}x ({drain:.1} s against {floor:.1} s) | <= 1.3x | {} |",
        args.connect_max_rps,
        local_stack::met(ratio <= 1.3)
    );
    println!("| dead-lettered           | {} | | |", dead.len());
    sim.stop().await;
    Ok(())
}
