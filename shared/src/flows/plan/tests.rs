//! A whole run over the in-memory fakes of the planner's ports: what it reads, classifies,
//! queues and reports, without S3, SQS or Verint.

use std::collections::HashMap;

use super::*;
use crate::domain::time::parse_ts;
use crate::ports::ctr_source::fake::MemoryCtrSource;
use crate::ports::orphans::fake::MemoryOrphans;
use crate::ports::queue::fake::FakeWorkQueue;
use crate::ports::store::fake::MemoryRunStore;
use crate::ports::verint::fake::FakeHoldings;

const MISSING: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";
const HELD: &str = "0b7c2c4e-9a51-4d0e-8f3a-6a1d2b3c4d5e";
const CHAT: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

/// A valid configuration of instance `i`, every optional setting at its default.
pub(super) fn config() -> Config {
    config_with(&[])
}

fn ts(s: &str) -> DateTime<Utc> {
    parse_ts(s).expect("valid")
}

/// A manual run of 2026-11-30 10:00–12:00, a day later, over the fakes given: its report, what
/// it queued, and its store.
async fn run_window(
    source: &MemoryCtrSource,
    verint: &FakeHoldings,
    orphans: Option<&MemoryOrphans>,
) -> (RunReport, Vec<WorkMessage>, MemoryRunStore) {
    run_window_on(&config(), source, verint, orphans, None).await
}

/// [`run_window`] under `config`, with redacted audio looked for in `redacted`.
async fn run_window_on(
    config: &Config,
    source: &MemoryCtrSource,
    verint: &FakeHoldings,
    orphans: Option<&MemoryOrphans>,
    redacted: Option<&Listing>,
) -> (RunReport, Vec<WorkMessage>, MemoryRunStore) {
    let queue = FakeWorkQueue::default();
    let store = MemoryRunStore::default();
    let planner = Planner {
        config,
        source,
        verint,
        queue: &queue,
        store: &store,
        concurrency: 2,
        progress: &|_, _| {},
        orphans: orphans.map(|o| o as &dyn OrphanLookup),
        redacted: redacted.map(|l| l as &dyn KeyListing),
        deadline: None,
        finish_by: None,
    };
    let request = Request::Manual {
        window: Window {
            start: ts("2026-11-30T10:00:00Z"),
            end: ts("2026-11-30T12:00:00Z"),
        },
        dry_run: false,
    };
    let report = planner
        .run(request, ts("2026-12-01T12:00:00Z"))
        .await
        .expect("the run completes");
    let sent = queue.sent.lock().expect("unpoisoned").clone();
    (report, sent, store)
}

/// One CTR of instance `i`, a call 10:05–10:10 with one recording.
fn ctr(id: &str, channel: &str, last_update: &str) -> String {
    format!(
        r#"{{"ContactId":"{id}","Channel":"{channel}","InstanceARN":"arn:aws:connect:eu-west-2:1:instance/i","InitiationTimestamp":"2026-11-30T10:05:00Z","DisconnectTimestamp":"2026-11-30T10:10:00Z","LastUpdateTimestamp":"{last_update}","Recordings":[{{"Location":"rec/connect/i/CallRecordings/2026/11/30/{id}_20261130T10:05_UTC.wav","MediaStreamType":"AUDIO","StorageType":"S3","Status":"AVAILABLE"}}]}}"#
    )
}

