//! API robustness: schemathesis (property-based testing from the OpenAPI spec, PyPI) against the
//! real server. It generates valid and invalid requests for every operation of `openapi.yaml` on
//! the admin listener (with the bearer token), and of `openapi-public.yaml` on the public
//! listener, and fails on any 5xx, any answer the spec does not allow (status, media type,
//! headers, body schema), or any invalid request accepted.
//!
//! schemathesis runs from a Python virtual environment with pinned versions ([`PINS`]): the one
//! named by `SCHEMATHESIS_VENV`, or else one the test makes itself under the target directory on
//! its first run (Debian's `python3-venv`, and PyPI). Without python3-venv or PyPI the test fails
//! (it is never skipped). The number of examples per operation is
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

/// The pinned versions. hypothesis is held at 6.130.12: later ones `ast.parse` whole modules,
/// which trips CPython 3.11's "AST constructor recursion depth mismatch" under hypothesis's
/// raised recursion limit.
const PINS: [&str; 2] = ["schemathesis==4.32.5", "hypothesis==6.130.12"];

/// The schemathesis executable: from `SCHEMATHESIS_VENV` when set, else from a virtual
/// environment this test makes once (Debian's `python3 -m venv`, then `pip install` of [`PINS`])
/// under the target directory, remade when the pins change.
fn schemathesis() -> PathBuf {
    let venv = match std::env::var_os("SCHEMATHESIS_VENV") {
        Some(v) => PathBuf::from(v),
        None => provision(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv")),
    };
    let bin = venv.join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "{} does not exist: SCHEMATHESIS_VENV must be a virtual environment with {} installed",
        bin.display(),
        PINS.join(" ")
    );
    bin
}

/// Makes (or reuses) the virtual environment at `dir`; one test thread at a time.
fn provision(dir: &Path) -> PathBuf {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONCE.lock().unwrap_or_else(|p| p.into_inner());
    let stamp = dir.join("vigie-pins");
    let wanted = PINS.join(" ");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return dir.to_path_buf();
    }
    let started = Instant::now();
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(dir)
        .status()
        .expect("python3 (Debian: apt-get install python3-venv) makes the schemathesis venv");
    assert!(
        status.success(),
        "python3 -m venv {} failed: install python3-venv",
        dir.display()
    );
    let status = Command::new(dir.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PINS)
        .status()
        .expect("pip of the new virtual environment");
    assert!(
        status.success(),
        "pip install {wanted} failed (it needs PyPI, or set SCHEMATHESIS_VENV to a venv holding them)"
    );
    std::fs::write(&stamp, &wanted).expect("write the pins stamp");
    eprintln!(
        "schemathesis venv made in {} ({:.0?})",
        dir.display(),
        started.elapsed()
    );
    dir.to_path_buf()
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
