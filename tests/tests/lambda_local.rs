//! The planner and worker Lambda binaries under cargo-lambda's local Lambda runtime
//! (`cargo lambda watch`, which builds them), invoked with real event shapes against a private
//! corner of the local stack (moto at `MOTO_URL`, a simulator in this process): an EventBridge
//! scheduled event, a manual payload and an invalid one for the planner; an SQS event of real
//! work-queue messages plus a malformed body for the worker.
//!
//! Needs `cargo lambda` on `PATH`: `scripts/test.sh` installs it (`ensure_cargo_lambda` in
//! `scripts/lib.sh`).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::TimeDelta;
use local_stack::stack::{Stack, midnight, past_day};
use recovery::domain::report::OutcomeStatus;
use serde_json::{Value, json};

const MALFORMED_BODY: &str = r#"{"v":1"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// `cargo lambda watch` serving both functions on a free local port; its whole process group
/// (cargo and the functions) is stopped on drop.
struct Watch {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Watch {
    fn start(stack: &Stack, log: PathBuf) -> Result<Watch> {
        let version = Command::new("cargo").args(["lambda", "--version"]).output();
        if !version.is_ok_and(|o| o.status.success()) {
            bail!(
                "cargo-lambda is missing: run scripts/test.sh, or \
                 `source scripts/lib.sh && ensure_cargo_lambda` to install it and put it on PATH"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = File::create(&log)?;
        // The functions inherit this environment: the stack's variables. --ignore-changes: a
        // reload mid-test (others edit the tree) would restart the functions.
        let child = Command::new("cargo")
            .args(["lambda", "watch", "--ignore-changes", "--invoke-address"])
            .args(["127.0.0.1", "--invoke-port", &port.to_string()])
            .current_dir(workspace())
            .envs(&stack.vars)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .context("starting cargo lambda watch")?;
        let watch = Watch {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        Ok(watch)
    }

    async fn wait_until_it_answers(&mut self, http: &reqwest::Client) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until {
            if http.get(&self.base).send().await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("cargo lambda watch exited ({status}):\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "cargo lambda watch does not answer on {}:\n{}",
            self.base,
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// POSTs `event` to the Invoke API of `function`: the HTTP status and the JSON answer.
    async fn invoke(&self, http: &reqwest::Client, function: &str, event: &Value) -> (u16, Value) {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let response = http
            .post(url)
            .json(event)
            .timeout(Duration::from_secs(300))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoking {function}: {e}\n{}", self.log_tail()));
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        println!("{function} <- {event}: HTTP {status} {body}");
        (status, body)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |s: &str| {
            let _ = Command::new("kill")
                .args([s, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// Receives up to `want` messages of `queue` (several rounds), with their system attributes,
/// hidden for a minute (the stack's queues hide a message for 2 s only).
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    want: usize,
) -> Result<Vec<aws_sdk_sqs::types::Message>> {
    let mut got = Vec::new();
    for _ in 0..5 {
        if got.len() >= want {
            break;
        }
        let batch = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages((want - got.len()).clamp(1, 10) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await?;
        got.extend(batch.messages.unwrap_or_default());
    }
    Ok(got)
}

fn run_id_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?["run_id"]
        .as_str()
        .map(str::to_owned)
}

/// An SQS record of a received message, as the Lambda trigger delivers it.
fn sqs_record(m: &aws_sdk_sqs::types::Message, arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.as_str())))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
        "attributes": attributes, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
    })
}

/// A record whose body is not JSON, with a made-up receipt handle.
fn malformed_record(arn: &str) -> Value {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    json!({
        "messageId": "00000000-0000-4000-8000-lambdalocal01",
        "receiptHandle": "lambda-local-made-up-receipt-handle", "body": MALFORMED_BODY,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now,
            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": now},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": "us-east-1",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_functions_answer_real_events_under_cargo_lambda_watch() -> Result<()> {
    // Automatic runs start at floor_hour(now - INITIAL_LOOKBACK) with no checkpoint: 4 days back
    // covers the day, and 100 hours per run reach the present.
    let stack = Stack::new(&[("INITIAL_LOOKBACK", "4d"), ("MAX_HOURS_PER_RUN", "100")]).await?;
    let day = past_day();
    stack.day(rand::random(), day, 60).await?;
    let log = std::env::temp_dir().join(format!("lambda-local-{}.log", std::process::id()));
    let mut watch = Watch::start(&stack, log)?;
    let http = reqwest::Client::new();
    watch.wait_until_it_answers(&http).await?;
    let fixtures = workspace().join("tests/fixtures/lambda");
    let fixture = |name: &str| -> Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            fixtures.join(name),
        )?)?)
    };

    // Planner, (a): an EventBridge scheduled event is an automatic run by arrival hour.
    let (status, auto) = watch
        .invoke(&http, "planner", &fixture("scheduled-event.json")?)
        .await;
    ensure!(status == 200, "scheduled event: HTTP {status}");
    ensure!(
        auto["mode"] == "automatic" && auto["window"]["by"] == "arrival",
        "{auto}"
    );
    ensure!(
        auto["eligible"].as_u64() > Some(0),
        "no eligible call: {auto}"
    );
    ensure!(
        auto["enqueued"] == auto["missing"],
        "enqueued != missing: {auto}"
    );
    // Its messages are on the work queue; they are deleted, so the worker gets the manual run's.
    let (sqs, work) = (&stack.sqs, stack.work_queue.url());
    let enqueued = auto["enqueued"].as_u64().unwrap_or_default() as usize;
    let mut drained = 0;
    loop {
        let batch = receive(sqs, work, 10).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            drained += usize::from(
                run_id_of(m.body().unwrap_or("")) == auto["run_id"].as_str().map(str::to_owned),
            );
            sqs.delete_message()
                .queue_url(work)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
    }
    ensure!(
        drained == enqueued,
        "automatic run: {drained} messages of {enqueued} queued"
    );

    // Planner, (b): a manual payload over the whole day.
    let manual = json!({"start": midnight(day), "end": midnight(day) + TimeDelta::days(1), "dry_run": false});
    let (status, report) = watch.invoke(&http, "planner", &manual).await;
    ensure!(status == 200, "manual payload: HTTP {status}");
    ensure!(
        report["mode"] == "manual" && report["window"]["by"] == "initiation",
        "{report}"
    );
    let missing = report["missing"].as_u64().unwrap_or_default() as usize;
    ensure!(
        missing > 0 && report["enqueued"] == report["missing"],
        "{report}"
    );
    let run_id = report["run_id"].as_str().context("run_id")?.to_owned();
    // The answer is a summary (design §5): no id list, the stored report's key instead.
    for list in ["missing_contact_ids", "orphan_contact_ids", "unrecoverable"] {
        ensure!(report.get(list).is_none(), "{list} in the answer: {report}");
    }
    ensure!(
        report["report_key"] == format!("call-recovery/runs/{run_id}/report.json")
            && report["status"] == "completed",
        "{report}"
    );

    // Planner, (c): an invalid payload is an error naming the problem (cargo-lambda: HTTP 500).
    let (status, error) = watch
        .invoke(&http, "planner", &fixture("manual-invalid.json")?)
        .await;
    let message = error["errorMessage"].as_str().unwrap_or_default();
    ensure!(status >= 400, "invalid payload: HTTP {status}");
    for part in ["invalid request", "tomorrow", "RFC 3339"] {
        ensure!(message.contains(part), "{part:?} not in {message:?}");
    }

    // Worker: real work-queue messages of the manual run and one malformed body.
    let arn = sqs
        .get_queue_attributes()
        .queue_url(work)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("work queue arn")?;
    let want = missing.min(10);
    let real: Vec<_> = receive(sqs, work, want)
        .await?
        .into_iter()
        .filter(|m| run_id_of(m.body().unwrap_or("")).as_deref() == Some(run_id.as_str()))
        .collect();
    ensure!(
        real.len() == want,
        "{} of {want} messages received",
        real.len()
    );
    let mut records: Vec<Value> = real.iter().map(|m| sqs_record(m, &arn)).collect();
    records.push(malformed_record(&arn));
    let (status, answer) = watch
        .invoke(&http, "worker", &json!({ "Records": records }))
        .await;
    ensure!(status == 200, "worker: HTTP {status}");
    ensure!(
        answer["batchItemFailures"] == json!([]),
        "batch item failures: {answer}"
    );

    // The malformed body is dead-lettered with its reason.
    let dead = receive(sqs, stack.dead_letter_queue.url(), 10).await?;
    let reason = dead
        .iter()
        .find(|m| m.body() == Some(MALFORMED_BODY))
        .context("the malformed body is not on the dead-letter queue")?
        .message_attributes()
        .and_then(|a| a.get("failure_reason"))
        .and_then(|v| v.string_value())
        .unwrap_or_default();
    ensure!(!reason.is_empty(), "dead-lettered without a failure_reason");

    // The simulator holds every worked call, and the worker wrote an outcome for each.
    let held: Vec<String> = stack
        .sim
        .state()
        .ingested()
        .into_iter()
        .map(|c| c.contact_id)
        .collect();
    for m in &real {
        let id = serde_json::from_str::<Value>(m.body().unwrap_or(""))?["contact_id"].clone();
        ensure!(held.iter().any(|h| id == h.as_str()), "{id} not ingested");
    }
    let outcomes = stack.store().outcomes(&run_id).await?;
    ensure!(
        outcomes.len() == real.len(),
        "{} outcomes for {} calls",
        outcomes.len(),
        real.len()
    );
    ensure!(
        outcomes.iter().all(|o| matches!(
            o.status,
            OutcomeStatus::Recovered | OutcomeStatus::AlreadyPresent
        )),
        "{outcomes:?}"
    );
    Ok(())
}
