//! Fuzz target: `hookrelay::fuzzing::protocol` (see that module for what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay::fuzzing::protocol(data));
