//! API robustness: schemathesis (property-based testing from the OpenAPI spec, PyPI) against the
//! real server. It generates valid and invalid requests for every operation of `openapi.yaml` on
//! the admin listener (with the bearer token), and of `openapi-public.yaml` on the public
//! listener, and fails on any 5xx, any answer the spec does not allow (status, media type,
//! headers, body schema), or any invalid request accepted.
//!
//! schemathesis runs from a Python virtual environment: `.ci/run` makes it (pinned version) and
//! exports its directory as `SCHEMATHESIS_VENV`; on a workstation:
//!
//! ```text
//! python3 -m venv /opt/vigie-venv && /opt/vigie-venv/bin/pip install schemathesis==4.32.5 hypothesis==6.130.12
//! SCHEMATHESIS_VENV=/opt/vigie-venv cargo test --release --test schemathesis
//! ```
//!
//! Without it the test fails (it is never skipped). The number of examples per operation is
//! bounded and the seed fixed, so a run stays well under two minutes and a failure can be
//! reproduced with the command the test prints.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "25";
/// Fixed, so CI runs are reproducible; change it to explore further.
const SEED: &str = "15";

fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("SCHEMATHESIS_VENV").unwrap_or_else(|| {
        panic!(
            "SCHEMATHESIS_VENV is not set: it names the Python virtual environment holding \
             schemathesis (.ci/run creates it). On a workstation: python3 -m venv /opt/vigie-venv \
             && /opt/vigie-venv/bin/pip install schemathesis==4.32.5 hypothesis==6.130.12, then \
             SCHEMATHESIS_VENV=/opt/vigie-venv cargo test --release --test schemathesis"
        )
    });
    let bin = Path::new(&venv).join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "{} does not exist: SCHEMATHESIS_VENV must be a virtual environment with schemathesis \
         installed (pip install schemathesis==4.32.5 hypothesis==6.130.12)",
        bin.display()
    );
    bin
}

fn run(spec: &str, base: &str, extra: &[&str]) {
    let bin = schemathesis();
    let work = tempfile::tempdir().expect("tempdir");
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec);
    let settings = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let mut args: Vec<String> = vec![
        "--config-file".into(),
        settings.display().to_string(),
        "run".into(),
        spec_path.display().to_string(),
        "--url".into(),
        base.into(),
        "--checks".into(),
        "all".into(),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--max-examples".into(),
        MAX_EXAMPLES.into(),
        "--seed".into(),
        SEED.into(),
        "--workers".into(),
        "2".into(),
        "--request-timeout".into(),
        "10".into(),
        "--generation-database".into(),
        "none".into(),
        "--no-color".into(),
        "--output-truncate".into(),
        "false".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let started = Instant::now();
    let out = Command::new(&bin)
        .args(&args)
        .current_dir(work.path())
        .env("NO_COLOR", "1")
        // tests/schemathesis_hooks.py: how to send application/ocsp-request bodies.
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        )
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("schemathesis runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "schemathesis on {spec} ({:.1} s):\n{said}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found problems in {spec} ({}):\n{said}\nreproduce: {} {}",
        out.status,
        bin.display(),
        args.join(" ")
    );
}

#[test]
fn the_admin_api_holds_to_openapi_yaml() {
    let s = Server::start_with(&Options::ingest());
    let auth = format!("Authorization: Bearer {TOKEN}");
    run("openapi.yaml", &s.admin, &["-H", &auth]);
    // Still alive and consistent after the run.
    let r = ureq::get(&s.admin_url("/healthz")).call().expect("alive");
    assert_eq!(r.status(), 200);
}

#[test]
fn the_public_listener_holds_to_openapi_public_yaml() {
    let s = Server::start();
    run("openapi-public.yaml", &s.public, &[]);
    let r = ureq::get(&s.url("/healthz")).call().expect("alive");
    assert_eq!(r.status(), 200);
}
