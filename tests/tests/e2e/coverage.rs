//! Proof of coverage (design §9): a run's ledger against the generator's truth, orphan
//! recordings (recorded calls whose CTRs were never written) found and recovered, and the
//! coverage of a day against what was recovered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{NaiveDate, TimeDelta};
use local_stack::generate::Day;
use local_stack::sim::{ConnectContact, VerintContact};
use recovery::domain::ledger::{LedgerClass, LedgerRow};
use recovery::flows::coverage::DayCovered;

use crate::support::*;

const RECORDINGS_PREFIX: &str = "connect/acme/CallRecordings/";

async fn ledger_of(stack: &Stack, run_id: &str) -> Vec<LedgerRow> {
    let bytes = stack
        .store()
        .ledger_bytes(run_id)
        .await
        .expect("ledger readable")
        .expect("the run wrote a ledger");
    recovery::domain::ledger::rows_of(&bytes)
        .collect::<Result<_, _>>()
        .expect("every row parses")
}

/// What a manual run over the whole of `date` must write, by id: the class of every eligible
/// contact initiated that day, from the generator's ground truth.
fn truth_classes(day: &Day, date: NaiveDate) -> BTreeMap<String, LedgerClass> {
    let w = day_window(date);
    day.truth
        .iter()
        .filter(|t| t.eligible() && w.contains(t.initiation))
        .map(|t| {
            let class = if t.in_verint {
                LedgerClass::InVerint
            } else if t.all_deleted() {
                LedgerClass::Unrecoverable
            } else {
                LedgerClass::Missing
            };
            (t.contact_id.clone(), class)
        })
        .collect()
}

/// Recordings of calls whose CTRs were never written (Firehose broken while Connect recorded):
/// `n` new contacts, each with a recording in the day's folder and known to Connect; the first
/// `held` of them also in Verint.
async fn plant_orphans(
    stack: &Stack,
    day: &Day,
    date: NaiveDate,
    n: usize,
    held: usize,
) -> Vec<String> {
    let template = day
        .connect
        .iter()
        .find(|c| c.channel == "VOICE" && c.disconnect_timestamp.is_some())
        .expect("a voice call to copy")
        .clone();
    let body = day.recordings[0].body.clone();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!(
            "0bad{i:04x}-0000-4000-8000-{:012x}",
            rand::random::<u64>() >> 16
        );
        let initiation = midnight(date) + TimeDelta::hours(9 + i as i64);
        let disconnect = initiation + TimeDelta::minutes(7);
        let key = format!(
            "{RECORDINGS_PREFIX}{}/{id}_{}_UTC.wav",
            date.format("%Y/%m/%d"),
            initiation.format("%Y%m%dT%H:%M")
        );
        stack
            .s3
            .put_object()
            .bucket(&stack.recordings_bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
            .send()
            .await
            .expect("recording uploaded");
        stack.sim.state().seed_connect(vec![ConnectContact {
            id: id.clone(),
            arn: template.arn.replace(&template.id, &id),
            initiation_timestamp: initiation,
            disconnect_timestamp: Some(disconnect),
            ..template.clone()
        }]);
        if i < held {
            stack.sim.state().seed_verint(vec![VerintContact {
                amazon_contact_id: Some(id.clone()),
                interaction_id: format!("held-{id}"),
                start_time: initiation,
                end_time: disconnect,
            }]);
        }
        ids.push(id);
    }
    ids
}

async fn stack_with_recordings() -> Stack {
    let mut stack = Stack::new(&[]).await.expect("stack");
    stack
        .vars
        .insert("RECORDINGS_BUCKET".into(), stack.recordings_bucket.clone());
    stack
        .vars
        .insert("RECORDINGS_PREFIX".into(), RECORDINGS_PREFIX.into());
    stack
}

#[tokio::test]
async fn a_manual_runs_ledger_holds_every_eligible_contact_with_its_class_and_times() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(71, date, 80).await.expect("day");
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("run");

    let rows = ledger_of(&stack, &report.run_id).await;
    let written: BTreeMap<String, LedgerClass> = rows
        .iter()
        .map(|r| (r.contact_id.clone(), r.class))
        .collect();
    assert_eq!(rows.len(), written.len(), "one row per contact");
    assert_eq!(written, truth_classes(&day, date));
    assert_eq!(rows.len() as u64, report.eligible);
    for row in &rows {
        let truth = day
            .truth
            .iter()
            .find(|t| t.contact_id == row.contact_id)
            .expect("a contact of the day");
        assert_eq!(row.initiation, Some(truth.initiation), "{}", row.contact_id);
        assert_eq!(row.disconnect, truth.disconnect, "{}", row.contact_id);
        assert_eq!(
            row.reason.is_empty(),
            row.class != LedgerClass::Unrecoverable,
            "a reason only for unrecoverable rows: {row:?}"
        );
    }
}

#[tokio::test]
async fn a_dry_run_writes_its_ledger_too() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(72, date, 40).await.expect("day");
    let planner = stack.planner().await.expect("planner");
    let report = planner
        .run(
            recovery::flows::plan::Request::Manual {
                window: day_window(date),
                dry_run: true,
            },
            &|_, _| {},
        )
        .await
        .expect("dry run");
    let rows = ledger_of(&stack, &report.run_id).await;
    assert_eq!(rows.len(), truth_classes(&day, date).len());
}

