//! Reading arrival hours of CTR objects into one contact set ([`scan`], `Scanner`): objects read
//! with bounded concurrency on blocking threads, failed reads retried, copies merged.

use crate::domain::contacts::ContactCopy;
use crate::domain::contacts::ContactSet;
use crate::domain::ctr::ReadError;
use crate::domain::ctr::ReadStats;
use crate::domain::ctr::read_object;
use crate::domain::time::Window;
use crate::ports::ctr_source::CtrObject;
use crate::ports::ctr_source::CtrSource;
use crate::ports::ctr_source::SourceError;
use chrono::DateTime;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::io;
use std::io::Read;
use std::time::Duration;
use tracing::debug;
use tracing::warn;
/// What a scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    /// Every object in the hours read, readable or not.
    pub objects: u64,
    pub records: u64,
    pub malformed: u64,
}

/// How a failed or truncated object read is tried again before the run fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRetry {
    /// Reads of one object in all, the first included.
    pub attempts: u32,
    /// The wait before the first retry; each later one waits four times longer.
    pub first_delay: Duration,
}

impl Default for ReadRetry {
    fn default() -> Self {
        ReadRetry {
            attempts: 4,
            first_delay: Duration::from_millis(200),
        }
    }
}

/// Reads arrival hours into one [`ContactSet`], an hour or a batch of objects at a time, so a
/// run can stop between hours (its deadline) and know which hours it finished.
pub(crate) struct Scanner<'a, S> {
    source: &'a S,
    /// The deployment's instances (design §11).
    instances: &'a [String],
    initiation_window: Option<Window>,
    concurrency: usize,
    progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    pub retry: ReadRetry,
    set: ContactSet,
    stats: ScanStats,
    retried: u64,
    done: u64,
}

impl<S> std::fmt::Debug for Scanner<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("stats", &self.stats)
            .field("retried", &self.retried)
            .finish_non_exhaustive()
    }
}

/// What a scanner read, once finished.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub contacts: ContactSet,
    pub stats: ScanStats,
}

