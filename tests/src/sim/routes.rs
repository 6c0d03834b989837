//! The HTTP side of the simulator: the accept loop (so a handler can drop its own
//! connection), the routes and their handlers.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

use super::{
    ConnectContact, Faults, GATEWAY_PAGE, IngestAnswer, IngestFault, IngestPlan, IngestedAudio,
    IngestedCall, SimState, VerintContact, auth, ts,
};

/// Closes the connection the request came on, without an answer.
#[derive(Debug, Clone)]
struct ConnKill(CancellationToken);

pub(super) async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = ConnKill(CancellationToken::new());
            let tag = kill.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(tag.clone());
                    app.clone().oneshot(req.map(Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r { debug!(%peer, error = %e, "connection ended with an error") },
                () = kill.0.cancelled() => debug!(%peer, "connection dropped on purpose"),
                () = shutdown.cancelled() => {}
            }
        });
    }
}

pub(super) fn router(state: SimState) -> Router {
    let verint = Router::new()
        .route("/das/contacts", get(das_list))
        .route("/das/contacts/{id}", get(das_get))
        .route(
            "/ingest/recovered-calls",
            post(ingest).layer(DefaultBodyLimit::disable()),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    Router::new()
        .merge(verint)
        .route(
            "/contacts/{instance_id}/{contact_id}",
            get(describe_contact),
        )
        .route("/_admin/verint", post(admin_verint))
        .route("/_admin/connect", post(admin_connect))
        .route("/_admin/faults", post(admin_faults).get(admin_get_faults))
        .route("/_admin/reset", post(admin_reset))
        .route("/_admin/rotate-key", post(admin_rotate_key))
        .route("/_admin/ingested", get(admin_ingested))
        .route("/_admin/stats", get(admin_stats))
        .route("/_admin/health", get(|| async { "ok" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn count_requests(State(st): State<SimState>, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => format!("{} {}", req.method(), p.as_str()),
        None => "unmatched".to_owned(),
    };
    st.count_request(route);
    next.run(req).await
}

async fn require_auth(State(st): State<SimState>, req: Request, next: Next) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let (key_id, key) = st.key();
    let verdict = auth::verify(
        &key_id,
        &key,
        Utc::now(),
        req.method().as_str(),
        &path_and_query,
        req.headers(),
    );
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => {
            st.count_unauthorized();
            info!(reason = e.message(), %path_and_query, "401");
            drain(req.into_body()).await;
            error(StatusCode::UNAUTHORIZED, e.message())
        }
    }
}

/// Reads a body to its end, so that an early answer reaches a client still sending.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// What a gateway, proxy or maintenance page in front of Verint answers (the `gateway_page`
/// faults): `200 OK`, `text/html`, not Verint's JSON.
fn gateway_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        GATEWAY_PAGE,
    )
        .into_response()
}

// ---------------------------------------------------------------- DAS

const CURSOR_SECRET: &[u8] = b"verint-sim-cursor-v1";

fn cursor_check(payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(CURSOR_SECRET);
    h.update(payload.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Opaque: the last position returned, bound to the query's window, with a check.
fn encode_cursor(from: &str, to: &str, last: &VerintContact) -> String {
    let payload = format!(
        "{from}|{to}|{}|{}",
        last.start_time.timestamp_nanos_opt().unwrap_or_default(),
        last.interaction_id
    );
    let check = cursor_check(&payload);
    URL_SAFE_NO_PAD.encode(format!("{check}|{payload}"))
}

fn decode_cursor(cursor: &str, from: &str, to: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (check, payload) = raw.split_once('|')?;
    if cursor_check(payload) != check {
        return None;
    }
    let mut parts = payload.splitn(4, '|');
    let (f, t, nanos, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if f != from || t != to {
        return None;
    }
    Some((nanos.parse().ok()?, id.to_owned()))
}

fn nanos(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or_default()
}

async fn das_list(
    State(st): State<SimState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, m);
    let (Some(from_s), Some(to_s)) = (q.get("from"), q.get("to")) else {
        return bad("from and to are required");
    };
    let (Some(from), Some(to)) = (ts::parse(from_s), ts::parse(to_s)) else {
        return bad("from and to must be RFC 3339");
    };
    if from >= to {
        return bad("from must be before to");
    }
    if to - from > TimeDelta::hours(24) {
        return bad("a request spans at most 24 hours");
    }
    if q.get("state").map(String::as_str) != Some("completed") {
        return bad("state must be completed");
    }
    let max = st.inner.max_page_size;
    let limit = match q.get("limit") {
        None => max.min(100),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => return bad(&format!("limit must be in 1..={max}")),
        },
    };
    let after = match q.get("cursor") {
        None => None,
        Some(c) => match decode_cursor(c, from_s, to_s) {
            Some(pos) => Some(pos),
            None => return bad("invalid cursor"),
        },
    };
    let mut d = st.data();
    if after.is_none() {
        d.stats.das_queries.push((from_s.clone(), to_s.clone()));
    }
    if d.gateway_page() {
        d.count_gateway_page(false);
        return gateway_page();
    }
    let (rate, retry_after) = (d.faults.das_page_fault, d.faults.retry_after_secs);
    if d.draw(rate) {
        d.count_fault("das_page_fault");
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, retry_after);
    }
    let mut hits: Vec<&VerintContact> = d
        .verint
        .iter()
        .filter(|c| c.start_time >= from && c.start_time < to)
        .filter(|c| match &after {
            None => true,
            Some((n, id)) => (nanos(&c.start_time), &c.interaction_id) > (*n, id),
        })
        .collect();
    hits.sort_by(|a, b| (a.start_time, &a.interaction_id).cmp(&(b.start_time, &b.interaction_id)));
    let more = hits.len() > limit;
    hits.truncate(limit);
    let next = match (more, hits.last()) {
        (true, Some(last)) => Value::String(encode_cursor(from_s, to_s, last)),
        _ => Value::Null,
    };
    axum::Json(json!({ "contacts": hits, "nextCursor": next })).into_response()
}

