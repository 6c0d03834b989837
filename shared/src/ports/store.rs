//! The run store: where the checkpoint, reports, statuses, outcomes, the queued record and each
//! run's ledger are kept (design §9), as the flows see it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::checkpoint::Checkpoint;
use crate::domain::contacts::ContactKey;
use crate::domain::ledger::{LedgerError, LedgerRow};
use crate::domain::report::{Outcome, RunReport, RunStatus, WorkedState};

/// The version of the checkpoint a run read: its ETag, or none yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Absent,
    ETag(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the checkpoint changed since this run read it (another run moved it); nothing was overwritten"
    )]
    Conflict,
    #[error("state bucket request failed: {what}")]
    S3 {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The checkpoint exists but cannot be used; never silently replaced (design §4). The
    /// message says how to restore it without losing hours.
    #[error("the checkpoint s3://{bucket}/{key} cannot be parsed ({reason}); {}", restore_advice(bucket, key, previous.as_ref()))]
    Unparsable {
        bucket: String,
        key: String,
        reason: String,
        /// The newest earlier version of the checkpoint, when the bucket keeps versions.
        previous: Option<PreviousCheckpoint>,
    },
    #[error("{key} is not valid JSON")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An earlier version of the checkpoint: its version id and, when it parses, its next hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousCheckpoint {
    pub version_id: String,
    pub next_hour: Option<String>,
}

/// What to do about an unreadable checkpoint, safely: deleting it would restart automatic runs
/// at `INITIAL_LOOKBACK` before now, and the hours before would never be read.
fn restore_advice(bucket: &str, key: &str, previous: Option<&PreviousCheckpoint>) -> String {
    let keep = "nothing was changed. Do not just delete it: automatic runs would restart \
                INITIAL_LOOKBACK before now and never read the hours before";
    match previous {
        Some(p) => format!(
            "{keep}. Restore its previous version {} (next hour {}): aws s3api copy-object \
             --bucket {bucket} --key {key} --copy-source '{bucket}/{key}?versionId={}'; or \
             delete it and plan the gap by hand: recoveryctl plan --from {} --to <now>. \
             Safe to re-run once it reads",
            p.version_id,
            p.next_hour.as_deref().unwrap_or("unreadable too"),
            p.version_id,
            p.next_hour.as_deref().unwrap_or("<the last hour read>"),
        ),
        None => format!(
            "{keep}. No earlier version was found (is the bucket versioned? aws s3api \
             list-object-versions --bucket {bucket} --prefix {key}); fix its JSON by hand, or \
             delete it and plan the gap: recoveryctl plan --from <the last hour read> --to <now>"
        ),
    }
}

/// Reads and writes the run state.
pub trait RunStore: Send + Sync {
    fn checkpoint(
        &self,
    ) -> impl Future<Output = Result<(Option<Checkpoint>, Version), StateError>> + Send;
    fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        expected: &Version,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    fn put_report(&self, report: &RunReport)
    -> impl Future<Output = Result<(), StateError>> + Send;
    fn put_status(&self, status: &RunStatus)
    -> impl Future<Output = Result<(), StateError>> + Send;
    /// Where the run's ledger goes (design §9).
    type Ledger: crate::ports::store::LedgerSink;
    fn ledger(&self, run_id: &str) -> Self::Ledger;
    /// The contact ids an earlier attempt of the plan `plan_key` queued before its deadline
    /// stopped it (design §4.7); empty when there was none.
    fn queued_log(
        &self,
        _plan_key: &str,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send {
        async { Ok(Vec::new()) }
    }
    /// Records every contact id queued so far for `plan_key` (`None`: the plan finished, the
    /// record is removed).
    fn put_queued_log(
        &self,
        _plan_key: &str,
        _ids: Option<&[String]>,
    ) -> impl Future<Output = Result<(), StateError>> + Send {
        async { Ok(()) }
    }
}

/// Where a run's ledger is written.
pub trait LedgerSink: Send {
    /// Adds a row (an upload of a full part may happen here).
    fn push(&mut self, row: LedgerRow) -> impl Future<Output = Result<(), LedgerError>> + Send;
    /// Completes the ledger; the number of rows written.
    fn finish(self) -> impl Future<Output = Result<u64, LedgerError>> + Send;
}

/// A ledger kept in memory (tests, and runs that write no ledger anywhere).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    pub rows: Vec<LedgerRow>,
    /// Where the rows go when the ledger is finished, if anywhere.
    pub kept: Option<std::sync::Arc<Mutex<Vec<LedgerRow>>>>,
}

