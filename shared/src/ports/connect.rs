//! Amazon Connect, as the worker sees it: `DescribeContact`, and the contact it describes in
//! this port's own words (no SDK type above the adapter).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Amazon Connect's `DescribeContact`.
pub trait ContactDirectory: Send + Sync {
    fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<DescribedContact, ConnectError>> + Send;
}

/// A contact as `DescribeContact` describes it: what the ingest's metadata needs (design §6).
/// Every field is optional, as the API's are; enumerations keep the API's spelling
/// (`VOICE`, `INBOUND`, `TELEPHONE_NUMBER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedContact {
    pub id: Option<String>,
    pub arn: Option<String>,
    pub channel: Option<String>,
    pub initiation_method: Option<String>,
    pub initiation: Option<DateTime<Utc>>,
    pub disconnect: Option<DateTime<Utc>>,
    pub agent: Option<DescribedAgent>,
    pub queue: Option<DescribedQueue>,
    pub customer_endpoint: Option<DescribedEndpoint>,
    pub system_endpoint: Option<DescribedEndpoint>,
    pub attributes: BTreeMap<String, String>,
}

/// The agent who took the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedAgent {
    pub id: Option<String>,
    pub connected: Option<DateTime<Utc>>,
}

/// The queue the call waited in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedQueue {
    pub id: Option<String>,
    pub enqueued: Option<DateTime<Utc>>,
}

/// A customer or system endpoint: its type and address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedEndpoint {
    pub kind: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the contact is unknown to Amazon Connect")]
    NotFound,
    #[error("amazon connect throttled the request")]
    Throttled(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("amazon connect request failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the invocation's deadline left no time for DescribeContact")]
    OutOfTime,
}

#[cfg(test)]
impl DescribedContact {
    /// An answered inbound call, as the tests of the metadata and of the adapter describe it.
    pub(crate) fn example() -> Self {
        let at = |secs| DateTime::from_timestamp(secs, 0);
        DescribedContact {
            id: Some("c-1".into()),
            arn: Some("arn:aws:connect:eu-west-2:123456789012:instance/inst/contact/c-1".into()),
            channel: Some("VOICE".into()),
            initiation_method: Some("INBOUND".into()),
            initiation: at(1_715_680_800),
            disconnect: at(1_715_681_100),
            agent: Some(DescribedAgent {
                id: Some("agent-9".into()),
                connected: at(1_715_680_830),
            }),
            queue: Some(DescribedQueue {
                id: Some("queue-3".into()),
                enqueued: at(1_715_680_810),
            }),
            customer_endpoint: Some(DescribedEndpoint {
                kind: Some("TELEPHONE_NUMBER".into()),
                address: Some("+441234567890".into()),
            }),
            system_endpoint: None,
            attributes: [("customerName".to_owned(), "Ada".to_owned())].into(),
        }
    }
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    #[derive(Default)]
    pub(crate) struct FakeConnect {
        pub(crate) unknown: HashSet<&'static str>,
        /// The id DescribeContact answers with, when not the one asked.
        pub(crate) spelled: Option<&'static str>,
        pub(crate) calls: AtomicUsize,
        /// How long each call takes, and the most that were waiting at once.
        pub(crate) latency: Option<Duration>,
        pub(crate) describing: AtomicUsize,
        pub(crate) most_describing: AtomicUsize,
    }

    impl ContactDirectory for FakeConnect {
        async fn describe(
            &self,
            _instance_id: &str,
            contact_id: &str,
            _deadline: Option<Instant>,
        ) -> Result<DescribedContact, ConnectError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(t) = self.latency {
                let now = self.describing.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_describing.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(t).await;
                self.describing.fetch_sub(1, Ordering::SeqCst);
            }
            if self.unknown.contains(contact_id) {
                return Err(ConnectError::NotFound);
            }
            Ok(DescribedContact {
                id: Some(self.spelled.unwrap_or(contact_id).to_owned()),
                channel: Some("VOICE".into()),
                ..DescribedContact::default()
            })
        }
    }
}
