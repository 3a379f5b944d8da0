//! End to end: the real `vigie` binary (built beside this test by `cargo test --release
//! --workspace`) serves a fresh demo on ephemeral ports, and `vigie-load` runs short OCSP loads
//! against it — zero wrong answers expected — then one with a lying population, whose wrong
//! answers must be caught, then the mixed scenario (CRLs, ingest, visibility). Also checks that the seed's certificate factory issues certificates
//! the demo CAs really signed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `vigie` binary: target/<profile>/vigie, next to target/<profile>/deps/<this test>.
fn vigie_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(format!("vigie{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo test --release --workspace` (or `cargo build --release`) from the repository root",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    public: String,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo(dir: &Path) {
    let out = Command::new(vigie_binary())
        .args(["demo", "--no-serve", "--ca-bits", "2048", "--dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .expect("vigie demo runs");
    assert!(
        out.status.success(),
        "vigie demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serve(dir: &Path) -> Server {
    let mut child = Command::new(vigie_binary())
        .args(["serve", "--config"])
        .arg(dir.join("vigie.toml"))
        .env("VIGIE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigie serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut public = String::new();
    let mut admin = String::new();
    while public.is_empty() || admin.is_empty() {
        assert!(Instant::now() < deadline, "vigie did not start");
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = line.strip_prefix("listening public ") {
                    public = a.trim().to_owned();
                } else if let Some(a) = line.strip_prefix("listening admin ") {
                    admin = a.trim().to_owned();
                }
            }
            _ => panic!("vigie exited before listening"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        public,
        admin,
    }
}

fn load(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigie-load"))
        .args(args)
        .output()
        .expect("vigie-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results line:\n{stdout}\n{stderr}"));
    let json = std::fs::read(Path::new(dir).join("result.json")).expect("result.json");
    let html = std::fs::read_to_string(Path::new(dir).join("report.html")).expect("report.html");
    assert!(html.contains("<svg"), "the report has plots");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&json).expect("result.json parses"),
        format!("{stdout}\n{stderr}"),
    )
}

#[test]
fn ocsp_scenarios_against_the_real_server_and_seed_certificates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    demo(&dir);
    let server = serve(&dir);
    let d = dir.to_str().expect("utf-8 path");
    let results = tmp.path().join("results");

    // POST and GET, cached, with good/revoked/unknown, signatures verified on a large sample.
    let out1 = results.join("cached");
    let (code, r, text) = load(&[
        "ocsp",
        "--demo-dir",
        d,
        "--url",
        &server.public,
        "-c",
        "4",
        "-d",
        "2s",
        "--warmup",
        "500ms",
        "--statuses",
        "good=0.6,revoked=0.3,unknown=0.1",
        "--verify-rate",
        "0.2",
        "--hash",
        "mixed",
        "-q",
        "--out",
        out1.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(r["totals"]["wrong"], 0, "{text}");
    assert_eq!(r["totals"]["errors"], 0, "{text}");
    assert!(
        r["totals"]["requests"].as_u64().unwrap_or(0) > 100,
        "{text}"
    );
    assert!(r["signatures_verified"].as_u64().unwrap_or(0) > 0, "{text}");
    assert_eq!(r["kinds"].as_array().map(Vec::len), Some(2), "POST and GET");

    // Nonces, open loop: every answer signed afresh and echoing its nonce.
    let out2 = results.join("nonce");
    let (code, r, text) = load(&[
        "ocsp",
        "--demo-dir",
        d,
        "--url",
        &server.public,
        "--nonce",
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--rate",
        "200",
        "-q",
        "--out",
        out2.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(r["totals"]["wrong"], 0, "{text}");
    assert!(
        r["model"]
            .as_str()
            .is_some_and(|m| m.starts_with("open loop")),
        "{text}"
    );

    // A population that lies (revoked certificates said to be good): caught as wrong answers.
    let lying = tmp.path().join("lying.jsonl");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("pki/manifest.json")).expect("demo manifest"),
    )
    .expect("manifest parses");
    let mut lines = String::new();
    for c in manifest["certs"].as_array().expect("certs") {
        lines.push_str(&format!(
            "{{\"ca\":{},\"serial\":{},\"status\":\"good\"}}\n",
            c["ca_id"], c["serial_hex"]
        ));
    }
    std::fs::write(&lying, lines).expect("write");
    let out3 = results.join("lying");
    let (code, r, text) = load(&[
        "ocsp",
        "--demo-dir",
        d,
        "--url",
        &server.public,
        "--population",
        lying.to_str().expect("utf-8"),
        "--statuses",
        "good=1",
        "-c",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "-q",
        "--out",
        out3.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "wrong answers give exit status 2: {text}");
    assert!(r["totals"]["wrong"].as_u64().unwrap_or(0) > 0, "{text}");
    assert!(
        text.contains("status revoked where good was expected"),
        "the message names the mismatch: {text}"
    );
    // The mixed scenario, briefly: OCSP, conditional CRLs, issuance and revocation through the
    // ingest API (token from the demo directory), revocation-to-visibility measured.
    let out4 = results.join("mixed");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mixed.toml");
    let (code, r, text) = load(&[
        "mixed",
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "--demo-dir",
        d,
        "--url",
        &server.public,
        "--admin",
        &server.admin,
        "-c",
        "8",
        "-d",
        "2s",
        "--warmup",
        "0s",
        "-q",
        "--out",
        out4.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(r["totals"]["wrong"], 0, "{text}");
    assert_eq!(r["totals"]["errors"], 0, "{text}");
    assert!(
        r["visibility"]["measured"].as_u64().unwrap_or(0) > 0,
        "revocations were probed: {text}"
    );
    drop(server);
    the_factory_issues_certificates_the_demo_cas_signed(&dir);
}

/// On the same demo (key generation is the slow part of this test).
fn the_factory_issues_certificates_the_demo_cas_signed(dir: &Path) {
    let f = vigie_load::seed::CertFactory::from_demo(dir, &[], vigie_load::seed::KeyType::P256)
        .expect("factory");
    let issuers = vigie_load::issuers::Issuers::from_demo_dir(dir).expect("issuers");
    let mut serials = std::collections::HashSet::new();
    for i in 0..6 {
        let c = f.issue(i).expect("issues");
        let x = openssl::x509::X509::from_pem(c.pem.as_bytes()).expect("PEM certificate");
        let ca = &issuers.cas[c.ca as usize];
        assert!(
            x.verify(&ca.cert.public_key().expect("CA key"))
                .expect("verify runs")
        );
        assert_eq!(
            x.issuer_name().to_der().expect("der"),
            ca.cert.subject_name().to_der().expect("der")
        );
        let bn = x.serial_number().to_bn().expect("serial");
        assert_eq!(hex::encode(bn.to_vec()), c.serial.to_hex());
        assert!(serials.insert(c.serial.to_hex()), "serials are unique");
    }
}
