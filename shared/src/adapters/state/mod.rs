//! The run state in S3 (`STATE_BUCKET`/`STATE_PREFIX`): the checkpoint of automatic runs, written
//! with a conditional write on its ETag so two runs cannot overwrite each other; run reports,
//! run status and worker outcomes.

use std::collections::{HashMap, HashSet};

use aws_sdk_s3::primitives::ByteStream;
use futures::{StreamExt, TryStreamExt};
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::checkpoint::Checkpoint;
use crate::domain::contacts::ContactKey;
use crate::domain::ledger::LedgerError;
use crate::domain::report::WorkedState;
use crate::domain::report::{Outcome, OutcomeStatus, RunReport, RunStatus, TRUNCATED};
use crate::ports::store::RunStore;
use crate::ports::store::Version;
use crate::ports::store::{OutcomeStore, RunDocuments};
use crate::ports::store::{PreviousCheckpoint, StateError};

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

    /// The newest version of the checkpoint before the current one, and its next hour when it
    /// parses; `None` when the bucket keeps no versions or they cannot be listed.
    async fn previous_checkpoint(&self, key: &str) -> Option<PreviousCheckpoint> {
        let listed = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .ok()?;
        let mut versions: Vec<_> = listed
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key) && v.is_latest() != Some(true))
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.last_modified().map(|t| t.as_nanos())));
        let version_id = versions.first()?.version_id()?.to_owned();
        let next_hour = async {
            let out = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .version_id(&version_id)
                .send()
                .await
                .ok()?;
            let bytes = out.body.collect().await.ok()?.into_bytes();
            let c: Checkpoint = serde_json::from_slice(&bytes).ok()?;
            checkpoint_problem(&c).is_none().then_some(c.next_hour)
        }
        .await;
        Some(PreviousCheckpoint {
            version_id,
            next_hour,
        })
    }

    pub(crate) fn checkpoint_key(&self) -> String {
        format!("{}checkpoint.json", self.prefix)
    }

    /// The S3 key of a run's report (design §5).
    pub fn report_key(&self, run_id: &str) -> String {
        self.run_key(run_id, "report.json")
    }

    pub(crate) fn run_key(&self, run_id: &str, name: &str) -> String {
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

    /// Writes `value` at `key` only if the object is still at `expected` (`If-Match` its ETag,
    /// or `If-None-Match: *` while absent); `false` when S3 answers 412 (or 409): another
    /// writer got there first, and the caller reads again and decides.
    async fn put_json_if<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        expected: &Version,
    ) -> Result<bool, StateError> {
        let request = self.put_json_request(key, value)?;
        let request = match expected {
            Version::Absent => request.if_none_match("*"),
            Version::ETag(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(412 | 409)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(s3_err(format!("put {key}"))(e.into_service_error())),
        }
    }

    /// A `GetObject` of `key` in the state bucket; `None` when it does not exist.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StateError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_no_such_key() {
                    return Ok(None);
                }
                Err(s3_err(format!("get {key}"))(e))
            }
        }
    }

    /// Reads a JSON object; `None` when it does not exist.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, Option<String>)>, StateError> {
        let Some(out) = self.get_object(key).await? else {
            return Ok(None);
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
        let mut markers = vec![outcome.status.as_str()];
        // A truncated recording is named in the index too, so coverage counts it from listings.
        if outcome.integrity.as_deref() == Some(TRUNCATED) {
            markers.push(TRUNCATED);
        }
        for name in markers {
            let marker = self.run_key(
                run_id,
                &format!("outcome-index/{name}/{}", outcome.contact_id),
            );
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&marker)
                .body(ByteStream::from_static(b""))
                .send()
                .await
                .map_err(|e| s3_err(format!("put {marker}"))(e.into_service_error()))?;
        }
        Ok(())
    }

    pub async fn report(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        Ok(self.run_json(run_id, "report.json").await?.map(|(r, _)| r))
    }

    pub async fn status(&self, run_id: &str) -> Result<Option<RunStatus>, StateError> {
        Ok(self.run_json(run_id, "status.json").await?.map(|(r, _)| r))
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
        // One object per contact, read sixteen at a time.
        let mut out: Vec<Outcome> = self.run_folder(run_id, "outcomes").await?;
        out.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
        Ok(out)
    }
}

impl RunStore for S3State {
    /// The checkpoint and its ETag. One that is not JSON, lacks a field, or names no hour is
    /// [`StateError::Unparsable`], naming the object.
    async fn checkpoint(&self) -> Result<(Option<Checkpoint>, Version), StateError> {
        let key = self.checkpoint_key();
        let problem = match self.get_json::<Checkpoint>(&key).await {
            Ok(None) => return Ok((None, Version::Absent)),
            Ok(Some((c, etag))) => match checkpoint_problem(&c) {
                None => return Ok((Some(c), etag.map_or(Version::Absent, Version::ETag))),
                Some(problem) => problem,
            },
            Err(StateError::Json { source, .. }) => source.to_string(),
            Err(e) => return Err(e),
        };
        Err(StateError::Unparsable {
            bucket: self.bucket.clone(),
            previous: self.previous_checkpoint(&key).await,
            key,
            reason: problem,
        })
    }

