//! Each side's wiring: what the planner and the worker build once per process from the
//! configuration and the SDK clients. The Lambda functions and `recoveryctl` start from here, so
//! the CLI needs no function crate to run a side.

mod planner;
mod worker;

pub use planner::{PlannerApp, report_metrics};
pub use worker::{WorkerApp, WorkerOverAws};
