//! Where CTR objects come from, as the planner reads them: the objects of an arrival hour, and a
//! blocking reader of each.

use std::io::Read;

use chrono::{DateTime, Utc};

/// One object of an arrival hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrObject {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("listing {prefix} failed")]
    List {
        prefix: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object was listed but is gone: it is counted as unreadable, not fatal.
    #[error("{key} is gone")]
    Gone { key: String },
    /// The read ended cleanly but short of the size the listing gave.
    #[error("reading {key} ended after {read} of {listed} bytes")]
    Truncated { key: String, read: u64, listed: u64 },
    #[error("a parsing task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl SourceError {
    /// Whether reading the object again may succeed: a failed or short read may, a listing or
    /// a crashed parsing task is not retried here.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Read { .. } | SourceError::Truncated { .. }
        )
    }
}

/// A reader of CTR objects grouped by arrival hour.
pub trait CtrSource: Send + Sync {
    /// Every object under `{prefix}YYYY/MM/DD/HH/` for `hour`, in key order.
    fn list_hour(
        &self,
        hour: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<CtrObject>, SourceError>> + Send;
    /// A blocking reader of the object's bytes, as stored (maybe gzip).
    fn open(
        &self,
        object: &CtrObject,
    ) -> impl Future<Output = Result<Box<dyn Read + Send>, SourceError>> + Send;
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;

    use super::*;

    /// CTR objects in memory, by arrival hour: `(key, bytes)` in key order.
    #[derive(Default)]
    pub(crate) struct MemoryCtrSource {
        pub(crate) hours: BTreeMap<DateTime<Utc>, Vec<(String, Vec<u8>)>>,
    }

    impl CtrSource for MemoryCtrSource {
        async fn list_hour(&self, hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
            Ok(self
                .hours
                .get(&hour)
                .map(|objects| {
                    objects
                        .iter()
                        .map(|(key, bytes)| CtrObject {
                            key: key.clone(),
                            size: bytes.len() as u64,
                        })
                        .collect()
                })
                .unwrap_or_default())
        }

        async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
            let bytes = self
                .hours
                .values()
                .flatten()
                .find(|(key, _)| *key == object.key)
                .map(|(_, bytes)| bytes.clone())
                .ok_or_else(|| SourceError::Gone {
                    key: object.key.clone(),
                })?;
            Ok(Box::new(std::io::Cursor::new(bytes)))
        }
    }
}
