//! `cargo +nightly fuzz run sqs_event`: see [`fuzz_checks::sqs_event`] and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::sqs_event(data));
