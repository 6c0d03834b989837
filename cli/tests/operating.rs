//! What an operator does: `recoveryctl` against the stack (plan, work, status, runs, redrive),
//! the metrics the functions emit, and logs that never carry a customer's phone number, attribute
//! values, or a secret.

use std::collections::HashSet;
use std::process::Output;

use chrono::TimeDelta;
use local_stack::sim::Faults;
use recovery::domain::metrics::{Metrics, names};
use recovery::domain::time::format_ts;
use serde_json::Value;

use local_stack::claims::*;
use local_stack::stack::*;

/// How recoveryctl answers: exit codes, errors, progress at a terminal, completions.
mod answers;

/// Runs `recoveryctl` without blocking the runtime the in-process simulator serves on.
async fn ctl(stack: &Stack, args: &[&str], log: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(args)
        .env_clear()
        .envs(stack.vars.iter())
        .env("RECOVERYCTL_LOG", log)
        .output()
        .await
        .expect("recoveryctl runs")
}

fn json_of(out: &Output) -> Value {
    json_exiting(out, 0)
}

/// The one JSON document of a run that ended with exit code `code`.
fn json_exiting(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "recoveryctl's exit code; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON document on stdout ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// An operator's day: a manual run over a past day planned and worked with `recoveryctl`, while
/// Verint rejects one call (`rejected`).
struct Operated {
    stack: Stack,
    expected: HashSet<String>,
    rejected: String,
    run_id: String,
    planned: Value,
    worked: Value,
    /// `recoveryctl work`'s exit code.
    worked_exit: Option<i32>,
}

async fn plan_and_work_with_one_call_rejected() -> Operated {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(31, date, 60).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let rejected = sorted(&expected)[0].clone();
    stack.sim.state().set_faults(Faults {
        reject_contact_ids: vec![rejected.clone()],
        ..Faults::default()
    });
    let planned = plan_json(&stack, window).await;
    let run_id = planned["run_id"].as_str().expect("run id").to_owned();
    let out = ctl(&stack, &["work", "--until-empty", "--json"], "error").await;
    let worked_exit = out.status.code();
    let worked = json_exiting(&out, 3);
    Operated {
        stack,
        expected,
        rejected,
        run_id,
        planned,
        worked,
        worked_exit,
    }
}

/// `recoveryctl plan --json` over `window`.
async fn plan_json(stack: &Stack, window: recovery::domain::time::Window) -> Value {
    let (from, to) = (format_ts(window.start), format_ts(window.end));
    json_of(
        &ctl(
            stack,
            &["plan", "--from", &from, "--to", &to, "--json"],
            "error",
        )
        .await,
    )
}

/// `recoveryctl work --until-empty --json`.
async fn work_json(stack: &Stack) -> Value {
    json_of(&ctl(stack, &["work", "--until-empty", "--json"], "error").await)
}

#[tokio::test]
async fn plan_reports_every_missing_call_as_missing_and_queued() {
    let o = plan_and_work_with_one_call_rejected().await;

    let n = o.expected.len() as u64;
    assert_eq!(
        (
            o.planned["missing"].as_u64(),
            o.planned["enqueued"].as_u64()
        ),
        (Some(n), Some(n))
    );
}

#[tokio::test]
async fn work_recovers_every_call_but_the_rejected_one_which_it_dead_letters() {
    let o = plan_and_work_with_one_call_rejected().await;

    assert_eq!(o.worked["dead_lettered"], 1);
    assert_eq!(o.worked["recovered"], o.expected.len() - 1);
}

#[tokio::test]
async fn work_that_dead_letters_a_call_exits_3() {
    let o = plan_and_work_with_one_call_rejected().await;

    assert_eq!(o.worked_exit, Some(3));
}

#[tokio::test]
async fn status_shows_the_rejected_call_in_the_dead_letter_queue_and_the_run_completed() {
    let o = plan_and_work_with_one_call_rejected().await;

    let status = json_of(&ctl(&o.stack, &["status", "--json"], "error").await);

    assert_eq!(status["dead_letter_queue"]["visible"], 1);
    assert_eq!(status["work_queue"]["visible"], 0);
    assert_eq!(status["latest_runs"][0]["run_id"], o.run_id.as_str());
    assert_eq!(status["latest_runs"][0]["status"], "completed");
}

#[tokio::test]
async fn runs_lists_the_run_with_its_calls_counted_by_state() {
    let o = plan_and_work_with_one_call_rejected().await;

    let runs = json_of(&ctl(&o.stack, &["runs", "--json"], "error").await);

    let row = &runs[0];
    let n = o.expected.len();
    assert_eq!(
        (row["run_id"].as_str(), row["mode"].as_str()),
        (Some(o.run_id.as_str()), Some("manual"))
    );
    let counts = ["detected", "queued", "recovered", "failed"].map(|k| row[k].as_u64());
    assert_eq!(
        counts,
        [n, n, n - 1, 1].map(|c| Some(c as u64)),
        "detected, queued, recovered, failed"
    );
}

#[tokio::test]
async fn runs_of_one_run_names_the_rejected_call_and_verints_answer() {
    let o = plan_and_work_with_one_call_rejected().await;

    let one = json_of(&ctl(&o.stack, &["runs", &o.run_id, "--json"], "error").await);

    let failed: Vec<&Value> = one["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .filter(|o| o["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["contact_id"], o.rejected.as_str());
    let reason = failed[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("422"), "{reason}");
}

#[tokio::test]
async fn runs_of_one_run_as_a_table_has_a_column_per_state() {
    let o = plan_and_work_with_one_call_rejected().await;

    let tables = ctl(&o.stack, &["runs", &o.run_id], "error").await;

    let text = String::from_utf8_lossy(&tables.stdout);
    for column in [
        "Detected",
        "Queued",
        "Recovered",
        "Already present",
        "Failed",
    ] {
        assert!(text.contains(column), "{column} in {text}");
    }
}

/// Verint fixed, the operator redrives the dead letters and works the queue again.
async fn redrive_and_work_again(o: &Operated) -> (Value, Value) {
    o.stack.sim.state().set_faults(Faults::default());
    let redrive = json_of(&ctl(&o.stack, &["redrive", "--json"], "error").await);
    let again = work_json(&o.stack).await;
    (redrive, again)
}

#[tokio::test]
async fn once_verint_is_fixed_a_redrive_moves_the_rejected_call_back_and_work_recovers_it() {
    let o = plan_and_work_with_one_call_rejected().await;

    let (redrive, again) = redrive_and_work_again(&o).await;

    // `work_json` holds it to exit code 0: nothing was dead-lettered this time.
    assert_eq!(redrive["moved"], 1, "{redrive}");
    assert_eq!(again["recovered"], 1);
    assert_dead_letter_queue_empty(&o.stack).await;
    assert_in_verint_once(&o.stack.sim, &o.rejected);
}

#[tokio::test]
async fn after_the_redrive_the_run_counts_every_call_recovered_and_verint_holds_them_all() {
    let o = plan_and_work_with_one_call_rejected().await;
    redrive_and_work_again(&o).await;

    let runs = json_of(&ctl(&o.stack, &["runs", "--json"], "error").await);

    assert_eq!(
        (runs[0]["recovered"].as_u64(), runs[0]["failed"].as_u64()),
        (Some(o.expected.len() as u64), Some(0))
    );
    assert_in_verint_exactly(&o.stack.sim, &o.expected);
}

#[tokio::test]
async fn recoveryctl_fails_with_one_clear_line_and_documents_every_command() {
    let stack = Stack::new(&[]).await.expect("stack");
    let out = ctl(
        &stack,
        &[
            "plan",
            "--from",
            "2026-01-02",
            "--to",
            "2026-01-01T00:00:00Z",
        ],
        "error",
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a window backwards is invalid input"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: ")
            && lines[0]
                .contains("--from 2026-01-02T00:00:00Z must be before --to 2026-01-01T00:00:00Z"),
        "{stderr}"
    );
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "one line and at most a hint: {stderr}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .arg("status")
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad configuration is invalid input"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WORK_QUEUE_URL is required"),
        "the missing variable is named"
    );

    for command in ["plan", "work", "status", "runs", "redrive", "coverage"] {
        let help = std::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
            .args([command, "--help"])
            .output()
            .expect("help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("Example") && text.contains(&format!("recoveryctl {command}")),
            "{command}: {text}"
        );
    }
}