#[tokio::test]
async fn a_manual_run_queues_the_calls_verint_lacks_once_and_reports_every_class() {
    let object = [
        ctr(MISSING, "VOICE", "2026-11-30T10:11:00Z"),
        ctr(HELD, "VOICE", "2026-11-30T10:11:00Z"),
        ctr(CHAT, "CHAT", "2026-11-30T10:11:00Z"),
        // An older copy of the same contact: one contact, one duplicate.
        ctr(MISSING, "VOICE", "2026-11-30T10:10:30Z"),
    ]
    .join("\n");
    let source = MemoryCtrSource {
        hours: [(
            ts("2026-11-30T10:00:00Z"),
            vec![("ctr/2026/11/30/10/object-1".to_owned(), object.into_bytes())],
        )]
        .into(),
    };
    let verint = FakeHoldings {
        held: [ContactKey::new(HELD)].into(),
    };
    let (report, sent, store) = run_window(&source, &verint, None).await;

    assert_eq!(
        (
            report.ctr.records,
            report.ctr.duplicates,
            report.ctr.malformed
        ),
        (4, 1, 0)
    );
    assert_eq!(
        (
            report.eligible,
            report.in_verint,
            report.missing,
            report.enqueued
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(report.missing_contact_ids, [MISSING]);
    assert_eq!(sent.len(), 1, "one message per missing call");
    assert_eq!(sent[0].contact_id, MISSING);
    assert_eq!(sent[0].instance_id, "i");
    assert_eq!(sent[0].recordings.len(), 1);
    assert_eq!(sent[0].recordings[0].bucket, "rec");
    let statuses = store.statuses.lock().expect("unpoisoned").clone();
    assert_eq!(
        statuses.iter().map(|s| s.status).collect::<Vec<_>>(),
        [RunState::Running, RunState::Completed]
    );
    assert_eq!(store.reports.lock().expect("unpoisoned").len(), 1);

    // A run that finished leaves no record of a half-queued plan behind (design §4.7).
    assert!(store.queued.lock().expect("unpoisoned").is_empty());
}

#[tokio::test]
async fn a_recording_no_ctr_names_is_queued_as_an_orphan_unless_verint_holds_it() {
    const ORPHAN: &str = "c0ffee00-1d2e-4f60-8a9b-0c1d2e3f4a5b";
    const ORPHAN_HELD: &str = "decade00-1d2e-4f60-8a9b-0c1d2e3f4a5b";
    let source = MemoryCtrSource {
        hours: [(
            ts("2026-11-30T10:00:00Z"),
            vec![(
                "ctr/2026/11/30/10/object-1".to_owned(),
                ctr(MISSING, "VOICE", "2026-11-30T10:11:00Z").into_bytes(),
            )],
        )]
        .into(),
    };
    let key = |id: &str| format!("connect/i/CallRecordings/2026/11/30/{id}_20261130T11:00_UTC.wav");
    let orphans = MemoryOrphans {
        // The CTR's own recording is no orphan; the other two are.
        keys: vec![key(MISSING), key(ORPHAN), key(ORPHAN_HELD)],
        in_verint: [ORPHAN_HELD.to_owned()].into(),
        times: [(
            ORPHAN.to_owned(),
            (ts("2026-11-30T11:00:00Z"), ts("2026-11-30T11:04:00Z")),
        )]
        .into(),
    };
    let verint = FakeHoldings::default();
    let (report, sent, _) = run_window(&source, &verint, Some(&orphans)).await;

    assert_eq!((report.orphans, report.orphan_lookups_failed), (2, 0));
    assert_eq!(report.orphan_contact_ids, [ORPHAN]);
    assert_eq!(report.enqueued, 2, "the missing call and the orphan");
    let orphan = sent
        .iter()
        .find(|m| m.contact_id == ORPHAN)
        .expect("the orphan is queued");
    assert_eq!(orphan.initiation_timestamp, "2026-11-30T11:00:00Z");
    assert_eq!(orphan.recordings[0].key, key(ORPHAN));
    assert!(sent.iter().all(|m| m.contact_id != ORPHAN_HELD));
}

/// Keys in buckets, listed by prefix.
#[derive(Default)]
struct Listing(Vec<(String, String)>);

impl KeyListing for Listing {
    fn keys<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, crate::ports::recordings::RecordingError>>
    {
        let keys = self
            .0
            .iter()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect();
        Box::pin(async move { Ok(keys) })
    }
}

/// [`config`] with `extra` variables set as well.
fn config_with(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("CTR_BUCKET", "ctr"),
        ("CONNECT_INSTANCE_ID", "i"),
        ("WORK_QUEUE_URL", "q"),
        ("DEAD_LETTER_QUEUE_URL", "d"),
        ("STATE_BUCKET", "s"),
        ("VERINT_DAS_URL", "https://v/das"),
        ("VERINT_INGEST_URL", "https://v/ingest"),
        ("VERINT_API_KEY_ID", "k"),
        ("VERINT_API_KEY", "a2V5"),
    ]);
    vars.extend(extra.iter().copied());
    Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).expect("valid")
}

