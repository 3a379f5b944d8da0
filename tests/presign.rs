//! Pre-signing through the real server (`[[ca]] presign`, `[ocsp] presign_share`,
//! `vigie_ocsp_presign_pending`): a registered certificate never asked before is answered from
//! its pre-signed answer, without a signature on the request path; and a status change is
//! answered at once even behind a backlog of 10⁵ answers still to pre-sign. Answers are checked
//! by the `openssl ocsp` CLI.

mod common;

use std::time::{Duration, Instant};

use common::api::Api;
use common::*;
use serde_json::json;
use vigie::clock::{Clock, SystemClock};
use vigie::ingest::{self, Change};
use vigie::model::{CaId, Issuance, Serial};
use vigie::pki::demo::SampleStatus;

/// The value of one series of `/metrics` (`name` with its labels, as rendered), if present.
fn metric(server: &Server, series: &str) -> Option<f64> {
    let body = ureq::get(&server.admin_url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// `openssl ocsp` about `serial` of `ca`, without a nonce unless `extra` asks for one.
fn ask(server: &Server, ca: &str, serial_hex: &str, extra: &[&str]) -> String {
    let roots = pki().roots.clone();
    let issuer = ca_cert(ca);
    let url = server.url("/ocsp");
    let serial = format!("0x{serial_hex}");
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-issuer",
        path_str(&issuer),
        "-serial",
        &serial,
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ]);
    text(&openssl(&args))
}

fn wait_for(what: &str, server: &Server, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_registered_certificate_never_asked_is_answered_without_signing() {
    let ca = "aci-el-org";
    let s = Server::start_with(&Options {
        only: Some(vec![ca]),
        ..Options::default()
    });
    let pending = format!("vigie_ocsp_presign_pending{{ca=\"{ca}\"}}");
    wait_for("the first pass", &s, Duration::from_secs(60), || {
        s.stderr().contains("pre-signing: pass complete") && metric(&s, &pending) == Some(0.0)
    });
    let samples: Vec<_> = pki().certs.iter().filter(|c| c.ca_id == ca).collect();
    let presigned = metric(
        &s,
        &format!("vigie_ocsp_presigned_total{{ca=\"{ca}\",lane=\"background\"}}"),
    )
    .unwrap_or(0.0);
    assert!(
        presigned >= 2.0 * samples.len() as f64,
        "SHA-1 and SHA-256 answers of {} certificates: {presigned}",
        samples.len()
    );
    let signed = || metric(&s, "vigie_ocsp_signing_seconds_count").unwrap_or(0.0);
    let from_store = || metric(&s, "vigie_ocsp_cache_total{result=\"store\"}").unwrap_or(0.0);
    let signed_before = signed();
    let store_before = from_store();
    let mut asked = 0.0;
    for cert in &samples {
        for digest in [None, Some("-sha256")] {
            let mut extra = vec!["-no_nonce"];
            extra.extend(digest);
            let out = ask(&s, ca, &cert.serial_hex, &extra);
            asked += 1.0;
            assert!(out.contains("Response verify OK"), "{out}");
            let want = match cert.status {
                SampleStatus::Good => "Cert Status: good",
                _ => "Cert Status: revoked",
            };
            assert!(out.contains(want), "{want}: {out}");
            let alg = if digest.is_some() { "sha256" } else { "sha1" };
            assert!(
                out.contains(&format!("Hash Algorithm: {alg}")),
                "CertID echoed: {out}"
            );
        }
    }
    assert_eq!(
        signed(),
        signed_before,
        "no signature on the request path for pre-signed answers"
    );
    assert_eq!(
        from_store() - store_before,
        asked,
        "every answer came from the store"
    );

    // A nonce is still honoured (nonce = "echo"): that answer is signed for the request.
    let out = ask(&s, ca, &samples[0].serial_hex, &["-nonce"]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert_eq!(signed(), signed_before + 1.0);
}

/// Registers `count` certificates of `ca` straight into the store of a stopped server.
fn register_many(config: &std::path::Path, ca: &str, count: u64) {
    let config = common::load_config(config);
    let store = vigie::service::open_store(&config).expect("store opens");
    let ca = CaId::new(ca).expect("valid");
    let now = SystemClock.now();
    let issue = Change::Issue(Issuance {
        not_before: now.minus(86400),
        not_after: now.plus(3 * 365 * 86400),
        subject: None,
        profile: Some("PS_AUTH".into()),
    });
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        store
            .transact(
                std::slice::from_ref(&ca),
                now,
                |tx| -> Result<(), vigie::Error> {
                    for i in chunk {
                        let serial = Serial::from_magnitude(&(0x7100_0000_0000 + i).to_be_bytes())
                            .expect("valid");
                        ingest::apply(tx, &ca, &serial, &issue)?;
                    }
                    Ok(())
                },
            )
            .expect("registered");
    }
    store.flush().expect("flushed");
}

#[test]
fn a_revocation_is_answered_at_once_behind_a_backlog_of_100000() {
    let ca = "aci-el-pp"; // RSA-2048 signer: ~1 ms per answer, so the backlog lasts minutes
    let mut s = Server::start_with(&Options {
        only: Some(vec![ca]),
        global_extra: "presign_share = 0.5\n".into(),
        ..Options::ingest()
    });
    s.stop();
    register_many(&s.config, ca, 100_000);
    s.spawn();
    let pending = format!("vigie_ocsp_presign_pending{{ca=\"{ca}\"}}");
    wait_for(
        "the backlog to be counted",
        &s,
        Duration::from_secs(60),
        || metric(&s, &pending).is_some_and(|p| p >= 100_000.0),
    );

    let cert = good(ca);
    let before = ask(&s, ca, &cert.serial_hex, &["-no_nonce"]);
    assert!(before.contains("Cert Status: good"), "{before}");

    let api = Api::new(&s, Some(TOKEN));
    let r = api.revoke(&json!({"ca": ca, "serial": cert.serial_hex, "reason": "keyCompromise"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let asked = Instant::now();
    let after = ask(&s, ca, &cert.serial_hex, &["-no_nonce"]);
    let took = asked.elapsed();
    assert!(after.contains("Response verify OK"), "{after}");
    assert!(after.contains("Cert Status: revoked"), "{after}");
    assert!(after.contains("Reason: keyCompromise"), "{after}");
    assert!(
        took < Duration::from_secs(2),
        "answered in {took:?}, not after the backlog"
    );
    let left = metric(&s, &pending).unwrap_or(0.0);
    assert!(
        left >= 50_000.0,
        "the backlog was still there ({left} pending) when the revocation was answered"
    );
    // The status change went through the urgent lane, ahead of the backlog, too.
    let urgent = format!("vigie_ocsp_presigned_total{{ca=\"{ca}\",lane=\"urgent\"}}");
    wait_for("the urgent re-signing", &s, Duration::from_secs(10), || {
        metric(&s, &urgent).is_some_and(|n| n >= 1.0)
    });
    assert!(metric(&s, &pending).unwrap_or(0.0) >= 50_000.0);
    // With SHA-256 too (the urgent lane signed both pre-signed forms).
    let sha256 = ask(&s, ca, &cert.serial_hex, &["-no_nonce", "-sha256"]);
    assert!(sha256.contains("Cert Status: revoked"), "{sha256}");
}
