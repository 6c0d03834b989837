//! The Verint (DAS + ingest, design §6) and Amazon Connect (`DescribeContact`) simulator:
//! one HTTP server that tests start in-process on an ephemeral port, and that the
//! `simulator` binary serves for the local stack. State is seeded and inspected through
//! [`SimState`] (in-process) or the `/_admin` routes (over HTTP).
//!
//! Written from the contract (`docs/design.md` §6: the signature, DAS's pages, ingest's parts
//! and answers), not from the production code: the simulator is an independent reading of the
//! contract, so that a misreading in the library's Verint adapter shows up as a disagreement
//! here instead of being copied. It records what the client did as well as what it stored
//! ([`SimStats::ingest_answers`]): it answers 409 to a repeated `Idempotency-Key`, so only the
//! attempts can show a call sent twice.
//!
//! Faults ([`Faults`]) are drawn from a seeded generator: ingest answers 503/429/500, drops the
//! connection mid-body, stores the call and loses the answer, stalls mid-body, reads slowly or
//! rejects chosen contacts; DAS answers a list page 503; a gateway in front of Verint answers
//! DAS and ingest `200` with an HTML maintenance page (for an ingest, with the call stored
//! behind it or not); Connect throttles or forgets chosen contacts. The API key can be rotated
//! ([`SimState::rotate_key`], `POST /_admin/rotate-key`): from then on only the new one is
//! accepted.

pub mod auth;
mod routes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Timestamps as design §3 writes them: RFC 3339 UTC with `Z`, fractions only when present.
pub mod ts {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not RFC 3339: {s}")))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::parse(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("not RFC 3339: {s}"))),
            }
        }
    }
}

/// A contact as DAS lists it (the JSON shape of design §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerintContact {
    /// Absent for calls that did not come through Amazon Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amazon_contact_id: Option<String>,
    pub interaction_id: String,
    #[serde(with = "ts")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "ts")]
    pub end_time: DateTime<Utc>,
}

