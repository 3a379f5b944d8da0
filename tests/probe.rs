//! `vigie probe` against real servers: a healthy demo passes (table, `--json`, a
//! `--prometheus` file that `promtool check metrics` accepts, a state file of CRL numbers);
//! a CRL with too little time left, an expired OCSP signer, OCSP disagreeing with the CRL
//! (built in the test's own store while the server is stopped) and CRL numbers going back each
//! fail, and the output names the problem.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use vigie::model::{CaId, EventKind, RevocationReason, Serial};
use vigie::pki::demo::SampleStatus;

const CA: &str = "aci-el-org";

fn probe(args: &[&str]) -> Output {
    common::vigie()
        .arg("probe")
        .args(args)
        .env("VIGIE_LOG", "warn")
        .output()
        .expect("vigie probe runs")
}

fn probe_config(server: &Server, extra: &[&str]) -> Output {
    let mut args = vec![
        "--config",
        path_str(&server.config),
        "--url",
        server.public.as_str(),
    ];
    args.extend_from_slice(extra);
    probe(&args)
}

fn one_ca() -> Options {
    Options {
        only: Some(vec![CA]),
        ..Options::default()
    }
}

#[test]
fn a_healthy_demo_passes_with_table_json_prometheus_and_state() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = dir.path().join("vigie_probe.prom");
    let state = dir.path().join("probe-state.json");
    let out = probe_config(
        &server,
        &["--prometheus", path_str(&prom), "--state", path_str(&state)],
    );
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    assert!(table.contains("0 problem(s) — OK"), "{table}");
    for ca in &pki().cas {
        for check in ["full CRL", "delta CRL"] {
            assert!(
                table
                    .lines()
                    .any(|l| l.starts_with(&ca.id) && l.contains(check) && l.contains(" ok ")),
                "{} {check}: {table}",
                ca.id
            );
        }
        // Revoked samples from the CRL, asked by GET and by POST, agree with it.
        for method in ["OCSP GET", "OCSP POST"] {
            assert!(
                table.lines().any(|l| l.starts_with(&ca.id)
                    && l.contains(method)
                    && l.contains("revoked, as on the CRL")),
                "{} {method}: {table}",
                ca.id
            );
        }
    }

    // The textfile-collector file, checked by Prometheus's own parser.
    let text_file = std::fs::read_to_string(&prom).expect("prometheus file written");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus, installed by .ci/run)");
    {
        use std::io::Write;
        check
            .stdin
            .take()
            .expect("stdin")
            .write_all(text_file.as_bytes())
            .expect("written");
    }
    let checked = check.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}\n{text_file}",
        text(&checked)
    );
    let samples = vigie::status::parse_exposition(&text_file);
    for ca in &pki().cas {
        let success = samples
            .iter()
            .find(|s| s.name == "vigie_probe_success" && s.label("ca") == Some(ca.id.as_str()))
            .map(|s| s.value);
        assert_eq!(success, Some(1.0), "{text_file}");
    }

    // JSON, the same verdict.
    let out = probe_config(&server, &["--json", "--state", path_str(&state)]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["cas"].as_array().map(Vec::len),
        Some(pki().cas.len())
    );

    // The state file remembers numbers: one above what is served makes the CRL "go back".
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state written")).expect("JSON");
    let key = format!("{CA}/full");
    let seen = st["crl_numbers"][&key].as_u64().expect("number kept");
    st["crl_numbers"][&key] = serde_json::json!(seen + 100);
    std::fs::write(&state, st.to_string()).expect("state");
    let out = probe_config(&server, &["--state", path_str(&state)]);
    let table = text(&out);
    assert!(!out.status.success(), "{table}");
    assert!(
        table.contains(&format!(
            "CRLNumber {seen} is lower than {}, seen before",
            seen + 100
        )),
        "{table}"
    );
}

