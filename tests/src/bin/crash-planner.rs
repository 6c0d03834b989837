//! The planner killed at random points (issue 10's crash test, benchmark-style, not CI): a day of
//! CTRs in a private corner of the local stack, some objects held back and delivered late into
//! hours already read, `TRIALS` automatic runs of `recoveryctl plan --auto`, each SIGKILLed after
//! a random delay unless it finished first; then automatic runs to completion. It checks that
//! the checkpoint parsed after every trial and that every missing contact of every settled hour
//! was queued at least once. Driven by `scripts/crash-planner.sh`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use local_stack::generate::{self, DaySpec, Object};
use local_stack::stack::{INSTANCE, Stack, midnight, past_day};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use recovery::domain::report::RunReport;
use recovery::domain::time::parse_ts;
use recovery::ports::store::RunStore as _;

#[derive(Debug, Parser)]
#[command(
    about = "Kills the planner at random points of automatic runs and checks nothing is lost"
)]
struct Args {
    /// The `recoveryctl` binary to run.
    #[arg(long)]
    recoveryctl: PathBuf,
    /// Automatic runs, each killed at a random point unless it finishes first.
    #[arg(long, default_value_t = 100)]
    trials: u32,
    /// Contacts in the generated day.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Seeds the day and the kill points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Arrival hours per run (`MAX_HOURS_PER_RUN`): small, so the trials cover the day.
    #[arg(long, default_value_t = 2)]
    hours_per_run: u32,
    /// One object in this many is held back and delivered late into an hour already read.
    #[arg(long, default_value_t = 6)]
    hold_back_every: usize,
}

/// How a child run ended.
enum Ended {
    Finished(Box<RunReport>),
    Failed(String),
    Killed,
}

async fn run_planner(
    args: &Args,
    stack: &Stack,
    kill_after: Option<Duration>,
    dry_run: bool,
) -> anyhow::Result<(Ended, Duration)> {
    let mut cmd = tokio::process::Command::new(&args.recoveryctl);
    cmd.args(["plan", "--auto", "--json"]);
    if dry_run {
        cmd.arg("--dry-run");
    }
    cmd.env_clear()
        .envs(&stack.vars)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().context("spawning recoveryctl")?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let read_out = tokio::spawn(read_all(stdout));
    let read_err = tokio::spawn(read_all(stderr));
    let status = match kill_after {
        None => Some(child.wait().await?),
        Some(d) => match tokio::time::timeout(d, child.wait()).await {
            Ok(status) => Some(status?),
            Err(_) => {
                child.start_kill()?;
                child.wait().await?;
                None
            }
        },
    };
    let elapsed = started.elapsed();
    let out = read_out.await??;
    let err = read_err.await??;
    let ended = match status {
        None => Ended::Killed,
        Some(s) if s.success() => Ended::Finished(Box::new(
            serde_json::from_slice(&out).context("recoveryctl --json printed no report")?,
        )),
        Some(s) => Ended::Failed(format!("{s}: {}", String::from_utf8_lossy(&err).trim())),
    };
    Ok((ended, elapsed))
}

async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await?;
    Ok(buf)
}

async fn put(stack: &Stack, o: &Object) -> anyhow::Result<()> {
    stack
        .s3
        .put_object()
        .bucket(&o.bucket)
        .key(&o.key)
        .body(o.body.clone().into())
        .send()
        .await
        .with_context(|| format!("put {}", o.key))?;
    Ok(())
}

/// The arrival hour in an object's key (`…/YYYY/MM/DD/HH/name`).
fn hour_of(key: &str) -> Option<DateTime<Utc>> {
    let parts: Vec<&str> = key.rsplit('/').skip(1).take(4).collect();
    let [h, d, m, y] = parts.as_slice() else {
        return None;
    };
    parse_ts(&format!("{y}-{m}-{d}T{h}:00:00Z"))
}

