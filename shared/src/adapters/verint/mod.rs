//! The Verint adapter (design §6): Data Access Services (which contacts Verint holds) and the
//! ingest endpoint (recovered calls), both signed with the API key. The only module that knows
//! Verint's HTTP shapes, so a site's real endpoint can be mapped here.

pub mod answer;
pub mod auth;
pub mod ingest;
pub mod keys;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::domain::contacts::ContactKey;
use crate::domain::metadata::Metadata;
use crate::domain::time::{Window, format_ts};
use crate::ports::verint::AudioPart;
use crate::ports::verint::Ingested;
use crate::ports::verint::RetryPolicy;
use crate::ports::verint::VerintError;
use crate::ports::verint::VerintHoldings;
use crate::ports::verint::VerintIngest;
pub use auth::ApiKey;
pub use keys::{KeyRead, KeySource, Keys};

/// DAS answers at most this span per request.
pub(crate) const DAS_MAX_SPAN: TimeDelta = TimeDelta::hours(24);
/// DAS pieces asked at once.
pub(crate) const DAS_CONCURRENCY: usize = 4;
/// Contacts asked for per DAS page.
pub(crate) const DAS_PAGE_LIMIT: u32 = 500;
/// DAS requests are tried at least this often (0.3⁸ ≈ 1 in 15,000 pages lost to a gateway that
/// answers 30 % of requests with its own page).
const DAS_MIN_ATTEMPTS: usize = 8;

/// A reqwest failure in the port's words.
pub(crate) fn transport(e: reqwest::Error) -> VerintError {
    VerintError::Transport {
        timeout: e.is_timeout(),
        source: Box::new(e),
    }
}

/// The signed HTTP clients for both Verint APIs.
///
/// DAS and the ingest use separate clients. The ingest's has no total or read timeout: reqwest's
/// `read_timeout` starts when the request is sent and is not reset while the body uploads, so it
/// would cut every upload longer than it. Uploads are bounded instead by progress (the stall
/// watchdog, `VerintClient::with_stall_timeout`) and by the caller's deadline. Neither client
/// follows redirects (a redirect would resend the signed request, and the body cannot be
/// replayed); the ingest speaks HTTP/1.1, whose flow control is the TCP connection's own.
#[derive(Debug, Clone)]
pub struct VerintClient {
    http: reqwest::Client,
    upload: reqwest::Client,
    das: Url,
    ingest: Url,
    keys: Arc<Keys>,
    retry: RetryPolicy,
    page_limit: u32,
    stall_timeout: Duration,
}

/// The default stall timeout (design §7 `STALL_TIMEOUT`).
pub(crate) const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A Verint attempt is not started with less time than this before the deadline.
pub(crate) const MIN_ATTEMPT_TIME: Duration = Duration::from_secs(5);

impl VerintClient {
    /// Both URLs must be https (plain http only to a loopback address).
    pub fn new(das: Url, ingest: Url, key: ApiKey) -> Result<Self, VerintError> {
        Self::with_key_set(das, ingest, Arc::new(Keys::fixed(key)))
    }

