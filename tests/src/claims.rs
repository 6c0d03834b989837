//! The claims the end-to-end tests make, named for the domain, so that a test reads as the
//! claim it makes (`assert_in_verint_once(&stack.sim, &id)`) and the CLI's tests
//! (`cli/tests/`) make them in the same words. Each helper asserts one thing and says, when it
//! fails, which contact broke it.

use std::collections::{HashMap, HashSet};

use recovery::ports::queue::Received;

use recovery::adapters::sqs::SqsQueue;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::generate::Day;
use crate::sim::{IngestAnswer, SimStats, Simulator};
use crate::stack::Stack;

/// The contact ids of the calls Verint holds because a worker ingested them.
pub fn ingested_ids(sim: &Simulator) -> HashSet<String> {
    sim.state()
        .ingested()
        .into_iter()
        .map(|c| c.contact_id)
        .collect()
}

/// Verint holds exactly `expected` among the calls ingested: none missing, none extra.
pub fn assert_in_verint_exactly(sim: &Simulator, expected: &HashSet<String>) {
    assert_eq!(
        &ingested_ids(sim),
        expected,
        "Verint holds exactly the expected calls"
    );
}

/// `contact_id` was ingested, and stored once.
pub fn assert_in_verint_once(sim: &Simulator, contact_id: &str) {
    let held: Vec<u32> = sim
        .state()
        .ingested()
        .iter()
        .filter(|c| c.contact_id == contact_id)
        .map(|c| c.stored_times)
        .collect();
    assert_eq!(held, vec![1], "{contact_id} is in Verint, stored once");
}

/// Every ingested call carries one audio part per recording of `day`'s ground truth, in design
/// §4 order, named `<contactId>-<n>.wav` and byte-identical to the S3 object.
pub fn assert_audio_byte_for_byte(sim: &Simulator, day: &Day) {
    let bodies: HashMap<(String, String), &Vec<u8>> = day
        .recordings
        .iter()
        .map(|o| ((o.bucket.clone(), o.key.clone()), &o.body))
        .collect();
    for call in sim.state().ingested() {
        let truth = day
            .truth
            .iter()
            .find(|t| t.contact_id == call.contact_id)
            .expect("an ingested call is a generated contact");
        let recordings = truth.recordings_to_ingest();
        assert_eq!(
            call.audio.len(),
            recordings.len(),
            "{}: one audio part per recording",
            call.contact_id
        );
        for (n, (part, location)) in call.audio.iter().zip(&recordings).enumerate() {
            let body = bodies[location];
            assert_eq!(part.filename, format!("{}-{}.wav", call.contact_id, n + 1));
            assert_eq!(part.bytes, body.len() as u64);
            assert_eq!(
                part.sha256,
                hex::encode(Sha256::digest(body)),
                "{} part {} is byte-identical",
                call.contact_id,
                n + 1
            );
        }
    }
}

/// Every ingested call's metadata names its contact and, its day long over, expects no screen
/// recording (design §6 `screensExpected`).
pub fn assert_metadata_names_the_contact_and_expects_no_screens(sim: &Simulator) {
    for call in sim.state().ingested() {
        assert_eq!(call.metadata["amazonContactId"], call.contact_id.as_str());
        assert_eq!(
            call.metadata["recovery"]["screensExpected"], false,
            "{}: the day ended long ago",
            call.contact_id
        );
    }
}

/// Nothing was ingested twice, as the client behaved, not only as Verint stored it (the
/// simulator answers 409 to a repeated `Idempotency-Key`, so its holdings cannot show a
/// duplicate): no contact was stored more than once, none got more than one 201, and no contact
/// was sent again after it was told its call was in Verint (201 or 409).
pub fn assert_nothing_sent_twice(stats: &SimStats) {
    for (id, answers) in &stats.ingest_answers {
        let stores = answers.iter().filter(|a| a.stored()).count();
        assert!(stores <= 1, "{id} stored {stores} times: {answers:?}");
        assert!(
            stats.created_answers(id) <= 1,
            "{id} answered 201 more than once: {answers:?}"
        );
        if let Some(first) = answers.iter().position(|a| a.is_success()) {
            assert_eq!(
                first + 1,
                answers.len(),
                "{id} was sent again after Verint said it had the call: {answers:?}"
            );
        }
    }
}

