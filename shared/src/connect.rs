//! Amazon Connect `DescribeContact`, under a client-side rate ceiling shared by every message the
//! process works on: Connect's throttling is shared by every caller of the account and region.

use std::time::Duration;

use aws_sdk_connect::types::Contact;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls at least `1 / rps` apart across all tasks of the process.
#[derive(Debug)]
pub struct RateLimiter {
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

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the contact is unknown to Amazon Connect")]
    NotFound,
    #[error("amazon connect throttled the request")]
    Throttled(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("amazon connect request failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ConnectError {
    pub fn is_transient(&self) -> bool {
        !matches!(self, ConnectError::NotFound)
    }
}

#[derive(Debug)]
pub struct ConnectContacts {
    client: aws_sdk_connect::Client,
    limiter: RateLimiter,
}

impl ConnectContacts {
    pub fn new(client: aws_sdk_connect::Client, max_rps: f64) -> Self {
        ConnectContacts {
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
        self.limiter.acquire().await;
        let out = self
            .client
            .describe_contact()
            .instance_id(instance_id)
            .contact_id(contact_id)
            .send()
            .await;
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
                    l.acquire().await;
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
}
