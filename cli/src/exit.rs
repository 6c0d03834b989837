//! How `recoveryctl` ends: its exit codes, one place for the code and for `--help`.

use std::process::ExitCode;

/// How a command that did its work ended (a failure is an error, see `failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done.
    Success,
    /// `work` finished, but at least one call went to the dead-letter queue.
    DeadLettered,
    /// Ctrl-C: the messages in hand were settled and the summary printed.
    Interrupted,
}

/// A failure: what the line says failed (anything changed is said on the line).
pub(crate) const FAILED: u8 = 1;
/// Invalid arguments or configuration: nothing was tried.
pub(crate) const INVALID: u8 = 2;
const DEAD_LETTERED: u8 = 3;
/// 128 + SIGINT, as a shell reports a process Ctrl-C ended.
pub(crate) const INTERRUPTED: u8 = 130;

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::DeadLettered => DEAD_LETTERED,
            Exit::Interrupted => INTERRUPTED,
        })
    }
}

/// The exit codes, as `recoveryctl --help` lists them.
pub(crate) const HELP: &str = "\
Exit codes:
  0    success
  1    failed: the error line says what failed and whether anything was changed
  2    invalid arguments or configuration: nothing was done
  3    `work` finished, but at least one call was sent to the dead-letter queue
  130  interrupted (Ctrl-C) after the messages in hand were settled and the summary printed";
