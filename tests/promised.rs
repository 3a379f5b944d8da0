//! What vigie promises in its documentation and configuration, tested end to end: the real
//! `vigie` binary over HTTP on a real RocksDB, answers read by implementations vigie does not use
//! to build them (the `openssl` CLI and crate, RustCrypto's `x509-ocsp`).
//!
//! - SHA-384 and SHA-512 CertIDs are answered and echoed (RFC 6960 §4.1.1, §4.2.1);
//! - GET paths in URL-safe base64, without padding, or percent-encoded (RFC 6960 App. A.1,
//!   RFC 9919 §3.1; the `//` merging and `%2F` rewriting of real proxies);
//! - `tryLater` when the signing pool is saturated, never a growing queue (`[ocsp] signing_queue`);
//! - a CA without a valid CRL: its CRL URL answers 503 with a problem body, its `/readyz` entry
//!   is not ready (and `/readyz?strict=true` is 503), the other CAs are unaffected;
//! - the deadline watchdog rebuilds a CRL once it is within `[crl] safety_margin` of its
//!   nextUpdate, not before (fixed clock);
//! - `vigie crl build --delta`;
//! - `[admin] token_file`;
//! - non-default `[ocsp] max_age_cap` and `[crl] max_age_cap`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::api::{Api, golden};
use common::*;
use openssl::ocsp::{OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use serde_json::Value;
use vigie::clock::{Clock, FixedClock};
use vigie::config::Config;
use vigie::crl::{CrlKind, Publisher};
use vigie::ingest::{self, Change, RevocationRequest};
use vigie::model::{CaId, Issuance, RevocationReason, Serial};
use vigie::pki::demo::SampleStatus;

const CA: &str = "aci-el-pp";

/// An HTTP answer: status, headers (lower-case names), body.
struct Got {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

fn http(method: &str, url: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Got {
    let mut req = ureq::request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_owned();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("body");
    Got {
        status,
        headers,
        body: bytes,
    }
}

fn get(url: &str) -> Got {
    http("GET", url, None, &[])
}

fn post_ocsp(url: &str, der: &[u8]) -> Got {
    http(
        "POST",
        url,
        Some(der),
        &[("Content-Type", "application/ocsp-request")],
    )
}

/// An OCSP request made by `openssl ocsp -reqout` (CertID hash `digest`, a random nonce unless
/// `-no_nonce` is in `extra`) for `serial` (hex) of `ca`.
fn openssl_request(ca: &str, serial_hex: &str, digest: &str, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("req.der");
    let issuer = ca_cert(ca);
    let serial = format!("0x{serial_hex}");
    // The digest goes before -serial: `openssl ocsp` applies it to the CertIDs that follow.
    let mut args = vec![
        "ocsp",
        digest,
        "-issuer",
        path_str(&issuer),
        "-serial",
        &serial,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-reqout", path_str(&out)]);
    let o = openssl(&args);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(&out).expect("request written")
}

/// Verifies `der` with the `openssl` crate (signature, chain to the demo roots) and returns the
/// status it gives `cert` under a CertID of `digest`.
fn verified_status(
    der: &[u8],
    ca: &str,
    cert: &Path,
    digest: openssl::hash::MessageDigest,
) -> OcspCertStatus {
    let resp = OcspResponse::from_der(der).expect("DER OCSPResponse");
    assert_eq!(resp.status(), OcspResponseStatus::SUCCESSFUL);
    let basic = resp.basic().expect("basic response");
    let mut store = X509StoreBuilder::new().expect("store");
    for c in X509::stack_from_pem(&std::fs::read(&pki().roots).expect("roots")).expect("pem") {
        store.add_cert(c).expect("add");
    }
    let store = store.build();
    let issuer = X509::from_pem(&std::fs::read(ca_cert(ca)).expect("ca")).expect("pem");
    let mut untrusted = Stack::new().expect("stack");
    untrusted.push(issuer.clone()).expect("push");
    basic
        .verify(&untrusted, &store, OcspFlag::empty())
        .expect("signature and chain verify");
    let subject = X509::from_pem(&std::fs::read(cert).expect("cert")).expect("pem");
    let id = openssl::ocsp::OcspCertId::from_cert(digest, &subject, &issuer).expect("certid");
    let st = basic
        .find_status(&id)
        .expect("a SingleResponse for exactly the CertID asked (hash algorithm included)");
    st.check_validity(300, None)
        .expect("thisUpdate/nextUpdate valid now");
    st.status
}

/// The nonce extension's value (RFC 9654) of a request or of a response, read with x509-ocsp.
fn request_nonce(der: &[u8]) -> Vec<u8> {
    use der::Decode;
    let req = x509_ocsp::OcspRequest::from_der(der).expect("request parses");
    let exts = req.tbs_request.request_extensions.expect("a nonce");
    exts.iter()
        .find(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE)
        .expect("nonce extension")
        .extn_value
        .as_bytes()
        .to_vec()
}

fn response_nonce(der: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let resp = x509_ocsp::OcspResponse::from_der(der).expect("response parses");
    let bytes = resp.response_bytes?;
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
    basic
        .tbs_response_data
        .response_extensions?
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE)
        .map(|e| e.extn_value.as_bytes().to_vec())
}

fn metric(server: &Server, name_and_labels: &[&str]) -> f64 {
    let body = get(&server.admin_url("/metrics")).body;
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| name_and_labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn wait_ready(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&s.admin_url("/readyz")).status != 200 {
        assert!(Instant::now() < deadline, "never ready: {}", s.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// CertID hash algorithms
// ---------------------------------------------------------------------------------------------

#[test]
fn sha384_and_sha512_cert_ids_are_answered_and_echoed() {
    let s = Server::start();
    let roots = pki().roots.clone();
    let issuer = ca_cert(CA);
    let url = s.url("/ocsp");
    for (flag, name) in [("-sha384", "sha384"), ("-sha512", "sha512")] {
        for (cert, want) in [
            (good(CA), "good"),
            (
                sample(CA, |st| matches!(st, SampleStatus::Revoked { .. })),
                "revoked",
            ),
        ] {
            // The openssl CLI as a client: it builds the CertID with this hash and looks for a
            // SingleResponse with exactly that CertID.
            let out = text(&openssl(&[
                "ocsp",
                flag,
                "-issuer",
                path_str(&issuer),
                "-cert",
                path_str(&cert.path),
                "-url",
                &url,
                "-CAfile",
                path_str(&roots),
                "-resp_text",
            ]));
            assert!(out.contains("Response verify OK"), "{name}: {out}");
            assert!(
                out.contains(&format!("Cert Status: {want}")),
                "{name}: {out}"
            );
            assert!(
                out.contains(&format!("Hash Algorithm: {name}")),
                "{name} echoed: {out}"
            );
            assert!(out.contains("OCSP Nonce"), "nonce echoed: {out}");
        }
        // And through the openssl crate, on a POST of a request without nonce.
        let cert = good(CA);
        let der = openssl_request(CA, &cert.serial_hex, flag, &["-no_nonce"]);
        let got = post_ocsp(&url, &der);
        assert_eq!(got.status, 200);
        let digest = if name == "sha384" {
            openssl::hash::MessageDigest::sha384()
        } else {
            openssl::hash::MessageDigest::sha512()
        };
        assert_eq!(
            verified_status(&got.body, CA, &cert.path, digest),
            OcspCertStatus::GOOD
        );
    }
}

// ---------------------------------------------------------------------------------------------
// GET encodings
// ---------------------------------------------------------------------------------------------

#[test]
fn get_paths_in_url_safe_unpadded_and_percent_encoded_base64() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = Server::start();
    let cert = good(CA);
    // A request whose standard base64 has '+', '/' and padding: random nonces vary the
    // characters, the CertID hash the length (so the padding).
    let digests = [
        ("-sha1", openssl::hash::MessageDigest::sha1()),
        ("-sha256", openssl::hash::MessageDigest::sha256()),
        ("-sha384", openssl::hash::MessageDigest::sha384()),
        ("-sha512", openssl::hash::MessageDigest::sha512()),
    ];
    let (digest, der) = (0..200)
        .flat_map(|_| digests.iter())
        .map(|(flag, md)| (*md, openssl_request(CA, &cert.serial_hex, flag, &[])))
        .find(|(_, d)| {
            let b = STANDARD.encode(d);
            b.contains('+') && b.contains('/') && b.ends_with('=')
        })
        .expect("some nonce gives '+', '/' and padding");
    let nonce = request_nonce(&der);
    let standard = STANDARD.encode(&der);
    let percent = standard
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let forms = [
        ("standard", standard.clone()),
        ("standard, unpadded", STANDARD_NO_PAD.encode(&der)),
        ("URL-safe", URL_SAFE.encode(&der)),
        ("URL-safe, unpadded", URL_SAFE_NO_PAD.encode(&der)),
        ("percent-encoded", percent.clone()),
        (
            "percent-encoded, lower-case hex",
            standard
                .replace('+', "%2b")
                .replace('/', "%2f")
                .replace('=', "%3d"),
        ),
    ];
    for (what, path) in forms {
        for prefix in ["/ocsp/", "/"] {
            let got = get(&s.url(&format!("{prefix}{path}")));
            assert_eq!(got.status, 200, "{what} under {prefix}");
            assert_eq!(
                got.header("content-type"),
                Some("application/ocsp-response"),
                "{what}"
            );
            assert_eq!(
                verified_status(&got.body, CA, &cert.path, digest),
                OcspCertStatus::GOOD,
                "{what} under {prefix}"
            );
            assert_eq!(
                response_nonce(&got.body).as_deref(),
                Some(&nonce[..]),
                "{what}: the nonce of this very request echoed"
            );
        }
    }
    // Base64 that does not decode to a request is malformedRequest, never a 5xx or a guess.
    for bad in ["AAAA", "%ZZ", "not*base64"] {
        let got = get(&s.url(&format!("/ocsp/{bad}")));
        assert!(got.status < 500, "{bad}: {}", got.status);
        let resp = OcspResponse::from_der(&got.body).expect("an OCSP response");
        assert_eq!(
            resp.status(),
            OcspResponseStatus::MALFORMED_REQUEST,
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// tryLater
// ---------------------------------------------------------------------------------------------

/// DER of an OCSPResponse with status tryLater (RFC 6960 §4.2.1: `30 03 0a 01 03`).
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];

#[test]
fn try_later_when_the_signing_pool_is_saturated() {
    // One signing thread, one waiting job; nothing pre-signed; rations out of the way (every
    // signature may be anonymous, no per-client limit), so the pool is what refuses.
    let opts = Options {
        only: Some(vec![CA]),
        admin_extra: token_line(TOKEN),
        ca_extra: vec![(CA.into(), "presign = false".into())],
        global_extra: "signing_queue = 1\nanonymous_sign_share = 1.0\n\
                       sign_rate_per_client = 1000000\nsign_burst_per_client = 1000000\n"
            .into(),
        ..Options::default()
    };
    let mut s = Server::configured(&opts);
    let written = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &s.config,
        written.replace("signing_threads = 2", "signing_threads = 1"),
    )
    .expect("config");
    seed(&s.config);
    s.spawn();

    // Many registered serials, each under four CertID hashes: every request needs a signature
    // of its own (a nonce) and its shared answer is not signed yet.
    let api = Api::new(&s, Some(TOKEN));
    let mut serials = Vec::new();
    let mut pem = String::new();
    for _ in 0..24 {
        let serial = common::api::random_serial();
        pem.push_str(&common::api::pem(&common::api::issue(CA, &serial, None)));
        serials.push(serial);
    }
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(pem.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut requests = Vec::new();
    for serial in &serials {
        for digest in ["-sha1", "-sha256", "-sha384", "-sha512"] {
            requests.push(openssl_request(CA, serial, digest, &[]));
        }
    }

    let url = s.url("/ocsp");
    let barrier = Arc::new(std::sync::Barrier::new(requests.len()));
    let handles: Vec<_> = requests
        .into_iter()
        .map(|der| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                barrier.wait();
                let resp = agent
                    .post(&url)
                    .set("Content-Type", "application/ocsp-request")
                    .send_bytes(&der);
                let resp = match resp {
                    Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                    Err(e) => panic!("{e}"),
                };
                let status = resp.status();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
                (status, der, body)
            })
        })
        .collect();
    let answers: Vec<(u16, Vec<u8>, Vec<u8>)> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();

    let mut try_later = 0;
    let mut signed = 0;
    for (status, req, body) in &answers {
        assert!(*status < 500, "HTTP {status}");
        if body[..] == TRY_LATER {
            try_later += 1;
            continue;
        }
        let resp = OcspResponse::from_der(body).expect("an OCSP response");
        assert_eq!(
            resp.status(),
            OcspResponseStatus::SUCCESSFUL,
            "only tryLater or a signed answer"
        );
        // A signed answer is a complete one: its nonce is this request's, or none (RFC 9654
        // §2.1 lets a busy responder leave it out), never another's.
        if let Some(n) = response_nonce(body) {
            assert_eq!(n, request_nonce(req));
        }
        signed += 1;
    }
    assert!(
        try_later > 0,
        "{} concurrent requests on one signing thread and a queue of one: no tryLater ({signed} signed)",
        answers.len()
    );
    assert!(signed > 0, "the pool still signs while saturated");

    // What an independent client reads in such an answer.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("trylater.der");
    std::fs::write(&f, TRY_LATER).expect("written");
    let out = text(&openssl(&[
        "ocsp",
        "-respin",
        path_str(&f),
        "-resp_text",
        "-noverify",
    ]));
    assert!(out.to_ascii_lowercase().contains("trylater"), "{out}");

    // The pool refused, not a ration: more tryLater answers than rationed refusals.
    let counted = metric(&s, &["vigie_ocsp_responses_total{", "status=\"tryLater\""]);
    let rationed = metric(&s, &["vigie_ocsp_rationed_total{", "outcome=\"try_later\""]);
    assert!(
        counted >= try_later as f64 && counted > rationed,
        "tryLater counted {counted}, rationed {rationed}, seen {try_later}"
    );

    // No queue left behind: once the burst is over, every request is answered.
    for serial in serials.iter().take(4) {
        let der = openssl_request(CA, serial, "-sha1", &[]);
        let got = post_ocsp(&url, &der);
        assert_ne!(got.body[..], TRY_LATER, "still refusing after the burst");
        assert_eq!(response_nonce(&got.body), Some(request_nonce(&der)));
    }
}

// ---------------------------------------------------------------------------------------------
// A CA without a valid CRL
// ---------------------------------------------------------------------------------------------

#[test]
fn a_ca_without_a_valid_crl_answers_503_and_is_not_ready_while_others_serve() {
    const BROKEN: &str = "aci-el-org";
    const HEALTHY: &str = "aci-el-pp";
    let never = |ca: &str| {
        vec![
            (ca.to_owned(), "crl_schedule = \"0 0 0 1 1 *\"".to_owned()),
            (ca.to_owned(), "delta_schedule = \"\"".to_owned()),
        ]
    };
    let mut ca_extra = never(BROKEN);
    ca_extra.extend(never(HEALTHY));
    let opts = Options {
        only: Some(vec![BROKEN, HEALTHY]),
        ca_extra,
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let config_path = write_config(dir.path(), &opts);
    seed(&config_path);
    {
        // The broken CA's last CRL was built ten days ago (a 7-day validity: expired since),
        // and its CRL number sequence is exhausted: no new CRL can be built for it — a build
        // failure a test can cause without touching the disk or the key.
        let config = Config::load(&config_path).expect("config");
        let store = Arc::new(vigie::service::open_store(&config).expect("store"));
        let clock = Arc::new(FixedClock::new(now().minus(10 * 86400)));
        let registry = vigie::pki::CaRegistry::from_config(&config);
        let publisher = Publisher::new(&config, &registry, Arc::clone(&store), clock.clone())
            .expect("publisher");
        let built = publisher.publish(BROKEN, CrlKind::Full).expect("built");
        assert_eq!(built.len(), 1);
        let ca = CaId::new(BROKEN).expect("id");
        let serial = Serial::from_hex(&common::api::random_serial()).expect("serial");
        store
            .transact(
                std::slice::from_ref(&ca),
                now(),
                |tx| -> Result<(), vigie::Error> {
                    ingest::apply(
                        tx,
                        &ca,
                        &serial,
                        &Change::Issue(Issuance {
                            not_before: now().minus(86400),
                            not_after: now().plus(86400),
                            subject: None,
                            profile: None,
                        }),
                    )?;
                    tx.put_meta(
                        &ca,
                        vigie::crl::NEXT_NUMBER,
                        u64::MAX.to_be_bytes().to_vec(),
                    );
                    Ok(())
                },
            )
            .expect("sequence at its end");
        store.flush().expect("flushed");
    }
    let s = Server::start_on(dir, config_path);

    for path in [format!("/crl/{BROKEN}.crl"), format!("/crl/{BROKEN}.pem")] {
        let got = get(&s.url(&path));
        assert_eq!(
            got.status,
            503,
            "{path}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(got.header("content-type"), Some("application/problem+json"));
        let problem: Value = serde_json::from_slice(&got.body).expect("JSON");
        common::schema::assert_valid("Problem", &problem, &path);
        assert_eq!(problem["type"], "unavailable");
        if path.ends_with(".crl") {
            golden("unavailable-no-valid-crl", &got.body);
        }
    }
    let healthy = get(&s.url(&format!("/crl/{HEALTHY}.crl")));
    assert_eq!(healthy.status, 200, "the other CA's CRL is served");

    let readyz = get(&s.admin_url("/readyz"));
    let body: Value = serde_json::from_slice(&readyz.body).expect("JSON");
    common::schema::assert_valid("Readiness", &body, "/readyz");
    let entry = |id: &str| -> Value {
        body["cas"]
            .as_array()
            .expect("cas")
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in /readyz: {body}"))
    };
    let broken = entry(BROKEN);
    assert_eq!(broken["ready"], false, "{body}");
    let problems = broken["problems"].to_string();
    assert!(
        problems.contains("expired"),
        "the problem is named: {problems}"
    );
    assert_eq!(entry(HEALTHY)["ready"], true, "{body}");
    // `/readyz` itself stays 200 while the healthy CAs serve (a load balancer must not drop
    // them); `?strict=true` is the one that is 503 while any CA is down.
    assert_eq!(
        readyz.status,
        200,
        "{}",
        String::from_utf8_lossy(&readyz.body)
    );
    let strict = get(&s.admin_url("/readyz?strict=true"));
    assert_eq!(
        strict.status,
        503,
        "{}",
        String::from_utf8_lossy(&strict.body)
    );

    // The failure is counted, and OCSP for that CA is unaffected.
    assert!(
        metric(&s, &["vigie_crl_build_failures_total{", BROKEN]) >= 1.0,
        "build failures counted"
    );
    let cert = good(BROKEN);
    let der = openssl_request(BROKEN, &cert.serial_hex, "-sha1", &["-no_nonce"]);
    let got = post_ocsp(&s.url("/ocsp"), &der);
    assert_eq!(
        verified_status(
            &got.body,
            BROKEN,
            &cert.path,
            openssl::hash::MessageDigest::sha1()
        ),
        OcspCertStatus::GOOD
    );
}

// ---------------------------------------------------------------------------------------------
// The deadline watchdog, on a fixed clock
// ---------------------------------------------------------------------------------------------

#[test]
fn the_watchdog_rebuilds_a_crl_within_the_safety_margin_and_not_before() {
    const MARGIN: i64 = 4;
    let opts = Options {
        only: Some(vec![CA]),
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"\"".into()),
            (CA.into(), "crl_validity = \"1d\"".into()),
        ],
        global_extra: format!("[crl]\nsafety_margin = \"{MARGIN}s\"\n"),
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let config_path = write_config(dir.path(), &opts);
    seed(&config_path);
    let config = Config::load(&config_path).expect("config");
    assert_eq!(config.crl.safety_margin, MARGIN);
    let store = Arc::new(vigie::service::open_store(&config).expect("store"));
    let t0 = now();
    let clock = Arc::new(FixedClock::new(t0));
    let registry = vigie::pki::CaRegistry::from_config(&config);
    let publisher = Arc::new(
        Publisher::new(&config, &registry, Arc::clone(&store), clock.clone()).expect("publisher"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let schedule = rt
        .block_on(vigie::crl::schedule::Schedule::start(Arc::clone(
            &publisher,
        )))
        .expect("schedule starts");
    // A quarter of the margin, at least a second: the watchdog looks every second.
    assert_eq!(
        vigie::crl::schedule::watchdog_period(&publisher),
        Duration::from_secs(1)
    );
    let full = || publisher.current(CA).expect("CA").full;
    let wait_for = |what: &str, test: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !test() {
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The first round publishes the missing CRL.
    wait_for("the first CRL", &|| full().is_some());
    let first = full().expect("published");
    let next_update = first.record.next_update;
    assert_eq!(
        next_update.0 - first.record.this_update.0,
        86400,
        "crl_validity"
    );

    // Just outside the margin: three watchdog rounds, nothing rebuilt.
    clock.set(next_update.minus(MARGIN + 2));
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        full().expect("current").record.number,
        first.record.number,
        "rebuilt before the safety margin"
    );

    // Within the margin: rebuilt by the next round, stamped with the (fixed) clock.
    let inside = next_update.minus(MARGIN - 1);
    clock.set(inside);
    wait_for("the rebuild within the margin", &|| {
        full().is_some_and(|c| c.record.number > first.record.number)
    });
    let second = full().expect("current");
    assert_eq!(
        second.record.this_update,
        inside.minus(config.crl.backdate),
        "thisUpdate from the injected clock"
    );
    assert_eq!(
        second.record.next_update,
        second.record.this_update.plus(86400)
    );
    let crl = openssl::x509::X509Crl::from_der(&second.der).expect("DER");
    let issuer = X509::from_pem(&std::fs::read(ca_cert(CA)).expect("CA")).expect("PEM");
    assert!(
        crl.verify(&issuer.public_key().expect("key"))
            .expect("verifies")
    );
    assert_eq!(number(&crl), second.record.number);
    rt.block_on(schedule.stop());
    assert_eq!(clock.now(), inside);
}

// ---------------------------------------------------------------------------------------------
// `vigie crl build --delta`
// ---------------------------------------------------------------------------------------------

fn crl_build(config: &Path, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["crl", "build", "--ca", CA, "--config"])
        .arg(config)
        .args(extra)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verify_crl_cli(dir: &Path, der: &[u8]) -> String {
    let f = dir.join("check.crl");
    std::fs::write(&f, der).expect("written");
    let o = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&f),
        "-CAfile",
        path_str(&ca_cert(CA)),
        "-verify",
        "-noout",
        "-text",
    ]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("verify OK"), "{out}");
    out
}

#[test]
fn crl_build_delta_builds_a_base_first_then_deltas_on_it() {
    let opts = Options {
        only: Some(vec![CA]),
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"0 0 0 1 1 *\"".into()),
        ],
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let config_path = write_config(dir.path(), &opts);
    seed(&config_path);
    let work = tempfile::tempdir().expect("tmp");

    // No CRL yet: a complete CRL first, then the delta on it.
    let out_file = work.path().join("delta.crl");
    let printed = crl_build(&config_path, &["--delta", "--out", path_str(&out_file)]);
    assert!(printed.contains("full CRL number 1"), "{printed}");
    assert!(printed.contains("delta CRL number 2 (base 1)"), "{printed}");
    let first = std::fs::read(&out_file).expect("written");
    assert_eq!((number_of(&first), base_of(&first)), (2, Some(1)));
    let t = verify_crl_cli(work.path(), &first);
    assert!(t.contains("Delta CRL Indicator: critical"), "{t}");

    // A revocation after the base (offline: the server is not running), then another delta:
    // on the same base, listing it.
    let target = good(CA);
    {
        let config = Config::load(&config_path).expect("config");
        let store = vigie::service::open_store(&config).expect("store");
        let ca = CaId::new(CA).expect("id");
        let serial = Serial::from_hex(&target.serial_hex).expect("serial");
        store
            .transact(std::slice::from_ref(&ca), now(), |tx| {
                ingest::apply(
                    tx,
                    &ca,
                    &serial,
                    &Change::Revoke(RevocationRequest {
                        revoked_at: Some(now().minus(60)),
                        reason: Some(RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    }),
                )
            })
            .expect("revoked");
        store.flush().expect("flushed");
    }
    let printed = crl_build(&config_path, &["--delta", "--out", path_str(&out_file)]);
    assert!(printed.contains("delta CRL number 3 (base 1)"), "{printed}");
    assert!(
        !printed.contains("full CRL"),
        "no new base needed: {printed}"
    );
    let delta = std::fs::read(&out_file).expect("written");
    assert_eq!((number_of(&delta), base_of(&delta)), (3, Some(1)));
    let crl = openssl::x509::X509Crl::from_der(&delta).expect("DER");
    assert!(
        lists(&crl, &target.serial_hex),
        "the revocation is on the delta"
    );
    let t = verify_crl_cli(work.path(), &delta);
    assert!(t.contains("Key Compromise"), "{t}");

    // The server serves what the CLI built.
    let s = Server::start_on(dir, config_path);
    wait_ready(&s);
    let served = get(&s.url(&format!("/crl/{CA}-delta.crl")));
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body, delta,
        "the delta built offline is the current one"
    );
    assert_eq!(number_of(&get(&s.url(&format!("/crl/{CA}.crl"))).body), 1);
}

// ---------------------------------------------------------------------------------------------
// token_file
// ---------------------------------------------------------------------------------------------

#[test]
fn token_file_grants_the_ingest_api_and_names_the_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tokens.sha256");
    let other = hex::encode(openssl::sha::sha256(b"someone else's token"));
    let ours = hex::encode(openssl::sha::sha256(TOKEN.as_bytes()));
    std::fs::write(
        &file,
        format!("# ingest callers, one SHA-256 per line\n{other}\n\n{ours}\n"),
    )
    .expect("written");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let opts = Options {
        only: Some(vec![CA]),
        admin_extra: format!("token_file = \"{}\"\n", file.display()),
        ..Options::default()
    };
    let s = Server::start_with(&opts);
    let api = Api::new(&s, Some(TOKEN));
    assert_eq!(api.get("/v1/cas").status, 200);
    for token in [None, Some("not-the-token")] {
        let a = Api::new(&s, token).get("/v1/cas");
        a.problem(401);
        golden("unauthorized", &a.body);
    }
    let serial = common::api::random_serial();
    let issued = common::api::issue(CA, &serial, None);
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(common::api::pem(&issued).as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let audit = api.get(&format!("/v1/audit?ca={CA}"));
    assert_eq!(audit.status, 200);
    let entries = audit.json();
    let mine = entries
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["serial"] == serial.trim_start_matches('0').to_ascii_lowercase())
        .unwrap_or_else(|| panic!("the registration is audited: {entries}"));
    // The comment and the blank line count: line 4 is ours.
    assert_eq!(mine["actor"], "token_file line 4", "{mine}");

    // A token file others can read is refused, naming the key and not the content.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["check", "--config"])
        .arg(&s.config)
        .output()
        .expect("runs");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("token_file"), "{said}");
    assert!(!said.contains(&ours), "{said}");
}

// ---------------------------------------------------------------------------------------------
// max_age_cap
// ---------------------------------------------------------------------------------------------

fn max_age(cache_control: &str) -> i64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"))
}

