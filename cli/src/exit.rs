//! How `recoveryctl` ends: its exit codes.

use std::process::ExitCode;

/// How a command that did its work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Done.
    Success,
    /// Ctrl-C: the messages in hand were settled and the summary printed.
    Interrupted,
}

/// 128 + SIGINT, as a shell reports a process Ctrl-C ended.
pub(crate) const INTERRUPTED: u8 = 130;

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Interrupted => INTERRUPTED,
        })
    }
}
