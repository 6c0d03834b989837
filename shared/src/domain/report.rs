//! The run report and the worker's outcome (design §5), plus the run status object that lets an
//! operator see a run that is still going or failed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::contacts::ContactKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Manual,
    Automatic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowBy {
    Initiation,
    Arrival,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportWindow {
    pub start: String,
    pub end: String,
    pub by: WindowBy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrCounts {
    pub objects: u64,
    pub records: u64,
    pub malformed: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrecoverableEntry {
    pub contact_id: String,
    pub reason: String,
}

/// `{STATE_PREFIX}runs/{run_id}/report.json`; also what the planner returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub window: Option<ReportWindow>,
    pub ctr: CtrCounts,
    pub eligible: u64,
    pub in_verint: u64,
    pub not_settled: u64,
    pub missing: u64,
    pub enqueued: u64,
    pub missing_contact_ids: Vec<String>,
    pub unrecoverable: Vec<UnrecoverableEntry>,
    /// Arrival hours read again because their listing changed since a run read them (design §4,
    /// late objects): `YYYY-MM-DDTHH:00:00Z`; always `[]` for manual runs.
    #[serde(default)]
    pub late_hours: Vec<String>,
    pub duration_ms: u64,
    /// Orphan recordings found (design §9): recordings of the window without a CTR among the
    /// hours read; 0 when the listing is off and for automatic runs.
    pub orphans: u64,
    /// Orphan look-ups (Verint by id, Connect's `DescribeContact`) that failed or that the
    /// deadline left no time for: those orphans are not queued by this run; the next run over
    /// the window looks them up again.
    #[serde(default)]
    pub orphan_lookups_failed: u64,
    /// The orphans queued (those Verint lacked and Connect describes).
    pub orphan_contact_ids: Vec<String>,
    /// Missing calls an earlier attempt of the same plan queued before its deadline stopped it
    /// (design §4.7): counted in `enqueued`, not sent again. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub already_queued: u64,
    /// False when the deadline stopped the run before it queued every missing call: what it
    /// queued is recorded and the next attempt continues (design §4.7). Absent when true.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub complete: bool,
    /// A backfill's parent report only (design §4 backfills): its slices, in window order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<Vec<SliceEntry>>,
    /// The counts of each instance of the deployment (design §11), by instance id.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceCounts>,
}

/// One instance's share of a run's counts (design §11).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCounts {
    pub eligible: u64,
    pub in_verint: u64,
    pub unrecoverable: u64,
    pub not_settled: u64,
    pub missing: u64,
}

impl std::ops::AddAssign for InstanceCounts {
    fn add_assign(&mut self, o: Self) {
        self.eligible += o.eligible;
        self.in_verint += o.in_verint;
        self.unrecoverable += o.unrecoverable;
        self.not_settled += o.not_settled;
        self.missing += o.missing;
    }
}

/// The fields of a run report that list contacts one by one; the planner function's answer
/// leaves them out (design §5: Lambda's response limit is 6 MB, and a day of a million missing
/// calls is 38 MB of ids). The stored report keeps them.
pub const ID_LISTS: [&str; 3] = ["missing_contact_ids", "orphan_contact_ids", "unrecoverable"];

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl RunReport {
    /// What the planner function answers (design §5): the report without its id lists, plus
    /// `report_key`, the stored report's S3 key, and `status`. Its size does not grow with the
    /// number of contacts.
    pub fn summary(&self, report_key: &str) -> serde_json::Value {
        // The id lists are left out before serializing, not after: a million ids would be
        // turned into JSON values only to be dropped.
        let lean = RunReport {
            run_id: self.run_id.clone(),
            mode: self.mode,
            dry_run: self.dry_run,
            window: self.window.clone(),
            ctr: self.ctr.clone(),
            eligible: self.eligible,
            in_verint: self.in_verint,
            not_settled: self.not_settled,
            missing: self.missing,
            enqueued: self.enqueued,
            missing_contact_ids: Vec::new(),
            unrecoverable: Vec::new(),
            late_hours: self.late_hours.clone(),
            duration_ms: self.duration_ms,
            orphans: self.orphans,
            orphan_lookups_failed: self.orphan_lookups_failed,
            orphan_contact_ids: Vec::new(),
            already_queued: self.already_queued,
            complete: self.complete,
            slices: self.slices.clone(),
            instances: self.instances.clone(),
        };
        let mut value = serde_json::to_value(&lean).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            for list in ID_LISTS {
                fields.remove(list);
            }
            fields.insert("report_key".into(), report_key.into());
            let status = if self.complete {
                "completed"
            } else {
                "partial"
            };
            fields.insert("status".into(), status.into());
        }
        value
    }
}