#[tokio::test]
async fn no_phone_number_attribute_value_or_secret_appears_in_the_logs() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(32, date, 60).await.expect("day");
    let (start, end) = (midnight(date), midnight(date) + TimeDelta::days(1));
    let expected = expected_missing(&day, start, end);
    let ids = sorted(&expected);
    // Error paths log too: a rejection, an unknown contact, and transient faults.
    stack.sim.state().set_faults(Faults {
        seed: 3,
        status_503: 0.2,
        retry_after_secs: 0,
        reject_contact_ids: vec![ids[0].clone()],
        connect_unknown_contact_ids: vec![ids[1].clone()],
        ..Faults::default()
    });
    let mut secrets: Vec<String> = vec![stack.vars["VERINT_API_KEY"].clone()];
    for c in &day.connect {
        for e in [&c.customer_endpoint, &c.system_endpoint]
            .into_iter()
            .flatten()
        {
            secrets.push(e.address.clone());
        }
        secrets.extend(c.attributes.values().filter(|v| v.len() >= 4).cloned());
    }
    assert!(
        secrets.iter().any(|s| s.starts_with('+')),
        "the day has phone numbers to look for"
    );

    let log = "debug,aws_smithy_runtime=info,aws_smithy_http_client=info,hyper=info,hyper_util=info,h2=info,rustls=info";
    let mut captured = String::new();
    for args in [
        vec!["plan", "--from", &format_ts(start), "--to", &format_ts(end)],
        vec!["work", "--until-empty"],
        vec!["runs"],
        vec!["status"],
    ] {
        let out = ctl(&stack, &args, log).await;
        captured.push_str(&String::from_utf8_lossy(&out.stdout));
        captured.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        captured.contains("contact done"),
        "the worker's logs were captured"
    );
    assert!(
        captured.contains("permanent failure"),
        "error paths were logged"
    );
    for s in &secrets {
        assert!(!captured.contains(s.as_str()), "a log line carries {s:?}");
    }
}

