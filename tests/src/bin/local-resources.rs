//! The local stack's resources in moto: its buckets, its queues (each with its dead-letter queue
//! and redrive policy) and the Verint API key secret. Idempotent, so `scripts/stack.sh up` runs it
//! on every start. Prints the environment of the stack, one `export NAME=value` line each, which
//! `scripts/stack.sh` writes to `.stack/env`.

use anyhow::Result;
use clap::Parser;
use local_stack::stack::{
    INSTANCE, LOCAL_KEY as KEY, LOCAL_KEY_ID as KEY_ID, RedrivenQueue, create_buckets,
};

const REGION: &str = "us-east-1";
const CTR_BUCKET: &str = "ctr-bucket";
const RECORDINGS_BUCKET: &str = "connect-recordings";
const STATE_BUCKET: &str = "recovery-state";
const SECRET_ID: &str = "call-recovery/verint-api-key";

/// A queue of the stack and the variables that carry its URLs.
struct LocalQueue {
    queue: RedrivenQueue<'static>,
    url_var: &'static str,
    dead_letter_url_var: Option<&'static str>,
}

/// Every queue of the stack. Queues may share a dead-letter queue (the same `dead_letter_name`).
const QUEUES: &[LocalQueue] = &[
    LocalQueue {
        queue: RedrivenQueue {
            name: "call-recovery-work",
            dead_letter_name: "call-recovery-dlq",
            visibility_secs: 30,
            max_receive_count: 3,
        },
        url_var: "WORK_QUEUE_URL",
        dead_letter_url_var: Some("DEAD_LETTER_QUEUE_URL"),
    },
    // Backfills (design §4.8): the calls of long windows, beside the work queue, same DLQ.
    LocalQueue {
        queue: RedrivenQueue {
            name: "call-recovery-backfill",
            dead_letter_name: "call-recovery-dlq",
            visibility_secs: 30,
            max_receive_count: 3,
        },
        url_var: "BACKFILL_QUEUE_URL",
        dead_letter_url_var: None,
    },
    // One message per backfill slice; a slice that failed three times waits in its own DLQ.
    LocalQueue {
        queue: RedrivenQueue {
            name: "call-recovery-planning",
            dead_letter_name: "call-recovery-planning-dlq",
            visibility_secs: 900,
            max_receive_count: 3,
        },
        url_var: "PLANNING_QUEUE_URL",
        dead_letter_url_var: Some("PLANNING_DEAD_LETTER_QUEUE_URL"),
    },
];

#[derive(Debug, Parser)]
#[command(about = "Creates the local stack's buckets, queues and secret; prints its environment")]
struct Args {
    /// The moto server.
    #[arg(long, env = "MOTO_URL")]
    moto_url: String,
    /// The Verint + Connect simulator.
    #[arg(long, env = "SIM_URL")]
    sim_url: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (moto, sim) = (args.moto_url.as_str(), args.sim_url.as_str());
    let mut env: Vec<(&str, String)> = vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_ENDPOINT_URL_S3", moto.into()),
        ("AWS_ENDPOINT_URL_SQS", moto.into()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.into()),
        ("AWS_ENDPOINT_URL_CONNECT", sim.into()),
        ("MOTO_URL", moto.into()),
        ("SIM_URL", sim.into()),
        ("CTR_BUCKET", CTR_BUCKET.into()),
        ("CTR_PREFIX", "connect/ctr/".into()),
        ("RECORDINGS_BUCKET", RECORDINGS_BUCKET.into()),
        ("RECORDINGS_PREFIX", "connect/acme/CallRecordings/".into()),
        ("CONNECT_INSTANCE_ID", INSTANCE.into()),
        ("STATE_BUCKET", STATE_BUCKET.into()),
        ("STATE_PREFIX", "call-recovery/".into()),
        ("VERINT_DAS_URL", format!("{sim}/das")),
        ("VERINT_INGEST_URL", format!("{sim}/ingest")),
        ("VERINT_API_KEY_ID", KEY_ID.into()),
        ("VERINT_API_KEY", KEY.into()),
        // The simulator is not the account's shared Connect quota.
        ("CONNECT_MAX_RPS", "50".into()),
    ];
    let clients = {
        let vars = env.clone();
        recovery::adapters::aws::Clients::load(move |k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .await
    };
    create_buckets(
        &clients.s3,
        moto,
        &[CTR_BUCKET, RECORDINGS_BUCKET, STATE_BUCKET],
    )
    .await?;
    // The template's state bucket keeps versions: a bad checkpoint is restored from one.
    local_stack::stack::version(&clients.s3, STATE_BUCKET).await?;
    for q in QUEUES {
        let (url, dead_letter_url) = q.queue.create(&clients.sqs).await?;
        env.push((q.url_var, url));
        if let Some(var) = q.dead_letter_url_var {
            env.push((var, dead_letter_url));
        }
    }
    let secret = serde_json::json!({ "keyId": KEY_ID, "key": KEY }).to_string();
    match clients
        .secrets
        .create_secret()
        .name(SECRET_ID)
        .secret_string(secret)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("creating secret {SECRET_ID}"))),
    }
    for (name, value) in env {
        println!("export {name}={value}");
    }
    Ok(())
}
