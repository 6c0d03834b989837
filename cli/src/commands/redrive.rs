//! `recoveryctl redrive` (design §8): the dead-letter queue back to the work queue, safely
//! enough to run twice.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use recovery::config::*;

/// The dead-letter queue with its two lanes: the work queue, and the backfill queue when
/// backfills have their own.
pub(super) async fn redrive_queues(config: &Config, clients: &Clients) -> Result<SqsRedrive> {
    Ok(SqsRedrive::new(
        clients.sqs.clone(),
        &config.dead_letter_queue_url,
        &config.work_queue_url,
    )
    .await
    .context("reading the queues' ARNs (sqs:GetQueueAttributes)")?
    .with_backfill_lane(config.backfill_queue_url.as_deref()))
}

pub(super) async fn redrive(json: bool, dry_run: bool) -> Result<()> {
    let (config, clients, _) =
        state(&[WORK_QUEUE_URL, DEAD_LETTER_QUEUE_URL, BACKFILL_QUEUE_URL]).await?;
    let queues = redrive_queues(&config, &clients).await?;
    if dry_run {
        let preview = recovery::flows::redrive::preview(&queues).await?;
        if json {
            return print_json(&preview);
        }
        print_preview(&preview, queues_lanes(&queues));
        println!("nothing was moved (--dry-run); `recoveryctl redrive` moves them");
        return Ok(());
    }
    // The depth at the start gives the total and so an ETA (a move task reports no progress).
    let depth = {
        use recovery::ports::queue::RedriveQueues as _;
        queues.dead_letter_depth().await.unwrap_or(0)
    };
    let pb = progress(
        json,
        depth,
        "{spinner} {elapsed:>4} moved {pos}/{len} message(s) back ({per_sec}, about {eta} left)",
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
                "{moved} message(s) were moved back before it; the rest stay in the dead-letter queue; safe to re-run"
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
            to_backfill,
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
                "moved {moved} message(s) from the dead-letter queue one by one ({because}): {} to the work queue, {to_backfill} to the backfill queue; stopped: {why}",
                moved - to_backfill
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

fn queues_lanes(queues: &SqsRedrive) -> bool {
    use recovery::ports::queue::RedriveQueues as _;
    queues.has_backfill_lane()
}

/// The dead letters by lane and reason.
pub(super) fn print_preview(preview: &recovery::flows::redrive::Preview, lanes: bool) {
    println!(
        "{} message(s) in the dead-letter queue{}",
        preview.total,
        if lanes {
            "; a redrive sends backfill ones to the backfill queue, live ones to the work queue"
        } else {
            "; a redrive sends them all to the work queue"
        }
    );
    let mut t = table(&["lane", "reason", "messages"]);
    for (lane, reasons) in &preview.by_lane {
        for (reason, n) in reasons {
            t.add_row(vec![
                lane.as_str().to_owned(),
                reason.clone(),
                n.to_string(),
            ]);
        }
    }
    if preview.total > 0 {
        println!("{t}");
    }
}
