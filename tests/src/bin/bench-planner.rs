//! Benchmarks the planner's read path on a `bench-corpus` directory: read + gunzip + parse +
//! dedup through `DirCtrSource` and `scan`, then `eligible` and `classify` against the ids of
//! `verint_ids.txt` (loaded first and timed apart: in production they come from DAS).
//! With `--baselines` it runs that benchmark as a child under `/usr/bin/time -v` beside the
//! baselines of docs/benchmarks.md (`gzip -dc`; `gzip | jq | sort | comm`, whose count must equal
//! the planner's missing count) and prints the summary table.

use std::collections::HashSet;
use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, TimeDelta};
use clap::Parser;
use local_stack::bench::{self, round};
use local_stack::met;
use recovery::adapters::ctr_source::DirCtrSource;
use recovery::domain::contacts::ContactKey;
use recovery::domain::matching::{Rules, classify, eligible};
use recovery::flows::scan::scan;

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
    /// Instead: runs the benchmark beside its baselines and prints the summary table.
    #[arg(long)]
    baselines: bool,
    /// With `--baselines`: beyond this projected time the jq pipeline runs on a subset of the
    /// objects and its time is extrapolated.
    #[arg(long, env = "JQ_LIMIT_SECS", default_value_t = 600)]
    jq_limit_secs: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.baselines {
        return baselines(&args);
    }
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

