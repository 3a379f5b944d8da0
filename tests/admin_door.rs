//! The admin door: mutual TLS with an allowlist (subject compared as a name, or SPKI pin), a
//! revoked client certificate refused, start-up refusals (plain HTTP on a public address,
//! `client_ca` without `client_allow`, loose key modes, the CA as its own OCSP signer, malformed
//! token hashes reported by position), and the optional `/metrics` token. Through the real
//! `vigie` binary; the SPKI pin is computed by the openssl CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{Api, issue_with_key, random_serial};
use common::tls::{self, Identity};
use common::{Options, Server, TOKEN, ca_cert, pki, token_line, write_config};
use serde_json::json;

const CA: &str = "aci-el-org";

/// Runs `vigie serve` on `config`, which must refuse to start: returns its stderr.
fn refused_at_start(config: &Path) -> String {
    let mut child = common::vigie()
        .args(["serve", "--config"])
        .arg(config)
        .env("VIGIE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigie runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut err)
                .expect("stderr");
            assert!(!status.success(), "vigie started: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vigie did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vigie check` on `config`: (success, stdout+stderr).
fn check(config: &Path) -> (bool, String) {
    let o = common::vigie()
        .args(["check", "--config"])
        .arg(config)
        .env("VIGIE_LOG", "warn")
        .output()
        .expect("vigie runs");
    (o.status.success(), common::text(&o))
}

fn config_with(dir: &Path, opts: &Options, edit: impl Fn(String) -> String) -> PathBuf {
    let path = write_config(dir, opts);
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, edit(text)).expect("config");
    path
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, by the openssl CLI.
fn spki_sha256(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -in '{}' -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
        cert.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    assert!(o.status.success(), "{}", common::text(&o));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

#[test]
fn the_allowlist_lets_in_listed_clients_only_and_a_revoked_client_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // The admin listener's TLS certificate, from a CA the test trusts.
    let (server_ca_key, server_key) = (tls::key(), tls::key());
    let server_ca = tls::cert(&[("CN", "admin TLS CA")], &server_ca_key, None, true);
    let server = tls::identity(
        d,
        "server",
        tls::cert(
            &[("CN", "vigie admin")],
            &server_key,
            Some((&server_ca, &server_ca_key)),
            false,
        ),
        &server_key,
    );
    let trust = tls::write(d, "server-ca.pem", &server_ca.to_pem().expect("pem"), 0o644);
    // Client CAs: one of vigie's own CAs, and an operations CA of its own.
    let (ops_ca_key, robot_key) = (tls::key(), tls::key());
    let ops_ca = tls::cert(&[("CN", "ops CA")], &ops_ca_key, None, true);
    let mut client_cas = std::fs::read(ca_cert(CA)).expect("CA cert");
    client_cas.extend_from_slice(&ops_ca.to_pem().expect("pem"));
    let client_ca = tls::write(d, "client-cas.pem", &client_cas, 0o644);

    // An operator certificate issued by vigie's CA (listed by subject), a robot of the ops CA
    // (listed by its key), and a stranger that chains to vigie's CA but is not listed, whose
    // subject tries to forge a log line.
    let op_serial = random_serial();
    let (op, op_key) = issue_with_key(CA, &op_serial, None);
    let op = tls::identity(d, "op", op, &op_key);
    let robot = tls::identity(
        d,
        "robot",
        tls::cert(
            &[("CN", "robot")],
            &robot_key,
            Some((&ops_ca, &ops_ca_key)),
            false,
        ),
        &robot_key,
    );
    let stranger_key = tls::key();
    let stranger = tls::identity(
        d,
        "stranger",
        tls::cert(
            &[("O", "TEST ORG"), ("CN", "evil\nINFO forged, line")],
            &stranger_key,
            Some((&common::api::ca_x509(CA), &common::api::ca_key(CA))),
            false,
        ),
        &stranger_key,
    );
    let admin = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\nclient_allow = [\
         \"subject:  cn=INGEST TEST {} , o=test  org, c=fr\", \"spki-sha256:{}\"]\n",
        server.cert.display(),
        server.key.display(),
        client_ca.display(),
        op_serial.to_uppercase(),
        spki_sha256(&robot.cert),
    );
    let mut s = Server::start_with(&Options {
        admin_extra: admin,
        ..Options::default()
    });
    assert!(s.admin.starts_with("https://"), "{}", s.admin);
    let get =
        |who: Option<&Identity>| tls::request(&s.admin, &trust, who, None, "GET", "/v1/cas", None);

    let (status, answer) = get(Some(&op)).expect("the operator gets an answer");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(Some(&robot)).expect("the robot gets an answer");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(Some(&stranger)).expect("the stranger passes the handshake");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    let problem: serde_json::Value =
        serde_json::from_str(tls::body_of(&answer)).expect("problem JSON");
    assert_eq!(problem["type"], "forbidden");
    assert_eq!(problem["status"], 403);
    assert!(
        get(None).is_none(),
        "no certificate: refused at the handshake"
    );
    // The stranger's subject is logged escaped (RFC 4514): no forged line.
    let log = s.stderr();
    assert!(
        log.contains("CN=evil\\0AINFO forged\\, line,O=TEST ORG"),
        "{log}"
    );
    assert!(!log.contains("evil\nINFO"), "{log}");

    // The robot puts the operator's certificate on hold in vigie: the operator is shut out;
    // released, let in again.
    let revoke = json!({"ca": CA, "serial": op_serial, "reason": "certificateHold"}).to_string();
    let (status, answer) = tls::request(
        &s.admin,
        &trust,
        Some(&robot),
        None,
        "POST",
        "/v1/revocations",
        Some(&revoke),
    )
    .expect("answer");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(Some(&op)).expect("handshake still passes");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("revoked"), "{answer}");
    assert!(get(Some(&robot)).is_some_and(|(st, _)| st == 200));
    let (status, answer) = tls::request(
        &s.admin,
        &trust,
        Some(&robot),
        None,
        "DELETE",
        &format!("/v1/revocations/{CA}/{op_serial}"),
        None,
    )
    .expect("answer");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(Some(&op)).expect("answer");
    assert_eq!(status, 200, "{answer}");

    // The audit trail names the robot by its subject.
    let (status, answer) =
        tls::request(&s.admin, &trust, Some(&op), None, "GET", "/v1/audit", None).expect("answer");
    assert_eq!(status, 200, "{answer}");
    let entries: serde_json::Value =
        serde_json::from_str(tls::body_of(&answer)).expect("JSON array");
    let actions: Vec<(&str, &str)> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions, vec![("hold", "CN=robot"), ("release", "CN=robot")]);
    s.stop();
}

#[test]
fn start_up_refuses_an_open_admin_door() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let _ = pki();

    // Plain HTTP on a non-loopback address.
    let config = config_with(d, &Options::ingest(), |t| {
        t.replacen(
            "[admin]\nlisten = \"127.0.0.1:0\"",
            "[admin]\nlisten = \"0.0.0.0:0\"",
            1,
        )
    });
    let err = refused_at_start(&config);
    assert!(
        err.contains("[admin]") && err.contains("allow_plaintext") && err.contains("tls_cert"),
        "{err}"
    );
    let config = config_with(d, &Options::ingest(), |t| {
        t.replacen(
            "[admin]\nlisten = \"127.0.0.1:0\"",
            "[admin]\nlisten = \"0.0.0.0:0\"\nallow_plaintext = true",
            1,
        )
    });
    let (ok, out) = check(&config);
    assert!(ok, "allow_plaintext = true: {out}");

    // client_ca without client_allow.
    let key = tls::key();
    let server = tls::identity(
        d,
        "srv",
        tls::cert(&[("CN", "srv")], &key, None, false),
        &key,
    );
    let config = write_config(
        d,
        &Options {
            admin_extra: format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n",
                server.cert.display(),
                server.key.display(),
                ca_cert(CA).display()
            ),
            ..Options::default()
        },
    );
    let err = refused_at_start(&config);
    assert!(err.contains("client_allow"), "{err}");

    // A malformed token hash is named by its position; its value is not echoed.
    let secret = "this-is-the-token-itself-not-its-hash";
    let config = write_config(
        d,
        &Options {
            admin_extra: format!(
                "token_sha256 = [\"{}\", \"{secret}\"]\n",
                hex::encode([7u8; 32])
            ),
            ..Options::default()
        },
    );
    let err = refused_at_start(&config);
    assert!(
        err.contains("token_sha256") && err.contains("entry #2"),
        "{err}"
    );
    assert!(!err.contains(secret), "the value leaked: {err}");
    let token_file = tls::write(
        d,
        "tokens",
        format!("# ops\n\n{secret}\n").as_bytes(),
        0o600,
    );
    let config = write_config(
        d,
        &Options {
            admin_extra: format!("token_file = \"{}\"\n", token_file.display()),
            ..Options::default()
        },
    );
    let err = refused_at_start(&config);
    assert!(
        err.contains("token_file") && err.contains("line 3"),
        "{err}"
    );
    assert!(!err.contains(secret), "the value leaked: {err}");
}