/// Each contact in `ids` was sent exactly once, and answered 201.
pub fn assert_sent_once_each(stats: &SimStats, ids: &HashSet<String>) {
    for id in ids {
        assert_eq!(
            stats.ingest_answers.get(id),
            Some(&vec![IngestAnswer::Created]),
            "{id} sent once, answered 201"
        );
    }
}

/// Each contact in `ids` was stored by exactly one attempt, and sent again only after a fault:
/// every attempt but the last met an injected fault, and the last was a fault too (the next
/// receive then found the call in Verint, design §5) or the one success answer (201, or 409 after
/// a response lost once the call was stored).
pub fn assert_stored_once_and_sent_again_only_after_faults(
    stats: &SimStats,
    ids: &HashSet<String>,
) {
    for id in ids {
        let answers = stats.ingest_answers.get(id).cloned().unwrap_or_default();
        let stored = answers.iter().filter(|a| a.stored()).count();
        assert_eq!(stored, 1, "{id} stored by one attempt: {answers:?}");
        let (last, before) = answers.split_last().expect("stored, so sent");
        assert!(
            before.iter().all(|a| a.is_fault()),
            "{id} sent again only after a fault: {answers:?}"
        );
        assert!(
            last.is_fault() || last.is_success(),
            "{id} ends answered or faulted, never rejected: {answers:?}"
        );
    }
}

/// The messages visible in the dead-letter queue.
pub async fn dead_letter_depth(stack: &Stack) -> u64 {
    stack
        .dead_letter_queue
        .depth()
        .await
        .expect("the dead-letter queue's depth")
        .visible
}

/// Nothing was dead-lettered.
pub async fn assert_dead_letter_queue_empty(stack: &Stack) {
    assert_eq!(dead_letter_depth(stack).await, 0, "the DLQ is empty");
}

/// The `contact_id` of a work message's body, if it parses as one.
pub fn contact_id_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b["contact_id"].as_str().map(str::to_owned))
}

/// The dead letters, read once: each contact's `failure_reason`, and the reasons of the bodies
/// that name no contact.
#[derive(Debug, Default)]
pub struct DeadLetters {
    pub by_contact: HashMap<String, String>,
    pub unparsable: Vec<String>,
}

impl DeadLetters {
    /// Reads every message of the dead-letter queue; each must carry a `failure_reason`.
    pub async fn read(stack: &Stack) -> DeadLetters {
        let mut out = DeadLetters::default();
        for m in Stack::all_messages(&stack.dead_letter_queue)
            .await
            .expect("the DLQ is readable")
        {
            let reason = m
                .attributes
                .get("failure_reason")
                .cloned()
                .unwrap_or_default();
            assert!(
                !reason.is_empty(),
                "every dead letter carries failure_reason"
            );
            match contact_id_of(&m.body) {
                Some(id) => {
                    out.by_contact.insert(id, reason);
                }
                None => out.unparsable.push(reason),
            }
        }
        out
    }

    pub fn ids(&self) -> HashSet<String> {
        self.by_contact.keys().cloned().collect()
    }
}

/// The queue holds one message per contact of `ids` and nothing else; returns the messages.
pub async fn assert_queued_exactly(queue: &SqsQueue, ids: &HashSet<String>) -> Vec<Received> {
    let messages = Stack::all_messages(queue)
        .await
        .expect("the queue is readable");
    let mut seen = HashSet::new();
    for m in &messages {
        let id = contact_id_of(&m.body).expect("a work message names its contact");
        assert!(seen.insert(id.clone()), "{id} queued once");
    }
    assert_eq!(&seen, ids, "the queue holds exactly these contacts");
    messages
}