#[tokio::test]
async fn the_functions_emit_the_promised_emf_metrics() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(33, date, 60).await.expect("day");
    let window = day_window(date);
    let ids = sorted(&expected_missing(&day, window.start, window.end));
    stack.sim.state().set_faults(Faults {
        reject_contact_ids: vec![ids[0].clone()],
        ..Faults::default()
    });
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, window).await.expect("plan");
    let mut m = Metrics::new("planner");
    recovery::app::report_metrics(&report, &mut m);
    let docs = m.documents(0);
    let doc = &docs[0];
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "CallRecovery"
    );
    assert_eq!(doc["Function"], "planner");
    for (name, value) in [
        (names::CTR_OBJECTS, report.ctr.objects),
        (names::CTR_RECORDS, report.ctr.records),
        (names::CTR_MALFORMED, report.ctr.malformed),
        (names::ELIGIBLE, report.eligible),
        (names::IN_VERINT, report.in_verint),
        (names::MISSING, report.missing),
        (names::ENQUEUED, report.enqueued),
        (names::UNRECOVERABLE, report.unrecoverable.len() as u64),
        (names::NOT_SETTLED, report.not_settled),
    ] {
        assert_eq!(doc[name].as_f64(), Some(value as f64), "{name}");
    }
    assert!(doc.get(names::RUN_DURATION_MS).is_some());

    let worker = stack.worker().await.expect("worker");
    let received = Stack::all_messages(&stack.work_queue)
        .await
        .expect("messages");
    let messages: Vec<recovery::flows::work::Incoming> = received
        .iter()
        .map(recovery::flows::work::Incoming::from)
        .collect();
    let mut m = Metrics::new("worker");
    worker.worker().work_batch(&messages, None, &mut m).await;
    let docs = m.documents(0);
    let main = &docs[0];
    assert_eq!(
        main[names::RECOVERED].as_f64(),
        Some((messages.len() - 1) as f64)
    );
    assert_eq!(main[names::FAILED].as_f64(), Some(1.0));
    assert!(main[names::BYTES_STREAMED].as_f64().expect("bytes") > 0.0);
    assert!(main.get(names::TRANSFER_SECONDS).is_some());
    let by_reason = docs
        .iter()
        .find(|d| d.get("Reason").is_some())
        .expect("a failure by reason");
    assert_eq!(by_reason["Reason"], "verint_rejected");
    assert_eq!(
        by_reason["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Function", "Reason"]])
    );
    let _ = &stack.sqs;
}

#[tokio::test]
async fn coverage_shows_a_worked_day_per_state_and_one_csv_row_per_contact() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(37, date, 50).await.expect("day");
    let (start, end) = (midnight(date), midnight(date) + TimeDelta::days(1));
    let expected = expected_missing(&day, start, end);
    json_of(
        &ctl(
            &stack,
            &[
                "plan",
                "--from",
                &format_ts(start),
                "--to",
                &format_ts(end),
                "--json",
            ],
            "error",
        )
        .await,
    );
    json_of(&ctl(&stack, &["work", "--until-empty", "--json"], "error").await);

    let (before, day_s) = ((date - TimeDelta::days(1)).to_string(), date.to_string());
    let coverage = json_of(
        &ctl(
            &stack,
            &["coverage", "--from", &before, "--to", &day_s, "--json"],
            "error",
        )
        .await,
    );
    let days = coverage["days"].as_array().expect("days");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0]["covered_by_runs"], "not_covered");
    assert!(
        days[0]["coverage_percent"].is_null(),
        "an uncovered day is never 100 %"
    );
    let covered = &days[1];
    assert_eq!(covered["recovered"], expected.len());
    assert_eq!(covered["still_missing"], 0);
    let eligible = covered["eligible"].as_u64().expect("eligible");
    let in_verint = covered["in_verint"].as_u64().expect("in_verint");
    let unrecoverable = covered["unrecoverable"].as_u64().expect("unrecoverable");
    assert_eq!(eligible, in_verint + expected.len() as u64 + unrecoverable);

    let csv = ctl(
        &stack,
        &["coverage", "--from", &day_s, "--to", &day_s, "--csv"],
        "error",
    )
    .await;
    assert!(csv.status.success());
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "date,contact_id,initiation_timestamp,disconnect_timestamp,kind,state,reason,run_id,chain,integrity"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, eligible);
    let recovered: HashSet<String> = rows
        .iter()
        .filter(|r| r.split(',').nth(5) == Some("recovered"))
        .map(|r| r.split(',').nth(1).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(recovered, expected);

    let table = ctl(
        &stack,
        &["coverage", "--from", &before, "--to", &day_s],
        "error",
    )
    .await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("no run covered this day"), "{text}");
}

