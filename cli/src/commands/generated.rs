//! `recoveryctl completions SHELL` and `recoveryctl man`: shell completions and a man page,
//! generated from this CLI's own definition, so they never drift from it.

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::*;

/// Prints the completion script for `shell` on stdout.
pub(super) fn completions(shell: Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "recoveryctl", &mut out);
    write_out(&out)
}

/// Prints the man page (roff) on stdout: `recoveryctl(1)`, or `recoveryctl-COMMAND(1)`.
pub(super) fn man(command: Option<&str>) -> Result<()> {
    let mut cli = Cli::command();
    // Built, the commands know their full names (`recoveryctl-plan`) and usage.
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            Some(c) if !c.is_hide_set() => c.clone(),
            _ => {
                let names: Vec<&str> = cli
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set() && c.get_name() != "help")
                    .map(clap::Command::get_name)
                    .collect();
                return Err(anyhow::anyhow!(
                    "no command {name:?}: recoveryctl man takes one of {}",
                    names.join(", ")
                )
                .context(Invalid));
            }
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("recoveryctl {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .context("rendering the man page")?;
    write_out(&out)
}

/// Writes `bytes` on stdout; a reader that stops early (`| head`) is not an error.
fn write_out(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}
