//! Where CTR objects come from: the Firehose bucket in S3, or a local directory laid out the same
//! way (benchmarks). Both are read through [`CtrSource`] by [`scan`], which lists the arrival
//! hours, reads objects with bounded concurrency on blocking threads, and merges the copies.

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use tracing::{debug, warn};

use crate::contacts::{ContactCopy, ContactSet};
use crate::ctr::{ReadError, ReadStats, read_object};
use crate::time::Window;

/// One object of an arrival hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrObject {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("listing {prefix} failed")]
    List {
        prefix: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object was listed but is gone: it is counted as unreadable, not fatal.
    #[error("{key} is gone")]
    Gone { key: String },
    #[error("a parsing task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// A reader of CTR objects grouped by arrival hour.
pub trait CtrSource: Send + Sync {
    /// Every object under `{prefix}YYYY/MM/DD/HH/` for `hour`, in key order.
    fn list_hour(
        &self,
        hour: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<CtrObject>, SourceError>> + Send;
    /// A blocking reader of the object's bytes, as stored (maybe gzip).
    fn open(
        &self,
        object: &CtrObject,
    ) -> impl Future<Output = Result<Box<dyn Read + Send>, SourceError>> + Send;
}

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
        let listed = crate::aws::list_objects(&self.s3, &self.bucket, &prefix)
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

/// What a scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Every object in the hours read, readable or not.
    pub objects: u64,
    pub records: u64,
    pub malformed: u64,
}

/// Reads every object of `hours` and merges their contacts. Objects are parsed on blocking
/// threads, `concurrency` at a time; with an `initiation_window` (manual runs) the recordings of
/// contacts initiated outside it are not kept, since they can never be eligible; an unreadable object is counted in `malformed`; a source
/// that fails underneath fails the scan. `progress(done, total)` is called after each object.
pub async fn scan<S: CtrSource>(
    source: &S,
    hours: &[DateTime<Utc>],
    instance_id: &str,
    initiation_window: Option<Window>,
    concurrency: usize,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<(ContactSet, ScanStats), SourceError> {
    let listings: Vec<Vec<CtrObject>> = stream::iter(hours.iter().map(|h| source.list_hour(*h)))
        .buffered(4)
        .try_collect()
        .await?;
    let objects: Vec<CtrObject> = listings.into_iter().flatten().collect();
    let total = objects.len() as u64;
    debug!(hours = hours.len(), objects = total, "listed ctr objects");

    let mut set = ContactSet::new();
    let mut stats = ScanStats {
        objects: total,
        ..Default::default()
    };
    let mut reads = stream::iter(objects.into_iter().map(|object| {
        let instance_id = instance_id.to_owned();
        async move {
            let reader = match source.open(&object).await {
                Ok(r) => r,
                Err(SourceError::Gone { key }) => {
                    warn!(key, "ctr object listed but gone; counted as malformed");
                    return Ok((
                        Vec::new(),
                        ReadStats {
                            records: 0,
                            malformed: 1,
                        },
                    ));
                }
                Err(e) => return Err(e),
            };
            let key = object.key.clone();
            tokio::task::spawn_blocking(move || {
                let mut copies = Vec::new();
                let stats = read_object(reader, |record| {
                    if let Some(copy) = ContactCopy::from_record(record, &instance_id) {
                        copies.push(copy);
                    }
                });
                match stats {
                    Ok(stats) => Ok((copies, stats)),
                    Err(ReadError::Source(e)) => Err(SourceError::Read {
                        key,
                        source: Box::new(e),
                    }),
                }
            })
            .await
            .map_err(SourceError::Task)?
        }
    }))
    .buffer_unordered(concurrency.max(1));

    let mut done = 0;
    while let Some(result) = reads.next().await {
        let (copies, read) = result?;
        stats.records += read.records;
        stats.malformed += read.malformed;
        for mut copy in copies {
            if let Some(w) = initiation_window {
                copy.forget_recordings_outside(w);
            }
            set.insert(copy);
        }
        done += 1;
        progress(done, total);
    }
    set.finish();
    Ok((set, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_ts;

    #[test]
    fn the_hour_prefix_is_the_arrival_hour_in_utc() {
        let h = parse_ts("2024-05-04T07:00:00Z").expect("valid");
        assert_eq!(hour_prefix("connect/ctr/", h), "connect/ctr/2024/05/04/07/");
        assert_eq!(hour_prefix("", h), "2024/05/04/07/");
    }

    #[tokio::test]
    async fn a_directory_source_reads_every_object_of_the_hours_and_counts_unreadable_ones() {
        let root = std::env::temp_dir().join(format!("ctr-src-{}", rand::random::<u64>()));
        let hour = parse_ts("2024-05-14T10:00:00Z").expect("valid");
        let dir = root.join(hour_prefix("p/", hour));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let rec = |id: &str| {
            format!(
                r#"{{"ContactId":"{id}","Channel":"VOICE","InstanceARN":"arn:aws:connect:r:1:instance/i","InitiationTimestamp":"2024-05-14T10:00:00Z","DisconnectTimestamp":"2024-05-14T10:01:00Z","LastUpdateTimestamp":"2024-05-14T10:02:00Z"}}"#
            )
        };
        std::fs::write(dir.join("a"), format!("{}{}", rec("1"), rec("2"))).expect("write");
        std::fs::write(dir.join("b"), format!("{}\n{}\n", rec("2"), rec("3"))).expect("write");
        std::fs::write(dir.join("c"), [0x1f, 0x8b, 0, 0]).expect("write");
        let source = DirCtrSource::new(&root, "p/");
        let (set, stats) = scan(
            &source,
            &[hour, hour + crate::time::HOUR],
            "i",
            None,
            2,
            &|_, _| {},
        )
        .await
        .expect("scan");
        assert_eq!(
            stats,
            ScanStats {
                objects: 3,
                records: 4,
                malformed: 1
            }
        );
        assert_eq!(set.len(), 3);
        std::fs::remove_dir_all(root).ok();
    }
}
