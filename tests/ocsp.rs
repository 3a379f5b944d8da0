//! OCSP through the real server, checked by the `openssl ocsp` CLI and the `openssl` crate.

mod common;

use std::process::Command;

use common::*;
use openssl::ocsp::{
    OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus, OcspRevokedStatus,
};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

fn ocsp_cli(server: &Server, ca: &str, cert: &std::path::Path, extra: &[&str]) -> String {
    let roots = pki().roots.clone();
    let issuer = ca_cert(ca);
    let url = server.url("/ocsp");
    // Options first: `openssl ocsp` wants a digest (-sha256) before the -cert it applies to.
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(cert),
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ]);
    text(&openssl(&args))
}

#[test]
fn good_certificate_with_nonce_sha1() {
    let s = Server::start();
    let out = ocsp_cli(&s, "aci-el-pp", &good("aci-el-pp").path, &[]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
    assert!(out.contains("OCSP Nonce"), "nonce echoed: {out}");
    assert!(out.contains("Hash Algorithm: sha1"), "{out}");
    assert!(
        out.contains("Responder Id: ") && !out.contains("Responder Id: C ="),
        "byKey: {out}"
    );
}

#[test]
fn good_certificate_without_nonce_sha256_ecdsa_signer() {
    let s = Server::start();
    let out = ocsp_cli(
        &s,
        "aci-el-org",
        &good("aci-el-org").path,
        &["-no_nonce", "-sha256"],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
    assert!(out.contains("Hash Algorithm: sha256"), "{out}");
    assert!(out.contains("ecdsa-with-SHA256"), "ECDSA signer: {out}");
    assert!(!out.contains("OCSP Nonce"), "{out}");
}

#[test]
fn revoked_with_reason_and_invalidity_date() {
    let s = Server::start();
    let out = ocsp_cli(
        &s,
        "aci-el-org",
        &revoked("aci-el-org", "keyCompromise").path,
        &[],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(out.contains("Revocation Reason: keyCompromise"), "{out}");
    assert!(out.contains("Invalidity Date"), "{out}");
    let out = ocsp_cli(
        &s,
        "aci-el-pp",
        &revoked("aci-el-pp", "affiliationChanged").path,
        &["-no_nonce"],
    );
    assert!(
        out.contains("Cert Status: revoked") && out.contains("affiliationChanged"),
        "{out}"
    );
    assert!(out.contains("sha256WithRSAEncryption"), "RSA signer: {out}");
}

#[test]
fn revoked_without_reason_has_no_reason() {
    let s = Server::start();
    let cert = sample("aci-el-pp", |st| {
        matches!(
            st,
            vigie::pki::demo::SampleStatus::Revoked { reason: None, .. }
        )
    });
    let out = ocsp_cli(&s, "aci-el-pp", &cert.path, &["-no_nonce"]);
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(!out.contains("Revocation Reason"), "{out}");
}

#[test]
fn unknown_serial_and_the_revoked_policy() {
    let s = Server::start_with(&Options {
        ca_extra: vec![("aci-el-pp".into(), "unknown_serial = \"revoked\"".into())],
        ..Options::default()
    });
    let issuer = ca_cert("aci-el-org");
    let roots = pki().roots.clone();
    let url = s.url("/ocsp");
    let args = [
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-serial",
        "0x0123456789",
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ];
    let out = text(&openssl(&args));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: unknown"), "{out}");

    let issuer = ca_cert("aci-el-pp");
    let args = [
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-serial",
        "0x0123456789",
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ];
    let out = text(&openssl(&args));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(
        out.contains("Revocation Time: Jan  1 00:00:00 1970 GMT"),
        "{out}"
    );
    assert!(out.contains("certificateHold"), "{out}");
    // OpenSSL 3.0 prints id-pkix-ocsp-extended-revoke (1.3.6.1.5.5.7.48.1.9) by its short name
    // "valid"; later versions say "Extended OCSP Revoke".
    assert!(
        out.contains("Extended OCSP Revoke")
            || out.contains("1.3.6.1.5.5.7.48.1.9")
            || out.contains("\n        valid: "),
        "{out}"
    );
}

#[test]
fn issuer_not_served_is_unauthorized() {
    let s = Server::start_with(&Options {
        only: Some(vec!["aci-el-org", "aci-el-pp"]),
        ..Options::default()
    });
    let out = ocsp_cli(&s, "gip-cps-c4", &good("gip-cps-c4").path, &[]);
    assert!(out.contains("unauthorized (6)"), "{out}");
}

#[test]
fn several_cert_ids_in_one_request() {
    let s = Server::start();
    let issuer = ca_cert("aci-el-pp");
    let roots = pki().roots.clone();
    let url = s.url("/ocsp");
    let g = good("aci-el-pp").path.clone();
    let r = revoked("aci-el-pp", "affiliationChanged").path.clone();
    let args = [
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(&g),
        "-cert",
        path_str(&r),
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ];
    let out = text(&openssl(&args));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{}: good", g.display())), "{out}");
    assert!(out.contains(&format!("{}: revoked", r.display())), "{out}");
}

#[test]
fn legacy_and_new_pki_side_by_side() {
    let s = Server::start();
    for ca in ["aci-el-org", "aci-el-pp", "gip-cps-c4"] {
        let out = ocsp_cli(&s, ca, &good(ca).path, &["-no_nonce"]);
        assert!(
            out.contains("Response verify OK") && out.contains("Cert Status: good"),
            "{ca}: {out}"
        );
    }
}

fn request_der(ca: &str, cert: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("req.der");
    let issuer = ca_cert(ca);
    let mut args = vec![
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(cert),
        "-reqout",
        path_str(&out),
    ];
    args.extend_from_slice(extra);
    let o = openssl(&args);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(&out).expect("request written")
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body");
    let o = Command::new("curl")
        .args(["-s", "-D", "-", "-o", path_str(&body)])
        .args(args)
        .output()
        .expect("curl");
    assert!(o.status.success(), "curl failed: {}", text(&o));
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Verifies a response with the openssl crate against the roots and returns the status of `cert`.
fn verify_and_status(der: &[u8], ca: &str, cert: &std::path::Path) -> OcspCertStatus {
    let resp = OcspResponse::from_der(der).expect("DER OCSPResponse");
    assert_eq!(resp.status(), OcspResponseStatus::SUCCESSFUL);
    let basic = resp.basic().expect("basic response");
    let mut store = X509StoreBuilder::new().expect("store");
    for c in X509::stack_from_pem(&std::fs::read(&pki().roots).expect("roots")).expect("pem") {
        store.add_cert(c).expect("add");
    }
    let store = store.build();
    let mut untrusted = Stack::new().expect("stack");
    untrusted
        .push(X509::from_pem(&std::fs::read(ca_cert(ca)).expect("ca")).expect("pem"))
        .expect("push");
    basic
        .verify(&untrusted, &store, OcspFlag::empty())
        .expect("signature and chain verify");
    let issuer = X509::from_pem(&std::fs::read(ca_cert(ca)).expect("ca")).expect("pem");
    let subject = X509::from_pem(&std::fs::read(cert).expect("cert")).expect("pem");
    let id = openssl::ocsp::OcspCertId::from_cert(
        openssl::hash::MessageDigest::sha1(),
        &subject,
        &issuer,
    )
    .expect("certid");
    let st = basic.find_status(&id).expect("status for our CertID");
    st.check_validity(300, None)
        .expect("thisUpdate/nextUpdate valid now");
    st.status
}

#[test]
fn get_with_caching_headers_and_revalidation() {
    let s = Server::start();
    let cert = good("aci-el-pp");
    let der = request_der("aci-el-pp", &cert.path, &["-no_nonce"]);
    // Raw base64 in the path, '/' and '+' as they come.
    let url = s.url(&format!("/ocsp/{}", b64(&der)));
    let (headers, body) = curl(&[&url]);
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/ocsp-response")
    );
    let cc = header(&headers, "cache-control").expect("Cache-Control");
    assert!(
        cc.contains("public") && cc.contains("no-transform") && cc.contains("must-revalidate"),
        "{cc}"
    );
    let max_age: i64 = cc
        .split(',')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .expect("max-age");
    assert!(
        max_age > 0 && max_age <= 3600,
        "capped at the default 1h: {max_age}"
    );
    let etag = header(&headers, "etag").expect("ETag").to_owned();
    let last_modified = header(&headers, "last-modified")
        .expect("Last-Modified")
        .to_owned();
    let expires = header(&headers, "expires").expect("Expires").to_owned();
    assert_eq!(
        verify_and_status(&body, "aci-el-pp", &cert.path),
        OcspCertStatus::GOOD
    );

    // Last-Modified = thisUpdate, Expires = nextUpdate (RFC 9919 §5).
    let resp = OcspResponse::from_der(&body).expect("der");
    let basic = resp.basic().expect("basic");
    let issuer = X509::from_pem(&std::fs::read(ca_cert("aci-el-pp")).expect("ca")).expect("pem");
    let subject = X509::from_pem(&std::fs::read(&cert.path).expect("cert")).expect("pem");
    let id = openssl::ocsp::OcspCertId::from_cert(
        openssl::hash::MessageDigest::sha1(),
        &subject,
        &issuer,
    )
    .expect("id");
    let st = basic.find_status(&id).expect("status");
    let lm = httpdate::parse_http_date(&last_modified).expect("http date");
    let this_update = openssl::asn1::Asn1Time::from_unix(
        lm.duration_since(std::time::UNIX_EPOCH)
            .expect("after epoch")
            .as_secs() as i64,
    )
    .expect("time");
    // Both print as "Mon DD HH:MM:SS YYYY GMT".
    assert_eq!(st.this_update.to_string(), this_update.to_string());
    let exp = httpdate::parse_http_date(&expires).expect("http date");
    let next_update = openssl::asn1::Asn1Time::from_unix(
        exp.duration_since(std::time::UNIX_EPOCH)
            .expect("epoch")
            .as_secs() as i64,
    )
    .expect("t");
    assert_eq!(
        st.next_update().expect("nextUpdate").to_string(),
        next_update.to_string()
    );

    // The same request percent-encoded, and the URL-safe form, give the same bytes.
    let (_, body2) = curl(&[&s.url(&format!("/{}", vigie::ocsp::request::to_get_path(&der)))]);
    assert_eq!(body2, body);

    let (h304, b304) = curl(&["-H", &format!("If-None-Match: {etag}"), &url]);
    assert!(h304.starts_with("HTTP/1.1 304"), "{h304}");
    assert!(b304.is_empty());
    let (h304, _) = curl(&["-H", &format!("If-Modified-Since: {last_modified}"), &url]);
    assert!(h304.starts_with("HTTP/1.1 304"), "{h304}");
    let (h200, _) = curl(&["-H", "If-None-Match: \"other\"", &url]);
    assert!(h200.starts_with("HTTP/1.1 200"), "{h200}");

    // The saved response checks out with the CLI too.
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = dir.path().join("resp.der");
    std::fs::write(&saved, &body).expect("write");
    let issuer_path = ca_cert("aci-el-pp");
    let roots = pki().roots.clone();
    let out = text(&openssl(&[
        "ocsp",
        "-respin",
        path_str(&saved),
        "-issuer",
        path_str(&issuer_path),
        "-cert",
        path_str(&cert.path),
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ]));
    assert!(
        out.contains("Response verify OK") && out.contains("Cert Status: good"),
        "{out}"
    );
}

#[test]
fn get_of_an_unknown_serial_is_not_cacheable() {
    let s = Server::start();
    let issuer = ca_cert("aci-el-pp");
    let dir = tempfile::tempdir().expect("tempdir");
    let req = dir.path().join("req.der");
    let o = openssl(&[
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-serial",
        "0x42",
        "-no_nonce",
        "-reqout",
        path_str(&req),
    ]);
    assert!(o.status.success());
    let der = std::fs::read(&req).expect("req");
    let (headers, body) = curl(&[&s.url(&format!("/ocsp/{}", b64(&der)))]);
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert!(header(&headers, "etag").is_none());
    let resp = OcspResponse::from_der(&body).expect("der");
    let basic = resp.basic().expect("basic");
    let _ = basic;
}

#[test]
fn revoked_status_via_get_and_the_crate() {
    let s = Server::start();
    let cert = revoked("aci-el-org", "superseded");
    let der = request_der("aci-el-org", &cert.path, &["-no_nonce"]);
    let (_, body) = curl(&[&s.url(&format!("/ocsp/{}", b64(&der)))]);
    assert_eq!(
        verify_and_status(&body, "aci-el-org", &cert.path),
        OcspCertStatus::REVOKED
    );
    let resp = OcspResponse::from_der(&body).expect("der");
    let basic = resp.basic().expect("basic");
    let issuer = X509::from_pem(&std::fs::read(ca_cert("aci-el-org")).expect("ca")).expect("pem");
    let subject = X509::from_pem(&std::fs::read(&cert.path).expect("cert")).expect("pem");
    let id = openssl::ocsp::OcspCertId::from_cert(
        openssl::hash::MessageDigest::sha1(),
        &subject,
        &issuer,
    )
    .expect("id");
    let st = basic.find_status(&id).expect("status");
    assert_eq!(st.reason, OcspRevokedStatus::STATUS_SUPERSEDED);
}

#[test]
fn health_readiness_and_metrics() {
    let s = Server::start();
    let _ = ocsp_cli(&s, "aci-el-pp", &good("aci-el-pp").path, &["-no_nonce"]);
    let (h, body) = curl(&[&s.admin_url("/healthz")]);
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(String::from_utf8_lossy(&body).contains("ok"));
    let (h, body) = curl(&[&s.admin_url("/readyz")]);
    assert!(
        h.starts_with("HTTP/1.1 200"),
        "{h} {}",
        String::from_utf8_lossy(&body)
    );
    let (_, body) = curl(&[&s.admin_url("/metrics")]);
    let m = String::from_utf8_lossy(&body);
    assert!(
        m.contains("vigie_ocsp_responses_total{status=\"good\",method=\"POST\"}"),
        "{m}"
    );
    assert!(m.contains("vigie_ocsp_cache_total"), "{m}");
    assert!(m.contains("vigie_ocsp_signing_seconds_bucket"), "{m}");
    // The admin listener is not the public one: no OCSP there, and no metrics on the public side.
    let (h, body) = curl(&[&s.url("/metrics")]);
    assert!(
        !String::from_utf8_lossy(&body).contains("vigie_ocsp"),
        "{h}"
    );
    let (h, body) = curl(&[&s.admin_url("/nothing")]);
    assert!(h.starts_with("HTTP/1.1 404"), "{h}");
    assert!(
        h.to_ascii_lowercase().contains("application/problem+json"),
        "{h}"
    );
    assert!(String::from_utf8_lossy(&body).contains("\"status\":404"));
}