impl<'a, S: CtrSource> Scanner<'a, S> {
    /// With an `initiation_window` (manual runs) the recordings of contacts initiated outside it
    /// are not kept, since they can never be eligible. `progress(done, total)` is called after
    /// each object, `total` being the objects listed so far.
    pub fn new(
        source: &'a S,
        instances: &'a [String],
        initiation_window: Option<Window>,
        concurrency: usize,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> Self {
        Scanner {
            source,
            instances,
            initiation_window,
            concurrency: concurrency.max(1),
            progress,
            retry: ReadRetry::default(),
            set: ContactSet::new(),
            stats: ScanStats::default(),
            retried: 0,
            done: 0,
        }
    }

    /// Reads every object given, `concurrency` at a time on blocking threads, and merges their
    /// contacts. An unreadable object (corrupt gzip, gone) is counted in `malformed`, and so is a
    /// record whose timestamps cannot be a call's; a source that still fails after the retries
    /// fails the read.
    pub async fn read(&mut self, objects: Vec<CtrObject>) -> Result<(), SourceError> {
        self.stats.objects += objects.len() as u64;
        let total = self.stats.objects;
        let retry = self.retry;
        let (source, instances) = (self.source, self.instances);
        let mut reads = stream::iter(
            objects
                .into_iter()
                .map(|object| read_with_retries(source, object, instances, retry)),
        )
        .buffer_unordered(self.concurrency);
        while let Some(result) = reads.next().await {
            let read = result?;
            self.stats.records += read.stats.records;
            self.stats.malformed += read.stats.malformed;
            self.retried += u64::from(read.retried);
            for mut copy in read
                .copies
                .into_iter()
                .flatten()
                .filter(|c| !c.implausible())
            {
                if let Some(w) = self.initiation_window {
                    copy.forget_recordings_outside(w);
                }
                self.set.insert(copy);
            }
            self.done += 1;
            (self.progress)(self.done, total);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Scanned {
        self.set.finish();
        if self.retried > 0 {
            warn!(
                retried_objects = self.retried,
                "ctr objects were read again after a failed or truncated read"
            );
        }
        Scanned {
            contacts: self.set,
            stats: self.stats,
        }
    }
}

/// One object's copies.
struct ObjectRead {
    /// The verified copies, in order (`None` only for a record without a contact id, which the
    /// reader never passes on); implausible ones are counted and skipped when merged.
    copies: Vec<Option<ContactCopy>>,
    stats: ReadStats,
    retried: bool,
}

async fn read_with_retries<S: CtrSource>(
    source: &S,
    object: CtrObject,
    instances: &[String],
    retry: ReadRetry,
) -> Result<ObjectRead, SourceError> {
    let mut delay = retry.first_delay;
    let mut attempt = 1;
    loop {
        match read_once(source, &object, instances).await {
            Ok(mut read) => {
                read.retried = attempt > 1;
                return Ok(read);
            }
            Err(e) if e.is_retryable() && attempt < retry.attempts.max(1) => {
                warn!(key = %object.key, attempt, error.message = %e, error.cause_chain = ?e, "ctr object read failed; reading it again");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(4);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn read_once<S: CtrSource>(
    source: &S,
    object: &CtrObject,
    instances: &[String],
) -> Result<ObjectRead, SourceError> {
    let reader = match source.open(object).await {
        Ok(r) => r,
        Err(SourceError::Gone { key }) => {
            warn!(key, "ctr object listed but gone; counted as malformed");
            return Ok(ObjectRead {
                copies: Vec::new(),
                stats: ReadStats {
                    records: 0,
                    malformed: 1,
                },
                retried: false,
            });
        }
        Err(e) => return Err(e),
    };
    let key = object.key.clone();
    let expected = object.size;
    let instances = instances.to_vec();
    tokio::task::spawn_blocking(move || {
        let instances: Vec<&str> = instances.iter().map(String::as_str).collect();
        let mut copies = Vec::new();
        let mut implausible = 0;
        let mut tracked = Tracked::new(reader);
        let stats = read_object(
            &mut tracked,
            |record| ContactCopy::from_record_in(record, &instances),
            &mut copies,
        );
        // Counted here, skipped where the copies are merged.
        implausible += copies.iter().flatten().filter(|c| c.implausible()).count() as u64;
        match stats {
            Ok(mut stats) => {
                if tracked.eof && tracked.bytes < expected {
                    return Err(SourceError::Truncated {
                        key,
                        read: tracked.bytes,
                        listed: expected,
                    });
                }
                stats.records -= implausible.min(stats.records);
                stats.malformed += implausible;
                Ok(ObjectRead {
                    copies,
                    stats,
                    retried: false,
                })
            }
            Err(ReadError::Source(e)) => Err(SourceError::Read {
                key,
                source: Box::new(e),
            }),
        }
    })
    .await
    .map_err(SourceError::Task)?
}

/// A reader that counts the bytes it passed on and notes the end of the stream, and that keeps
/// the source's own failures apart from corrupt data: an error from underneath is handed on as
/// [`io::ErrorKind::Other`], so the CTR reader never mistakes a broken connection for a corrupt
/// gzip stream (which it would count and skip).
struct Tracked<R> {
    inner: R,
    bytes: u64,
    eof: bool,
}

impl<R> Tracked<R> {
    fn new(inner: R) -> Self {
        Tracked {
            inner,
            bytes: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Lists every hour (four at a time) and reads every object of `hours` into one set (manual runs
/// and benchmarks; automatic runs drive a `Scanner` hour by hour).
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
    debug!(
        hours = hours.len(),
        objects = objects.len(),
        "listed ctr objects"
    );
    let instances = [instance_id.to_owned()];
    let mut scanner = Scanner::new(source, &instances, initiation_window, concurrency, progress);
    scanner.read(objects).await?;
    let scanned = scanner.finish();
    Ok((scanned.contacts, scanned.stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ctr_source::DirCtrSource;
    use crate::adapters::ctr_source::hour_prefix;
    use crate::domain::time::parse_ts;

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
            &[hour, hour + crate::domain::time::HOUR],
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
    /// An in-memory source whose first read of each object in `faulty` breaks: mid-body with an
    /// error, or (with `short`) by ending cleanly after half the bytes.
    struct Faulty {
        objects: Vec<(String, Vec<u8>)>,
        faulty: Vec<String>,
        short: bool,
        /// Every read failed so far wants this many more failures.
        failures_per_object: u32,
        opened: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    }

    /// Half the bytes, then an error or a clean end.
    struct Breaking {
        bytes: std::io::Cursor<Vec<u8>>,
        cut: u64,
        short: bool,
    }

    impl Read for Breaking {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let left = self.cut.saturating_sub(self.bytes.position()) as usize;
            if left == 0 {
                return if self.short {
                    Ok(0)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before message completed",
                    ))
                };
            }
            let n = buf.len().min(left);
            self.bytes.read(&mut buf[..n])
        }
    }

    impl CtrSource for Faulty {
        async fn list_hour(&self, _hour: DateTime<Utc>) -> Result<Vec<CtrObject>, SourceError> {
            Ok(self
                .objects
                .iter()
                .map(|(key, b)| CtrObject {
                    key: key.clone(),
                    size: b.len() as u64,
                })
                .collect())
        }

        async fn open(&self, object: &CtrObject) -> Result<Box<dyn Read + Send>, SourceError> {
            let bytes = self
                .objects
                .iter()
                .find(|(k, _)| *k == object.key)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let n = {
                let mut opened = self.opened.lock().expect("lock");
                let n = opened.entry(object.key.clone()).or_default();
                *n += 1;
                *n
            };
            if self.faulty.contains(&object.key) && n <= self.failures_per_object {
                let cut = bytes.len() as u64 / 2;
                return Ok(Box::new(Breaking {
                    bytes: std::io::Cursor::new(bytes),
                    cut,
                    short: self.short,
                }));
            }
            Ok(Box::new(std::io::Cursor::new(bytes)))
        }
    }

    fn record(id: &str, initiation: &str, disconnect: &str) -> String {
        format!(
            r#"{{"ContactId":"{id}","Channel":"VOICE","InstanceARN":"arn:aws:connect:r:1:instance/i","InitiationTimestamp":"{initiation}","DisconnectTimestamp":"{disconnect}","LastUpdateTimestamp":"2024-05-14T10:02:00Z","Recordings":[{{"Location":"rec/{id}.wav","StorageType":"S3","Status":"AVAILABLE"}}]}}"#
        )
    }

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).expect("gzip");
        e.finish().expect("gzip")
    }

    fn faulty(short: bool, failures_per_object: u32) -> Faulty {
        let calls: String = (0..200)
            .map(|i| {
                record(
                    &format!("c{i}"),
                    "2024-05-14T10:00:00Z",
                    "2024-05-14T10:01:00Z",
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        Faulty {
            objects: vec![
                ("h/a".into(), gzip(&calls)),
                ("h/b".into(), calls.clone().into_bytes()),
            ],
            faulty: vec!["h/a".into(), "h/b".into()],
            short,
            failures_per_object,
            opened: Default::default(),
        }
    }

    /// What the scanner read, and how many objects it read again.
    async fn read_all(source: &Faulty) -> Result<(Scanned, u64), SourceError> {
        let hour = parse_ts("2024-05-14T10:00:00Z").expect("valid");
        let instances = ["i".to_owned()];
        let mut scanner = Scanner::new(source, &instances, None, 2, &|_, _| {});
        scanner.retry.first_delay = Duration::from_millis(1);
        scanner.read(source.list_hour(hour).await?).await?;
        let retried = scanner.retried;
        Ok((scanner.finish(), retried))
    }

    #[tokio::test]
    async fn an_object_whose_first_read_fails_mid_body_is_read_again_whole() {
        let source = faulty(false, 1);
        let (scanned, retried) = read_all(&source).await.expect("read");
        assert_eq!(retried, 2);
        assert_eq!(
            scanned.stats,
            ScanStats {
                objects: 2,
                records: 400,
                malformed: 0
            },
            "nothing of the broken reads was kept or counted"
        );
        assert_eq!(scanned.contacts.len(), 200);
    }

    #[tokio::test]
    async fn an_object_whose_first_read_ends_short_is_read_again_whole() {
        let source = faulty(true, 1);
        let (scanned, retried) = read_all(&source).await.expect("read");
        assert_eq!(retried, 2);
        assert_eq!(scanned.stats.records, 400);
        assert_eq!(scanned.stats.malformed, 0);
    }

    #[tokio::test]
    async fn an_object_that_keeps_failing_fails_the_read_after_the_retries() {
        let source = faulty(false, 99);
        let err = read_all(&source).await.expect_err("fails");
        assert!(matches!(err, SourceError::Read { .. }), "{err:?}");
        let opened = source.opened.lock().expect("lock");
        assert_eq!(opened.values().max(), Some(&4), "read four times in all");
    }

    #[tokio::test]
    async fn implausible_timestamps_are_counted_as_malformed() {
        let text = [
            record("ok", "2024-05-14T10:00:00Z", "2024-05-14T10:01:00Z"),
            record("backwards", "2024-05-14T10:00:00Z", "2024-05-14T09:00:00Z"),
            record("eight-days", "2024-05-14T10:00:00Z", "2024-05-22T10:00:01Z"),
        ]
        .join("\n");
        let source = Faulty {
            objects: vec![("h/a".into(), text.into_bytes())],
            faulty: vec![],
            short: false,
            failures_per_object: 0,
            opened: Default::default(),
        };
        let (scanned, _) = read_all(&source).await.expect("read");
        assert_eq!(
            scanned.stats,
            ScanStats {
                objects: 1,
                records: 1,
                malformed: 2
            }
        );
        assert_eq!(scanned.contacts.len(), 1);
    }
}
