//! CRLs through the real server: fetched over HTTP, checked by the `openssl` CLI
//! (`openssl crl`, `openssl verify -crl_check [-use_deltas]`) and the `openssl` crate; delta CRLs
//! after revocations and releases made while the server was stopped; numbers across restarts;
//! retention of expired certificates; the offline `vigie crl build`; a revocation through the
//! ingest API published by a delta CRL after `delta_debounce`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use openssl::x509::{X509, X509Crl};
use vigie::ingest::{self, Change, RevocationRequest};
use vigie::model::{CaId, Issuance, RevocationReason, Serial};

const CA: &str = "aci-el-org";

/// Full CRLs once a year (never during a test), deltas every 2 seconds.
fn delta_every_2s() -> Options {
    Options {
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"*/2 * * * * *\"".into()),
        ],
        only: Some(vec![CA]),
        ..Options::default()
    }
}

struct Fetched {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Fetched {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn fetch(url: &str, extra: &[(&str, &str)]) -> Fetched {
    fetch_method("GET", url, extra)
}

fn fetch_method(method: &str, url: &str, extra: &[(&str, &str)]) -> Fetched {
    let mut req = ureq::request(method, url);
    for (k, v) in extra {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_owned();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    Fetched {
        status,
        headers,
        body,
    }
}

fn wait_ready(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if fetch(&s.admin_url("/readyz"), &[]).status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {}", s.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `path` until `test` accepts the CRL there.
fn wait_for_crl(s: &Server, path: &str, what: &str, test: impl Fn(&X509Crl) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let f = fetch(&s.url(path), &[]);
        if f.status == 200 {
            let crl = X509Crl::from_der(&f.body).expect("DER CRL");
            if test(&crl) {
                return f.body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited in vain for {what}: {}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// (serial hex upper-case, reason text) of the entries, from `openssl crl -text`.
fn crl_text(dir: &Path, der: &[u8]) -> String {
    let path = dir.join("crl-text.der");
    std::fs::write(&path, der).expect("written");
    text(&openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&path),
        "-noout",
        "-text",
    ]))
}

fn write_pem(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let pem = X509Crl::from_der(der).expect("DER").to_pem().expect("PEM");
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("written");
    path
}

/// `openssl verify -crl_check` of a certificate of [`CA`] with these CRLs (PEM files).
fn verify(cert: &Path, crls: &[&Path], deltas: bool) -> (bool, String) {
    let roots = pki().roots.clone();
    let issuer = ca_cert(CA);
    let mut args: Vec<&str> = vec!["verify", "-crl_check"];
    if deltas {
        args.push("-use_deltas");
    }
    for c in crls {
        args.push("-CRLfile");
        args.push(path_str(c));
    }
    args.extend_from_slice(&["-CAfile", path_str(&roots), "-untrusted", path_str(&issuer)]);
    args.push(path_str(cert));
    let out = openssl(&args);
    (out.status.success(), text(&out))
}

/// Applies `change` to the store of a stopped server, as the ingest API would.
fn apply_offline(s: &Server, ca: &str, serial: &Serial, change: Change) {
    let config = common::load_config(&s.config);
    let store = vigie::service::open_store(&config).expect("store opens (server stopped)");
    let ca = CaId::new(ca).expect("CA id");
    store
        .transact(
            std::slice::from_ref(&ca),
            now(),
            |tx| -> Result<(), vigie::Error> {
                ingest::apply(tx, &ca, serial, &change)?;
                Ok(())
            },
        )
        .expect("applied");
    store.flush().expect("flushed");
}

fn serial_of(cert: &vigie::pki::demo::DemoCert) -> Serial {
    Serial::from_hex(&cert.serial_hex).expect("serial")
}

fn verify_crl_signature(der: &[u8], ca: &str) {
    let issuer = X509::from_pem(&std::fs::read(ca_cert(ca)).expect("CA")).expect("PEM");
    let crl = X509Crl::from_der(der).expect("DER");
    assert!(
        crl.verify(&issuer.public_key().expect("key"))
            .expect("verify runs"),
        "signature of the CRL of {ca}"
    );
}

#[test]
fn published_crls_verify_and_are_served_with_cache_headers() {
    let s = Server::start();
    wait_ready(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    for ca in ["aci-el-org", "aci-el-pp", "gip-cps-c4"] {
        for suffix in ["", "-delta"] {
            let f = fetch(&s.url(&format!("/crl/{ca}{suffix}.crl")), &[]);
            assert_eq!(
                f.status,
                200,
                "{ca}{suffix}: {}",
                String::from_utf8_lossy(&f.body)
            );
            assert_eq!(f.header("content-type"), Some("application/pkix-crl"));
            let path = dir.path().join(format!("{ca}{suffix}.der"));
            std::fs::write(&path, &f.body).expect("written");
            let out = openssl(&[
                "crl",
                "-inform",
                "DER",
                "-in",
                path_str(&path),
                "-CAfile",
                path_str(&ca_cert(ca)),
                "-noout",
            ]);
            assert!(
                text(&out).contains("verify OK"),
                "{ca}{suffix}: {}",
                text(&out)
            );
            verify_crl_signature(&f.body, ca);
        }
    }

    // Revoked samples are listed with their reasons and invalidity dates.
    let f = fetch(&s.url("/crl/aci-el-org.crl"), &[]);
    let crl = X509Crl::from_der(&f.body).expect("DER");
    let kc = revoked(CA, "keyCompromise");
    assert!(lists(&crl, &kc.serial_hex));
    assert!(!lists(&crl, &good(CA).serial_hex));
    let t = crl_text(dir.path(), &f.body);
    assert!(
        t.contains("Key Compromise") && t.contains("Invalidity Date"),
        "{t}"
    );
    assert!(
        t.contains("Superseded") && t.contains("Certificate Hold"),
        "{t}"
    );
    assert!(!t.contains("Unspecified"), "{t}");
    assert!(t.contains("Issuing Distribution Point: critical"), "{t}");
    assert!(
        t.contains(&format!("URI:{PKI_PUBLIC_URL}/crl/{CA}-delta.crl")),
        "FreshestCRL: {t}"
    );
    let full_number = number(&crl);

    // Delta: critical indicator naming the current complete CRL; no FreshestCRL.
    let d = fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]);
    assert_eq!(base_of(&d.body), Some(full_number));
    assert!(number_of(&d.body) > full_number);
    let t = crl_text(dir.path(), &d.body);
    assert!(t.contains("Delta CRL Indicator: critical"), "{t}");
    assert!(!t.contains("Freshest CRL"), "{t}");

    // Caching headers, 304, HEAD, PEM.
    let etag = f.header("etag").expect("ETag").to_owned();
    let last_modified = f.header("last-modified").expect("Last-Modified").to_owned();
    assert!(f.header("expires").is_some());
    let cc = f.header("cache-control").expect("Cache-Control");
    assert!(cc.contains("public") && cc.contains("no-transform"), "{cc}");
    let max_age: i64 = cc
        .split(',')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .expect("max-age");
    assert!((1..=3600).contains(&max_age), "{cc}");
    let again = fetch(&s.url("/crl/aci-el-org.crl"), &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let again = fetch(
        &s.url("/crl/aci-el-org.crl"),
        &[("If-Modified-Since", &last_modified)],
    );
    assert_eq!(again.status, 304);
    let head = fetch_method("HEAD", &s.url("/crl/aci-el-org.crl"), &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    let pem = fetch(&s.url("/crl/aci-el-org.pem"), &[]);
    assert_eq!(pem.status, 200);
    assert_ne!(pem.header("etag"), Some(etag.as_str()));
    let from_pem = X509Crl::from_pem(&pem.body).expect("PEM CRL");
    assert_eq!(from_pem.to_der().expect("DER"), f.body);

    // History by number; listing; unknown CA.
    let old = fetch(&s.url(&format!("/crl/aci-el-org/{full_number}.crl")), &[]);
    assert_eq!(old.status, 200);
    assert_eq!(old.body, f.body);
    assert_eq!(fetch(&s.url("/crl/aci-el-org/999999.crl"), &[]).status, 404);
    let listing = fetch(&s.url("/crl/"), &[]);
    assert_eq!(listing.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&listing.body).expect("JSON");
    let org = json["cas"]
        .as_array()
        .expect("cas")
        .iter()
        .find(|c| c["id"] == CA)
        .expect("listed");
    assert_eq!(org["full"]["number"], full_number);
    assert!(org["full"]["next_update"].is_string());
    assert_eq!(org["delta"]["base"], full_number);
    for path in ["/crl/aci-el-org.crl", "/crl/", "/crl/aci-el-org/1.crl"] {
        let post = fetch_method("POST", &s.url(path), &[]);
        assert_eq!(post.status, 405, "POST {path}");
        assert_eq!(post.header("allow"), Some("GET, HEAD"), "POST {path}");
        assert_eq!(
            post.header("content-type"),
            Some("application/problem+json")
        );
    }
    let unknown = fetch(&s.url("/crl/nope.crl"), &[]);
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.header("content-type"),
        Some("application/problem+json")
    );

    // Readiness and metrics.
    let ready = fetch(&s.admin_url("/readyz"), &[]);
    assert_eq!(ready.status, 200);
    let metrics = String::from_utf8(fetch(&s.admin_url("/metrics"), &[]).body).expect("text");
    for name in [
        "vigie_crl_build_seconds_bucket",
        "vigie_crl_entries{",
        "vigie_crl_bytes{",
        "vigie_crl_last_publish_timestamp_seconds{",
    ] {
        assert!(metrics.contains(name), "{name} missing: {metrics}");
    }
}

#[test]
fn openssl_verify_uses_the_crl_and_the_delta() {
    let mut s = Server::start_with(&delta_every_2s());
    wait_ready(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let full = fetch(&s.url("/crl/aci-el-org.crl"), &[]).body;
    let full_number = number_of(&full);
    let first_delta = fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]).body;
    let full_pem = write_pem(dir.path(), "full.pem", &full);
    let good_cert = good(CA);
    let (ok, out) = verify(&good_cert.path, &[&full_pem], false);
    assert!(ok, "a good certificate is accepted: {out}");
    let (ok, out) = verify(&revoked(CA, "keyCompromise").path, &[&full_pem], false);
    assert!(!ok && out.contains("certificate revoked"), "{out}");

    // Revoke the good certificate after the base, while the server is stopped.
    s.stop();
    apply_offline(
        &s,
        CA,
        &serial_of(good_cert),
        Change::Revoke(RevocationRequest {
            revoked_at: None,
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }),
    );
    s.restart();
    let last = number_of(&first_delta);
    let delta = wait_for_crl(
        &s,
        "/crl/aci-el-org-delta.crl",
        "a delta listing the new revocation",
        |c| number(c) > last && lists(c, &good_cert.serial_hex),
    );
    assert_eq!(base_of(&delta), Some(full_number), "the base is unchanged");
    assert!(
        number_of(&delta) > last,
        "numbers increase across the restart"
    );
    assert_eq!(
        number_of(&fetch(&s.url("/crl/aci-el-org.crl"), &[]).body),
        full_number
    );
    let delta_pem = write_pem(dir.path(), "delta.pem", &delta);
    let (ok, out) = verify(&good_cert.path, &[&full_pem], false);
    assert!(ok, "the base alone does not know: {out}");
    let (ok, out) = verify(&good_cert.path, &[&full_pem, &delta_pem], true);
    assert!(
        !ok && out.contains("certificate revoked"),
        "with the delta, revoked: {out}"
    );
    let still_good = pki()
        .certs
        .iter()
        .find(|c| {
            c.ca_id == CA
                && c.status == vigie::pki::demo::SampleStatus::Good
                && c.serial_hex != good_cert.serial_hex
        })
        .expect("another good sample");
    let (ok, out) = verify(&still_good.path, &[&full_pem, &delta_pem], true);
    assert!(ok, "another good certificate is still accepted: {out}");
}

#[test]
fn a_released_hold_is_removed_by_the_delta_then_leaves_the_full_crl() {
    let mut s = Server::start_with(&delta_every_2s());
    wait_ready(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let held = revoked(CA, "certificateHold");
    let full = fetch(&s.url("/crl/aci-el-org.crl"), &[]).body;
    let full_number = number_of(&full);
    assert!(lists(
        &X509Crl::from_der(&full).expect("DER"),
        &held.serial_hex
    ));
    let full_pem = write_pem(dir.path(), "full.pem", &full);
    let (ok, out) = verify(&held.path, &[&full_pem], false);
    assert!(!ok && out.contains("certificate revoked"), "on hold: {out}");
    let first_delta = number_of(&fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]).body);

    // `vigie crl build` refuses to work under a running server, and says why.
    let out = common::vigie()
        .args(["crl", "build", "--ca", CA, "--config"])
        .arg(&s.config)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("running `vigie serve`"), "{err}");

