//! `recoveryctl work` (design §8): works the queues here, live recovery first, until they are
//! empty or the time given is up; prints what the messages came to.

use recovery::flows::work::Tally;

use super::*;

/// `recoveryctl work`'s Connect ceiling when `CONNECT_MAX_RPS` is not given.
const LAPTOP_CONNECT_RPS: f64 = 1.0;

/// How long `recoveryctl work` keeps a message invisible at a time while it works on it.
const HOLD: Duration = Duration::from_secs(120);
/// `recoveryctl work --for`: no new message is taken with less than this left, so that the
/// messages in hand can be settled.
const LAST_TAKE: Duration = Duration::from_secs(60);

pub(super) async fn work(json: bool, until_empty: bool, for_: Option<Duration>) -> Result<()> {
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
    let mut tally = Tally::default();
    let pb = progress(json, 0, "{spinner} {msg}");
    pb.enable_steady_tick(Duration::from_millis(200));
    let mut metrics = Metrics::new("recoveryctl");
    loop {
        if deadline
            .is_some_and(|d| d.saturating_duration_since(tokio::time::Instant::now()) < LAST_TAKE)
        {
            break;
        }
        let (received, worker) = app.receive_by_hand(wait, HOLD).await?;
        if received.is_empty() {
            if until_empty {
                break;
            }
            continue;
        }
        for d in worker
            .work_received_by(&received, deadline, &mut metrics)
            .await?
        {
            tally.add(&d);
        }
        pb.set_message(format!(
            "{} received: {} recovered, {} already present, {} left for retry, {} dead-lettered",
            tally.received,
            tally.recovered,
            tally.already_present,
            tally.retry_later,
            tally.dead_lettered
        ));
    }
    pb.finish_and_clear();
    if json {
        return print_json(&tally);
    }
    println!(
        "worked {} message(s): {} recovered, {} already in Verint, {} left for SQS to retry, {} sent to the dead-letter queue",
        tally.received,
        tally.recovered,
        tally.already_present,
        tally.retry_later,
        tally.dead_lettered
    );
    Ok(())
}
