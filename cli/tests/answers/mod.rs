//! How `recoveryctl` answers the operator: its exit codes, errors that name the flag or the AWS
//! permission at fault, progress only at a terminal and never with `--json`, and the completions
//! and man page generated from its own definition.

use std::io::Read as _;
use std::process::{Output, Stdio};

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_recoveryctl");

/// Runs `recoveryctl` without any configuration (arguments alone decide).
fn bare(args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("recoveryctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `recoveryctl` as an operator at a terminal does: stderr on a terminal (a
/// pseudo-terminal), stdout a pipe, as in `recoveryctl … --json > out.json`. The run's output
/// (stdout only) and everything the terminal was shown.
async fn at_a_terminal(stack: &Stack, args: &[&str]) -> (Output, String) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let terminal = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal");
    grantpt(&terminal).expect("grantpt");
    unlockpt(&terminal).expect("unlockpt");
    let name = ptsname(&terminal, Vec::new()).expect("its name");
    let stderr = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a path"))
        .expect("its other end");
    let mut shown = std::fs::File::from(terminal);
    // The terminal's reader ends when the last holder of the other end (the child) is gone.
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = shown.read_to_end(&mut bytes);
        bytes
    });
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .envs(stack.vars.iter())
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let child = command.spawn().expect("recoveryctl starts");
    drop(command);
    let out = child.wait_with_output().await.expect("recoveryctl ends");
    let shown = reader.join().expect("the terminal was read");
    (out, text(&shown))
}

const ESC: char = '\u{1b}';

/// A day to plan: a stack and `--from`/`--to` of its window.
async fn a_day_to_plan(seed: u64) -> (Stack, String, String) {
    a_day_missing(seed, None).await
}

/// [`a_day_to_plan`], Verint missing `miss_rate` of its calls.
async fn a_day_missing(seed: u64, miss_rate: Option<f64>) -> (Stack, String, String) {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    stack
        .day_with(seed, date, 40, miss_rate)
        .await
        .expect("day");
    let window = day_window(date);
    (stack, format_ts(window.start), format_ts(window.end))
}

#[test]
fn a_missing_flag_exits_2_naming_the_flag_with_the_usage() {
    let out = bare(&["plan", "--from", "2026-11-26T00:00:00Z"]);

    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--to <TIME>") && stderr.contains("Usage: recoveryctl plan"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_from_that_is_no_time_exits_2_naming_the_flag_and_the_form_expected() {
    let out = bare(&["plan", "--from", "yesterday", "--to", "2026-11-27"]);

    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("'yesterday' for '--from <TIME>'")
            && stderr.contains("2026-11-26T00:00:00Z")
            && stderr.contains("2026-11-26 (midnight UTC)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn plan_takes_dates_as_midnight_utc() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let next = date + TimeDelta::days(1);

    let report = json_of(
        &ctl(
            &stack,
            &[
                "plan",
                "--from",
                &date.to_string(),
                "--to",
                &next.to_string(),
                "--dry-run",
                "--json",
            ],
            "error",
        )
        .await,
    );

    assert_eq!(
        (
            report["window"]["start"].as_str(),
            report["window"]["end"].as_str()
        ),
        (
            Some(format_ts(midnight(date)).as_str()),
            Some(format_ts(midnight(next)).as_str())
        ),
        "{report}"
    );
}

#[tokio::test]
async fn work_that_recovers_every_call_exits_0() {
    let (stack, from, to) = a_day_to_plan(61).await;
    json_of(
        &ctl(
            &stack,
            &["plan", "--from", &from, "--to", &to, "--json"],
            "error",
        )
        .await,
    );

    let out = ctl(&stack, &["work", "--until-empty", "--json"], "error").await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn completions_name_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell]);

        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for command in [
            "plan", "work", "status", "runs", "coverage", "redrive", "call",
        ] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
        assert!(script.contains("--from"), "{shell} completes plan's flags");
    }
}

#[test]
fn the_man_page_is_roff_naming_every_command_and_the_exit_codes() {
    let out = bare(&["man"]);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    for command in [
        "plan", "work", "status", "runs", "coverage", "redrive", "call",
    ] {
        assert!(page.contains(command), "the page names {command}");
    }
    assert!(page.contains("130"), "the page lists the exit codes");
}

#[test]
fn each_command_has_its_man_page() {
    let out = bare(&["man", "plan"]);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH recoveryctl-plan 1"), "{page}");
    assert!(
        page.contains("\\-\\-from"),
        "the page has plan's flags: {page}"
    );
}

#[test]
fn the_top_level_help_lists_the_exit_codes() {
    let out = bare(&["--help"]);

    let help = text(&out.stdout);
    for code in ["0 ", "1 ", "2 ", "3 ", "130 "] {
        assert!(
            help.contains(&format!("\n  {code}")),
            "exit code {code}in {help}"
        );
    }
}

#[tokio::test]
async fn json_at_a_terminal_prints_one_document_and_no_progress() {
    let (stack, from, to) = a_day_to_plan(62).await;

    let (planned, plan_shown) =
        at_a_terminal(&stack, &["plan", "--from", &from, "--to", &to, "--json"]).await;
    let (worked, work_shown) = at_a_terminal(&stack, &["work", "--until-empty", "--json"]).await;

    for (out, shown) in [(&planned, &plan_shown), (&worked, &work_shown)] {
        let stdout = text(&out.stdout);
        assert!(!stdout.contains(ESC), "no escape on stdout: {stdout:?}");
        json_of(out);
        assert!(!shown.contains(ESC), "no escape on the terminal: {shown:?}");
        for progress in ["reading CTR objects", "matching", "worked:", "calls/min"] {
            assert!(
                !shown.contains(progress),
                "{progress:?} on the terminal: {shown:?}"
            );
        }
    }
}

