//! `cargo +nightly fuzz run manual_payload`: see [`fuzz_checks::manual_payload`] and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::manual_payload(data));
