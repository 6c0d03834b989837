//! Queueing a plan's messages a chunk at a time within the run's deadlines (design §4.7).

use super::*;

/// Messages sent between two looks at the clock: three rounds of `SEND_CONCURRENCY` batches.
const QUEUE_CHUNK: usize = 480;

/// What an invocation keeps, after the run stops reading hours, to ask DAS, look up orphans,
/// queue, write the ledger, move the checkpoint and write the report (design §4.7).
pub const READING_MARGIN: Duration = Duration::from_secs(120);

/// What an invocation keeps, after the run's look-ups and queueing stop, for the queued record,
/// the ledger, the checkpoint and the report (design §4.7).
pub const FINISH_MARGIN: Duration = Duration::from_secs(20);

/// The two instants a run keeps to (design §4.7): it reads no further hour after `reading`, and
/// starts no look-up or queueing chunk after `finish_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub reading: Instant,
    pub finish_by: Instant,
}

impl Deadlines {
    /// Of an invocation that ends at `end`: reading stops [`READING_MARGIN`] before it, look-ups
    /// and queueing [`FINISH_MARGIN`] before it. An invocation shorter than a margin has no time
    /// for that step: its instant has passed when the run starts.
    pub fn of_invocation(end: Instant) -> Self {
        let before = |margin: Duration| end.checked_sub(margin).unwrap_or(end);
        Deadlines {
            reading: before(READING_MARGIN),
            finish_by: before(FINISH_MARGIN),
        }
    }

    /// Set by hand (`recoveryctl plan --deadline`): reading stops at `reading`, and look-ups and
    /// queueing may go on as long after it as an invocation leaves them.
    pub fn reading_until(reading: Instant) -> Self {
        Deadlines {
            reading,
            finish_by: reading + (READING_MARGIN - FINISH_MARGIN),
        }
    }
}

/// What queueing a plan's messages did.
#[derive(Debug, Default)]
pub(super) struct Queued {
    /// Accepted by SQS in this run, plus those an earlier attempt queued.
    pub(super) enqueued: u64,
    /// Queued by an earlier attempt of the same plan, not sent again.
    pub(super) already: u64,
    /// Contacts whose message SQS rejected as the sender's fault, with the reason.
    pub(super) rejected: HashMap<String, String>,
    /// False when the deadline stopped the queueing.
    pub(super) complete: bool,
}

