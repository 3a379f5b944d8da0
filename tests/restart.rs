//! Statuses and cached responses survive a restart on the same data directory.

mod common;

use common::*;

fn post(url: &str, body: &[u8]) -> Vec<u8> {
    let resp = ureq::post(url)
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(body)
        .expect("answer");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut out).expect("body");
    out
}

fn request(ca: &str, cert: &std::path::Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("req.der");
    let issuer = ca_cert(ca);
    let o = openssl(&[
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(cert),
        "-no_nonce",
        "-reqout",
        path_str(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(out).expect("req")
}

fn status_of(der: &[u8], ca: &str, cert: &std::path::Path) -> openssl::ocsp::OcspCertStatus {
    let resp = openssl::ocsp::OcspResponse::from_der(der).expect("der");
    let basic = resp.basic().expect("basic");
    let issuer =
        openssl::x509::X509::from_pem(&std::fs::read(ca_cert(ca)).expect("ca")).expect("pem");
    let subject = openssl::x509::X509::from_pem(&std::fs::read(cert).expect("cert")).expect("pem");
    let id = openssl::ocsp::OcspCertId::from_cert(
        openssl::hash::MessageDigest::sha1(),
        &subject,
        &issuer,
    )
    .expect("id");
    basic.find_status(&id).expect("status").status
}

#[test]
fn statuses_and_cached_responses_survive_a_restart() {
    let mut s = Server::start();
    let good_cert = good("aci-el-pp");
    let revoked_cert = revoked("aci-el-org", "keyCompromise");
    let good_req = request("aci-el-pp", &good_cert.path);
    let revoked_req = request("aci-el-org", &revoked_cert.path);
    let before_good = post(&s.url("/ocsp"), &good_req);
    let before_revoked = post(&s.url("/ocsp"), &revoked_req);
    assert_eq!(
        status_of(&before_good, "aci-el-pp", &good_cert.path),
        openssl::ocsp::OcspCertStatus::GOOD
    );
    assert_eq!(
        status_of(&before_revoked, "aci-el-org", &revoked_cert.path),
        openssl::ocsp::OcspCertStatus::REVOKED
    );
    // Served again from the cache: the same bytes.
    assert_eq!(post(&s.url("/ocsp"), &good_req), before_good);

    s.restart();
    // After a restart, the responses come back from the store unchanged (not re-signed: ECDSA
    // signatures are randomised, so identical bytes prove it for the aci-el-org response).
    assert_eq!(post(&s.url("/ocsp"), &good_req), before_good);
    assert_eq!(post(&s.url("/ocsp"), &revoked_req), before_revoked);
    let out = text(&openssl(&[
        "ocsp",
        "-issuer",
        path_str(&ca_cert("aci-el-org")),
        "-cert",
        path_str(&revoked_cert.path),
        "-url",
        &s.url("/ocsp"),
        "-CAfile",
        path_str(&pki().roots),
        "-resp_text",
    ]));
    assert!(
        out.contains("Response verify OK") && out.contains("Cert Status: revoked"),
        "{out}"
    );
    let metrics = ureq::get(&s.admin_url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("vigie_ocsp_cache_total{result=\"store\"}"),
        "{metrics}"
    );
}
