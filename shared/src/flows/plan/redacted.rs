//! Redacted audio (design §10): with `RECORDING_VARIANT` other than `original`, each missing
//! call's Contact Lens redacted recording is looked for beside its recordings, so that its
//! message names the audio to send; with `redacted`, a call without one is withheld.

use super::*;

/// A day with more missing calls than this is listed whole; fewer are looked up one by one.
const PER_CONTACT_LOOKUPS: usize = 100;
/// Listings at once.
const LISTINGS: usize = 8;

/// Each missing call's redacted recording, by contact.
pub(super) type RedactedAudio = HashMap<ContactKey, QueuedRecording>;

/// Missing calls to look up together: each contact and its original recordings.
type Calls = Vec<(ContactKey, Vec<QueuedRecording>)>;

impl<S: CtrSource, V: VerintHoldings, Q: WorkQueue, R: RunStore> Planner<'_, S, V, Q, R> {
    /// Looks for the redacted audio of every missing call (none with `original`, or without a
    /// listing); with `redacted`, withholds the calls that have none (design §10).
    pub(super) async fn redacted_audio(
        &self,
        class: &mut matching::Classification<'_>,
        eligible: &[matching::Eligible],
        now: DateTime<Utc>,
    ) -> Result<RedactedAudio, PlanError> {
        let variant = self.config.recording_variant;
        let (true, Some(listing)) = (variant.wants_redacted(), self.redacted) else {
            return Ok(RedactedAudio::new());
        };
        let prefix = &self.config.redacted_prefix;
        // The missing calls by (bucket, day of initiation).
        let mut groups: BTreeMap<(String, chrono::NaiveDate), Calls> = BTreeMap::new();
        for m in &class.missing {
            let recordings = m.recordings();
            let Some(bucket) = recordings.first().map(|r| r.bucket.clone()) else {
                continue;
            };
            groups
                .entry((bucket, m.initiation.date_naive()))
                .or_default()
                .push((m.contact.key(), recordings));
        }
        let lookups = groups.into_iter().flat_map(|((bucket, day), calls)| {
            let day_prefix = crate::domain::recording::redacted_day_prefix(prefix, day);
            if calls.len() > PER_CONTACT_LOOKUPS {
                vec![(bucket, day_prefix, calls)]
            } else {
                calls
                    .into_iter()
                    .map(|(key, recordings)| {
                        let contact_prefix = format!("{day_prefix}{key}_call_recording_redacted_");
                        (bucket.clone(), contact_prefix, vec![(key, recordings)])
                    })
                    .collect()
            }
        });
        let listed: Vec<(String, Vec<String>, Calls)> =
            stream::iter(lookups.map(|(bucket, prefix, calls)| async move {
                let keys = listing.keys(&bucket, &prefix).await?;
                Ok::<_, crate::ports::recordings::RecordingError>((bucket, keys, calls))
            }))
            .buffer_unordered(LISTINGS)
            .try_collect()
            .await
            .map_err(PlanError::Redacted)?;
        let mut found = RedactedAudio::new();
        for (bucket, keys, calls) in listed {
            let mut by_contact: HashMap<String, Vec<String>> = HashMap::new();
            for key in keys {
                if let Some(contact) = crate::domain::recording::redacted_contact_of(&key) {
                    by_contact
                        .entry(contact.to_ascii_lowercase())
                        .or_default()
                        .push(key);
                }
            }
            for (contact, recordings) in calls {
                let Some(keys) = by_contact.get_mut(&contact.to_string().to_ascii_lowercase())
                else {
                    continue;
                };
                keys.sort();
                if let Some(audio) =
                    choose_audio(variant, &recordings, &bucket, keys).and_then(|mut a| a.pop())
                {
                    found.insert(contact, audio);
                }
            }
        }
        info!(
            missing = class.missing.len(),
            redacted = found.len(),
            variant = variant.as_str(),
            "redacted audio looked for"
        );
        if variant == Variant::Redacted {
            matching::withhold_unredacted(class, eligible, |k| found.contains_key(k), now);
        }
        Ok(found)
    }
}
