//! The committed fuzzing corpora (`fuzz/corpus/<target>/`), replayed through the functions the
//! cargo-fuzz targets call (`vigie::fuzzing`), without fuzzing: every seed from a real client,
//! and every input that once crashed a target, must go through without a panic.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no corpus", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("corpus file");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{} panics on {}", target, f.display());
        }
    }
}

#[test]
fn ocsp_request_corpus() {
    replay("ocsp_request", vigie::fuzzing::ocsp_request);
}

#[test]
fn get_path_corpus() {
    replay("get_path", vigie::fuzzing::get_path);
}

#[test]
fn ingest_json_corpus() {
    replay("ingest_json", vigie::fuzzing::ingest_json);
}

#[test]
fn certificate_upload_corpus() {
    replay("certificate_upload", vigie::fuzzing::certificate_upload);
}

#[test]
fn index_line_corpus() {
    replay("index_line", vigie::fuzzing::index_line);
}

#[test]
fn crl_entry_round_trip_corpus() {
    replay("crl_entry_round_trip", vigie::fuzzing::crl_entry_round_trip);
}

/// The seeds from real clients are accepted, not merely survived: a parser that refused every
/// request would pass the replay above.
#[test]
fn real_client_requests_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ocsp_request");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("corpus") {
        let path = e.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if ["openssl-", "gnutls-", "java-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            let der = std::fs::read(&path).expect("seed");
            let req = vigie::ocsp::request::parse(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!req.queries.is_empty(), "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 10, "seeds from openssl, GnuTLS and Java: {seen}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/get_path");
    for e in std::fs::read_dir(&dir).expect("corpus") {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("a path is text");
        let der = vigie::ocsp::request::decode_get_path(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        vigie::ocsp::request::parse(&der).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
