//! Benchmarks a backfill (design §4, backfills): DAYS days of PER_DAY calls each, written once
//! by the corpus generator with Verint holding 97 % of the voice calls, planned as 24-hour slices
//! by the planner's own code (`Planner::run_as` per slice, `backfill::parent_report` for the
//! parent). Each slice runs in a child process, as each runs in its own Lambda invocation, so
//! its peak RSS is its own; `--jobs` slices at once. CTRs are read from disk (`DirCtrSource`)
//! and Verint's holdings from the generator's id files, so the figures are the planner's, not
//! moto's. The parent's missing count is checked against the generator's truth.

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clap::Parser;
use futures::StreamExt as _;
use recovery::adapters::ctr_source::DirCtrSource;
use recovery::domain::checkpoint::Checkpoint;
use recovery::domain::contacts::ContactKey;
use recovery::domain::ledger::{LedgerError, LedgerRow};
use recovery::domain::message::WorkMessage;
use recovery::domain::report::{RunReport, RunState, RunStatus, SliceEntry};
use recovery::domain::time::Window;
use recovery::flows::backfill::{Backfill, parent_report, slice_entries};
use recovery::flows::plan::{Planner, Request};
use recovery::ports::queue::{QueueError, Sent, WorkQueue};
use recovery::ports::store::LedgerSink;
use recovery::ports::store::{RunStore, StateError, Version};
use recovery::ports::verint::VerintError;
use recovery::ports::verint::VerintHoldings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(about = "Plans a DAYS-day backfill over a generated corpus, one process per slice")]
struct Args {
    /// Where the corpus is (written there first if it is not complete).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 100_000)]
    per_day: usize,
    /// The first day of the corpus.
    #[arg(long, default_value = "2024-05-01")]
    from: NaiveDate,
    /// Slices planned at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Child mode: plan the one slice starting here (RFC 3339) and print its report.
    #[arg(long, hide = true)]
    slice: Option<String>,
    #[arg(long, hide = true)]
    slice_id: Option<String>,
    #[arg(
        long,
        env = "CONNECT_INSTANCE_ID",
        default_value = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
    )]
    instance_id: String,
}

/// What a child prints: its slice's report and its own peak RSS.
#[derive(Debug, Serialize, Deserialize)]
struct SliceRun {
    report: RunReport,
    peak_rss_kib: u64,
    wall_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &args.slice {
        Some(start) => runtime.block_on(child(&args, start)),
        None => runtime.block_on(parent(&args)),
    }
}

fn day_start(day: NaiveDate) -> anyhow::Result<DateTime<Utc>> {
    Ok(day.and_hms_opt(0, 0, 0).context("midnight")?.and_utc())
}

/// The generator's truth for one day.
#[derive(Debug, Deserialize)]
struct DayTruth {
    records: usize,
    expected_missing: usize,
}

fn write_corpus(args: &Args) -> anyhow::Result<Vec<DayTruth>> {
    let mut truth = Vec::new();
    for n in 0..args.days {
        let day = args.from + TimeDelta::days(i64::from(n));
        let done = args.dir.join(format!("truth/{day}.json"));
        if !done.exists() {
            eprintln!("bench-backfill: generating {day} ({} calls)", args.per_day);
            let written = local_stack::generate::bench_corpus_on(
                &args.dir,
                day,
                args.per_day,
                u64::from(n) + 1,
                &args.instance_id,
            )?;
            std::fs::create_dir_all(args.dir.join("verint"))?;
            std::fs::rename(
                args.dir.join("verint_ids.txt"),
                args.dir.join(format!("verint/{day}.txt")),
            )?;
            std::fs::create_dir_all(args.dir.join("truth"))?;
            std::fs::write(&done, serde_json::to_vec(&written)?)?;
        }
        truth.push(serde_json::from_slice(&std::fs::read(&done)?)?);
    }
    Ok(truth)
}

