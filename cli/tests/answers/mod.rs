//! How `recoveryctl` answers the operator: progress only at a terminal and never with `--json`,
//! retries shown as they happen, and a summary on Ctrl-C.

use std::io::Read as _;
use std::process::{Output, Stdio};

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_recoveryctl");

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
    assert!(shown.contains("message(s) to the work queue"), "{shown:?}");
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