async fn das_get(State(st): State<SimState>, Path(id): Path<String>) -> Response {
    let mut d = st.data();
    if d.gateway_page() {
        d.count_gateway_page(false);
        return gateway_page();
    }
    match d
        .verint
        .iter()
        .find(|c| c.amazon_contact_id.as_deref() == Some(id.as_str()))
    {
        Some(c) => axum::Json(c).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such contact"),
    }
}

fn retry_later(status: StatusCode, retry_after: u64) -> Response {
    let mut r = error(status, "try again later");
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

// ---------------------------------------------------------------- ingest

/// The `recordings` entries of the metadata, as far as the checks need them.
#[derive(Debug, serde::Deserialize)]
struct Recording {
    bytes: u64,
}

const MAX_METADATA: usize = 1 << 20;

async fn ingest(State(st): State<SimState>, req: Request) -> Response {
    let kill = req.extensions().get::<ConnKill>().cloned();
    let (parts, body) = req.into_parts();
    let reject = |status: StatusCode, reason: String| {
        st.count_rejection(&reason);
        info!(%reason, "ingest rejected");
        error(status, &reason)
    };
    if parts.headers.get(header::CONTENT_LENGTH).is_none() {
        drain(body).await;
        return reject(
            StatusCode::LENGTH_REQUIRED,
            "Content-Length is required (no chunked uploads)".into(),
        );
    }
    let Some(key) = header_str(&parts.headers, "idempotency-key") else {
        drain(body).await;
        return reject(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key is required".into(),
        );
    };
    let boundary = header_str(&parts.headers, header::CONTENT_TYPE.as_str())
        .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"))
        .and_then(|ct| multer::parse_boundary(ct).ok());
    let Some(boundary) = boundary else {
        drain(body).await;
        st.count_answer(&key, IngestAnswer::Rejected);
        return reject(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Content-Type must be multipart/form-data with a boundary".into(),
        );
    };
    let IngestPlan {
        fault,
        rejected,
        slow_ms,
        retry_after,
        read_rate,
        stall_after,
    } = st.ingest_fault(&key);
    if slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    }
    if rejected {
        drain(body).await;
        st.count_answer(&key, IngestAnswer::Rejected);
        return reject(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("contact {key} is rejected"),
        );
    }
    if fault == Some(IngestFault::GatewaySwallowed) {
        // The gateway reads the whole request, at the link's pace, and Verint never sees it.
        let mut stream = std::pin::pin!(paced(body, read_rate, None));
        while let Some(Ok(_)) = stream.next().await {}
        st.count_answer(&key, IngestAnswer::GatewayPage);
        st.data().count_gateway_page(false);
        info!(contact_id = %key, "gateway page, request swallowed");
        return gateway_page();
    }
    let behind_page = fault == Some(IngestFault::GatewayReplaced);
    if let Some(IngestFault::Status(code)) = fault {
        drain(body).await;
        st.count_answer(&key, IngestAnswer::Transient(code));
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return if code == 500 {
            error(status, "internal error")
        } else {
            retry_later(status, retry_after)
        };
    }

    let stall_after = (fault == Some(IngestFault::Stall)).then_some(stall_after);
    if let Some(n) = stall_after {
        // Counted now: a stalled request never gets to answer.
        st.count_answer(&key, IngestAnswer::Stalled);
        info!(contact_id = %key, after_bytes = n, "ingest will stall");
    }
    let mut mp = multer::Multipart::new(paced(body, read_rate, stall_after), boundary);
    let parsed = read_call(&mut mp, &key, fault, kill.as_ref()).await;
    let (metadata, audio) = match parsed {
        Ok(x) => x,
        Err(Abort::Dropped) => {
            st.count_answer(&key, IngestAnswer::Dropped);
            return std::future::pending::<Response>().await;
        }
        Err(Abort::Reject(reason)) => {
            if stall_after.is_none() {
                st.count_answer(&key, IngestAnswer::Rejected);
            }
            // Read what is left, so the client sees the answer rather than a broken pipe.
            while let Ok(Some(mut f)) = mp.next_field().await {
                while let Ok(Some(_)) = f.chunk().await {}
            }
            return reject(StatusCode::UNPROCESSABLE_ENTITY, reason);
        }
    };

    let interaction_id = {
        let mut d = st.data();
        if let Some(&i) = d.by_contact.get(&key) {
            let existing = d.ingested[i].interaction_id.clone();
            *d.stats.ingest_conflicts.entry(key.clone()).or_default() += 1;
            if behind_page {
                d.count_gateway_page(false);
                drop(d);
                st.count_answer(&key, IngestAnswer::GatewayPage);
                info!(contact_id = %key, interaction_id = %existing, "409 replaced by a gateway page");
                return gateway_page();
            }
            drop(d);
            st.count_answer(&key, IngestAnswer::Conflict);
            info!(contact_id = %key, interaction_id = %existing, "409 already stored");
            return (
                StatusCode::CONFLICT,
                axum::Json(json!({ "interactionId": existing })),
            )
                .into_response();
        }
        let interaction_id = format!("SIM-{:010}", d.next_interaction);
        d.next_interaction += 1;
        let start = metadata
            .get("initiationTimestamp")
            .and_then(Value::as_str)
            .and_then(ts::parse)
            .unwrap_or_else(Utc::now);
        let end = metadata
            .get("disconnectTimestamp")
            .and_then(Value::as_str)
            .and_then(ts::parse)
            .unwrap_or(start);
        d.verint.push(VerintContact {
            amazon_contact_id: Some(key.clone()),
            interaction_id: interaction_id.clone(),
            start_time: start,
            end_time: end,
        });
        let index = d.ingested.len();
        d.ingested.push(IngestedCall {
            contact_id: key.clone(),
            interaction_id: interaction_id.clone(),
            metadata,
            audio,
            stored_times: 1,
        });
        d.by_contact.insert(key.clone(), index);
        *d.stats.ingest_stores.entry(key.clone()).or_default() += 1;
        if behind_page {
            d.count_gateway_page(true);
        }
        interaction_id
    };
    if behind_page {
        st.count_answer(&key, IngestAnswer::CreatedBehindGatewayPage);
        info!(contact_id = %key, %interaction_id, "stored, 201 replaced by a gateway page");
        return gateway_page();
    }
    info!(contact_id = %key, %interaction_id, "201 stored");
    if fault == Some(IngestFault::LostResponse)
        && let Some(k) = &kill
    {
        st.count_answer(&key, IngestAnswer::CreatedButLost);
        k.0.cancel();
        return std::future::pending::<Response>().await;
    }
    st.count_answer(&key, IngestAnswer::Created);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "interactionId": interaction_id })),
    )
        .into_response()
}

