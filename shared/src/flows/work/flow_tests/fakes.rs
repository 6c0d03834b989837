//! In-memory fakes of the worker's five ports, and the helpers the flow tests build messages with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::super::*;
use crate::domain::metadata::Metadata;
use crate::ports::connect::ConnectError;
use crate::ports::connect::ContactDirectory;
use crate::ports::queue::MessageQueue;
use crate::ports::recordings::Recording;
use crate::ports::recordings::RecordingError;
use crate::ports::recordings::RecordingStore;
use crate::ports::store::OutcomeStore;
use crate::ports::store::StateError;
use crate::ports::verint::BodyStream;
use crate::ports::verint::VerintIngest;
use chrono::TimeDelta;

pub(super) const ID: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";
pub(super) const OTHER: &str = "0b7c2c4e-9a51-4d0e-8f3a-6a1d2b3c4d5e";
pub(super) const THIRD: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("not poisoned")
}

pub(super) fn body(contact_id: &str) -> String {
    format!(
        r#"{{"v":1,"run_id":"run-1","contact_id":"{contact_id}","instance_id":"inst","initiation_timestamp":"{}","disconnect_timestamp":"{}","recordings":[{{"bucket":"rec","key":"{contact_id}.wav"}}],"enqueued_at":"{}"}}"#,
        format_ts(Utc::now() - TimeDelta::hours(3)),
        format_ts(Utc::now() - TimeDelta::hours(2)),
        format_ts(Utc::now() - TimeDelta::hours(1)),
    )
}

pub(super) fn incoming(contact_id: &str, receive_count: u32) -> Incoming {
    Incoming {
        message_id: format!("m-{contact_id}"),
        receipt_handle: format!("r-{contact_id}"),
        body: body(contact_id),
        receive_count,
    }
}

/// What the fake Verint does with one upload.
#[derive(Debug)]
pub(super) enum Answer {
    Created,
    Conflict,
    Fail(fn() -> VerintError),
    /// Never answers (a transfer cut by the deadline).
    Hang,
}

#[derive(Default)]
pub(super) struct FakeVerint {
    /// Ids Verint holds, as DAS spells them.
    pub(super) held: Mutex<HashSet<String>>,
    pub(super) holds_error: Mutex<Option<fn() -> VerintError>>,
    /// One answer per upload, in order; `Created` once they run out.
    pub(super) answers: Mutex<VecDeque<Answer>>,
    pub(super) panic_for: Option<&'static str>,
    pub(super) holds_calls: AtomicUsize,
    /// Contact ids and bytes of the uploads Verint stored.
    pub(super) stored: Mutex<Vec<(String, u64)>>,
    pub(super) uploads: AtomicUsize,
    /// How long each upload takes (a slow line), and the most that ran at once.
    pub(super) upload_time: Option<Duration>,
    pub(super) uploading: AtomicUsize,
    pub(super) most_uploading: AtomicUsize,
}

impl VerintIngest for FakeVerint {
    async fn holds(
        &self,
        contact_id: &str,
        _deadline: Option<Instant>,
    ) -> Result<Option<String>, VerintError> {
        self.holds_calls.fetch_add(1, Ordering::SeqCst);
        if self.panic_for == Some(contact_id) {
            panic!("fake verint panics for {contact_id}");
        }
        if let Some(e) = *lock(&self.holds_error) {
            return Err(e());
        }
        let held = lock(&self.held)
            .iter()
            .any(|h| h.eq_ignore_ascii_case(contact_id));
        Ok(held.then(|| "INT-1".to_owned()))
    }

    async fn ingest(
        &self,
        metadata: &Metadata,
        audio: Vec<AudioPart>,
    ) -> Result<Ingested, VerintError> {
        self.uploads.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = self.upload_time {
            let now = self.uploading.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_uploading.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(t).await;
            self.uploading.fetch_sub(1, Ordering::SeqCst);
        }
        let answer = lock(&self.answers).pop_front().unwrap_or(Answer::Created);
        if let Answer::Hang = answer {
            return std::future::pending().await;
        }
        let mut bytes = 0;
        for mut part in audio {
            while let Some(chunk) = part.body.next().await {
                bytes += chunk.map_err(VerintError::Body)?.len() as u64;
            }
        }
        match answer {
            Answer::Created => {
                lock(&self.stored).push((metadata.amazon_contact_id.clone(), bytes));
                Ok(Ingested::Created {
                    interaction_id: "INT-9".into(),
                })
            }
            Answer::Conflict => Ok(Ingested::AlreadyPresent {
                interaction_id: "INT-1".into(),
            }),
            Answer::Fail(e) => Err(e()),
            Answer::Hang => unreachable!("handled above"),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        }
    }
}

#[derive(Default)]
pub(super) struct FakeConnect {
    pub(super) unknown: HashSet<&'static str>,
    /// The id DescribeContact answers with, when not the one asked.
    pub(super) spelled: Option<&'static str>,
    pub(super) calls: AtomicUsize,
    /// How long each call takes, and the most that were waiting at once.
    pub(super) latency: Option<Duration>,
    pub(super) describing: AtomicUsize,
    pub(super) most_describing: AtomicUsize,
}