#[tokio::test]
async fn a_redrive_run_twice_moves_each_dead_letter_once() {
    let stack = Stack::new(&[]).await.expect("stack");
    for i in 0..13 {
        stack
            .dead_letter_queue
            .send_with_reason(
                &format!("{{\"v\":1,\"n\":{i}}}"),
                "verint rejected the call",
            )
            .await
            .expect("dead letter");
    }

    let first = json_of(&ctl(&stack, &["redrive", "--json"], "error").await);
    let second = json_of(&ctl(&stack, &["redrive", "--json"], "error").await);

    assert_eq!(
        first["method"], "receive_send_delete",
        "moto has no move task: {first}"
    );
    assert_eq!(
        (first["moved"].as_u64(), first["depth_at_start"].as_u64()),
        (Some(13), Some(13))
    );
    assert_eq!(
        (second["moved"].as_u64(), second["stopped"].as_str()),
        (Some(0), Some("empty"))
    );
    let moved = Stack::all_messages(&stack.work_queue)
        .await
        .expect("work queue");
    let mut bodies: Vec<String> = moved.iter().map(|m| m.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!((moved.len(), bodies.len()), (13, 13), "each message once");
    assert_eq!(
        stack
            .dead_letter_queue
            .depth()
            .await
            .expect("depth")
            .visible,
        0
    );
}

/// A 40-hour window over two generated days, planned with `recoveryctl plan --jobs 2` and
/// worked with `recoveryctl work`: the operator's way through a backfill (design §4.8).
#[tokio::test]
async fn plan_over_40_hours_is_a_backfill_of_two_slices_whose_calls_work_recovers() {
    let stack = Stack::new(&[]).await.expect("stack");
    let second = past_day();
    let first = second - TimeDelta::days(1);
    let days = [
        stack.day(51, first, 25).await.expect("first day"),
        stack.day(52, second, 25).await.expect("second day"),
    ];
    let start = midnight(first) + TimeDelta::hours(4);
    let end = start + TimeDelta::hours(40);
    let expected: HashSet<String> = days
        .iter()
        .flat_map(|d| expected_missing(d, start, end))
        .collect();
    let (from, to) = (format_ts(start), format_ts(end));
    let parent = json_of(
        &ctl(
            &stack,
            &[
                "plan", "--from", &from, "--to", &to, "--jobs", "2", "--json",
            ],
            "error",
        )
        .await,
    );
    let slices = parent["slices"]
        .as_array()
        .expect("the parent names its slices");
    assert_eq!(slices.len(), 2);
    assert!(
        slices.iter().all(|s| s["status"] == "completed"),
        "{slices:?}"
    );
    assert_eq!(parent["missing"].as_u64(), Some(expected.len() as u64));
    let found: HashSet<String> = parent["missing_contact_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(found, expected);

    let worked = work_json(&stack).await;
    assert_eq!(worked["recovered"].as_u64(), Some(expected.len() as u64));
    assert_in_verint_exactly(&stack.sim, &expected);

    let run_id = parent["run_id"].as_str().expect("run id");
    let runs = json_of(&ctl(&stack, &["runs", run_id, "--json"], "error").await);
    assert_eq!(runs["slices"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        runs["run"]["recovered"].as_u64(),
        Some(expected.len() as u64)
    );
    let progress = &runs["progress"];
    assert_eq!(
        (
            progress["slices_ended"].as_u64(),
            progress["slices_total"].as_u64(),
            progress["calls_queued"].as_u64(),
            progress["calls_worked"].as_u64(),
        ),
        (
            Some(2),
            Some(2),
            Some(expected.len() as u64),
            Some(expected.len() as u64)
        ),
        "{progress}"
    );
    assert!(progress["expected_finish"].is_null(), "done: {progress}");
}

/// A new base64url key, as an operator would generate one.
const ROTATED_KEY_ID: &str = "rotated-key";
const ROTATED_KEY: &str = "cm90YXRlZC1rZXktZm9yLXRoZS1yb3RhdGlvbi10ZXN0";

#[tokio::test]
async fn a_key_rotated_in_secrets_manager_while_work_runs_sends_nothing_to_the_dead_letter_queue() {
    let mut stack = Stack::new(&[]).await.expect("stack");
    let secret = format!("verint-{}", stack.ctr_bucket);
    let stored = |key_id: &str, key: &str| format!(r#"{{"keyId":"{key_id}","key":"{key}"}}"#);
    stack
        .vars
        .insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), moto_url());
    let clients = recovery::adapters::aws::Clients::load(stack.lookup()).await;
    clients
        .secrets
        .create_secret()
        .name(&secret)
        .secret_string(stored(
            &stack.vars["VERINT_API_KEY_ID"],
            &stack.vars["VERINT_API_KEY"],
        ))
        .send()
        .await
        .expect("secret created in moto");
    stack.vars.remove("VERINT_API_KEY_ID");
    stack.vars.remove("VERINT_API_KEY");
    stack
        .vars
        .insert("VERINT_API_KEY_SECRET_ID".into(), secret.clone());
    let date = past_day();
    let day = stack.day(47, date, 120).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let planned = plan_json(&stack, window).await;
    assert_eq!(planned["enqueued"].as_u64(), Some(expected.len() as u64));
    // Slow enough that the rotation lands in the middle of the work.
    stack.sim.state().set_faults(Faults {
        slow_ms: 400,
        ..Faults::default()
    });
    let work = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(["work", "--until-empty", "--json"])
        .env_clear()
        .envs(stack.vars.iter())
        .env("RECOVERYCTL_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("recoveryctl work starts");
    while stack.sim.state().ingested().len() < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    clients
        .secrets
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(stored(ROTATED_KEY_ID, ROTATED_KEY))
        .send()
        .await
        .expect("secret rotated");
    stack
        .sim
        .state()
        .rotate_key(ROTATED_KEY_ID, ROTATED_KEY)
        .expect("simulator rotated");
    let rotated_at = stack.sim.state().ingested().len();
    let out = work
        .wait_with_output()
        .await
        .expect("recoveryctl work ends");
    let worked = json_of(&out);

    assert!(
        rotated_at < expected.len(),
        "the rotation came while calls were left"
    );
    assert!(
        stack.sim.state().stats().unauthorized > 0,
        "verint refused the old key"
    );
    assert_eq!(worked["dead_lettered"], 0, "{worked}");
    assert_dead_letter_queue_empty(&stack).await;
    assert_in_verint_exactly(&stack.sim, &expected);
}

/// Every contact id of a dead-letter listing (`recoveryctl dlq --json`), by lane.
fn dead_letters_by_lane(listing: &Value) -> (HashSet<String>, HashSet<String>) {
    let mut live = HashSet::new();
    let mut backfill = HashSet::new();
    for d in listing["dead_letters"].as_array().expect("dead letters") {
        let id = d["contact_id"].as_str().unwrap_or_default().to_owned();
        match d["lane"].as_str() {
            Some("backfill") => backfill.insert(id),
            _ => live.insert(id),
        };
    }
    (live, backfill)
}

#[tokio::test]
async fn a_redrive_sends_backfill_dead_letters_to_the_backfill_queue_and_live_ones_to_the_work_queue()
 {
    let stack = Stack::new(&[]).await.expect("stack");
    // A backfill of two past days and a live day, each with one call Verint rejects.
    let live_day = past_day();
    let second = live_day - TimeDelta::days(3);
    let first = second - TimeDelta::days(1);
    let backfill_days = [
        stack.day(61, first, 20).await.expect("first"),
        stack.day(62, second, 20).await.expect("second"),
    ];
    let live = stack.day(63, live_day, 20).await.expect("live");
    let (start, end) = (midnight(first), midnight(second) + TimeDelta::days(1));
    let from_backfill = sorted(
        &backfill_days
            .iter()
            .flat_map(|d| expected_missing(d, start, end))
            .collect(),
    )[0]
    .clone();
    let live_window = day_window(live_day);
    let from_live = sorted(&expected_missing(&live, live_window.start, live_window.end))[0].clone();
    stack.sim.state().set_faults(Faults {
        reject_contact_ids: vec![from_backfill.clone(), from_live.clone()],
        ..Faults::default()
    });
    let (from, to) = (format_ts(start), format_ts(end));
    json_of(
        &ctl(
            &stack,
            &["plan", "--from", &from, "--to", &to, "--json"],
            "error",
        )
        .await,
    );
    plan_json(&stack, live_window).await;
    let worked = ctl(&stack, &["work", "--until-empty", "--json"], "error").await;
    let worked: Value = serde_json::from_slice(&worked.stdout).expect("one JSON document");
    assert_eq!(worked["dead_lettered"], 2, "{worked}");

    // The preview names each lane and moves nothing.
    let preview = json_of(&ctl(&stack, &["redrive", "--dry-run", "--json"], "error").await);
    assert_eq!(preview["total"], 2, "{preview}");
    assert_eq!(
        preview["by_lane"]["live"].as_object().map(|m| m.len()),
        Some(1)
    );
    let (lanes_live, lanes_backfill) = dead_letters_by_lane(&preview);
    assert_eq!(lanes_live, HashSet::from([from_live.clone()]));
    assert_eq!(lanes_backfill, HashSet::from([from_backfill.clone()]));
    let reason = preview["dead_letters"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("verint rejected the call"), "{reason}");
    assert_eq!(
        stack
            .dead_letter_queue
            .depth()
            .await
            .expect("depth")
            .visible,
        2
    );

    // Fixed: each goes back to its own lane.
    stack.sim.state().set_faults(Faults::default());
    let moved = json_of(&ctl(&stack, &["redrive", "--json"], "error").await);
    assert_eq!(
        (moved["moved"].as_u64(), moved["to_backfill"].as_u64()),
        (Some(2), Some(1))
    );
    let in_queue = |q: &recovery::adapters::sqs::SqsQueue| {
        let q = q.clone();
        async move {
            Stack::all_messages(&q)
                .await
                .expect("received")
                .into_iter()
                .map(|m| m.body)
                .collect::<Vec<_>>()
        }
    };
    let backfill_bodies = in_queue(&stack.backfill_queue).await;
    let work_bodies = in_queue(&stack.work_queue).await;
    assert_eq!(backfill_bodies.len(), 1);
    assert!(backfill_bodies[0].contains(&from_backfill));
    assert_eq!(work_bodies.len(), 1);
    assert!(work_bodies[0].contains(&from_live));
}

#[tokio::test]
async fn dlq_lists_the_dead_letter_and_a_deliberate_drop_records_its_outcome_once() {
    let o = plan_and_work_with_one_call_rejected().await;
    let stack = &o.stack;
    let listing = json_of(&ctl(stack, &["dlq", "--json"], "error").await);
    let (live, _) = dead_letters_by_lane(&listing);
    assert_eq!(live, HashSet::from([o.rejected.clone()]));
    assert_eq!(listing["dead_letters"][0]["run_id"], o.run_id.as_str());
    assert!(listing["dead_letters"][0]["age_seconds"].as_i64().is_some());

    let dropped = ctl(
        stack,
        &[
            "dlq",
            "--drop",
            &o.rejected,
            "--reason",
            "a test call, never to be kept",
        ],
        "error",
    )
    .await;
    assert!(
        dropped.status.success(),
        "{}",
        String::from_utf8_lossy(&dropped.stderr)
    );
    assert_eq!(
        stack
            .dead_letter_queue
            .depth()
            .await
            .expect("depth")
            .visible,
        0
    );
    let run = json_of(&ctl(stack, &["runs", &o.run_id, "--json"], "error").await);
    let outcome = run["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .find(|x| x["contact_id"] == o.rejected.as_str())
        .cloned()
        .expect("its outcome");
    let reason = outcome["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("dropped from the dead-letter queue by an operator: a test call"),
        "{reason}"
    );
    // Run twice: nothing left to drop, and it says so.
    let again = ctl(
        stack,
        &["dlq", "--drop", &o.rejected, "--reason", "again"],
        "error",
    )
    .await;
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("no dead letter of contact"), "{err}");
}

#[tokio::test]
async fn an_unreadable_checkpoint_names_its_previous_version_and_status_still_shows_the_queues() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    stack.day(71, date, 20).await.expect("day");
    // An automatic run writes a good checkpoint; then it is damaged.
    let auto = ctl(&stack, &["plan", "--auto", "--json"], "error").await;
    let auto: Value = serde_json::from_slice(&auto.stdout).expect("report");
    assert!(auto["run_id"].is_string(), "{auto}");
    let key = "call-recovery/checkpoint.json";
    let good = stack
        .s3
        .get_object()
        .bucket(&stack.state_bucket)
        .key(key)
        .send()
        .await
        .expect("a checkpoint");
    let good_version = good.version_id().expect("versioned").to_owned();
    let good_body = good.body.collect().await.expect("body").into_bytes();
    let next_hour = serde_json::from_slice::<Value>(&good_body).expect("json")["next_hour"]
        .as_str()
        .expect("next hour")
        .to_owned();
    stack
        .s3
        .put_object()
        .bucket(&stack.state_bucket)
        .key(key)
        .body(b"{\"next_hour\": \"2026-1".to_vec().into())
        .send()
        .await
        .expect("damaged");

    let status = ctl(&stack, &["status"], "error").await;
    assert!(
        !status.status.success(),
        "a bad checkpoint is not a healthy status"
    );
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        out.contains("dead-letter"),
        "the queues are still shown: {out}"
    );
    assert!(
        out.contains(&good_version),
        "names the version to restore: {out}"
    );
    assert!(out.contains(&next_hour), "and the hour it had: {out}");
    assert!(out.contains("Do not just delete it"), "{out}");

    let plan = ctl(&stack, &["plan", "--auto"], "error").await;
    assert!(!plan.status.success());
    let err = String::from_utf8_lossy(&plan.stderr);
    assert!(
        err.contains("copy-object") && err.contains(&good_version),
        "{err}"
    );

    // Following the advice: the previous version copied back, and automatic runs go on.
    stack
        .s3
        .copy_object()
        .bucket(&stack.state_bucket)
        .key(key)
        .copy_source(format!(
            "{}/{key}?versionId={good_version}",
            stack.state_bucket
        ))
        .send()
        .await
        .expect("restored");
    let status = ctl(&stack, &["status"], "error").await;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let plan = ctl(&stack, &["plan", "--auto", "--json"], "error").await;
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
}

/// The stack's settings as a deployment holds them: a CloudFormation stack in moto whose planner
/// function carries every variable but the queues and the state bucket, which are its outputs.
async fn deployed_stack(stack: &Stack, name: &str) {
    let moto = stack.vars["AWS_ENDPOINT_URL_S3"].clone();
    let clients = recovery::adapters::aws::Clients::load(stack.lookup()).await;
    let cfn = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::config::Builder::from(&clients.sdk)
            .endpoint_url(moto)
            .build(),
    );
    let outputs = [
        ("WorkQueueUrl", "WORK_QUEUE_URL"),
        ("DeadLetterQueueUrl", "DEAD_LETTER_QUEUE_URL"),
        ("BackfillQueueUrl", "BACKFILL_QUEUE_URL"),
        ("StateBucketName", "STATE_BUCKET"),
    ];
    let function_env: serde_json::Map<String, Value> = stack
        .vars
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_") && !outputs.iter().any(|(_, v)| v == k))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut template_outputs = serde_json::Map::new();
    template_outputs.insert(
        "PlannerFunctionName".into(),
        serde_json::json!({"Value": {"Ref": "Planner"}}),
    );
    for (key, var) in outputs {
        template_outputs.insert(key.into(), serde_json::json!({"Value": stack.vars[var]}));
    }
    let template = serde_json::json!({
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
            "Planner": {"Type": "AWS::Lambda::Function", "Properties": {
                "Runtime": "python3.11", "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context): pass"},
                "Environment": {"Variables": function_env}}}
        },
        "Outputs": template_outputs,
    });
    cfn.create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("stack created");
}

