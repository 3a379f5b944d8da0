//! Fuzz target: `vigie::fuzzing::get_path` (see its documentation for what it checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigie::fuzzing::get_path(data));
