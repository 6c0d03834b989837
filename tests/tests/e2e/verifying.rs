//! Only what is verified counts (design §4 "only verified bytes are used", §6 "only Verint's own
//! answers count"): damaged CTR objects never invent or hide a contact, and a gateway's `200`
//! page in front of Verint is never taken as Verint's word.

use std::collections::HashSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use recovery::domain::report::RunReport;
use recovery::flows::plan::Request;

use local_stack::claims::*;
use local_stack::sim::Faults;

use crate::support::*;

async fn dry_run(planner: &planner::App, window: recovery::domain::time::Window) -> RunReport {
    planner
        .run(
            Request::Manual {
                window,
                dry_run: true,
            },
            &|_, _| {},
        )
        .await
        .expect("dry run")
}

/// A day planned once clean (dry), then again with `copies` damaged copies of its gzip CTR
/// objects beside the originals: single bit flips, whole and cut short.
struct Damaged {
    clean: RunReport,
    damaged: RunReport,
    expected: HashSet<String>,
    copies: usize,
}

async fn plan_with_damaged_copies() -> Damaged {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(41, date, 150).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    let planner = stack.planner().await.expect("planner");
    let clean = dry_run(&planner, window).await;
    let gzipped: Vec<_> = day
        .ctr_objects
        .iter()
        .filter(|o| o.body.starts_with(&[0x1f, 0x8b]) && o.body.len() > 64)
        .collect();
    assert!(!gzipped.is_empty(), "the day has gzip objects");
    let mut rng = StdRng::seed_from_u64(41);
    let mut copies = 0;
    for round in 0..120 {
        let original = gzipped[round % gzipped.len()];
        let mut body = original.body.clone();
        // A bit of the deflate data (header and trailer aside), so that it decodes to something.
        let at = rng.random_range(10..body.len() - 8);
        body[at] ^= 1 << rng.random_range(0..8);
        if round % 3 == 0 {
            let cut = rng.random_range(at + 1..=body.len() - 1);
            body.truncate(cut);
        }
        let key = format!("{}.damaged-{round}", original.key);
        stack
            .s3
            .put_object()
            .bucket(&original.bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .expect("damaged copy uploaded");
        copies += 1;
    }
    let damaged = dry_run(&planner, window).await;
    Damaged {
        clean,
        damaged,
        expected,
        copies,
    }
}

#[tokio::test]
async fn damaged_gzip_copies_of_good_objects_leave_the_plan_exact() {
    let d = plan_with_damaged_copies().await;

    let missing: HashSet<String> = d.damaged.missing_contact_ids.iter().cloned().collect();
    assert_eq!(missing, d.expected, "no contact invented, none lost");
    assert_eq!(
        (d.damaged.eligible, d.damaged.in_verint, d.damaged.missing),
        (d.clean.eligible, d.clean.in_verint, d.clean.missing)
    );
}

#[tokio::test]
async fn a_damaged_gzip_copy_is_counted_as_malformed_never_as_duplicate_records() {
    let d = plan_with_damaged_copies().await;

    let added_malformed = d.damaged.ctr.malformed - d.clean.ctr.malformed;
    let added_records = d.damaged.ctr.records - d.clean.ctr.records;
    assert_eq!(d.damaged.ctr.objects - d.clean.ctr.objects, d.copies as u64);
    assert!(
        added_malformed as usize >= d.copies * 9 / 10,
        "{added_malformed} of {} damaged copies counted as malformed",
        d.copies
    );
    // A flip that changes nothing decoded (a padding bit) leaves a whole, verified copy, whose
    // records are all duplicates; every other copy adds no record at all.
    assert_eq!(
        d.damaged.ctr.duplicates - d.clean.ctr.duplicates,
        added_records,
        "only whole copies count as duplicates"
    );
}

/// A past day planned and worked while a gateway answers 30 % of DAS listings, look-ups and
/// ingests with `200` and an HTML page (storing the call behind half of the ingest pages).
struct Gated {
    stack: Stack,
    expected: HashSet<String>,
    report: RunReport,
}

async fn recover_behind_a_gateway() -> Gated {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(43, date, 120).await.expect("day");
    let window = day_window(date);
    let expected = expected_missing(&day, window.start, window.end);
    stack.sim.state().set_faults(Faults {
        seed: 43,
        gateway_page: 0.3,
        gateway_page_first: 2,
        ..Faults::default()
    });
    let planner = stack.planner().await.expect("planner");
    let worker = stack.worker().await.expect("worker");
    let report = plan_manual(&planner, window)
        .await
        .expect("the plan survives gateway pages");
    stack
        .drain(&worker, Duration::from_secs(240))
        .await
        .expect("drained");
    Gated {
        stack,
        expected,
        report,
    }
}

#[tokio::test]
async fn behind_a_gateway_answering_pages_the_plan_is_exact_and_every_call_lands_once() {
    let g = recover_behind_a_gateway().await;

    let missing: HashSet<String> = g.report.missing_contact_ids.iter().cloned().collect();
    assert_eq!(
        missing, g.expected,
        "a page never hides or invents a held contact"
    );
    assert_in_verint_exactly(&g.stack.sim, &g.expected);
    for id in &g.expected {
        assert_in_verint_once(&g.stack.sim, id);
    }
    assert_dead_letter_queue_empty(&g.stack).await;
}

#[tokio::test]
async fn behind_a_gateway_the_pages_were_really_served_and_none_was_taken_as_an_answer() {
    let g = recover_behind_a_gateway().await;

    let stats = g.stack.sim.state().stats();
    assert!(stats.gateway_pages >= 10, "{} pages", stats.gateway_pages);
    assert!(
        stats.gateway_pages_stored > 0,
        "a call was stored behind a page"
    );
    let outcomes = g
        .stack
        .store()
        .outcomes(&g.report.run_id)
        .await
        .expect("outcomes");
    assert_eq!(outcomes.len(), g.expected.len());
    assert!(
        outcomes
            .iter()
            .all(|o| o.interaction_id.as_deref().is_some_and(|i| !i.is_empty())),
        "every outcome names Verint's interaction"
    );
}
