//! `recoveryctl coverage --from DATE --to DATE [--json|--csv]` (design §9): per day, where every
//! recorded call is, from the ledgers of the runs that covered it and the worker's outcomes.

use std::io::Write;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use recovery::domain::time::format_ts;
use recovery::flows::coverage::{ContactCoverage, DayCoverage, DayCovered};

/// How the answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn date(name: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{name} {s:?} is not a date (YYYY-MM-DD)"))
}

pub(super) async fn coverage(json: bool, csv: bool, from: &str, to: &str) -> Result<()> {
    let format = match (json, csv) {
        (true, _) => Format::Json,
        (false, true) => Format::Csv,
        (false, false) => Format::Table,
    };
    let (_, _, store) = super::state(&[
        recovery::config::STATE_BUCKET,
        recovery::config::STATE_PREFIX,
    ])
    .await?;
    let (from, to) = (date("--from", from)?, date("--to", to)?);
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let report = recovery::flows::coverage::read(&store, from, to, format == Format::Csv)
        .await
        .context("reading the runs' ledgers and outcomes")?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print_csv(&report.contacts)?,
        Format::Table => print_table(from, to, &report.days),
    }
    Ok(())
}

fn print_csv(contacts: &[ContactCoverage]) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "date,contact_id,initiation_timestamp,disconnect_timestamp,kind,state,reason,run_id,chain,integrity"
    )?;
    let ts = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(format_ts).unwrap_or_default();
    for c in contacts {
        let reason = recovery::domain::ledger::csv_field(&c.reason);
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            c.date,
            c.contact_id,
            ts(c.initiation),
            ts(c.disconnect),
            if c.orphan { "orphan" } else { "eligible" },
            c.state.as_str(),
            reason,
            c.run_id,
            c.chain,
            c.integrity
        )?;
    }
    out.flush()?;
    Ok(())
}

fn percent(d: &DayCoverage) -> String {
    match (d.covered_by_runs, d.coverage_percent) {
        (DayCovered::NotCovered, _) => "no run covered this day".into(),
        (_, None) => "no recorded calls".into(),
        (_, Some(p)) => format!("{p:.2} %"),
    }
}

fn print_table(from: NaiveDate, to: NaiveDate, days: &[DayCoverage]) {
    let mut t = crate::table::table(&[
        "day",
        "runs",
        "eligible",
        "in Verint",
        "recovered",
        "already present",
        "failed",
        "unrecoverable",
        "not settled",
        "still missing",
        "orphans (recovered)",
        "chains (complete)",
        "truncated",
        "coverage",
    ]);
    for d in days {
        t.add_row(vec![
            d.date.to_string(),
            match d.covered_by_runs {
                DayCovered::Covered => "whole day".into(),
                DayCovered::Partly => "part of the day".into(),
                DayCovered::NotCovered => "none".into(),
            },
            d.eligible.to_string(),
            d.in_verint.to_string(),
            d.recovered.to_string(),
            d.already_present.to_string(),
            d.failed.to_string(),
            d.unrecoverable.to_string(),
            d.not_settled.to_string(),
            if d.restoring > 0 {
                format!("{} ({} restoring)", d.still_missing, d.restoring)
            } else {
                d.still_missing.to_string()
            },
            format!("{} ({})", d.orphans, d.orphans_recovered),
            format!("{} ({})", d.chains, d.chains_complete),
            d.truncated.to_string(),
            percent(d),
        ]);
    }
    println!("Coverage of recorded calls in Verint, {from} to {to} (UTC, by call start)");
    println!("{t}");
    for d in days {
        for (reason, n) in &d.failed_by_reason {
            println!("{}: {n} failed: {reason}", d.date);
        }
        for (reason, n) in &d.unrecoverable_by_reason {
            println!("{}: {n} unrecoverable: {reason}", d.date);
        }
        if !d.incomplete_chains.is_empty() {
            const SHOWN: usize = 20;
            let names: Vec<&str> = d
                .incomplete_chains
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect();
            let more = d.incomplete_chains.len().saturating_sub(SHOWN);
            println!(
                "{}: {} transfer chain(s) with a leg not in Verint: {}{} (recoveryctl call <id> shows one)",
                d.date,
                d.incomplete_chains.len(),
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more (--json lists them all)")
                } else {
                    String::new()
                }
            );
        }
        if d.truncated > 0 {
            println!(
                "{}: {} recovered call(s) shorter than their contact record says (truncated recording; --csv names them)",
                d.date, d.truncated
            );
        }
    }
    println!(
        "coverage = (in Verint + recovered + already present) / eligible; orphans are recordings without a contact record, counted apart"
    );
}
