//! A flood of nonce requests at several times the signing capacity, from one client, while the
//! CA revokes certificates through the ingest API: the first request without a nonce after each
//! acknowledgement must be answered `revoked` — never `tryLater`, never `good`.
//!
//! The signer is RSA-2048 (the costliest signature) with a small queue, and the per-client ration is lifted so that the global share of the pool is what holds: the
//! loopback is a single client network. The time from acknowledgement to the first `revoked`
//! is printed (and written to `$VIGIE_FLOOD_RESULT`, when set, for BENCHMARKS.md) with the
//! flood's rate and the server's signing rate measured in the same run.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspResponse, OcspResponseStatus};
use serde_json::json;
use vigie::pki::HashAlg;

const CA: &str = "aci-el-pp";
const REVOCATIONS: usize = 20;
const FLOOD_THREADS: usize = 24;

fn issuer_hashes() -> (Vec<u8>, Vec<u8>) {
    let cert = api::ca_x509(CA);
    let name = openssl::sha::sha1(&cert.subject_name().to_der().expect("name DER"));
    let key_bits = vigie::pki::subject_public_key_bits(&cert.to_der().expect("DER")).expect("SPKI");
    (name.to_vec(), openssl::sha::sha1(&key_bits).to_vec())
}

fn request(serial_hex: &str, nonce: Option<&[u8]>) -> Vec<u8> {
    let (name, key) = issuer_hashes();
    let serial = vigie::model::Serial::from_hex(serial_hex).expect("hex");
    vigie::ocsp::request::build(HashAlg::Sha1, &name, &key, &serial.der_content(), nonce)
        .expect("encodes")
}

fn post(agent: &ureq::Agent, url: &str, der: &[u8]) -> Vec<u8> {
    let resp = agent
        .post(url)
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(der)
        .expect("OCSP answer");
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).expect("body");
    body
}

/// The status of `cert` in a response (verified against the roots), or the error status.
fn status_of(der: &[u8], cert: &openssl::x509::X509) -> String {
    let resp = OcspResponse::from_der(der).expect("an OCSP response");
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return format!("error status {:?}", resp.status());
    }
    let basic = resp.basic().expect("basic");
    let issuer = api::ca_x509(CA);
    let id = OcspCertId::from_cert(openssl::hash::MessageDigest::sha1(), cert, &issuer)
        .expect("cert id");
    let status = basic.find_status(&id).expect("the CertID is answered");
    match status.status {
        OcspCertStatus::GOOD => "good".into(),
        OcspCertStatus::REVOKED => "revoked".into(),
        _ => "unknown".into(),
    }
}

