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
