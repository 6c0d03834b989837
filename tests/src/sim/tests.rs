//! The simulator over real HTTP: reqwest for Verint, the AWS SDK for Connect.

use std::collections::BTreeSet;

use chrono::{TimeZone as _, Utc};
use sha2::{Digest as _, Sha256};

use super::auth;
use super::*;

const KEY_ID: &str = "local-key";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const INSTANCE: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";

async fn start(max_page_size: usize) -> Simulator {
    Simulator::start(
        SimConfig {
            key_id: KEY_ID.into(),
            api_key: KEY.into(),
            max_page_size,
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator starts")
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 14, h, m, s)
        .single()
        .expect("valid time")
}

/// GET `path_and_query` (already encoded) signed with `key_id`/`key`.
async fn get(sim: &Simulator, path_and_query: &str) -> reqwest::Response {
    let auth = auth::authorization_now(KEY_ID, KEY, "GET", path_and_query).expect("signs");
    reqwest::Client::new()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .header("authorization", auth)
        .send()
        .await
        .expect("request")
}

fn list_path(from: &str, to: &str, limit: usize, cursor: Option<&str>) -> String {
    let enc = |s: &str| s.replace(':', "%3A");
    let mut p = format!(
        "/das/contacts?from={}&to={}&state=completed&limit={limit}",
        enc(from),
        enc(to)
    );
    if let Some(c) = cursor {
        p.push_str("&cursor=");
        p.push_str(c);
    }
    p
}

#[tokio::test]
async fn requests_with_a_bad_signature_a_stale_iat_or_an_unknown_kid_get_401() {
    let sim = start(500).await;
    let pq = "/das/contacts/abc";
    let url = format!("{}{pq}", sim.base_url());
    let http = reqwest::Client::new();
    let now = Utc::now();
    let iat = now.format(auth::IAT_FORMAT).to_string();
    let stale = (now - chrono::Duration::minutes(6))
        .format(auth::IAT_FORMAT)
        .to_string();
    let good = auth::authorization(KEY_ID, KEY, "GET", pq, "", "c2FsdA", &iat).expect("signs");
    let bad_sig = auth::authorization(KEY_ID, KEY, "GET", "/das/contacts/xyz", "", "c2FsdA", &iat)
        .expect("signs");
    let stale = auth::authorization(KEY_ID, KEY, "GET", pq, "", "c2FsdA", &stale).expect("signs");
    let unknown =
        auth::authorization("someone", KEY, "GET", pq, "", "c2FsdA", &iat).expect("signs");
    for header in [bad_sig, stale, unknown] {
        let r = http
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401);
        let body: serde_json::Value = r.json().await.expect("json error");
        assert!(body["error"].is_string());
    }
    let r = http.get(&url).send().await.expect("request");
    assert_eq!(r.status(), 401, "no header at all");
    // A verint- header that was not signed breaks the signature.
    let r = http
        .get(&url)
        .header("authorization", &good)
        .header("Verint-Tenant", "acme")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .header("authorization", &good)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404, "authenticated, but unknown contact");
    assert_eq!(sim.state().stats().unauthorized, 5);
}

