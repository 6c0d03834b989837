//! CloudWatch metrics in the Embedded Metric Format: one JSON line on stdout per flush, which
//! CloudWatch Logs turns into metrics. Namespace `CallRecovery`, dimension `Function`; `Failed`
//! also by `Reason`. The names are a contract with the alarms and dashboard in `infra/`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub(crate) const NAMESPACE: &str = "CallRecovery";

/// Every metric name the functions emit.
pub mod names {
    pub const CTR_OBJECTS: &str = "CtrObjects";
    pub const CTR_RECORDS: &str = "CtrRecords";
    /// CTR records read by automatic runs only: what the no-CTR alarm watches (a manual run or a
    /// backfill reading history must not hide a Firehose stream that stopped).
    pub const AUTOMATIC_CTR_RECORDS: &str = "AutomaticCtrRecords";
    pub const CTR_MALFORMED: &str = "CtrMalformed";
    pub const ELIGIBLE: &str = "Eligible";
    pub const IN_VERINT: &str = "InVerint";
    pub const NOT_SETTLED: &str = "NotSettled";
    pub const UNRECOVERABLE: &str = "Unrecoverable";
    pub const MISSING: &str = "Missing";
    pub const ENQUEUED: &str = "Enqueued";
    pub const RUN_DURATION_MS: &str = "RunDurationMs";
    pub const RECOVERED: &str = "Recovered";
    /// Recordings ingested shorter than their CTR says (design §10).
    pub const TRUNCATED_RECORDINGS: &str = "TruncatedRecordings";
    /// Messages waiting for an archived recording's restore.
    pub const RESTORING: &str = "Restoring";
    pub(crate) const ALREADY_PRESENT: &str = "AlreadyPresent";
    pub const FAILED: &str = "Failed";
    pub const BYTES_STREAMED: &str = "BytesStreamed";
    pub const TRANSFER_SECONDS: &str = "TransferSeconds";
    pub const COLD_START: &str = "ColdStart";
    /// `in_verint / eligible` of a run, in percent (design §9).
    pub(crate) const CAPTURE_RATE: &str = "CaptureRate";
    pub(crate) const ORPHANS: &str = "Orphans";
    /// 1 per successful automatic run that was not a dry run: the heartbeat alarm's metric.
    pub(crate) const AUTOMATIC_RUN_SUCCEEDED: &str = "AutomaticRunSucceeded";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Count,
    Bytes,
    Seconds,
    Milliseconds,
    Percent,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

/// Metrics gathered during one invocation, flushed as EMF documents.
#[derive(Debug, Default)]
pub struct Metrics {
    function: String,
    values: BTreeMap<&'static str, (f64, Unit)>,
    failed_by_reason: BTreeMap<String, f64>,
    /// Values of one Connect instance (design §11), emitted with the `InstanceId` dimension
    /// beside the totals above.
    by_instance: BTreeMap<String, BTreeMap<&'static str, (f64, Unit)>>,
}

impl Metrics {
    pub fn new(function: &str) -> Self {
        Metrics {
            function: function.into(),
            ..Default::default()
        }
    }

    pub(crate) fn add(&mut self, name: &'static str, value: f64, unit: Unit) {
        let entry = self.values.entry(name).or_insert((0.0, unit));
        entry.0 += value;
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        self.add(name, n as f64, Unit::Count);
    }

    /// A value of one instance (design §11).
    pub(crate) fn add_for(&mut self, instance: &str, name: &'static str, value: f64, unit: Unit) {
        let entry = self
            .by_instance
            .entry(instance.to_owned())
            .or_default()
            .entry(name)
            .or_insert((0.0, unit));
        entry.0 += value;
    }

    /// One failure, by its reason category (low cardinality).
    pub fn failed(&mut self, reason: &str) {
        self.count(names::FAILED, 1);
        *self.failed_by_reason.entry(reason.into()).or_insert(0.0) += 1.0;
    }

    /// The EMF documents for what was gathered.
    pub fn documents(&self, timestamp_ms: i64) -> Vec<Value> {
        let mut docs = Vec::new();
        if !self.values.is_empty() {
            let definitions: Vec<Value> = self
                .values
                .iter()
                .map(|(n, (_, u))| json!({"Name": n, "Unit": u.as_str()}))
                .collect();
            let mut doc = json!({
                "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": definitions}]},
                "Function": self.function,
            });
            for (n, (v, _)) in &self.values {
                doc[*n] = json!(v);
            }
            docs.push(doc);
        }
        for (instance, values) in &self.by_instance {
            let definitions: Vec<Value> = values
                .iter()
                .map(|(n, (_, u))| json!({"Name": n, "Unit": u.as_str()}))
                .collect();
            let mut doc = json!({
                "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE, "Dimensions": [["Function", "InstanceId"]],
                    "Metrics": definitions}]},
                "Function": self.function,
                "InstanceId": instance,
            });
            for (n, (v, _)) in values {
                doc[*n] = json!(v);
            }
            docs.push(doc);
        }
        for (reason, n) in &self.failed_by_reason {
            docs.push(json!({
                "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE, "Dimensions": [["Function", "Reason"]],
                    "Metrics": [{"Name": names::FAILED, "Unit": "Count"}]}]},
                "Function": self.function, "Reason": reason, names::FAILED: n,
            }));
        }
        docs
    }

    /// Prints the documents on stdout, one line each, and clears what was gathered.
    pub fn flush(&mut self) {
        for doc in self.documents(chrono::Utc::now().timestamp_millis()) {
            println!("{doc}");
        }
        self.values.clear();
        self.failed_by_reason.clear();
        self.by_instance.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_every_value_under_the_namespace_and_dimension() {
        let mut m = Metrics::new("worker");
        m.count(names::RECOVERED, 2);
        m.add(names::BYTES_STREAMED, 1024.0, Unit::Bytes);
        m.failed("verint_rejected");
        let docs = m.documents(1);
        assert_eq!(docs.len(), 2);
        let main = &docs[0];
        assert_eq!(main["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            main["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        assert_eq!(main["Function"], "worker");
        assert_eq!(main["Recovered"], 2.0);
        assert_eq!(main["BytesStreamed"], 1024.0);
        assert_eq!(main["Failed"], 1.0);
        for def in main["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("array")
        {
            let name = def["Name"].as_str().expect("name");
            assert!(main.get(name).is_some(), "{name} declared but absent");
        }
        assert_eq!(docs[1]["Reason"], "verint_rejected");
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Reason"]])
        );
    }
}