#[tokio::test]
async fn without_json_a_terminal_is_shown_the_progress() {
    let (stack, from, to) = a_day_to_plan(63).await;

    let (planned, plan_shown) =
        at_a_terminal(&stack, &["plan", "--from", &from, "--to", &to]).await;
    let (worked, work_shown) = at_a_terminal(&stack, &["work", "--until-empty"]).await;

    assert_eq!(planned.status.code(), Some(0), "{plan_shown}");
    assert_eq!(worked.status.code(), Some(0), "{work_shown}");
    assert!(
        plan_shown.contains("listing the arrival hours"),
        "{plan_shown:?}"
    );
    assert!(work_shown.contains(" worked: "), "{work_shown:?}");
    assert!(
        text(&worked.stdout).starts_with("worked "),
        "the summary is on stdout"
    );
}

#[tokio::test]
async fn at_a_terminal_verints_retries_are_shown_one_line_each() {
    let (stack, from, to) = a_day_to_plan(64).await;
    json_of(
        &ctl(
            &stack,
            &["plan", "--from", &from, "--to", &to, "--json"],
            "error",
        )
        .await,
    );
    stack.sim.state().set_faults(Faults {
        seed: 7,
        status_503: 0.5,
        retry_after_secs: 0,
        ..Faults::default()
    });

    let (_, shown) = at_a_terminal(&stack, &["work", "--until-empty"]).await;

    let retries: Vec<&str> = shown
        .split(['\r', '\n'])
        .filter(|l| l.contains("WARN") && l.contains("retrying"))
        .collect();
    assert!(!retries.is_empty(), "{shown:?}");
    assert!(
        retries.iter().all(|l| l.contains("503")),
        "each line says why: {retries:#?}"
    );
}

#[tokio::test]
async fn at_a_terminal_redrive_shows_the_messages_it_moves() {
    let stack = Stack::new(&[]).await.expect("stack");
    for i in 0..5 {
        stack
            .dead_letter_queue
            .send_with_reason(
                &format!("{{\"v\":1,\"n\":{i}}}"),
                "verint rejected the call",
            )
            .await
            .expect("dead letter");
    }

    let (out, shown) = at_a_terminal(&stack, &["redrive"]).await;

    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("message(s) back"), "{shown:?}");
}

#[tokio::test]
async fn ctrl_c_settles_the_messages_in_hand_prints_the_summary_and_exits_130() {
    let (stack, from, to) = a_day_missing(65, Some(0.8)).await;
    let planned = json_of(
        &ctl(
            &stack,
            &["plan", "--from", &from, "--to", &to, "--json"],
            "error",
        )
        .await,
    );
    let queued = planned["enqueued"].as_u64().expect("enqueued");
    assert!(queued > 10, "more calls than one receive takes: {planned}");
    // Slow enough that Ctrl-C comes while the first messages are in hand.
    stack.sim.state().set_faults(Faults {
        slow_ms: 300,
        ..Faults::default()
    });
    let work = tokio::process::Command::new(BIN)
        .args(["work", "--until-empty", "--json"])
        .env_clear()
        .envs(stack.vars.iter())
        .env("RECOVERYCTL_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recoveryctl work starts");
    while stack.sim.state().ingested().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let pid = rustix::process::Pid::from_raw(work.id().expect("running") as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("Ctrl-C");
    let out = work
        .wait_with_output()
        .await
        .expect("recoveryctl work ends");

    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let tally = json_exiting(&out, 130);
    let received = tally["received"].as_u64().expect("received");
    assert!(
        0 < received && received < queued,
        "it stopped early: {tally}"
    );
    assert_eq!(
        tally["recovered"].as_u64(),
        Some(received),
        "every message in hand was settled: {tally}"
    );
    let left = stack.work_queue.depth().await.expect("depth");
    assert_eq!(
        (left.visible, left.in_flight),
        (queued - received, 0),
        "the rest wait in the queue, none held"
    );
}

/// An SQS endpoint that refuses every call as AWS does when no policy allows it; its URL.
async fn sqs_denying_everything() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                // The request's head and body, then the answer.
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    request.extend_from_slice(&chunk[..n]);
                    let head = text(&request);
                    if n == 0 {
                        break;
                    }
                    if let Some((head, body)) = head.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let body = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/oncall/night is not authorized to perform: sqs:getqueueattributes on resource: arn:aws:sqs:us-east-1:123456789012:call-recovery-work because no identity-based policy allows the sqs:getqueueattributes action"}"#;
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-query-error: AccessDenied;Sender\r\nx-amzn-requestid: 5c3b0bd8-0000-4000-8000-000000000000\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_access_denied_names_the_permission_missing_and_says_nothing_changed() {
    let mut stack = Stack::new(&[]).await.expect("stack");
    stack.vars.insert(
        "AWS_ENDPOINT_URL_SQS".into(),
        sqs_denying_everything().await,
    );

    let out = ctl(&stack, &["status"], "error").await;

    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "a line and a hint: {stderr}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains(
                "AWS denied sqs:GetQueueAttributes on arn:aws:sqs:us-east-1:123456789012:call-recovery-work"
            )
            && lines[0].ends_with("nothing was changed; safe to re-run"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("sqs:GetQueueAttributes"),
        "{stderr}"
    );
    assert!(!stderr.contains("Error {"), "no struct dump: {stderr}");
}