/// One slice of a backfill, as its parent report and status name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceEntry {
    pub run_id: String,
    pub start: String,
    pub end: String,
    pub status: RunState,
    /// Why a failed slice failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A backfill's progress, in its parent's `status.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceProgress {
    pub total: u32,
    pub done: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Recovered,
    AlreadyPresent,
    Failed,
    /// A recording is archived: its restore was requested and the call waits for it (§10).
    Restoring,
}

impl OutcomeStatus {
    const ALL: [OutcomeStatus; 4] = [
        OutcomeStatus::Recovered,
        OutcomeStatus::AlreadyPresent,
        OutcomeStatus::Failed,
        OutcomeStatus::Restoring,
    ];

    /// As the outcome's `status` field spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Recovered => "recovered",
            OutcomeStatus::AlreadyPresent => "already_present",
            OutcomeStatus::Failed => "failed",
            OutcomeStatus::Restoring => "restoring",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Which of two outcomes of one contact counts: a success beats a failure, and a recovery
    /// beats finding the call already present.
    pub(crate) fn rank(self) -> u8 {
        match self {
            OutcomeStatus::Recovered => 3,
            OutcomeStatus::AlreadyPresent => 2,
            OutcomeStatus::Failed | OutcomeStatus::Restoring => 1,
        }
    }
}

/// `{STATE_PREFIX}runs/{run_id}/outcomes/{contact_id}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub contact_id: String,
    pub status: OutcomeStatus,
    /// SQS's `ApproximateReceiveCount`.
    pub attempt: u32,
    pub reason: Option<String>,
    pub bytes: u64,
    pub interaction_id: Option<String>,
    pub at: String,
    /// `"truncated"` when a recording was shorter than its CTR says (design §10), with both
    /// durations of the shortest one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_seconds: Option<f64>,
    /// The archive class (`GLACIER`, `DEEP_ARCHIVE`) of a recording that was restored before
    /// it was sent (design §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// The call was sent as its Contact Lens redacted audio (design §10).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// The outcome's `integrity` of a truncated recording.
pub const TRUNCATED: &str = "truncated";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// A backfill's slice that has not ended yet.
    Queued,
    Running,
    Completed,
    Failed,
}

/// `{STATE_PREFIX}runs/{run_id}/status.json`: written when a run starts and when it ends, so a
/// run that crashed or failed is visible without a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatus {
    pub run_id: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub status: RunState,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// A backfill's parent only: how many of its slices have ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<SliceProgress>,
}

/// A new run id: sortable by start time, unique across concurrent runs.
pub(crate) fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

/// What the worker last achieved for a contact, across every run read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkedState {
    pub status: OutcomeStatus,
    /// The failure's reason; `None` for successes.
    pub reason: Option<String>,
    /// A recording was ingested shorter than its CTR says (design §10).
    pub truncated: bool,
}

impl WorkedState {
    /// Keeps the better of two states of one contact: a success beats a failure.
    pub fn merge(into: &mut HashMap<ContactKey, WorkedState>, key: ContactKey, state: WorkedState) {
        let truncated = state.truncated;
        match into.get_mut(&key) {
            Some(have) if have.status.rank() >= state.status.rank() => {
                have.truncated |= truncated;
            }
            Some(have) => {
                let was = have.truncated;
                *have = state;
                have.truncated |= was;
            }
            None => {
                into.insert(key, state);
            }
        }
    }

