//! What the benchmark binaries share when they run a summary: a child timed by `/usr/bin/time -v`
//! (peak RSS and CPU share, as the kernel counted them), the `key: value` lines it prints, and
//! the tools the baselines need.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

/// A child run under `/usr/bin/time -v`: what it printed and what `time` measured.
#[derive(Debug)]
pub struct Timed {
    pub stdout: String,
    /// `Maximum resident set size`, in KiB.
    pub max_rss_kib: u64,
    /// `Percent of CPU this job got`, as `time` prints it (`123%`).
    pub cpu: String,
}

impl Timed {
    /// The first word of the value of a `key: value` line of the child's output.
    pub fn field(&self, key: &str) -> anyhow::Result<&str> {
        field(&self.stdout, key)
    }

    /// The child's peak RSS in MiB, rounded.
    pub fn rss_mib(&self) -> u64 {
        (self.max_rss_kib as f64 / 1024.0).round() as u64
    }
}

/// The first word of the value of a `key: value` line of `out`.
pub fn field<'a>(out: &'a str, key: &str) -> anyhow::Result<&'a str> {
    out.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == key))
        .and_then(|(_, v)| v.split_whitespace().next())
        .with_context(|| format!("no '{key}:' line in the output"))
}

/// Runs `cmd` under `/usr/bin/time -v` (its report written to `report`), echoing its output.
pub fn time_v(cmd: &Command, report: &Path) -> anyhow::Result<Timed> {
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-v").arg("-o").arg(report).arg(cmd.get_program());
    timed.args(cmd.get_args()).stderr(Stdio::inherit());
    let out = timed.output().context("running /usr/bin/time")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        out.status
    );
    let report = std::fs::read_to_string(report)?;
    let value = |key: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim_start_matches(':').trim().to_owned())
            .with_context(|| format!("no '{key}' in the report of /usr/bin/time"))
    };
    Ok(Timed {
        max_rss_kib: value("Maximum resident set size (kbytes)")?.parse()?,
        cpu: value("Percent of CPU this job got")?,
        stdout,
    })
}

/// Fails, naming the package that provides it, unless `tool` is on PATH (or is a path that exists).
pub fn require(tool: &str) -> anyhow::Result<()> {
    let found = if tool.contains('/') {
        Path::new(tool).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    let package = tool.rsplit('/').next().unwrap_or(tool);
    anyhow::ensure!(found, "{tool} is required: apt-get install -y {package}");
    Ok(())
}

/// A figure rounded to `places` decimals, as the summary prints it and compares it.
pub fn round(x: f64, places: usize) -> f64 {
    format!("{x:.places$}").parse().unwrap_or(x)
}
