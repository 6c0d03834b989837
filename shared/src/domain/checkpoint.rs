//! What a run remembers between runs: the checkpoint of automatic runs and the digests of the
//! hours it read (design §4, late objects).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `{STATE_PREFIX}checkpoint.json`: the next arrival hour an automatic run reads, and what the
/// last `LATE_SWEEP` hours read held when they were read (design §4, late objects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next_hour: String,
    pub updated_at: String,
    pub run_id: String,
    /// One entry per hour read in the last `LATE_SWEEP` hours before `next_hour`, oldest first.
    /// Absent from checkpoints written before late objects were swept: those parse as empty.
    #[serde(default)]
    pub hours: Vec<HourDigest>,
}

impl Checkpoint {
    /// `next_hour`, floored to its hour; `None` when it is not a timestamp.
    pub fn next_hour(&self) -> Option<DateTime<Utc>> {
        crate::domain::time::parse_ts(&self.next_hour).map(crate::domain::time::floor_hour)
    }
}

/// What one arrival hour held when a run read it: its object count and the SHA-256 (lowercase
/// hex) of its keys, sorted, each followed by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourDigest {
    /// `YYYY-MM-DDTHH:00:00Z`.
    pub hour: String,
    pub objects: u64,
    pub sha256: String,
}

impl HourDigest {
    /// The digest of an hour's listing; the order of `keys` does not matter.
    pub fn of<'a>(hour: DateTime<Utc>, keys: impl IntoIterator<Item = &'a str>) -> Self {
        use sha2::Digest as _;
        let mut sorted: Vec<&str> = keys.into_iter().collect();
        sorted.sort_unstable();
        let mut sha = sha2::Sha256::new();
        for k in &sorted {
            sha.update(k.as_bytes());
            sha.update(b"\n");
        }
        let sha256 = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        HourDigest {
            hour: crate::domain::time::format_ts(hour),
            objects: sorted.len() as u64,
            sha256,
        }
    }

    pub fn hour(&self) -> Option<DateTime<Utc>> {
        crate::domain::time::parse_ts(&self.hour).map(crate::domain::time::floor_hour)
    }
}
