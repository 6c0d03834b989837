//! Benchmarks the worker's transfer path: one recording streamed from S3 (moto) into Verint's
//! ingest endpoint (the simulator) with the real `open_recording` + `VerintClient::ingest`.
//! With `--summary` it starts its own simulator and runs that benchmark as a child under
//! `/usr/bin/time -v`, beside the baseline `curl moto | curl -T - <sink>` (or, over a slow link,
//! beside the link's time), and prints the summary table of docs/benchmarks.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use local_stack::bench::{self, round};
use local_stack::met;
use recovery::adapters::recordings::open_recording;
use recovery::adapters::verint::{ApiKey, VerintClient};
use recovery::domain::ctr::S3Location;
use recovery::domain::metadata::{Metadata, RecordingMeta, Recovery};
use recovery::domain::time::format_ts;
use recovery::ports::verint::Ingested;
use reqwest::Url;
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(about = "Streams one S3 recording into Verint's ingest endpoint and reports MiB/s")]
struct Args {
    /// The S3 endpoint (path-style), e.g. moto.
    #[arg(long, default_value = "http://127.0.0.1:5055")]
    s3_endpoint: String,
    #[arg(long, default_value = "bench-ingest")]
    bucket: String,
    #[arg(long, required_unless_present_any = ["summary", "sink_port"])]
    key: Option<String>,
    /// The ingest base URL (`{base}/recovered-calls` is posted to).
    #[arg(long, required_unless_present_any = ["summary", "sink_port"])]
    ingest_url: Option<Url>,
    #[arg(long, env = "VERINT_API_KEY_ID")]
    key_id: Option<String>,
    #[arg(long, env = "VERINT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The contact id sent (default: a fresh one, so the simulator never answers 409).
    #[arg(long)]
    contact_id: Option<String>,
    /// Instead of the benchmark: puts a WAV recording of this many bytes (the generator's) at
    /// `--bucket`/`--key`, creating the bucket, unless an object of that size is there already.
    #[arg(long)]
    prepare_bytes: Option<u64>,
    /// Instead of the benchmark: serves a sink on this local port that reads every request
    /// body, discards it and answers its length (the baseline's `curl -T -` target).
    #[arg(long)]
    sink_port: Option<u16>,
    /// Instead: the whole benchmark and its summary, for `[SIZE_MIB]` (default 1024) on
    /// loopback or `link [SIZE_MB [RATE_MB_S]]` (default 500 MB at 2 MB/s) over a slow link.
    #[arg(long)]
    summary: bool,
    /// With `--summary`: where the simulator's log and the `time -v` reports go.
    #[arg(long, default_value = "/var/tmp/call-recovery/bench-ingest")]
    work_dir: PathBuf,
    #[arg(requires = "summary", allow_hyphen_values = true)]
    size: Vec<String>,
}

/// The key both the simulator `--summary` starts and the benchmark use.
const BENCH_KEY: (&str, &str) = ("bench-key", "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w");

/// The children `--summary` starts, killed when it ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// curl with moto's signature (moto answers 403 to an unsigned request).
fn moto_curl() -> Command {
    let mut curl = Command::new("curl");
    curl.args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing:testing",
        "-fsS",
    ]);
    curl
}

