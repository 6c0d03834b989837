//! Recordings in S3: `HeadObject` to open one (its size and ETag), `GetObject` when its part is
//! first polled.

use aws_sdk_s3::types::StorageClass;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tokio_util::io::ReaderStream;

use crate::domain::ctr::S3Location;
use crate::domain::recording::RestoreTier;
use crate::ports::bounded;
use crate::ports::recordings::{Recording, RecordingError, RecordingStore, Restore};
use crate::ports::verint::AudioPart;

/// A recording about to be streamed: its size and ETag from `HeadObject`. The `GetObject` starts
/// only when its part is reached, so a second recording's connection never sits idle while the
/// first one streams; `If-Match` pins the bytes to the size declared in `Content-Length`.
#[derive(Debug)]
pub struct OpenRecording {
    pub location: S3Location,
    pub len: u64,
    /// The archive class, when this is a restored copy of an archived recording.
    pub restored_from: Option<String>,
    etag: Option<String>,
    s3: aws_sdk_s3::Client,
}

/// How many days a restored copy stays readable: long enough for the checks that follow the
/// restore and for an operator's redrive of the days after.
const RESTORED_DAYS: i32 = 7;

/// Whether `HeadObject`'s storage class and archive status say the object is archived, and if
/// so which class; `x-amz-restore` with `ongoing-request="false"` means a restored copy is
/// readable, `"true"` that a restore is under way.
fn archived(
    storage_class: Option<&aws_sdk_s3::types::StorageClass>,
    archive_status: Option<&aws_sdk_s3::types::ArchiveStatus>,
    restore: Option<&str>,
) -> Option<(String, Restore)> {
    use aws_sdk_s3::types::StorageClass;
    let class = match (storage_class, archive_status) {
        (_, Some(status)) => format!("INTELLIGENT_TIERING {}", status.as_str()),
        (Some(c @ (StorageClass::Glacier | StorageClass::DeepArchive)), None) => {
            c.as_str().to_owned()
        }
        _ => return None,
    };
    match restore {
        Some(r) if r.contains("ongoing-request=\"false\"") => None,
        Some(r) if r.contains("ongoing-request=\"true\"") => Some((class, Restore::InProgress)),
        _ => Some((class, Restore::NotRequested)),
    }
}

/// `HeadObject` on a recording: a missing object is [`RecordingError::Gone`], an archived one
/// without a readable restored copy [`RecordingError::Archived`].
pub async fn open_recording(
    s3: &aws_sdk_s3::Client,
    location: &S3Location,
) -> Result<OpenRecording, RecordingError> {
    let out = s3
        .head_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .send()
        .await
        .map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let e = e.into_service_error();
            if e.is_not_found() || status == Some(404) {
                RecordingError::Gone {
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                }
            } else {
                RecordingError::Unreadable {
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                    source: Box::new(e),
                }
            }
        })?;
    if let Some((storage_class, restore)) =
        archived(out.storage_class(), out.archive_status(), out.restore())
    {
        return Err(RecordingError::Archived {
            bucket: location.bucket.clone(),
            key: location.key.clone(),
            storage_class,
            restore,
        });
    }
    let restored_from = match out.storage_class() {
        Some(c @ (StorageClass::Glacier | StorageClass::DeepArchive)) => {
            Some(c.as_str().to_owned())
        }
        _ => None,
    };
    Ok(OpenRecording {
        restored_from,
        location: location.clone(),
        len: out.content_length.unwrap_or(0).max(0) as u64,
        etag: out.e_tag,
        s3: s3.clone(),
    })
}

impl OpenRecording {
    /// The part's body: `GetObject` when first polled, then its bytes in 64 KiB chunks.
    pub fn into_part(self) -> AudioPart {
        let len = self.len;
        let body = stream::once(async move {
            let mut request = self
                .s3
                .get_object()
                .bucket(&self.location.bucket)
                .key(&self.location.key);
            if let Some(etag) = &self.etag {
                request = request.if_match(etag);
            }
            match request.send().await {
                Ok(out) => {
                    ReaderStream::with_capacity(out.body.into_async_read(), 64 * 1024).boxed()
                }
                Err(e) => {
                    let e = std::io::Error::other(format!(
                        "GetObject s3://{}/{} failed: {}",
                        self.location.bucket,
                        self.location.key,
                        e.into_service_error()
                    ));
                    stream::once(futures::future::ready(Err(e))).boxed()
                }
            }
        })
        .flatten()
        .boxed();
        AudioPart { len, body }
    }
}