impl LedgerSink for MemoryLedger {
    async fn push(&mut self, row: LedgerRow) -> Result<(), LedgerError> {
        self.rows.push(row);
        Ok(())
    }

    async fn finish(self) -> Result<u64, LedgerError> {
        let n = self.rows.len() as u64;
        if let Some(kept) = self.kept {
            kept.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(self.rows);
        }
        Ok(n)
    }
}

/// Where outcomes are written (`runs/{run_id}/outcomes/{contact_id}.json`).
pub trait OutcomeStore: Send + Sync {
    fn put_outcome(
        &self,
        run_id: &str,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// The runs' documents as backfills and coverage read and write them (design §4.8, §9): JSON
/// objects under `runs/{run_id}/`, each with its version for conditional writes, the run ids,
/// each run's ledger, and what the worker achieved.
pub trait RunDocuments: Send + Sync {
    /// Writes `runs/{run_id}/{name}`.
    fn put_run_json<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Reads `runs/{run_id}/{name}` with its version; `None` when it does not exist.
    fn run_json<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<(T, Version)>, StateError>> + Send;
    /// Writes `runs/{run_id}/{name}` only if it is still at `expected`; `false` when another
    /// writer got there first.
    fn put_run_json_if<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
        expected: &Version,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    /// Every JSON object under `runs/{run_id}/{folder}/`.
    fn run_folder<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        folder: &str,
    ) -> impl Future<Output = Result<Vec<T>, StateError>> + Send;
    /// Run ids, newest first.
    fn run_ids(&self) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;
    /// A run's ledger, gzip-compressed as stored; `None` when the run wrote none.
    fn ledger_bytes(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, LedgerError>> + Send;
    /// Merges what the worker achieved for each contact of a run into `into`.
    fn worked(
        &self,
        run_id: &str,
        into: &mut HashMap<ContactKey, WorkedState>,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
    /// A run's report; `None` when it has none (yet).
    fn report(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunReport>, StateError>> + Send {
        async move { Ok(self.run_json(run_id, "report.json").await?.map(|(r, _)| r)) }
    }
}

/// The runs' documents in memory: the fake backfills and coverage are tested over.
#[derive(Debug, Default)]
pub struct MemoryRunDocuments {
    /// `runs/{run_id}/{name}` → the document and its version (a counter).
    documents: Mutex<BTreeMap<String, (serde_json::Value, u64)>>,
    pub ledgers: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryRunDocuments {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (serde_json::Value, u64)>> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a document under the next version; with `expected`, only if it is still at that
    /// version (`false` otherwise, nothing written).
    fn put(&self, key: String, value: serde_json::Value, expected: Option<&Version>) -> bool {
        let mut documents = self.lock();
        let held = documents.get(&key).map(|(_, v)| *v);
        let at = held.map(|v| Version::ETag(v.to_string()));
        if expected.is_some_and(|e| at.as_ref().unwrap_or(&Version::Absent) != e) {
            return false;
        }
        documents.insert(key, (value, held.map_or(1, |v| v + 1)));
        true
    }
}

fn json_err(key: &str) -> impl FnOnce(serde_json::Error) -> StateError + '_ {
    move |source| StateError::Json {
        key: key.to_owned(),
        source,
    }
}

impl RunDocuments for MemoryRunDocuments {
    async fn put_run_json<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
    ) -> Result<(), StateError> {
        let key = format!("runs/{run_id}/{name}");
        let value = serde_json::to_value(value).map_err(json_err(&key))?;
        self.put(key, value, None);
        Ok(())
    }

    async fn run_json<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(T, Version)>, StateError> {
        let key = format!("runs/{run_id}/{name}");
        let Some((value, version)) = self.lock().get(&key).cloned() else {
            return Ok(None);
        };
        let value = serde_json::from_value(value).map_err(json_err(&key))?;
        Ok(Some((value, Version::ETag(version.to_string()))))
    }

    async fn put_run_json_if<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
        expected: &Version,
    ) -> Result<bool, StateError> {
        let key = format!("runs/{run_id}/{name}");
        let value = serde_json::to_value(value).map_err(json_err(&key))?;
        Ok(self.put(key, value, Some(expected)))
    }

    async fn run_folder<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        folder: &str,
    ) -> Result<Vec<T>, StateError> {
        let prefix = format!("runs/{run_id}/{folder}/");
        let found: Vec<(String, serde_json::Value)> = self
            .lock()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        found
            .into_iter()
            .map(|(k, v)| serde_json::from_value(v).map_err(json_err(&k)))
            .collect()
    }

    async fn run_ids(&self) -> Result<Vec<String>, StateError> {
        let mut ids: Vec<String> = self
            .lock()
            .keys()
            .filter_map(|k| k.strip_prefix("runs/")?.split_once('/'))
            .map(|(id, _)| id.to_owned())
            .collect();
        ids.dedup();
        ids.sort_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    async fn ledger_bytes(&self, run_id: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let ledgers = self.ledgers.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ledgers.get(run_id).cloned())
    }

    async fn worked(
        &self,
        run_id: &str,
        into: &mut HashMap<ContactKey, WorkedState>,
    ) -> Result<(), StateError> {
        for outcome in self.run_folder::<Outcome>(run_id, "outcomes").await? {
            WorkedState::merge_outcome(into, outcome);
        }
        Ok(())
    }
}

/// The in-memory fake of this port the flows' tests run over.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::Mutex;