    /// [`Self::new`], signing with `keys`, which follow a rotation of the key (design §6).
    pub fn with_key_set(das: Url, ingest: Url, keys: Arc<Keys>) -> Result<Self, VerintError> {
        for url in [&das, &ingest] {
            check_url(url).map_err(VerintError::Url)?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(das.scheme() == "https")
            .build()
            .map_err(transport)?;
        let upload = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(ingest.scheme() == "https")
            .http1_only()
            .build()
            .map_err(transport)?;
        Ok(VerintClient {
            http,
            upload,
            das,
            ingest,
            keys,
            retry: RetryPolicy::default(),
            page_limit: DAS_PAGE_LIMIT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        })
    }

    /// Sets how long an upload may go without Verint accepting a byte (or answering once the
    /// body is sent) before it is abandoned.
    pub(crate) fn with_stall_timeout(mut self, stall: Duration) -> Self {
        self.stall_timeout = stall.max(Duration::from_millis(1));
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the DAS page size (`limit`).
    pub fn with_page_limit(mut self, limit: u32) -> Self {
        self.page_limit = limit.max(1);
        self
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// `{base}{path}`, keeping any path the base URL has.
    fn url(base: &Url, path_and_query: &str) -> Result<Url, VerintError> {
        let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path_and_query);
        Url::parse(&joined).map_err(|e| VerintError::Status {
            status: StatusCode::BAD_REQUEST,
            detail: format!("bad url: {e}"),
            retry_after: None,
        })
    }

    /// A request on `client` with the `Authorization` header, signed with `key`, for exactly
    /// the path and query that is sent.
    pub(crate) fn signed_on(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
        key: &ApiKey,
    ) -> reqwest::RequestBuilder {
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let auth = key.authorization(
            method.as_str(),
            &path_and_query,
            &[],
            &auth::new_salt(),
            Utc::now(),
        );
        client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, auth)
    }

    /// The key to sign the next request with.
    pub(crate) async fn key(&self) -> Arc<KeyRead> {
        self.keys.current().await
    }

    /// After a 401 to a request signed with `used`: whether a key read since is ready.
    pub(crate) async fn key_after_refusal(
        &self,
        used: &KeyRead,
        refused_at: Instant,
    ) -> Option<Arc<KeyRead>> {
        self.keys.after_refusal(used, refused_at).await
    }

    /// A signed `GET` to DAS; a 401 reads the key again and sends it once more at once with the
    /// key it got (design §6, key rotation).
    async fn das_get(&self, url: &Url) -> Result<reqwest::Response, VerintError> {
        let key = self.key().await;
        let response = self
            .signed_on(&self.http, Method::GET, url.clone(), &key.key)
            .send()
            .await
            .map_err(transport)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(fresh) = self.key_after_refusal(&key, Instant::now()).await else {
            return Err(VerintError::KeyRefused { fresh_key: false });
        };
        let response = self
            .signed_on(&self.http, Method::GET, url.clone(), &fresh.key)
            .send()
            .await
            .map_err(transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(VerintError::KeyRefused { fresh_key: false });
        }
        Ok(response)
    }

    /// Every completed contact Verint holds whose start time is in one of `spans`, as Connect
    /// ids (lowercased: design §4 compares ids case-insensitively). Each span is asked for in
    /// pieces of at most 24 hours, [`DAS_CONCURRENCY`] pieces at once, each read page by page.
    pub(crate) async fn completed_contacts(
        &self,
        spans: &[Window],
    ) -> Result<HashSet<ContactKey>, VerintError> {
        let pieces: Vec<Window> = spans.iter().flat_map(|s| s.pieces(DAS_MAX_SPAN)).collect();
        debug!(spans = spans.len(), pieces = pieces.len(), "asking das");
        let mut held = HashSet::new();
        let mut answers = futures::stream::iter(pieces.into_iter().map(|p| self.das_piece(p)))
            .buffer_unordered(DAS_CONCURRENCY);
        while let Some(ids) = answers.next().await {
            held.extend(ids?);
        }
        Ok(held)
    }

    /// One piece of at most 24 hours, every page of it. A cursor already followed in this
    /// listing is an error, not a loop.
    async fn das_piece(&self, piece: Window) -> Result<Vec<ContactKey>, VerintError> {
        let mut held = Vec::new();
        let mut cursor: Option<String> = None;
        let mut followed = HashSet::new();
        loop {
            let page = self.das_page(piece, cursor.as_deref()).await?;
            held.extend(
                page.contacts
                    .into_iter()
                    .filter_map(|c| c.amazon_contact_id)
                    .map(|id| ContactKey::folded(&id)),
            );
            match page.next_cursor {
                Some(next) if !next.is_empty() => {
                    if !followed.insert(next.clone()) {
                        return Err(VerintError::RepeatedCursor);
                    }
                    cursor = Some(next);
                }
                _ => return Ok(held),
            }
        }
    }

    async fn das_page(
        &self,
        piece: Window,
        cursor: Option<&str>,
    ) -> Result<answer::DasPage, VerintError> {
        let mut query = format!(
            "/contacts?from={}&to={}&state=completed&limit={}",
            format_ts(piece.start),
            format_ts(piece.end),
            self.page_limit
        );
        if let Some(c) = cursor {
            query.push_str("&cursor=");
            query.push_str(&percent_encode(c));
        }
        let url = Self::url(&self.das, &query)?;
        self.with_retries("das page", None, || async {
            let response = check(self.das_get(&url).await?).await?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(transport)?;
            answer::das_page(&bytes).map_err(|e| VerintError::NotVerint { status, what: e.0 })
        })
        .await
    }

    /// Whether Verint already holds the contact (`GET {das}/contacts/{id}`).
    pub async fn holds(&self, contact_id: &str) -> Result<Option<String>, VerintError> {
        self.holds_by(contact_id, None).await
    }

    /// [`Self::holds`], with every attempt and every wait before `deadline`: retries (including
    /// a `Retry-After` wait) stop when the time left cannot cover another attempt.
    pub(crate) async fn holds_by(
        &self,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<String>, VerintError> {
        let url = Self::url(
            &self.das,
            &format!("/contacts/{}", percent_encode(contact_id)),
        )?;
        self.with_retries("das contact", deadline, || async {
            let response = self.das_get(&url).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let response = check(response).await?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(transport)?;
            if status != StatusCode::OK {
                return Err(VerintError::NotVerint {
                    status,
                    what: "a DAS lookup answered other than 200 or 404",
                });
            }
            answer::contact(&bytes, contact_id)
                .map(Some)
                .map_err(|e| VerintError::NotVerint { status, what: e.0 })
        })
        .await
    }

    async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        deadline: Option<Instant>,
        mut call: F,
    ) -> Result<T, VerintError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, VerintError>>,
    {
        // A gateway's page or a rotation can fail several tries in a row: DAS is asked at least
        // DAS_MIN_ATTEMPTS times before a run or a re-check gives up.
        let policy = RetryPolicy {
            attempts: self.retry.attempts.max(DAS_MIN_ATTEMPTS),
            ..self.retry
        };
        let mut delays = policy.delays();
        let mut last: Option<VerintError> = None;
        loop {
            let result = match deadline {
                Some(d) => {
                    if d.saturating_duration_since(Instant::now()) < MIN_ATTEMPT_TIME {
                        return Err(VerintError::OutOfTime {
                            last: last.map(Box::new),
                        });
                    }
                    match tokio::time::timeout_at(d, call()).await {
                        Ok(r) => r,
                        Err(_) => {
                            return Err(VerintError::OutOfTime {
                                last: last.map(Box::new),
                            });
                        }
                    }
                }
                None => call().await,
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() => match delays.next() {
                    Some(backoff) => {
                        let wait = RetryPolicy::wait(backoff, &e);
                        if deadline.is_some_and(|d| Instant::now() + wait + MIN_ATTEMPT_TIME > d) {
                            return Err(VerintError::OutOfTime {
                                last: Some(Box::new(e)),
                            });
                        }
                        warn!(error.message = %e, reason = %e.reason(), wait_ms = wait.as_millis() as u64, "{what} failed, retrying");
                        tokio::time::sleep(wait).await;
                        last = Some(e);
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }
}

/// Verint is reached over https; plain http only to this machine (the local simulator).
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "{url} must use https (http is allowed only to a loopback address)"
                ))
            }
        }
        other => Err(format!("{url} has scheme {other:?}; expected https")),
    }
}

