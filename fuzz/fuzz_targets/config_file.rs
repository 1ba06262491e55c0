//! Fuzz target: `hookrelay::fuzzing::config_file` (see that module for what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay::fuzzing::config_file(data));
