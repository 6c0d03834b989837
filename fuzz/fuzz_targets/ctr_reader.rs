//! `cargo +nightly fuzz run ctr_reader`: see [`fuzz_checks::ctr_reader`] and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::ctr_reader(data));
