//! Generates a realistic day of CTRs and recordings into S3 and seeds the simulator; optionally
//! with truncated, archived (GLACIER) and Contact Lens redacted recordings (design §10).

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::Parser;
use local_stack::generate::{self, DaySpec};

#[derive(Debug, Parser)]
#[command(about = "Writes a generated day to S3 (CTRs + recordings) and seeds the simulator")]
struct Args {
    /// The UTC day (default: yesterday).
    #[arg(long)]
    date: Option<NaiveDate>,
    /// Contacts of every kind.
    #[arg(long, default_value_t = 400)]
    calls: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The simulator to seed (skipped when absent).
    #[arg(long, env = "SIM_URL")]
    sim_url: Option<String>,
    /// Writes the ground truth (JSON array) here.
    #[arg(long)]
    truth_out: Option<PathBuf>,
    #[arg(long, env = "CTR_BUCKET")]
    ctr_bucket: String,
    #[arg(long, env = "CTR_PREFIX", default_value = "")]
    ctr_prefix: String,
    #[arg(long, env = "CONNECT_INSTANCE_ID")]
    instance_id: String,
    #[arg(long, env = "RECORDINGS_BUCKET", default_value = "connect-recordings")]
    recordings_bucket: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Share of eligible calls Verint lacks.
    #[arg(long, default_value_t = 0.08)]
    miss_rate: f64,
    /// Truncates that many recordings of missed calls: the CTR says the recording lasted the
    /// call, the WAV holds a second or two (the first has a header claiming the whole call).
    #[arg(long, default_value_t = 0)]
    truncated: usize,
    /// Uploads that many recordings of missed calls with storage class GLACIER.
    #[arg(long, default_value_t = 0)]
    archived: usize,
    /// The share (0 to 1) of recorded voice calls that also get a Contact Lens redacted
    /// recording (`Analysis/Voice/Redacted/YYYY/MM/DD/{id}_call_recording_redacted_{ts}.wav`).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    redacted: f64,
    /// That many missed calls get no redacted recording, whatever `--redacted` draws.
    #[arg(long, default_value_t = 0)]
    redacted_missing: usize,
    /// Makes the simulator's Verint reject one of the day's missing calls (the first by id), as
    /// a misconfigured Verint would; prints its id.
    #[arg(long, requires = "sim_url")]
    reject_one_missing: bool,
}

/// A share: a number from 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share from 0 to 1")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let date = match args.date {
        Some(d) => d,
        None => (Utc::now() - chrono::Duration::days(1)).date_naive(),
    };
    let mut spec = DaySpec::new(args.seed, date, &args.instance_id);
    spec.calls = args.calls;
    spec.ctr_bucket = args.ctr_bucket;
    spec.ctr_prefix = args.ctr_prefix;
    spec.recordings_bucket = args.recordings_bucket;
    spec.region = args.region;
    spec.verint_miss_rate = args.miss_rate;
    spec.truncated = args.truncated;
    spec.archived = args.archived;
    spec.redacted = args.redacted;
    spec.redacted_missing = args.redacted_missing;
    let day = generate::day(&spec);

    let conf = aws_config::load_from_env().await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&conf);
    if std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
    {
        s3 = s3.force_path_style(true);
    }
    let s3 = aws_sdk_s3::Client::from_conf(s3.build());
    generate::upload(&s3, &day).await.context("upload to S3")?;
    if let Some(url) = &args.sim_url {
        generate::seed_simulator(url, &day)
            .await
            .context("seed the simulator")?;
    }
    if let Some(path) = &args.truth_out {
        std::fs::write(path, serde_json::to_vec_pretty(&day.truth)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    println!("{date}: {}", generate::summary(&day));
    if let (true, Some(url)) = (args.reject_one_missing, &args.sim_url) {
        let reject = day
            .truth
            .iter()
            .filter(|t| t.missing() && t.initiation.date_naive() == date)
            .map(|t| t.contact_id.as_str())
            .min()
            .context("the day has no missing call to reject")?;
        reqwest::Client::new()
            .post(format!("{url}/_admin/faults"))
            .json(&serde_json::json!({ "reject_contact_ids": [reject] }))
            .send()
            .await?
            .error_for_status()?;
        println!("Verint will reject contact {reject}");
    }
    Ok(())
}