    use std::collections::HashMap;

    use super::*;
    use crate::ports::lock;

    #[derive(Default)]
    pub(crate) struct FakeOutcomes(pub(crate) Mutex<Vec<Outcome>>);

    impl OutcomeStore for FakeOutcomes {
        async fn put_outcome(&self, _run_id: &str, outcome: &Outcome) -> Result<(), StateError> {
            lock(&self.0).push(outcome.clone());
            Ok(())
        }
    }

    /// The run state in memory: the checkpoint with a version, the reports, statuses and queued
    /// records by key; ledgers go to a [`MemoryLedger`] each (and are dropped once finished).
    #[derive(Default)]
    pub(crate) struct MemoryRunStore {
        pub(crate) checkpoint: Mutex<Option<(Checkpoint, u64)>>,
        pub(crate) reports: Mutex<Vec<RunReport>>,
        pub(crate) statuses: Mutex<Vec<RunStatus>>,
        pub(crate) queued: Mutex<HashMap<String, Vec<String>>>,
        /// Each finished ledger's rows, by run.
        pub(crate) ledgers: Mutex<HashMap<String, std::sync::Arc<Mutex<Vec<LedgerRow>>>>>,
    }

    impl MemoryRunStore {
        /// The rows of a run's finished ledger.
        pub(crate) fn ledger_rows(&self, run_id: &str) -> Vec<LedgerRow> {
            lock(&self.ledgers)
                .get(run_id)
                .map(|rows| lock(rows).clone())
                .unwrap_or_default()
        }
    }

    impl RunStore for MemoryRunStore {
        async fn checkpoint(&self) -> Result<(Option<Checkpoint>, Version), StateError> {
            Ok(match lock(&self.checkpoint).clone() {
                Some((c, v)) => (Some(c), Version::ETag(v.to_string())),
                None => (None, Version::Absent),
            })
        }

        async fn put_checkpoint(
            &self,
            checkpoint: &Checkpoint,
            expected: &Version,
        ) -> Result<(), StateError> {
            let mut held = lock(&self.checkpoint);
            let now = held.as_ref().map(|(_, v)| Version::ETag(v.to_string()));
            if now.as_ref().unwrap_or(&Version::Absent) != expected {
                return Err(StateError::Conflict);
            }
            let next = held.as_ref().map_or(1, |(_, v)| v + 1);
            *held = Some((checkpoint.clone(), next));
            Ok(())
        }

        async fn put_report(&self, report: &RunReport) -> Result<(), StateError> {
            lock(&self.reports).push(report.clone());
            Ok(())
        }

        async fn put_status(&self, status: &RunStatus) -> Result<(), StateError> {
            lock(&self.statuses).push(status.clone());
            Ok(())
        }

        type Ledger = MemoryLedger;
        fn ledger(&self, run_id: &str) -> MemoryLedger {
            let kept =
                std::sync::Arc::clone(lock(&self.ledgers).entry(run_id.to_owned()).or_default());
            MemoryLedger {
                rows: Vec::new(),
                kept: Some(kept),
            }
        }

        async fn queued_log(&self, plan_key: &str) -> Result<Vec<String>, StateError> {
            Ok(lock(&self.queued)
                .get(plan_key)
                .cloned()
                .unwrap_or_default())
        }

        async fn put_queued_log(
            &self,
            plan_key: &str,
            ids: Option<&[String]>,
        ) -> Result<(), StateError> {
            let mut queued = lock(&self.queued);
            match ids {
                Some(ids) => queued.insert(plan_key.to_owned(), ids.to_vec()),
                None => queued.remove(plan_key),
            };
            Ok(())
        }
    }
}
