//! Malformed OCSP requests, each answered with the right OCSP error status (never an HTML page),
//! and the server still healthy afterwards.

mod common;

use std::time::Duration;

use common::*;
use openssl::ocsp::{OcspResponse, OcspResponseStatus};

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// POSTs `body` and returns (HTTP status, OCSP status).
fn post(url: &str, content_type: Option<&str>, body: &[u8]) -> (u16, OcspResponseStatus) {
    let mut req = agent().post(url);
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error for a {}-byte body: {e}", body.len()),
    };
    read(resp)
}

fn get(url: &str) -> (u16, OcspResponseStatus) {
    let resp = match agent().get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error for {url}: {e}"),
    };
    read(resp)
}

fn read(resp: ureq::Response) -> (u16, OcspResponseStatus) {
    let status = resp.status();
    assert_eq!(
        resp.content_type(),
        "application/ocsp-response",
        "HTTP {status}"
    );
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("body");
    let parsed = OcspResponse::from_der(&bytes)
        .unwrap_or_else(|e| panic!("not an OCSPResponse ({e}): {bytes:02x?}"));
    (status, parsed.status())
}

fn valid_request(nonce: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("req.der");
    let issuer = ca_cert("aci-el-pp");
    let cert = good("aci-el-pp").path.clone();
    let mut args = vec![
        "ocsp",
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(&cert),
        "-reqout",
        path_str(&out),
    ];
    args.extend_from_slice(nonce);
    let o = openssl(&args);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(out).expect("req")
}

