//! The search for orphan recordings of a manual run's window (design §9.2).

use super::*;

/// Orphans looked up at once (Connect's rate limit paces them anyway).
const ORPHAN_CONCURRENCY: usize = 8;

/// An orphan the run found, and what became of it.
#[derive(Debug)]
pub(super) struct FoundOrphan {
    pub(super) orphan: Orphan,
    pub(super) times: Option<CallTimes>,
    pub(super) in_verint: bool,
}

impl FoundOrphan {
    /// Asks Verint whether it holds the orphan's contact and, when it does not, Connect for the
    /// call's times; an orphan Connect cannot time is not queued.
    pub(super) async fn look_up(
        lookup: &dyn OrphanLookup,
        orphan: Orphan,
    ) -> Result<Self, PlanError> {
        if lookup.in_verint(&orphan.contact_id).await? {
            return Ok(FoundOrphan {
                orphan,
                times: None,
                in_verint: true,
            });
        }
        let times = lookup.times(&orphan.contact_id).await?;
        if times.is_none() {
            let contact_id = &orphan.contact_id;
            warn!(
                %contact_id,
                "orphan recording of a contact Connect does not describe (or not ended): not queued"
            );
        }
        Ok(FoundOrphan {
            orphan,
            times,
            in_verint: false,
        })
    }

    pub(super) fn queued(&self) -> bool {
        !self.in_verint && self.times.is_some()
    }
}

impl<S: CtrSource, V: VerintHoldings, Q: WorkQueue, R: RunStore> Planner<'_, S, V, Q, R> {
    /// The orphan recordings of a manual run's window (design §9): recordings whose time lies in
    /// the window and whose contact has no CTR among the hours read; each asked of Verint by id,
    /// and, when Verint lacks it, of Connect for its times.
    pub(super) async fn orphans(
        &self,
        lookup: &dyn OrphanLookup,
        window: Window,
        contacts: &crate::domain::contacts::ContactSet,
    ) -> Result<(Vec<FoundOrphan>, u64), PlanError> {
        let keys = lookup.recording_keys(window).await?;
        let listed = keys.len();
        // The contact set has no index by id: find, in one pass, which listed contacts have a CTR.
        let listed_ids: HashSet<ContactKey> = keys
            .iter()
            .filter_map(|k| crate::domain::orphans::parse_recording_key(k))
            .map(|name| ContactKey::new(&name.contact_id))
            .collect();
        let with_ctr: HashSet<ContactKey> = contacts
            .iter()
            .map(|c| c.key())
            .filter(|k| listed_ids.contains(k))
            .collect();
        let orphans: Vec<Orphan> =
            crate::domain::orphans::find(lookup.bucket(), keys, window, |k| with_ctr.contains(k));
        // Each look-up is isolated and bounded: one that fails (a throttled DescribeContact, a
        // DAS that does not answer) or that the deadline leaves no time for is counted and left
        // for the next run, never fatal to this one.
        let finish_by = self.finish_by;
        let looked: Vec<Result<FoundOrphan, (Orphan, String)>> = stream::iter(orphans)
            .map(|orphan| async move {
                let contact_id = orphan.contact_id.clone();
                let result = match finish_by {
                    Some(d) if Instant::now() >= d => Err("no time left before the deadline".into()),
                    Some(d) => {
                        match tokio::time::timeout_at(d.into(), FoundOrphan::look_up(lookup, orphan.clone())).await {
                            Ok(r) => r.map_err(|e| error_chain(&e)),
                            Err(_) => Err("the deadline came during the look-up".into()),
                        }
                    }
                    None => FoundOrphan::look_up(lookup, orphan.clone())
                        .await
                        .map_err(|e| error_chain(&e)),
                };
                result.map_err(|why| {
                    warn!(%contact_id, reason = %why, "orphan look-up failed; the next run tries it again");
                    (orphan, why)
                })
            })
            .buffer_unordered(ORPHAN_CONCURRENCY)
            .collect()
            .await;
        let mut found = Vec::with_capacity(looked.len());
        let mut failed = 0u64;
        for r in looked {
            match r {
                Ok(f) => found.push(f),
                Err((orphan, _)) => {
                    failed += 1;
                    found.push(FoundOrphan {
                        orphan,
                        times: None,
                        in_verint: false,
                    });
                }
            }
        }
        found.sort_by(|a, b| a.orphan.contact_id.cmp(&b.orphan.contact_id));
        info!(
            recordings = listed,
            orphans = found.len(),
            queued = found.iter().filter(|f| f.queued()).count(),
            lookups_failed = failed,
            "orphan recordings looked for"
        );
        Ok((found, failed))
    }
}
