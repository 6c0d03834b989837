//! The `metadata` part of an ingest (design §6), built from Connect's description of the contact
//! and the work message.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::ctr::S3Location;
use crate::domain::message::WorkMessage;
use crate::domain::metadata::{Agent, Endpoint, Metadata, Queue, RecordingMeta, Recovery};
use crate::domain::time::{format_ts, parse_ts};
use crate::ports::connect::{DescribedContact, DescribedEndpoint};

/// Screens are cached by Verint for this long after a call ends.
pub(crate) const SCREEN_CACHE: TimeDelta = TimeDelta::hours(2);

/// The `metadata` part, from `DescribeContact` (ids as the API gives them) and the message.
pub(crate) fn build_metadata(
    contact: &DescribedContact,
    message: &WorkMessage,
    recordings: &[(S3Location, u64)],
    now: DateTime<Utc>,
) -> Metadata {
    let disconnect = contact
        .disconnect
        .map(format_ts)
        .unwrap_or_else(|| message.disconnect_timestamp.clone());
    let screens_expected = parse_ts(&disconnect).is_some_and(|d| now - d < SCREEN_CACHE);
    Metadata {
        amazon_contact_id: contact_id_of(contact, message),
        instance_arn: instance_arn_of(contact, message),
        channel: contact.channel.clone().unwrap_or_else(|| "VOICE".into()),
        initiation_method: contact.initiation_method.clone().unwrap_or_default(),
        initiation_timestamp: contact
            .initiation
            .map(format_ts)
            .unwrap_or_else(|| message.initiation_timestamp.clone()),
        disconnect_timestamp: disconnect,
        agent: contact.agent.as_ref().and_then(|a| {
            Some(Agent {
                id: a.id.clone()?,
                connected_to_agent_timestamp: a.connected.map(format_ts),
            })
        }),
        queue: contact.queue.as_ref().and_then(|q| {
            Some(Queue {
                id: q.id.clone()?,
                enqueue_timestamp: Some(format_ts(q.enqueued?)),
            })
        }),
        customer_endpoint: endpoint_of(contact.customer_endpoint.as_ref()),
        system_endpoint: endpoint_of(contact.system_endpoint.as_ref()),
        attributes: contact.attributes.clone(),
        recordings: recordings_meta(recordings),
        recovery: Recovery {
            run_id: message.run_id.clone(),
            recovered_at: format_ts(now),
            screens_expected,
        },
    }
}

/// The API's spelling of the id, unless it names another contact (ids compare
/// case-insensitively): the message's id is the one being recovered.
fn contact_id_of(contact: &DescribedContact, message: &WorkMessage) -> String {
    contact
        .id
        .as_deref()
        .filter(|id| id.eq_ignore_ascii_case(&message.contact_id))
        .unwrap_or(&message.contact_id)
        .to_owned()
}

/// The instance ARN: the contact's ARN up to `/contact/`, or the message's instance id.
fn instance_arn_of(contact: &DescribedContact, message: &WorkMessage) -> String {
    contact
        .arn
        .as_deref()
        .and_then(|arn| {
            arn.split_once("/contact/")
                .map(|(instance, _)| instance.to_owned())
        })
        .unwrap_or_else(|| message.instance_id.clone())
}

/// An endpoint with an address; `None` without one.
fn endpoint_of(e: Option<&DescribedEndpoint>) -> Option<Endpoint> {
    let e = e?;
    Some(Endpoint {
        kind: e.kind.clone().unwrap_or_default(),
        address: e.address.clone()?,
    })
}

/// Each recording's place and size, as the metadata lists them.
fn recordings_meta(recordings: &[(S3Location, u64)]) -> Vec<RecordingMeta> {
    recordings
        .iter()
        .map(|(l, bytes)| RecordingMeta {
            bucket: l.bucket.clone(),
            key: l.key.clone(),
            bytes: *bytes,
            content_type: "audio/wav".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> WorkMessage {
        WorkMessage::parse(r#"{"v":1,"run_id":"run-1","contact_id":"c-1","instance_id":"inst","initiation_timestamp":"2024-05-14T10:00:00Z","disconnect_timestamp":"2024-05-14T10:05:00Z","recordings":[{"bucket":"rec","key":"a:b.wav"}],"enqueued_at":"2024-05-14T11:00:00Z"}"#).expect("valid")
    }

    fn contact() -> DescribedContact {
        DescribedContact::example()
    }

    #[test]
    fn metadata_is_built_from_describe_contact_and_the_message() {
        let rec = (
            S3Location {
                bucket: "rec".into(),
                key: "a:b.wav".into(),
            },
            42,
        );
        let now = parse_ts("2024-05-14T11:00:00Z").expect("valid");
        let m = build_metadata(&contact(), &message(), &[rec], now);
        let json = serde_json::to_value(&m).expect("serialises");
        assert_eq!(json["amazonContactId"], "c-1");
        assert_eq!(
            json["instanceArn"],
            "arn:aws:connect:eu-west-2:123456789012:instance/inst"
        );
        assert_eq!(json["channel"], "VOICE");
        assert_eq!(json["initiationMethod"], "INBOUND");
        assert_eq!(json["initiationTimestamp"], "2024-05-14T10:00:00Z");
        assert_eq!(json["disconnectTimestamp"], "2024-05-14T10:05:00Z");
        assert_eq!(
            json["agent"],
            serde_json::json!({"id": "agent-9", "connectedToAgentTimestamp": "2024-05-14T10:00:30Z"})
        );
        assert_eq!(
            json["queue"],
            serde_json::json!({"id": "queue-3", "enqueueTimestamp": "2024-05-14T10:00:10Z"})
        );
        assert_eq!(
            json["customerEndpoint"],
            serde_json::json!({"type": "TELEPHONE_NUMBER", "address": "+441234567890"})
        );
        assert_eq!(json["systemEndpoint"], serde_json::Value::Null);
        assert_eq!(
            json["attributes"],
            serde_json::json!({"customerName": "Ada"})
        );
        assert_eq!(
            json["recordings"],
            serde_json::json!([{"bucket": "rec", "key": "a:b.wav", "bytes": 42, "contentType": "audio/wav"}])
        );
        assert_eq!(
            json["recovery"],
            serde_json::json!({"runId": "run-1", "recoveredAt": "2024-05-14T11:00:00Z", "screensExpected": true})
        );
    }

    #[test]
    fn screens_are_expected_only_within_two_hours_of_the_call_ending() {
        let at = |s: &str| {
            build_metadata(&contact(), &message(), &[], parse_ts(s).expect("valid"))
                .recovery
                .screens_expected
        };
        assert!(at("2024-05-14T12:04:59Z"));
        assert!(!at("2024-05-14T12:05:00Z"));
    }

    #[test]
    fn an_abandoned_call_has_null_agent_and_queue() {
        let bare = DescribedContact {
            id: Some("c-1".into()),
            channel: Some("VOICE".into()),
            ..DescribedContact::default()
        };
        let m = build_metadata(
            &bare,
            &message(),
            &[],
            parse_ts("2024-05-14T11:00:00Z").expect("valid"),
        );
        assert_eq!((m.agent, m.queue), (None, None));
        assert_eq!(m.initiation_timestamp, "2024-05-14T10:00:00Z");
        assert_eq!(m.instance_arn, "inst");
    }
}