/// What `DescribeContact` knows about a contact. Serialized in snake_case for `/_admin`;
/// the Connect route renders it as the AWS shape (epoch seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectContact {
    pub instance_id: String,
    pub id: String,
    pub arn: String,
    #[serde(default)]
    pub initial_contact_id: Option<String>,
    #[serde(default)]
    pub previous_contact_id: Option<String>,
    pub channel: String,
    pub initiation_method: String,
    #[serde(with = "ts")]
    pub initiation_timestamp: DateTime<Utc>,
    #[serde(default, with = "ts::option")]
    pub disconnect_timestamp: Option<DateTime<Utc>>,
    #[serde(with = "ts")]
    pub last_update_timestamp: DateTime<Utc>,
    #[serde(default)]
    pub agent: Option<ConnectAgent>,
    #[serde(default)]
    pub queue: Option<ConnectQueue>,
    #[serde(default)]
    pub customer_endpoint: Option<ConnectEndpoint>,
    #[serde(default)]
    pub system_endpoint: Option<ConnectEndpoint>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectAgent {
    pub id: String,
    #[serde(default, with = "ts::option")]
    pub connected_to_agent_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectQueue {
    pub id: String,
    #[serde(default, with = "ts::option")]
    pub enqueue_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectEndpoint {
    /// `TELEPHONE_NUMBER`, `VOIP`, `CONTACT_FLOW`, ...
    #[serde(rename = "type")]
    pub endpoint_type: String,
    pub address: String,
}

/// A call the ingest route accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedCall {
    pub contact_id: String,
    pub interaction_id: String,
    /// The `metadata` part as sent.
    pub metadata: serde_json::Value,
    pub audio: Vec<IngestedAudio>,
    /// Always 1: a second upload of the same contact is answered 409 and not stored.
    pub stored_times: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedAudio {
    /// The part's name (`audio`).
    pub name: String,
    pub filename: String,
    pub content_type: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the part's bytes.
    pub sha256: String,
}

/// Faults to inject. Rates are probabilities in 0.0–1.0, drawn from a generator seeded with
/// `seed` (re-seeded on every [`SimState::set_faults`]), so a run is repeatable. The ingest
/// faults are exclusive: one draw per request picks at most one of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub seed: u64,
    /// Ingest: 503 with `Retry-After: retry_after_secs`.
    pub status_503: f64,
    /// Ingest: 429 with `Retry-After: retry_after_secs`.
    pub status_429: f64,
    /// Ingest: 500.
    pub status_500: f64,
    pub retry_after_secs: u64,
    /// Ingest: read the metadata and part of the audio, then close the connection unanswered.
    pub drop_mid_body: f64,
    /// Ingest: store the call, then close the connection unanswered (the retry gets 409).
    pub lost_response: f64,
    /// Ingest: lose the response of the next this-many requests (as `lost_response`), whatever
    /// the draw, so that a test is sure to see the 409 path however few calls its day has.
    pub lose_first: u32,
    /// Ingest: delay before answering, in milliseconds (every request).
    pub slow_ms: u64,
    /// Ingest: a slow link. Request bodies are read at most this fast, in bytes per second
    /// (0: as fast as they come), so the client's upload is held back by TCP as it would be by a
    /// WAN link. Every request.
    pub read_bytes_per_sec: u64,
    /// Ingest: stop reading the body after `stall_after_bytes` bytes and never answer; the
    /// connection stays open until the client gives up. Drawn with the other ingest faults.
    pub stall: f64,
    /// Ingest: stall the next this-many requests, whatever the draw (for tests that need one
    /// stalled upload and then a good one).
    pub stall_first: u32,
    /// Where a stall stops reading, in body bytes (0: before the first byte).
    pub stall_after_bytes: u64,
    /// Ingest: always 422 for these contact ids.
    pub reject_contact_ids: Vec<String>,
    /// Connect: 429 `ThrottlingException` / `TooManyRequestsException` (alternating).
    pub connect_throttle: f64,
    /// Connect: 404 `ResourceNotFoundException` for these contact ids, even when known.
    pub connect_unknown_contact_ids: Vec<String>,
    /// DAS: 503 (with `Retry-After`) on a list page.
    pub das_page_fault: f64,
    /// DAS listings, DAS look-ups and ingests: a gateway, proxy or maintenance page in front of
    /// Verint answers `200 OK`, `Content-Type: text/html`, with [`GATEWAY_PAGE`]. An ingest's
    /// body is read whole first; then a second draw (50/50) decides whether the gateway
    /// swallowed the request (nothing stored) or Verint handled it and the gateway replaced its
    /// answer (201 or 409; the call stored, so a retry gets 409). Verint's rejections (4xx) go
    /// through. Drawn before the other faults, exclusive with them.
    pub gateway_page: f64,
    /// Answer the next this-many DAS listings, DAS look-ups and ingests (counted together) with
    /// the gateway page, whatever the draw, so that a test is sure to see it.
    pub gateway_page_first: u32,
}

/// The body of the `gateway_page` fault's answers.
pub const GATEWAY_PAGE: &str = concat!(
    "<!DOCTYPE html>\n",
    "<html><head><title>Service maintenance</title></head><body>\n",
    "<h1>Service maintenance</h1>\n",
    "<p>The service is undergoing scheduled maintenance. Please try again later.</p>\n",
    "</body></html>\n",
);

/// Counters, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests per route, keyed `"METHOD /route/{param}"` (`"unmatched"` for the rest).
    pub requests: BTreeMap<String, u64>,
    /// 401 answers.
    pub unauthorized: u64,
    /// Key rotations ([`SimState::rotate_key`]).
    #[serde(default)]
    pub key_rotations: u64,
    /// `200` HTML gateway pages answered (the `gateway_page` faults), DAS and ingest together;
    /// also counted in `faults["gateway_page"]`.
    #[serde(default)]
    pub gateway_pages: u64,
    /// Of those, ingests whose call Verint stored behind the page.
    #[serde(default)]
    pub gateway_pages_stored: u64,
    /// Injected faults by name (`status_503`, `drop_mid_body`, `connect_throttle`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Calls stored, per contact id (never above 1).
    pub ingest_stores: BTreeMap<String, u32>,
    /// 409 answers (already stored), per contact id.
    pub ingest_conflicts: BTreeMap<String, u32>,
    /// 4xx rejections of ingest bodies (422/411), with the reason, in order.
    pub ingest_rejections: Vec<String>,
    /// Every answer to an ingest request that carried an `Idempotency-Key`, per key (the contact
    /// id), in order of arrival: one entry per attempt, so a call sent again after Verint
    /// answered is visible here even though it is stored only once.
    #[serde(default)]
    pub ingest_answers: BTreeMap<String, Vec<IngestAnswer>>,
    /// DAS list requests' `(from, to)` as sent, in order of arrival: one per piece asked (the
    /// pages after a piece's first, with a cursor, are not logged again).
    #[serde(default)]
    pub das_queries: Vec<(String, String)>,
}

