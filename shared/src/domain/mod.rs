//! The domain: what a CTR, a contact, a run and its records are, and the rules of a run (design
//! §4) as pure functions. No network, no clock, no AWS types.

pub mod checkpoint;
pub mod contacts;
pub mod ctr;
pub mod error;
pub mod ledger;
pub mod matching;
pub mod message;
pub mod metadata;
pub mod metrics;
pub mod orphans;
pub mod recording;
pub mod report;
pub mod time;
pub mod verint;
