//! Amazon Connect `DescribeContact`, under a client-side rate ceiling shared by every message the
//! process works on: Connect's throttling is shared by every caller of the account and region.

use std::time::Duration;

use crate::ports::connect::ConnectError;
use crate::ports::connect::ContactDirectory;
use aws_sdk_connect::types::Contact;
use chrono::TimeDelta;
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

/// Connect keeps contacts for 24 months; a manual run cannot start earlier than this.
pub(crate) const CONNECT_RETENTION: TimeDelta = TimeDelta::days(730);

/// Amazon Connect contact ids are UUIDs (`8-4-4-4-12` hex digits, either case). Anything else
/// in a message is malformed, and is never put into a URL, a header or a filename.
pub(crate) fn is_contact_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A call is not started with less time than this before the deadline.
pub(crate) const MIN_CALL_TIME: Duration = Duration::from_secs(2);

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

impl ContactDirectory for ConnectContacts {
    async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Contact, ConnectError> {
        self.describe_by(instance_id, contact_id, deadline).await
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
    fn contact_ids_are_uuids_in_either_case() {
        assert!(is_contact_id("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"));
        assert!(is_contact_id("5F8A7B3C-1D2E-4F60-8A9B-0C1D2E3F4A5B"));
        for bad in [
            "",
            "c-1",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b\r\nX-Evil: 1",
            "5f8a7b3c\"1d2e-4f60-8a9b-0c1d2e3f4a5b",
            "5f8a7b3cx1d2e-4f60-8a9b-0c1d2e3f4a5b",
            "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5g",
        ] {
            assert!(!is_contact_id(bad), "{bad:?}");
        }
    }
}