    s.stop();
    apply_offline(&s, CA, &serial_of(held), Change::Release);
    s.restart();
    let delta = wait_for_crl(
        &s,
        "/crl/aci-el-org-delta.crl",
        "removeFromCRL in a delta",
        |c| number(c) > first_delta && lists(c, &held.serial_hex),
    );
    assert_eq!(base_of(&delta), Some(full_number));
    let t = crl_text(dir.path(), &delta);
    assert!(t.contains("Remove From CRL"), "{t}");
    let delta_pem = write_pem(dir.path(), "delta.pem", &delta);
    let (ok, out) = verify(&held.path, &[&full_pem, &delta_pem], true);
    assert!(
        ok,
        "released: the delta's removeFromCRL wins over the base: {out}"
    );

    // The next complete CRL, built offline with the CLI, no longer lists it.
    s.stop();
    let out_file = dir.path().join("cli.crl");
    let out = common::vigie()
        .args(["crl", "build", "--ca", CA, "--config"])
        .arg(&s.config)
        .arg("--out")
        .arg(&out_file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("full CRL number"), "{printed}");
    let cli = std::fs::read(&out_file).expect("written");
    let cli_number = number_of(&cli);
    assert!(cli_number > number_of(&delta), "{printed}");
    assert!(!lists(
        &X509Crl::from_der(&cli).expect("DER"),
        &held.serial_hex
    ));
    verify_crl_signature(&cli, CA);
    s.restart();
    wait_ready(&s);
    let served = fetch(&s.url("/crl/aci-el-org.crl"), &[]).body;
    assert_eq!(served, cli, "the server serves what the CLI built");
    let served_delta = fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]).body;
    assert_eq!(base_of(&served_delta), Some(cli_number));
}

