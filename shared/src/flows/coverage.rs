//! Proof of coverage (design §9): for each day (by initiation), where every recorded call is,
//! from the ledgers of the runs that covered it and the worker's outcomes. [`read`] gathers them
//! through the [`RunDocuments`] port; `CoverageBuilder` folds them, purely (no I/O, no clock).
//!
//! A contact may appear in several runs (an automatic run, then a manual one over the same day)
//! and in several outcomes (a failed attempt, then a recovered one). Its final state is, in this
//! order: recovered or already present (any outcome), in Verint (any ledger), failed (an outcome,
//! with the latest reason), then the class of the latest ledger that holds it: still missing,
//! unrecoverable or not settled. A contact that is an orphan in one run and eligible in another
//! counts as eligible.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use crate::domain::contacts::ContactKey;
use crate::domain::ledger::{LedgerClass, LedgerRow};
use crate::domain::report::OutcomeStatus;
use crate::domain::report::WorkedState;
use crate::domain::time::Window;
use crate::ports::store::RunDocuments;

/// A contact's final state, as the coverage report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalState {
    InVerint,
    Recovered,
    AlreadyPresent,
    Failed,
    Unrecoverable,
    NotSettled,
    StillMissing,
}

impl FinalState {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalState::InVerint => "in_verint",
            FinalState::Recovered => "recovered",
            FinalState::AlreadyPresent => "already_present",
            FinalState::Failed => "failed",
            FinalState::Unrecoverable => "unrecoverable",
            FinalState::NotSettled => "not_settled",
            FinalState::StillMissing => "still_missing",
        }
    }

    fn covered(self) -> bool {
        matches!(
            self,
            FinalState::InVerint | FinalState::Recovered | FinalState::AlreadyPresent
        )
    }
}

/// Whether the runs read covered the whole of a day, part of it, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayCovered {
    Covered,
    Partly,
    NotCovered,
}

/// One day's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCoverage {
    pub date: NaiveDate,
    pub covered_by_runs: DayCovered,
    pub eligible: u64,
    /// In Verint before any recovery.
    pub in_verint: u64,
    pub recovered: u64,
    pub already_present: u64,
    pub failed: u64,
    pub failed_by_reason: BTreeMap<String, u64>,
    pub unrecoverable: u64,
    pub unrecoverable_by_reason: BTreeMap<String, u64>,
    pub not_settled: u64,
    pub still_missing: u64,
    /// Recordings without a CTR among the hours read (outside `eligible`).
    pub orphans: u64,
    /// Orphans now in Verint (recovered or already present).
    pub orphans_recovered: u64,
    /// `(in_verint + recovered + already_present) / eligible`, in percent; `None` when no run
    /// covered the day or it had no eligible call.
    pub coverage_percent: Option<f64>,
}

/// One contact's final state (a row of `recoveryctl coverage --csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactCoverage {
    pub date: NaiveDate,
    pub contact_id: String,
    pub initiation: Option<DateTime<Utc>>,
    pub disconnect: Option<DateTime<Utc>>,
    pub orphan: bool,
    pub state: FinalState,
    pub reason: String,
    /// The latest run whose ledger holds the contact.
    pub run_id: String,
}

#[derive(Debug)]
struct Seen {
    initiation: Option<DateTime<Utc>>,
    disconnect: Option<DateTime<Utc>>,
    date: NaiveDate,
    /// The class of the latest ledger that holds the contact (an eligible class beats orphan).
    class: LedgerClass,
    reason: u32,
    in_verint: bool,
    run: u32,
}

/// Folds ledgers, in run order (oldest first), into per-contact final states for the days
/// `[from, to]`.
#[derive(Debug)]
pub(crate) struct CoverageBuilder {
    from: NaiveDate,
    to: NaiveDate,
    contacts: HashMap<ContactKey, Seen>,
    /// Reasons and run ids are few; contacts refer to them by index.
    reasons: Vec<String>,
    reason_index: HashMap<String, u32>,
    runs: Vec<String>,
    windows: Vec<Window>,
}

