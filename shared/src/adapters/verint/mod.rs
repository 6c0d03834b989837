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
            crate::domain::verint::check_url(url).map_err(VerintError::Url)?;
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
mod tests;