fn signing_count(server: &Server) -> f64 {
    let text = ureq::get(&server.admin_url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("vigie_ocsp_signing_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[test]
fn a_revocation_is_answered_revoked_under_a_nonce_flood() {
    let s = Server::start_with(&Options {
        only: Some(vec![CA]),
        admin_extra: token_line(TOKEN),
        global_extra:
            "sign_rate_per_client = 1000000\nsign_burst_per_client = 1000000\nsigning_queue = 16\n"
                .into(),
        ..Options::default()
    });
    // The pool: 2 signing threads (the test harness's) + 16 queued; rationed signatures may
    // hold half of it (9), fewer than the flood's clients.
    let api = api::Api::new(&s, Some(TOKEN));
    let url = s.url("/ocsp");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();

    // Certificates to revoke, registered and answered `good` (so cached) before the flood.
    let certs: Vec<openssl::x509::X509> = (0..REVOCATIONS)
        .map(|_| {
            let cert = api::issue(CA, &api::random_serial(), None);
            let r = api.request(
                "POST",
                "/v1/certificates",
                Some("application/pkix-cert"),
                Some(&cert.to_der().expect("der")),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            cert
        })
        .collect();
    let serial_hex = |c: &openssl::x509::X509| {
        c.serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|h| h.to_string()))
            .expect("serial")
    };
    for c in &certs {
        let der = post(&agent, &url, &request(&serial_hex(c), None));
        assert_eq!(status_of(&der, c), "good");
    }

    // The flood: nonce requests for a good certificate, as fast as FLOOD_THREADS clients go.
    // Its shared answer exists before (the first answers of a serial are not what is measured).
    let flood_serial = good(CA).serial_hex.clone();
    let der = post(&agent, &url, &request(&flood_serial, None));
    assert!(der.len() > 100, "the flood serial's shared answer");
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default()); // echoed, without, tryLater, other
    let flood: Vec<_> = (0..FLOOD_THREADS)
        .map(|_| {
            let (stop, counts, url, serial) = (
                Arc::clone(&stop),
                Arc::clone(&counts),
                url.clone(),
                flood_serial.clone(),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                // One request encoded once; each round writes a fresh nonce into it, so that
                // the flood's rate is the server's, not the generator's encoding work.
                let marker = [0xA5u8; 16];
                let mut req = request(&serial, Some(&marker));
                let at = req
                    .windows(16)
                    .position(|w| w == marker)
                    .expect("the nonce in the request");
                while !stop.load(Ordering::Relaxed) {
                    let mut nonce = [0u8; 16];
                    openssl::rand::rand_bytes(&mut nonce).expect("random");
                    req[at..at + 16].copy_from_slice(&nonce);
                    let der = post(&agent, &url, &req);
                    let i = if der == [0x30, 0x03, 0x0a, 0x01, 0x03] {
                        2
                    } else if der.windows(16).any(|w| w == nonce) {
                        0
                    } else if der.len() > 100 {
                        1
                    } else {
                        3
                    };
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let flood_start = Instant::now();
    let signed_before = signing_count(&s);
    let sent_before: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();

    let mut visible = Vec::with_capacity(REVOCATIONS);
    for c in &certs {
        let serial = serial_hex(c);
        let r = api.revoke(&json!({"ca": CA, "serial": serial, "reason": "keyCompromise"}));
        let acked = Instant::now();
        assert_eq!(r.status, 200, "{}", r.text());
        let der = post(&agent, &url, &request(&serial, None));
        let took = acked.elapsed();
        assert_eq!(
            status_of(&der, c),
            "revoked",
            "the first request after the acknowledgement"
        );
        visible.push(took);
        std::thread::sleep(Duration::from_millis(150));
    }

    let window = flood_start.elapsed().as_secs_f64();
    let signed = (signing_count(&s) - signed_before) / window;
    let sent: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let flood_rate = (sent - sent_before) as f64 / window;
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().expect("flood thread");
    }
    let [echoed, without, try_later, other] =
        [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    visible.sort();
    let report = format!(
        "revocations: {REVOCATIONS}, flood clients: {FLOOD_THREADS} (closed loop, keep-alive), signer RSA-2048, signing_threads 2, signing_queue 16, anonymous_sign_share 0.5\n\
         flood: {flood_rate:.0} nonce req/s; server signatures: {signed:.0}/s (same window) => flood = {:.1}x the signing rate\n\
         flood answers: {echoed} with the nonce echoed, {without} without it (rationed), {try_later} tryLater\n\
         acknowledgement -> first revoked: p50 {:?}, p99 {:?}, max {:?}\n\
         machine load average during the run (/proc/loadavg, 2 cores shared with other jobs): {}\n",
        flood_rate / signed.max(1.0),
        percentile(&visible, 0.50),
        percentile(&visible, 0.99),
        visible[visible.len() - 1],
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
    );
    println!("{report}");
    if let Some(path) = std::env::var_os("VIGIE_FLOOD_RESULT") {
        std::fs::write(path, &report).expect("result written");
    }
    assert_eq!(other, 0, "every flood answer is an OCSP answer");
    assert!(
        without > 0,
        "the flood went past the ration (echoed {echoed}, without nonce {without})"
    );
    assert_eq!(
        try_later, 0,
        "a registered serial is never tryLater: the shared answer serves"
    );
}
