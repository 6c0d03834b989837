//! The planner on real data (issue 10): late objects, an old contact's DAS span, a checkpoint
//! that cannot be parsed, a deadline, a CTR object whose first GET breaks, a lost checkpoint
//! response and an SQS entry rejected as the sender's fault. Against moto and the simulator;
//! the broken GET is a fault-injecting wrapper around the real S3 source (moto cannot cut a
//! response mid-body).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use local_stack::sim::VerintContact;
use recovery::adapters::ctr_source::{S3CtrSource, hour_prefix};
use recovery::domain::checkpoint::Checkpoint;
use recovery::domain::message::WorkMessage;
use recovery::domain::time::{floor_hour, format_ts};
use recovery::flows::plan::{PlanError, Planner, Request};
use recovery::ports::ctr_source::{CtrObject, CtrSource, SourceError};
use recovery::ports::queue::{QueueError, Sent, WorkQueue};
use recovery::ports::store::{RunStore, StateError};

use crate::support::*;

const AUTO: Request = Request::Automatic { dry_run: false };

/// A CTR of a voice call of our instance with one available S3 recording.
fn ctr(stack: &Stack, id: &str, initiation: DateTime<Utc>, minutes: i64) -> String {
    serde_json::json!({
        "ContactId": id,
        "Channel": "VOICE",
        "InitiationMethod": "INBOUND",
        "InstanceARN": format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}"),
        "InitiationTimestamp": format_ts(initiation),
        "DisconnectTimestamp": format_ts(initiation + TimeDelta::minutes(minutes)),
        "LastUpdateTimestamp": format_ts(Utc::now()),
        "Recordings": [{
            "Location": format!("{}/connect/x/CallRecordings/{id}_late_UTC.wav", stack.recordings_bucket),
            "MediaStreamType": "AUDIO", "ParticipantType": "AGENT", "StorageType": "S3", "Status": "AVAILABLE"
        }]
    })
    .to_string()
}

async fn put_ctr_object(stack: &Stack, hour: DateTime<Utc>, name: &str, body: String) {
    let key = format!("{}{name}", hour_prefix(&stack.vars["CTR_PREFIX"], hour));
    stack
        .s3
        .put_object()
        .bucket(&stack.ctr_bucket)
        .key(key)
        .body(body.into_bytes().into())
        .send()
        .await
        .expect("put ctr object");
}

async fn checkpoint(stack: &Stack) -> Checkpoint {
    stack
        .store()
        .checkpoint()
        .await
        .expect("readable")
        .0
        .expect("written")
}

/// A stack whose first automatic run starts at `date`'s first hour.
async fn stack_from(date: chrono::NaiveDate, extra: &[(&str, &str)]) -> Stack {
    let lookback = format!("{}h", (Utc::now() - midnight(date)).num_hours());
    let mut vars = vec![("INITIAL_LOOKBACK", lookback.as_str())];
    vars.extend_from_slice(extra);
    Stack::new(&vars).await.expect("stack")
}

#[tokio::test]
async fn an_object_written_into_an_hour_already_read_is_found_by_the_next_run_and_not_the_one_after()
 {
    let date = past_day();
    let stack = stack_from(date, &[("MAX_HOURS_PER_RUN", "24")]).await;
    stack.day(21, date, 60).await.expect("day");
    let app = stack.planner().await.expect("planner");

    let first = app.run(AUTO, &|_, _| {}).await.expect("first run");
    assert!(first.late_hours.is_empty());
    let read = checkpoint(&stack).await;
    assert_eq!(
        read.hours.len(),
        24,
        "the checkpoint remembers the hours read"
    );

    // Firehose delivers an object late into an hour the first run read.
    let hour = midnight(date) + TimeDelta::hours(5);
    let late_id = "0a7e0b1e-0000-4000-8000-00000000001a";
    put_ctr_object(
        &stack,
        hour,
        "late-delivery-1",
        ctr(&stack, late_id, hour + TimeDelta::minutes(3), 4),
    )
    .await;

    let second = app.run(AUTO, &|_, _| {}).await.expect("second run");
    assert_eq!(second.late_hours, [format_ts(hour)]);
    assert!(
        second.missing_contact_ids.iter().any(|id| id == late_id),
        "the late object's call is queued: {:?}",
        second.missing_contact_ids
    );
    let w = second.window.clone().expect("a window");
    assert_eq!(
        w.start,
        format_ts(hour),
        "the window starts at the late hour"
    );

    let third = app.run(AUTO, &|_, _| {}).await.expect("third run");
    assert!(third.late_hours.is_empty(), "{:?}", third.late_hours);
    assert!(!third.missing_contact_ids.iter().any(|id| id == late_id));
    let messages = Stack::all_messages(&stack.work_queue).await.expect("queue");
    let late_messages = messages.iter().filter(|m| m.body.contains(late_id)).count();
    assert_eq!(late_messages, 1, "queued once, by the second run");
}

