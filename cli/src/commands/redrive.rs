//! `recoveryctl redrive` (design §8): the dead-letter queue back to the work queue, safely
//! enough to run twice.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

pub(super) async fn redrive(json: bool) -> Result<()> {
    let (config, clients, _) = state().await?;
    let queues = SqsRedrive::new(
        clients.sqs.clone(),
        &config.dead_letter_queue_url,
        &config.work_queue_url,
    )
    .await
    .context("reading the queues' ARNs")?;
    let pb = progress(
        json,
        0,
        "{spinner} {elapsed:>4} moved {pos} message(s) to the work queue ({per_sec})",
    );
    let moved = AtomicU64::new(0);
    let outcome = recovery::flows::redrive::redrive(&queues, &|n| {
        moved.store(n, Ordering::Relaxed);
        pb.set_position(n);
    })
    .await;
    pb.finish_and_clear();
    let outcome = outcome.map_err(|e| {
        let moved = moved.load(Ordering::Relaxed);
        anyhow::Error::new(e).context(Changed(if moved == 0 {
            "nothing was moved; safe to re-run".to_owned()
        } else {
            format!(
                "{moved} message(s) were moved to the work queue before it; the rest stay in the dead-letter queue; safe to re-run"
            )
        }))
    })?;
    if json {
        return print_json(&outcome);
    }
    match &outcome {
        Redrive::AlreadyRunning { task } => println!(
            "a move task is already {} for the dead-letter queue ({} moved{}); nothing was done: run `recoveryctl redrive` again once it has finished",
            task.status.to_lowercase(),
            task.moved,
            task.to_move.map_or(String::new(), |n| format!(" of {n}")),
        ),
        Redrive::StartMessageMoveTask { depth_at_start, .. } => println!(
            "started an SQS move task for {depth_at_start} message(s) from the dead-letter queue to the work queue"
        ),
        Redrive::ReceiveSendDelete {
            moved,
            skipped,
            depth_at_start,
            stopped,
            because,
        } => {
            let why = match stopped {
                recovery::flows::redrive::Stop::Empty => {
                    "the dead-letter queue is empty".to_owned()
                }
                recovery::flows::redrive::Stop::DepthReached => format!(
                    "that is the {depth_at_start} it held at the start; messages dead-lettered since are left for the next redrive"
                ),
                recovery::flows::redrive::Stop::SeenBefore => {
                    "a message moved by this redrive came back: the worker is still failing it"
                        .to_owned()
                }
            };
            println!(
                "moved {moved} message(s) from the dead-letter queue to the work queue one by one ({because}); stopped: {why}"
            );
            if *skipped > 0 {
                println!(
                    "left {skipped} message(s) in the dead-letter queue: the worker dead-lettered them again during this redrive"
                );
            }
        }
    }
    Ok(())
}