/// The checkpoint must parse after every trial; its next hour, if any.
async fn whole_checkpoint(stack: &Stack) -> anyhow::Result<Option<DateTime<Utc>>> {
    let (c, _) = stack
        .store()
        .checkpoint()
        .await
        .context("the checkpoint is not whole")?;
    Ok(c.and_then(|c| c.next_hour()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let date = past_day();
    let lookback = format!("{}h", (Utc::now() - midnight(date)).num_hours());
    let hours = args.hours_per_run.to_string();
    let stack = Stack::new(&[
        ("INITIAL_LOOKBACK", lookback.as_str()),
        ("MAX_HOURS_PER_RUN", hours.as_str()),
    ])
    .await?;

    let mut spec = DaySpec::new(args.seed, date, INSTANCE);
    spec.calls = args.calls;
    spec.ctr_bucket = stack.ctr_bucket.clone();
    spec.ctr_prefix = stack.vars["CTR_PREFIX"].clone();
    spec.recordings_bucket = stack.recordings_bucket.clone();
    spec.recording_bytes = 16..64;
    let day = generate::day(&spec);
    stack.sim.state().seed_verint(day.verint.clone());
    stack.sim.state().seed_connect(day.connect.clone());
    let mut held: BTreeMap<String, (DateTime<Utc>, Object)> = BTreeMap::new();
    for (i, o) in day.ctr_objects.iter().enumerate() {
        match hour_of(&o.key) {
            Some(h) if args.hold_back_every > 0 && i % args.hold_back_every == 1 => {
                held.insert(o.key.clone(), (h, o.clone()));
            }
            _ => put(&stack, o).await?,
        }
    }
    let expected: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.missing())
        .map(|t| t.contact_id.clone())
        .collect();
    eprintln!(
        "crash-planner: {} objects ({} held back for late delivery), {} missing calls, {} trials",
        day.ctr_objects.len(),
        held.len(),
        expected.len(),
        args.trials
    );

    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let sweep = TimeDelta::hours(24);
    let (mut kills, mut finished, mut failed, mut late_delivered, mut late_hours_read) =
        (0u32, 0u32, 0u32, 0usize, 0usize);
    // A run's length, from three automatic runs that are not killed (not counted as trials):
    // kill points are drawn uniformly over 1.5 times the longest, so most land inside a run.
    let mut typical = Duration::ZERO;
    for _ in 0..3 {
        let (ended, elapsed) = run_planner(&args, &stack, None, false).await?;
        if let Ended::Failed(e) = ended {
            bail!("a calibration run failed: {e}");
        }
        typical = typical.max(elapsed);
    }
    eprintln!(
        "crash-planner: a run takes up to {typical:?} at first; kill points in [0, 1.5x) of a running estimate"
    );
    for trial in 0..args.trials {
        let kill_after = typical.mul_f64(rng.random_range(0.0..1.5));
        let (ended, elapsed) = run_planner(&args, &stack, Some(kill_after), false).await?;
        // Runs grow longer as the checkpoint remembers hours to sweep: a run still going past
        // the estimate raises it, a finished one pulls it towards its own length.
        match ended {
            Ended::Killed => {
                kills += 1;
                if kill_after >= typical {
                    typical = typical.mul_f64(1.25);
                }
            }
            Ended::Finished(r) => {
                finished += 1;
                late_hours_read += r.late_hours.len();
                typical = (typical + elapsed) / 2;
            }
            Ended::Failed(e) => {
                failed += 1;
                eprintln!("crash-planner: trial {trial} failed: {e}");
            }
        }
        let Some(next) = whole_checkpoint(&stack).await? else {
            continue;
        };
        // Deliver held-back objects late into hours already read, while they are in the sweep.
        let due: Vec<String> = held
            .iter()
            .filter(|(_, (h, _))| *h < next && next - *h <= sweep)
            .filter(|(_, (h, _))| next - *h >= TimeDelta::hours(20) || rng.random_bool(0.3))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some((_, o)) = held.remove(&k) {
                put(&stack, &o).await?;
                late_delivered += 1;
            }
        }
    }
    // Objects whose hour was never passed arrive now, on time; none may have left the sweep.
    let next = whole_checkpoint(&stack).await?;
    for (k, (h, o)) in std::mem::take(&mut held) {
        if let Some(next) = next
            && h < next
            && next - h > sweep
        {
            bail!("held-back object {k} missed its sweep window: the script's own bug");
        }
        put(&stack, &o).await?;
    }

    // Then automatic runs to completion.
    let mut to_finish = 0;
    loop {
        to_finish += 1;
        if to_finish > 500 {
            bail!("the runs did not complete");
        }
        match run_planner(&args, &stack, None, false).await?.0 {
            Ended::Finished(r) => {
                late_hours_read += r.late_hours.len();
                if r.window.is_none() {
                    break;
                }
            }
            Ended::Failed(e) => bail!("a run to completion failed: {e}"),
            Ended::Killed => bail!("a run without a kill point was killed"),
        }
    }
    let final_next = whole_checkpoint(&stack).await?.context("a checkpoint")?;
    let last_hour = day
        .truth
        .iter()
        .flat_map(|t| t.arrival_hours.iter().copied())
        .max()
        .context("arrival hours")?;
    if final_next <= last_hour {
        bail!("the checkpoint stopped at {final_next}, before the last hour {last_hour}");
    }

    let messages = Stack::all_messages(&stack.work_queue).await?;
    let mut queued = HashSet::new();
    for m in &messages {
        let body: serde_json::Value = serde_json::from_str(&m.body)?;
        if let Some(id) = body["contact_id"].as_str() {
            queued.insert(id.to_owned());
        }
    }
    let lost: Vec<&String> = expected.difference(&queued).collect();
    println!(
        "trials={} kills={kills} finished={finished} failed={failed} runs_to_completion={to_finish} late_objects={late_delivered} late_hours_read={late_hours_read} expected={} queued_unique={} messages={} lost={} checkpoint_whole=yes typical_run_ms={} last_hour={} next_hour={}",
        args.trials,
        expected.len(),
        queued.len(),
        messages.len(),
        lost.len(),
        typical.as_millis(),
        recovery::domain::time::format_ts(last_hour),
        recovery::domain::time::format_ts(final_next),
    );
    if !lost.is_empty() {
        bail!("lost {} missing calls: {lost:?}", lost.len());
    }
    if failed > 0 {
        bail!("{failed} trial(s) failed without being killed");
    }
    Ok(())
}
