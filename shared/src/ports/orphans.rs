//! What looking for orphan recordings needs of the world (design §9).

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::domain::time::Window;
use crate::ports::connect::ConnectError;
use crate::ports::verint::VerintError;

/// Why orphan recordings could not be looked for.
#[derive(Debug, thiserror::Error)]
pub enum OrphanError {
    #[error("listing s3://{bucket}/{prefix}")]
    Listing {
        bucket: String,
        prefix: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Verint DAS could not be asked for {contact_id}")]
    Verint {
        contact_id: String,
        #[source]
        source: VerintError,
    },
    #[error("DescribeContact of {contact_id}")]
    Connect {
        contact_id: String,
        #[source]
        source: ConnectError,
    },
}

/// A call's `(initiation, disconnect)`.
pub type CallTimes = (DateTime<Utc>, DateTime<Utc>);

/// What looking for orphan recordings needs (design §9): the recordings of a window's days, Verint
/// asked by id, and Connect's times of a contact. Boxed futures, so that a planner without it
/// needs no type for it.
pub trait OrphanLookup: Send + Sync {
    /// The bucket the recordings are in.
    fn bucket(&self) -> &str;
    /// The keys of the recordings in the day folders of `window`.
    fn recording_keys(&self, window: Window) -> BoxFuture<'_, Result<Vec<String>, OrphanError>>;
    /// Whether Verint holds the contact.
    fn in_verint<'a>(&'a self, contact_id: &'a str) -> BoxFuture<'a, Result<bool, OrphanError>>;
    /// `(initiation, disconnect)` from `DescribeContact`; `None` when Connect does not know the
    /// contact or it has not ended.
    fn times<'a>(
        &'a self,
        contact_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CallTimes>, OrphanError>>;
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// Recordings listed by key, the contacts Verint holds, and Connect's times by contact.
    #[derive(Default)]
    pub(crate) struct MemoryOrphans {
        pub(crate) keys: Vec<String>,
        pub(crate) in_verint: HashSet<String>,
        pub(crate) times: HashMap<String, CallTimes>,
    }

    impl OrphanLookup for MemoryOrphans {
        fn bucket(&self) -> &str {
            "rec"
        }

        fn recording_keys(
            &self,
            _window: Window,
        ) -> BoxFuture<'_, Result<Vec<String>, OrphanError>> {
            Box::pin(async move { Ok(self.keys.clone()) })
        }

        fn in_verint<'a>(
            &'a self,
            contact_id: &'a str,
        ) -> BoxFuture<'a, Result<bool, OrphanError>> {
            Box::pin(async move { Ok(self.in_verint.contains(contact_id)) })
        }

        fn times<'a>(
            &'a self,
            contact_id: &'a str,
        ) -> BoxFuture<'a, Result<Option<CallTimes>, OrphanError>> {
            Box::pin(async move { Ok(self.times.get(contact_id).copied()) })
        }
    }
}