#[tokio::test]
async fn das_pages_return_every_contact_once_and_reject_a_garbage_cursor() {
    let sim = start(7).await;
    let mut seeded = Vec::new();
    for i in 0..40u32 {
        seeded.push(VerintContact {
            amazon_contact_id: (i % 9 != 0).then(|| format!("contact-{i}")),
            interaction_id: format!("I{:03}", 40 - i),
            // Several share a start time: the interaction id breaks the tie.
            start_time: at(1, i / 3, 0),
            end_time: at(2, 0, 0),
        });
    }
    // Outside the window: never listed.
    seeded.push(VerintContact {
        amazon_contact_id: Some("late".into()),
        interaction_id: "LATE".into(),
        start_time: at(3, 0, 0),
        end_time: at(3, 5, 0),
    });
    sim.state().seed_verint(seeded.clone());

    let (from, to) = ("2024-05-14T01:00:00Z", "2024-05-14T03:00:00Z");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = get(&sim, &list_path(from, to, 7, cursor.as_deref())).await;
        assert_eq!(r.status(), 200);
        let page: serde_json::Value = r.json().await.expect("json");
        let contacts: Vec<VerintContact> =
            serde_json::from_value(page["contacts"].clone()).expect("contacts");
        assert!(contacts.len() <= 7);
        seen.extend(contacts);
        pages += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    let ids: Vec<&str> = seen.iter().map(|c| c.interaction_id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 40);
    assert_eq!(unique.len(), 40);
    assert!(!unique.contains("LATE"));
    let mut sorted = seen.clone();
    sorted
        .sort_by(|a, b| (a.start_time, &a.interaction_id).cmp(&(b.start_time, &b.interaction_id)));
    assert_eq!(sorted, seen, "ordered by (startTime, interactionId)");
    assert!(seen.iter().any(|c| c.amazon_contact_id.is_none()));

    for garbage in ["bm9wZQ", "%%%", "AAAA"] {
        let r = get(&sim, &list_path(from, to, 7, Some(garbage))).await;
        assert_eq!(r.status(), 400, "cursor {garbage}");
    }
    // Bad queries.
    for pq in [
        list_path(from, to, 8, None),
        list_path(to, from, 5, None),
        list_path("2024-05-14T00:00:00Z", "2024-05-15T00:00:01Z", 5, None),
        "/das/contacts?from=yesterday&to=2024-05-14T03%3A00%3A00Z&state=completed&limit=5".into(),
        "/das/contacts?from=2024-05-14T01%3A00%3A00Z&to=2024-05-14T03%3A00%3A00Z&state=open&limit=5".into(),
    ] {
        assert_eq!(get(&sim, &pq).await.status(), 400, "{pq}");
    }
    // One contact by id.
    let r = get(&sim, "/das/contacts/contact-1").await;
    assert_eq!(r.status(), 200);
    let c: VerintContact = r.json().await.expect("contact");
    assert_eq!(c.interaction_id, "I039");
}

struct Call {
    contact_id: String,
    audio: Vec<Vec<u8>>,
}

impl Call {
    fn new(contact_id: &str, sizes: &[usize]) -> Self {
        Call {
            contact_id: contact_id.into(),
            audio: sizes
                .iter()
                .enumerate()
                .map(|(i, n)| (0..*n).map(|b| (b * (i + 3)) as u8).collect())
                .collect(),
        }
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "amazonContactId": self.contact_id,
            "instanceArn": format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}"),
            "channel": "VOICE",
            "initiationMethod": "INBOUND",
            "initiationTimestamp": "2024-05-14T14:03:10Z",
            "disconnectTimestamp": "2024-05-14T14:09:00Z",
            "agent": null, "queue": null, "customerEndpoint": null, "systemEndpoint": null,
            "attributes": {},
            "recordings": self.audio.iter().enumerate().map(|(i, a)| serde_json::json!({
                "bucket": "connect-recordings", "key": format!("k{i}"), "bytes": a.len(),
                "contentType": "audio/wav"
            })).collect::<Vec<_>>(),
            "recovery": {"runId": "r1", "recoveredAt": "2024-05-14T15:00:00Z", "screensExpected": true}
        })
    }

    fn body(&self, boundary: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{}\r\n",
                self.metadata()
            )
            .as_bytes(),
        );
        for (i, a) in self.audio.iter().enumerate() {
            b.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"{}-{}.wav\"\r\nContent-Type: audio/wav\r\n\r\n",
                    self.contact_id,
                    i + 1
                )
                .as_bytes(),
            );
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        b
    }
}