#[test]
fn max_age_caps_are_what_the_configuration_says() {
    let opts = Options {
        only: Some(vec![CA]),
        global_extra: "max_age_cap = \"90s\"\n[crl]\nmax_age_cap = \"75s\"\n".into(),
        ..Options::default()
    };
    let s = Server::start_with(&opts);
    wait_ready(&s);
    let cert = good(CA);
    let der = openssl_request(CA, &cert.serial_hex, "-sha1", &["-no_nonce"]);
    use base64::Engine;
    let path = base64::engine::general_purpose::STANDARD.encode(&der);
    let got = get(&s.url(&format!("/ocsp/{path}")));
    assert_eq!(got.status, 200);
    let cc = got
        .header("cache-control")
        .expect("Cache-Control")
        .to_owned();
    let age = max_age(&cc);
    // nextUpdate is days away: the cap, not the validity, bounds max-age (RFC 9919 §4).
    assert!((85..=90).contains(&age), "[ocsp] max_age_cap = 90s: {cc}");
    for d in ["public", "no-transform", "must-revalidate"] {
        assert!(cc.contains(d), "{cc}");
    }
    assert!(got.header("expires").is_some() && got.header("last-modified").is_some());

    for path in [format!("/crl/{CA}.crl"), format!("/crl/{CA}-delta.crl")] {
        let got = get(&s.url(&path));
        assert_eq!(got.status, 200, "{path}");
        let cc = got
            .header("cache-control")
            .expect("Cache-Control")
            .to_owned();
        assert!(
            (70..=75).contains(&max_age(&cc)),
            "{path}: [crl] max_age_cap = 75s: {cc}"
        );
    }
}