async fn summary(args: &Args, s3: &aws_sdk_s3::Client) -> anyhow::Result<()> {
    let positive = |s: Option<&String>, default: u64| -> anyhow::Result<u64> {
        let s = s.map_or(default.to_string(), Clone::clone);
        s.parse()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("the size must be a positive integer, not '{s}'"))
    };
    let link = args.size.first().is_some_and(|m| m == "link");
    let (size, unit, per, rate) = if link {
        let rate: f64 = args
            .size
            .get(2)
            .map_or(Ok(2.0), |r| r.parse())
            .context("RATE_MB_S must be a number")?;
        anyhow::ensure!(rate > 0.0, "RATE_MB_S must be positive, not {rate}");
        (positive(args.size.get(1), 500)?, "MB", 1_000_000, rate)
    } else {
        (positive(args.size.first(), 1024)?, "MiB", 1 << 20, 0.0)
    };
    for tool in ["/usr/bin/time", "curl"] {
        bench::require(tool)?;
    }
    let bytes = size * per;
    let key = format!(
        "connect/bench/CallRecordings/2024/05/14/bench-{size}{unit}_20240514T14:03_UTC.wav"
    ); // a ':', as Connect's
    prepare(s3, &args.bucket, &key, bytes).await?;
    std::fs::create_dir_all(&args.work_dir)?;
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::new());
    let sim_addr = format!("127.0.0.1:{}", free_port()?);
    let sim_log = args.work_dir.join("sim.log");
    let log = std::fs::File::create(&sim_log)?;
    let simulator = Command::new(exe.with_file_name("simulator"))
        .args([
            "--listen",
            &sim_addr,
            "--key-id",
            BENCH_KEY.0,
            "--api-key",
            BENCH_KEY.1,
        ])
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the simulator")?;
    children.0.push(simulator);
    let sim = format!("http://{sim_addr}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        up = http
            .get(format!("{sim}/_admin/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(
        up,
        "the simulator did not start (log: {})",
        sim_log.display()
    );
    let load_before = local_stack::load_average();
    let mut run = Command::new(&exe);
    run.arg("--s3-endpoint")
        .arg(&args.s3_endpoint)
        .args(["--bucket", &args.bucket, "--key", &key]);
    run.args([
        "--ingest-url",
        &format!("{sim}/ingest"),
        "--key-id",
        BENCH_KEY.0,
        "--api-key",
        BENCH_KEY.1,
    ]);
    let mode = if link { "link" } else { "loopback" };
    let header = |title: &str| {
        println!(
            "\n== bench-ingest {title}, {} cores ==",
            local_stack::cores()
        );
        println!(
            "load average before {load_before}, after {} (other work on the machine shows here)",
            local_stack::load_average()
        );
        println!("| measure | value | target | met |\n|---|---|---|---|");
    };
    let rss = |t: &bench::Timed| -> anyhow::Result<String> {
        Ok(format!(
            "| bench-ingest peak RSS (time -v / VmHWM) | {} / {} MiB | <= 64 MiB | {} |",
            t.rss_mib(),
            t.field("peak rss (VmHWM)")?,
            met(t.rss_mib() <= 64)
        ))
    };

    if link {
        let rate_bps = (rate * 1e6).round();
        let faults = http
            .post(format!("{sim}/_admin/faults"))
            .json(&serde_json::json!({ "read_bytes_per_sec": rate_bps as u64 }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        faults.context("could not set the simulator's link rate")?;
        let link_s = round(bytes as f64 / rate_bps, 1);
        let timed = measure(&run, &args.work_dir, mode)?;
        let wall: f64 = timed.field("wall")?.parse()?;
        let ratio = round(wall / link_s, 3);
        header(&format!("link summary: {size} MB at {rate} MB/s"));
        println!("| the link's time ({size} MB / {rate} MB/s) | {link_s:.1} s | | |");
        println!("| bench-ingest moto -> simulator, wall | {wall:.3} s | | |");
        println!(
            "| wall / link time | {ratio:.3}x | <= 1.05x | {} |",
            met(ratio <= 1.05)
        );
        println!("{}", rss(&timed)?);
        return Ok(());
    }

    let sink_port = free_port()?;
    let sink_child = Command::new(&exe)
        .arg("--sink-port")
        .arg(sink_port.to_string())
        .spawn()?;
    children.0.push(sink_child);
    let sink = format!("http://127.0.0.1:{sink_port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", sink_port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{}/{}/{key}", args.s3_endpoint, args.bucket);
    let alone = moto_curl()
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
            &url,
        ])
        .output()?;
    anyhow::ensure!(
        alone.status.success(),
        "curl of moto failed: {}",
        alone.status
    );
    let alone = String::from_utf8(alone.stdout)?;
    let (moto_bytes, moto_s) = alone.split_once(' ').context("curl's -w output")?;
    anyhow::ensure!(
        moto_bytes == bytes.to_string(),
        "moto served {moto_bytes} bytes, expected {bytes}"
    );
    let t0 = Instant::now();
    let mut get = moto_curl().arg(&url).stdout(Stdio::piped()).spawn()?;
    let put = Command::new("curl")
        .args(["-fsS", "-T", "-", &format!("{sink}/sink")])
        .stdin(get.stdout.take().context("curl's stdout")?)
        .output()?;
    let get_status = get.wait()?;
    let curl_s = round(t0.elapsed().as_secs_f64(), 3);
    anyhow::ensure!(
        get_status.success() && put.status.success(),
        "the curl pipe failed"
    );
    let sunk = String::from_utf8(put.stdout)?;
    anyhow::ensure!(
        sunk == bytes.to_string(),
        "the sink received {sunk} bytes, expected {bytes}"
    );
    let timed = measure(&run, &args.work_dir, mode)?;
    let (curl_rate, ingest_rate) = (round(size as f64 / curl_s, 1), timed.field("throughput")?);
    let ratio = round(ingest_rate.parse::<f64>()? / curl_rate, 2);
    header(&format!("summary: {size} MiB"));
    println!(
        "| moto GET alone (curl > /dev/null) | {:.1} MiB/s ({moto_s} s) | | |",
        size as f64 / moto_s.parse::<f64>()?
    );
    println!(
        "| baseline curl moto \\| curl -T - sink | {curl_rate:.1} MiB/s ({curl_s:.3} s) | | |"
    );
    println!(
        "| bench-ingest moto -> simulator | {ingest_rate} MiB/s ({} s) | | |",
        timed.field("wall")?
    );
    println!(
        "| bench-ingest / curl pipe | {ratio:.2}x | >= 0.8x | {} |",
        met(ratio >= 0.8)
    );
    println!("{}", rss(&timed)?);
    Ok(())
}

/// The benchmark as a child under `time -v`; its output is kept in `WORK/MODE.out`.
fn measure(run: &Command, work: &Path, mode: &str) -> anyhow::Result<bench::Timed> {
    let timed =
        bench::time_v(run, &work.join(format!("time-{mode}"))).context("bench-ingest failed")?;
    std::fs::write(work.join(format!("{mode}.out")), &timed.stdout)?;
    Ok(timed)
}

/// The baseline's sink: reads each body in the pieces it arrives in and answers its length.
async fn sink(port: u16) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let app = axum::Router::new().fallback(|body: axum::body::Body| async move {
        let mut stream = body.into_data_stream();
        let mut n = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            n += chunk.len();
        }
        n.to_string()
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The recording the benchmark reads, written once (a second run finds it in place).
async fn prepare(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: u64,
) -> anyhow::Result<()> {
    let have = s3.head_object().bucket(bucket).key(key).send().await;
    if have.is_ok_and(|h| h.content_length() == Some(bytes as i64)) {
        return Ok(());
    }
    local_stack::stack::create_buckets(s3, "the S3 endpoint", &[bucket]).await?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    eprintln!("bench-ingest: putting a {bytes}-byte WAV at s3://{bucket}/{key}");
    let wav = local_stack::generate::wav(&mut rng, bytes);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("audio/wav")
        .body(wav.into())
        .send()
        .await
        .context("putting the recording")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(port) = args.sink_port {
        return sink(port).await;
    }
    let vars: HashMap<&str, String> = [
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_S3", args.s3_endpoint.clone()),
    ]
    .into_iter()
    .collect();
    let clients = recovery::adapters::aws::Clients::load(|k| vars.get(k).cloned()).await;
    if args.summary {
        return summary(&args, &clients.s3).await;
    }
    let object_key = args.key.clone().context("--key is required")?;
    if let Some(bytes) = args.prepare_bytes {
        return prepare(&clients.s3, &args.bucket, &object_key, bytes).await;
    }
    let ingest_url = args
        .ingest_url
        .clone()
        .context("--ingest-url is required")?;
    let key = ApiKey::new(
        args.key_id
            .clone()
            .context("--key-id or VERINT_API_KEY_ID is required")?,
        &SecretString::from(
            args.api_key
                .clone()
                .context("--api-key or VERINT_API_KEY is required")?,
        ),
    )
    .map_err(|reason| anyhow::anyhow!("bad api key: {reason}"))?;
    let verint = VerintClient::new(ingest_url.clone(), ingest_url.clone(), key)?;
    let contact_id = args.contact_id.clone().unwrap_or_else(|| {
        let b: [u8; 16] = rand::random();
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    });
    let location = S3Location {
        bucket: args.bucket.clone(),
        key: object_key,
    };

    let started = Instant::now();
    let recording = open_recording(&clients.s3, &location)
        .await
        .with_context(|| format!("GetObject {}/{}", location.bucket, location.key))?;
    let bytes = recording.len;
    let now = chrono::Utc::now();
    let metadata = Metadata {
        amazon_contact_id: contact_id.clone(),
        instance_arn:
            "arn:aws:connect:us-east-1:123456789012:instance/5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
                .into(),
        channel: "VOICE".into(),
        initiation_method: "INBOUND".into(),
        initiation_timestamp: format_ts(now - chrono::TimeDelta::hours(3)),
        disconnect_timestamp: format_ts(now - chrono::TimeDelta::hours(2)),
        agent: None,
        queue: None,
        customer_endpoint: None,
        system_endpoint: None,
        attributes: Default::default(),
        recordings: vec![RecordingMeta {
            bucket: location.bucket.clone(),
            key: location.key.clone(),
            bytes,
            content_type: "audio/wav".into(),
        }],
        recovery: Recovery {
            run_id: "bench-ingest".into(),
            recovered_at: format_ts(now),
            screens_expected: false,
        },
    };
    let answer = verint
        .ingest(&metadata, vec![recording.into_part()])
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let interaction = match answer {
        Ingested::Created { interaction_id } => format!("201 {interaction_id}"),
        Ingested::AlreadyPresent { interaction_id } => format!("409 {interaction_id}"),
    };
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "bench-ingest: s3://{}/{} -> {}",
        location.bucket, location.key, ingest_url
    );
    println!("contact:             {contact_id} ({interaction})");
    println!("bytes:               {bytes} ({mib:.1} MiB)");
    println!("wall:                {secs:.3} s");
    println!("throughput:          {:.1} MiB/s", mib / secs);
    println!(
        "peak rss (VmHWM):    {} MiB",
        local_stack::peak_rss_kib() / 1024
    );
    Ok(())
}
