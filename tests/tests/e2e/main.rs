//! End-to-end tests against the local stack: moto (S3, SQS) started by `scripts/stack.sh up`,
//! and a Verint + Connect simulator started in each test. One binary, a module per area.

mod backfilling;
mod contacts;
mod coverage;
mod limits;
mod links;
mod planning;
mod queueing;
mod real_data;
mod recordings;
mod redriving;
mod support;
mod verifying;
mod working;
