//! A small S3 for the soak: the object operations the worker makes (and the soak's set-up), in
//! memory. moto serves one request at a time; at the soak's 50 calls a second the worker makes
//! four S3 requests per call (`HeadObject` and `GetObject` of the recording, the outcome and its
//! index marker), and moto's S3 sat at a whole core and capped the drain near 34 calls a second
//! (docs/benchmarks.md): a soak on moto measures moto. This one keeps the rules the worker
//! depends on: path-style addressing, an object's ETag (the MD5 of its bytes, quoted),
//! `Content-Length` on `HeadObject`, `If-Match` / `If-None-Match` answered 412, and 404
//! `NoSuchKey` / `NoSuchBucket`. Anything else is answered 501, so that a use it does not
//! serve fails loudly. Written from S3's documentation, not from the worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, Utc};

use crate::md5_hex;

#[derive(Debug, Clone)]
struct Object {
    bytes: Bytes,
    etag: String,
    modified: DateTime<Utc>,
}

type Buckets = HashMap<String, HashMap<String, Object>>;

/// A running S3; its URL is the endpoint to give the SDK (`AWS_ENDPOINT_URL_S3`).
#[derive(Debug, Clone)]
pub struct LocalS3 {
    pub url: String,
}

impl LocalS3 {
    /// Serves on a free loopback port until the process ends.
    pub async fn start() -> anyhow::Result<LocalS3> {
        let buckets = Arc::new(Mutex::new(Buckets::new()));
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let buckets = buckets.clone();
                async move {
                    let mut buckets = buckets.lock().unwrap_or_else(|e| e.into_inner());
                    serve(&mut buckets, &method, &uri, &headers, body)
                }
            },
        );
        let url = crate::serve_on_loopback(|_| app).await?;
        Ok(LocalS3 { url })
    }
}

fn serve(
    buckets: &mut Buckets,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = percent_encoding::percent_decode_str(uri.path().trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b.to_owned(), Some(k.to_owned())),
        _ => (path.trim_end_matches('/').to_owned(), None),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // The SDK names its operation in the query (`x-id=GetObject`); any other parameter is an
    // operation not served here.
    let plain = uri
        .query()
        .is_none_or(|q| q.split('&').all(|p| p.starts_with("x-id=")));
    match (method.clone(), key) {
        (Method::PUT, None) if plain => {
            if buckets.contains_key(&bucket) {
                return error(StatusCode::CONFLICT, "BucketAlreadyOwnedByYou", &bucket);
            }
            buckets.insert(bucket.clone(), HashMap::new());
            Response::builder()
                .header(header::LOCATION, format!("/{bucket}"))
                .body(Body::empty())
                .expect("a valid response")
        }
        (Method::PUT, Some(key)) if plain => {
            let Some(objects) = buckets.get_mut(&bucket) else {
                return error(StatusCode::NOT_FOUND, "NoSuchBucket", &bucket);
            };
            let existing = objects.get(&key).map(|o| o.etag.as_str());
            if let Some(refused) =
                precondition(existing, header("if-match"), header("if-none-match"))
            {
                return refused;
            }
            let bytes = if is_aws_chunked(headers) {
                match decode_aws_chunked(&body) {
                    Some(b) => b,
                    None => return error(StatusCode::BAD_REQUEST, "IncompleteBody", &key),
                }
            } else {
                body
            };
            let etag = format!("\"{}\"", md5_hex(&bytes));
            objects.insert(
                key,
                Object {
                    bytes,
                    etag: etag.clone(),
                    modified: Utc::now(),
                },
            );
            Response::builder()
                .header(header::ETAG, etag)
                .body(Body::empty())
                .expect("a valid response")
        }
        (m @ (Method::GET | Method::HEAD), Some(key)) if plain => {
            let Some(objects) = buckets.get(&bucket) else {
                return error(StatusCode::NOT_FOUND, "NoSuchBucket", &bucket);
            };
            let Some(object) = objects.get(&key) else {
                return error(StatusCode::NOT_FOUND, "NoSuchKey", &key);
            };
            if let Some(refused) = precondition(Some(&object.etag), header("if-match"), None) {
                return refused;
            }
            let response = Response::builder()
                .header(header::CONTENT_LENGTH, object.bytes.len())
                .header(header::ETAG, &object.etag)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(
                    header::LAST_MODIFIED,
                    object
                        .modified
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string(),
                );
            let body = if m == Method::GET {
                Body::from(object.bytes.clone())
            } else {
                Body::empty()
            };
            response.body(body).expect("a valid response")
        }
        _ => error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("{method} {uri}"),
        ),
    }
}

/// S3's conditional requests: `If-Match` fails unless the object exists with that ETag (or any,
/// for `*`); `If-None-Match: *` fails if it exists.
fn precondition(
    existing: Option<&str>,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Option<Response> {
    let refused = match (if_match, if_none_match) {
        (Some(want), _) => existing.is_none_or(|etag| want != "*" && want != etag),
        (None, Some("*")) => existing.is_some(),
        _ => false,
    };
    refused.then(|| {
        error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        message.replace('&', "&amp;").replace('<', "&lt;")
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(body))
        .expect("a valid response")
}

fn is_aws_chunked(headers: &HeaderMap) -> bool {
    let has = |name: &str, what: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(what))
    };
    has("content-encoding", "aws-chunked") || has("x-amz-content-sha256", "STREAMING-")
}

/// The payload of an `aws-chunked` body: `hex-size[;chunk-signature=…]\r\n bytes \r\n`, ending
/// with a chunk of size 0 and optional trailers (a checksum), which are not kept.
fn decode_aws_chunked(body: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(Bytes::from(out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_chunked_body_is_read_to_its_payload_and_a_torn_one_is_refused() {
        let body = b"5;chunk-signature=ab\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(
            decode_aws_chunked(body).as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(decode_aws_chunked(b"5\r\nhel"), None);
    }

    #[test]
    fn conditions_follow_s3() {
        let e = Some("\"abc\"");
        assert!(precondition(e, Some("\"abc\""), None).is_none());
        assert!(precondition(e, Some("\"xyz\""), None).is_some());
        assert!(precondition(None, Some("*"), None).is_some());
        assert!(precondition(e, None, Some("*")).is_some());
        assert!(precondition(None, None, Some("*")).is_none());
    }

    #[test]
    fn keys_are_percent_decoded_and_a_head_gives_the_length() {
        let mut buckets = Buckets::new();
        let call = |b: &mut Buckets, method: Method, uri: &str, body: &'static [u8]| {
            let uri: Uri = uri.parse().expect("a uri");
            serve(
                b,
                &method,
                &uri,
                &HeaderMap::new(),
                Bytes::from_static(body),
            )
        };
        assert_eq!(
            call(&mut buckets, Method::PUT, "/b", b"").status(),
            StatusCode::OK
        );
        let put = call(
            &mut buckets,
            Method::PUT,
            "/b/a%3Ab%20c?x-id=PutObject",
            b"abc",
        );
        assert_eq!(put.status(), StatusCode::OK);
        let head = call(&mut buckets, Method::HEAD, "/b/a:b%20c", b"");
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "3");
        let missing = call(&mut buckets, Method::GET, "/b/a%3Ab", b"");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