impl ContactDirectory for FakeConnect {
    async fn describe(
        &self,
        _instance_id: &str,
        contact_id: &str,
        _deadline: Option<Instant>,
    ) -> Result<DescribedContact, ConnectError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = self.latency {
            let now = self.describing.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_describing.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(t).await;
            self.describing.fetch_sub(1, Ordering::SeqCst);
        }
        if self.unknown.contains(contact_id) {
            return Err(ConnectError::NotFound);
        }
        Ok(DescribedContact {
            id: Some(self.spelled.unwrap_or(contact_id).to_owned()),
            channel: Some("VOICE".into()),
            ..DescribedContact::default()
        })
    }
}

/// How a fake recording behaves.
#[derive(Debug, Clone, Copy)]
pub(super) enum Audio {
    Bytes(usize),
    Gone,
    /// Its first chunk, then an S3 error.
    BreaksMidStream,
}

#[derive(Default)]
pub(super) struct FakeRecordings {
    pub(super) by_key: HashMap<String, Audio>,
    pub(super) opens: AtomicUsize,
}

impl RecordingStore for FakeRecordings {
    async fn open(
        &self,
        location: &S3Location,
        _deadline: Option<Instant>,
    ) -> Result<Recording, RecordingError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let audio = self
            .by_key
            .get(&location.key)
            .copied()
            .unwrap_or(Audio::Bytes(1024));
        let (len, body): (u64, BodyStream) = match audio {
            Audio::Gone => {
                return Err(RecordingError::Gone {
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                });
            }
            Audio::Bytes(n) => (
                n as u64,
                stream::iter([Ok(Bytes::from(vec![0u8; n]))]).boxed(),
            ),
            Audio::BreaksMidStream => (
                2048,
                stream::iter([
                    Ok(Bytes::from(vec![0u8; 1024])),
                    Err(std::io::Error::other("connection reset by S3")),
                ])
                .boxed(),
            ),
        };
        Ok(Recording {
            location: location.clone(),
            len,
            body,
        })
    }
}

#[derive(Default)]
pub(super) struct FakeQueue {
    /// Receipt handles whose delete fails (gone stale).
    pub(super) stale: Mutex<Vec<String>>,
    pub(super) deleted: Mutex<Vec<String>>,
    pub(super) delays: Mutex<Vec<(String, Duration)>>,
    pub(super) dead: Mutex<Vec<(String, String)>>,
    pub(super) requeued: Mutex<Vec<(String, Duration)>>,
}

impl MessageQueue for FakeQueue {
    async fn requeue(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        lock(&self.requeued).push((body.to_owned(), delay));
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        if lock(&self.stale).iter().any(|h| h == receipt_handle) {
            return Err(QueueError::Sqs {
                what: "delete_message",
                source: "ReceiptHandleIsInvalid".into(),
            });
        }
        lock(&self.deleted).push(receipt_handle.to_owned());
        Ok(())
    }

    async fn retry_in(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        lock(&self.delays).push((receipt_handle.to_owned(), delay));
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError> {
        lock(&self.dead).push((body.to_owned(), reason.to_owned()));
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct FakeOutcomes(Mutex<Vec<Outcome>>);

impl OutcomeStore for FakeOutcomes {
    async fn put_outcome(&self, _run_id: &str, outcome: &Outcome) -> Result<(), StateError> {
        lock(&self.0).push(outcome.clone());
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct Fakes {
    pub(super) verint: FakeVerint,
    pub(super) connect: FakeConnect,
    pub(super) recordings: FakeRecordings,
    pub(super) queue: FakeQueue,
    pub(super) outcomes: FakeOutcomes,
}

impl Fakes {
    pub(super) fn worker(
        &self,
    ) -> Worker<'_, FakeVerint, FakeConnect, FakeRecordings, FakeQueue, FakeOutcomes> {
        Worker {
            verint: &self.verint,
            connect: &self.connect,
            recordings: &self.recordings,
            queue: &self.queue,
            outcomes: &self.outcomes,
            settings: WorkSettings {
                concurrency: 10,
                uploads: 4,
                max_receive_count: Some(3),
                retry_base: Duration::from_secs(10),
                retry_max: Duration::from_secs(600),
                min_link_rate: 1_000_000,
                hold: None,
            },
        }
    }

    pub(super) async fn work(
        &self,
        messages: &[Incoming],
        deadline: Option<Instant>,
    ) -> Vec<Disposition> {
        self.worker()
            .work_batch(messages, deadline, &mut Metrics::new("test"))
            .await
    }

    pub(super) fn outcome(&self, contact_id: &str) -> Outcome {
        lock(&self.outcomes.0)
            .iter()
            .rev()
            .find(|o| o.contact_id == contact_id)
            .cloned()
            .expect("an outcome")
    }

    pub(super) fn delay_of(&self, contact_id: &str) -> Option<Duration> {
        lock(&self.queue.delays)
            .iter()
            .find(|(h, _)| h == &format!("r-{contact_id}"))
            .map(|(_, d)| *d)
    }

    pub(super) fn stored(&self) -> Vec<(String, u64)> {
        lock(&self.verint.stored).clone()
    }
}