enum Abort {
    Reject(String),
    Dropped,
}

/// A request body read the way a slow link and a stalled server read it: at most `rate` bytes
/// per second (0: no limit), in slices of a twentieth of a second, each handed on only when the
/// link would have carried it (so the socket is not read meanwhile and TCP holds the client
/// back); and, with `stall_after`, never more than that many bytes: the stream then stays
/// pending for ever.
fn paced(
    body: Body,
    rate: u64,
    stall_after: Option<u64>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Send + 'static {
    struct Pace {
        inner: axum::body::BodyDataStream,
        pending: bytes::Bytes,
        read: u64,
        started: tokio::time::Instant,
    }
    let state = Pace {
        inner: body.into_data_stream(),
        pending: bytes::Bytes::new(),
        read: 0,
        started: tokio::time::Instant::now(),
    };
    futures::stream::unfold(state, move |mut p| async move {
        if let Some(limit) = stall_after
            && p.read >= limit
        {
            return std::future::pending().await;
        }
        if p.pending.is_empty() {
            match p.inner.next().await? {
                Ok(b) => p.pending = b,
                Err(e) => return Some((Err(e), p)),
            }
        }
        let mut n = p.pending.len();
        if rate > 0 {
            n = n.min((rate / 20).max(1) as usize);
        }
        if let Some(limit) = stall_after {
            n = n.min(usize::try_from(limit - p.read).unwrap_or(usize::MAX));
        }
        let piece = p.pending.split_to(n);
        p.read += n as u64;
        if rate > 0 {
            let due = p.started + Duration::from_secs_f64(p.read as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
        }
        Some((Ok(piece), p))
    })
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads and checks every part, streaming the audio (hash and count, never kept).
async fn read_call(
    mp: &mut multer::Multipart<'static>,
    key: &str,
    fault: Option<IngestFault>,
    kill: Option<&ConnKill>,
) -> Result<(Value, Vec<IngestedAudio>), Abort> {
    let bad = |m: String| Abort::Reject(m);
    let mut field = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
        .ok_or_else(|| bad("the body has no parts".into()))?;
    if field.name() != Some("metadata") {
        return Err(bad(format!(
            "the first part must be metadata, not {:?}",
            field.name()
        )));
    }
    let ct = field.content_type().map(|m| m.essence_str().to_owned());
    if ct.as_deref() != Some("application/json") {
        return Err(bad(format!(
            "metadata must be application/json, not {ct:?}"
        )));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_METADATA {
            return Err(bad("metadata is larger than 1 MiB".into()));
        }
    }
    drop(field);
    let metadata: Value =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("metadata is not JSON: {e}")))?;
    match metadata.get("amazonContactId").and_then(Value::as_str) {
        Some(id) if id == key => {}
        other => {
            return Err(bad(format!(
                "metadata amazonContactId {other:?} differs from Idempotency-Key {key}"
            )));
        }
    }
    let recordings: Vec<Recording> = metadata
        .get("recordings")
        .cloned()
        .ok_or_else(|| bad("metadata has no recordings array".into()))
        .and_then(|r| {
            serde_json::from_value(r).map_err(|e| bad(format!("bad recordings array: {e}")))
        })?;
    if recordings.is_empty() {
        return Err(bad("recordings is empty".into()));
    }

    let mut audio = Vec::with_capacity(recordings.len());
    for (i, rec) in recordings.iter().enumerate() {
        let n = i + 1;
        let mut field = mp
            .next_field()
            .await
            .map_err(|e| bad(format!("malformed multipart body: {e}")))?
            .ok_or_else(|| {
                bad(format!(
                    "{} audio parts for {} recordings",
                    i,
                    recordings.len()
                ))
            })?;
        if field.name() != Some("audio") {
            return Err(bad(format!(
                "part {} must be audio, not {:?}",
                n + 1,
                field.name()
            )));
        }
        let filename = format!("{key}-{n}.wav");
        if field.file_name() != Some(filename.as_str()) {
            return Err(bad(format!(
                "audio part {n} must be named {filename}, not {:?}",
                field.file_name()
            )));
        }
        let ct = field.content_type().map(|m| m.essence_str().to_owned());
        if ct.as_deref() != Some("audio/wav") {
            return Err(bad(format!("audio part {n} must be audio/wav, not {ct:?}")));
        }
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad(format!("malformed multipart body: {e}")))?
        {
            bytes += chunk.len() as u64;
            hash.update(&chunk);
            if fault == Some(IngestFault::DropMidBody)
                && let Some(k) = kill
            {
                k.0.cancel();
                return Err(Abort::Dropped);
            }
        }
        if bytes != rec.bytes {
            return Err(bad(format!(
                "audio part {n} has {bytes} bytes, recordings[{i}].bytes says {}",
                rec.bytes
            )));
        }
        audio.push(IngestedAudio {
            name: "audio".into(),
            filename,
            content_type: "audio/wav".into(),
            bytes,
            sha256: hex::encode(hash.finalize()),
        });
    }
    if let Some(extra) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        return Err(bad(format!(
            "unexpected part {:?} after {} audio parts",
            extra.name(),
            recordings.len()
        )));
    }
    Ok((metadata, audio))
}