/// How the simulator answered one ingest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestAnswer {
    /// 201: stored, and the client was told so.
    Created,
    /// Stored, then the connection closed unanswered (the `lost_response` fault).
    CreatedButLost,
    /// 409: already stored (a success for the client).
    Conflict,
    /// 400/411/422: rejected, permanently.
    Rejected,
    /// An injected 429, 500 or 503.
    Transient(u16),
    /// The connection closed mid-body (the `drop_mid_body` fault).
    Dropped,
    /// The body stopped being read (the `stall` faults); the client must give up.
    Stalled,
    /// A `200` HTML gateway page, the call not stored by this attempt (the gateway swallowed
    /// the request, or replaced Verint's 409).
    GatewayPage,
    /// Stored, then Verint's 201 replaced by a `200` HTML gateway page (the retry gets 409).
    CreatedBehindGatewayPage,
}

impl IngestAnswer {
    /// The client was told the call is in Verint (201 or 409).
    pub fn is_success(self) -> bool {
        matches!(self, IngestAnswer::Created | IngestAnswer::Conflict)
    }

    /// The call was stored by this attempt, told or not.
    pub fn stored(self) -> bool {
        matches!(
            self,
            IngestAnswer::Created
                | IngestAnswer::CreatedButLost
                | IngestAnswer::CreatedBehindGatewayPage
        )
    }

    /// An injected fault the client must retry after (transient, design §6).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            IngestAnswer::CreatedButLost
                | IngestAnswer::Transient(_)
                | IngestAnswer::Dropped
                | IngestAnswer::Stalled
                | IngestAnswer::GatewayPage
                | IngestAnswer::CreatedBehindGatewayPage
        )
    }
}

impl SimStats {
    /// Ingest requests that carried `contact_id` as their `Idempotency-Key`.
    pub fn ingest_attempts(&self, contact_id: &str) -> usize {
        self.ingest_answers.get(contact_id).map_or(0, Vec::len)
    }

    /// 201 answers the client received for `contact_id`.
    pub fn created_answers(&self, contact_id: &str) -> usize {
        self.ingest_answers.get(contact_id).map_or(0, |a| {
            a.iter().filter(|x| **x == IngestAnswer::Created).count()
        })
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub key_id: String,
    /// base64url, no padding.
    pub api_key: String,
    /// The largest `limit` DAS accepts.
    pub max_page_size: usize,
}

/// The simulator's data: cheap to clone, shared with the server.
#[derive(Debug, Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The one key accepted; replaced by a rotation, kept by [`SimState::reset`].
    key: Mutex<ApiKey>,
    max_page_size: usize,
    data: Mutex<Data>,
}

#[derive(Debug, Clone)]
struct ApiKey {
    id: String,
    /// Decoded.
    key: Vec<u8>,
}

impl ApiKey {
    fn new(id: &str, key: &str) -> anyhow::Result<ApiKey> {
        anyhow::ensure!(!id.is_empty(), "the key id must not be empty");
        let key = URL_SAFE_NO_PAD
            .decode(key.trim_end_matches('='))
            .context("the api key must be base64url")?;
        anyhow::ensure!(!key.is_empty(), "the api key must not be empty");
        Ok(ApiKey {
            id: id.to_owned(),
            key,
        })
    }
}

#[derive(Debug)]
struct Data {
    verint: Vec<VerintContact>,
    /// `DescribeContact`'s contacts by (instance id, contact id): several instances of the
    /// account can be asked (design §11).
    connect: HashMap<(String, String), ConnectContact>,
    faults: Faults,
    rng: StdRng,
    ingested: Vec<IngestedCall>,
    by_contact: HashMap<String, usize>,
    stats: SimStats,
    next_interaction: u64,
    throttle_flip: bool,
    /// What is left of `Faults::stall_first`.
    stalls_left: u32,
    /// What is left of `Faults::lose_first`.
    losses_left: u32,
    /// What is left of `Faults::gateway_page_first`.
    gateway_pages_left: u32,
}

