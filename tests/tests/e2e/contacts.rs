//! Design §11 against moto and the simulator: one deployment planning for two Connect instances,
//! and coverage judging transfer chains as the customer lived them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::TimeDelta;

use local_stack::claims::*;
use local_stack::generate::Day;

use crate::support::*;

/// The generator's other instance (`DaySpec::other_instance_id`).
const OTHER: &str = "0b9c3d1e-7777-4aaa-9bbb-0123456789ab";

#[tokio::test]
async fn one_deployment_recovers_the_missed_calls_of_both_instances_and_counts_each() {
    let both = format!("{INSTANCE},{OTHER}");
    let stack = Stack::new(&[("CONNECT_INSTANCE_IDS", both.as_str())])
        .await
        .expect("stack");
    let date = past_day();
    let day = stack.day(91, date, 120).await.expect("day");
    let w = day_window(date);
    let in_window =
        |t: &&local_stack::generate::Truth| t.initiation >= w.start && t.initiation < w.end;
    let expected: HashSet<String> = day
        .truth
        .iter()
        .filter(in_window)
        .filter(|t| t.missing_in(&[INSTANCE, OTHER]))
        .map(|t| t.contact_id.clone())
        .collect();
    assert!(
        day.truth
            .iter()
            .filter(in_window)
            .any(|t| t.instance_id == OTHER && t.missing_in(&[OTHER])),
        "the other instance misses calls too"
    );
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, w).await.expect("plan");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    assert_in_verint_exactly(&stack.sim, &expected);
    assert_dead_letter_queue_empty(&stack).await;
    for instance in [INSTANCE, OTHER] {
        let counts = report.instances.get(instance).copied().unwrap_or_default();
        let eligible = day
            .truth
            .iter()
            .filter(in_window)
            .filter(|t| t.eligible_in(&[instance]))
            .count() as u64;
        let missing = day
            .truth
            .iter()
            .filter(in_window)
            .filter(|t| t.missing_in(&[instance]))
            .count() as u64;
        assert_eq!(
            (counts.eligible, counts.missing),
            (eligible, missing),
            "{instance}"
        );
    }
    assert_eq!(
        report.instances.values().map(|c| c.eligible).sum::<u64>(),
        report.eligible
    );
}

/// Each chain whose earliest eligible leg began on `date`: whether every eligible leg is in
/// Verint (or has nothing to recover).
fn chains_of(day: &Day, date: chrono::NaiveDate) -> HashMap<String, bool> {
    let mut legs: HashMap<&str, Vec<&local_stack::generate::Truth>> = HashMap::new();
    for t in day.truth.iter().filter(|t| t.eligible()) {
        legs.entry(t.chain_id()).or_default().push(t);
    }
    legs.into_iter()
        .filter(|(_, l)| l.iter().map(|t| t.initiation).min().map(|d| d.date_naive()) == Some(date))
        .map(|(id, l)| {
            (
                id.to_owned(),
                l.iter().all(|t| t.in_verint || t.all_deleted()),
            )
        })
        .collect()
}

#[tokio::test]
async fn coverage_counts_each_chain_on_its_first_day_and_names_those_with_a_leg_missing() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day() - TimeDelta::days(1);
    let day = stack.day(92, date, 300).await.expect("day");
    let truth = chains_of(&day, date);
    let incomplete: Vec<&String> = {
        let mut v: Vec<&String> = truth
            .iter()
            .filter(|(_, c)| !**c)
            .map(|(id, _)| id)
            .collect();
        v.sort();
        v
    };
    assert!(
        !incomplete.is_empty(),
        "the day has a chain with a leg to recover"
    );
    assert!(
        day.truth
            .iter()
            .any(|t| t.initial_contact_id.is_some() && t.initiation.date_naive() > date),
        "a chain crosses midnight"
    );
    // Dry runs over the day and the next: every leg in a ledger, nothing recovered.
    let planner = stack.planner().await.expect("planner");
    for d in [date, date + TimeDelta::days(1)] {
        planner
            .run(
                recovery::flows::plan::Request::Manual {
                    window: day_window(d),
                    dry_run: true,
                },
                &|_, _| {},
            )
            .await
            .expect("dry run");
    }

    let coverage = recovery::flows::coverage::read(&stack.store(), date, date, true)
        .await
        .expect("coverage");
    let d = &coverage.days[0];
    assert_eq!(d.chains, truth.len() as u64);
    assert_eq!(d.chains_complete, (truth.len() - incomplete.len()) as u64);
    let named: Vec<&String> = d.incomplete_chains.iter().collect();
    assert_eq!(named, incomplete, "every chain with a leg missing, named");
    // A later leg's row names its chain.
    let later = day
        .truth
        .iter()
        .find(|t| {
            t.eligible() && t.initial_contact_id.is_some() && t.initiation.date_naive() == date
        })
        .expect("a later leg on the day");
    let row = coverage
        .contacts
        .iter()
        .find(|c| c.contact_id == later.contact_id)
        .expect("its row");
    assert_eq!(Some(&row.chain), later.initial_contact_id.as_ref());
}
