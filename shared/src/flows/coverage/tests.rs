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
        initial_contact_id: String::new(),
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
        truncated: false,
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
    use crate::domain::report::{Mode, ReportWindow, RunReport, WindowBy};
    let report = RunReport {
        window: Some(ReportWindow {
            start: "2026-11-30T00:00:00Z".into(),
            end: "2026-12-01T00:00:00Z".into(),
            by: WindowBy::Initiation,
        }),
        eligible: rows.len() as u64,
        ..RunReport::empty(run_id, Mode::Manual)
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
        integrity: None,
        expected_seconds: None,
        actual_seconds: None,
        restored_from: None,
        redacted: false,
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

fn leg(id: &str, at: &str, class: LedgerClass, chain: &str) -> LedgerRow {
    LedgerRow {
        initial_contact_id: chain.into(),
        ..row(id, at, class, "")
    }
}

#[test]
fn a_transfer_chain_counts_once_on_its_first_day_and_is_named_while_a_leg_is_missing() {
    // Chain A: A (in Verint) → B (missing) → C (recovered), across midnight. Chain D: one leg.
    let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-12-01"));
    b.run("r1", whole_day("2026-11-30"));
    b.row_held(
        leg(A, "2026-11-30T23:50:00Z", LedgerClass::InVerint, ""),
        false,
    );
    b.run("r2", whole_day("2026-12-01"));
    b.row_held(
        leg(B, "2026-12-01T00:05:00Z", LedgerClass::Missing, A),
        false,
    );
    b.row_held(
        leg(C, "2026-12-01T00:20:00Z", LedgerClass::Missing, A),
        false,
    );
    b.row_held(
        leg(D, "2026-12-01T09:00:00Z", LedgerClass::Unrecoverable, ""),
        false,
    );
    let mut w = HashMap::new();
    WorkedState::merge(
        &mut w,
        ContactKey::new(C),
        worked(OutcomeStatus::Recovered, None),
    );
    let (days, contacts) = b.finish(&w, true);
    let (first, second) = (&days[0], &days[1]);
    assert_eq!(
        (first.chains, first.chains_complete),
        (1, 0),
        "A's chain, on A's day"
    );
    assert_eq!(first.incomplete_chains, [A]);
    assert_eq!((second.chains, second.chains_complete), (1, 1), "D alone");
    // Contacts still count on their own days.
    assert_eq!((first.eligible, second.eligible), (1, 3));
    let chain_of = |id: &str| {
        contacts
            .iter()
            .find(|c| c.contact_id == id)
            .map(|c| c.chain.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        (chain_of(A), chain_of(B), chain_of(C)),
        (A.into(), A.into(), A.into())
    );
    assert_eq!(chain_of(D), D);

    // Once B is recovered the chain is complete.
    WorkedState::merge(
        &mut w,
        ContactKey::new(B),
        worked(OutcomeStatus::Recovered, None),
    );
    let mut b = CoverageBuilder::new(day("2026-11-30"), day("2026-11-30"));
    b.run("r1", whole_day("2026-11-30"));
    b.row_held(
        leg(A, "2026-11-30T23:50:00Z", LedgerClass::InVerint, ""),
        false,
    );
    b.run("r2", whole_day("2026-12-01"));
    b.row_held(
        leg(B, "2026-12-01T00:05:00Z", LedgerClass::Missing, A),
        false,
    );
    b.row_held(
        leg(C, "2026-12-01T00:20:00Z", LedgerClass::Missing, A),
        false,
    );
    let (days, contacts) = b.finish(&w, true);
    assert_eq!(days.len(), 1, "only the day asked for");
    assert_eq!(
        (days[0].chains, days[0].chains_complete),
        (1, 1),
        "legs of the next day count"
    );
    assert_eq!(days[0].eligible, 1);
    assert_eq!(contacts.len(), 1, "the next day's legs are not listed");
}
