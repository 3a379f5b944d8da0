//! The one golden-file helper: every byte a client can see (OCSP responses, CRLs, JSON problem
//! bodies) built from fixed inputs is compared with its file under `tests/golden/`.
//!
//! `VIGIE_BLESS=1` (the only bless variable) rewrites the files instead of comparing: run it after
//! an intended change, then review the diff (`openssl ocsp -respin … -resp_text`, `openssl crl
//! -inform DER -text`, or the JSON itself).
//!
//! Uses nothing but `std`, so the library's own unit tests (`src/crl/tests.rs`) include this very
//! file (`#[path]`) instead of keeping a copy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The environment variable that rewrites golden files.
pub const BLESS: &str = "VIGIE_BLESS";

/// `tests/golden/`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Whether this run rewrites the golden files.
pub fn blessing() -> bool {
    std::env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Compares `bytes` with `tests/golden/{name}` (e.g. `ocsp/good.der`, `errors/not-found.json`),
/// or writes them there under `VIGIE_BLESS=1`. Panics with the path and what to do on a
/// difference or a missing file.
pub fn check(name: &str, bytes: &[u8]) {
    let path = dir().join(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("a golden file has a directory"))
            .expect("golden directory created");
        std::fs::write(&path, bytes).expect("golden file written");
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with {BLESS}=1 to create it); got {} octets: {}",
            path.display(),
            bytes.len(),
            printable(bytes)
        )
    });
    assert!(
        want == bytes,
        "{} differs from what was built (client-visible bytes changed); inspect, then re-run \
         with {BLESS}=1 if intended.\n  golden: {}\n  built:  {}",
        path.display(),
        printable(&want),
        printable(bytes)
    );
}

/// Text as text, anything else as (truncated) hex: for messages.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let hex: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
            if bytes.len() > 64 {
                format!("{hex}…")
            } else {
                hex
            }
        }
    }
}
