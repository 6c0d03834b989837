//! `POST {ingest}/recovered-calls`: one `multipart/form-data` request per contact, its audio
//! parts streamed from S3 one after another, with a declared `Content-Length` (the sizes are known
//! from S3, so no chunked encoding).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use super::{VerintClient, VerintError, answer, check};
use crate::adapters::verint::transport;
use crate::domain::metadata::Metadata;
use crate::ports::verint::AudioPart;
use crate::ports::verint::BodyStream;
use crate::ports::verint::Ingested;

impl VerintClient {
    /// Sends one call. A stream cannot be replayed, so this makes exactly one attempt: the caller
    /// retries with fresh recordings.
    ///
    /// No timer covers the whole upload: a call that keeps moving over a slow link arrives,
    /// however long it takes. A watchdog abandons it when no byte is taken from the body for the
    /// stall timeout, or when Verint does not answer within it once the body is sent. The
    /// caller bounds the whole by its deadline.
    pub async fn ingest(
        &self,
        metadata: &Metadata,
        audio: Vec<AudioPart>,
    ) -> Result<Ingested, VerintError> {
        // The id goes into a header and a part's filename: nothing but a UUID may get there.
        let contact_id = metadata.amazon_contact_id.clone();
        if !crate::domain::contacts::is_contact_id(&contact_id) {
            return Err(VerintError::BadContactId(contact_id));
        }
        let (content_type, len, body) = multipart_body(metadata, audio)?;
        let url = Self::url(&self.ingest, "/recovered-calls")?;
        let progress = Arc::new(Progress::new(len));
        let body = Watched {
            inner: body,
            progress: progress.clone(),
        };
        let key = self.key().await;
        let request = self
            .signed_on(&self.upload, Method::POST, url, &key.key)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, len)
            .header("Idempotency-Key", contact_id)
            .body(reqwest::Body::wrap_stream(body));
        let exchange = async {
            let response = request.send().await.map_err(transport)?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                // A rotated key: read it again now; the caller sends the call again at once
                // with fresh recordings (a body cannot be replayed).
                let fresh = self.key_after_refusal(&key, Instant::now()).await;
                return Err(VerintError::KeyRefused {
                    fresh_key: fresh.is_some(),
                });
            }
            let response = if status == StatusCode::CONFLICT {
                response
            } else {
                check(response).await?
            };
            let bytes = response.bytes().await.map_err(transport)?;
            // Only Verint's own answer counts (design §6): a 201 or 409 that names the stored
            // interaction; any other 2xx, or a body that is not that JSON, proves nothing.
            let verified = match status {
                StatusCode::CREATED | StatusCode::CONFLICT => answer::ingest(&bytes),
                _ => Err(answer::NotVerint("an ingest answer other than 201 or 409")),
            };
            let interaction_id =
                verified.map_err(|e| VerintError::NotVerint { status, what: e.0 })?;
            Ok(if status == StatusCode::CONFLICT {
                Ingested::AlreadyPresent { interaction_id }
            } else {
                Ingested::Created { interaction_id }
            })
        };
        let result = tokio::select! {
            r = exchange => r,
            stalled = progress.watch(self.stall_timeout) => Err(stalled),
        };
        let body_sent = progress.remaining.load(Ordering::Acquire) == 0;
        match result {
            // The recording's own failure surfaces inside reqwest's error: name the side that
            // failed, not the connection.
            Err(e @ VerintError::Transport { .. }) => match progress.take_source_error() {
                Some(source) => Err(VerintError::Body(source)),
                None if body_sent => Err(VerintError::AnswerLost(Box::new(e))),
                None => Err(e),
            },
            // The whole call was sent: a gateway's timeout may stand for an answer Verint gave
            // (design §5, the lost answer). A page that is not Verint's is retried like a 503
            // (design §6): the retry's answer (201 or 409) tells.
            Err(
                e @ VerintError::Status {
                    status: StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT,
                    ..
                },
            ) if body_sent => Err(VerintError::AnswerLost(Box::new(e))),
            other => other,
        }
    }
}

