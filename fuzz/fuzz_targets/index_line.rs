//! Fuzz target: `vigie::fuzzing::index_line` (see its documentation for what it checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigie::fuzzing::index_line(data));
