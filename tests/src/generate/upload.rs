//! A generated day put where the stack reads it: S3 objects, the simulator's seed, and a
//! one-screen summary.

use super::*;

/// Puts every CTR, recording and redacted recording object (archived ones with their storage
/// class), creating the buckets when absent.
pub async fn upload(s3: &aws_sdk_s3::Client, day: &Day) -> anyhow::Result<()> {
    let objects = || {
        day.ctr_objects
            .iter()
            .chain(&day.recordings)
            .chain(&day.redacted)
    };
    let buckets: BTreeSet<&str> = objects().map(|o| o.bucket.as_str()).collect();
    for b in buckets {
        ensure_bucket(s3, b).await?;
    }
    futures::stream::iter(objects())
        .map(|o| async move {
            s3.put_object()
                .bucket(&o.bucket)
                .key(&o.key)
                .set_storage_class(
                    o.storage_class
                        .as_deref()
                        .map(aws_sdk_s3::types::StorageClass::from),
                )
                .body(aws_sdk_s3::primitives::ByteStream::from(o.body.clone()))
                .send()
                .await
                .with_context(|| format!("put s3://{}/{}", o.bucket, o.key))
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

pub(super) async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut req = s3.create_bucket().bucket(bucket);
    if let Some(region) = s3.config().region().map(|r| r.as_ref().to_owned())
        && region != "us-east-1"
    {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let se = e.into_service_error();
            if se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists() {
                Ok(())
            } else {
                Err(anyhow::Error::new(se).context(format!("create bucket {bucket}")))
            }
        }
    }
}

/// Appends the day's Verint holdings and Connect contacts to a running simulator.
pub async fn seed_simulator(base_url: &str, day: &Day) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = base_url.trim_end_matches('/');
    http.post(format!("{base}/_admin/verint"))
        .json(&day.verint)
        .send()
        .await
        .context("seed verint")?
        .error_for_status()?;
    http.post(format!("{base}/_admin/connect"))
        .json(&day.connect)
        .send()
        .await
        .context("seed connect")?
        .error_for_status()?;
    Ok(())
}

/// A one-paragraph description of a day.
pub fn summary(day: &Day) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for tr in &day.truth {
        *kinds.entry(tr.kind.as_str()).or_default() += 1;
    }
    let eligible = day.truth.iter().filter(|t| t.eligible()).count();
    let missing = day.truth.iter().filter(|t| t.missing()).count();
    let unrecoverable = day
        .truth
        .iter()
        .filter(|t| t.eligible() && !t.in_verint && t.all_deleted())
        .count();
    let dups = day
        .truth
        .iter()
        .filter(|t| t.arrival_hours.len() > 1)
        .count();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let others = day.truth.iter().filter(|t| !t.ours).count();
    let other_eligible = day
        .truth
        .iter()
        .filter(|t| !t.ours && t.eligible_in(&[t.instance_id.as_str()]))
        .count();
    // Chains: by their first leg's id; a chain crosses midnight when its legs start on two days.
    let firsts: BTreeSet<&str> = day
        .truth
        .iter()
        .filter_map(|t| t.initial_contact_id.as_deref())
        .collect();
    let mut chains: BTreeMap<&str, Vec<&Truth>> = BTreeMap::new();
    for t in &day.truth {
        if t.initial_contact_id.is_some() || firsts.contains(t.contact_id.as_str()) {
            chains.entry(t.chain_id()).or_default().push(t);
        }
    }
    let legs: usize = chains.values().map(Vec::len).sum();
    let crossing = chains
        .values()
        .filter(|legs| {
            let days: BTreeSet<NaiveDate> =
                legs.iter().map(|t| t.initiation.date_naive()).collect();
            days.len() > 1
        })
        .count();
    let gaps = chains
        .values()
        .filter(|legs| legs.iter().any(|t| t.missing()))
        .count();
    let truncated = day.truth.iter().filter(|t| t.truncated).count();
    let header_longer = day
        .recordings
        .iter()
        .filter(|o| wav_claims_more(&o.body))
        .count();
    let archived = day.truth.iter().filter(|t| t.archived).count();
    let recorded = day
        .truth
        .iter()
        .filter(|t| t.channel == "VOICE" && !t.recordings_to_ingest().is_empty())
        .count();
    let unredacted_missing = day
        .truth
        .iter()
        .filter(|t| t.missing() && t.redacted_key.is_none())
        .count();
    format!(
        "{} CTR objects ({} malformed inputs planted), {} recordings, {} contacts ({}), {} with \
         duplicate copies; {} eligible calls, Verint lacks {} of them ({} unrecoverable: every \
         recording deleted, {} to recover); Verint holds {} contacts, Connect knows {}. \
         {} contacts of the other instance ({} eligible were it planned for). {} transfer \
         chains ({} legs, {} crossing midnight, {} with a leg to recover). {} truncated \
         recordings ({} with a header longer than the object), {} archived (GLACIER); {} \
         redacted recordings of {} recorded calls ({} calls to recover have none).",
        day.ctr_objects.len(),
        day.malformed_records,
        day.recordings.len(),
        day.truth.len(),
        kinds.join(", "),
        dups,
        eligible,
        missing + unrecoverable,
        unrecoverable,
        missing,
        day.verint.len(),
        day.connect.len(),
        others,
        other_eligible,
        chains.len(),
        legs,
        crossing,
        gaps,
        truncated,
        header_longer,
        archived,
        day.redacted.len(),
        recorded,
        unredacted_missing,
    )
}

/// A WAV whose header's data size is more than the object holds after its 44-byte header.
pub(super) fn wav_claims_more(body: &[u8]) -> bool {
    body.get(40..44)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| {
            u64::from(u32::from_le_bytes(b)) + audio::WAV_HEADER_BYTES > body.len() as u64
        })
}