// ---------------------------------------------------------------- Connect

fn epoch(t: &DateTime<Utc>) -> Value {
    let ms = t.timestamp_millis();
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (status, axum::Json(json!({ "Message": message }))).into_response();
    r.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("UnknownError")),
    );
    r
}

/// The `Contact` object of a `DescribeContact` answer (AWS REST-JSON: epoch seconds).
pub(super) fn describe_json(c: &ConnectContact) -> Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("Arn", json!(c.arn));
    put("Id", json!(c.id));
    if let Some(v) = &c.initial_contact_id {
        put("InitialContactId", json!(v));
    }
    if let Some(v) = &c.previous_contact_id {
        put("PreviousContactId", json!(v));
    }
    put("Channel", json!(c.channel));
    put("InitiationMethod", json!(c.initiation_method));
    put("InitiationTimestamp", epoch(&c.initiation_timestamp));
    if let Some(t) = &c.disconnect_timestamp {
        put("DisconnectTimestamp", epoch(t));
    }
    put("LastUpdateTimestamp", epoch(&c.last_update_timestamp));
    if let Some(a) = &c.agent {
        let mut o = json!({ "Id": a.id });
        if let Some(t) = &a.connected_to_agent_timestamp {
            o["ConnectedToAgentTimestamp"] = epoch(t);
        }
        put("AgentInfo", o);
    }
    if let Some(q) = &c.queue {
        let mut o = json!({ "Id": q.id });
        if let Some(t) = &q.enqueue_timestamp {
            o["EnqueueTimestamp"] = epoch(t);
        }
        put("QueueInfo", o);
    }
    if let Some(e) = &c.customer_endpoint {
        put(
            "CustomerEndpoint",
            json!({ "Type": e.endpoint_type, "Address": e.address }),
        );
    }
    if let Some(e) = &c.system_endpoint {
        put(
            "SystemEndpoint",
            json!({ "Type": e.endpoint_type, "Address": e.address }),
        );
    }
    put("Attributes", json!(c.attributes));
    Value::Object(m)
}