#[test]
fn an_expired_certificate_leaves_the_crl_after_its_retention() {
    let opts = Options {
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"*/2 * * * * *\"".into()),
            (CA.into(), "crl_keep_expired = \"12s\"".into()),
        ],
        only: Some(vec![CA]),
        ..Options::default()
    };
    let mut s = Server::start_with(&opts);
    wait_ready(&s);
    s.stop();
    let serial = Serial::from_hex("7e57ed").expect("serial");
    let t = now();
    apply_offline(
        &s,
        CA,
        &serial,
        Change::Issue(Issuance {
            not_before: t.minus(86400),
            not_after: t.minus(2),
            subject: None,
            profile: None,
        }),
    );
    apply_offline(
        &s,
        CA,
        &serial,
        Change::Revoke(RevocationRequest {
            revoked_at: Some(t.minus(3600)),
            reason: Some(RevocationReason::Superseded),
            invalidity_date: None,
        }),
    );
    s.restart();
    let listed = wait_for_crl(
        &s,
        "/crl/aci-el-org.crl",
        "the expired certificate, within retention",
        |c| lists(c, "7e57ed"),
    );
    let gone = wait_for_crl(
        &s,
        "/crl/aci-el-org.crl",
        "the expired certificate gone",
        |c| !lists(c, "7e57ed"),
    );
    assert!(number_of(&gone) > number_of(&listed));
    assert!(now().0 >= t.0 - 2 + 12, "not before its retention ended");
    let t = crl_text(tempfile::tempdir().expect("tempdir").path(), &gone);
    assert!(
        !t.contains("Expired Certs On CRL") && !t.contains("2.5.29.60"),
        "{t}"
    );
}