/// Bytes the connection may still hold once the HTTP client has taken the whole body (the
/// kernel's send buffer, 4 MiB at most by default on Linux, plus the way): Verint's answer cannot
/// come before they arrive, so the watchdog waits for them at the rate seen so far.
const IN_FLIGHT_ALLOWANCE: u64 = 8 * 1024 * 1024;

/// What the watchdog knows about an upload.
#[derive(Debug)]
struct Progress {
    started: Instant,
    len: u64,
    /// When a chunk was last taken from the body (or the upload started).
    last: Mutex<Instant>,
    /// The body's source was last asked for a chunk and had none ready.
    waiting_on_source: AtomicBool,
    /// Bytes of the body not taken yet. The HTTP client stops polling once it has taken the
    /// declared `Content-Length`, so the body's end is known by its count, not by its `None`.
    remaining: AtomicU64,
    source_error: Mutex<Option<std::io::Error>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Progress {
    fn new(len: u64) -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            len,
            last: Mutex::new(now),
            waiting_on_source: AtomicBool::new(false),
            remaining: AtomicU64::new(len),
            source_error: Mutex::new(None),
        }
    }

    fn moved(&self) {
        *lock(&self.last) = Instant::now();
    }

    fn take_source_error(&self) -> Option<std::io::Error> {
        lock(&self.source_error).take()
    }

    /// How long the bytes still in the connection may take to arrive once the whole body was
    /// taken at `taken_by`: at the rate seen so far, never more than the upload took.
    fn in_flight(&self, taken_by: Instant) -> Duration {
        let took = taken_by.saturating_duration_since(self.started);
        if took.is_zero() || self.len == 0 {
            return Duration::ZERO;
        }
        let rate = self.len as f64 / took.as_secs_f64();
        Duration::from_secs_f64(IN_FLIGHT_ALLOWANCE.min(self.len) as f64 / rate).min(took)
    }

    /// Resolves once nothing moved for `stall` (once the body was taken: no answer for `stall`
    /// after its bytes can have arrived), with the side that stalled.
    async fn watch(&self, stall: Duration) -> VerintError {
        loop {
            let last = *lock(&self.last);
            let mut due = last + stall;
            if self.remaining.load(Ordering::Acquire) == 0 {
                due += self.in_flight(last);
            }
            if Instant::now() >= due {
                break;
            }
            tokio::time::sleep_until(due).await;
        }
        if self.remaining.load(Ordering::Acquire) == 0 {
            VerintError::NoAnswer(stall)
        } else if self.waiting_on_source.load(Ordering::Acquire) {
            VerintError::BodyStalled(stall)
        } else {
            VerintError::Stalled(stall)
        }
    }
}

/// The request body, reporting each chunk taken (by the HTTP client, once the connection takes
/// more) to the watchdog, and keeping the source's own error.
struct Watched {
    inner: BodyStream,
    progress: Arc<Progress>,
}

impl Stream for Watched {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let p = &self.progress;
        match &polled {
            Poll::Pending => p.waiting_on_source.store(true, Ordering::Release),
            Poll::Ready(item) => {
                p.waiting_on_source.store(false, Ordering::Release);
                p.moved();
                match item {
                    None => p.remaining.store(0, Ordering::Release),
                    Some(Err(e)) => {
                        let copy = std::io::Error::new(e.kind(), e.to_string());
                        *lock(&p.source_error) = Some(copy);
                    }
                    Some(Ok(chunk)) => {
                        let n = chunk.len() as u64;
                        let _ =
                            p.remaining
                                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                                    Some(r.saturating_sub(n))
                                });
                    }
                }
            }
        }
        polled
    }
}