async fn post_call(
    sim: &Simulator,
    call: &Call,
    body: reqwest::Body,
) -> reqwest::Result<reqwest::Response> {
    let pq = "/ingest/recovered-calls";
    let auth = auth::authorization_now(KEY_ID, KEY, "POST", pq).expect("signs");
    reqwest::Client::new()
        .post(format!("{}{pq}", sim.base_url()))
        .header("authorization", auth)
        .header("idempotency-key", &call.contact_id)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn ingest_stores_a_call_once_and_answers_409_the_second_time() {
    let sim = start(500).await;
    let call = Call::new("c-1", &[10_000, 3_000_000]);
    let r = post_call(&sim, &call, call.body("XyZ").into())
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.expect("json");
    let id = created["interactionId"].as_str().expect("id").to_owned();

    let r = post_call(&sim, &call, call.body("XyZ").into())
        .await
        .expect("request");
    assert_eq!(r.status(), 409);
    let again: serde_json::Value = r.json().await.expect("json");
    assert_eq!(again["interactionId"], id.as_str());

    let stored = sim.state().ingested();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].stored_times, 1);
    assert_eq!(stored[0].audio.len(), 2);
    assert_eq!(stored[0].audio[1].bytes, 3_000_000);
    assert_eq!(stored[0].audio[1].filename, "c-1-2.wav");
    assert_eq!(
        stored[0].audio[1].sha256,
        hex::encode(Sha256::digest(&call.audio[1]))
    );
    let stats = sim.state().stats();
    assert_eq!(stats.ingest_stores.get("c-1"), Some(&1));
    assert_eq!(stats.ingest_conflicts.get("c-1"), Some(&1));
    // Now DAS has it too.
    let r = get(&sim, "/das/contacts/c-1").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn ingest_rejects_a_chunked_body_and_malformed_calls() {
    let sim = start(500).await;
    let call = Call::new("c-2", &[1000]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(call.body("XyZ"))];
    let r = post_call(
        &sim,
        &call,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
    .await
    .expect("request");
    assert_eq!(r.status(), 411);

    // Size differs from the metadata.
    let mut bad = Call::new("c-2", &[1000]);
    let body = {
        let mut m = bad.body("XyZ");
        let s = String::from_utf8_lossy(&m).replace("\"bytes\":1000", "\"bytes\":999");
        m = s.into_bytes();
        m
    };
    let r = post_call(&sim, &bad, body.into()).await.expect("request");
    assert_eq!(r.status(), 422);
    // Wrong filename.
    bad.contact_id = "c-3".into();
    let body = String::from_utf8_lossy(&bad.body("XyZ"))
        .replace("c-3-1.wav", "c-3-7.wav")
        .into_bytes();
    let r = post_call(&sim, &bad, body.into()).await.expect("request");
    assert_eq!(r.status(), 422);
    assert!(sim.state().ingested().is_empty());
    assert_eq!(sim.state().stats().ingest_rejections.len(), 3);
}

#[tokio::test]
async fn a_lost_response_stores_the_call_and_the_retry_gets_409() {
    let sim = start(500).await;
    sim.state().set_faults(Faults {
        lost_response: 1.0,
        ..Faults::default()
    });
    let call = Call::new("c-4", &[50_000]);
    let first = post_call(&sim, &call, call.body("XyZ").into()).await;
    assert!(first.is_err(), "the connection closes without an answer");
    assert_eq!(sim.state().ingested().len(), 1);

    sim.state().set_faults(Faults {
        drop_mid_body: 1.0,
        ..Faults::default()
    });
    let other = Call::new("c-5", &[2_000_000]);
    let dropped = post_call(&sim, &other, other.body("XyZ").into()).await;
    assert!(dropped.is_err(), "dropped mid-body");
    assert_eq!(sim.state().ingested().len(), 1, "nothing stored on a drop");

    sim.state().set_faults(Faults {
        status_503: 1.0,
        retry_after_secs: 7,
        ..Faults::default()
    });
    let r = post_call(&sim, &other, other.body("XyZ").into())
        .await
        .expect("request");
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");

    sim.state().set_faults(Faults::default());
    let r = post_call(&sim, &call, call.body("XyZ").into())
        .await
        .expect("request");
    assert_eq!(r.status(), 409);
    let faults = sim.state().stats().faults;
    assert_eq!(faults.get("lost_response"), Some(&1));
    assert_eq!(faults.get("drop_mid_body"), Some(&1));
    assert_eq!(faults.get("status_503"), Some(&1));
}

fn contact() -> ConnectContact {
    ConnectContact {
        instance_id: INSTANCE.into(),
        id: "11111111-2222-4333-8444-555555555555".into(),
        arn: format!(
            "arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}/contact/11111111-2222-4333-8444-555555555555"
        ),
        initial_contact_id: Some("00000000-2222-4333-8444-555555555555".into()),
        previous_contact_id: Some("00000000-2222-4333-8444-555555555555".into()),
        channel: "VOICE".into(),
        initiation_method: "TRANSFER".into(),
        initiation_timestamp: at(14, 3, 10),
        disconnect_timestamp: Some(at(14, 9, 0)),
        last_update_timestamp: at(14, 11, 0),
        agent: Some(ConnectAgent {
            id: "agent-1".into(),
            connected_to_agent_timestamp: Some(at(14, 4, 0)),
        }),
        queue: Some(ConnectQueue {
            id: "queue-1".into(),
            enqueue_timestamp: Some(at(14, 3, 30)),
        }),
        customer_endpoint: Some(ConnectEndpoint {
            endpoint_type: "TELEPHONE_NUMBER".into(),
            address: "+12025550100".into(),
        }),
        system_endpoint: None,
        attributes: [("customerName".to_owned(), "Ana Novak".to_owned())].into(),
    }
}

fn connect_client(sim: &Simulator) -> aws_sdk_connect::Client {
    use aws_sdk_connect::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let conf = aws_sdk_connect::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(sim.base_url())
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_connect::Client::from_conf(conf)
}

#[tokio::test]
async fn describe_contact_answers_the_aws_sdk_with_epoch_timestamps_and_aws_errors() {
    use aws_sdk_connect::error::ProvideErrorMetadata as _;
    let sim = start(500).await;
    let c = contact();
    sim.state().seed_connect(vec![c.clone()]);
    let client = connect_client(&sim);

    let out = client
        .describe_contact()
        .instance_id(INSTANCE)
        .contact_id(&c.id)
        .send()
        .await
        .expect("describe");
    let got = out.contact().expect("a contact");
    assert_eq!(got.id(), Some(c.id.as_str()));
    assert_eq!(got.initial_contact_id(), c.initial_contact_id.as_deref());
    assert_eq!(
        got.initiation_timestamp().map(|t| t.secs()),
        Some(c.initiation_timestamp.timestamp())
    );
    assert_eq!(
        got.disconnect_timestamp().map(|t| t.secs()),
        Some(at(14, 9, 0).timestamp())
    );
    let agent = got.agent_info().expect("agent");
    assert_eq!(agent.id(), Some("agent-1"));
    assert_eq!(
        agent.connected_to_agent_timestamp().map(|t| t.secs()),
        Some(at(14, 4, 0).timestamp())
    );
    assert_eq!(
        got.queue_info()
            .and_then(|q| q.enqueue_timestamp())
            .map(|t| t.secs()),
        Some(at(14, 3, 30).timestamp())
    );
    assert_eq!(
        got.customer_endpoint().and_then(|e| e.address()),
        Some("+12025550100")
    );
    assert!(got.system_endpoint().is_none());
    assert_eq!(
        got.attributes()
            .and_then(|a| a.get("customerName"))
            .map(String::as_str),
        Some("Ana Novak")
    );

    // Unknown contact, and a known one asked for under the wrong instance.
    for (instance, contact) in [(INSTANCE, "nope"), ("another-instance", c.id.as_str())] {
        let err = client
            .describe_contact()
            .instance_id(instance)
            .contact_id(contact)
            .send()
            .await
            .expect_err("404");
        assert!(err.into_service_error().is_resource_not_found_exception());
    }

    sim.state().set_faults(Faults {
        connect_throttle: 1.0,
        ..Faults::default()
    });
    let mut codes = Vec::new();
    for _ in 0..2 {
        let err = client
            .describe_contact()
            .instance_id(INSTANCE)
            .contact_id(&c.id)
            .send()
            .await
            .expect_err("throttled");
        codes.push(err.into_service_error().code().map(str::to_owned));
    }
    assert_eq!(
        codes,
        vec![
            Some("ThrottlingException".to_owned()),
            Some("TooManyRequestsException".to_owned())
        ]
    );
    assert_eq!(sim.state().stats().faults.get("connect_throttle"), Some(&2));
}

#[tokio::test]
async fn describe_contact_answers_for_each_instance_its_own_contact() {
    const OTHER: &str = "0b9c3d1e-7777-4aaa-9bbb-0123456789ab";
    let sim = start(500).await;
    let ours = contact();
    // The same contact id under another instance of the account (design §11), seeded after
    // ours: it must not replace it.
    let theirs = ConnectContact {
        instance_id: OTHER.into(),
        arn: format!(
            "arn:aws:connect:us-east-1:123456789012:instance/{OTHER}/contact/{}",
            ours.id
        ),
        initial_contact_id: None,
        previous_contact_id: None,
        initiation_method: "INBOUND".into(),
        ..ours.clone()
    };
    sim.state().seed_connect(vec![ours.clone(), theirs.clone()]);
    let client = connect_client(&sim);
    for c in [&ours, &theirs] {
        let out = client
            .describe_contact()
            .instance_id(&c.instance_id)
            .contact_id(&c.id)
            .send()
            .await
            .expect("describe");
        let got = out.contact().expect("a contact");
        assert_eq!(got.arn(), Some(c.arn.as_str()));
        assert_eq!(got.initial_contact_id(), c.initial_contact_id.as_deref());
        assert_eq!(got.previous_contact_id(), c.previous_contact_id.as_deref());
        assert_eq!(
            got.initiation_method().map(|m| m.as_str()),
            Some(c.initiation_method.as_str())
        );
    }
}

#[tokio::test]
async fn the_admin_routes_seed_and_report() {
    let sim = start(500).await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let r = http
        .post(format!("{base}/_admin/connect"))
        .json(&vec![contact()])
        .send()
        .await
        .expect("seed");
    assert!(r.status().is_success());
    let r = http
        .post(format!("{base}/_admin/faults"))
        .json(&serde_json::json!({"das_page_fault": 1.0, "retry_after_secs": 2}))
        .send()
        .await
        .expect("faults");
    assert!(r.status().is_success());
    let r = get(
        &sim,
        &list_path("2024-05-14T01:00:00Z", "2024-05-14T02:00:00Z", 5, None),
    )
    .await;
    assert_eq!(r.status(), 503);
    let stats: SimStats = http
        .get(format!("{base}/_admin/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats.faults.get("das_page_fault"), Some(&1));
    assert_eq!(stats.requests.get("GET /das/contacts"), Some(&1));
    http.post(format!("{base}/_admin/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(sim.state().stats(), SimStats::default());
}

/// A body of `len` bytes handed to reqwest lazily in 64 KiB chunks, counting what it pulled.
fn counted_body(bytes: Vec<u8>, pulled: Arc<std::sync::atomic::AtomicU64>) -> reqwest::Body {
    use futures::StreamExt as _;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks).inspect(move |c| {
        if let Ok(c) = c {
            pulled.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }))
}

#[tokio::test]
async fn a_slow_link_reads_the_body_no_faster_than_its_rate_and_stores_the_call() {
    let sim = start(500).await;
    let rate = 400_000u64;
    sim.state().set_faults(Faults {
        read_bytes_per_sec: rate,
        ..Faults::default()
    });
    let call = Call::new("c-slow", &[1_000_000]);
    let body = call.body("XyZ");
    let link = body.len() as f64 / rate as f64;

    let started = std::time::Instant::now();
    let r = post_call(&sim, &call, body.into()).await.expect("request");
    let secs = started.elapsed().as_secs_f64();

    assert_eq!(r.status(), 201);
    assert!(
        secs >= link * 0.95 && secs < link * 1.5 + 1.0,
        "{secs:.2} s at {rate} B/s, the link's time being {link:.2} s"
    );
    let stored = sim.state().ingested();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].audio[0].bytes, 1_000_000, "every byte arrived");
}

#[tokio::test]
async fn a_stall_stops_reading_mid_body_and_never_answers_then_the_next_request_is_served() {
    let sim = start(500).await;
    // Set over HTTP, as the local stack's scripts do.
    let faults = serde_json::json!({"stall_first": 1, "stall_after_bytes": 100_000});
    let r = reqwest::Client::new()
        .post(format!("{}/_admin/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 204);
    assert_eq!(
        (
            sim.state().faults().stall_first,
            sim.state().faults().stall_after_bytes
        ),
        (1, 100_000)
    );
    // Larger than the socket buffers can hold: a server that stopped reading holds it back.
    let call = Call::new("c-stall", &[48 << 20]);
    let body = call.body("XyZ");
    let len = body.len() as u64;
    let pulled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pq = "/ingest/recovered-calls";
    let auth = auth::authorization_now(KEY_ID, KEY, "POST", pq).expect("signs");
    let request = reqwest::Client::new()
        .post(format!("{}{pq}", sim.base_url()))
        .header("authorization", auth)
        .header("idempotency-key", &call.contact_id)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .header("content-length", len)
        .body(counted_body(body.clone(), pulled.clone()))
        .send();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(3), request).await;
    assert!(waited.is_err(), "no answer while stalled");
    let taken = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        taken < len / 2,
        "the server stopped reading: the client could hand over only {taken} of {len} bytes"
    );
    assert!(sim.state().ingested().is_empty());
    assert_eq!(sim.state().stats().faults.get("stall"), Some(&1));

    // Only the first request stalls: the retry is read whole and stored.
    let r = post_call(&sim, &call, body.into()).await.expect("request");
    assert_eq!(r.status(), 201);
    assert_eq!(sim.state().ingested().len(), 1);
}

/// GET `path_and_query` signed with `key_id`/`key`, its status.
async fn get_status_signed(sim: &Simulator, key_id: &str, key: &str, path_and_query: &str) -> u16 {
    let auth = auth::authorization_now(key_id, key, "GET", path_and_query).expect("signs");
    reqwest::Client::new()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .header("authorization", auth)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Status, `Content-Type` and body of an answer.
async fn answer(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, r.text().await.expect("body"))
}

const NEW_KEY_ID: &str = "rotated-key";

fn new_key() -> String {
    URL_SAFE_NO_PAD.encode([7u8; 32])
}

#[tokio::test]
async fn a_gateway_page_answers_200_html_to_das_and_ingest() {
    let sim = start(500).await;
    sim.state().seed_verint(vec![VerintContact {
        amazon_contact_id: Some("known".into()),
        interaction_id: "I1".into(),
        start_time: at(1, 0, 0),
        end_time: at(1, 5, 0),
    }]);
    sim.state().set_faults(Faults {
        gateway_page_first: 3,
        ..Faults::default()
    });
    let list = list_path("2024-05-14T00:00:00Z", "2024-05-14T02:00:00Z", 5, None);
    let call = Call::new("c-page", &[20_000]);
    let answers = [
        answer(get(&sim, &list).await).await,
        answer(get(&sim, "/das/contacts/known").await).await,
        answer(
            post_call(&sim, &call, call.body("XyZ").into())
                .await
                .expect("request"),
        )
        .await,
    ];
    for (status, ct, body) in answers {
        assert_eq!((status, ct.as_str()), (200, "text/html"));
        assert_eq!(body, GATEWAY_PAGE);
        assert!(body.contains("<title>Service maintenance</title>"));
    }
    let stats = sim.state().stats();
    assert_eq!(stats.gateway_pages, 3);
    assert_eq!(stats.faults.get("gateway_page"), Some(&3));
    // Only the first three: the next answers are Verint's own.
    assert_eq!(get(&sim, "/das/contacts/known").await.status(), 200);
    let (_, ct, _) = answer(get(&sim, &list).await).await;
    assert_eq!(ct, "application/json");
    assert_eq!(sim.state().stats().gateway_pages, 3);
}

#[tokio::test]
async fn behind_a_gateway_page_an_ingest_is_stored_or_not_by_the_draw_and_a_retry_tells_which() {
    let sim = start(500).await;
    sim.state().set_faults(Faults {
        seed: 11,
        gateway_page: 1.0,
        ..Faults::default()
    });
    let calls: Vec<Call> = (0..16)
        .map(|i| Call::new(&format!("c-gw-{i}"), &[5_000 + i]))
        .collect();
    for call in &calls {
        let (status, ct, _) = answer(
            post_call(&sim, call, call.body("XyZ").into())
                .await
                .expect("request"),
        )
        .await;
        assert_eq!((status, ct.as_str()), (200, "text/html"));
    }
    let stats = sim.state().stats();
    let stored = sim.state().ingested().len();
    assert_eq!(stats.gateway_pages, 16);
    assert_eq!(stats.gateway_pages_stored, stored as u64);
    assert!(
        (1..16).contains(&stored),
        "both sides of the 50/50 draw: {stored} of 16 stored"
    );

    sim.state().set_faults(Faults::default());
    for call in &calls {
        let r = post_call(&sim, call, call.body("XyZ").into())
            .await
            .expect("request");
        let first = sim.state().stats().ingest_answers[&call.contact_id][0];
        let expected = match first {
            IngestAnswer::CreatedBehindGatewayPage => 409,
            IngestAnswer::GatewayPage => 201,
            other => panic!("{}: {other:?}", call.contact_id),
        };
        assert_eq!(r.status(), expected, "{}", call.contact_id);
    }
    assert_eq!(sim.state().ingested().len(), 16);
}

#[tokio::test]
async fn the_gateway_page_draws_repeat_with_the_seed() {
    let sim = start(500).await;
    let faults = Faults {
        seed: 5,
        gateway_page: 0.5,
        ..Faults::default()
    };
    let plans = |st: &SimState| -> Vec<Option<IngestFault>> {
        st.set_faults(faults.clone());
        (0..32).map(|_| st.ingest_fault("c").fault).collect()
    };
    let first = plans(sim.state());
    assert_eq!(plans(sim.state()), first);
    for kind in [
        None,
        Some(IngestFault::GatewaySwallowed),
        Some(IngestFault::GatewayReplaced),
    ] {
        assert!(first.contains(&kind), "{kind:?} in {first:?}");
    }
}

#[tokio::test]
async fn a_rejection_behind_a_gateway_page_goes_through() {
    let sim = start(500).await;
    let call = Call::new("c-rejected", &[1_000]);
    sim.state().set_faults(Faults {
        seed: 3,
        gateway_page_first: 12,
        reject_contact_ids: vec![call.contact_id.clone()],
        ..Faults::default()
    });
    let mut statuses = BTreeSet::new();
    for _ in 0..12 {
        let r = post_call(&sim, &call, call.body("XyZ").into())
            .await
            .expect("request");
        statuses.insert(r.status().as_u16());
    }
    // Swallowed by the gateway (200 page) or rejected by Verint behind it (422), never stored.
    assert_eq!(statuses, BTreeSet::from([200, 422]));
    assert!(sim.state().ingested().is_empty());
    assert_eq!(sim.state().stats().gateway_pages_stored, 0);
}

#[tokio::test]
async fn after_a_rotation_only_the_new_key_is_accepted() {
    let sim = start(500).await;
    let pq = "/das/contacts/nobody";
    assert_eq!(get_status_signed(&sim, KEY_ID, KEY, pq).await, 404);

    sim.state()
        .rotate_key(NEW_KEY_ID, &new_key())
        .expect("rotates");

    assert_eq!(get_status_signed(&sim, KEY_ID, KEY, pq).await, 401, "old");
    assert_eq!(
        get_status_signed(&sim, NEW_KEY_ID, KEY, pq).await,
        401,
        "new id, old key"
    );
    assert_eq!(
        get_status_signed(&sim, KEY_ID, &new_key(), pq).await,
        401,
        "old id, new key"
    );
    assert_eq!(
        get_status_signed(&sim, NEW_KEY_ID, &new_key(), pq).await,
        404
    );
    let stats = sim.state().stats();
    assert_eq!((stats.unauthorized, stats.key_rotations), (3, 1));
}

#[tokio::test]
async fn a_rotation_under_the_same_key_id_refuses_the_old_key() {
    let sim = start(500).await;
    sim.state().rotate_key(KEY_ID, &new_key()).expect("rotates");
    let pq = "/das/contacts/nobody";
    assert_eq!(get_status_signed(&sim, KEY_ID, KEY, pq).await, 401);
    assert_eq!(get_status_signed(&sim, KEY_ID, &new_key(), pq).await, 404);
}

#[tokio::test]
async fn the_admin_route_rotates_the_key_and_refuses_one_that_is_not_base64url() {
    let sim = start(500).await;
    let http = reqwest::Client::new();
    let url = format!("{}/_admin/rotate-key", sim.base_url());
    let pq = "/das/contacts/nobody";

    let r = http
        .post(&url)
        .json(&serde_json::json!({"keyId": NEW_KEY_ID, "key": "not base64!"}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 400);
    assert_eq!(
        get_status_signed(&sim, KEY_ID, KEY, pq).await,
        404,
        "old key kept"
    );

    let r = http
        .post(&url)
        .json(&serde_json::json!({"keyId": NEW_KEY_ID, "key": new_key()}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 204);
    assert_eq!(get_status_signed(&sim, KEY_ID, KEY, pq).await, 401);
    assert_eq!(
        get_status_signed(&sim, NEW_KEY_ID, &new_key(), pq).await,
        404
    );
}

#[tokio::test]
async fn an_ingest_signed_with_the_old_key_after_a_rotation_gets_401_and_is_not_stored() {
    let sim = start(500).await;
    sim.state()
        .rotate_key(NEW_KEY_ID, &new_key())
        .expect("rotates");
    let call = Call::new("c-old-key", &[100_000]);
    let r = post_call(&sim, &call, call.body("XyZ").into())
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
    assert!(sim.state().ingested().is_empty());
    assert_eq!(sim.state().stats().unauthorized, 1);
}
