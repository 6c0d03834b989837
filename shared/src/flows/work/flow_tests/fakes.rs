//! The worker's five fakes wired together (each port's own fake is in `ports::*::fake`), and the
//! helpers the flow tests build messages with.

use std::sync::Mutex;

use super::super::*;
use crate::domain::recording::{RestoreTier, Variant};
pub(super) use crate::ports::connect::fake::*;
pub(super) use crate::ports::queue::fake::*;
pub(super) use crate::ports::recordings::fake::*;
pub(super) use crate::ports::store::fake::*;
pub(super) use crate::ports::verint::fake::*;
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
        attributes: Default::default(),
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
                audio: AudioSettings {
                    variant: Variant::Original,
                    redacted_prefix: "Analysis/Voice/Redacted/".into(),
                    restore_tier: RestoreTier::Standard,
                    restore_max_wait: Duration::from_secs(48 * 3600),
                },
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
