//! `recoveryctl status` (design §8): the queues' depths, the checkpoint and the latest run.

use super::*;
use recovery::config::*;

pub(super) async fn status(json: bool) -> Result<()> {
    let (config, clients, store) = state(&[
        STATE_BUCKET,
        STATE_PREFIX,
        WORK_QUEUE_URL,
        DEAD_LETTER_QUEUE_URL,
        BACKFILL_QUEUE_URL,
    ])
    .await?;
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
    // An unreadable checkpoint is reported with how to restore it, after everything else that
    // can be read: the queue depths matter most just then.
    let (checkpoint, checkpoint_error) = match store.checkpoint().await {
        Ok((c, _)) => (c, None),
        Err(e @ recovery::ports::store::StateError::Unparsable { .. }) => {
            (None, Some(e.to_string()))
        }
        Err(e) => return Err(e).context("reading the checkpoint"),
    };
    let mut rows = Vec::new();
    for id in store.run_ids().await?.iter().take(5) {
        rows.push(run_row(&store, id, true).await?.0);
    }
    if json {
        print_json(&json!({
            "work_queue": work, "dead_letter_queue": dlq, "backfill_queue": backfill,
            "checkpoint": checkpoint, "checkpoint_error": checkpoint_error, "latest_runs": rows,
        }))?;
        return match checkpoint_error {
            Some(_) => {
                bail!("the checkpoint is unreadable (checkpoint_error says how to restore it)")
            }
            None => Ok(()),
        };
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
        None if checkpoint_error.is_some() => {}
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
            "{} message(s) in the dead-letter queue: `recoveryctl dlq` lists them with their reasons; fix the cause, then `recoveryctl redrive`",
            dlq.visible
        );
    }
    if let Some(e) = checkpoint_error {
        println!("checkpoint: UNREADABLE: {e}");
        bail!("the checkpoint is unreadable (see above for how to restore it)");
    }
    Ok(())
}
