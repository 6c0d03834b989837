//! Amazon Connect `DescribeContact`, under a client-side rate ceiling shared by every message the
//! process works on: Connect's throttling is shared by every caller of the account and region.

use std::time::Duration;

use aws_sdk_connect::types::{Contact, EndpointInfo};
use chrono::{DateTime, Utc};

use crate::ports::connect::{
    ConnectError, ContactDirectory, DescribedAgent, DescribedContact, DescribedEndpoint,
    DescribedQueue,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls at least `1 / rps` apart across all tasks of the process.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(rps: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rps.max(0.001)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this caller's slot if it comes before `latest`; otherwise takes no slot and
    /// returns `false` at once.
    pub(crate) async fn acquire_before(&self, latest: Option<Instant>) -> bool {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            if latest.is_some_and(|l| at > l) {
                return false;
            }
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
        true
    }
}

/// A call is not started with less time than this before the deadline.
pub(crate) const MIN_CALL_TIME: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct ConnectClient {
    client: aws_sdk_connect::Client,
    limiter: RateLimiter,
}

impl ConnectClient {
    pub fn new(client: aws_sdk_connect::Client, max_rps: f64) -> Self {
        ConnectClient {
            client,
            limiter: RateLimiter::new(max_rps),
        }
    }

    /// `DescribeContact`. The SDK retries throttling (`TooManyRequestsException`,
    /// `ThrottlingException`) with backoff; what is left after that is transient.
    pub async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
    ) -> Result<Contact, ConnectError> {
        self.describe_by(instance_id, contact_id, None).await
    }

    /// [`Self::describe`], waiting for its slot and calling (the SDK's retries included) only
    /// while `deadline` leaves time.
    pub(crate) async fn describe_by(
        &self,
        instance_id: &str,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Contact, ConnectError> {
        let latest = deadline.map(|d| d.checked_sub(MIN_CALL_TIME).unwrap_or(d));
        if !self.limiter.acquire_before(latest).await {
            return Err(ConnectError::OutOfTime);
        }
        let call = self
            .client
            .describe_contact()
            .instance_id(instance_id)
            .contact_id(contact_id)
            .send();
        let out = match deadline {
            Some(d) => tokio::time::timeout_at(d, call)
                .await
                .map_err(|_| ConnectError::OutOfTime)?,
            None => call.await,
        };
        match out {
            Ok(out) => out
                .contact
                .ok_or_else(|| ConnectError::Other("DescribeContact returned no contact".into())),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let e = e.into_service_error();
                let code = aws_sdk_connect::error::ProvideErrorMetadata::code(&e)
                    .unwrap_or_default()
                    .to_owned();
                if e.is_resource_not_found_exception() || status == Some(404) {
                    Err(ConnectError::NotFound)
                } else if e.is_throttling_exception()
                    || code.contains("TooManyRequests")
                    || code.contains("Throttl")
                    || status == Some(429)
                {
                    Err(ConnectError::Throttled(Box::new(e)))
                } else {
                    Err(ConnectError::Other(Box::new(e)))
                }
            }
        }
    }
}

impl ContactDirectory for ConnectClient {
    async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> Result<DescribedContact, ConnectError> {
        let contact = self.describe_by(instance_id, contact_id, deadline).await?;
        Ok(described(&contact))
    }
}

/// A Connect timestamp as an instant.
pub(crate) fn instant(t: Option<&aws_sdk_connect::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// The SDK's contact in the port's words.
fn described(c: &Contact) -> DescribedContact {
    let endpoint = |e: Option<&EndpointInfo>| {
        e.map(|e| DescribedEndpoint {
            kind: e.r#type().map(|t| t.as_str().to_owned()),
            address: e.address().map(str::to_owned),
        })
    };
    DescribedContact {
        id: c.id().map(str::to_owned),
        arn: c.arn().map(str::to_owned),
        channel: c.channel().map(|ch| ch.as_str().to_owned()),
        initiation_method: c.initiation_method().map(|m| m.as_str().to_owned()),
        initiation: instant(c.initiation_timestamp()),
        disconnect: instant(c.disconnect_timestamp()),
        agent: c.agent_info().map(|a| DescribedAgent {
            id: a.id().map(str::to_owned),
            connected: instant(a.connected_to_agent_timestamp()),
        }),
        queue: c.queue_info().map(|q| DescribedQueue {
            id: q.id().map(str::to_owned),
            enqueued: instant(q.enqueue_timestamp()),
        }),
        customer_endpoint: endpoint(c.customer_endpoint()),
        system_endpoint: endpoint(c.system_endpoint()),
        attributes: c
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_spaces_calls_across_tasks() {
        let limiter = std::sync::Arc::new(RateLimiter::new(5.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire_before(None).await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("task") - start);
        }
        times.sort();
        assert_eq!(times[0], Duration::ZERO);
        assert!(times[9] >= Duration::from_millis(1800), "{:?}", times[9]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_after_the_deadline_is_refused_at_once_and_not_taken() {
        let limiter = RateLimiter::new(1.0);
        limiter.acquire_before(None).await;
        let start = Instant::now();
        assert!(
            !limiter
                .acquire_before(Some(start + Duration::from_millis(500)))
                .await
        );
        assert_eq!(Instant::now(), start, "no wait for a refused slot");
        assert!(
            limiter
                .acquire_before(Some(start + Duration::from_secs(2)))
                .await
        );
    }

    #[test]
    fn describe_contact_is_told_in_the_ports_words() {
        use aws_sdk_connect::primitives::DateTime as AwsDateTime;
        use aws_sdk_connect::types::{
            AgentInfo, Channel, ContactInitiationMethod, EndpointType, QueueInfo,
        };
        let sdk = Contact::builder()
            .arn("arn:aws:connect:eu-west-2:123456789012:instance/inst/contact/c-1")
            .id("c-1")
            .channel(Channel::Voice)
            .initiation_method(ContactInitiationMethod::Inbound)
            .initiation_timestamp(AwsDateTime::from_secs(1_715_680_800))
            .disconnect_timestamp(AwsDateTime::from_secs(1_715_681_100))
            .agent_info(
                AgentInfo::builder()
                    .id("agent-9")
                    .connected_to_agent_timestamp(AwsDateTime::from_secs(1_715_680_830))
                    .build(),
            )
            .queue_info(
                QueueInfo::builder()
                    .id("queue-3")
                    .enqueue_timestamp(AwsDateTime::from_secs(1_715_680_810))
                    .build(),
            )
            .customer_endpoint(
                EndpointInfo::builder()
                    .r#type(EndpointType::TelephoneNumber)
                    .address("+441234567890")
                    .build(),
            )
            .attributes("customerName", "Ada")
            .build();
        assert_eq!(described(&sdk), DescribedContact::example());
        let bare = Contact::builder().id("c-1").channel(Channel::Voice).build();
        let bare = described(&bare);
        assert_eq!(
            (bare.agent, bare.queue, bare.initiation),
            (None, None, None)
        );
        assert_eq!(bare.channel.as_deref(), Some("VOICE"));
    }
}