#[tokio::test]
async fn a_dry_run_sweeps_late_objects_but_records_nothing() {
    let date = past_day();
    let stack = stack_from(date, &[("MAX_HOURS_PER_RUN", "24")]).await;
    stack.day(22, date, 30).await.expect("day");
    let app = stack.planner().await.expect("planner");
    app.run(AUTO, &|_, _| {}).await.expect("first run");
    let hour = midnight(date) + TimeDelta::hours(7);
    put_ctr_object(
        &stack,
        hour,
        "late-delivery-2",
        ctr(&stack, "0a7e0b1e-0000-4000-8000-00000000002b", hour, 2),
    )
    .await;
    let before = checkpoint(&stack).await;

    let dry = app
        .run(Request::Automatic { dry_run: true }, &|_, _| {})
        .await
        .expect("dry run");
    assert_eq!(dry.late_hours, [format_ts(hour)]);
    assert_eq!(dry.enqueued, 0);
    assert_eq!(checkpoint(&stack).await, before, "nothing recorded");

    let real = app.run(AUTO, &|_, _| {}).await.expect("run");
    assert_eq!(
        real.late_hours,
        [format_ts(hour)],
        "still late for a real run"
    );
}

#[tokio::test]
async fn a_late_ctr_of_an_old_contact_makes_das_be_asked_about_its_own_span_only() {
    let stack = Stack::new(&[("INITIAL_LOOKBACK", "4h")])
        .await
        .expect("stack");
    let hour = floor_hour(Utc::now() - TimeDelta::hours(4));
    let recent = hour + TimeDelta::minutes(10);
    let weeks_ago = floor_hour(Utc::now() - TimeDelta::days(21)) + TimeDelta::minutes(20);
    let (recent_id, old_id) = (
        "0a7e0b1e-0000-4000-8000-0000000000aa",
        "0a7e0b1e-0000-4000-8000-0000000000bb",
    );
    // The old contact's CTR is sent again (an attribute update) and arrives in a recent hour.
    put_ctr_object(
        &stack,
        hour,
        "mixed",
        format!(
            "{}\n{}\n",
            ctr(&stack, recent_id, recent, 5),
            ctr(&stack, old_id, weeks_ago, 7)
        ),
    )
    .await;
    // Verint holds the old call, listed with an upper-case id and a later start (queue time).
    stack.sim.state().seed_verint(vec![VerintContact {
        amazon_contact_id: Some(old_id.to_ascii_uppercase()),
        interaction_id: "int-old".into(),
        start_time: weeks_ago + TimeDelta::minutes(1),
        end_time: weeks_ago + TimeDelta::minutes(7),
    }]);
    let app = stack.planner().await.expect("planner");

    let report = app.run(AUTO, &|_, _| {}).await.expect("run");

    let margin = TimeDelta::minutes(15);
    let expected = vec![
        (
            format_ts(weeks_ago - margin),
            format_ts(weeks_ago + TimeDelta::minutes(7) + margin),
        ),
        (
            format_ts(recent - margin),
            format_ts(recent + TimeDelta::minutes(5) + margin),
        ),
    ];
    let mut asked = stack.sim.state().stats().das_queries;
    asked.sort();
    assert_eq!(
        asked, expected,
        "DAS is asked about each contact's span only"
    );
    assert_eq!(report.in_verint, 1, "ids compared case-insensitively");
    assert_eq!(report.missing_contact_ids, [recent_id]);
}

