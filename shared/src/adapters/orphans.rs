//! The orphan lookups against the real services: the recordings listed in S3, Verint's DAS
//! asked by id, Connect's `DescribeContact`.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::adapters::connect::ConnectClient;
use crate::adapters::verint::VerintClient;
use crate::config::RecordingsLocation;
use crate::domain::orphans::day_prefixes;
use crate::domain::time::Window;
use crate::ports::connect::ConnectError;
use crate::ports::orphans::{CallTimes, OrphanError, OrphanLookup};

/// Lists the recordings of `window`'s days.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    window: Window,
) -> Result<Vec<String>, aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error> {
    let mut keys = Vec::new();
    for day in day_prefixes(prefix, window) {
        keys.extend(
            crate::adapters::aws::list_objects(s3, bucket, &day)
                .await?
                .into_iter()
                .filter_map(|o| o.key),
        );
    }
    Ok(keys)
}

/// The orphan lookups against the real services: S3 for the listing, Verint's DAS by id, and
/// Connect's `DescribeContact` under the process-wide rate limit.
#[derive(Debug)]
pub struct RecordingOrphans {
    pub s3: aws_sdk_s3::Client,
    pub location: RecordingsLocation,
    pub verint: VerintClient,
    pub connect: ConnectClient,
    pub instance_id: String,
}

impl OrphanLookup for RecordingOrphans {
    fn bucket(&self) -> &str {
        &self.location.bucket
    }

    fn recording_keys(&self, window: Window) -> BoxFuture<'_, Result<Vec<String>, OrphanError>> {
        let RecordingsLocation { bucket, prefix } = &self.location;
        Box::pin(async move {
            list(&self.s3, bucket, prefix, window)
                .await
                .map_err(|source| OrphanError::Listing {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    source: Box::new(source),
                })
        })
    }

    fn in_verint<'a>(&'a self, contact_id: &'a str) -> BoxFuture<'a, Result<bool, OrphanError>> {
        Box::pin(async move {
            match self.verint.holds(contact_id).await {
                Ok(held) => Ok(held.is_some()),
                Err(source) => Err(OrphanError::Verint {
                    contact_id: contact_id.to_owned(),
                    source,
                }),
            }
        })
    }

    fn times<'a>(
        &'a self,
        contact_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CallTimes>, OrphanError>> {
        Box::pin(async move {
            let ts = |t: Option<&aws_sdk_connect::primitives::DateTime>| {
                t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
            };
            match self.connect.describe(&self.instance_id, contact_id).await {
                Ok(c) => Ok(
                    ts(c.initiation_timestamp.as_ref()).zip(ts(c.disconnect_timestamp.as_ref()))
                ),
                Err(ConnectError::NotFound) => Ok(None),
                Err(source) => Err(OrphanError::Connect {
                    contact_id: contact_id.to_owned(),
                    source,
                }),
            }
        })
    }
}
