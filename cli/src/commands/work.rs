//! `recoveryctl work` (design §8): works the queues here, live recovery first, until they are
//! empty, the time given is up or the operator presses Ctrl-C; prints what the messages came to.
//! At a terminal a line shows the totals, the rate and when the queue should be empty.

use std::time::Instant;

use recovery::flows::work::Tally;
use recovery::ports::queue::Depth;
use tokio::sync::watch;

use super::*;
use crate::feedback::{eta, note, per_minute};

/// `recoveryctl work`'s Connect ceiling when `CONNECT_MAX_RPS` is not given.
const LAPTOP_CONNECT_RPS: f64 = 1.0;

/// How long `recoveryctl work` keeps a message invisible at a time while it works on it.
const HOLD: Duration = Duration::from_secs(120);
/// `recoveryctl work --for`: no new message is taken with less than this left, so that the
/// messages in hand can be settled.
const LAST_TAKE: Duration = Duration::from_secs(60);

pub(super) async fn work(json: bool, until_empty: bool, for_: Option<Duration>) -> Result<Exit> {
    let mut config = config()?;
    if env("CONNECT_MAX_RPS").is_none() {
        // The account's Connect quota is shared with the deployed worker: a laptop does not get
        // the code's default of 5 per second unless it is asked for (the template's is 0.25).
        config.connect_max_rps = LAPTOP_CONNECT_RPS;
        eprintln!(
            "CONNECT_MAX_RPS is not set: DescribeContact at most {LAPTOP_CONNECT_RPS}/s here (the account's quota is shared with the deployed worker; set it, or use --stack NAME, for the deployment's value)"
        );
    }
    let app = WorkerApp::load(config, env).await?;
    let deadline = for_.map(|d| tokio::time::Instant::now() + d);
    let wait = Duration::from_secs(if until_empty { 1 } else { 20 });
    let interrupted = interrupt();
    let mut tally = Tally::default();
    let pb = progress(json, 0, "{spinner} {elapsed:>4} {msg}");
    let interactive = crate::feedback::interactive(json);
    let started = Instant::now();
    pb.set_message("asking SQS how many messages wait…");
    let mut depth = if interactive { depth(&app).await } else { None };
    pb.set_message(progress_line(&tally, started.elapsed(), depth));
    let mut metrics = Metrics::new("recoveryctl");
    let worked = async {
        loop {
            if deadline.is_some_and(|d| {
                d.saturating_duration_since(tokio::time::Instant::now()) < LAST_TAKE
            }) || *interrupted.borrow()
            {
                break;
            }
            // Ctrl-C while waiting for messages stops at once: SQS makes visible again, when
            // its hold ends, any message the abandoned receive may have taken.
            let mut stop = interrupted.clone();
            let (received, worker) = tokio::select! {
                r = app.receive_by_hand(wait, HOLD) => r?,
                _ = stop.wait_for(|&i| i) => break,
            };
            if received.is_empty() {
                if until_empty {
                    break;
                }
                continue;
            }
            // The messages in hand are settled even after Ctrl-C: the worker returns once each
            // is deleted, released for a retry or dead-lettered.
            for d in worker
                .work_received_by(&received, deadline, &mut metrics)
                .await?
            {
                tally.add(&d);
            }
            if interactive {
                depth = self::depth(&app).await;
            }
            pb.set_message(progress_line(&tally, started.elapsed(), depth));
        }
        anyhow::Ok(())
    }
    .await;
    pb.finish_and_clear();
    if let Err(e) = worked {
        return Err(e.context(Changed(format!(
            "{} before the failure; messages in hand return to the queue when their hold ends; safe to re-run",
            summary(&tally)
        ))));
    }
    if json {
        print_json(&tally)?;
    } else {
        println!("{}", summary(&tally));
    }
    if *interrupted.borrow() {
        note(
            "interrupted: the messages in hand were settled; `recoveryctl work` goes on from the queue",
        );
        return Ok(Exit::Interrupted);
    }
    if tally.dead_lettered > 0 {
        note(&format!(
            "{} call(s) went to the dead-letter queue: `recoveryctl status` and `recoveryctl runs RUN_ID` give the reasons; once fixed, `recoveryctl redrive`",
            tally.dead_lettered
        ));
        return Ok(Exit::DeadLettered);
    }
    Ok(Exit::Success)
}

