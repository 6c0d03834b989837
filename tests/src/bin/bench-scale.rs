//! Benchmarks the planner at scale (issue 20): a generated day of a million contacts with Verint
//! holding none of them, planned through the planner *function's* handler (`planner::handle`)
//! with a manual `{start, end}` payload, first under a deadline short enough to stop it
//! mid-queueing, then again under a 900 s deadline that continues where it stopped. Every
//! message in the work queue is then received and counted against the corpus's own truth.
//!
//! Where things run, so that the peak RSS printed is the planner's:
//! - SQS (`local_stack::sqs`) and the Verint + Connect simulator run in a child process of this
//!   binary (`--serve-stand-ins`): the queue ends up holding every missing call's message.
//! - S3 is a moto server (`--s3-url`; `scripts/bench-scale.sh` starts a private one):
//!   `local_stack::s3` serves only `PutObject`, `GetObject` and `HeadObject`, and the planner
//!   lists the CTR hours (`ListObjectsV2`), streams its ledger (multipart upload) and removes
//!   its queued log (`DeleteObject`).
//! - The corpus is written by a child process too (`--prepare-only`): writing it holds tens of
//!   MB of JSON per thread.
//!
//! The handler prints its EMF metrics on stdout, as in Lambda; the script moves every stdout line
//! but the result to stderr.

use std::collections::HashSet;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use futures::StreamExt as _;
use lambda_runtime::{Context, LambdaEvent};
use local_stack::generate::{BenchCorpus, bench_corpus_on};
use local_stack::sim::{SimConfig, Simulator};
use local_stack::stack::{create_buckets, create_work_queues};
use recovery::adapters::sqs::SqsQueue;
use recovery::domain::message::WorkMessage;
use serde::{Deserialize, Serialize};
use serde_json::json;

const KEY_ID: &str = "bench-scale-key";
// base64url (no padding) of 32 fixed bytes: a local key, not a secret.
const KEY: &str = "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w";
const CTR_PREFIX: &str = "connect/ctr/";
/// `peak_rss_kib` is in KiB.
const MIB: u64 = 1024;
/// Receive-and-delete loops at once when the work queue is counted.
const DRAINERS: usize = 4;

#[derive(Debug, Parser)]
#[command(
    about = "A day of N contacts, Verint holding none, through the planner function's handler"
)]
struct Args {
    /// Contacts in the day (about 80 % are voice calls with a recording).
    #[arg(long, default_value_t = 1_000_000)]
    contacts: usize,
    /// Where the corpus is kept (written there first unless `.complete` is there). Default:
    /// `$CALL_RECOVERY_HOME/bench-scale-N`.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(
        long,
        env = "CONNECT_INSTANCE_ID",
        default_value = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
    )]
    instance_id: String,
    /// S3 (moto): the CTR objects and the run state.
    #[arg(long, env = "BENCH_S3_URL")]
    s3_url: String,
    /// The first invocation's deadline, seconds from its start, meant to stop it mid-queueing so
    /// that a second one (`--deadline-secs`) continues; 0: one invocation only. The planner
    /// queues until 20 s before the deadline, but never stops before 100 s after its start (it
    /// reads until 120 s before the deadline, clamped at the start, and queues 100 s past that),
    /// so any value up to 120 stops it 100 s after the start.
    #[arg(long, default_value_t = 120)]
    first_deadline_secs: u64,
    #[arg(long, default_value_t = 900)]
    deadline_secs: u64,
    /// Messages sent straight to a fresh queue of the same SQS afterwards, to measure its floor
    /// (`SqsQueue::send_bodies`: batches of 10, 16 in flight). Default: as many as were queued;
    /// 0 skips it.
    #[arg(long)]
    floor_messages: Option<usize>,
    /// Bodies handed to `send_bodies` at a time in the floor measurement.
    #[arg(long, default_value_t = 10_000)]
    floor_chunk: usize,
    /// Milliseconds added to every SQS request (a proxy in front of the stand-in), as a round
    /// trip to SQS in AWS costs: the stand-in alone lets a day of a million contacts queue in well
    /// under the 100 s a first invocation always gets, so the restart is exercised with this.
    /// The floor is measured through the same proxy; the count afterwards bypasses it.
    #[arg(long, default_value_t = 0)]
    sqs_latency_ms: u64,
    /// Skip the dry-run invocation that times the run without queueing.
    #[arg(long)]
    no_dry_run: bool,
    /// Child mode: write the corpus and exit.
    #[arg(long, hide = true)]
    prepare_only: bool,
    /// Child mode: serve SQS and the simulator, print their URLs, stay until stdin closes.
    #[arg(long, hide = true)]
    serve_stand_ins: bool,
}