impl CoverageBuilder {
    /// `from` and `to` are both included.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        CoverageBuilder {
            from,
            to,
            contacts: HashMap::new(),
            reasons: vec![String::new()],
            reason_index: HashMap::from([(String::new(), 0)]),
            runs: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// The first instant after the last day.
    fn end(&self) -> DateTime<Utc> {
        midnight(self.to) + TimeDelta::days(1)
    }

    /// Starts a run: its id and the window it read (its report's window, if any). Runs must be
    /// added oldest first.
    pub fn run(&mut self, run_id: &str, window: Option<Window>) {
        self.runs.push(run_id.to_owned());
        if let Some(w) = window {
            self.windows.push(w);
        }
    }

    fn reason(&mut self, reason: &str) -> u32 {
        if let Some(&i) = self.reason_index.get(reason) {
            return i;
        }
        let i = u32::try_from(self.reasons.len()).unwrap_or(u32::MAX);
        self.reasons.push(reason.to_owned());
        self.reason_index.insert(reason.to_owned(), i);
        i
    }

    /// Adds a row; `held` says Verint held the contact when the run asked (an orphan the run
    /// did not queue), as `in_verint` says it of an eligible one.
    pub(crate) fn row_held(&mut self, row: LedgerRow, held: bool) {
        let Some(initiation) = row.initiation else {
            return;
        };
        let date = initiation.date_naive();
        if date < self.from || date > self.to {
            return;
        }
        let run = u32::try_from(self.runs.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let reason = self.reason(&row.reason);
        let key = ContactKey::new(&row.contact_id.to_ascii_lowercase());
        match self.contacts.get_mut(&key) {
            Some(seen) => {
                seen.in_verint |= held || row.class == LedgerClass::InVerint;
                // An orphan row never replaces an eligible one: the CTR arrived after all.
                if row.class != LedgerClass::Orphan || seen.class == LedgerClass::Orphan {
                    seen.class = row.class;
                    seen.reason = reason;
                    seen.initiation = Some(initiation);
                    seen.disconnect = row.disconnect.or(seen.disconnect);
                    seen.date = date;
                }
                seen.run = run;
            }
            None => {
                self.contacts.insert(
                    key,
                    Seen {
                        initiation: Some(initiation),
                        disconnect: row.disconnect,
                        date,
                        in_verint: held || row.class == LedgerClass::InVerint,
                        class: row.class,
                        reason,
                        run,
                    },
                );
            }
        }
    }

    fn final_state(
        seen: &Seen,
        worked: Option<&WorkedState>,
    ) -> (FinalState, Option<u32>, Option<String>) {
        match worked.map(|w| (w.status, w.reason.clone())) {
            Some((OutcomeStatus::Recovered, _)) => (FinalState::Recovered, None, None),
            Some((OutcomeStatus::AlreadyPresent, _)) => (FinalState::AlreadyPresent, None, None),
            _ if seen.in_verint => (FinalState::InVerint, None, None),
            Some((OutcomeStatus::Failed, reason)) => {
                (FinalState::Failed, None, Some(reason.unwrap_or_default()))
            }
            None => match seen.class {
                LedgerClass::InVerint => (FinalState::InVerint, None, None),
                LedgerClass::Unrecoverable => (FinalState::Unrecoverable, Some(seen.reason), None),
                LedgerClass::NotSettled => (FinalState::NotSettled, None, None),
                LedgerClass::Missing | LedgerClass::Orphan => {
                    (FinalState::StillMissing, None, None)
                }
            },
        }
    }

    /// Whether the runs' windows cover a day entirely, partly, or not at all.
    fn day_covered(&self, date: NaiveDate) -> DayCovered {
        let day = Window {
            start: midnight(date),
            end: midnight(date) + TimeDelta::days(1),
        };
        let mut parts: Vec<(DateTime<Utc>, DateTime<Utc>)> = self
            .windows
            .iter()
            .filter(|w| w.start < day.end && day.start < w.end)
            .map(|w| (w.start.max(day.start), w.end.min(day.end)))
            .collect();
        if parts.is_empty() {
            return DayCovered::NotCovered;
        }
        parts.sort();
        let mut reach = day.start;
        for (s, e) in parts {
            if s > reach {
                return DayCovered::Partly;
            }
            reach = reach.max(e);
        }
        if reach >= day.end {
            DayCovered::Covered
        } else {
            DayCovered::Partly
        }
    }

    /// The figures per day of `[from, to]` (every day, covered or not), and, when asked, every
    /// contact's final state sorted by day and id.
    pub fn finish(
        self,
        worked: &HashMap<ContactKey, WorkedState>,
        with_contacts: bool,
    ) -> (Vec<DayCoverage>, Vec<ContactCoverage>) {
        let mut days: BTreeMap<NaiveDate, DayCoverage> = BTreeMap::new();
        let mut date = self.from;
        while date <= self.to && midnight(date) < self.end() {
            days.insert(date, empty_day(date, self.day_covered(date)));
            date += TimeDelta::days(1);
        }
        let mut contacts = Vec::new();
        for (key, seen) in &self.contacts {
            let (state, unrecoverable_reason, failed_reason) =
                Self::final_state(seen, worked.get(key));
            let reason = match (unrecoverable_reason, &failed_reason) {
                (Some(i), _) => self.reasons[i as usize].clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => String::new(),
            };
            let orphan = seen.class == LedgerClass::Orphan;
            let Some(day) = days.get_mut(&seen.date) else {
                continue;
            };
            if orphan {
                day.orphans += 1;
                if matches!(
                    state,
                    FinalState::Recovered | FinalState::AlreadyPresent | FinalState::InVerint
                ) {
                    day.orphans_recovered += 1;
                }
            } else {
                day.eligible += 1;
                match state {
                    FinalState::InVerint => day.in_verint += 1,
                    FinalState::Recovered => day.recovered += 1,
                    FinalState::AlreadyPresent => day.already_present += 1,
                    FinalState::Failed => {
                        day.failed += 1;
                        *day.failed_by_reason.entry(reason.clone()).or_default() += 1;
                    }
                    FinalState::Unrecoverable => {
                        day.unrecoverable += 1;
                        *day.unrecoverable_by_reason
                            .entry(reason.clone())
                            .or_default() += 1;
                    }
                    FinalState::NotSettled => day.not_settled += 1,
                    FinalState::StillMissing => day.still_missing += 1,
                }
            }
            if with_contacts {
                contacts.push(ContactCoverage {
                    date: seen.date,
                    contact_id: key.to_string(),
                    initiation: seen.initiation,
                    disconnect: seen.disconnect,
                    orphan,
                    state,
                    reason,
                    run_id: self
                        .runs
                        .get(seen.run as usize)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
        }
        for day in days.values_mut() {
            let covered = day.in_verint + day.recovered + day.already_present;
            day.coverage_percent = (day.covered_by_runs != DayCovered::NotCovered
                && day.eligible > 0)
                .then(|| 100.0 * covered as f64 / day.eligible as f64);
        }
        contacts.sort_by(|a, b| (a.date, &a.contact_id).cmp(&(b.date, &b.contact_id)));
        debug_assert!(
            contacts
                .iter()
                .all(|c| !c.state.covered() || c.reason.is_empty())
        );
        (days.into_values().collect(), contacts)
    }
}

/// What `recoveryctl coverage` shows for `[from, to]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The runs whose ledgers were read.
    pub runs_read: usize,
    pub days: Vec<DayCoverage>,
    /// Every contact's final state, when asked for (`--csv`).
    #[serde(skip)]
    pub contacts: Vec<ContactCoverage>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("the run state could not be read")]
    State(#[from] crate::ports::store::StateError),
    #[error("the ledger of run {run_id} could not be read")]
    Ledger {
        run_id: String,
        #[source]
        source: crate::domain::ledger::LedgerError,
    },
}

/// Reads the runs that may hold contacts of `[from, to]` (their reports, each ledger once, and
/// what the worker achieved) and folds them. A contact's CTR arrives after it starts, so a run
/// whose window ends before `from` holds none of them and is not read.
pub async fn read(
    store: &impl RunDocuments,
    from: NaiveDate,
    to: NaiveDate,
    with_contacts: bool,
) -> Result<CoverageReport, CoverageError> {
    use futures::{StreamExt, TryStreamExt};
    let start = midnight(from);
    let mut ids = store.run_ids().await?;
    ids.reverse();
    let reports: Vec<Option<crate::domain::report::RunReport>> =
        futures::stream::iter(ids.iter().map(|id| store.report(id)))
            .buffered(16)
            .try_collect()
            .await?;
    let runs: Vec<(String, Window, std::collections::HashSet<String>)> = ids
        .iter()
        .zip(reports)
        .filter_map(|(id, r)| {
            let r = r?;
            let w = r.window.as_ref()?;
            let window = Window {
                start: crate::domain::time::parse_ts(&w.start)?,
                end: crate::domain::time::parse_ts(&w.end)?,
            };
            let queued_orphans = r
                .orphan_contact_ids
                .iter()
                .map(|id| id.to_ascii_lowercase())
                .collect();
            Some((id.clone(), window, queued_orphans))
        })
        .filter(|(_, w, _)| w.end > start)
        .collect();

    let mut builder = CoverageBuilder::new(from, to);
    let mut worked = HashMap::new();
    let mut ledgers =
        futures::stream::iter(runs.iter().map(|(id, ..)| store.ledger_bytes(id))).buffered(4);
    let mut runs_read = 0;
    for (id, window, queued_orphans) in &runs {
        let Some(bytes) = ledgers.next().await else {
            break;
        };
        let ledger_error = |source| CoverageError::Ledger {
            run_id: id.clone(),
            source,
        };
        // A run older than ledgers: its window is no evidence of coverage.
        let Some(bytes) = bytes.map_err(ledger_error)? else {
            continue;
        };
        runs_read += 1;
        builder.run(id, Some(*window));
        for row in crate::domain::ledger::rows_of(&bytes) {
            let row = row.map_err(ledger_error)?;
            // An orphan the run did not queue was found in Verint (or Connect did not know it).
            let held = row.class == LedgerClass::Orphan
                && !queued_orphans.contains(&row.contact_id.to_ascii_lowercase());
            builder.row_held(row, held);
        }
        store.worked(id, &mut worked).await?;
    }
    let (days, contacts) = builder.finish(&worked, with_contacts);
    Ok(CoverageReport {
        from,
        to,
        runs_read,
        days,
        contacts,
    })
}

fn empty_day(date: NaiveDate, covered_by_runs: DayCovered) -> DayCoverage {
    DayCoverage {
        date,
        covered_by_runs,
        eligible: 0,
        in_verint: 0,
        recovered: 0,
        already_present: 0,
        failed: 0,
        failed_by_reason: BTreeMap::new(),
        unrecoverable: 0,
        unrecoverable_by_reason: BTreeMap::new(),
        not_settled: 0,
        still_missing: 0,
        orphans: 0,
        orphans_recovered: 0,
        coverage_percent: None,
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::Outcome;
    use crate::domain::time::parse_ts;
    use crate::ports::store::MemoryRunDocuments;

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    const C: &str = "cccccccc-0000-4000-8000-000000000003";
    const D: &str = "dddddddd-0000-4000-8000-000000000004";

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn row(id: &str, at: &str, class: LedgerClass, reason: &str) -> LedgerRow {
        let t = parse_ts(at).expect("ts");
        LedgerRow {
            contact_id: id.into(),
            initiation: Some(t),
            disconnect: Some(t + TimeDelta::minutes(5)),
            class,
            reason: reason.into(),
        }
    }

    fn whole_day(s: &str) -> Option<Window> {
        Some(Window {
            start: midnight(day(s)),
            end: midnight(day(s)) + TimeDelta::days(1),
        })
    }

    fn worked(status: OutcomeStatus, reason: Option<&str>) -> WorkedState {
        WorkedState {
            status,
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_day_sums_its_contacts_final_states_and_its_coverage() {
        let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-11-30"));
        b.run("r1", whole_day("2026-11-30"));
        b.row_held(
            row(A, "2026-11-30T09:00:00Z", LedgerClass::InVerint, ""),
            false,
        );
        b.row_held(
            row(B, "2026-11-30T10:00:00Z", LedgerClass::Missing, ""),
            false,
        );
        b.row_held(
            row(C, "2026-11-30T11:00:00Z", LedgerClass::Missing, ""),
            false,
        );
        b.row_held(
            row(
                D,
                "2026-11-30T12:00:00Z",
                LedgerClass::Unrecoverable,
                "deleted",
            ),
            false,
        );
        let mut w = HashMap::new();
        WorkedState::merge(
            &mut w,
            ContactKey::new(B),
            worked(OutcomeStatus::Failed, Some("verint_rejected")),
        );
        WorkedState::merge(
            &mut w,
            ContactKey::new(B),
            worked(OutcomeStatus::Recovered, None),
        );
        WorkedState::merge(
            &mut w,
            ContactKey::new(C),
            worked(OutcomeStatus::Failed, Some("verint_rejected")),
        );
        let (days, contacts) = b.finish(&w, true);
        let d = &days[0];
        assert_eq!(d.covered_by_runs, DayCovered::Covered);
        assert_eq!(
            (
                d.eligible,
                d.in_verint,
                d.recovered,
                d.failed,
                d.unrecoverable
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(d.failed_by_reason.get("verint_rejected"), Some(&1));
        assert_eq!(d.unrecoverable_by_reason.get("deleted"), Some(&1));
        assert_eq!(d.coverage_percent, Some(50.0));
        let states: Vec<_> = contacts.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            [
                FinalState::InVerint,
                FinalState::Recovered,
                FinalState::Failed,
                FinalState::Unrecoverable
            ]
        );
    }

    #[test]
    fn a_day_no_run_covered_is_named_so_never_a_hundred_percent() {
        let mut b = CoverageBuilder::new(day("2026-11-29"), day("2026-11-30"));
        b.run("r1", whole_day("2026-11-30"));
        b.row_held(
            row(A, "2026-11-30T09:00:00Z", LedgerClass::InVerint, ""),
            false,
        );
        let (days, _) = b.finish(&HashMap::new(), false);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].covered_by_runs, DayCovered::NotCovered);
        assert_eq!(days[0].coverage_percent, None);
        assert_eq!(days[1].coverage_percent, Some(100.0));
    }

    #[test]
    fn hourly_windows_that_leave_a_gap_cover_a_day_partly() {
        let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-11-30"));
        let t = |s: &str| parse_ts(s).expect("ts");
        b.run(
            "r1",
            Some(Window {
                start: t("2026-11-30T00:00:00Z"),
                end: t("2026-11-30T12:00:00Z"),
            }),
        );
        b.run(
            "r2",
            Some(Window {
                start: t("2026-11-30T13:00:00Z"),
                end: t("2026-12-01T00:00:00Z"),
            }),
        );
        let (days, _) = b.finish(&HashMap::new(), false);
        assert_eq!(days[0].covered_by_runs, DayCovered::Partly);
    }

    #[test]
    fn a_later_run_that_finds_the_contact_in_verint_does_not_undo_a_recovery() {
        let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-11-30"));
        b.run("r1", whole_day("2026-11-30"));
        b.row_held(
            row(A, "2026-11-30T09:00:00Z", LedgerClass::Missing, ""),
            false,
        );
        b.run("r2", whole_day("2026-11-30"));
        b.row_held(
            row(
                &A.to_uppercase(),
                "2026-11-30T09:00:00Z",
                LedgerClass::InVerint,
                "",
            ),
            false,
        );
        let mut w = HashMap::new();
        WorkedState::merge(
            &mut w,
            ContactKey::new(A),
            worked(OutcomeStatus::Recovered, None),
        );
        let (days, contacts) = b.finish(&w, true);
        assert_eq!(
            (days[0].eligible, days[0].recovered, days[0].in_verint),
            (1, 1, 0)
        );
        assert_eq!(contacts[0].run_id, "r2");
    }

    #[test]
    fn an_orphan_counts_outside_eligible_unless_its_ctr_arrives_later() {
        let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-11-30"));
        b.run("r1", whole_day("2026-11-30"));
        b.row_held(
            row(A, "2026-11-30T09:00:00Z", LedgerClass::Orphan, ""),
            false,
        );
        b.row_held(
            row(B, "2026-11-30T09:00:00Z", LedgerClass::Orphan, ""),
            false,
        );
        b.run("r2", whole_day("2026-11-30"));
        b.row_held(
            row(B, "2026-11-30T09:00:00Z", LedgerClass::Missing, ""),
            false,
        );
        let mut w = HashMap::new();
        WorkedState::merge(
            &mut w,
            ContactKey::new(A),
            worked(OutcomeStatus::Recovered, None),
        );
        let (days, _) = b.finish(&w, false);
        let d = &days[0];
        assert_eq!(
            (d.orphans, d.orphans_recovered, d.eligible, d.still_missing),
            (1, 1, 1, 1)
        );
        assert_eq!(d.coverage_percent, Some(0.0));
    }

    /// A manual run over 2026-11-30 whose report and ledger are in `store`.
    async fn stored_run(store: &MemoryRunDocuments, run_id: &str, rows: &[LedgerRow]) {
        use crate::domain::report::{CtrCounts, Mode, ReportWindow, RunReport, WindowBy};
        let report = RunReport {
            run_id: run_id.into(),
            mode: Mode::Manual,
            dry_run: false,
            window: Some(ReportWindow {
                start: "2026-11-30T00:00:00Z".into(),
                end: "2026-12-01T00:00:00Z".into(),
                by: WindowBy::Initiation,
            }),
            ctr: CtrCounts::default(),
            eligible: rows.len() as u64,
            in_verint: 0,
            not_settled: 0,
            missing: 0,
            enqueued: 0,
            missing_contact_ids: vec![],
            unrecoverable: vec![],
            late_hours: vec![],
            duration_ms: 1,
            orphans: 0,
            orphan_lookups_failed: 0,
            already_queued: 0,
            complete: true,
            orphan_contact_ids: vec![],
            slices: None,
        };
        store
            .put_run_json(run_id, "report.json", &report)
            .await
            .expect("written");
        let mut encoder = crate::domain::ledger::LedgerEncoder::new();
        let mut gz = Vec::new();
        for r in rows {
            gz.extend(encoder.push(r).unwrap_or_default());
        }
        gz.extend(encoder.finish());
        store
            .ledgers
            .lock()
            .expect("unpoisoned")
            .insert(run_id.into(), gz);
    }

    #[tokio::test]
    async fn a_day_is_read_from_the_runs_ledgers_and_the_workers_outcomes() {
        let store = MemoryRunDocuments::default();
        stored_run(
            &store,
            "2026-12-01T01-00-00Z-manual",
            &[
                row(A, "2026-11-30T09:00:00Z", LedgerClass::InVerint, ""),
                row(B, "2026-11-30T10:00:00Z", LedgerClass::Missing, ""),
                row(C, "2026-11-30T11:00:00Z", LedgerClass::Missing, ""),
            ],
        )
        .await;
        let outcome = Outcome {
            contact_id: B.into(),
            status: OutcomeStatus::Recovered,
            attempt: 1,
            reason: None,
            bytes: 42,
            interaction_id: Some("i-1".into()),
            at: "2026-12-01T01:10:00Z".into(),
        };
        store
            .put_run_json(
                "2026-12-01T01-00-00Z-manual",
                &format!("outcomes/{B}.json"),
                &outcome,
            )
            .await
            .expect("written");

        let report = read(&store, day("2026-11-30"), day("2026-11-30"), false)
            .await
            .expect("read");
        assert_eq!(report.runs_read, 1);
        let d = &report.days[0];
        assert_eq!(d.covered_by_runs, DayCovered::Covered);
        assert_eq!(
            (d.eligible, d.in_verint, d.recovered, d.still_missing),
            (3, 1, 1, 1)
        );
    }
}
