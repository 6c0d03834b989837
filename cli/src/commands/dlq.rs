//! `recoveryctl dlq [--drop CONTACT_ID --reason TEXT]`: the dead letters as an operator reads
//! them (contact, run, lane, reason, age), and a deliberate drop of one call whose outcome records
//! who dropped it and why.

use super::*;
use recovery::config::*;

pub(super) async fn dlq(json: bool, drop: Option<String>, reason: Option<String>) -> Result<()> {
    let (config, clients, store) = state(&[
        STATE_BUCKET,
        STATE_PREFIX,
        WORK_QUEUE_URL,
        DEAD_LETTER_QUEUE_URL,
        BACKFILL_QUEUE_URL,
    ])
    .await?;
    let queues = redrive::redrive_queues(&config, &clients).await?;
    if let Some(contact_id) = drop {
        let why = reason.unwrap_or_default();
        let dropped =
            recovery::flows::redrive::drop_dead_letter(&queues, &store, &contact_id, &why).await?;
        if json {
            return print_json(
                &json!({"dropped": dropped, "contact_id": contact_id, "reason": why}),
            );
        }
        println!(
            "dropped {dropped} dead letter(s) of contact {contact_id}; its outcome records: dropped by an operator: {why}"
        );
        return Ok(());
    }
    let preview = recovery::flows::redrive::preview(&queues).await?;
    if json {
        return print_json(&preview);
    }
    use recovery::ports::queue::RedriveQueues as _;
    redrive::print_preview(&preview, queues.has_backfill_lane());
    if preview.dead_letters.is_empty() {
        return Ok(());
    }
    let mut t = table(&["contact", "run", "lane", "reason", "age", "receives"]);
    for d in &preview.dead_letters {
        t.add_row(vec![
            d.contact_id
                .clone()
                .unwrap_or_else(|| "(not a work message)".into()),
            d.run_id.clone().unwrap_or_default(),
            d.lane.as_str().to_owned(),
            d.reason.clone(),
            d.age_seconds.map_or("-".into(), |s| {
                humantime::format_duration(Duration::from_secs(s.max(0) as u64)).to_string()
            }),
            d.receive_count.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "fix the cause, then `recoveryctl redrive`; to give one call up deliberately: recoveryctl dlq --drop CONTACT_ID --reason \"why\""
    );
    Ok(())
}
