//! Fuzz target `update`: see `fuzz/checks.rs` for what it checks.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)] // each target uses one check of the shared file
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::update(data));