#[tokio::test]
async fn an_unparsable_checkpoint_stops_the_run_naming_it_and_writes_nothing() {
    let date = past_day();
    let stack = stack_from(date, &[]).await;
    stack.day(23, date, 30).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let key = "call-recovery/checkpoint.json";
    for body in [
        "{\"next_hour\": \"2026-11-2",
        r#"{"next_hour":"soon","updated_at":"x","run_id":"r"}"#,
    ] {
        stack
            .s3
            .put_object()
            .bucket(&stack.state_bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put");

        let event = lambda_runtime::LambdaEvent::new(
            serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
            lambda_runtime::Context::default(),
        );
        let err = planner::handle(&app, event)
            .await
            .expect_err("the run stops");
        assert_eq!(err.error_type, "RunFailed");
        let object = format!("{}/{key}", stack.state_bucket);
        assert!(err.error_message.contains(&object), "{}", err.error_message);
        assert!(!err.error_message.contains('\n'), "one line");

        let err = app.run(AUTO, &|_, _| {}).await.expect_err("the run stops");
        assert!(
            matches!(err, PlanError::State(StateError::Unparsable { .. })),
            "{err:?}"
        );
        let stored = stack
            .s3
            .get_object()
            .bucket(&stack.state_bucket)
            .key(key)
            .send()
            .await
            .expect("still there")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(stored.as_ref(), body.as_bytes(), "never replaced");
    }
    assert!(
        stack.store().run_ids().await.expect("readable").is_empty(),
        "no status or report was written"
    );
    assert_eq!(stack.work_queue.depth().await.expect("depth").visible, 0);
}

/// The real S3 source, which lets the deadline pass while it lists the `stall_at`-th hour.
struct Stalling {
    inner: S3CtrSource,
    listed: AtomicUsize,
    stall_at: usize,
    until: Instant,
}

impl CtrSource for Stalling {
    async fn list_hour(&self, hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
        let n = self.listed.fetch_add(1, Ordering::SeqCst) + 1;
        let objects = self.inner.list_hour(hour).await?;
        if n == self.stall_at {
            tokio::time::sleep_until(self.until.into()).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(objects)
    }
    async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
        self.inner.open(object).await
    }
}

#[tokio::test]
async fn a_deadline_that_allows_half_the_hours_moves_the_checkpoint_past_those_only() {
    let date = past_day();
    let stack = stack_from(date, &[("MAX_HOURS_PER_RUN", "24")]).await;
    let day = stack.day(24, date, 240).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let deadline = Instant::now() + Duration::from_secs(15);
    let source = Stalling {
        inner: app.source.clone(),
        listed: AtomicUsize::new(0),
        stall_at: 12,
        until: deadline,
    };
    let planner = Planner {
        config: &app.config,
        source: &source,
        verint: &app.verint,
        queue: &app.queue,
        store: &app.store,
        concurrency: 4,
        progress: &|_, _| {},
        deadline: Some(deadline),
        finish_by: None,
        orphans: None,
        redacted: None,
    };

    let first = planner.run(AUTO, Utc::now()).await.expect("run");

    let half = midnight(date) + TimeDelta::hours(12);
    let w = first.window.clone().expect("hours were read");
    assert_eq!(
        (w.start, w.end),
        (format_ts(midnight(date)), format_ts(half))
    );
    assert_eq!(checkpoint(&stack).await.next_hour, format_ts(half));
    // What it read was matched and queued: the calls whose every copy arrived before noon.
    let queued: HashSet<String> = first.missing_contact_ids.iter().cloned().collect();
    let before_noon: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.missing() && t.arrival_hours.iter().all(|h| *h < half))
        .map(|t| t.contact_id.clone())
        .collect();
    assert!(!before_noon.is_empty());
    assert!(
        queued.is_superset(&before_noon),
        "{:?}",
        before_noon.difference(&queued).collect::<Vec<_>>()
    );
    assert_eq!(first.enqueued, queued.len() as u64);

    // The next run, without a deadline, continues from there.
    let second = app.run(AUTO, &|_, _| {}).await.expect("second run");
    assert_eq!(second.window.expect("hours").start, format_ts(half));
    let all: HashSet<String> = queued
        .into_iter()
        .chain(second.missing_contact_ids)
        .collect();
    let missing: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.missing())
        .map(|t| t.contact_id.clone())
        .collect();
    assert!(all.is_superset(&missing));
}

/// The real S3 source, whose first GET of one object breaks after a few bytes.
struct BreakingOnce {
    inner: S3CtrSource,
    key: String,
    opened: Mutex<HashMap<String, u32>>,
}

struct BreakAfter {
    inner: Box<dyn Read + Send>,
    left: usize,
}

impl Read for BreakAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset mid-body",
            ));
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

impl CtrSource for BreakingOnce {
    async fn list_hour(&self, hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
        self.inner.list_hour(hour).await
    }
    async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
        let n = {
            let mut opened = self.opened.lock().expect("lock");
            let n = opened.entry(object.key.clone()).or_default();
            *n += 1;
            *n
        };
        let reader = self.inner.open(object).await?;
        if object.key == self.key && n == 1 {
            return Ok(Box::new(BreakAfter {
                inner: reader,
                left: (object.size / 2) as usize,
            }));
        }
        Ok(reader)
    }
}