/// Turns true at the first Ctrl-C (no new message is taken; those in hand are settled). A second
/// Ctrl-C ends the process at once: the messages in hand are then left to SQS, visible again
/// when their hold ends.
fn interrupt() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = tx.send(true);
        note(
            "stopping: no new message is taken; settling the messages in hand (Ctrl-C again to quit now)",
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            note(&format!(
                "quit: the messages in hand were not settled; SQS makes them visible again within {}",
                humantime::format_duration(HOLD)
            ));
            std::process::exit(i32::from(crate::exit::INTERRUPTED));
        }
    });
    rx
}

/// The work queue's depth and the backfill queue's, added; `None` when SQS cannot say (the
/// progress line then goes without an ETA).
async fn depth(app: &WorkerApp) -> Option<Depth> {
    let mut total = app.work_queue.depth().await.ok()?;
    if let Some(backfill) = &app.backfill_queues {
        let b = backfill.work.depth().await.ok()?;
        total.visible += b.visible;
        total.in_flight += b.in_flight;
    }
    Some(total)
}

/// What the messages came to, in words.
fn summary(t: &Tally) -> String {
    format!(
        "worked {} message(s): {} recovered, {} already in Verint, {} left for SQS to retry, {} sent to the dead-letter queue, {} waiting for an archived recording's restore",
        t.received, t.recovered, t.already_present, t.retry_later, t.dead_lettered, t.restoring
    )
}

/// The progress line: totals (the counts that are not zero, past the first two), the rate, the
/// queues' depth and when they should be empty. Short, for a narrow terminal.
fn progress_line(t: &Tally, elapsed: Duration, depth: Option<Depth>) -> String {
    let mut line = format!("{} worked: {} recovered", t.received, t.recovered);
    for (n, what) in [
        (t.already_present, "already in Verint"),
        (t.retry_later, "to retry"),
        (t.dead_lettered, "dead-lettered"),
        (t.restoring, "restoring"),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    let rate = per_minute(t.received, elapsed);
    if let Some(rate) = rate {
        line.push_str(&format!(" · {rate:.1} calls/min"));
    }
    if let Some(d) = depth {
        // In flight: the messages in hand, and those released for a retry or a restore.
        line.push_str(&format!(
            " · queue {} + {} in flight",
            d.visible, d.in_flight
        ));
        if let Some(eta) = rate.and_then(|r| eta(d.visible + d.in_flight, r)) {
            line.push_str(&format!(" · empty in ~{eta}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(received: u64, recovered: u64, dead_lettered: u64, restoring: u64) -> Tally {
        Tally {
            received,
            recovered,
            already_present: received - recovered - dead_lettered - restoring,
            retry_later: 0,
            dead_lettered,
            restoring,
        }
    }

    #[test]
    fn the_progress_line_gives_the_rate_and_when_the_queue_should_be_empty() {
        let line = progress_line(
            &tally(20, 18, 1, 1),
            Duration::from_secs(120),
            Some(Depth {
                visible: 25,
                in_flight: 5,
            }),
        );

        assert_eq!(
            line,
            "20 worked: 18 recovered, 1 dead-lettered, 1 restoring · 10.0 calls/min · queue 25 + 5 in flight · empty in ~3m"
        );
    }

    #[test]
    fn before_any_work_the_progress_line_has_no_rate_and_no_eta() {
        let line = progress_line(
            &Tally::default(),
            Duration::from_secs(3),
            Some(Depth {
                visible: 7,
                in_flight: 0,
            }),
        );

        assert!(
            !line.contains("calls/min") && !line.contains("empty in"),
            "{line}"
        );
        assert!(line.contains("queue 7 + 0 in flight"), "{line}");
    }

    #[test]
    fn the_summary_counts_restoring_calls() {
        assert!(
            summary(&tally(3, 1, 0, 2)).contains("2 waiting for an archived recording's restore")
        );
    }
}
