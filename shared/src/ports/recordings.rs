//! Where the recordings are, as the worker reads them: a recording's exact size and a body that
//! starts reading when first polled.

use tokio::time::Instant;

use crate::domain::ctr::S3Location;
use crate::ports::verint::BodyStream;

/// Where the recordings are (S3).
pub trait RecordingStore: Send + Sync {
    /// Its size, and a body that starts reading when first polled.
    fn open(
        &self,
        location: &S3Location,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Recording, RecordingError>> + Send;
}

/// A recording ready to stream: its exact size and a lazy body.
pub struct Recording {
    pub location: S3Location,
    pub len: u64,
    pub body: BodyStream,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("location", &self.location)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("recording s3://{bucket}/{key} is gone (NoSuchKey)")]
    Gone { bucket: String, key: String },
    #[error("recording s3://{bucket}/{key} could not be read")]
    Unreadable {
        bucket: String,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("recording s3://{bucket}/{key} could not be opened before the deadline")]
    OutOfTime { bucket: String, key: String },
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use futures::stream::{self, StreamExt};
    use tokio::time::Instant;

    use super::*;

    /// How a fake recording behaves.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Audio {
        Bytes(usize),
        Gone,
        /// Its first chunk, then an S3 error.
        BreaksMidStream,
    }

    #[derive(Default)]
    pub(crate) struct FakeRecordings {
        pub(crate) by_key: HashMap<String, Audio>,
        pub(crate) opens: AtomicUsize,
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
}