/// The whole request body: `(content type, content length, stream)`.
pub(crate) fn multipart_body(
    metadata: &Metadata,
    audio: Vec<AudioPart>,
) -> Result<(String, u64, BodyStream), VerintError> {
    let boundary = format!("call-recovery-{:032x}", rand::random::<u128>());
    let json = serde_json::to_vec(metadata).map_err(VerintError::Decode)?;
    let mut pieces: Vec<BoxStream<'static, Result<Bytes, std::io::Error>>> = Vec::new();
    let mut total: u64 = 0;
    let push_bytes = |pieces: &mut Vec<_>, total: &mut u64, b: Vec<u8>| {
        *total += b.len() as u64;
        pieces.push(stream::once(futures::future::ready(Ok(Bytes::from(b)))).boxed());
    };
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    head.extend_from_slice(&json);
    head.extend_from_slice(b"\r\n");
    push_bytes(&mut pieces, &mut total, head);
    for (n, part) in audio.into_iter().enumerate() {
        let header = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"{}-{}.wav\"\r\nContent-Type: audio/wav\r\n\r\n",
            metadata.amazon_contact_id,
            n + 1
        );
        push_bytes(&mut pieces, &mut total, header.into_bytes());
        total += part.len;
        pieces.push(ExactLength::new(part.body, part.len).boxed());
        push_bytes(&mut pieces, &mut total, b"\r\n".to_vec());
    }
    push_bytes(
        &mut pieces,
        &mut total,
        format!("--{boundary}--\r\n").into_bytes(),
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    Ok((content_type, total, stream::iter(pieces).flatten().boxed()))
}

/// Passes a stream through and fails it if it yields more or fewer bytes than declared, so a
/// short S3 body can never make the request hang or send a wrong part.
struct ExactLength {
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    remaining: u64,
}

impl ExactLength {
    fn new(inner: BoxStream<'static, Result<Bytes, std::io::Error>>, len: u64) -> Self {
        ExactLength {
            inner,
            remaining: len,
        }
    }
}

