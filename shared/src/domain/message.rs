//! The work-queue message (design §5): one per missing contact, written by the planner and read
//! by the worker. Both sides use this type, so they cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::domain::ctr::S3Location;

/// The only message version this code writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkMessage {
    pub v: u32,
    pub run_id: String,
    pub contact_id: String,
    pub instance_id: String,
    pub initiation_timestamp: String,
    pub disconnect_timestamp: String,
    /// The contact's S3 recordings that are not `DELETED`, in design §4 order (or its redacted
    /// audio, design §10).
    pub recordings: Vec<QueuedRecording>,
    pub enqueued_at: String,
}

/// One recording of a message: where it is and, when the CTR gave the recording's start and
/// stop, how long it should last (design §10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRecording {
    pub bucket: String,
    pub key: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_seconds"
    )]
    pub expected_seconds: Option<f64>,
}

impl QueuedRecording {
    pub fn new(location: S3Location, expected_seconds: Option<f64>) -> Self {
        QueuedRecording {
            bucket: location.bucket,
            key: location.key,
            expected_seconds,
        }
    }

    pub fn location(&self) -> S3Location {
        S3Location {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
        }
    }
}

/// Seconds as a whole number when they are one (`120`, not `120.0`).
fn whole_seconds<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) if x.fract() == 0.0 && *x >= 0.0 && *x < 1e15 => s.serialize_u64(*x as u64),
        Some(x) => s.serialize_f64(*x),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("message body is not a work message")]
    Json(#[source] serde_json::Error),
    #[error("message version {0} is not supported (expected {MESSAGE_VERSION})")]
    Version(u32),
    #[error("message field {0} is invalid")]
    Field(&'static str),
}

impl WorkMessage {
    /// Parses and checks a body; the error names what is wrong.
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        let m: WorkMessage = serde_json::from_str(body).map_err(MessageError::Json)?;
        if m.v != MESSAGE_VERSION {
            return Err(MessageError::Version(m.v));
        }
        if m.contact_id.trim().is_empty() {
            return Err(MessageError::Field("contact_id"));
        }
        if m.recordings.is_empty()
            || m.recordings
                .iter()
                .any(|r| r.bucket.is_empty() || r.key.is_empty())
        {
            return Err(MessageError::Field("recordings"));
        }
        if m.recordings.iter().any(|r| {
            r.expected_seconds
                .is_some_and(|s| !s.is_finite() || s < 0.0)
        }) {
            return Err(MessageError::Field("recordings.expected_seconds"));
        }
        if crate::domain::time::parse_ts(&m.initiation_timestamp).is_none() {
            return Err(MessageError::Field("initiation_timestamp"));
        }
        if crate::domain::time::parse_ts(&m.disconnect_timestamp).is_none() {
            return Err(MessageError::Field("disconnect_timestamp"));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"v":1,"run_id":"r","contact_id":"c","instance_id":"i","initiation_timestamp":"2024-05-14T10:00:00Z","disconnect_timestamp":"2024-05-14T10:05:00Z","recordings":[{"bucket":"b","key":"k:1"}],"enqueued_at":"2024-05-14T11:00:00Z"}"#;

    #[test]
    fn a_message_serialises_with_exactly_the_contract_fields_in_order() {
        let m = WorkMessage::parse(BODY).expect("valid");
        assert_eq!(serde_json::to_string(&m).expect("serialises"), BODY);
    }

    #[test]
    fn expected_seconds_is_carried_when_known_and_absent_otherwise() {
        let body = BODY.replace(
            r#"[{"bucket":"b","key":"k:1"}]"#,
            r#"[{"bucket":"b","key":"k:1","expected_seconds":120},{"bucket":"b","key":"k:2"}]"#,
        );
        let m = WorkMessage::parse(&body).expect("valid");
        assert_eq!(m.recordings[0].expected_seconds, Some(120.0));
        assert_eq!(m.recordings[1].expected_seconds, None);
        assert_eq!(serde_json::to_string(&m).expect("serialises"), body);
        let negative = body.replace("120", "-3");
        assert!(
            WorkMessage::parse(&negative)
                .expect_err("negative")
                .to_string()
                .contains("expected_seconds")
        );
    }

    #[test]
    fn a_bad_body_names_what_is_wrong() {
        assert!(matches!(
            WorkMessage::parse("nope"),
            Err(MessageError::Json(_))
        ));
        let v2 = BODY.replace("\"v\":1", "\"v\":2");
        assert_eq!(
            WorkMessage::parse(&v2).expect_err("v2").to_string(),
            "message version 2 is not supported (expected 1)"
        );
        let no_rec = BODY.replace(r#"[{"bucket":"b","key":"k:1"}]"#, "[]");
        assert!(
            WorkMessage::parse(&no_rec)
                .expect_err("empty")
                .to_string()
                .contains("recordings")
        );
    }
}