    /// Merges what one outcome says of its contact.
    pub fn merge_outcome(into: &mut HashMap<ContactKey, WorkedState>, outcome: Outcome) {
        WorkedState::merge(
            into,
            ContactKey::new(&outcome.contact_id.to_ascii_lowercase()),
            WorkedState {
                status: outcome.status,
                reason: outcome.reason,
                truncated: outcome.integrity.as_deref() == Some(TRUNCATED),
            },
        );
    }
}

#[cfg(test)]
impl RunReport {
    /// A complete run that read nothing, for tests to fill in with struct update syntax.
    pub(crate) fn empty(run_id: &str, mode: Mode) -> Self {
        RunReport {
            run_id: run_id.into(),
            mode,
            dry_run: false,
            window: None,
            ctr: CtrCounts::default(),
            eligible: 0,
            in_verint: 0,
            not_settled: 0,
            missing: 0,
            enqueued: 0,
            missing_contact_ids: vec![],
            unrecoverable: vec![],
            late_hours: vec![],
            duration_ms: 0,
            orphans: 0,
            orphan_lookups_failed: 0,
            already_queued: 0,
            complete: true,
            orphan_contact_ids: vec![],
            slices: None,
            instances: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_automatic_report_has_a_null_window_and_the_contract_fields_in_order() {
        let r = RunReport::empty("r", Mode::Automatic);
        assert_eq!(
            serde_json::to_string(&r).expect("serialises"),
            r#"{"run_id":"r","mode":"automatic","dry_run":false,"window":null,"ctr":{"objects":0,"records":0,"malformed":0,"duplicates":0},"eligible":0,"in_verint":0,"not_settled":0,"missing":0,"enqueued":0,"missing_contact_ids":[],"unrecoverable":[],"late_hours":[],"duration_ms":0,"orphans":0,"orphan_lookups_failed":0,"orphan_contact_ids":[],"instances":{}}"#
        );
    }

    #[test]
    fn the_functions_answer_for_a_million_missing_calls_is_a_summary_well_under_lambdas_limit() {
        let ids: Vec<String> = (0..1_000_000u32)
            .map(|i| format!("00000000-0000-4000-8000-{i:012x}"))
            .collect();
        let r = RunReport {
            run_id: "r".into(),
            mode: Mode::Manual,
            dry_run: false,
            window: None,
            ctr: CtrCounts::default(),
            eligible: 1_000_000,
            in_verint: 0,
            not_settled: 0,
            missing: 1_000_000,
            enqueued: 1_000_000,
            missing_contact_ids: ids.clone(),
            unrecoverable: vec![UnrecoverableEntry {
                contact_id: ids[0].clone(),
                reason: "all recordings deleted".into(),
            }],
            late_hours: vec![],
            duration_ms: 0,
            orphans: 1,
            orphan_lookups_failed: 0,
            already_queued: 0,
            complete: true,
            orphan_contact_ids: vec![ids[1].clone()],
            slices: None,
            instances: Default::default(),
        };
        let summary = r.summary("call-recovery/runs/r/report.json");
        let bytes = serde_json::to_vec(&summary).expect("serialises").len();
        assert!(bytes < 1024, "{bytes} bytes");
        for list in ID_LISTS {
            assert!(summary.get(list).is_none(), "{list}");
        }
        assert_eq!(summary["report_key"], "call-recovery/runs/r/report.json");
        assert_eq!(
            (summary["missing"].as_u64(), summary["enqueued"].as_u64()),
            (Some(1_000_000), Some(1_000_000))
        );
    }

    #[test]
    fn an_outcome_status_is_named_as_its_json_names_it() {
        for status in OutcomeStatus::ALL {
            let json = serde_json::to_string(&status).expect("serialises");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(OutcomeStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn run_ids_sort_by_start_time() {
        let a = new_run_id(crate::domain::time::parse_ts("2024-05-14T09:59:59Z").expect("valid"));
        let b = new_run_id(crate::domain::time::parse_ts("2024-05-14T10:00:00Z").expect("valid"));
        assert!(a < b);
    }
}