/// Recordings in S3: `HeadObject` to open, `GetObject` when the body is first polled.
#[derive(Debug, Clone)]
pub struct S3Recordings(pub aws_sdk_s3::Client);

impl RecordingStore for S3Recordings {
    async fn open(
        &self,
        location: &S3Location,
        deadline: Option<Instant>,
    ) -> Result<Recording, RecordingError> {
        let opened = bounded(deadline, open_recording(&self.0, location))
            .await
            .ok_or_else(|| RecordingError::OutOfTime {
                bucket: location.bucket.clone(),
                key: location.key.clone(),
            })??;
        let location = opened.location.clone();
        let restored_from = opened.restored_from.clone();
        let AudioPart { len, body } = opened.into_part();
        Ok(Recording {
            location,
            len,
            body,
            restored_from,
        })
    }

    async fn restore(
        &self,
        location: &S3Location,
        tier: RestoreTier,
        deadline: Option<Instant>,
    ) -> Result<(), RecordingError> {
        use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};
        let unreadable =
            |source: Box<dyn std::error::Error + Send + Sync>| RecordingError::Unreadable {
                bucket: location.bucket.clone(),
                key: location.key.clone(),
                source,
            };
        let job = GlacierJobParameters::builder()
            .tier(Tier::from(tier.as_str()))
            .build()
            .map_err(|e| unreadable(Box::new(e)))?;
        let request = RestoreRequest::builder()
            .days(RESTORED_DAYS)
            .glacier_job_parameters(job)
            .build();
        let sent = self
            .0
            .restore_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .restore_request(request)
            .send();
        let answer = bounded(deadline, sent)
            .await
            .ok_or_else(|| RecordingError::OutOfTime {
                bucket: location.bucket.clone(),
                key: location.key.clone(),
            })?;
        match answer {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let e = e.into_service_error();
                let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default();
                // A restore already asked for (409), or an object already readable: nothing to do.
                if status == Some(409)
                    || code == "RestoreAlreadyInProgress"
                    || code == "ObjectAlreadyInActiveTierError"
                {
                    Ok(())
                } else {
                    Err(unreadable(Box::new(e)))
                }
            }
        }
    }

    async fn keys(
        &self,
        bucket: &str,
        prefix: &str,
        deadline: Option<Instant>,
    ) -> Result<Vec<String>, RecordingError> {
        let listed = bounded(
            deadline,
            crate::adapters::aws::list_objects(&self.0, bucket, prefix),
        )
        .await
        .ok_or_else(|| RecordingError::OutOfTime {
            bucket: bucket.to_owned(),
            key: prefix.to_owned(),
        })?;
        let objects = listed.map_err(|e| RecordingError::Listing {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            source: Box::new(e),
        })?;
        Ok(objects.into_iter().filter_map(|o| o.key).collect())
    }
}

impl crate::ports::recordings::KeyListing for S3Recordings {
    fn keys<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, RecordingError>> {
        Box::pin(RecordingStore::keys(self, bucket, prefix, None))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::types::{ArchiveStatus, StorageClass};

    use super::*;

    #[test]
    fn archived_objects_are_told_apart_from_restored_and_instant_ones() {
        let glacier = Some(&StorageClass::Glacier);
        assert_eq!(
            archived(glacier, None, None),
            Some(("GLACIER".into(), Restore::NotRequested))
        );
        assert_eq!(
            archived(glacier, None, Some("ongoing-request=\"true\"")),
            Some(("GLACIER".into(), Restore::InProgress))
        );
        let restored = "ongoing-request=\"false\", expiry-date=\"Fri, 11 Dec 2026 00:00:00 GMT\"";
        assert_eq!(archived(glacier, None, Some(restored)), None);
        assert_eq!(
            archived(Some(&StorageClass::DeepArchive), None, None),
            Some(("DEEP_ARCHIVE".into(), Restore::NotRequested))
        );
        // Glacier Instant Retrieval and Standard are readable at once.
        assert_eq!(archived(Some(&StorageClass::GlacierIr), None, None), None);
        assert_eq!(archived(Some(&StorageClass::Standard), None, None), None);
        assert_eq!(archived(None, None, None), None);
        assert_eq!(
            archived(
                Some(&StorageClass::IntelligentTiering),
                Some(&ArchiveStatus::DeepArchiveAccess),
                None
            ),
            Some((
                "INTELLIGENT_TIERING DEEP_ARCHIVE_ACCESS".into(),
                Restore::NotRequested
            ))
        );
    }
}