#[tokio::test]
async fn an_object_whose_first_get_fails_mid_body_is_read_again_and_nothing_is_lost() {
    let stack = Stack::new(&[]).await.expect("stack");
    let date = past_day();
    let day = stack.day(25, date, 120).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let biggest = day
        .ctr_objects
        .iter()
        .max_by_key(|o| o.body.len())
        .expect("objects");
    let source = BreakingOnce {
        inner: app.source.clone(),
        key: biggest.key.clone(),
        opened: Mutex::new(HashMap::new()),
    };
    let planner = Planner {
        config: &app.config,
        source: &source,
        verint: &app.verint,
        queue: &app.queue,
        store: &app.store,
        concurrency: 4,
        progress: &|_, _| {},
        deadline: None,
        finish_by: None,
        orphans: None,
        redacted: None,
    };
    let window = day_window(date);

    let report = planner
        .run(
            Request::Manual {
                window,
                dry_run: false,
            },
            Utc::now(),
        )
        .await
        .expect("the run succeeds");

    assert_eq!(source.opened.lock().expect("lock")[&biggest.key], 2);
    let reported: HashSet<String> = report.missing_contact_ids.iter().cloned().collect();
    assert_eq!(reported, expected_missing(&day, window.start, window.end));
    assert_eq!(report.ctr.malformed, day.malformed_records as u64);
}

#[tokio::test]
async fn a_checkpoint_write_whose_response_was_lost_is_not_a_conflict() {
    let stack = Stack::new(&[]).await.expect("stack");
    let store = stack.store();
    let (_, absent) = store.checkpoint().await.expect("readable");
    let mine = Checkpoint {
        next_hour: "2026-01-01T05:00:00Z".into(),
        updated_at: format_ts(Utc::now()),
        run_id: "this-run".into(),
        hours: vec![],
    };
    store.put_checkpoint(&mine, &absent).await.expect("stored");
    // The SDK's retry of the same conditional PUT: 412, but the stored checkpoint is this run's.
    store
        .put_checkpoint(&mine, &absent)
        .await
        .expect("not a conflict");
    let other = Checkpoint {
        run_id: "another-run".into(),
        ..mine.clone()
    };
    assert!(matches!(
        store.put_checkpoint(&other, &absent).await,
        Err(StateError::Conflict)
    ));
}

/// The real queue, except that SQS blames the sender for one contact's entry.
struct Rejecting<'a> {
    inner: &'a recovery::adapters::sqs::SqsQueue,
    contact_id: String,
}

impl WorkQueue for Rejecting<'_> {
    async fn send_all(&self, messages: &[WorkMessage]) -> Result<Sent, QueueError> {
        let (bad, good): (Vec<usize>, Vec<usize>) =
            (0..messages.len()).partition(|&i| messages[i].contact_id == self.contact_id);
        let good_messages: Vec<WorkMessage> = good.iter().map(|&i| messages[i].clone()).collect();
        let mut sent = self.inner.send_all(&good_messages).await?;
        sent.rejected = bad
            .into_iter()
            .map(|i| (i, "InvalidMessageContents: invalid characters".into()))
            .collect();
        Ok(sent)
    }
}

#[tokio::test]
async fn an_entry_sqs_rejects_as_the_senders_fault_is_reported_and_the_run_goes_on() {
    let date = past_day();
    let stack = stack_from(date, &[("MAX_HOURS_PER_RUN", "24")]).await;
    let day = stack.day(26, date, 60).await.expect("day");
    let app = stack.planner().await.expect("planner");
    let end = midnight(date) + TimeDelta::hours(24);
    let read_by_this_run: HashSet<String> = day
        .truth
        .iter()
        .filter(|t| t.missing() && t.arrival_hours.iter().all(|h| *h < end))
        .map(|t| t.contact_id.clone())
        .collect();
    let victim = sorted(&read_by_this_run)
        .first()
        .expect("a missing call")
        .clone();
    let queue = Rejecting {
        inner: &app.queue,
        contact_id: victim.clone(),
    };
    let planner = Planner {
        config: &app.config,
        source: &app.source,
        verint: &app.verint,
        queue: &queue,
        store: &app.store,
        concurrency: 4,
        progress: &|_, _| {},
        deadline: None,
        finish_by: None,
        orphans: None,
        redacted: None,
    };

    let report = planner
        .run(AUTO, Utc::now())
        .await
        .expect("the run goes on");

    let entry = report
        .unrecoverable
        .iter()
        .find(|u| u.contact_id == victim)
        .expect("reported per contact");
    assert!(entry.reason.contains("InvalidMessageContents"), "{entry:?}");
    assert!(!report.missing_contact_ids.contains(&victim));
    assert_eq!(report.enqueued, report.missing);
    assert_eq!(
        report.eligible,
        report.in_verint + report.unrecoverable.len() as u64 + report.not_settled + report.missing
    );
    assert_eq!(
        checkpoint(&stack).await.next_hour,
        format_ts(end),
        "the checkpoint moved"
    );
}
