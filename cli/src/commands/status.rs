//! `recoveryctl status` (design §8): the queues' depths, the checkpoint and the latest run.

use super::*;

pub(super) async fn status(json: bool) -> Result<()> {
    let (config, clients, store) = state().await?;
    let work = SqsQueue::new(clients.sqs.clone(), &config.work_queue_url)
        .depth()
        .await
        .context("work queue")?;
    let dlq = SqsQueue::new(clients.sqs.clone(), &config.dead_letter_queue_url)
        .depth()
        .await
        .context("dead-letter queue")?;
    let backfill = match &config.backfill_queue_url {
        Some(url) => Some(
            SqsQueue::new(clients.sqs.clone(), url)
                .depth()
                .await
                .context("backfill queue")?,
        ),
        None => None,
    };
    let (checkpoint, _) = store.checkpoint().await?;
    let mut rows = Vec::new();
    for id in store.run_ids().await?.iter().take(5) {
        rows.push(run_row(&store, id, true).await?.0);
    }
    if json {
        return print_json(&json!({
            "work_queue": work, "dead_letter_queue": dlq, "backfill_queue": backfill,
            "checkpoint": checkpoint, "latest_runs": rows,
        }));
    }
    let mut t = table(&["queue", "visible", "in flight"]);
    t.add_row(vec![
        "work".to_owned(),
        work.visible.to_string(),
        work.in_flight.to_string(),
    ]);
    if let Some(b) = backfill {
        t.add_row(vec![
            "backfill".to_owned(),
            b.visible.to_string(),
            b.in_flight.to_string(),
        ]);
    }
    t.add_row(vec![
        "dead-letter".to_owned(),
        dlq.visible.to_string(),
        dlq.in_flight.to_string(),
    ]);
    println!("{t}");
    match checkpoint {
        Some(c) => println!(
            "checkpoint: next arrival hour {} (moved by run {} at {})",
            c.next_hour, c.run_id, c.updated_at
        ),
        None => {
            println!("checkpoint: none yet (the first automatic run starts INITIAL_LOOKBACK ago)")
        }
    }
    if rows.is_empty() {
        println!("no runs yet");
    } else {
        println!("latest runs:\n{}", runs_table(&rows));
    }
    if dlq.visible > 0 {
        println!(
            "{} message(s) in the dead-letter queue: see `recoveryctl runs RUN_ID` for reasons, then `recoveryctl redrive`",
            dlq.visible
        );
    }
    Ok(())
}
