//! The adapters: the ports spoken over the network, to S3, SQS, Connect, Secrets Manager and
//! Verint. The only layer that names an AWS SDK or `reqwest` type.

pub mod aws;
pub mod connect;
pub mod ctr_source;
pub mod ledger;
pub mod orphans;
pub mod recordings;
pub mod sqs;
pub mod sqs_redrive;
pub mod state;
pub mod verint;
