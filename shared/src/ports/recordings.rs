//! Where the recordings are, as the worker reads them: a recording's exact size and a body that
//! starts reading when first polled.

use tokio::time::Instant;

use crate::domain::ctr::S3Location;
use crate::domain::recording::RestoreTier;
use crate::ports::verint::BodyStream;

/// Where the recordings are (S3).
pub trait RecordingStore: Send + Sync {
    /// Its size, and a body that starts reading when first polled. An archived recording whose
    /// restored copy is not readable yet is [`RecordingError::Archived`].
    fn open(
        &self,
        location: &S3Location,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Recording, RecordingError>> + Send;

    /// Asks for an archived recording to be restored (design §10); a restore already under way,
    /// or an object already readable, is not an error.
    fn restore(
        &self,
        location: &S3Location,
        tier: RestoreTier,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<(), RecordingError>> + Send;

    /// The keys under `prefix` in `bucket`, in key order (a contact's redacted audio).
    fn keys(
        &self,
        bucket: &str,
        prefix: &str,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Vec<String>, RecordingError>> + Send;
}

/// The keys under a prefix of a bucket, as the planner looks for redacted audio (design §10).
/// Boxed futures, so that a planner without it needs no type for it.
pub trait KeyListing: Send + Sync {
    fn keys<'a>(
        &'a self,
        bucket: &'a str,
        prefix: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Vec<String>, RecordingError>>;
}

/// Where an archived recording's restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// Nobody asked for it yet.
    NotRequested,
    /// Asked for; the restored copy is not readable yet.
    InProgress,
}

/// A recording ready to stream: its exact size and a lazy body.
pub struct Recording {
    pub location: S3Location,
    pub len: u64,
    pub body: BodyStream,
    /// The archive class of a recording read from its restored copy (design §10).
    pub restored_from: Option<String>,
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
    #[error("recording s3://{bucket}/{key} is archived ({storage_class}), restore {restore:?}")]
    Archived {
        bucket: String,
        key: String,
        /// `GLACIER`, `DEEP_ARCHIVE`, or an Intelligent-Tiering archive tier.
        storage_class: String,
        restore: Restore,
    },
    #[error("listing s3://{bucket}/{prefix}")]
    Listing {
        bucket: String,
        prefix: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RecordingError {
    /// Whether it is Deep Archive's (whose restores take the longest).
    pub fn is_deep_archive(&self) -> bool {
        matches!(self, RecordingError::Archived { storage_class, .. } if storage_class.contains("DEEP"))
    }
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
    #[derive(Debug, Clone)]
    pub(crate) enum Audio {
        /// A silent mono 8 kHz WAV of that many bytes, header included.
        Bytes(usize),
        /// These bytes, in chunks of at most 1,000.
        Wav(Vec<u8>),
        Gone,
        /// Its first chunk, then an S3 error.
        BreaksMidStream,
        /// In Glacier: unreadable until restored, readable as these bytes after.
        Archived(Vec<u8>),
    }

    #[derive(Default)]
    pub(crate) struct FakeRecordings {
        pub(crate) by_key: HashMap<String, Audio>,
        pub(crate) opens: AtomicUsize,
        /// Keys a restore was asked for, in order.
        pub(crate) restores: std::sync::Mutex<Vec<String>>,
        /// Keys whose restore has finished.
        pub(crate) restored: std::sync::Mutex<std::collections::HashSet<String>>,
    }

    impl FakeRecordings {
        /// Finishes every restore asked for so far.
        pub(crate) fn finish_restores(&self) {
            let asked = self.restores.lock().expect("lock").clone();
            self.restored.lock().expect("lock").extend(asked);
        }
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
                .cloned()
                .unwrap_or(Audio::Bytes(1024));
            let audio = match audio {
                Audio::Bytes(n) => Audio::Wav(silent_wav(n)),
                other => other,
            };
            let restored = matches!(audio, Audio::Archived(_));
            let (len, body): (u64, BodyStream) = match audio {
                Audio::Gone => {
                    return Err(RecordingError::Gone {
                        bucket: location.bucket.clone(),
                        key: location.key.clone(),
                    });
                }
                Audio::Bytes(_) => unreachable!("made a WAV above"),
                Audio::Archived(bytes) => {
                    if !self.restored.lock().expect("lock").contains(&location.key) {
                        let asked = self.restores.lock().expect("lock").contains(&location.key);
                        return Err(RecordingError::Archived {
                            bucket: location.bucket.clone(),
                            key: location.key.clone(),
                            storage_class: "GLACIER".into(),
                            restore: if asked {
                                Restore::InProgress
                            } else {
                                Restore::NotRequested
                            },
                        });
                    }
                    chunked(bytes)
                }
                Audio::Wav(bytes) => chunked(bytes),
                Audio::BreaksMidStream => (
                    2048,
                    stream::iter([
                        Ok(Bytes::from(silent_wav(1024))),
                        Err(std::io::Error::other("connection reset by S3")),
                    ])
                    .boxed(),
                ),
            };
            Ok(Recording {
                location: location.clone(),
                len,
                body,
                restored_from: restored.then(|| "GLACIER".to_owned()),
            })
        }

        async fn restore(
            &self,
            location: &S3Location,
            _tier: RestoreTier,
            _deadline: Option<Instant>,
        ) -> Result<(), RecordingError> {
            let mut asked = self.restores.lock().expect("lock");
            if !asked.contains(&location.key) {
                asked.push(location.key.clone());
            }
            Ok(())
        }

        async fn keys(
            &self,
            _bucket: &str,
            prefix: &str,
            _deadline: Option<Instant>,
        ) -> Result<Vec<String>, RecordingError> {
            let mut keys: Vec<String> = self
                .by_key
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            keys.sort();
            Ok(keys)
        }
    }

    /// A mono 8 kHz 16-bit PCM WAV of `total` bytes (at least its 44-byte header) whose data
    /// is silence; its header declares exactly the data present.
    pub(crate) fn silent_wav(total: usize) -> Vec<u8> {
        wav_declaring(total, total.max(44) - 44)
    }

    /// A mono 8 kHz 16-bit PCM WAV of `total` bytes whose header declares `declared` data bytes
    /// (more than present: a recording cut short after its header was written).
    pub(crate) fn wav_declaring(total: usize, declared: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(total.max(44));
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + declared as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&16_000u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(declared as u32).to_le_bytes());
        out.resize(total.max(44), 0);
        out
    }

    fn chunked(bytes: Vec<u8>) -> (u64, BodyStream) {
        let len = bytes.len() as u64;
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        (len, stream::iter(chunks).boxed())
    }
}
