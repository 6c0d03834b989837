//! `cargo +nightly fuzz run work_message`: see [`fuzz_checks::work_message`] and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::work_message(data));
