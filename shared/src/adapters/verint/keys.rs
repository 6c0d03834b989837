//! The Verint API key a process signs with, and how it follows a rotation (design §6, "key
//! rotation"). Operators rotate the key in Secrets Manager and Verint may refuse the old one from
//! that moment, so a refusal (401) makes the process read the secret again and try once more at
//! once with what it got. Reads are coalesced: one at a time per process, whatever the number of
//! requests in flight, and at most one every [`MIN_REREAD_INTERVAL`]. A warm process also reads
//! it again once its copy is older than [`MAX_KEY_AGE`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::ApiKey;

/// Reads between refusals are at least this far apart.
pub const MIN_REREAD_INTERVAL: Duration = Duration::from_secs(5);
/// A warm process reads the key again at least this often.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);

/// Why the key could not be read again.
pub type KeyReadError = Box<dyn std::error::Error + Send + Sync>;

/// Where the key comes from, read again on a refusal (the Secrets Manager secret, in AWS).
pub trait KeySource: Send + Sync + std::fmt::Debug {
    fn read(&self) -> Pin<Box<dyn Future<Output = Result<ApiKey, KeyReadError>> + Send + '_>>;
}

/// A key and when this process read it.
#[derive(Debug, Clone)]
pub struct KeyRead {
    pub key: ApiKey,
    pub read_at: Instant,
    /// Read because Verint refused the key before it.
    pub on_refusal: bool,
}

/// The process's key, shared by every request.
#[derive(Debug)]
pub struct Keys {
    current: RwLock<Arc<KeyRead>>,
    source: Option<Arc<dyn KeySource>>,
    /// Held while the secret is read; the instant of the last read (or attempt).
    reading: tokio::sync::Mutex<Option<Instant>>,
    min_interval: Duration,
    max_age: Duration,
}

impl Keys {
    /// A key given directly: nothing to read again.
    pub fn fixed(key: ApiKey) -> Self {
        Self::build(key, None)
    }

    /// A key read from `source`, read again on a refusal and when it is old.
    pub fn from_source(key: ApiKey, source: Arc<dyn KeySource>) -> Self {
        Self::build(key, Some(source))
    }

    fn build(key: ApiKey, source: Option<Arc<dyn KeySource>>) -> Self {
        let now = Instant::now();
        Keys {
            current: RwLock::new(Arc::new(KeyRead {
                key,
                read_at: now,
                on_refusal: false,
            })),
            source,
            reading: tokio::sync::Mutex::new(Some(now)),
            min_interval: MIN_REREAD_INTERVAL,
            max_age: MAX_KEY_AGE,
        }
    }

    /// Sets the two intervals (tests).
    pub fn with_intervals(mut self, min_interval: Duration, max_age: Duration) -> Self {
        self.min_interval = min_interval;
        self.max_age = max_age;
        self
    }

    fn latest(&self) -> Arc<KeyRead> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The key to sign with now; read again first when the copy is older than the maximum age.
    /// If that read fails, the old key is used (a failed read is logged, and retried no sooner
    /// than the minimum interval).
    pub async fn current(&self) -> Arc<KeyRead> {
        let latest = self.latest();
        if self.source.is_none() || latest.read_at.elapsed() < self.max_age {
            return latest;
        }
        self.read_again(Instant::now() - self.max_age, false)
            .await
            .unwrap_or(latest)
    }

    /// After Verint refused `used` at `refused_at`: a key read after the refusal, to try again
    /// at once; `None` when there is no source, the read failed, or `used` was itself read on
    /// a refusal less than the minimum interval ago (a fresh key refused is not a rotation to
    /// follow: the caller treats the refusal as transient).
    pub async fn after_refusal(&self, used: &KeyRead, refused_at: Instant) -> Option<Arc<KeyRead>> {
        self.source.as_ref()?;
        let latest = self.latest();
        if latest.read_at > used.read_at && latest.read_at >= refused_at {
            return Some(latest);
        }
        if used.on_refusal && used.read_at.elapsed() < self.min_interval {
            return None;
        }
        self.read_again(refused_at, true).await
    }