impl Stream for ExactLength {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > self.remaining {
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "recording is longer than its declared size",
                    ))));
                }
                self.remaining -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) if self.remaining > 0 => {
                let missing = self.remaining;
                self.remaining = 0;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("recording ended {missing} bytes before its declared size"),
                ))))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metadata::Recovery;

    fn metadata() -> Metadata {
        Metadata {
            amazon_contact_id: "c-1".into(),
            instance_arn: "arn".into(),
            channel: "VOICE".into(),
            initiation_method: "INBOUND".into(),
            initiation_timestamp: "2024-05-14T10:00:00Z".into(),
            disconnect_timestamp: "2024-05-14T10:05:00Z".into(),
            agent: None,
            queue: None,
            customer_endpoint: None,
            system_endpoint: None,
            attributes: Default::default(),
            recordings: vec![],
            recovery: Recovery {
                run_id: "r".into(),
                recovered_at: "2024-05-14T11:00:00Z".into(),
                screens_expected: true,
            },
        }
    }

    fn part(chunks: &[&'static [u8]], len: u64) -> AudioPart {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        AudioPart {
            len,
            body: stream::iter(chunks).boxed(),
        }
    }

    async fn collect(
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        let mut body = body;
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn the_declared_length_is_exactly_the_bytes_sent_in_design_order() {
        let (ct, len, body) = multipart_body(
            &metadata(),
            vec![part(&[b"RIFF", b"1234"], 8), part(&[b"RIFFabcd"], 8)],
        )
        .expect("builds");
        let bytes = collect(body).await.expect("streams");
        assert_eq!(bytes.len() as u64, len);
        let text = String::from_utf8_lossy(&bytes);
        let boundary = ct
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let meta = text.find("name=\"metadata\"").expect("metadata part");
        let first = text
            .find("filename=\"c-1-1.wav\"")
            .expect("first audio part");
        let second = text
            .find("filename=\"c-1-2.wav\"")
            .expect("second audio part");
        assert!(meta < first && first < second);
        assert!(text.contains("RIFF1234\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[tokio::test]
    async fn a_recording_shorter_than_declared_fails_the_body() {
        let (_, _, body) = multipart_body(&metadata(), vec![part(&[b"RIFF"], 8)]).expect("builds");
        let err = collect(body).await.expect_err("short body");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    mod watchdog {
        use std::net::SocketAddr;

        use reqwest::Url;
        use secrecy::SecretString;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use super::*;
        use crate::adapters::verint::ApiKey;

        const ID: &str = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b";

        fn client(addr: SocketAddr, stall: Duration) -> VerintClient {
            let url = Url::parse(&format!("http://{addr}/ingest")).expect("url");
            let key = ApiKey::new("kid", &SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM"))
                .expect("key");
            VerintClient::new(url.clone(), url, key)
                .expect("client")
                .with_stall_timeout(stall)
        }

        fn call() -> Metadata {
            Metadata {
                amazon_contact_id: ID.into(),
                ..metadata()
            }
        }

        /// `len` bytes of audio in 64 KiB chunks, made as they are pulled.
        fn audio(len: u64) -> AudioPart {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let mut left = len;
            let body = stream::iter(std::iter::from_fn(move || {
                if left == 0 {
                    return None;
                }
                let n = left.min(chunk.len() as u64);
                left -= n;
                Some(Ok(chunk.slice(..n as usize)))
            }))
            .boxed();
            AudioPart { len, body }
        }

        /// A server for one connection: `read_rate` bytes every 10 ms (0: never reads), then,
        /// once `answer_after` bytes were read, writes `answer` (if any) and keeps reading.
        async fn server(
            read_rate: usize,
            answer_after: Option<usize>,
            answer: Option<&'static str>,
        ) -> SocketAddr {
            // A small receive buffer, as on a real link: loopback's would grow to 32 MiB and
            // swallow the whole body at once.
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_recv_buffer_size(64 * 1024).expect("buffer");
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .expect("bind");
            let listener = socket.listen(8).expect("listen");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.expect("accept");
                if read_rate == 0 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                let mut buf = vec![0u8; read_rate];
                let mut read = 0usize;
                let mut answered = false;
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if !answered
                        && let (Some(after), Some(answer)) = (answer_after, answer)
                        && read >= after
                    {
                        let _ = socket.write_all(answer.as_bytes()).await;
                        answered = true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            addr
        }

        const CREATED: &str = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n{\"interactionId\":\"I-1\"}";

        #[tokio::test]
        async fn an_upload_that_keeps_moving_is_never_cut_however_long_it_takes() {
            let len = 16 * 1024 * 1024;
            let stall = Duration::from_secs(1);
            let addr = server(64 * 1024, Some(len as usize), Some(CREATED)).await;
            let started = std::time::Instant::now();
            let r = client(addr, stall).ingest(&call(), vec![audio(len)]).await;
            assert_eq!(
                r.map_err(|e| e.reason()),
                Ok(Ingested::Created {
                    interaction_id: "I-1".into()
                })
            );
            assert!(
                started.elapsed() > 2 * stall,
                "the upload outlasted the stall timeout: {:?}",
                started.elapsed()
            );
        }

        #[tokio::test]
        async fn an_upload_verint_stops_taking_is_abandoned_as_verint_stalled() {
            let addr = server(0, None, None).await;
            let r = client(addr, Duration::from_millis(300))
                .ingest(&call(), vec![audio(256 * 1024 * 1024)])
                .await;
            assert!(matches!(r, Err(VerintError::Stalled(_))), "{r:?}");
            assert!(r.expect_err("stalled").is_transient());
        }

        #[tokio::test]
        async fn a_lost_response_is_abandoned_after_the_stall_timeout() {
            let addr = server(64 * 1024, None, None).await;
            let r = client(addr, Duration::from_millis(300))
                .ingest(&call(), vec![audio(1024)])
                .await;
            assert!(matches!(r, Err(VerintError::NoAnswer(_))), "{r:?}");
        }

        #[tokio::test]
        async fn a_recording_that_stops_giving_bytes_is_the_recording_stalled() {
            let addr = server(64 * 1024, None, None).await;
            let body = stream::iter([Ok(Bytes::from_static(b"RIFF"))])
                .chain(stream::pending())
                .boxed();
            let r = client(addr, Duration::from_millis(300))
                .ingest(&call(), vec![AudioPart { len: 1024, body }])
                .await;
            assert!(matches!(r, Err(VerintError::BodyStalled(_))), "{r:?}");
        }

        #[tokio::test]
        async fn a_recording_that_fails_mid_stream_is_not_blamed_on_verint() {
            let addr = server(64 * 1024, None, None).await;
            let body = stream::iter([
                Ok(Bytes::from_static(b"RIFF")),
                Err(std::io::Error::other("s3 reset the connection")),
            ])
            .boxed();
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![AudioPart { len: 1024, body }])
                .await;
            let e = r.expect_err("the body failed");
            assert!(matches!(e, VerintError::Body(_)), "{e:?}");
            assert!(
                e.reason().contains("s3 reset the connection"),
                "{}",
                e.reason()
            );
        }

        const MAINTENANCE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 58\r\n\r\n<html><title>Service maintenance</title>back soon</html>\r\n";

        #[tokio::test]
        async fn a_maintenance_page_answering_an_upload_is_never_a_recovery() {
            let addr = server(64 * 1024, Some(4096), Some(MAINTENANCE)).await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![audio(4096)])
                .await;
            let e = r.expect_err("a page is not verint's answer");
            assert!(matches!(e, VerintError::NotVerint { .. }), "{e:?}");
            assert!(e.is_transient(), "retried like a 503");
        }

        #[tokio::test]
        async fn a_201_without_an_interaction_id_is_not_a_recovery() {
            let addr = server(
                64 * 1024,
                Some(4096),
                Some("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"),
            )
            .await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![audio(4096)])
                .await;
            let e = r.expect_err("no interactionId");
            assert!(e.is_transient(), "{e:?}");
            assert!(e.reason().contains("interactionId"), "{}", e.reason());
        }

        #[tokio::test]
        async fn a_502_after_the_whole_upload_is_a_lost_answer() {
            let addr = server(
                64 * 1024,
                Some(4096),
                Some("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
            )
            .await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![audio(4096)])
                .await;
            assert!(matches!(r, Err(VerintError::AnswerLost(_))), "{r:?}");
        }

        #[tokio::test]
        async fn a_409_with_its_interaction_id_is_already_present() {
            let addr = server(
                64 * 1024,
                Some(4096),
                Some("HTTP/1.1 409 Conflict\r\nContent-Length: 23\r\n\r\n{\"interactionId\":\"I-7\"}"),
            )
            .await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![audio(4096)])
                .await;
            assert_eq!(
                r.map_err(|e| e.reason()),
                Ok(Ingested::AlreadyPresent {
                    interaction_id: "I-7".into()
                })
            );
        }

        #[tokio::test]
        async fn a_redirect_is_not_followed() {
            let addr = server(
                64 * 1024,
                Some(1),
                Some("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"),
            )
            .await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(&call(), vec![audio(1024)])
                .await;
            match r {
                Err(VerintError::Status { status, .. }) => {
                    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT)
                }
                other => panic!("expected the 307 itself, got {other:?}"),
            }
        }

        #[tokio::test]
        async fn a_contact_id_that_is_not_a_uuid_is_never_sent() {
            let addr = server(64 * 1024, None, None).await;
            let r = client(addr, Duration::from_secs(5))
                .ingest(
                    &Metadata {
                        amazon_contact_id: "c-1\r\nX-Injected: 1".into(),
                        ..metadata()
                    },
                    vec![audio(1024)],
                )
                .await;
            assert!(matches!(r, Err(VerintError::BadContactId(_))), "{r:?}");
        }

        #[test]
        fn plain_http_is_refused_except_to_loopback() {
            let key = ApiKey::new("kid", &SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM"))
                .expect("key");
            let url = |s: &str| Url::parse(s).expect("url");
            let https = url("https://verint.example.com/das");
            assert!(
                VerintClient::new(
                    https.clone(),
                    url("http://verint.example.com/x"),
                    key.clone()
                )
                .is_err()
            );
            assert!(VerintClient::new(https, url("http://127.0.0.1:5056/x"), key).is_ok());
        }
    }
}