/// `recoveryctl` with only what an operator's shell holds: region, credentials, endpoints.
async fn ctl_with_stack(stack: &Stack, name: &str, args: &[&str]) -> Output {
    let moto = stack.vars["AWS_ENDPOINT_URL_S3"].clone();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(["--stack", name])
        .args(args)
        .env_clear()
        .envs(stack.vars.iter().filter(|(k, _)| k.starts_with("AWS_")))
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", &moto)
        .env("AWS_ENDPOINT_URL_LAMBDA", &moto)
        .env("RECOVERYCTL_LOG", "error")
        .output()
        .await
        .expect("recoveryctl runs")
}

#[tokio::test]
async fn with_the_stack_named_an_operator_sets_no_variable_and_doctor_says_where_each_came_from() {
    let stack = Stack::new(&[]).await.expect("stack");
    let name = format!("call-recovery-{}", stack.state_bucket);
    deployed_stack(&stack, &name).await;

    let status = ctl_with_stack(&stack, &name, &["status", "--json"]).await;
    let status = json_of(&status);
    assert!(status["work_queue"]["visible"].is_u64(), "{status}");

    let doctor = json_of(&ctl_with_stack(&stack, &name, &["doctor", "--json"]).await);
    let source_of = |name: &str| {
        doctor["settings"]
            .as_array()
            .expect("settings")
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["source"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(source_of("WORK_QUEUE_URL"), "stack: output WorkQueueUrl");
    assert!(
        source_of("CTR_BUCKET").starts_with("stack: function "),
        "{doctor}"
    );
    assert_eq!(source_of("SETTLE_DELAY"), "default");
    let shown = doctor.to_string();
    assert!(
        !shown.contains(&stack.vars["VERINT_API_KEY"]),
        "the key is never printed"
    );
    let probes = doctor["probes"].as_array().expect("probes");
    assert!(
        probes.iter().all(|p| p["ok"] == true),
        "every queue, bucket and Verint answer: {probes:?}"
    );
    assert!(probes.iter().any(|p| p["what"] == "Verint"));

    // A stack that does not exist is named.
    let missing = ctl_with_stack(&stack, "no-such-stack", &["status"]).await;
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no-such-stack"), "{err}");
}

#[tokio::test]
async fn a_read_only_command_needs_only_its_own_variables_and_doctor_finds_a_wrong_queue() {
    let stack = Stack::new(&[]).await.expect("stack");
    // coverage reads the state bucket alone: no CTR bucket, instance or Verint key needed.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args([
            "coverage",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-01",
            "--json",
        ])
        .env_clear()
        .envs(stack.vars.iter().filter(|(k, _)| k.starts_with("AWS_")))
        .env("STATE_BUCKET", &stack.state_bucket)
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // status needs the queues too, and says which are missing and where to get them.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(["status"])
        .env_clear()
        .envs(stack.vars.iter().filter(|(k, _)| k.starts_with("AWS_")))
        .env("STATE_BUCKET", &stack.state_bucket)
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WORK_QUEUE_URL is required"), "{err}");
    assert!(!err.contains("CTR_BUCKET"), "not what status uses: {err}");
    assert!(err.contains("--stack"), "{err}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(["doctor"])
        .env_clear()
        .envs(stack.vars.iter())
        .env(
            "WORK_QUEUE_URL",
            format!(
                "{}/123456789012/no-such-queue",
                stack.vars["AWS_ENDPOINT_URL_SQS"]
            ),
        )
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success(), "a failed check fails doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("sqs:GetQueueAttributes"), "{text}");
}

/// Every `recoveryctl` command of the runbook's shell blocks, with its placeholders filled in.
fn runbook_commands() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/runbook.md"))
        .expect("docs/runbook.md");
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let command = line.split(" #").next().unwrap_or("").trim();
        if in_block && command.starts_with("recoveryctl ") {
            out.push(command.to_owned());
        }
    }
    out
}