/// Turns a non-success answer into an error that carries its status, a short detail and
/// `Retry-After`.
pub(crate) async fn check(response: reqwest::Response) -> Result<reqwest::Response, VerintError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    // The body is not kept: an answer that echoes the call's metadata would carry a customer's
    // phone number or attributes into logs, outcomes and dead-letter reasons.
    let detail = status.canonical_reason().unwrap_or("error").to_owned();
    debug!(status = status.as_u16(), "verint error answer");
    Err(VerintError::Status {
        status,
        detail,
        retry_after,
    })
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (at - Utc::now()).to_std().ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// The ports this adapter speaks.

impl VerintHoldings for VerintClient {
    async fn completed_contacts(
        &self,
        spans: &[Window],
    ) -> Result<HashSet<ContactKey>, VerintError> {
        VerintClient::completed_contacts(self, spans).await
    }
}

impl VerintIngest for VerintClient {
    async fn holds(
        &self,
        contact_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<String>, VerintError> {
        self.holds_by(contact_id, deadline).await
    }

    async fn ingest(
        &self,
        metadata: &Metadata,
        audio: Vec<AudioPart>,
    ) -> Result<Ingested, VerintError> {
        VerintClient::ingest(self, metadata, audio).await
    }

    fn retry_policy(&self) -> RetryPolicy {
        VerintClient::retry_policy(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::verint::MAX_RETRY_AFTER;

    fn status(code: u16) -> VerintError {
        VerintError::Status {
            status: StatusCode::from_u16(code).expect("valid"),
            detail: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn rejections_are_permanent_and_overload_is_transient() {
        for code in [400, 422] {
            assert!(!status(code).is_transient(), "{code}");
        }
        for code in [401, 403, 404, 413, 429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_backoff() {
        let e = VerintError::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            RetryPolicy::wait(Duration::from_millis(200), &e),
            Duration::from_secs(3)
        );
        assert_eq!(
            RetryPolicy::wait(Duration::from_secs(5), &e),
            Duration::from_secs(5)
        );
        let e = VerintError::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: String::new(),
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(RetryPolicy::wait(Duration::ZERO, &e), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().expect("valid"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("valid"),
        );
        assert_eq!(retry_after(&h), None, "a date in the past means no wait");
    }

    #[test]
    fn the_retry_policy_gives_one_delay_per_retry() {
        let p = RetryPolicy {
            attempts: 4,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
        assert_eq!(p.delays().count(), 3);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("ab+/="), "ab%2B%2F%3D");
    }

    /// A DAS that answers every request with `answer`.
    async fn das_answering(answer: &'static str) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}/das")).expect("url")
    }

    fn client_for(das: Url) -> VerintClient {
        let key = ApiKey::new(
            "kid",
            &secrecy::SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM"),
        )
        .expect("key");
        VerintClient::new(das.clone(), das, key).expect("client")
    }

    #[tokio::test]
    async fn a_retry_after_longer_than_the_time_left_ends_the_re_check_at_once() {
        let das = das_answering(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(20);
        let e = client_for(das)
            .holds_by("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b", Some(deadline))
            .await
            .expect_err("no time to wait 30 s");
        assert!(matches!(e, VerintError::OutOfTime { .. }), "{e:?}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
        assert!(e.is_transient());
        assert!(started.elapsed() < Duration::from_secs(5), "no wait");
    }

    fn quick(client: VerintClient) -> VerintClient {
        client.with_retry(RetryPolicy {
            attempts: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        })
    }

    const ID: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";

    #[tokio::test]
    async fn a_lookup_answered_by_a_maintenance_page_is_never_taken_as_held() {
        let das = das_answering(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>",
        )
        .await;
        let e = quick(client_for(das))
            .holds(ID)
            .await
            .expect_err("not verint's answer");
        assert!(matches!(e, VerintError::NotVerint { .. }), "{e:?}");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn a_lookup_answered_for_another_contact_is_never_taken_as_held() {
        let das = das_answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n{\"amazonContactId\":\"00000000-1d2e-4f60-8a9b-0c1d2e3f4a5b\",\"interactionId\":\"i-1\"}",
        )
        .await;
        let e = quick(client_for(das))
            .holds(ID)
            .await
            .expect_err("another id");
        assert!(matches!(e, VerintError::NotVerint { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_lookup_naming_the_contact_in_upper_case_is_held() {
        let das = das_answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n{\"amazonContactId\":\"5F8A7B3C-1D2E-4F60-8A9B-0C1D2E3F4A5B\",\"interactionId\":\"i-1\"}",
        )
        .await;
        assert_eq!(
            quick(client_for(das)).holds(ID).await.expect("held"),
            Some("i-1".into())
        );
    }

    #[tokio::test]
    async fn a_das_listing_that_repeats_its_cursor_is_an_error_not_a_loop() {
        let das = das_answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 53\r\n\r\n{\"contacts\":[{\"interactionId\":\"x\"}],\"nextCursor\":\"c\"}",
        )
        .await;
        let start = Utc::now() - TimeDelta::hours(3);
        let window = Window {
            start,
            end: start + TimeDelta::hours(1),
        };
        let e = quick(client_for(das))
            .completed_contacts(&[window])
            .await
            .expect_err("a loop");
        assert!(matches!(e, VerintError::RepeatedCursor), "{e:?}");
        assert!(e.is_transient());
    }

    /// A DAS that accepts only requests signed with key id `accepted`, counting the refusals.
    async fn das_accepting(
        accepted: &'static str,
        refused: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let refused = refused.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let request = String::from_utf8_lossy(&buf[..n]);
                        let answer = if request.contains(&format!("kid={accepted},")) {
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                        } else {
                            refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
                        };
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}/das")).expect("url")
    }

    #[derive(Debug)]
    struct RotatedSecret;

    impl KeySource for RotatedSecret {
        fn read(
            &self,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<ApiKey, keys::KeyReadError>> + Send + '_>>
        {
            Box::pin(async {
                Ok(ApiKey::new(
                    "new",
                    &secrecy::SecretString::from("bmV3LWtleQ"),
                )?)
            })
        }
    }

    #[tokio::test]
    async fn a_rotated_key_is_read_again_and_the_request_sent_at_once_with_it() {
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let das = das_accepting("new", refused.clone()).await;
        let old = ApiKey::new("old", &secrecy::SecretString::from("b2xkLWtleQ")).expect("key");
        let keys = Keys::from_source(old, Arc::new(RotatedSecret))
            .with_intervals(Duration::ZERO, MAX_KEY_AGE_FOR_TESTS);
        let client = VerintClient::with_key_set(das.clone(), das, Arc::new(keys))
            .expect("client")
            .with_retry(RetryPolicy {
                attempts: 1,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            });
        assert_eq!(
            client.holds(ID).await.expect("asked with the new key"),
            None
        );
        assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(client.holds(ID).await.expect("the new key is kept"), None);
        assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_key_refused_with_nothing_to_read_again_is_transient() {
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let das = das_accepting("new", refused).await;
        let e = quick(client_for(das)).holds(ID).await.expect_err("refused");
        assert!(matches!(e, VerintError::KeyRefused { .. }), "{e:?}");
        assert!(e.is_transient(), "a rotation in progress, never permanent");
    }

    const MAX_KEY_AGE_FOR_TESTS: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn no_attempt_starts_without_time_for_it() {
        let das = das_answering("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        let soon = Instant::now() + Duration::from_secs(1);
        let e = client_for(das.clone())
            .holds_by("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b", Some(soon))
            .await
            .expect_err("too little time");
        assert!(matches!(e, VerintError::OutOfTime { last: None }), "{e:?}");
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            client_for(das)
                .holds_by("5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b", Some(later))
                .await
                .expect("asked"),
            None
        );
    }
}
