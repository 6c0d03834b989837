//! Sets up the state of one large day for `recoveryctl coverage` (docs/benchmarks.md): a manual
//! run's report and its ledger of `--rows` eligible contacts (written by the planner's own
//! `S3Ledger`, timed), and the worker's outcomes for the missing ones. Prints the time the ledger
//! took to write, its size, and the state bucket and day to ask `recoveryctl coverage` about.

use std::time::Instant;

use anyhow::Context as _;
use chrono::{NaiveDate, TimeDelta};
use clap::Parser;
use futures::StreamExt;
use recovery::adapters::state::S3State;
use recovery::domain::ledger::{LedgerClass, LedgerRow};
use recovery::domain::report::{
    CtrCounts, Mode, Outcome, OutcomeStatus, ReportWindow, RunReport, WindowBy,
};
use recovery::ports::store::LedgerSink;
use recovery::ports::store::RunStore;

#[derive(Debug, Parser)]
struct Args {
    /// Eligible contacts of the day.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Share of them Verint lacked (recovered by the worker but for `--failed`).
    #[arg(long, default_value_t = 0.024)]
    missing: f64,
    /// Missing contacts whose recovery failed.
    #[arg(long, default_value_t = 50)]
    failed: u64,
    #[arg(long, default_value = "2026-11-30")]
    date: NaiveDate,
    #[arg(long)]
    bucket: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let clients = recovery::adapters::aws::Clients::load(|k| std::env::var(k).ok()).await;
    let _ = clients.s3.create_bucket().bucket(&args.bucket).send().await;
    let store = S3State::new(clients.s3.clone(), &args.bucket, "call-recovery/");
    let run_id = format!("{}T235900Z-bench000", args.date.format("%Y%m%d"));
    let start = args.date.and_hms_opt(0, 0, 0).context("date")?.and_utc();

    let every = (1.0 / args.missing).round().max(1.0) as u64;
    let id = |i: u64| {
        let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            i & 0xfff,
            (i >> 12) & 0xfff,
            i
        )
    };
    let written = Instant::now();
    let mut ledger = store.ledger(&run_id);
    let mut missing_ids = Vec::new();
    for i in 0..args.rows {
        let initiation = start + TimeDelta::milliseconds((i * 86_400_000 / args.rows) as i64);
        let class = if i % every == 0 {
            missing_ids.push(id(i));
            LedgerClass::Missing
        } else if i % 997 == 0 {
            LedgerClass::Unrecoverable
        } else {
            LedgerClass::InVerint
        };
        ledger
            .push(LedgerRow {
                contact_id: id(i),
                initiation: Some(initiation),
                disconnect: Some(initiation + TimeDelta::seconds(240 + (i % 900) as i64)),
                class,
                reason: if class == LedgerClass::Unrecoverable {
                    "every S3 recording has Status DELETED (1 recording)".into()
                } else {
                    String::new()
                },
                initial_contact_id: String::new(),
            })
            .await?;
    }
    ledger.finish().await?;
    let ledger_secs = written.elapsed().as_secs_f64();
    let size = clients
        .s3
        .head_object()
        .bucket(&args.bucket)
        .key(store.ledger_key(&run_id))
        .send()
        .await?
        .content_length
        .unwrap_or(0);

    let report = RunReport {
        run_id: run_id.clone(),
        mode: Mode::Manual,
        dry_run: false,
        window: Some(ReportWindow {
            start: recovery::domain::time::format_ts(start),
            end: recovery::domain::time::format_ts(start + TimeDelta::days(1)),
            by: WindowBy::Initiation,
        }),
        ctr: CtrCounts::default(),
        eligible: args.rows,
        in_verint: 0,
        not_settled: 0,
        missing: missing_ids.len() as u64,
        enqueued: missing_ids.len() as u64,
        missing_contact_ids: Vec::new(),
        unrecoverable: Vec::new(),
        late_hours: Vec::new(),
        duration_ms: 0,
        orphans: 0,
        orphan_lookups_failed: 0,
        already_queued: 0,
        complete: true,
        orphan_contact_ids: Vec::new(),
        slices: None,
        instances: Default::default(),
    };
    store.put_report(&report).await?;
    let outcomes = Instant::now();
    let failed = args.failed as usize;
    futures::stream::iter(missing_ids.iter().enumerate().map(|(n, contact_id)| {
        let store = &store;
        let run_id = &run_id;
        async move {
            let failed = n < failed;
            store
                .put_outcome(
                    run_id,
                    &Outcome {
                        contact_id: contact_id.clone(),
                        status: if failed {
                            OutcomeStatus::Failed
                        } else {
                            OutcomeStatus::Recovered
                        },
                        attempt: 1,
                        reason: failed.then(|| "verint rejected the call (422)".to_owned()),
                        bytes: 0,
                        interaction_id: None,
                        at: recovery::domain::time::format_ts(start + TimeDelta::days(1)),
                        integrity: None,
                        expected_seconds: None,
                        actual_seconds: None,
                        restored_from: None,
                        redacted: false,
                    },
                )
                .await
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{{\"rows\":{},\"missing\":{},\"failed\":{},\"ledger_bytes\":{size},\"ledger_write_secs\":{ledger_secs:.2},\"outcomes_write_secs\":{:.2},\"date\":\"{}\",\"bucket\":\"{}\"}}",
        args.rows,
        missing_ids.len(),
        failed.min(missing_ids.len()),
        outcomes.elapsed().as_secs_f64(),
        args.date,
        args.bucket
    );
    Ok(())
}