impl Data {
    fn new() -> Self {
        Data {
            verint: Vec::new(),
            connect: HashMap::new(),
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(0),
            ingested: Vec::new(),
            by_contact: HashMap::new(),
            stats: SimStats::default(),
            next_interaction: 1,
            throttle_flip: false,
            stalls_left: 0,
            losses_left: 0,
            gateway_pages_left: 0,
        }
    }

    /// Draws only when the rate is positive, so faults that are off never move the sequence.
    fn draw(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    fn count_fault(&mut self, name: &str) {
        *self.stats.faults.entry(name.to_owned()).or_default() += 1;
    }

    /// Whether the gateway answers this request with its page: `gateway_page_first`, then a
    /// draw. Counted by [`Data::count_gateway_page`] when the page is sent.
    fn gateway_page(&mut self) -> bool {
        if self.gateway_pages_left > 0 {
            self.gateway_pages_left -= 1;
            true
        } else {
            let rate = self.faults.gateway_page;
            self.draw(rate)
        }
    }

    /// A gateway page sent; `stored`: an ingest whose call Verint stored behind it.
    fn count_gateway_page(&mut self, stored: bool) {
        self.count_fault("gateway_page");
        self.stats.gateway_pages += 1;
        if stored {
            self.stats.gateway_pages_stored += 1;
        }
    }
}

/// The ingest fault picked for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IngestFault {
    Status(u16),
    DropMidBody,
    LostResponse,
    Stall,
    /// The gateway read the body and answered its page; Verint never saw the request.
    GatewaySwallowed,
    /// Verint handled the request; the gateway replaced its 201 or 409 with the page.
    GatewayReplaced,
}

/// How one ingest request is to be served.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IngestPlan {
    fault: Option<IngestFault>,
    rejected: bool,
    slow_ms: u64,
    retry_after: u64,
    /// Body bytes per second, 0 for no limit.
    read_rate: u64,
    /// Body bytes read before a stall.
    stall_after: u64,
}