#[test]
fn a_crl_near_its_next_update_fails_as_stale() {
    // CRLs valid 20 minutes: the server's margin (half of it) does not rebuild them during the
    // test, and the probe wants 30 minutes left.
    let server = Server::start_with(&Options {
        ca_extra: vec![
            (CA.into(), "crl_validity = \"20m\"".into()),
            (CA.into(), "delta_validity = \"15m\"".into()),
        ],
        global_extra: "[crl]\nbackdate = \"1s\"\n".into(),
        ..one_ca()
    });
    let out = probe_config(&server, &["--json"]);
    assert!(!out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], false);
    let findings = report["findings"].as_array().expect("findings");
    let stale = findings
        .iter()
        .find(|f| f["check"] == "full CRL" && f["ok"] == false)
        .unwrap_or_else(|| panic!("no full CRL problem: {report:#}"));
    let detail = stale["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("stale: nextUpdate") && detail.contains("less than 30m"),
        "{detail}"
    );
    // With a lower requirement the same server passes.
    let out = probe_config(&server, &["--crl-min-remaining", "5m"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// An OCSP signer certificate for `ca`, issued by its key, valid until `not_after` (Unix time).
fn short_lived_signer(
    ca: &str,
    dir: &Path,
    not_after: i64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let c = pki().cas.iter().find(|c| c.id == ca).expect("known CA");
    let issuer = X509::from_pem(&std::fs::read(&c.cert).expect("cert")).expect("pem");
    let ca_key = PKey::private_key_from_pem(&std::fs::read(&c.key).expect("key")).expect("key");
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("C", "FR").expect("C");
    name.append_entry_by_text("O", "ASIP-SANTE").expect("O");
    name.append_entry_by_text("CN", "TEST OCSP SHORT-LIVED")
        .expect("CN");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_u32(0x5157).expect("bn");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("int"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(now().0 - 86_400).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("time"))
        .expect("na");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(
        ExtendedKeyUsage::new()
            .other("OCSPSigning")
            .build()
            .expect("eku"),
    )
    .expect("eku");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let cert_path = dir.join("short-ocsp.pem");
    let key_path = dir.join("short-ocsp.key");
    std::fs::write(&cert_path, b.build().to_pem().expect("pem")).expect("cert written");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("pem")).expect("key");
    // Private keys readable by their owner only, as the server requires.
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("key mode");
    (cert_path, key_path)
}

#[test]
fn an_expired_ocsp_signer_fails() {
    let keys = tempfile::tempdir().expect("tempdir");
    // The demo PKI first (generated on first use, which takes a while on a busy machine).
    let _ = pki();
    let not_after = now().0 + 40;
    let (cert, key) = short_lived_signer(CA, keys.path(), not_after);
    let c = pki().cas.iter().find(|c| c.id == CA).expect("known CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &one_ca());
    let text_config = std::fs::read_to_string(&config)
        .expect("config")
        .replace(path_str(&c.ocsp_cert), path_str(&cert))
        .replace(path_str(&c.ocsp_key), path_str(&key));
    std::fs::write(&config, text_config).expect("config written");
    seed(&config);
    let mut server = Server::adopt(dir, config);
    server.spawn();
    // The configuration would not load any more once the signer expires: name the CA on the
    // command line.
    let ca_arg = format!("{CA}={}", path_str(&c.cert));
    // Seconds before expiry: the answers are signed by a signer about to expire.
    let out = probe(&["--url", &server.public, "--ca", &ca_arg]);
    let table = text(&out);
    assert!(now().0 < not_after, "the server took too long to start");
    assert!(!out.status.success(), "{table}");
    assert!(
        table
            .contains("OCSP signer C=FR, O=ASIP-SANTE, CN=TEST OCSP SHORT-LIVED expires in 0 days"),
        "{table}"
    );
    // Once expired: vigie never signs past its signer's notAfter (nextUpdate is capped by it);
    // the CA is out of service like one whose signer did not load, so it answers unauthorized
    // (issue 15, per-CA isolation), and the probe says so.
    while now().0 <= not_after + 1 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = probe(&["--url", &server.public, "--ca", &ca_arg]);
    let table = text(&out);
    assert!(!out.status.success(), "{table}");
    assert!(
        table.lines().any(|l| l.contains("OCSP GET")
            && l.contains("PROBLEM")
            && l.contains("response status Unauthorized")),
        "{table}"
    );
    // The CRLs themselves are fine.
    assert!(
        table
            .lines()
            .any(|l| l.contains("full CRL") && l.contains(" ok ")),
        "{table}"
    );
    server.stop();
}

#[test]
fn ocsp_disagreeing_with_the_crl_fails_and_names_the_serial_and_reason() {
    let mut server = Server::start_with(&one_ca());
    let cert = revoked(CA, "keyCompromise");
    assert!(matches!(cert.status, SampleStatus::Revoked { .. }));
    // The CRL now lists it as keyCompromise; change the store behind the server's back.
    server.stop();
    {
        let config = common::load_config(&server.config);
        let store = vigie::service::open_store(&config).expect("store");
        let ca = CaId::new(CA).expect("id");
        let serial = Serial::from_hex(&cert.serial_hex).expect("serial");
        store
            .transact(
                std::slice::from_ref(&ca),
                now(),
                |tx| -> Result<(), vigie::Error> {
                    let mut record = tx.record(&ca, &serial)?.expect("seeded");
                    let mut revocation = record.revocation.clone().expect("revoked");
                    revocation.reason = Some(RevocationReason::Superseded);
                    record.revocation = Some(revocation.clone());
                    tx.put(&ca, &serial, record, EventKind::Revoked(revocation))?;
                    Ok(())
                },
            )
            .expect("written");
        store.flush().expect("flushed");
    }
    server.spawn();
    let serial_arg = format!("{CA}:{}", cert.serial_hex);
    let out = probe_config(&server, &["--serial", &serial_arg, "--samples", "0"]);
    let table = text(&out);
    assert!(!out.status.success(), "{table}");
    let serial = Serial::from_hex(&cert.serial_hex).expect("serial");
    for method in ["GET", "POST"] {
        assert!(
            table.lines().any(|l| {
                l.contains(&format!("OCSP {method} {serial}"))
                && l.contains("PROBLEM")
                && l.contains(&format!(
                    "CRL and OCSP disagree on {serial}: reason: CRL keyCompromise, OCSP superseded"
                ))
            }),
            "{table}"
        );
    }
}
