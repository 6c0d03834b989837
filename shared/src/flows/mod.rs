//! The flows: planning a run, working a message, a backfill's slices, a redrive, a day's
//! and a day's coverage, each over the ports.

pub mod backfill;
pub mod coverage;
pub mod plan;
pub mod redrive;
pub mod scan;
pub mod work;
