//! Recordings in S3: `HeadObject` to open one (its size and ETag), `GetObject` when its part is
//! first polled.

use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tokio_util::io::ReaderStream;

use crate::domain::ctr::S3Location;
use crate::ports::bounded;
use crate::ports::recordings::{Recording, RecordingError, RecordingStore};
use crate::ports::verint::AudioPart;

/// A recording about to be streamed: its size and ETag from `HeadObject`. The `GetObject` starts
/// only when its part is reached, so a second recording's connection never sits idle while the
/// first one streams; `If-Match` pins the bytes to the size declared in `Content-Length`.
#[derive(Debug)]
pub struct OpenRecording {
    pub location: S3Location,
    pub len: u64,
    etag: Option<String>,
    s3: aws_sdk_s3::Client,
}

/// `HeadObject` on a recording: a missing object is [`RecordingError::Gone`].
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
    Ok(OpenRecording {
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
        let AudioPart { len, body } = opened.into_part();
        Ok(Recording {
            location,
            len,
            body,
        })
    }
}
