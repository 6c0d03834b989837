//! `POST {ingest}/recovered-calls`: one `multipart/form-data` request per contact, its audio
//! parts streamed from S3 one after another, with a declared `Content-Length` (the sizes are known
//! from S3, so no chunked encoding).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{VerintClient, VerintError, check};

/// The `metadata` part (DESIGN §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub amazon_contact_id: String,
    pub instance_arn: String,
    pub channel: String,
    pub initiation_method: String,
    pub initiation_timestamp: String,
    pub disconnect_timestamp: String,
    pub agent: Option<Agent>,
    pub queue: Option<Queue>,
    pub customer_endpoint: Option<Endpoint>,
    pub system_endpoint: Option<Endpoint>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub recordings: Vec<RecordingMeta>,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub connected_to_agent_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub id: String,
    pub enqueue_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordingMeta {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub run_id: String,
    pub recovered_at: String,
    pub screens_expected: bool,
}

/// A request or part body: a stream of byte chunks.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// One audio part: its exact length and its bytes as a stream.
pub struct AudioPart {
    pub len: u64,
    pub body: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for AudioPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioPart")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What Verint did with the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// 201: stored now.
    Created { interaction_id: String },
    /// 409: it was already there (a success: the call is in Verint).
    AlreadyPresent { interaction_id: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IngestAnswer {
    interaction_id: Option<String>,
}

impl VerintClient {
    /// Sends one call. A stream cannot be replayed, so this makes exactly one attempt: the caller
    /// retries with fresh recordings.
    pub async fn ingest(
        &self,
        metadata: &Metadata,
        audio: Vec<AudioPart>,
    ) -> Result<Ingested, VerintError> {
        let contact_id = metadata.amazon_contact_id.clone();
        let (content_type, len, body) = multipart_body(metadata, audio)?;
        let url = Self::url(&self.ingest, "/recovered-calls")?;
        let response = self
            .signed(Method::POST, url)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, len)
            .header("Idempotency-Key", contact_id)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(body_or_transport)?;
        let conflict = response.status() == StatusCode::CONFLICT;
        let response = if conflict {
            response
        } else {
            check(response).await?
        };
        // 201 and 409 mean the call is in Verint: an unreadable body does not change that.
        let bytes = response.bytes().await.unwrap_or_default();
        let interaction_id = serde_json::from_slice::<IngestAnswer>(&bytes)
            .ok()
            .and_then(|a| a.interaction_id)
            .unwrap_or_default();
        Ok(if conflict {
            Ingested::AlreadyPresent { interaction_id }
        } else {
            Ingested::Created { interaction_id }
        })
    }
}

/// A failed body stream surfaces inside reqwest's error; keep its cause visible.
fn body_or_transport(e: reqwest::Error) -> VerintError {
    VerintError::Transport(e)
}

/// The whole request body: `(content type, content length, stream)`.
pub fn multipart_body(
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
}