#[tokio::test]
async fn redacted_queues_only_redacted_audio_and_an_unredacted_call_is_unrecoverable_after_a_day() {
    let object = [
        ctr(MISSING, "VOICE", "2026-11-30T10:11:00Z"),
        ctr(HELD, "VOICE", "2026-11-30T10:11:00Z"),
    ]
    .join("\n");
    let source = MemoryCtrSource {
        hours: [(
            ts("2026-11-30T10:00:00Z"),
            vec![("ctr/2026/11/30/10/object-1".to_owned(), object.into_bytes())],
        )]
        .into(),
    };
    let nobody = FakeHoldings {
        held: Default::default(),
    };
    let redacted_key = format!(
        "Analysis/Voice/Redacted/2026/11/30/{MISSING}_call_recording_redacted_2026-11-30T10:14:00Z.wav"
    );
    let listing = Listing(vec![("rec".into(), redacted_key.clone())]);

    // `redacted`: the call with redacted audio sends it alone; the other (ended 26 h before
    // the run) is unrecoverable with the reason, in the report and the ledger.
    let redacted = config_with(&[("RECORDING_VARIANT", "redacted")]);
    let (report, sent, store) =
        run_window_on(&redacted, &source, &nobody, None, Some(&listing)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].contact_id, MISSING);
    assert_eq!(
        sent[0]
            .recordings
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        [redacted_key.as_str()],
        "never an original"
    );
    assert_eq!(
        (report.eligible, report.missing, report.not_settled),
        (2, 1, 0)
    );
    assert_eq!(report.unrecoverable.len(), 1);
    assert_eq!(report.unrecoverable[0].contact_id, HELD);
    assert_eq!(report.unrecoverable[0].reason, "no redacted recording");
    let rows = store.ledger_rows(&report.run_id);
    let held_row = rows
        .iter()
        .find(|r| r.contact_id == HELD)
        .expect("a ledger row");
    assert_eq!(
        (held_row.class, held_row.reason.as_str()),
        (LedgerClass::Unrecoverable, "no redacted recording")
    );

    // `redacted-else-original`: the other call sends its original.
    let either = config_with(&[("RECORDING_VARIANT", "redacted-else-original")]);
    let (report, sent, _) = run_window_on(&either, &source, &nobody, None, Some(&listing)).await;
    assert_eq!((report.missing, sent.len()), (2, 2));
    let other = sent.iter().find(|m| m.contact_id == HELD).expect("queued");
    assert!(
        other.recordings[0].key.contains("CallRecordings"),
        "its original"
    );
}

#[tokio::test]
async fn one_deployment_plans_every_instance_listed_and_counts_each() {
    const OTHER_INSTANCE: &str = "7d9e1f20-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
    let of_j =
        |id: &str| ctr(id, "VOICE", "2026-11-30T10:11:00Z").replace("instance/i", "instance/j");
    let object = [
        ctr(MISSING, "VOICE", "2026-11-30T10:11:00Z"),
        of_j(HELD),
        of_j(OTHER_INSTANCE),
    ]
    .join("\n");
    let source = MemoryCtrSource {
        hours: [(
            ts("2026-11-30T10:00:00Z"),
            vec![("ctr/2026/11/30/10/object-1".to_owned(), object.into_bytes())],
        )]
        .into(),
    };
    let verint = FakeHoldings {
        held: [ContactKey::new(HELD)].into(),
    };
    // One instance: the other's calls are not eligible.
    let (report, _, _) = run_window(&source, &verint, None).await;
    assert_eq!(report.eligible, 1);
    assert_eq!(report.instances.keys().collect::<Vec<_>>(), ["i"]);

    let both = config_with(&[(
        "CONNECT_INSTANCE_IDS",
        "i,arn:aws:connect:eu-west-2:1:instance/j",
    )]);
    let (report, sent, _) = run_window_on(&both, &source, &verint, None, None).await;
    assert_eq!(
        (report.eligible, report.in_verint, report.missing),
        (3, 1, 2)
    );
    let counts = |id: &str| report.instances.get(id).copied().unwrap_or_default();
    assert_eq!((counts("i").eligible, counts("i").missing), (1, 1));
    assert_eq!(
        (
            counts("j").eligible,
            counts("j").in_verint,
            counts("j").missing
        ),
        (2, 1, 1)
    );
    let instance_of = |id: &str| {
        sent.iter()
            .find(|m| m.contact_id == id)
            .map(|m| m.instance_id.clone())
    };
    assert_eq!(instance_of(MISSING).as_deref(), Some("i"));
    assert_eq!(
        instance_of(OTHER_INSTANCE).as_deref(),
        Some("j"),
        "each message names its contact's instance"
    );
}
