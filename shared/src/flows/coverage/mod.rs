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
    /// Of `still_missing`, those waiting for an archived recording's restore (design §10).
    pub restoring: u64,
    /// Of `recovered`, those whose recording was shorter than its CTR says (design §10).
    pub truncated: u64,
    /// Recordings without a CTR among the hours read (outside `eligible`).
    pub orphans: u64,
    /// Orphans now in Verint (recovered or already present).
    pub orphans_recovered: u64,
    /// Transfer chains whose earliest leg in the ledgers began this day (design §11).
    pub chains: u64,
    /// Of `chains`, those whose every leg is in Verint, recovered, already present or
    /// unrecoverable.
    pub chains_complete: u64,
    /// The chains of `chains` with a leg still to recover, by id: named, not averaged away.
    pub incomplete_chains: Vec<String>,
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
    /// `truncated` when its recording was shorter than its CTR says (design §10), else empty.
    pub integrity: String,
    /// Its transfer chain's id: the chain's first leg (design §11).
    pub chain: String,
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
    /// Its chain's first leg, when it is a later leg (design §11).
    chain: Option<ContactKey>,
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
        // A day either side is kept too: a transfer chain's legs can fall on two days.
        if date < self.from - TimeDelta::days(1) || date > self.to + TimeDelta::days(1) {
            return;
        }
        let chain = (!row.initial_contact_id.is_empty())
            .then(|| ContactKey::new(&row.initial_contact_id.to_ascii_lowercase()));
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
                    seen.chain = chain.or(seen.chain.take());
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
                        chain,
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
            // Still to be recovered, with the restore it waits for as its reason.
            Some((OutcomeStatus::Restoring, reason)) => (
                FinalState::StillMissing,
                None,
                Some(reason.unwrap_or_default()),
            ),
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
        // Each chain: the day of its earliest leg, whether every leg is accounted for.
        let mut chains: HashMap<ContactKey, (NaiveDate, bool)> = HashMap::new();
        for (key, seen) in &self.contacts {
            if seen.class == LedgerClass::Orphan {
                continue;
            }
            let (state, ..) = Self::final_state(seen, worked.get(key));
            let done = state.covered() || state == FinalState::Unrecoverable;
            let id = seen.chain.clone().unwrap_or_else(|| key.clone());
            let chain = chains.entry(id).or_insert((seen.date, true));
            chain.0 = chain.0.min(seen.date);
            chain.1 &= done;
        }
        for (id, (date, complete)) in &chains {
            if let Some(day) = days.get_mut(date) {
                day.chains += 1;
                if *complete {
                    day.chains_complete += 1;
                } else {
                    day.incomplete_chains.push(id.to_string());
                }
            }
        }
        for day in days.values_mut() {
            day.incomplete_chains.sort();
        }
        let mut contacts = Vec::new();
        for (key, seen) in &self.contacts {
            let work = worked.get(key);
            let (state, unrecoverable_reason, failed_reason) = Self::final_state(seen, work);
            let restoring = state == FinalState::StillMissing
                && work.is_some_and(|w| w.status == OutcomeStatus::Restoring);
            let truncated = state == FinalState::Recovered && work.is_some_and(|w| w.truncated);
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
                    FinalState::Recovered => {
                        day.recovered += 1;
                        day.truncated += u64::from(truncated);
                    }
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
                    FinalState::StillMissing => {
                        day.still_missing += 1;
                        day.restoring += u64::from(restoring);
                    }
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
                    chain: if orphan {
                        String::new()
                    } else {
                        seen.chain.as_ref().unwrap_or(key).to_string()
                    },
                    integrity: if truncated {
                        crate::domain::report::TRUNCATED.to_owned()
                    } else {
                        String::new()
                    },
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
    // A day before too: a chain's earlier legs can lie there (design §11).
    let start = midnight(from) - TimeDelta::days(1);
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
        restoring: 0,
        truncated: 0,
        orphans: 0,
        orphans_recovered: 0,
        chains: 0,
        chains_complete: 0,
        incomplete_chains: Vec::new(),
        coverage_percent: None,
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests;
