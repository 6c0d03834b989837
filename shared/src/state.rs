//! The run state in S3 (`STATE_BUCKET`/`STATE_PREFIX`): the checkpoint of automatic runs, written
//! with a conditional write on its ETag so two runs cannot overwrite each other; run reports,
//! run status and worker outcomes.

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::report::{Outcome, OutcomeStatus, RunReport, RunStatus};

/// `{STATE_PREFIX}checkpoint.json`: the next arrival hour an automatic run reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next_hour: String,
    pub updated_at: String,
    pub run_id: String,
}

impl Checkpoint {
    pub fn next_hour(&self) -> Option<DateTime<Utc>> {
        crate::time::parse_ts(&self.next_hour)
    }
}

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
    /// Where the run's ledger goes (DESIGN §9).
    type Ledger: crate::ledger::LedgerSink;
    fn ledger(&self, run_id: &str) -> Self::Ledger;
}

#[derive(Debug, Clone)]
pub struct S3State {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

fn s3_err<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> StateError {
    let what = what.into();
    move |e| StateError::S3 {
        what,
        source: Box::new(e),
    }
}

impl S3State {
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        S3State {
            s3,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    pub fn checkpoint_key(&self) -> String {
        format!("{}checkpoint.json", self.prefix)
    }

    pub fn run_key(&self, run_id: &str, name: &str) -> String {
        format!("{}runs/{run_id}/{name}", self.prefix)
    }

    /// A `PutObject` of `value` as JSON at `key`, ready to send (or to make conditional).
    fn put_json_request<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder, StateError>
    {
        let body = serde_json::to_vec_pretty(value).map_err(|source| StateError::Json {
            key: key.to_owned(),
            source,
        })?;
        Ok(self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body)))
    }

    async fn put_json<T: Serialize>(&self, key: String, value: &T) -> Result<(), StateError> {
        self.put_json_request(&key, value)?
            .send()
            .await
            .map_err(|e| s3_err(format!("put {key}"))(e.into_service_error()))?;
        Ok(())
    }

    /// Reads a JSON object; `None` when it does not exist.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, Option<String>)>, StateError> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    return Ok(None);
                }
                return Err(s3_err(format!("get {key}"))(e));
            }
        };
        let etag = out.e_tag.clone();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(s3_err(format!("read {key}")))?
            .into_bytes();
        let value = serde_json::from_slice(&bytes).map_err(|source| StateError::Json {
            key: key.into(),
            source,
        })?;
        Ok(Some((value, etag)))
    }

    /// Writes a contact's outcome, then an empty marker whose key names its status
    /// (`outcome-index/{status}/{contact_id}`), so that coverage learns every contact's status
    /// from listings instead of one GET per contact.
    pub async fn put_outcome(&self, run_id: &str, outcome: &Outcome) -> Result<(), StateError> {
        self.put_json(
            self.run_key(run_id, &format!("outcomes/{}.json", outcome.contact_id)),
            outcome,
        )
        .await?;
        let marker = self.run_key(
            run_id,
            &format!(
                "outcome-index/{}/{}",
                outcome_status_name(outcome.status),
                outcome.contact_id
            ),
        );
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&marker)
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .map_err(|e| s3_err(format!("put {marker}"))(e.into_service_error()))?;
        Ok(())
    }

    pub async fn report(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        Ok(self
            .get_json(&self.run_key(run_id, "report.json"))
            .await?
            .map(|(r, _)| r))
    }

    pub async fn status(&self, run_id: &str) -> Result<Option<RunStatus>, StateError> {
        Ok(self
            .get_json(&self.run_key(run_id, "status.json"))
            .await?
            .map(|(r, _)| r))
    }

    /// Run ids, newest first (run ids sort by start time).
    pub async fn run_ids(&self) -> Result<Vec<String>, StateError> {
        let prefix = format!("{}runs/", self.prefix);
        let mut ids = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| s3_err(format!("list {prefix}"))(e.into_service_error()))?;
            for p in page.common_prefixes.unwrap_or_default() {
                if let Some(id) = p
                    .prefix
                    .as_deref()
                    .and_then(|p| p.strip_prefix(&prefix))
                    .map(|s| s.trim_end_matches('/'))
                {
                    ids.push(id.to_owned());
                }
            }
        }
        ids.sort_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Every outcome of a run.
    pub async fn outcomes(&self, run_id: &str) -> Result<Vec<Outcome>, StateError> {
        let prefix = self.run_key(run_id, "outcomes/");
        let keys: Vec<String> = crate::aws::list_objects(&self.s3, &self.bucket, &prefix)
            .await
            .map_err(s3_err(format!("list {prefix}")))?
            .into_iter()
            .filter_map(|o| o.key)
            .collect();
        // One object per contact: read them sixteen at a time.
        let read: Vec<Option<(Outcome, Option<String>)>> =
            futures::stream::iter(keys.iter().map(|key| self.get_json::<Outcome>(key)))
                .buffer_unordered(16)
                .try_collect()
                .await?;
        let mut out: Vec<Outcome> = read.into_iter().flatten().map(|(o, _)| o).collect();
        out.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
        Ok(out)
    }
}

