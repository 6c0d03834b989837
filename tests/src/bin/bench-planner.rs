//! Benchmarks the planner's read path on a `bench-corpus` directory: read + gunzip + parse +
//! dedup through `DirCtrSource` and `scan`, then `eligible` and `classify` against the ids of
//! `verint_ids.txt` (loaded first and timed apart: in production they come from DAS).

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, TimeDelta};
use clap::Parser;
use recovery::contacts::ContactKey;
use recovery::matching::{Rules, classify, eligible};
use recovery::source::{DirCtrSource, scan};

#[derive(Debug, Parser)]
#[command(about = "Times the planner's scan + match over a bench-corpus directory")]
struct Args {
    /// The directory `bench-corpus --dir` wrote (holds `ctr/` and `verint_ids.txt`).
    #[arg(long)]
    dir: PathBuf,
    /// The day the corpus covers; its 24 arrival hours are read.
    #[arg(long, default_value = "2024-05-14")]
    date: NaiveDate,
    #[arg(
        long,
        env = "CONNECT_INSTANCE_ID",
        default_value = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
    )]
    instance_id: String,
    /// Objects parsed at a time (default: 2 × cores).
    #[arg(long)]
    concurrency: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(2, |p| p.get());
    let concurrency = args.concurrency.unwrap_or(2 * cores);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let started = Instant::now();
    let held = load_ids(&args.dir.join("verint_ids.txt"))?;
    let load = started.elapsed();
    let after_load = local_stack::peak_rss_kib();

    let day = args
        .date
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    let hours: Vec<_> = (0..24).map(|h| day + TimeDelta::hours(h)).collect();
    let source = DirCtrSource::new(&args.dir, "ctr/");
    let rules = Rules {
        initiation_window: None,
        settled_before: None,
    };

    let t0 = Instant::now();
    let (contacts, stats) = runtime.block_on(scan(
        &source,
        &hours,
        &args.instance_id,
        None,
        concurrency,
        &|_, _| {},
    ))?;
    let t_scan = t0.elapsed();
    let after_scan = local_stack::peak_rss_kib();
    let distinct = contacts.len();
    let t1 = Instant::now();
    let eligible = eligible(&contacts, &rules);
    let t_eligible = t1.elapsed();
    let t2 = Instant::now();
    let class = classify(&contacts, &eligible, &held, &rules);
    let t_classify = t2.elapsed();
    let wall = t0.elapsed();
    drop(contacts);

    let compressed = dir_bytes(&args.dir.join("ctr"))?;
    let uncompressed = corpus_uncompressed(&args.dir);
    let mb = |b: u64| b as f64 / 1e6;
    let secs = wall.as_secs_f64();
    println!(
        "bench-planner: {} (concurrency {concurrency}, {cores} cores)",
        args.dir.display()
    );
    println!(
        "verint ids loaded:   {} in {} (not counted)",
        held.len(),
        fmt(load)
    );
    println!(
        "objects:             {} ({:.1} MB gzip)",
        stats.objects,
        mb(compressed)
    );
    println!("records:             {}", stats.records);
    println!("malformed:           {}", stats.malformed);
    println!("distinct contacts:   {distinct}");
    println!("eligible:            {}", class.eligible);
    println!("in verint:           {}", class.in_verint);
    println!("unrecoverable:       {}", class.unrecoverable.len());
    println!("missing:             {}", class.missing.len());
    println!("phase scan:          {}", fmt(t_scan));
    println!("phase eligible:      {}", fmt(t_eligible));
    println!("phase classify:      {}", fmt(t_classify));
    println!("wall:                {secs:.3} s");
    println!("records/s:           {:.0}", stats.records as f64 / secs);
    println!("gzip MB/s:           {:.1}", mb(compressed) / secs);
    match uncompressed {
        Some(u) => println!(
            "json MB/s:           {:.1} ({:.1} MB uncompressed)",
            mb(u) / secs,
            mb(u)
        ),
        None => println!("json MB/s:           unknown (no corpus.json beside ctr/)"),
    }
    println!(
        "peak rss (VmHWM):    {} MiB (after id load {} MiB, after scan {} MiB)",
        local_stack::peak_rss_kib() / 1024,
        after_load / 1024,
        after_scan / 1024
    );
    Ok(())
}

fn load_ids(path: &Path) -> anyhow::Result<HashSet<ContactKey>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut held = HashSet::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let id = line.trim();
        if !id.is_empty() {
            held.insert(ContactKey::new(id));
        }
    }
    Ok(held)
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `uncompressed_bytes` from the `corpus.json` that `scripts/bench-planner.sh` keeps beside
/// the corpus (the output of `bench-corpus`).
fn corpus_uncompressed(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("corpus.json")).ok()?;
    let corpus: local_stack::generate::BenchCorpus = serde_json::from_str(&text).ok()?;
    Some(corpus.uncompressed_bytes)
}

fn fmt(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