#[test]
fn a_revocation_through_the_ingest_api_reaches_the_delta_crl_after_the_debounce() {
    let opts = Options {
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "publish_delta_on_revoke = true".into()),
            (CA.into(), "delta_debounce = \"1s\"".into()),
        ],
        only: Some(vec![CA]),
        admin_extra: token_line(TOKEN),
        ..Options::default()
    };
    let s = Server::start_with(&opts);
    wait_ready(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let full = fetch(&s.url("/crl/aci-el-org.crl"), &[]).body;
    let first_delta = number_of(&fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]).body);
    let cert = good(CA);
    let answer = ureq::post(&s.admin_url("/v1/revocations"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(serde_json::json!({
            "ca": CA,
            "serial": cert.serial_hex,
            "reason": "keyCompromise",
        }));
    assert!(answer.is_ok(), "revocation accepted: {answer:?}");
    let asked = Instant::now();
    let delta = wait_for_crl(
        &s,
        "/crl/aci-el-org-delta.crl",
        "a delta after the revocation",
        |c| number(c) > first_delta && lists(c, &cert.serial_hex),
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "published {:?} after the revocation",
        asked.elapsed()
    );
    assert_eq!(base_of(&delta), Some(number_of(&full)));
    let full_pem = write_pem(dir.path(), "full.pem", &full);
    let delta_pem = write_pem(dir.path(), "delta.pem", &delta);
    let (ok, out) = verify(&cert.path, &[&full_pem, &delta_pem], true);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}

/// The reason `openssl crl -text` prints for the entry of `serial_hex`, if it has one.
fn entry_reason(text: &str, serial_hex: &str) -> Option<String> {
    let want = serial_hex.trim_start_matches('0').to_ascii_uppercase();
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let Some(s) = l.strip_prefix("Serial Number: ") else {
            continue;
        };
        if s.trim_start_matches('0') != want {
            continue;
        }
        for l in lines.by_ref() {
            if l.starts_with("Serial Number: ") {
                return None;
            }
            if l.starts_with("X509v3 CRL Reason Code") {
                return lines.next().map(str::to_owned);
            }
        }
    }
    None
}