/// Splits a shell line into words, honouring double quotes (all the runbook uses).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[tokio::test]
async fn every_runbook_command_runs_against_the_stack_as_written() {
    let o = plan_and_work_with_one_call_rejected().await;
    let stack = &o.stack;
    let name = format!("runbook-{}", stack.state_bucket);
    deployed_stack(stack, &name).await;
    let date = o.planned["window"]["start"]
        .as_str()
        .expect("window")
        .get(..10)
        .expect("a date")
        .to_owned();
    // The rejected call's dead letter, to put back before a drop that a redrive came before.
    let dead = stack
        .dead_letter_queue
        .receive(
            1,
            std::time::Duration::from_secs(1),
            Some(std::time::Duration::ZERO),
        )
        .await
        .expect("received");
    let dead_body = dead
        .first()
        .expect("the rejected call's dead letter")
        .body
        .clone();
    let commands = runbook_commands();
    assert!(commands.len() >= 20, "{commands:?}");
    let moto = stack.vars["AWS_ENDPOINT_URL_S3"].clone();
    for command in &commands {
        let filled = command
            .replace("PARENT_RUN_ID", &o.run_id)
            .replace("RUN_ID", &o.run_id)
            .replace("CONTACT_ID", &o.rejected)
            .replace("--stack call-recovery", &format!("--stack {name}"))
            .replace("START", &format!("{date}T00:00:00Z"))
            .replace("END", &format!("{date}T06:00:00Z"))
            .replace("DATE", &date);
        let args = words(&filled);
        if filled.contains("--drop")
            && stack
                .dead_letter_queue
                .depth()
                .await
                .expect("depth")
                .visible
                == 0
        {
            stack
                .dead_letter_queue
                .send_with_reason(&dead_body, "verint rejected the call (422)")
                .await
                .expect("dead-lettered again");
        }
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
            .args(&args[1..])
            .env_clear()
            .envs(stack.vars.iter())
            .env("AWS_ENDPOINT_URL_CLOUDFORMATION", &moto)
            .env("AWS_ENDPOINT_URL_LAMBDA", &moto)
            .env("RECOVERYCTL_LOG", "error")
            .output()
            .await
            .expect("recoveryctl runs");
        let code = out.status.code();
        // `work` says with 3 that it dead-lettered a call; the runbook means it when it does.
        let fine =
            code == Some(0) || (args.get(1).map(String::as_str) == Some("work") && code == Some(3));
        assert!(
            fine,
            "the runbook's `{command}` (run as `{filled}`) exited {code:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn recoveryctl_call_shows_the_whole_chain_of_a_transferred_call_and_where_each_leg_is() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(93, date, 300).await.expect("day");
    let window = day_window(date);
    // A three-leg chain inside the day, its legs' ids in order.
    let third = day
        .truth
        .iter()
        .find(|t| {
            t.kind == "transfer_third"
                && t.eligible()
                && t.initiation >= window.start
                && t.initiation < window.end
                && day
                    .truth
                    .iter()
                    .filter(|o| o.chain_id() == t.chain_id())
                    .all(|o| o.initiation < window.end)
        })
        .expect("a three-leg chain within the day");
    let chain = third.chain_id().to_owned();
    let legs: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.chain_id() == chain && t.eligible())
        .map(|t| t.contact_id.clone())
        .collect();
    plan_json(&stack, window).await;
    let worked = ctl(&stack, &["work", "--until-empty", "--json"], "error").await;
    assert_eq!(
        worked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&worked.stderr)
    );

    // Where Connect writes recordings (the generator's alias), so that each leg's are listed.
    let with_recordings = tokio::process::Command::new(env!("CARGO_BIN_EXE_recoveryctl"))
        .args(["call", &third.contact_id, "--json"])
        .env_clear()
        .envs(stack.vars.iter())
        .env("RECORDINGS_BUCKET", &stack.recordings_bucket)
        .env("RECORDINGS_PREFIX", "connect/acme/CallRecordings/")
        .output()
        .await
        .expect("runs");
    let view = json_of(&with_recordings);
    assert_eq!(view["chain"], chain.as_str());
    let shown: HashSet<String> = view["legs"]
        .as_array()
        .expect("legs")
        .iter()
        .map(|l| l["contact_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(shown, legs, "every leg with a recording");
    for leg in view["legs"].as_array().expect("legs") {
        assert!(
            leg["verint_interaction_id"].is_string(),
            "every leg is in Verint after the work: {leg}"
        );
        assert!(
            !leg["recordings"].as_array().expect("recordings").is_empty(),
            "{leg}"
        );
    }
    assert_eq!(view["complete"], true);
    let table = ctl(&stack, &["call", &third.contact_id], "error").await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("a later leg of chain"), "{text}");

    // runs names each instance's counts.
    let runs = json_of(&ctl(&stack, &["runs", "--json"], "error").await);
    assert!(
        runs[0]["instances"][INSTANCE]["eligible"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{runs}"
    );
}
