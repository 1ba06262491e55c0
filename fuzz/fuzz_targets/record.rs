//! Fuzz target: `hookrelay::fuzzing::record` (see that module for what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay::fuzzing::record(data));