impl SimState {
    fn new(config: &SimConfig) -> anyhow::Result<Self> {
        let key = ApiKey::new(&config.key_id, &config.api_key)?;
        anyhow::ensure!(config.max_page_size > 0, "max_page_size must be positive");
        Ok(SimState {
            inner: Arc::new(Inner {
                key: Mutex::new(key),
                max_page_size: config.max_page_size,
                data: Mutex::new(Data::new()),
            }),
        })
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The key requests must be signed with now: `(key id, decoded key)`.
    fn key(&self) -> (String, Vec<u8>) {
        let k = self
            .inner
            .key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (k.id.clone(), k.key.clone())
    }

    /// Rotates the API key: from now on only `key_id` with `key` (base64url, as design §6) is
    /// accepted; a request signed with the old key id or the old key gets 401. Requests already
    /// past the check are served. [`SimState::reset`] keeps the key.
    pub fn rotate_key(&self, key_id: &str, key: &str) -> anyhow::Result<()> {
        let new = ApiKey::new(key_id, key)?;
        *self
            .inner
            .key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = new;
        self.data().stats.key_rotations += 1;
        Ok(())
    }

    /// Appends to DAS's holdings.
    pub fn seed_verint(&self, contacts: Vec<VerintContact>) {
        self.data().verint.extend(contacts);
    }

    /// Adds (or replaces, by instance and contact id) contacts `DescribeContact` knows.
    pub fn seed_connect(&self, contacts: Vec<ConnectContact>) {
        let mut d = self.data();
        for c in contacts {
            d.connect.insert((c.instance_id.clone(), c.id.clone()), c);
        }
    }

    /// Replaces the faults and re-seeds their generator.
    pub fn set_faults(&self, faults: Faults) {
        let mut d = self.data();
        d.rng = StdRng::seed_from_u64(faults.seed);
        d.stalls_left = faults.stall_first;
        d.losses_left = faults.lose_first;
        d.gateway_pages_left = faults.gateway_page_first;
        d.faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.data().faults.clone()
    }

    pub fn verint(&self) -> Vec<VerintContact> {
        self.data().verint.clone()
    }

    pub fn ingested(&self) -> Vec<IngestedCall> {
        self.data().ingested.clone()
    }

    pub fn stats(&self) -> SimStats {
        self.data().stats.clone()
    }

    /// Forgets everything: holdings, contacts, ingested calls, faults, counters (not the key).
    pub fn reset(&self) {
        *self.data() = Data::new();
    }

    fn count_request(&self, route: String) {
        *self.data().stats.requests.entry(route).or_default() += 1;
    }

    fn count_unauthorized(&self) {
        self.data().stats.unauthorized += 1;
    }

    fn count_answer(&self, contact_id: &str, answer: IngestAnswer) {
        self.data()
            .stats
            .ingest_answers
            .entry(contact_id.to_owned())
            .or_default()
            .push(answer);
    }

    fn count_rejection(&self, reason: &str) {
        self.data().stats.ingest_rejections.push(reason.to_owned());
    }

    fn ingest_fault(&self, contact_id: &str) -> IngestPlan {
        let mut d = self.data();
        let f = d.faults.clone();
        let mut plan = IngestPlan {
            fault: None,
            rejected: false,
            slow_ms: f.slow_ms,
            retry_after: f.retry_after_secs,
            read_rate: f.read_bytes_per_sec,
            stall_after: f.stall_after_bytes,
        };
        // The gateway is in front of Verint: its page comes first, and excludes the others.
        if d.gateway_page() {
            // Second draw: did the request reach Verint behind the page?
            plan.fault = Some(if d.rng.random::<bool>() {
                IngestFault::GatewayReplaced
            } else {
                IngestFault::GatewaySwallowed
            });
        }
        if plan.fault != Some(IngestFault::GatewaySwallowed)
            && f.reject_contact_ids.iter().any(|c| c == contact_id)
        {
            d.count_fault("reject_contact_ids");
            plan.rejected = true;
            return plan;
        }
        if plan.fault.is_some() {
            // The gateway's page: no other fault.
        } else if d.stalls_left > 0 {
            d.stalls_left -= 1;
            d.count_fault("stall");
            plan.fault = Some(IngestFault::Stall);
        } else if d.losses_left > 0 {
            d.losses_left -= 1;
            d.count_fault("lost_response");
            plan.fault = Some(IngestFault::LostResponse);
        }
        let total = f.status_503
            + f.status_429
            + f.status_500
            + f.drop_mid_body
            + f.lost_response
            + f.stall;
        if plan.fault.is_none() && total > 0.0 {
            let u: f64 = d.rng.random();
            let picks = [
                (f.status_503, IngestFault::Status(503), "status_503"),
                (f.status_429, IngestFault::Status(429), "status_429"),
                (f.status_500, IngestFault::Status(500), "status_500"),
                (f.drop_mid_body, IngestFault::DropMidBody, "drop_mid_body"),
                (f.lost_response, IngestFault::LostResponse, "lost_response"),
                (f.stall, IngestFault::Stall, "stall"),
            ];
            let mut acc = 0.0;
            for (rate, pick, name) in picks {
                acc += rate;
                if u < acc {
                    d.count_fault(name);
                    plan.fault = Some(pick);
                    break;
                }
            }
        }
        if f.slow_ms > 0 {
            d.count_fault("slow_ms");
        }
        if f.read_bytes_per_sec > 0 {
            d.count_fault("read_bytes_per_sec");
        }
        plan
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: SimState,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free port) and serves in the background.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> anyhow::Result<Simulator> {
        let state = SimState::new(&config)?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let shutdown = CancellationToken::new();
        let app = routes::router(state.clone());
        let task = tokio::spawn(routes::serve(listener, app, shutdown.clone()));
        Ok(Simulator {
            addr,
            state,
            shutdown,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, also the Connect endpoint (`AWS_ENDPOINT_URL_CONNECT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `VERINT_DAS_URL`.
    pub fn das_url(&self) -> String {
        format!("{}/das", self.base_url())
    }

    /// `VERINT_INGEST_URL`.
    pub fn ingest_url(&self) -> String {
        format!("{}/ingest", self.base_url())
    }

    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests;
