//! Fuzz target: `vigie::fuzzing::ocsp_request` (see its documentation for what it checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigie::fuzzing::ocsp_request(data));
