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