    /// Writes only if the checkpoint is still the version read (`If-Match`), or still absent
    /// (`If-None-Match: *`); S3 answers 412 otherwise.
    async fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        expected: &Version,
    ) -> Result<(), StateError> {
        let key = self.checkpoint_key();
        if self.put_json_if(&key, checkpoint, expected).await? {
            return Ok(());
        }
        // The SDK retries a PUT whose response was lost; if the first attempt was stored, the
        // retry gets 412 although this run moved the checkpoint.
        match self.get_json::<Checkpoint>(&key).await {
            Ok(Some((stored, _)))
                if stored.run_id == checkpoint.run_id
                    && stored.next_hour == checkpoint.next_hour =>
            {
                tracing::info!(
                    run_id = %checkpoint.run_id,
                    "412 on the checkpoint write, but the stored checkpoint is this run's: written"
                );
                Ok(())
            }
            _ => Err(StateError::Conflict),
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

    type Ledger = crate::adapters::ledger::S3Ledger;
    fn ledger(&self, run_id: &str) -> Self::Ledger {
        crate::adapters::ledger::S3Ledger::new(
            self.s3.clone(),
            &self.bucket,
            self.ledger_key(run_id),
        )
    }

    /// `{prefix}queued/{plan_key}.txt.gz`: one contact id per line, gzip-compressed (a million
    /// ids are about 20 MB).
    async fn queued_log(&self, plan_key: &str) -> Result<Vec<String>, StateError> {
        let key = self.queued_key(plan_key);
        let Some(out) = self.get_object(&key).await? else {
            return Ok(Vec::new());
        };
        // A record older than this names messages that may have expired from the queue (4 days):
        // trusting it would skip calls that are no longer queued, so it is ignored.
        let age = out
            .last_modified()
            .and_then(|t| std::time::SystemTime::try_from(*t).ok())
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a > QUEUED_LOG_MAX_AGE) {
            tracing::warn!(
                key,
                "queued record older than 72 h ignored: everything is queued again"
            );
            return Ok(Vec::new());
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(s3_err(format!("read {key}")))?
            .into_bytes();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .map_err(s3_err(format!("gunzip {key}")))?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    async fn put_queued_log(
        &self,
        plan_key: &str,
        ids: Option<&[String]>,
    ) -> Result<(), StateError> {
        let key = self.queued_key(plan_key);
        let Some(ids) = ids else {
            self.s3
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| s3_err(format!("delete {key}"))(e.into_service_error()))?;
            return Ok(());
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for id in ids {
            std::io::Write::write_all(&mut gz, id.as_bytes())
                .and_then(|()| std::io::Write::write_all(&mut gz, b"\n"))
                .map_err(s3_err(format!("gzip {key}")))?;
        }
        let body = gz.finish().map_err(s3_err(format!("gzip {key}")))?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_err(format!("put {key}"))(e.into_service_error()))?;
        Ok(())
    }
}

/// How long a queued record is trusted: well under the queues' 4-day retention.
pub const QUEUED_LOG_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(72 * 3600);

impl S3State {
    fn queued_key(&self, plan_key: &str) -> String {
        format!("{}queued/{plan_key}.txt.gz", self.prefix)
    }
}

/// Why a checkpoint that parses as JSON cannot be used, if it cannot.
fn checkpoint_problem(c: &Checkpoint) -> Option<String> {
    if c.next_hour().is_none() {
        return Some(format!("next_hour {:?} is not a timestamp", c.next_hour));
    }
    c.hours
        .iter()
        .find(|h| h.hour().is_none())
        .map(|bad| format!("hour {:?} is not a timestamp", bad.hour))
}

/// What coverage (design §9) reads: ledgers and what the worker achieved.
impl S3State {
    pub fn ledger_key(&self, run_id: &str) -> String {
        self.run_key(run_id, "ledger.csv.gz")
    }

    /// A run's ledger, gzip-compressed as stored; `None` when the run wrote none.
    pub async fn ledger_bytes(
        &self,
        run_id: &str,
    ) -> Result<Option<Vec<u8>>, crate::domain::ledger::LedgerError> {
        crate::adapters::ledger::fetch(&self.s3, &self.bucket, &self.ledger_key(run_id)).await
    }

    /// Merges what the worker achieved for each contact of a run into `into`: statuses from the
    /// outcome index (listings only), and one GET per contact only for failures (for their
    /// reason) and for outcomes written before the index existed.
    pub async fn worked(
        &self,
        run_id: &str,
        into: &mut HashMap<ContactKey, WorkedState>,
    ) -> Result<(), StateError> {
        let index = self.run_key(run_id, "outcome-index/");
        let mut indexed: HashMap<String, OutcomeStatus> = Default::default();
        let mut truncated: HashSet<String> = HashSet::new();
        for object in crate::adapters::aws::list_objects(&self.s3, &self.bucket, &index)
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
            if status == TRUNCATED {
                truncated.insert(id.to_owned());
                continue;
            }
            let Some(status) = OutcomeStatus::parse(status) else {
                continue;
            };
            let best = indexed.entry(id.to_owned()).or_insert(status);
            if status.rank() > best.rank() {
                *best = status;
            }
        }
        let prefix = self.run_key(run_id, "outcomes/");
        let mut to_read = Vec::new();
        for object in crate::adapters::aws::list_objects(&self.s3, &self.bucket, &prefix)
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
                        truncated: truncated.contains(id),
                    },
                ),
            }
        }
        let read: Vec<Option<(Outcome, Option<String>)>> = futures::stream::iter(
            to_read
                .into_iter()
                .map(|key| async move { self.get_json::<Outcome>(&key).await }),
        )
        .buffer_unordered(16)
        .try_collect()
        .await?;
        for (outcome, _) in read.into_iter().flatten() {
            WorkedState::merge_outcome(into, outcome);
        }
        Ok(())
    }
}