#[test]
fn key_files_readable_by_others_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let ca = pki().cas.iter().find(|c| c.id == CA).expect("CA");
    let loose = tls::write(
        d,
        "ca-loose.key",
        &std::fs::read(&ca.key).expect("key"),
        0o644,
    );
    let opts = Options {
        only: Some(vec![CA]),
        ..Options::ingest()
    };
    let with_loose_key =
        |t: String| t.replace(&ca.key.display().to_string(), &loose.display().to_string());
    let config = config_with(d, &opts, with_loose_key);
    let err = refused_at_start(&config);
    assert!(
        err.contains(&loose.display().to_string()) && err.contains("0644") && err.contains("key"),
        "{err}"
    );
    let config = config_with(
        d,
        &Options {
            global_extra: "[security]\nallow_loose_key_permissions = true\n".into(),
            ..opts.clone()
        },
        with_loose_key,
    );
    let (ok, out) = check(&config);
    assert!(ok, "allowed: {out}");

    // The OCSP key, the admin TLS key and a token file are secrets too.
    let loose_ocsp = tls::write(
        d,
        "ocsp-loose.key",
        &std::fs::read(&ca.ocsp_key).expect("key"),
        0o640,
    );
    let config = config_with(d, &opts, |t| {
        t.replace(
            &ca.ocsp_key.display().to_string(),
            &loose_ocsp.display().to_string(),
        )
    });
    let err = refused_at_start(&config);
    assert!(err.contains("ocsp_key") && err.contains("0640"), "{err}");
    let key = tls::key();
    let server = tls::identity(
        d,
        "srv",
        tls::cert(&[("CN", "srv")], &key, None, false),
        &key,
    );
    let loose_tls = tls::write(
        d,
        "srv-loose.key",
        &std::fs::read(&server.key).expect("key"),
        0o604,
    );
    let config = write_config(
        d,
        &Options {
            admin_extra: format!(
                "{}tls_cert = \"{}\"\ntls_key = \"{}\"\n",
                token_line(TOKEN),
                server.cert.display(),
                loose_tls.display()
            ),
            ..opts.clone()
        },
    );
    let err = refused_at_start(&config);
    assert!(err.contains("tls_key") && err.contains("0604"), "{err}");
    let hashes = tls::write(
        d,
        "tokens",
        format!("{}\n", hex::encode(openssl::sha::sha256(TOKEN.as_bytes()))).as_bytes(),
        0o644,
    );
    let config = write_config(
        d,
        &Options {
            admin_extra: format!("token_file = \"{}\"\n", hashes.display()),
            ..opts.clone()
        },
    );
    let err = refused_at_start(&config);
    assert!(err.contains("token_file") && err.contains("0644"), "{err}");
}