    /// Reads the source once for everyone waiting on a key read after `after`.
    async fn read_again(&self, after: Instant, refused: bool) -> Option<Arc<KeyRead>> {
        let source = self.source.as_ref()?;
        let mut last = self.reading.lock().await;
        let latest = self.latest();
        if latest.read_at > after {
            return Some(latest);
        }
        if let Some(at) = *last {
            let next = at + self.min_interval;
            if next > Instant::now() {
                if !refused {
                    return None;
                }
                tokio::time::sleep_until(next).await;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(30), source.read()).await;
        *last = Some(Instant::now());
        match read {
            Ok(Ok(key)) => {
                let changed = key.key_id != latest.key.key_id || !key.same_secret(&latest.key);
                info!(
                    key_id = %key.key_id,
                    changed,
                    refused,
                    "verint api key read again"
                );
                let fresh = Arc::new(KeyRead {
                    key,
                    read_at: Instant::now(),
                    on_refusal: refused,
                });
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh.clone();
                Some(fresh)
            }
            Ok(Err(e)) => {
                warn!(error.message = %e, error.cause_chain = ?e, "verint api key could not be read again");
                None
            }
            Err(_) => {
                warn!("verint api key read did not finish within 30 s");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::SecretString;

    use super::*;

    fn key(id: &str) -> ApiKey {
        ApiKey::new(id, &SecretString::from("c2VjcmV0LWtleS1mb3ItdGVzdHM")).expect("key")
    }

    /// A secret that holds `rotated` from the start and counts its reads.
    #[derive(Debug, Default)]
    struct Secret {
        reads: AtomicUsize,
    }

    impl KeySource for Secret {
        fn read(&self) -> Pin<Box<dyn Future<Output = Result<ApiKey, KeyReadError>> + Send + '_>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(key("rotated"))
            })
        }
    }

    fn keys() -> (Arc<Secret>, Arc<Keys>) {
        let secret = Arc::new(Secret::default());
        let keys = Keys::from_source(key("old"), secret.clone());
        (secret, Arc::new(keys))
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_refusing_many_requests_at_once_reads_the_secret_once() {
        let (secret, keys) = keys();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let used = keys.current().await;
        let refused_at = Instant::now();
        let answers =
            futures::future::join_all((0..50).map(|_| keys.after_refusal(&used, refused_at))).await;
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
        for fresh in answers {
            assert_eq!(fresh.expect("a fresh key").key.key_id, "rotated");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_key_refused_again_is_not_read_again_at_once() {
        let (secret, keys) = keys();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let used = keys.current().await;
        let fresh = keys
            .after_refusal(&used, Instant::now())
            .await
            .expect("read again");
        assert!(
            keys.after_refusal(&fresh, Instant::now()).await.is_none(),
            "a refusal of the key just read is transient, not a rotation"
        );
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_after_refusals_are_at_least_the_minimum_interval_apart() {
        let (secret, keys) = keys();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let used = keys.current().await;
        keys.after_refusal(&used, Instant::now())
            .await
            .expect("first read");
        let first = Instant::now();
        // Another request, signed with the old key, refused after that read.
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.after_refusal(&used, Instant::now())
            .await
            .expect("second read");
        assert_eq!(secret.reads.load(Ordering::SeqCst), 2);
        assert!(Instant::now() - first >= MIN_REREAD_INTERVAL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_warm_process_reads_the_key_again_after_fifteen_minutes() {
        let (secret, keys) = keys();
        tokio::time::sleep(Duration::from_secs(14 * 60)).await;
        assert_eq!(keys.current().await.key.key_id, "old");
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(keys.current().await.key.key_id, "rotated");
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_read_at_start_and_refused_at_once_is_read_again() {
        let (secret, keys) = keys();
        let used = keys.current().await;
        let fresh = keys.after_refusal(&used, Instant::now()).await;
        assert_eq!(fresh.expect("read again").key.key_id, "rotated");
        assert_eq!(secret.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_given_directly_is_never_read_again() {
        let keys = Keys::fixed(key("direct"));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let used = keys.current().await;
        assert!(keys.after_refusal(&used, Instant::now()).await.is_none());
        assert_eq!(keys.current().await.key.key_id, "direct");
    }
}
