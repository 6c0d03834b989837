//! The run store: where the checkpoint, reports, statuses, outcomes, the queued record and each
//! run's ledger are kept (design §9), as the flows see it.

use crate::domain::checkpoint::Checkpoint;
use crate::domain::ledger::LedgerError;
use crate::domain::ledger::LedgerRow;
use crate::domain::report::Outcome;
use crate::domain::report::RunReport;
use crate::domain::report::RunStatus;
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
    /// The checkpoint exists but cannot be used; never silently replaced (design §4).
    #[error("the checkpoint s3://{object} cannot be parsed ({reason}); fix or delete it")]
    Unparsable { object: String, reason: String },
    #[error("{key} is not valid JSON")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
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
}

impl LedgerSink for MemoryLedger {
    async fn push(&mut self, row: LedgerRow) -> Result<(), LedgerError> {
        self.rows.push(row);
        Ok(())
    }

    async fn finish(self) -> Result<u64, LedgerError> {
        Ok(self.rows.len() as u64)
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