/// design §4 in jq: VOICE, disconnected, our instance, an S3 audio recording (Recordings[] with
/// StorageType S3, a Location, MediaStreamType AUDIO or absent, or the legacy Recording's
/// Location), not every recording DELETED. One copy per contact in the corpus (`sort -u`).
const JQ_FILTER: &str = r#"select(.Channel == "VOICE" and .DisconnectTimestamp != null
    and ((.InstanceARN // "") | endswith("instance/" + $iid)))
  | ([ (.Recordings // [])[] | select(.StorageType == "S3" and .Location != null
         and ((.MediaStreamType // "AUDIO") == "AUDIO")) | .Status ]
     + (if .Recording.Location != null then [.Recording.Status] else [] end)) as $st
  | select(($st | length) > 0 and ($st | any(. != "DELETED"))) | .ContactId"#;

/// The script's run: (a) this binary on the corpus under `time -v`, (b) `gzip -dc`, (c) the jq
/// pipeline (on every k-th object, extrapolated, when a 4-object sample projects it past
/// `--jq-limit-secs`), (d) (a)'s peak RSS; then the summary.
fn baselines(args: &Args) -> anyhow::Result<()> {
    for tool in ["gzip", "jq", "sort", "comm", "/usr/bin/time"] {
        bench::require(tool)?;
    }
    let mut files = Vec::new();
    list_files(&args.dir.join("ctr"), &mut files)?;
    files.sort();
    let objects = files.len();
    anyhow::ensure!(
        objects > 0,
        "no objects under {}",
        args.dir.join("ctr").display()
    );
    let gz_mb = dir_bytes(&args.dir.join("ctr"))?.div_ceil(1 << 20);
    let text = std::fs::read_to_string(args.dir.join("corpus.json")).context("corpus.json")?;
    let corpus: local_stack::generate::BenchCorpus = serde_json::from_str(&text)?;
    let json_mb = (corpus.uncompressed_bytes as f64 / 1e6).floor();
    let load_before = local_stack::load_average();
    for f in &files {
        std::io::copy(&mut std::fs::File::open(f)?, &mut std::io::sink())?; // warm the page cache
    }
    let work = std::env::temp_dir().join(format!("bench-planner.{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = compare(args, &files, &work);
    std::fs::remove_dir_all(&work)?;
    let s = result?;
    let speed = round(s.zcat_s / s.planner_s, 2);
    let jq_ratio = round(s.jq_s / s.planner_s, 1);
    let rss = s.planner.rss_mib();
    let counts_ok = s.jq_missing == s.check_missing;
    println!(
        "\n== bench-planner summary: N={}, {objects} objects, {gz_mb} MB gzip / {json_mb} MB JSON, {} cores ==",
        corpus.records,
        local_stack::cores()
    );
    println!(
        "load average before {load_before}, after {} (other work on the machine shows here)",
        local_stack::load_average()
    );
    println!("| measure                              | value            | target        | met |");
    println!("|--------------------------------------|------------------|---------------|-----|");
    println!(
        "| (a) planner wall (scan+match)        | {:.3} s ({:.0} MB/s JSON, {} CPU) |  |  |",
        s.planner_s,
        json_mb / s.planner_s,
        s.planner.cpu
    );
    println!(
        "| (b) gzip -dc wall (1 thread)         | {:.3} s ({:.0} MB/s JSON) |  |  |",
        s.zcat_s,
        json_mb / s.zcat_s
    );
    println!(
        "| (c) gzip|jq|sort|comm wall           | {:.3} s ({}) |  |  |",
        s.jq_s, s.jq_note
    );
    println!(
        "| planner speed vs gzip -dc            | {speed:.2}x | >= 1.0x (no slower) | {} |",
        met(speed >= 1.0)
    );
    println!(
        "| jq pipeline time / planner time      | {jq_ratio:.1}x | >= 10x | {} |",
        met(jq_ratio >= 10.0)
    );
    println!(
        "| (d) planner peak RSS (time -v)       | {rss} MiB | <= 256 MiB | {} |",
        met(rss <= 256)
    );
    println!(
        "| missing: planner vs jq               | {} vs {} (planner records {}) | equal | {} |",
        s.check_missing,
        s.jq_missing,
        s.planner.field("records")?,
        met(counts_ok)
    );
    anyhow::ensure!(
        counts_ok,
        "the jq pipeline and the planner disagree on the missing count"
    );
    Ok(())
}

/// The measured side of the summary.
struct Compared {
    planner: bench::Timed,
    planner_s: f64,
    zcat_s: f64,
    jq_s: f64,
    jq_note: String,
    jq_missing: u64,
    /// The planner's missing count over the objects the jq pipeline read.
    check_missing: u64,
}

fn compare(args: &Args, files: &[PathBuf], work: &Path) -> anyhow::Result<Compared> {
    eprintln!("(a) bench-planner");
    let planner = bench::time_v(&planner_run(args, &args.dir)?, &work.join("time-a"))?;
    let planner_s: f64 = planner.field("wall")?.parse()?;
    let planner_missing: u64 = planner.field("missing")?.parse()?;

    eprintln!("(b) gzip -dc (single-threaded) > /dev/null");
    let t0 = Instant::now();
    for chunk in files.chunks(500) {
        let status = Command::new("gzip")
            .arg("-dc")
            .args(chunk)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "gzip -dc failed: {status}");
    }
    let zcat_s = round(t0.elapsed().as_secs_f64(), 3);

    let ids = args.dir.join("verint_ids.txt");
    let sample = &files[..files.len().min(4)];
    let t0 = Instant::now();
    jq_pipeline(sample, &args.instance_id, &ids)?;
    let projected = round(
        t0.elapsed().as_secs_f64() * files.len() as f64 / sample.len() as f64,
        1,
    );
    let objects = files.len();
    if projected <= args.jq_limit_secs as f64 {
        eprintln!("(c) jq pipeline over all {objects} objects (projected {projected:.1} s)");
        let t0 = Instant::now();
        let jq_missing = jq_pipeline(files, &args.instance_id, &ids)?;
        let jq_s = round(t0.elapsed().as_secs_f64(), 3);
        return Ok(Compared {
            planner,
            planner_s,
            zcat_s,
            jq_s,
            jq_note: "whole corpus".into(),
            jq_missing,
            check_missing: planner_missing,
        });
    }
    // Every k-th object, linked into a corpus of its own for the planner's count.
    let wanted = (objects as u64 * args.jq_limit_secs / 2 / (projected as u64).max(1)).max(1);
    let step = (objects as u64).div_ceil(wanted) as usize;
    let subset: Vec<PathBuf> = files.iter().step_by(step).cloned().collect();
    let sub = work.join("subset-corpus");
    for f in &subset {
        let link = sub.join(f.strip_prefix(&args.dir)?);
        std::fs::create_dir_all(link.parent().context("a file has a parent")?)?;
        std::os::unix::fs::symlink(f, link)?;
    }
    std::os::unix::fs::symlink(&ids, sub.join("verint_ids.txt"))?;
    let sub_n = subset.len();
    eprintln!(
        "(c) projected {projected:.1} s > {} s: jq over {sub_n} of {objects} objects, extrapolated",
        args.jq_limit_secs
    );
    let t0 = Instant::now();
    let jq_missing = jq_pipeline(&subset, &args.instance_id, &ids)?;
    let jq_sub_s = round(t0.elapsed().as_secs_f64(), 3);
    let out = planner_run(args, &sub)?.stderr(Stdio::inherit()).output()?;
    anyhow::ensure!(
        out.status.success(),
        "bench-planner on the subset failed: {}",
        out.status
    );
    Ok(Compared {
        planner,
        planner_s,
        zcat_s,
        jq_s: jq_sub_s * objects as f64 / sub_n as f64,
        jq_note: format!(
            "EXTRAPOLATED from {sub_n} of {objects} objects ({jq_sub_s:.3} s measured); counts compared on that subset"
        ),
        jq_missing,
        check_missing: bench::field(&String::from_utf8_lossy(&out.stdout), "missing")?.parse()?,
    })
}

/// This binary, without `--baselines`, on the corpus in `dir`.
fn planner_run(args: &Args, dir: &Path) -> anyhow::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--dir")
        .arg(dir)
        .args(["--instance-id", &args.instance_id]);
    cmd.arg("--date").arg(args.date.to_string());
    Ok(cmd)
}

/// `gzip -dc FILES | jq -r FILTER | sort -u | comm -23 - IDS | wc -l`, in byte order (`LC_ALL=C`,
/// as `verint_ids.txt` is written).
fn jq_pipeline(files: &[PathBuf], iid: &str, ids: &Path) -> anyhow::Result<u64> {
    let mut gzip = Command::new("gzip")
        .arg("-dc")
        .args(files)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut jq = Command::new("jq")
        .args(["-r", "--arg", "iid", iid, JQ_FILTER])
        .stdin(gzip.stdout.take().context("gzip's stdout")?)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut sort = Command::new("sort")
        .arg("-u")
        .env("LC_ALL", "C")
        .stdin(jq.stdout.take().context("jq's stdout")?)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut comm = Command::new("comm")
        .arg("-23")
        .arg("-")
        .arg(ids)
        .env("LC_ALL", "C")
        .stdin(sort.stdout.take().context("sort's stdout")?)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = Vec::new();
    comm.stdout
        .take()
        .context("comm's stdout")?
        .read_to_end(&mut out)?;
    for (name, child) in [
        ("gzip", &mut gzip),
        ("jq", &mut jq),
        ("sort", &mut sort),
        ("comm", &mut comm),
    ] {
        let status = child.wait()?;
        anyhow::ensure!(
            status.success(),
            "{name} failed in the jq pipeline: {status}"
        );
    }
    Ok(out.iter().filter(|&&b| b == b'\n').count() as u64)
}

fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            list_files(&entry.path(), files)?;
        } else {
            files.push(entry.path());
        }
    }
    Ok(())
}
