//! The CTR objects of an arrival hour ([`CtrSource`]): in the Firehose bucket in S3, or in a local
//! directory laid out the same way (benchmarks). `flows::scan` reads them.

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::ports::ctr_source::CtrObject;
use crate::ports::ctr_source::CtrSource;
use crate::ports::ctr_source::SourceError;

/// `{prefix}YYYY/MM/DD/HH/` for an arrival hour (UTC).
pub fn hour_prefix(prefix: &str, hour: DateTime<Utc>) -> String {
    format!("{prefix}{}", hour.format("%Y/%m/%d/%H/"))
}

/// CTR objects in S3.
#[derive(Debug, Clone)]
pub struct S3CtrSource {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3CtrSource {
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        S3CtrSource {
            s3,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }
}

impl CtrSource for S3CtrSource {
    async fn list_hour(&self, hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
        let prefix = hour_prefix(&self.prefix, hour);
        let listed = crate::adapters::aws::list_objects(&self.s3, &self.bucket, &prefix)
            .await
            .map_err(|e| SourceError::List {
                prefix: prefix.clone(),
                source: Box::new(e),
            })?;
        let objects = listed
            .into_iter()
            .filter_map(|o| {
                let size = o.size.unwrap_or(0).max(0) as u64;
                o.key.map(|key| CtrObject { key, size })
            })
            .collect();
        Ok(objects)
    }

    async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    SourceError::Gone {
                        key: object.key.clone(),
                    }
                } else {
                    SourceError::Read {
                        key: object.key.clone(),
                        source: Box::new(e),
                    }
                }
            })?;
        let reader = tokio_util::io::SyncIoBridge::new(out.body.into_async_read());
        Ok(Box::new(reader))
    }
}

/// CTR objects in a local directory, laid out as in S3 (`{root}/{prefix}YYYY/MM/DD/HH/…`).
#[derive(Debug, Clone)]
pub struct DirCtrSource {
    root: PathBuf,
    prefix: String,
}

impl DirCtrSource {
    pub fn new(root: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        DirCtrSource {
            root: root.into(),
            prefix: prefix.into(),
        }
    }
}

impl CtrSource for DirCtrSource {
    async fn list_hour(&self, hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
        let prefix = hour_prefix(&self.prefix, hour);
        let dir = self.root.join(&prefix);
        let mut objects = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(objects),
            Err(e) => {
                return Err(SourceError::List {
                    prefix,
                    source: Box::new(e),
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|e| SourceError::List {
                prefix: prefix.clone(),
                source: Box::new(e),
            })?;
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            objects.push(CtrObject {
                key: format!("{prefix}{}", entry.file_name().to_string_lossy()),
                size,
            });
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
        let file =
            std::fs::File::open(self.root.join(&object.key)).map_err(|e| SourceError::Read {
                key: object.key.clone(),
                source: Box::new(e),
            })?;
        Ok(Box::new(file))
    }
}