impl<S: CtrSource, V: VerintHoldings, Q: WorkQueue, R: RunStore> Planner<'_, S, V, Q, R> {
    /// One message per missing contact of `missing`, then one per orphan to queue (design §5).
    pub(super) fn messages<'m, 'c: 'm>(
        &self,
        run_id: &str,
        missing: impl IntoIterator<Item = &'m matching::Missing<'c>>,
        found: &[FoundOrphan],
        redacted: &redacted::RedactedAudio,
    ) -> Vec<WorkMessage> {
        let enqueued_at = format_ts(Utc::now());
        let message = |contact_id: String,
                       instance: Option<usize>,
                       (initiation, disconnect): CallTimes,
                       recordings| WorkMessage {
            v: MESSAGE_VERSION,
            run_id: run_id.to_owned(),
            contact_id,
            instance_id: instance
                .and_then(|i| self.config.connect_instance_ids.get(i))
                .unwrap_or(&self.config.connect_instance_id)
                .clone(),
            initiation_timestamp: format_ts(initiation),
            disconnect_timestamp: format_ts(disconnect),
            recordings,
            enqueued_at: enqueued_at.clone(),
        };
        let missing = missing.into_iter().map(|m| {
            let recordings = match redacted.get(&m.contact.key()) {
                Some(audio) => vec![audio.clone()],
                None => m.recordings(),
            };
            message(
                m.contact_id(),
                m.contact.instance(),
                (m.initiation, m.disconnect),
                recordings,
            )
        });
        let orphans = found.iter().filter(|f| f.queued()).filter_map(|f| {
            Some(message(
                f.orphan.contact_id.clone(),
                None,
                f.times?,
                f.orphan
                    .recordings
                    .iter()
                    .map(|l| QueuedRecording::new(l.clone(), None))
                    .collect(),
            ))
        });
        missing.chain(orphans).collect()
    }

    /// One message per orphan to queue.
    pub(super) fn orphan_messages(&self, run_id: &str, found: &[FoundOrphan]) -> Vec<WorkMessage> {
        self.messages(run_id, std::iter::empty(), found, &Default::default())
    }

    /// Queues the orphans' messages (none in a dry run): how many SQS accepted, and the reason
    /// of each it rejected (the orphan stays an orphan, reported as not queued).
    pub(super) async fn enqueue_orphans(
        &self,
        request: Request,
        messages: &[WorkMessage],
    ) -> Result<(u64, HashMap<String, String>), PlanError> {
        let mut rejected_ids = HashMap::new();
        if request.dry_run() || messages.is_empty() {
            return Ok((0, rejected_ids));
        }
        let sent = self.queue.send_all(messages).await?;
        for (i, reason) in sent.rejected {
            if let Some(m) = messages.get(i) {
                let reason = format!("sqs rejected the work message: {reason}");
                error!(contact_id = %m.contact_id, %reason, "sqs rejected the work message of an orphan");
                rejected_ids.insert(m.contact_id.clone(), reason);
            }
        }
        Ok((sent.accepted, rejected_ids))
    }

    /// Queues the plan's messages (none in a dry run), [`QUEUE_CHUNK`] at a time while the run
    /// has time (design §4.7): what an earlier attempt of the same plan queued is skipped, and if
    /// the deadline (or a failure of SQS) stops this one, every id queued so far is recorded for
    /// the next attempt. A message SQS rejects as the sender's fault would be rejected by every
    /// later run too: its contact becomes unrecoverable with the reason, and the run goes on.
    pub(super) async fn enqueue(
        &self,
        request: Request,
        run_id: &str,
        plan_key: &str,
        class: &mut matching::Classification<'_>,
        redacted: &redacted::RedactedAudio,
    ) -> Result<Queued, PlanError> {
        let mut queued = Queued {
            complete: true,
            ..Queued::default()
        };
        if request.dry_run() {
            return Ok(queued);
        }
        let before: HashSet<String> = self.store.queued_log(plan_key).await?.into_iter().collect();
        let had_log = !before.is_empty();
        // Messages are built a chunk at a time: a day of a million missing calls is hundreds of
        // MB of messages, and only the chunk in flight needs to exist.
        let fresh: Vec<&matching::Missing> = class
            .missing
            .iter()
            .filter(|m| !had_log || !before.contains(&m.contact_id()))
            .collect();
        let total = class.missing.len();
        queued.already = (total - fresh.len()) as u64;
        if queued.already > 0 {
            info!(
                already_queued = queued.already,
                left = fresh.len(),
                "continuing a plan an earlier attempt stopped"
            );
        }
        // The fresh calls of the chunks sent so far; the ids queued are recorded only when the
        // run stops short, so a complete run never holds a million of them at once.
        let mut sent_calls = 0;
        let mut failure = None;
        for (n, missing) in fresh.chunks(QUEUE_CHUNK).enumerate() {
            // Every attempt queues at least one chunk, so that a run whose reading and DAS took
            // the time still makes progress, and the next attempt has less to do.
            if n > 0 && self.finish_by.is_some_and(|d| Instant::now() >= d) {
                queued.complete = false;
                break;
            }
            let chunk = self.messages(run_id, missing.iter().copied(), &[], redacted);
            let sent = match self.queue.send_all(&chunk).await {
                Ok(sent) => sent,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            queued.enqueued += sent.accepted;
            for (i, reason) in sent.rejected {
                if let Some(m) = chunk.get(i) {
                    let reason = format!("sqs rejected the work message: {reason}");
                    error!(contact_id = %m.contact_id, %reason, "sqs rejected the work message");
                    queued.rejected.insert(m.contact_id.clone(), reason);
                }
            }
            sent_calls += missing.len();
        }
        if !queued.complete || failure.is_some() {
            let mut ids: Vec<String> = before.into_iter().collect();
            ids.extend(
                fresh[..sent_calls]
                    .iter()
                    .map(|m| m.contact_id())
                    .filter(|id| !queued.rejected.contains_key(id)),
            );
            self.store.put_queued_log(plan_key, Some(&ids)).await?;
            warn!(
                queued = ids.len(),
                missing = total,
                "queueing stopped; the queued ids are recorded for the next attempt"
            );
        } else if had_log {
            self.store.put_queued_log(plan_key, None).await?;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        queued.enqueued += queued.already;
        let rejected = &queued.rejected;
        if !rejected.is_empty() {
            let (kept, lost): (Vec<_>, Vec<_>) = std::mem::take(&mut class.missing)
                .into_iter()
                .partition(|m| !rejected.contains_key(&m.contact_id()));
            class.missing = kept;
            for m in lost {
                let contact_id = m.contact_id();
                class.unrecoverable.push(matching::Unrecoverable {
                    reason: rejected[&contact_id].clone(),
                    contact_id,
                });
            }
        }
        Ok(queued)
    }
}