async fn parent(args: &Args) -> anyhow::Result<()> {
    let truth = write_corpus(args)?;
    // The generator's calls start up to about 40 minutes before they arrive: the window opens an
    // hour before the first day, so that it holds every call the generator made, and no other.
    let first = day_start(args.from)?;
    let window = Window {
        start: first - TimeDelta::hours(1),
        end: first + TimeDelta::days(i64::from(args.days)),
    };
    let backfill = Backfill::new(window, true, window.end + TimeDelta::days(1));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |p| p.get()));
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let runs: Vec<anyhow::Result<SliceRun>> = futures::stream::iter(backfill.slices.iter())
        .map(|s| {
            let exe = exe.clone();
            async move {
                let out = tokio::process::Command::new(&exe)
                    .arg("--dir")
                    .arg(&args.dir)
                    .args(["--instance-id", &args.instance_id])
                    .args([
                        "--from",
                        &args.from.to_string(),
                        "--days",
                        &args.days.to_string(),
                    ])
                    .args(["--slice", &s.start, "--slice-id", &s.run_id])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .await?;
                if !out.status.success() {
                    bail!("slice {} failed: {}", s.run_id, out.status);
                }
                Ok(serde_json::from_slice::<SliceRun>(&out.stdout)?)
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    let wall = started.elapsed();
    let runs: Vec<SliceRun> = runs.into_iter().collect::<anyhow::Result<_>>()?;
    let ends: Vec<SliceEntry> = runs
        .iter()
        .map(|r| SliceEntry {
            run_id: r.report.run_id.clone(),
            start: String::new(),
            end: String::new(),
            status: RunState::Completed,
            error: None,
        })
        .collect();
    let reports: Vec<RunReport> = runs.iter().map(|r| r.report.clone()).collect();
    let report = parent_report(
        &backfill,
        &slice_entries(&backfill, &ends),
        &reports,
        Utc::now(),
    );

    let expected: usize = truth.iter().map(|t| t.expected_missing).sum();
    let calls: usize = truth.iter().map(|t| t.records).sum();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.peak_rss_kib).collect();
    let mut walls: Vec<u64> = runs.iter().map(|r| r.wall_ms).collect();
    rss.sort_unstable();
    walls.sort_unstable();
    let median = |v: &[u64]| v[v.len() / 2];
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "== bench-backfill: {} days x {} calls = {calls} CTRs, {} slices, {jobs} at once, {} cores ==",
        args.days,
        args.per_day,
        runs.len(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!("wall:                       {:.1} s", wall.as_secs_f64());
    println!(
        "slice wall median / max:    {:.1} s / {:.1} s",
        median(&walls) as f64 / 1e3,
        walls.last().copied().unwrap_or(0) as f64 / 1e3
    );
    println!(
        "slice peak RSS median / max: {:.0} MiB / {:.0} MiB",
        mib(median(&rss)),
        mib(rss.last().copied().unwrap_or(0))
    );
    println!(
        "records / eligible / in Verint: {} / {} / {}",
        report.ctr.records, report.eligible, report.in_verint
    );
    println!(
        "missing (parent report):    {} (generator's truth {expected}): {}",
        report.missing,
        if report.missing as usize == expected {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    if report.missing as usize != expected {
        bail!(
            "the backfill found {} missing, the generator made {expected}",
            report.missing
        );
    }
    Ok(())
}

async fn child(args: &Args, start: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let start = recovery::domain::time::parse_ts(start).context("--slice is not a time")?;
    let window = Window {
        start,
        end: end_of_slice(args, start)?,
    };
    let vars = [
        ("CTR_BUCKET", "bench"),
        ("CTR_PREFIX", "ctr/"),
        ("CONNECT_INSTANCE_ID", args.instance_id.as_str()),
        ("WORK_QUEUE_URL", "http://127.0.0.1:1/queue/work"),
        ("DEAD_LETTER_QUEUE_URL", "http://127.0.0.1:1/queue/dlq"),
        ("STATE_BUCKET", "bench"),
        ("VERINT_DAS_URL", "http://127.0.0.1:1/das"),
        ("VERINT_INGEST_URL", "http://127.0.0.1:1/ingest"),
        ("VERINT_API_KEY_ID", "bench"),
        (
            "VERINT_API_KEY",
            "F1P18Q-GPSiB4aApMQ2NslylM4i9lPBRCdqHv5YUk5w",
        ),
    ];
    let config = recovery::Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    })?;
    let source = DirCtrSource::new(&args.dir, "ctr/");
    let verint = IdFiles {
        dir: args.dir.join("verint"),
    };
    let queue = Counted;
    let store = Nowhere;
    let planner = Planner {
        config: &config,
        source: &source,
        verint: &verint,
        queue: &queue,
        store: &store,
        concurrency: 2 * std::thread::available_parallelism().map_or(2, |p| p.get()),
        progress: &|_, _| {},
        orphans: None,
        redacted: None,
        deadline: None,
        finish_by: None,
    };
    let run_id = args.slice_id.clone().unwrap_or_else(|| "slice".into());
    let now = window.end + TimeDelta::days(2);
    let report = planner
        .run_as(
            &run_id,
            Request::Manual {
                window,
                dry_run: false,
            },
            now,
        )
        .await?;
    let run = SliceRun {
        report,
        peak_rss_kib: local_stack::peak_rss_kib(),
        wall_ms: started.elapsed().as_millis() as u64,
    };
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// A slice ends 24 hours after it starts, or with the corpus's last day.
fn end_of_slice(args: &Args, start: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let last = day_start(args.from)? + TimeDelta::days(i64::from(args.days));
    Ok((start + recovery::flows::backfill::SLICE).min(last))
}

/// Verint's holdings as the generator wrote them, one file per generated day: DAS asked for
/// some spans answers with the ids of the days those spans touch (a superset, as DAS's own
/// answer is by Verint's start time, which matching by id does not need to be exact about).
struct IdFiles {
    dir: PathBuf,
}

impl VerintHoldings for IdFiles {
    async fn completed_contacts(
        &self,
        spans: &[Window],
    ) -> Result<HashSet<ContactKey>, VerintError> {
        let mut days: Vec<NaiveDate> = Vec::new();
        for span in spans {
            let mut day = span.start.date_naive();
            while day <= span.end.date_naive() {
                days.push(day);
                day += TimeDelta::days(1);
            }
        }
        days.sort_unstable();
        days.dedup();
        let mut held = HashSet::new();
        for day in days {
            read_ids(&self.dir.join(format!("{day}.txt")), &mut held);
        }
        Ok(held)
    }
}

fn read_ids(path: &Path, into: &mut HashSet<ContactKey>) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        into.insert(ContactKey::folded(line.trim()));
    }
}

/// A work queue that accepts everything: the benchmark counts what would be queued.
struct Counted;

impl WorkQueue for Counted {
    async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
        Ok(Sent {
            accepted: messages.len() as u64,
            rejected: Vec::new(),
        })
    }
}

/// A run store that keeps nothing: manual runs write no checkpoint, and the report is printed.
struct Nowhere;

impl RunStore for Nowhere {
    async fn checkpoint(&self) -> Result<(Option<Checkpoint>, Version), StateError> {
        Ok((None, Version::Absent))
    }
    async fn put_checkpoint(&self, _: &Checkpoint, _: &Version) -> Result<(), StateError> {
        Ok(())
    }
    async fn put_report(&self, _: &RunReport) -> Result<(), StateError> {
        Ok(())
    }
    async fn put_status(&self, _: &RunStatus) -> Result<(), StateError> {
        Ok(())
    }
    type Ledger = Discard;
    fn ledger(&self, _: &str) -> Self::Ledger {
        Discard(0)
    }
}

/// A ledger that counts its rows and keeps none (the real one streams them to S3 in parts).
struct Discard(u64);

impl LedgerSink for Discard {
    async fn push(&mut self, _: LedgerRow) -> Result<(), LedgerError> {
        self.0 += 1;
        Ok(())
    }
    async fn finish(self) -> Result<u64, LedgerError> {
        Ok(self.0)
    }
}
