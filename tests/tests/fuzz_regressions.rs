//! The fuzzers' findings, replayed on stable: every file of `fuzz/regressions/<target>/` goes
//! through the same calls and invariants as the fuzz target of that name (the functions of
//! `fuzz/src/lib.rs`, included here as a module), so a parser change that panics on an input the
//! fuzzers once reached fails here, without nightly or cargo-fuzz. See docs/fuzzing.md.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod checks;

/// The workspace root: this crate lives in `tests/`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// Runs `check` on every file of `fuzz/regressions/<target>/` and names every file it panicked
/// on. An empty or missing folder fails: the test must not pass by replaying nothing.
fn replay(target: &str, check: fn(&[u8])) {
    let folder = workspace_root().join("fuzz/regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", folder.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{} holds no input to replay",
        folder.display()
    );
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("a regression input is readable");
            catch_unwind(AssertUnwindSafe(|| check(&data)))
                .is_err()
                .then(|| path.display().to_string())
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn every_fuzzed_ctr_object_is_read_without_panic() {
    replay("ctr_reader", checks::ctr_reader);
}

#[test]
fn every_fuzzed_planner_payload_is_accepted_or_rejected_without_panic() {
    replay("manual_payload", checks::manual_payload);
}

#[test]
fn every_fuzzed_sqs_event_is_read_without_panic() {
    replay("sqs_event", checks::sqs_event);
}

#[test]
fn every_fuzzed_queue_message_is_read_without_panic() {
    replay("work_message", checks::work_message);
}

#[test]
fn every_fuzzed_verint_answer_is_judged_without_panic() {
    replay("verint_answers", checks::verint_answers);
}