/// A request with a nonce extension whose inner OCTET STRING has `len` octets.
fn with_nonce_len(len: usize) -> Vec<u8> {
    let base = valid_request(&["-no_nonce"]);
    // Rebuild with the library's encoder, from the CertID the CLI made.
    let parsed = vigie::ocsp::request::parse(&base).expect("valid");
    let c = &parsed.queries[0].cert_id;
    let nonce = vec![0x5a; len];
    vigie::ocsp::request::build(
        parsed.queries[0].alg,
        c.issuer_name_hash.as_bytes(),
        c.issuer_key_hash.as_bytes(),
        c.serial_number.as_bytes(),
        Some(&nonce),
    )
    .expect("encodes")
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 128 {
        vec![n as u8]
    } else if n < 256 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

/// An OCSPRequest with one CertID built from parts.
fn request_with(alg: &[u8], name_hash: &[u8], key_hash: &[u8], serial: &[u8]) -> Vec<u8> {
    let cert_id = tlv(
        0x30,
        &[
            alg.to_vec(),
            tlv(0x04, name_hash),
            tlv(0x04, key_hash),
            tlv(0x02, serial),
        ]
        .concat(),
    );
    let request = tlv(0x30, &cert_id);
    let list = tlv(0x30, &request);
    let tbs = tlv(0x30, &list);
    tlv(0x30, &tbs)
}

#[test]
fn malformed_requests_get_ocsp_errors_and_the_server_stays_healthy() {
    let s = Server::start();
    let url = s.url("/ocsp");
    let valid = valid_request(&["-no_nonce"]);
    type Case<'a> = (String, Vec<u8>, Option<&'a str>, u16, OcspResponseStatus);
    let mut cases: Vec<Case> = Vec::new();
    let ct = Some("application/ocsp-request");
    let malformed = OcspResponseStatus::MALFORMED_REQUEST;

    cases.push(("empty body".into(), vec![], ct, 200, malformed));
    for n in 1..valid.len() {
        cases.push((
            format!("truncated to {n} bytes"),
            valid[..n].to_vec(),
            ct,
            200,
            malformed,
        ));
    }
    for tag in [0x00u8, 0x02, 0x04, 0x31, 0xa0, 0xff] {
        let mut v = valid.clone();
        v[0] = tag;
        cases.push((format!("outer tag {tag:#04x}"), v, ct, 200, malformed));
    }
    for (i, tag) in [(2usize, 0x31u8), (4, 0x04), (6, 0x02)] {
        let mut v = valid.clone();
        v[i] = tag;
        cases.push((
            format!("inner tag {tag:#04x} at {i}"),
            v,
            ct,
            200,
            malformed,
        ));
    }
    for absurd in [
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        vec![0x30, 0x89, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0x30, 0x80, 0x00, 0x00],
        vec![0x30, 0x82, 0x00, 0x05, 0x30, 0x03, 0x30, 0x01, 0x30],
        vec![0x30, 0x7f],
    ] {
        cases.push((
            format!("absurd length {absurd:02x?}"),
            absurd,
            ct,
            200,
            malformed,
        ));
    }
    let mut trailing = valid.clone();
    trailing.extend_from_slice(&[0, 0]);
    cases.push(("trailing bytes".into(), trailing, ct, 200, malformed));
    cases.push((
        "random bytes".into(),
        (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect(),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "text".into(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ct,
        200,
        malformed,
    ));

    // Structure-level rules.
    let parsed = vigie::ocsp::request::parse(&valid).expect("valid");
    let q = &parsed.queries[0].cert_id;
    let (nh, kh, serial) = (
        q.issuer_name_hash.as_bytes(),
        q.issuer_key_hash.as_bytes(),
        q.serial_number.as_bytes(),
    );
    let sha1_null = [
        0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
    ];
    let md5 = [
        0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00,
    ];
    let sha1_bad_params = [
        0x30, 0x0a, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x04, 0x01, 0x00,
    ];
    cases.push((
        "CertID hashed with MD5".into(),
        request_with(&md5, nh, kh, serial),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "hash parameters not NULL".into(),
        request_with(&sha1_bad_params, nh, kh, serial),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "non-canonical serial (leading zero)".into(),
        request_with(&sha1_null, nh, kh, &[&[0u8, 0x01][..], serial].concat()),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "empty serial".into(),
        request_with(&sha1_null, nh, kh, &[]),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "empty request list".into(),
        tlv(0x30, &tlv(0x30, &tlv(0x30, &[]))),
        ct,
        200,
        malformed,
    ));
    cases.push((
        "issuer key hash of the wrong length".into(),
        request_with(&sha1_null, nh, &kh[..10], serial),
        ct,
        200,
        OcspResponseStatus::UNAUTHORIZED,
    ));
    cases.push((
        "issuer nobody configured".into(),
        request_with(&sha1_null, &[7u8; 20], &[9u8; 20], serial),
        ct,
        200,
        OcspResponseStatus::UNAUTHORIZED,
    ));
    // RFC 9654: a nonce of 0 or more than 128 octets is malformed; 1, 16, 32 and 128 are fine.
    for (len, want) in [(0usize, malformed), (129, malformed), (1000, malformed)] {
        cases.push((
            format!("nonce of {len} octets"),
            with_nonce_len(len),
            ct,
            200,
            want,
        ));
    }
    for len in [1usize, 16, 32, 128] {
        cases.push((
            format!("nonce of {len} octets"),
            with_nonce_len(len),
            ct,
            200,
            OcspResponseStatus::SUCCESSFUL,
        ));
    }
    // Content types and sizes.
    cases.push((
        "wrong content type".into(),
        valid.clone(),
        Some("application/json"),
        415,
        malformed,
    ));
    cases.push((
        "form content type".into(),
        valid.clone(),
        Some("application/x-www-form-urlencoded"),
        415,
        malformed,
    ));
    cases.push((
        "no content type (accepted)".into(),
        valid.clone(),
        None,
        200,
        OcspResponseStatus::SUCCESSFUL,
    ));
    cases.push(("1 MiB body".into(), vec![0x30; 1 << 20], ct, 413, malformed));
    cases.push((
        "5000-byte body".into(),
        vec![0x30; 5000],
        ct,
        413,
        malformed,
    ));

    let mut failures = Vec::new();
    for (name, body, ctype, want_http, want_ocsp) in &cases {
        let (http, ocsp) = post(&url, *ctype, body);
        if http != *want_http || ocsp != *want_ocsp {
            failures.push(format!(
                "{name}: got HTTP {http} {ocsp:?}, want HTTP {want_http} {want_ocsp:?}"
            ));
        }
    }

    // GET paths.
    let gets: Vec<(&str, String, OcspResponseStatus)> = vec![
        ("not base64", "/ocsp/!!!not-base64!!!".into(), malformed),
        ("bad percent escapes", "/ocsp/%zz%zz".into(), malformed),
        ("empty", "/ocsp/".into(), malformed),
        ("root", "/".into(), malformed),
        (
            "base64 of garbage",
            "/ocsp/aGVsbG8gd29ybGQ=".into(),
            malformed,
        ),
        (
            "truncated base64 request",
            format!("/ocsp/{}", &vigie::ocsp::request::to_get_path(&valid)[..20]),
            malformed,
        ),
        (
            "too long",
            format!("/ocsp/{}", "A".repeat(12000)),
            malformed,
        ),
        (
            "valid",
            format!("/ocsp/{}", vigie::ocsp::request::to_get_path(&valid)),
            OcspResponseStatus::SUCCESSFUL,
        ),
    ];
    for (name, path, want) in &gets {
        let (_, ocsp) = get(&s.url(path));
        if ocsp != *want {
            failures.push(format!("GET {name}: got {ocsp:?}, want {want:?}"));
        }
    }
    let total = cases.len() + gets.len();
    assert!(total >= 50, "only {total} cases");
    assert!(
        failures.is_empty(),
        "{} of {total} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Still healthy, still answering.
    let health = agent()
        .get(&s.admin_url("/healthz"))
        .call()
        .expect("healthy");
    assert_eq!(health.status(), 200);
    let (http, ocsp) = post(&url, ct, &valid);
    assert_eq!((http, ocsp), (200, OcspResponseStatus::SUCCESSFUL));
}
