//! Benchmarks the worker's transfer path: one recording streamed from S3 (moto) into Verint's
//! ingest endpoint (the simulator) with the real `open_recording` + `VerintClient::ingest`.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use recovery::ctr::S3Location;
use recovery::time::format_ts;
use recovery::verint::ingest::{Ingested, Metadata, RecordingMeta, Recovery};
use recovery::verint::{ApiKey, VerintClient};
use recovery::work::open_recording;
use reqwest::Url;
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(about = "Streams one S3 recording into Verint's ingest endpoint and reports MiB/s")]
struct Args {
    /// The S3 endpoint (path-style), e.g. moto.
    #[arg(long, default_value = "http://127.0.0.1:5055")]
    s3_endpoint: String,
    #[arg(long)]
    bucket: String,
    #[arg(long)]
    key: String,
    /// The ingest base URL (`{base}/recovered-calls` is posted to).
    #[arg(long)]
    ingest_url: Url,
    #[arg(long, env = "VERINT_API_KEY_ID")]
    key_id: String,
    #[arg(long, env = "VERINT_API_KEY", hide_env_values = true)]
    api_key: String,
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
    let clients = recovery::aws::Clients::load(|k| vars.get(k).cloned()).await;
    if let Some(bytes) = args.prepare_bytes {
        return prepare(&clients.s3, &args.bucket, &args.key, bytes).await;
    }
    let key = ApiKey::new(
        args.key_id.clone(),
        &SecretString::from(args.api_key.clone()),
    )
    .map_err(|reason| anyhow::anyhow!("bad api key: {reason}"))?;
    let verint = VerintClient::new(args.ingest_url.clone(), args.ingest_url.clone(), key)?;
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
        key: args.key.clone(),
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
        location.bucket, location.key, args.ingest_url
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