#[tokio::test]
async fn orphan_recordings_are_found_queued_unless_verint_holds_them_and_recovered() {
    let stack = stack_with_recordings().await;
    let date = past_day();
    let day = stack.day(73, date, 60).await.expect("day");
    let orphans = plant_orphans(&stack, &day, date, 3, 1).await;
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("run");

    assert_eq!(report.orphans, 3, "every planted orphan and nothing else");
    let queued: BTreeSet<&str> = report
        .orphan_contact_ids
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(queued, orphans[1..].iter().map(String::as_str).collect());
    assert_eq!(report.enqueued, report.missing + 2);
    let ledger_orphans: BTreeSet<String> = ledger_of(&stack, &report.run_id)
        .await
        .into_iter()
        .filter(|r| r.class == LedgerClass::Orphan)
        .map(|r| r.contact_id)
        .collect();
    assert_eq!(ledger_orphans, orphans.iter().cloned().collect());

    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");
    let ingested: BTreeSet<String> = stack
        .sim
        .state()
        .ingested()
        .into_iter()
        .map(|c| c.contact_id)
        .collect();
    for id in &orphans[1..] {
        assert!(ingested.contains(id), "orphan {id} recovered");
    }
    assert!(
        !ingested.contains(&orphans[0]),
        "the orphan Verint held is not ingested again"
    );
}

#[tokio::test]
async fn coverage_of_a_recovered_day_matches_what_was_recovered_and_names_uncovered_days() {
    let stack = stack_with_recordings().await;
    let date = past_day();
    let day = stack.day(74, date, 60).await.expect("day");
    plant_orphans(&stack, &day, date, 2, 1).await;
    let planner = stack.planner().await.expect("planner");
    let report = plan_manual(&planner, day_window(date)).await.expect("run");
    let worker = stack.worker().await.expect("worker");
    stack
        .drain(&worker, Duration::from_secs(120))
        .await
        .expect("drained");

    let before = date - TimeDelta::days(1);
    let coverage = recovery::flows::coverage::read(&stack.store(), before, date, true)
        .await
        .expect("coverage");
    let [uncovered, covered] = &coverage.days[..] else {
        panic!("two days: {:?}", coverage.days);
    };
    assert_eq!(uncovered.covered_by_runs, DayCovered::NotCovered);
    assert_eq!(uncovered.coverage_percent, None, "never shown as 100 %");

    let truth = truth_classes(&day, date);
    let count = |c: LedgerClass| truth.values().filter(|&&v| v == c).count() as u64;
    assert_eq!(covered.covered_by_runs, DayCovered::Covered);
    assert_eq!(covered.eligible, report.eligible);
    assert_eq!(covered.in_verint, count(LedgerClass::InVerint));
    assert_eq!(covered.recovered, count(LedgerClass::Missing));
    assert_eq!(covered.unrecoverable, count(LedgerClass::Unrecoverable));
    assert_eq!(
        (covered.failed, covered.still_missing, covered.not_settled),
        (0, 0, 0)
    );
    assert_eq!((covered.orphans, covered.orphans_recovered), (2, 2));
    let expected = 100.0 * (covered.in_verint + covered.recovered) as f64 / covered.eligible as f64;
    assert_eq!(covered.coverage_percent, Some(expected));
    // One row per contact, with its final state.
    assert_eq!(coverage.contacts.len() as u64, report.eligible + 2);
}

#[tokio::test]
async fn a_ledger_larger_than_one_part_is_uploaded_in_parts_and_reads_back_whole() {
    use recovery::ports::store::LedgerSink;
    use recovery::ports::store::RunStore;
    let stack = Stack::new(&[]).await.expect("stack");
    let store = stack.store();
    let mut ledger = store.ledger("big-run");
    let start = midnight(past_day());
    let n = 600_000u64;
    for i in 0..n {
        let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let t = start + TimeDelta::milliseconds((i * 86_400_000 / n) as i64);
        ledger
            .push(LedgerRow {
                contact_id: format!("{:08x}-{:04x}-4000-8000-{:012x}", h >> 32, h & 0xffff, i),
                initiation: Some(t),
                disconnect: Some(t + TimeDelta::seconds(300)),
                class: LedgerClass::InVerint,
                reason: String::new(),
                initial_contact_id: String::new(),
            })
            .await
            .expect("row");
    }
    assert_eq!(ledger.finish().await.expect("completed"), n);
    let bytes = store
        .ledger_bytes("big-run")
        .await
        .expect("readable")
        .expect("written");
    assert!(
        bytes.len() > 8 * 1024 * 1024,
        "{} bytes: more than one part",
        bytes.len()
    );
    assert_eq!(recovery::domain::ledger::rows_of(&bytes).count() as u64, n);
}

#[tokio::test]
async fn orphan_look_ups_the_deadline_leaves_no_time_for_are_counted_and_the_missing_calls_still_queued()
 {
    let stack = stack_with_recordings().await;
    let date = past_day();
    let day = stack.day(75, date, 60).await.expect("day");
    plant_orphans(&stack, &day, date, 3, 0).await;
    let expected = expected_missing(&day, day_window(date).start, day_window(date).end);
    let app = stack.planner().await.expect("planner");
    // The deadline comes while the missing calls are being queued: none is left for look-ups.
    let finish_by = std::time::Instant::now() + Duration::from_secs(3);
    let slow = SlowFirstSend::new(&app, finish_by);
    let planner = slow.planner(&app);

    let report = planner
        .run(
            recovery::flows::plan::Request::Manual {
                window: day_window(date),
                dry_run: false,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("the run completes without its orphans");

    assert_eq!(report.orphans, 3);
    assert_eq!(report.orphan_lookups_failed, 3);
    assert!(report.orphan_contact_ids.is_empty());
    assert_eq!(
        report.enqueued,
        expected.len() as u64,
        "every ordinary missing call queued"
    );
}