/// The corpus's truth, computed from the CTR objects themselves (not by the planner's code):
/// the voice calls initiated in the day, which is what a manual run of the day must queue when
/// Verint holds none. The generator's `with_recording` counts every voice call, including those
/// initiated before midnight that arrived in the day's first hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Truth {
    start: String,
    end: String,
    eligible: u64,
    /// Order-independent digest of the eligible ids (wrapping sum and xor of FNV-1a 64).
    id_sum: u64,
    id_xor: u64,
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn home() -> PathBuf {
    std::env::var_os("CALL_RECOVERY_HOME")
        .map_or_else(|| PathBuf::from("/var/tmp/call-recovery"), PathBuf::from)
}

fn corpus_dir(args: &Args) -> PathBuf {
    args.dir
        .clone()
        .unwrap_or_else(|| home().join(format!("bench-scale-{}", args.contacts)))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.prepare_only {
        return prepare(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve_stand_ins {
        return runtime.block_on(serve_stand_ins(Duration::from_millis(args.sqs_latency_ms)));
    }
    runtime.block_on(bench(args))
}

/// Child mode: writes the corpus for the day three days ago (manual windows older than 730 days
/// are refused), its truth, and the `.complete` marker.
fn prepare(args: &Args) -> anyhow::Result<()> {
    let dir = corpus_dir(args);
    let started = Instant::now();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let date = (Utc::now() - TimeDelta::days(3)).date_naive();
    let corpus = bench_corpus_on(&dir, date, args.contacts, args.seed, &args.instance_id)?;
    // Verint holds none of them: the generator's id file is not used.
    std::fs::remove_file(dir.join("verint_ids.txt")).ok();
    std::fs::write(
        dir.join("corpus.json"),
        serde_json::to_string_pretty(&corpus)?,
    )?;
    let truth = truth_of(&corpus)?;
    std::fs::write(
        dir.join("truth.json"),
        serde_json::to_string_pretty(&truth)?,
    )?;
    std::fs::write(dir.join(".complete"), "")?;
    eprintln!(
        "bench-scale: corpus of {} contacts for {date} written in {:.1?} ({} objects, {} MB gzip)",
        corpus.records,
        started.elapsed(),
        corpus.objects,
        corpus.compressed_bytes / 1_000_000
    );
    Ok(())
}

/// Every `.gz` file under `dir`, with its path below `dir` ('/'-separated).
fn objects_under(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((path, rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// The field's string value on an NDJSON line: `"Name":"value"`.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("\"{name}\":\"");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

fn truth_of(corpus: &BenchCorpus) -> anyhow::Result<Truth> {
    let start = corpus
        .date
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    let end = start + TimeDelta::days(1);
    let files = objects_under(&corpus.ctr_dir)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<anyhow::Result<(u64, u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..local_stack::cores().min(files.len()).max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<(u64, u64, u64)> {
                    let (mut n, mut sum, mut xor) = (0u64, 0u64, 0u64);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, _)) = files.get(i) else {
                            return Ok((n, sum, xor));
                        };
                        let file = std::fs::File::open(path)?;
                        let reader = std::io::BufReader::with_capacity(
                            1 << 20,
                            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
                        );
                        for line in reader.lines() {
                            let line = line?;
                            if field(&line, "Channel") != Some("VOICE")
                                || !line.contains("\"Recordings\":[{")
                            {
                                continue;
                            }
                            let (Some(id), Some(at)) = (
                                field(&line, "ContactId"),
                                field(&line, "InitiationTimestamp"),
                            ) else {
                                bail!("a voice CTR without an id or initiation in {path:?}");
                            };
                            let at = DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc);
                            if at >= start && at < end {
                                let h = fnv1a(id);
                                n += 1;
                                sum = sum.wrapping_add(h);
                                xor ^= h;
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a thread panicked")))
            })
            .collect()
    });
    let mut truth = Truth {
        start: recovery::domain::time::format_ts(start),
        end: recovery::domain::time::format_ts(end),
        eligible: 0,
        id_sum: 0,
        id_xor: 0,
    };
    for p in parts {
        let (n, sum, xor) = p?;
        truth.eligible += n;
        truth.id_sum = truth.id_sum.wrapping_add(sum);
        truth.id_xor ^= xor;
    }
    Ok(truth)
}

/// The URLs the child serves.
#[derive(Debug, Serialize, Deserialize)]
struct StandIns {
    /// Through the latency proxy when there is one.
    sqs: String,
    sqs_direct: String,
    connect: String,
    das: String,
    ingest: String,
}

/// Child mode: SQS and the simulator (with no Verint contact), until stdin closes.
async fn serve_stand_ins(latency: Duration) -> anyhow::Result<()> {
    let sim = Simulator::start(
        SimConfig {
            key_id: KEY_ID.into(),
            api_key: KEY.into(),
            max_page_size: 500,
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let sqs = local_stack::sqs::LocalSqs::start().await?;
    let urls = StandIns {
        sqs: if latency.is_zero() {
            sqs.url.clone()
        } else {
            delaying_proxy(&sqs.url, latency).await?
        },
        sqs_direct: sqs.url,
        connect: sim.base_url(),
        das: sim.das_url(),
        ingest: sim.ingest_url(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&urls)?)?;
    out.flush()?;
    drop(out);
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink).ok();
    })
    .await?;
    sim.stop().await;
    Ok(())
}

/// Forwards every request of SQS's JSON protocol to `target` after `latency`.
async fn delaying_proxy(target: &str, latency: Duration) -> anyhow::Result<String> {
    use axum::http::{HeaderMap, StatusCode, header};
    let client = reqwest::Client::new();
    let target = format!("{target}/");
    local_stack::serve_on_loopback(move |_| {
        axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (client, target) = (client.clone(), target.clone());
                async move {
                    tokio::time::sleep(latency).await;
                    let mut request = client.post(&target).body(body);
                    for name in ["x-amz-target", "content-type"] {
                        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                            request = request.header(name, v);
                        }
                    }
                    let answer = async {
                        let response = request.send().await?;
                        let status = response.status().as_u16();
                        let bytes = response.bytes().await?;
                        reqwest::Result::Ok((status, bytes))
                    }
                    .await;
                    match answer {
                        Ok((status, bytes)) => (
                            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                            [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
                            bytes.to_vec(),
                        ),
                        Err(e) => (
                            StatusCode::BAD_GATEWAY,
                            [(header::CONTENT_TYPE, "text/plain")],
                            e.to_string().into_bytes(),
                        ),
                    }
                }
            }),
        )
    })
    .await
}

