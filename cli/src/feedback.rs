//! What a person at a terminal sees while a command works: a progress line on stderr that keeps
//! ticking, and log lines (retries, warnings) printed above it rather than through it.
//!
//! All of it only when stderr is a terminal and the output is not `--json`: a pipe, a file or a
//! JSON reader gets no bar, no spinner and no colour.

use std::io::{IsTerminal, Write};
use std::sync::LazyLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Every progress line is drawn through this, so that a log line can clear them, print, and let
/// them be drawn again below it.
static LINES: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// How often a progress line is redrawn on its own (its spinner and elapsed time), so that a
/// phase the library reports nothing about never looks frozen.
const TICK: Duration = Duration::from_millis(120);

/// True when a person is watching: stderr is a terminal and the output is not JSON.
pub(crate) fn interactive(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// True when the log may be coloured: someone is watching and `NO_COLOR` is not set.
pub(crate) fn colour(json: bool) -> bool {
    interactive(json) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A progress line on stderr with `template` (indicatif's), ticking on its own; hidden unless
/// [`interactive`].
pub(crate) fn line(json: bool, len: u64, template: &str) -> ProgressBar {
    if !interactive(json) {
        return ProgressBar::hidden();
    }
    let pb = LINES.add(ProgressBar::new(len).with_style(style(template)));
    pb.enable_steady_tick(TICK);
    pb
}

/// indicatif's style for `template`, with the spinner every line uses.
pub(crate) fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

/// Prints `text` on stderr above any progress line (a note to the operator, not a log line).
pub(crate) fn note(text: &str) {
    LINES.suspend(|| eprintln!("{text}"));
}

/// The log's writer: stderr, with the progress lines cleared while a line is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.suspend(|| std::io::stderr().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        LINES.suspend(|| std::io::stderr().lock().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A rate per minute of `n` events over `elapsed`; `None` before there is anything to measure.
pub(crate) fn per_minute(n: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (n > 0 && secs >= 1.0).then(|| n as f64 * 60.0 / secs)
}

/// How long `left` more take at `per_minute`, rounded to whole seconds (whole minutes past an
/// hour): a guess, said as one.
pub(crate) fn eta(left: u64, per_minute: f64) -> Option<String> {
    if !per_minute.is_finite() || per_minute <= 0.0 {
        return None;
    }
    let secs = (left as f64 * 60.0 / per_minute).ceil() as u64;
    let secs = if secs >= 3600 { secs / 60 * 60 } else { secs };
    Some(humantime::format_duration(Duration::from_secs(secs)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_per_minute_and_waits_for_a_second_of_work() {
        assert_eq!(per_minute(30, Duration::from_secs(60)), Some(30.0));
        assert_eq!(per_minute(5, Duration::from_secs(30)), Some(10.0));
        assert_eq!(per_minute(0, Duration::from_secs(60)), None);
        assert_eq!(per_minute(3, Duration::from_millis(200)), None);
    }

    #[test]
    fn an_eta_is_what_is_left_at_the_rate_rounded_to_minutes_past_an_hour() {
        assert_eq!(eta(30, 10.0).as_deref(), Some("3m"));
        assert_eq!(eta(25, 10.0).as_deref(), Some("2m 30s"));
        assert_eq!(eta(1000, 10.0).as_deref(), Some("1h 40m"));
        assert_eq!(eta(10, 0.0), None);
        assert_eq!(eta(0, 10.0).as_deref(), Some("0s"));
    }
}
