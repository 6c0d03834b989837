//! Call recovery for Amazon Connect → Verint: the domain (CTRs, contacts, the matching rules of
//! a run), the adapters at the edge (S3, SQS, Connect, Verint), and the two flows the functions
//! and `recoveryctl` share: planning a run and working a message.

pub mod app;
pub mod aws;
pub mod backfill;
pub mod config;
pub mod connect;
pub mod contacts;
pub mod coverage;
pub mod ctr;
pub mod error;
pub mod ledger;
pub mod matching;
pub mod message;
pub mod metrics;
pub mod orphans;
pub mod plan;
pub mod queue;
pub mod redrive;
pub mod report;
pub mod source;
pub mod state;
pub mod time;
pub mod verint;
pub mod work;

pub use config::Config;
