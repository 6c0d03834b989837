//! `cargo +nightly fuzz run verint_answers`: see [`fuzz_checks::verint_answers`] and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::verint_answers(data));
