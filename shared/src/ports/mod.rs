//! The ports: what the flows need of the world, as traits, each with an in-memory fake for
//! tests.

pub mod connect;
pub mod ctr_source;
pub mod orphans;
pub mod queue;
pub mod recordings;
pub mod store;
pub mod verint;

use tokio::time::Instant;

/// Runs `call` until `deadline`; `None` if the deadline came first. Every call to a port that can
/// hang is bounded so, by the invocation's deadline.
pub async fn bounded<T>(deadline: Option<Instant>, call: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, call).await.ok(),
        None => Some(call.await),
    }
}

/// Locks a fake's state (a test that panicked while holding it has already failed).
#[cfg(test)]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