/// What a backfill keeps beside its parent run (design §4, backfills): its plan, one end marker
/// per slice, and its status, moved forward only by conditional writes.
impl S3State {
    /// Writes any JSON object of a run, `runs/{run_id}/{name}`.
    pub async fn put_run_json<T: Serialize>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
    ) -> Result<(), StateError> {
        self.put_json(self.run_key(run_id, name), value).await
    }

    /// Reads any JSON object of a run with its version; `None` when it does not exist.
    pub async fn run_json<T: DeserializeOwned>(
        &self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(T, Version)>, StateError> {
        Ok(self
            .get_json(&self.run_key(run_id, name))
            .await?
            .map(|(v, etag)| (v, etag.map_or(Version::Absent, Version::ETag))))
    }

    /// Writes a run's JSON object only if it is still at `expected`; `false` when another
    /// writer got there first (S3 answered 412), so the caller reads again and decides.
    pub async fn put_run_json_if<T: Serialize>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
        expected: &Version,
    ) -> Result<bool, StateError> {
        self.put_json_if(&self.run_key(run_id, name), value, expected)
            .await
    }

    /// Every JSON object under `runs/{run_id}/{folder}/`, read sixteen at a time; objects that
    /// vanished between the listing and the read are left out.
    pub async fn run_folder<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        folder: &str,
    ) -> Result<Vec<T>, StateError> {
        let prefix = self.run_key(run_id, &format!("{folder}/"));
        let keys: Vec<String> = crate::adapters::aws::list_objects(&self.s3, &self.bucket, &prefix)
            .await
            .map_err(s3_err(format!("list {prefix}")))?
            .into_iter()
            .filter_map(|o| o.key)
            .collect();
        let read: Vec<Option<(T, Option<String>)>> = futures::stream::iter(
            keys.into_iter()
                .map(|key| async move { self.get_json::<T>(&key).await }),
        )
        .buffered(16)
        .try_collect()
        .await?;
        Ok(read.into_iter().flatten().map(|(v, _)| v).collect())
    }
}

impl OutcomeStore for S3State {
    async fn put_outcome(&self, run_id: &str, outcome: &Outcome) -> Result<(), StateError> {
        S3State::put_outcome(self, run_id, outcome).await
    }
}

/// Each call boxes the inherent method's future: the SDK's futures are large, and a flow generic
/// over the port would otherwise carry them inline (a debug build's test thread overflowed its
/// stack on `coverage::read`).
impl RunDocuments for S3State {
    async fn put_run_json<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
    ) -> Result<(), StateError> {
        Box::pin(S3State::put_run_json(self, run_id, name, value)).await
    }

    async fn run_json<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(T, Version)>, StateError> {
        Box::pin(S3State::run_json(self, run_id, name)).await
    }

    async fn put_run_json_if<T: Serialize + Sync>(
        &self,
        run_id: &str,
        name: &str,
        value: &T,
        expected: &Version,
    ) -> Result<bool, StateError> {
        Box::pin(S3State::put_run_json_if(
            self, run_id, name, value, expected,
        ))
        .await
    }

    async fn run_folder<T: DeserializeOwned + Send>(
        &self,
        run_id: &str,
        folder: &str,
    ) -> Result<Vec<T>, StateError> {
        Box::pin(S3State::run_folder(self, run_id, folder)).await
    }

    async fn run_ids(&self) -> Result<Vec<String>, StateError> {
        Box::pin(S3State::run_ids(self)).await
    }

    async fn ledger_bytes(&self, run_id: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Box::pin(S3State::ledger_bytes(self, run_id)).await
    }

    async fn worked(
        &self,
        run_id: &str,
        into: &mut HashMap<ContactKey, WorkedState>,
    ) -> Result<(), StateError> {
        Box::pin(S3State::worked(self, run_id, into)).await
    }

    async fn report(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        Box::pin(S3State::report(self, run_id)).await
    }
}

#[cfg(test)]
mod tests;