/// The child serving the stand-ins; ends when this process drops its stdin.
struct Child {
    process: std::process::Child,
}

impl Child {
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.process.stdin.take());
        if self.process.wait().is_err() {
            self.process.kill().ok();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One invocation of the planner function: its answer (or error) and wall time.
async fn invoke(
    app: &planner::App,
    payload: &serde_json::Value,
    deadline: Duration,
    request_id: &str,
) -> (Result<serde_json::Value, lambda_runtime::Diagnostic>, f64) {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.deadline = now_ms() + deadline.as_millis() as u64;
    let started = Instant::now();
    let answer = planner::handle(app, LambdaEvent::new(payload.clone(), context)).await;
    (answer, started.elapsed().as_secs_f64())
}

fn count(summary: &serde_json::Value, name: &str) -> u64 {
    summary[name].as_u64().unwrap_or(0)
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let load_before = local_stack::load_average();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BENCH_SCALE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let me = std::env::current_exe()?;
    let dir = corpus_dir(&args);

    // 1. The corpus, written once (in a child process) and reused.
    if !dir.join(".complete").exists() {
        eprintln!(
            "bench-scale: writing a corpus of {} contacts under {}",
            args.contacts,
            dir.display()
        );
        let status = Command::new(&me)
            .args(["--prepare-only", "--s3-url", "unused"])
            .arg("--contacts")
            .arg(args.contacts.to_string())
            .arg("--seed")
            .arg(args.seed.to_string())
            .arg("--instance-id")
            .arg(&args.instance_id)
            .arg("--dir")
            .arg(&dir)
            .status()?;
        ensure!(status.success(), "writing the corpus failed: {status}");
    }
    let corpus: BenchCorpus =
        serde_json::from_slice(&std::fs::read(dir.join("corpus.json"))?).context("corpus.json")?;
    let truth: Truth =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json"))?).context("truth.json")?;
    ensure!(
        corpus.records == args.contacts,
        "{} holds {} contacts, not {}",
        dir.display(),
        corpus.records,
        args.contacts
    );
    let age = Utc::now().date_naive() - corpus.date;
    ensure!(
        age.num_days() >= 2 && age.num_days() < 700,
        "the corpus's day {} is {} days old; remove {} to write a new one",
        corpus.date,
        age.num_days(),
        dir.display()
    );

    // 2. The stand-ins: SQS and the simulator in a child, S3 in moto.
    let mut process = Command::new(&me)
        .args(["--serve-stand-ins", "--s3-url", "unused"])
        .arg("--sqs-latency-ms")
        .arg(args.sqs_latency_ms.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(process.stdout.take().context("child stdout")?).read_line(&mut line)?;
    let child = Child { process };
    let urls: StandIns = serde_json::from_str(&line).context("the stand-ins' URLs")?;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let mut vars: std::collections::HashMap<String, String> = [
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_S3", args.s3_url.clone()),
        ("AWS_ENDPOINT_URL_SQS", urls.sqs.clone()),
        ("AWS_ENDPOINT_URL_CONNECT", urls.connect.clone()),
        ("CTR_BUCKET", format!("scale-ctr-{suffix}")),
        ("CTR_PREFIX", CTR_PREFIX.to_owned()),
        ("CONNECT_INSTANCE_ID", args.instance_id.clone()),
        ("STATE_BUCKET", format!("scale-state-{suffix}")),
        ("VERINT_DAS_URL", urls.das.clone()),
        ("VERINT_INGEST_URL", urls.ingest.clone()),
        ("VERINT_API_KEY_ID", KEY_ID.to_owned()),
        ("VERINT_API_KEY", KEY.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let clients = recovery::adapters::aws::Clients::load(|k| vars.get(k).cloned()).await;
    let (s3, sqs) = (clients.s3.clone(), clients.sqs.clone());
    let direct = {
        let mut direct = vars.clone();
        direct.insert("AWS_ENDPOINT_URL_SQS".into(), urls.sqs_direct.clone());
        recovery::adapters::aws::Clients::load(|k| direct.get(k).cloned())
            .await
            .sqs
    };
    create_buckets(
        &s3,
        &args.s3_url,
        &[&vars["CTR_BUCKET"], &vars["STATE_BUCKET"]],
    )
    .await?;
    let (work_url, dlq_url) = create_work_queues(&sqs, &format!("scale-{suffix}"), 30, 5).await?;
    vars.insert("WORK_QUEUE_URL".into(), work_url.clone());
    vars.insert("DEAD_LETTER_QUEUE_URL".into(), dlq_url.clone());

    let started = Instant::now();
    let files = objects_under(&corpus.ctr_dir)?;
    let uploads = futures::stream::iter(files.iter().map(|(path, rel)| {
        let (s3, bucket) = (s3.clone(), vars["CTR_BUCKET"].clone());
        async move {
            let body = tokio::fs::read(path).await?;
            s3.put_object()
                .bucket(bucket)
                .key(format!("{CTR_PREFIX}{rel}"))
                .body(body.into())
                .send()
                .await
                .with_context(|| format!("PutObject {rel}"))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(2)
    .collect::<Vec<_>>()
    .await;
    for u in uploads {
        u?;
    }
    eprintln!(
        "bench-scale: {} CTR objects ({} MB) uploaded in {:.1?}; day {}; {} voice calls initiated in it (the truth)",
        files.len(),
        corpus.compressed_bytes / 1_000_000,
        started.elapsed(),
        corpus.date,
        truth.eligible
    );

    // 3. The planner function, as its main builds it.
    let config = recovery::Config::from_lookup(|k| vars.get(k).cloned())
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let app = planner::App::load(config, |k| vars.get(k).cloned()).await?;
    let payload = json!({"start": truth.start, "end": truth.end});
    let rss_before = local_stack::peak_rss_kib();
    eprintln!(
        "bench-scale: planning {} (VmHWM before the invocations: {} MiB)",
        payload,
        rss_before / MIB
    );

    // 4. A dry run times everything but the queueing (reading, DAS, classifying, the ledger and
    // the report); then the invocations: a short deadline that stops it mid-queueing, then one
    // that finishes.
    let mut dry_secs = None;
    if !args.no_dry_run {
        let dry = json!({"start": truth.start, "end": truth.end, "dry_run": true});
        let (answer, wall) = invoke(
            &app,
            &dry,
            Duration::from_secs(args.deadline_secs),
            "dry-run",
        )
        .await;
        let answer = answer.map_err(|d| {
            anyhow::anyhow!("the dry run failed: {}: {}", d.error_type, d.error_message)
        })?;
        eprintln!(
            "bench-scale: dry run (no queueing) {wall:.1} s, {} missing; VmHWM {} MiB",
            count(&answer, "missing"),
            local_stack::peak_rss_kib() / MIB
        );
        dry_secs = Some(wall);
    }
    let mut secs = 0.0;
    let mut finished = None;
    let mut restarted = false;
    if args.first_deadline_secs > 0 {
        let (answer, wall) = invoke(
            &app,
            &payload,
            Duration::from_secs(args.first_deadline_secs),
            "first",
        )
        .await;
        secs += wall;
        match answer {
            Err(d) if d.error_message.contains("the deadline stopped the run") => {
                restarted = true;
                eprintln!(
                    "bench-scale: first invocation ({} s deadline) stopped after {wall:.1} s: {}: {}",
                    args.first_deadline_secs, d.error_type, d.error_message
                );
            }
            Err(d) => bail!(
                "the first invocation failed: {}: {}",
                d.error_type,
                d.error_message
            ),
            Ok(summary) => {
                eprintln!(
                    "bench-scale: first invocation FINISHED within its {} s deadline ({wall:.1} s): no restart was exercised (lower --first-deadline-secs; the planner queues until 20 s before the deadline, but never stops before 100 s after the start); {summary}",
                    args.first_deadline_secs
                );
                finished = Some(summary);
            }
        }
    }
    let summary = match finished {
        Some(summary) => summary,
        None => {
            let (answer, wall) = invoke(
                &app,
                &payload,
                Duration::from_secs(args.deadline_secs),
                "second",
            )
            .await;
            secs += wall;
            let summary = answer.map_err(|d| {
                anyhow::anyhow!(
                    "the invocation with {} s failed: {}: {}",
                    args.deadline_secs,
                    d.error_type,
                    d.error_message
                )
            })?;
            eprintln!(
                "bench-scale: {} invocation ({} s deadline) {wall:.1} s: {summary}",
                if restarted { "second" } else { "the" },
                args.deadline_secs
            );
            summary
        }
    };
    let peak_rss = local_stack::peak_rss_kib();
    let response_bytes = serde_json::to_vec(&summary)?.len();
    let missing = count(&summary, "missing");
    drop(app);

    // 5. The work queue, message by message: received with a long visibility, then deleted (the
    // stand-in drops deleted messages as it scans, so every receive stays short).
    let started = Instant::now();
    let work_queue = SqsQueue::new(direct.clone(), &work_url);
    let (ids, messages, template) = drain(&work_queue).await?;
    let distinct = ids.len() as u64;
    let duplicates = messages - distinct;
    let (sum, xor) = ids.iter().fold((0u64, 0u64), |(s, x), id| {
        let h = fnv1a(id);
        (s.wrapping_add(h), x ^ h)
    });
    let same_ids = (distinct, sum, xor) == (truth.eligible, truth.id_sum, truth.id_xor);
    drop(ids);
    let dead = SqsQueue::new(direct.clone(), &dlq_url).depth().await?;
    eprintln!(
        "bench-scale: work queue drained in {:.1?}: {messages} messages, {distinct} contacts, {duplicates} duplicates; the ids are {} the truth's; DLQ {} visible",
        started.elapsed(),
        if same_ids { "exactly" } else { "NOT" },
        dead.visible + dead.in_flight
    );

    // 6. The floor: the same number of messages of the same size sent straight to a fresh queue.
    let floor_n = args.floor_messages.unwrap_or(messages as usize);
    if floor_n > 0
        && let Some((body, id)) = template
    {
        let (floor_url, _) = create_work_queues(&sqs, &format!("floor-{suffix}"), 30, 5).await?;
        let floor = SqsQueue::new(sqs.clone(), &floor_url);
        let started = Instant::now();
        let mut sent = 0u64;
        let mut i = 0usize;
        while i < floor_n {
            let n = args.floor_chunk.min(floor_n - i);
            let bodies: Vec<(String, Option<String>)> = (i..i + n)
                .map(|k| {
                    let fake = format!("{:08x}-0000-4000-8000-{:012x}", k as u32, k);
                    (body.replace(&id, &fake), None)
                })
                .collect();
            sent += floor.send_bodies(&bodies).await?;
            i += n;
        }
        let floor_secs = started.elapsed().as_secs_f64();
        eprintln!(
            "bench-scale: SQS floor: {sent} messages of {} bytes via send_bodies ({} at a time, batches of 10, 16 in flight) in {floor_secs:.1} s = {:.0} messages/s",
            body.len(),
            args.floor_chunk,
            sent as f64 / floor_secs
        );
    }
    let child_rss = child.peak_rss_kib();
    drop(child);

    let queued = distinct;
    eprintln!(
        "bench-scale: {} contacts, day {}, {} cores, load average before {load_before}, after {}",
        corpus.records,
        corpus.date,
        local_stack::cores(),
        local_stack::load_average()
    );
    eprintln!(
        "bench-scale: {queued} calls over {secs:.1} s of invocations = {:.0} calls/s of wall, reading included; stand-ins' peak RSS {} MiB (not counted)",
        queued as f64 / secs,
        child_rss / MIB
    );
    if let (Some(dry), false) = (dry_secs, restarted) {
        eprintln!(
            "bench-scale: queueing alone (the invocation less the dry run's {dry:.1} s): {:.1} s = {:.0} calls/s",
            secs - dry,
            queued as f64 / (secs - dry)
        );
    }
    let checks = [
        ("queued == missing", queued == missing),
        ("missing == the truth's eligible", missing == truth.eligible),
        ("queued ids == the truth's ids", same_ids),
        ("duplicates == 0", duplicates == 0),
        ("response_bytes <= 65536", response_bytes <= 65_536),
        ("peak RSS <= 512 MiB", peak_rss <= 512 * MIB),
        ("DLQ empty", dead.visible + dead.in_flight == 0),
    ];
    for (what, ok) in &checks {
        eprintln!("bench-scale: {what}: {}", local_stack::met(*ok));
    }
    println!(
        "bench-scale: contacts={} missing={missing} queued={queued} duplicates={duplicates} response_bytes={response_bytes} secs={secs:.1} peak_rss_mib={}",
        corpus.records,
        peak_rss / MIB
    );
    if checks.iter().any(|(_, ok)| !ok) {
        std::process::exit(1);
    }
    Ok(())
}

/// Receives every message of the queue (visibility one hour) and deletes it, with
/// [`DRAINERS`] loops at once; the distinct contact ids, the number of messages, and one body with
/// its contact id (the floor's template).
async fn drain(
    queue: &SqsQueue,
) -> anyhow::Result<(HashSet<String>, u64, Option<(String, String)>)> {
    type Seen = (HashSet<String>, u64, Option<(String, String)>);
    let seen: std::sync::Mutex<Seen> = std::sync::Mutex::new((HashSet::new(), 0, None));
    let loops = (0..DRAINERS).map(|_| async {
        loop {
            let batch = queue
                .receive(10, Duration::ZERO, Some(Duration::from_secs(3600)))
                .await?;
            if batch.is_empty() {
                if queue.depth().await?.visible == 0 {
                    return anyhow::Ok(());
                }
                continue;
            }
            {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                for m in &batch {
                    let w = WorkMessage::parse(&m.body)
                        .map_err(|e| anyhow::anyhow!("a work message that does not parse: {e}"))?;
                    seen.1 += 1;
                    if seen.2.is_none() {
                        seen.2 = Some((m.body.clone(), w.contact_id.clone()));
                    }
                    seen.0.insert(w.contact_id);
                }
            }
            let deletes =
                futures::future::join_all(batch.iter().map(|m| queue.delete(&m.receipt_handle)))
                    .await;
            for d in deletes {
                d?;
            }
        }
    });
    for r in futures::future::join_all(loops).await {
        r?;
    }
    Ok(seen.into_inner().unwrap_or_else(|e| e.into_inner()))
}
