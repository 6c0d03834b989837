//! Amazon Connect, as the worker sees it: `DescribeContact`.

use aws_sdk_connect::types::Contact;
use tokio::time::Instant;

/// Amazon Connect's `DescribeContact`.
pub trait ContactDirectory: Send + Sync {
    fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Contact, ConnectError>> + Send;
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
