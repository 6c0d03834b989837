//! Call recovery for Amazon Connect → Verint. The library is layered; a file's folder names its
//! layer, and every arrow points down this list (docs/design.md section 2):
//!
//! - [`app`]: each side's wiring, built once per process from the configuration and the SDK
//!   clients. The Lambda functions and `recoveryctl` start here.
//! - [`flows`]: what a run does (plan, work, backfill, redrive, coverage, orphans), written over
//!   the ports only.
//! - [`adapters`]: the ports spoken over the network: S3, SQS, Connect, Secrets Manager and
//!   Verint's HTTP interface. The only layer that names an AWS SDK or `reqwest` type.
//! - [`ports`]: the traits the flows need of the world, each with an in-memory fake for tests.
//! - [`domain`]: CTRs, contacts, the rules of a run, the formats of messages, reports and
//!   ledgers. Pure: no network, no clock, no AWS types.
//! - [`config`]: the settings every layer reads, from the environment.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod flows;
pub mod ports;

pub use config::Config;