async fn describe_contact(
    State(st): State<SimState>,
    Path((instance_id, contact_id)): Path<(String, String)>,
) -> Response {
    let mut d = st.data();
    let rate = d.faults.connect_throttle;
    if d.draw(rate) {
        d.count_fault("connect_throttle");
        d.throttle_flip = !d.throttle_flip;
        let kind = if d.throttle_flip {
            "ThrottlingException"
        } else {
            "TooManyRequestsException"
        };
        return aws_error(StatusCode::TOO_MANY_REQUESTS, kind, "Rate exceeded");
    }
    if d.faults.connect_unknown_contact_ids.contains(&contact_id) {
        d.count_fault("connect_unknown_contact_ids");
        return not_found(&contact_id);
    }
    // Keyed by instance too: the same deployment may ask for several instances (design §11).
    let key = (instance_id, contact_id);
    match d.connect.get(&key) {
        Some(c) => {
            let mut r = axum::Json(json!({ "Contact": describe_json(c) })).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        None => not_found(&key.1),
    }
}

fn not_found(contact_id: &str) -> Response {
    aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Contact not found: {contact_id}"),
    )
}

// ---------------------------------------------------------------- admin

async fn admin_verint(
    State(st): State<SimState>,
    axum::Json(v): axum::Json<Vec<VerintContact>>,
) -> Response {
    let n = v.len();
    st.seed_verint(v);
    axum::Json(json!({ "added": n })).into_response()
}

async fn admin_connect(
    State(st): State<SimState>,
    axum::Json(v): axum::Json<Vec<ConnectContact>>,
) -> Response {
    let n = v.len();
    st.seed_connect(v);
    axum::Json(json!({ "added": n })).into_response()
}

async fn admin_faults(State(st): State<SimState>, axum::Json(f): axum::Json<Faults>) -> Response {
    st.set_faults(f);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_get_faults(State(st): State<SimState>) -> axum::Json<Faults> {
    axum::Json(st.faults())
}

async fn admin_reset(State(st): State<SimState>) -> StatusCode {
    st.reset();
    StatusCode::NO_CONTENT
}

/// The body of `POST /_admin/rotate-key`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateKey {
    key_id: String,
    /// base64url, as design §6.
    key: String,
}

async fn admin_rotate_key(
    State(st): State<SimState>,
    axum::Json(r): axum::Json<RotateKey>,
) -> Response {
    match st.rotate_key(&r.key_id, &r.key) {
        Ok(()) => {
            info!(key_id = %r.key_id, "api key rotated");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &format!("{e:#}")),
    }
}

async fn admin_ingested(State(st): State<SimState>) -> axum::Json<Vec<IngestedCall>> {
    axum::Json(st.ingested())
}

async fn admin_stats(State(st): State<SimState>) -> axum::Json<super::SimStats> {
    axum::Json(st.stats())
}
