//! The ledger streamed into S3 (design §9): one `PutObject` when it fits in one part, else a
//! multipart upload; and a run's ledger read back.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::domain::ledger::{LedgerEncoder, LedgerError, LedgerRow};
use crate::ports::store::LedgerSink;

fn s3_err<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> LedgerError {
    let what = what.into();
    move |e| LedgerError::S3 {
        what,
        source: Box::new(e),
    }
}

/// A ledger streamed into S3: one `PutObject` when it fits in one part, else a multipart upload
/// of ~8 MiB parts (aborted if the run fails before it completes).
#[derive(Debug)]
pub struct S3Ledger {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    encoder: LedgerEncoder,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

impl S3Ledger {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: String) -> Self {
        S3Ledger {
            s3,
            bucket: bucket.to_owned(),
            key,
            encoder: LedgerEncoder::new(),
            upload_id: None,
            parts: Vec::new(),
        }
    }

    async fn upload_part(&mut self, bytes: Vec<u8>) -> Result<(), LedgerError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .s3
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type("text/csv")
                    .content_encoding("gzip")
                    .send()
                    .await
                    .map_err(|e| {
                        s3_err(format!("create upload {}", self.key))(e.into_service_error())
                    })?;
                let id = created.upload_id.ok_or_else(|| LedgerError::S3 {
                    what: format!("create upload {}", self.key),
                    source: "no upload id in the answer".into(),
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let part = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await;
        match part {
            Ok(p) => {
                self.parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(p.e_tag)
                        .build(),
                );
                Ok(())
            }
            Err(e) => {
                self.abort().await;
                Err(s3_err(format!("upload part {number} of {}", self.key))(
                    e.into_service_error(),
                ))
            }
        }
    }

    /// Whether the object now at the key is a multipart object of `parts` parts (its ETag ends
    /// in `-{parts}`); run ids are unique, so no other upload writes this key.
    async fn completed_with(&self, parts: usize) -> bool {
        let Ok(head) = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        else {
            return false;
        };
        head.e_tag
            .as_deref()
            .map(|t| t.trim_matches('"'))
            .is_some_and(|t| t.ends_with(&format!("-{parts}")))
    }

    async fn abort(&self) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .s3
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

impl LedgerSink for S3Ledger {
    async fn push(&mut self, row: LedgerRow) -> Result<(), LedgerError> {
        if let Some(part) = self.encoder.push(&row) {
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, LedgerError> {
        let rows = self.encoder.rows();
        let last = self.encoder.finish();
        if self.upload_id.is_none() {
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type("text/csv")
                .content_encoding("gzip")
                .body(ByteStream::from(last))
                .send()
                .await
                .map_err(|e| s3_err(format!("put {}", self.key))(e.into_service_error()))?;
            return Ok(rows);
        }
        self.upload_part(last).await?;
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let done = self
            .s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = done {
            // The answer can be lost (or, from some emulators, unreadable) after S3 completed the
            // object: an object whose ETag names this many parts is this upload, completed.
            let parts = self.parts.len().max(1);
            if self.completed_with(parts).await {
                return Ok(rows);
            }
            self.abort().await;
            return Err(s3_err(format!("complete upload {}", self.key))(
                e.into_service_error(),
            ));
        }
        Ok(rows)
    }
}

/// Reads a run's ledger from S3; `None` when the run wrote none (runs older than ledgers).
pub(crate) async fn fetch(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, LedgerError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let bytes = out
                .body
                .collect()
                .await
                .map_err(s3_err(format!("read {key}")))?;
            Ok(Some(bytes.into_bytes().to_vec()))
        }
        Err(e) => {
            let e = e.into_service_error();
            if e.is_no_such_key() {
                Ok(None)
            } else {
                Err(s3_err(format!("get {key}"))(e))
            }
        }
    }
}