#[test]
fn a_hold_and_its_release_through_the_ingest_api_reach_the_next_deltas() {
    let opts = Options {
        admin_extra: token_line(TOKEN),
        ..delta_every_2s()
    };
    let s = Server::start_with(&opts);
    wait_ready(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let full = fetch(&s.url("/crl/aci-el-org.crl"), &[]).body;
    let first_delta = number_of(&fetch(&s.url("/crl/aci-el-org-delta.crl"), &[]).body);
    let auth = format!("Bearer {TOKEN}");

    // A hold through the API: the next delta lists it as certificateHold.
    let cert = good(CA);
    let held = ureq::post(&s.admin_url("/v1/revocations"))
        .set("Authorization", &auth)
        .send_json(
            serde_json::json!({"ca": CA, "serial": cert.serial_hex, "reason": "certificateHold"}),
        );
    assert!(held.is_ok(), "hold accepted: {held:?}");
    let delta1 = wait_for_crl(
        &s,
        "/crl/aci-el-org-delta.crl",
        "the hold in a delta",
        |c| number(c) > first_delta && lists(c, &cert.serial_hex),
    );
    assert_eq!(
        entry_reason(&crl_text(dir.path(), &delta1), &cert.serial_hex).as_deref(),
        Some("Certificate Hold")
    );

    // The release, through the API, of a hold that is on the base CRL (the seeded sample): the
    // next delta lists it as removeFromCRL (RFC 5280 §5.2.4), and base + delta accept it again.
    // (A hold placed and released between two full CRLs leaves no trace: it was never on a base.)
    let sample = revoked(CA, "certificateHold");
    assert!(lists(
        &X509Crl::from_der(&full).expect("DER"),
        &sample.serial_hex
    ));
    let released =
        ureq::delete(&s.admin_url(&format!("/v1/revocations/{CA}/{}", sample.serial_hex)))
            .set("Authorization", &auth)
            .call();
    assert!(released.is_ok(), "release accepted: {released:?}");
    let delta1_number = number_of(&delta1);
    let delta2 = wait_for_crl(
        &s,
        "/crl/aci-el-org-delta.crl",
        "removeFromCRL in a delta",
        |c| number(c) > delta1_number && lists(c, &sample.serial_hex),
    );
    assert_eq!(
        entry_reason(&crl_text(dir.path(), &delta2), &sample.serial_hex).as_deref(),
        Some("Remove From CRL")
    );
    assert_eq!(
        base_of(&delta2),
        Some(number_of(&full)),
        "deltas stay on the same base"
    );
    let full_pem = write_pem(dir.path(), "full.pem", &full);
    let delta_pem = write_pem(dir.path(), "delta.pem", &delta2);
    let (ok, out) = verify(&sample.path, &[&full_pem, &delta_pem], true);
    assert!(ok, "released: accepted again with base + delta: {out}");
    let (ok, out) = verify(&cert.path, &[&full_pem, &delta_pem], true);
    assert!(
        !ok && out.contains("certificate revoked"),
        "still on hold: {out}"
    );
}
