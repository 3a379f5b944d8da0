//! Fuzz target: `vigie::fuzzing::crl_entry_round_trip` (see its documentation for what it checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigie::fuzzing::crl_entry_round_trip(data));