#[test]
fn the_ca_certificate_signs_ocsp_only_when_configured_to() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let ca = pki().cas.iter().find(|c| c.id == CA).expect("CA");
    let opts = Options {
        only: Some(vec![CA]),
        ..Options::ingest()
    };
    let self_signing = |t: String| {
        t.replace(
            &ca.ocsp_cert.display().to_string(),
            &ca.cert.display().to_string(),
        )
        .replace(
            &ca.ocsp_key.display().to_string(),
            &ca.key.display().to_string(),
        )
    };
    let config = config_with(d, &opts, self_signing);
    let err = refused_at_start(&config);
    assert!(err.contains("ocsp_signer = \"ca\""), "{err}");
    assert!(err.contains("CA certificate itself"), "{err}");
    let config = config_with(
        d,
        &Options {
            ca_extra: vec![(CA.into(), "ocsp_signer = \"ca\"".into())],
            ..opts.clone()
        },
        self_signing,
    );
    let (ok, out) = check(&config);
    assert!(ok, "ocsp_signer = \"ca\": {out}");
    // Saying "ca" for a delegated signer is a contradiction.
    let config = write_config(
        d,
        &Options {
            ca_extra: vec![(CA.into(), "ocsp_signer = \"ca\"".into())],
            ..opts
        },
    );
    let err = refused_at_start(&config);
    assert!(err.contains("is not the CA certificate"), "{err}");
}

#[test]
fn metrics_need_no_token_unless_one_is_configured() {
    let open = Server::start_with(&Options {
        only: Some(vec![CA]),
        ..Options::ingest()
    });
    let api = Api::new(&open, None);
    let a = api.get("/metrics");
    assert_eq!(a.status, 200, "{}", a.text());
    drop(open);

    let scrape = "prometheus-scrape-token";
    let s = Server::start_with(&Options {
        only: Some(vec![CA]),
        admin_extra: format!(
            "{}metrics_token_sha256 = \"{}\"\n",
            token_line(TOKEN),
            hex::encode(openssl::sha::sha256(scrape.as_bytes()))
        ),
        ..Options::default()
    });
    Api::new(&s, None).get("/metrics").problem(401);
    Api::new(&s, Some(TOKEN)).get("/metrics").problem(401);
    let a = Api::new(&s, Some(scrape)).get("/metrics");
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("vigie_"), "{}", a.text());
    // The metrics token opens /metrics only.
    Api::new(&s, Some(scrape)).get("/v1/cas").problem(401);
    assert_eq!(Api::new(&s, None).get("/healthz").status, 200);
}
