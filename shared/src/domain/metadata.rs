//! The `metadata` part of a recovered call's ingest (design §6), as Verint reads it.

use serde::{Deserialize, Serialize};

/// The `metadata` part (design §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub amazon_contact_id: String,
    pub instance_arn: String,
    pub channel: String,
    pub initiation_method: String,
    pub initiation_timestamp: String,
    pub disconnect_timestamp: String,
    pub agent: Option<Agent>,
    pub queue: Option<Queue>,
    pub customer_endpoint: Option<Endpoint>,
    pub system_endpoint: Option<Endpoint>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub recordings: Vec<RecordingMeta>,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub connected_to_agent_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub id: String,
    pub enqueue_timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordingMeta {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub run_id: String,
    pub recovered_at: String,
    pub screens_expected: bool,
}