impl RunStore for S3State {
    async fn checkpoint(&self) -> Result<(Option<Checkpoint>, Version), StateError> {
        match self.get_json::<Checkpoint>(&self.checkpoint_key()).await? {
            None => Ok((None, Version::Absent)),
            Some((c, etag)) => Ok((Some(c), etag.map_or(Version::Absent, Version::ETag))),
        }
    }

    /// Writes only if the checkpoint is still the version read (`If-Match`), or still absent
    /// (`If-None-Match: *`); S3 answers 412 otherwise.
    async fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        expected: &Version,
    ) -> Result<(), StateError> {
        let key = self.checkpoint_key();
        let request = self.put_json_request(&key, checkpoint)?;
        let request = match expected {
            Version::Absent => request.if_none_match("*"),
            Version::ETag(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(412) | Some(409)) {
                    Err(StateError::Conflict)
                } else {
                    Err(s3_err(format!("put {key}"))(e.into_service_error()))
                }
            }
        }
    }

    async fn put_report(&self, report: &RunReport) -> Result<(), StateError> {
        self.put_json(self.run_key(&report.run_id, "report.json"), report)
            .await
    }

    async fn put_status(&self, status: &RunStatus) -> Result<(), StateError> {
        self.put_json(self.run_key(&status.run_id, "status.json"), status)
            .await
    }

    type Ledger = crate::ledger::S3Ledger;
    fn ledger(&self, run_id: &str) -> Self::Ledger {
        crate::ledger::S3Ledger::new(self.s3.clone(), &self.bucket, self.ledger_key(run_id))
    }
}

fn outcome_status_name(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Recovered => "recovered",
        OutcomeStatus::AlreadyPresent => "already_present",
        OutcomeStatus::Failed => "failed",
    }
}

/// What coverage (DESIGN §9) reads: ledgers and what the worker achieved.
impl S3State {
    pub fn ledger_key(&self, run_id: &str) -> String {
        self.run_key(run_id, "ledger.csv.gz")
    }

    /// A run's ledger, gzip-compressed as stored; `None` when the run wrote none.
    pub async fn ledger_bytes(
        &self,
        run_id: &str,
    ) -> Result<Option<Vec<u8>>, crate::ledger::LedgerError> {
        crate::ledger::fetch(&self.s3, &self.bucket, &self.ledger_key(run_id)).await
    }

    /// Merges what the worker achieved for each contact of a run into `into`: statuses from the
    /// outcome index (listings only), and one GET per contact only for failures (for their
    /// reason) and for outcomes written before the index existed.
    pub async fn worked(
        &self,
        run_id: &str,
        into: &mut std::collections::HashMap<
            crate::contacts::ContactKey,
            crate::coverage::WorkedState,
        >,
    ) -> Result<(), StateError> {
        use crate::contacts::ContactKey;
        use crate::coverage::WorkedState;
        let index = self.run_key(run_id, "outcome-index/");
        let mut indexed: std::collections::HashMap<String, OutcomeStatus> = Default::default();
        for object in crate::aws::list_objects(&self.s3, &self.bucket, &index)
            .await
            .map_err(s3_err(format!("list {index}")))?
        {
            let Some((status, id)) = object
                .key
                .as_deref()
                .and_then(|k| k.strip_prefix(&index))
                .and_then(|k| k.split_once('/'))
            else {
                continue;
            };
            let status = match status {
                "recovered" => OutcomeStatus::Recovered,
                "already_present" => OutcomeStatus::AlreadyPresent,
                "failed" => OutcomeStatus::Failed,
                _ => continue,
            };
            let rank = |s: OutcomeStatus| match s {
                OutcomeStatus::Recovered => 3,
                OutcomeStatus::AlreadyPresent => 2,
                OutcomeStatus::Failed => 1,
            };
            let best = indexed.entry(id.to_owned()).or_insert(status);
            if rank(status) > rank(*best) {
                *best = status;
            }
        }
        let prefix = self.run_key(run_id, "outcomes/");
        let mut to_read = Vec::new();
        for object in crate::aws::list_objects(&self.s3, &self.bucket, &prefix)
            .await
            .map_err(s3_err(format!("list {prefix}")))?
        {
            let Some(key) = object.key else { continue };
            let Some(id) = key
                .strip_prefix(&prefix)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            match indexed.get(id) {
                Some(OutcomeStatus::Failed) | None => to_read.push(key.clone()),
                Some(&status) => WorkedState::merge(
                    into,
                    ContactKey::new(&id.to_ascii_lowercase()),
                    WorkedState {
                        status,
                        reason: None,
                    },
                ),
            }
        }
        let read: Vec<Option<(Outcome, Option<String>)>> =
            futures::stream::iter(to_read.iter().map(|key| self.get_json::<Outcome>(key)))
                .buffer_unordered(16)
                .try_collect()
                .await?;
        for (outcome, _) in read.into_iter().flatten() {
            WorkedState::merge(
                into,
                ContactKey::new(&outcome.contact_id.to_ascii_lowercase()),
                WorkedState {
                    status: outcome.status,
                    reason: outcome.reason,
                },
            );
        }
        Ok(())
    }
}
