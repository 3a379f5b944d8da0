//! Per-CA isolation, live reload and signer rollover, and stored answers that know their maker —
//! through the real `vigie` binary, a real RocksDB, real signatures. Answers are read by
//! implementations vigie does not use to write them: the openssl crate builds the requests, the
//! `x509-ocsp` parser and openssl's verifier read the answers, and `openssl ocsp` checks them
//! from the command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::api::{Api, ca_key, ca_x509};
use common::{Options, Server, TOKEN, ca_cert, good, openssl, path_str, pki, text, token_line};
use der::{Decode, Encode};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ocsp::{OcspCertId, OcspRequest};
use openssl::pkey::PKey;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;
use x509_ocsp::{BasicOcspResponse, OcspResponse, OcspResponseStatus, ResponderId};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A delegated OCSP signer for `ca` (P-256 key, id-kp-OCSPSigning), valid from `not_before` to
/// `not_after` (Unix times), issued by the CA's key. Returns (certificate, key) files, the key
/// 0600 as vigie requires.
fn issue_signer(
    dir: &Path,
    ca: &str,
    name: &str,
    not_before: i64,
    not_after: i64,
) -> (PathBuf, PathBuf) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("pkey");
    let issuer = ca_x509(ca);
    let mut subject = X509NameBuilder::new().expect("name");
    subject
        .append_entry_by_text("CN", &format!("TEST OCSP {ca} {name}"))
        .expect("CN");
    let subject = subject.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let mut serial = [0u8; 12];
    openssl::rand::rand_bytes(&mut serial).expect("random");
    serial[0] |= 0x10;
    serial[0] &= 0x7f;
    let serial = Asn1Integer::from_bn(&BigNum::from_slice(&serial).expect("bn")).expect("int");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(issuer.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("key");
    b.set_not_before(&Asn1Time::from_unix(not_before).expect("time"))
        .expect("notBefore");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("time"))
        .expect("notAfter");
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
    b.sign(&ca_key(ca), MessageDigest::sha256())
        .expect("signed");
    let cert = b.build();
    let cert_path = dir.join(format!("{ca}-{name}.pem"));
    let key_path = dir.join(format!("{ca}-{name}.key"));
    std::fs::write(&cert_path, cert.to_pem().expect("pem")).expect("cert written");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("pem")).expect("key written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("0600");
    }
    (cert_path, key_path)
}

/// Replaces `ca`'s `ocsp_cert`/`ocsp_key` lines in a configuration written by
/// [`common::write_config`].
fn with_signer(config: &str, ca: &str, cert: &Path, key: &Path) -> String {
    let demo = pki().cas.iter().find(|c| c.id == ca).expect("known CA");
    config
        .replace(
            &format!("ocsp_cert = \"{}\"", demo.ocsp_cert.display()),
            &format!("ocsp_cert = \"{}\"", cert.display()),
        )
        .replace(
            &format!("ocsp_key = \"{}\"", demo.ocsp_key.display()),
            &format!("ocsp_key = \"{}\"", key.display()),
        )
}

/// The lines of one `[[ca]]` table as [`common::write_config`] writes it by default (to add it
/// to, or take it out of, a configuration).
fn ca_table(ca: &str) -> String {
    let c = pki().cas.iter().find(|c| c.id == ca).expect("known CA");
    format!(
        "[[ca]]\nid = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\naccept_unregistered_revocations = true\n",
        c.id,
        c.cert.display(),
        c.key.display(),
        c.ocsp_cert.display(),
        c.ocsp_key.display()
    )
}

/// An OCSP request (SHA-1 CertID, no nonce) for `cert` of `ca`, built by the openssl crate.
fn ocsp_request(ca: &str, cert: &Path) -> Vec<u8> {
    let issuer = ca_x509(ca);
    let subject = X509::from_pem(&std::fs::read(cert).expect("cert")).expect("pem");
    let id = OcspCertId::from_cert(MessageDigest::sha1(), &subject, &issuer).expect("cert id");
    let mut req = OcspRequest::new().expect("request");
    req.add_id(id).expect("add id");
    req.to_der().expect("DER")
}

fn post_ocsp(agent: &ureq::Agent, server_url: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let resp = agent
        .post(&format!("{server_url}/ocsp"))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(body)
        .map_err(|e| format!("transport: {e}"))?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// What one answer says of itself, read with `x509-ocsp` and checked with openssl.
#[derive(Debug, Clone)]
struct Seen {
    /// When the request was sent (Unix seconds, rounded down).
    at: i64,
    signer_der: Vec<u8>,
    signer_not_before: i64,
    signer_not_after: i64,
    produced_at: i64,
    next_update: i64,
}

fn unix_of(t: &openssl::asn1::Asn1TimeRef) -> i64 {
    let epoch = Asn1Time::from_unix(0).expect("epoch");
    let d = epoch.diff(t).expect("diff");
    i64::from(d.days) * 86400 + i64::from(d.secs)
}

/// Reads a successful answer: the signer the ResponderID names among the included
/// certificates, issued by `ca` and whose signature over the ResponseData verifies; its
/// validity; producedAt and nextUpdate. `Err` for anything else.
fn read_answer(ca: &X509, der: &[u8], sent_at: i64) -> Result<Seen, String> {
    let resp = OcspResponse::from_der(der).map_err(|e| format!("does not parse: {e}"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!("status {:?}", resp.response_status));
    }
    let bytes = resp.response_bytes.ok_or("no responseBytes")?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| format!("basic: {e}"))?;
    let ResponderId::ByKey(key_hash) = &basic.tbs_response_data.responder_id else {
        return Err("ResponderID byName".into());
    };
    let signer = basic
        .certs
        .iter()
        .flatten()
        .filter_map(|c| c.to_der().ok())
        .find(|d| {
            vigie::pki::subject_public_key_bits(d)
                .map(|bits| openssl::sha::sha1(&bits).as_slice() == key_hash.as_bytes())
                .unwrap_or(false)
        })
        .ok_or("the ResponderID names no included certificate")?;
    let signer_x = X509::from_der(&signer).map_err(|e| e.to_string())?;
    let ca_key = ca.public_key().map_err(|e| e.to_string())?;
    if !signer_x.verify(&ca_key).unwrap_or(false) {
        return Err("signer certificate not issued by the CA".into());
    }
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(|e| e.to_string())?;
    // vigie signs with SHA-256 (sha256WithRSAEncryption or ecdsa-with-SHA256).
    let key = signer_x.public_key().map_err(|e| e.to_string())?;
    let mut v =
        openssl::sign::Verifier::new(MessageDigest::sha256(), &key).map_err(|e| e.to_string())?;
    if !v
        .verify_oneshot(basic.signature.raw_bytes(), &tbs)
        .unwrap_or(false)
    {
        return Err("signature does not verify".into());
    }
    let produced_at = basic
        .tbs_response_data
        .produced_at
        .0
        .to_unix_duration()
        .as_secs() as i64;
    let next_update = basic.tbs_response_data.responses[0]
        .next_update
        .as_ref()
        .ok_or("no nextUpdate")?
        .0
        .to_unix_duration()
        .as_secs() as i64;
    Ok(Seen {
        at: sent_at,
        signer_not_before: unix_of(signer_x.not_before()),
        signer_not_after: unix_of(signer_x.not_after()),
        signer_der: signer,
        produced_at,
        next_update,
    })
}

/// The OCSP response status of an answer (successful, unauthorized, …).
fn status_of(der: &[u8]) -> OcspResponseStatus {
    OcspResponse::from_der(der)
        .map(|r| r.response_status)
        .unwrap_or(OcspResponseStatus::InternalError)
}

/// `openssl ocsp` on `cert` of `ca`: its text output (with the signature verified against the
/// demo roots).
fn ocsp_cli(server: &Server, ca: &str, cert: &Path) -> String {
    let roots = pki().roots.clone();
    let issuer = ca_cert(ca);
    let url = server.url("/ocsp");
    text(&openssl(&[
        "ocsp",
        "-no_nonce",
        "-issuer",
        path_str(&issuer),
        "-cert",
        path_str(cert),
        "-url",
        &url,
        "-CAfile",
        path_str(&roots),
        "-resp_text",
    ]))
}

fn get(url: &str) -> (u16, String, Vec<u8>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let ct = resp.header("Content-Type").unwrap_or("").to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    (status, ct, body)
}

fn readyz(s: &Server, strict: bool) -> (u16, Value) {
    let path = if strict {
        "/readyz?strict=true"
    } else {
        "/readyz"
    };
    let (status, _, body) = get(&s.admin_url(path));
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn ca_entry<'a>(ready: &'a Value, ca: &str) -> &'a Value {
    ready["cas"]
        .as_array()
        .expect("cas")
        .iter()
        .find(|c| c["id"] == ca)
        .unwrap_or_else(|| panic!("{ca} in /readyz: {ready}"))
}

fn metric(s: &Server, name: &str) -> f64 {
    let (_, _, body) = get(&s.admin_url("/metrics"));
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One CA whose OCSP signer has expired and one whose signer key does not match its
/// certificate: both are left out and named, the third serves; `/readyz` stays 200 with them
/// not ready, `?strict=true` is 503; their OCSP requests get `unauthorized` and their CRLs 503;
/// `vigie check` fails and lists both.
#[test]
fn a_ca_that_does_not_load_is_left_out_and_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = unix_now();
    let (expired_cert, expired_key) =
        issue_signer(dir.path(), "aci-el-pp", "expired", now - 7200, now - 3600);
    let other = pki()
        .cas
        .iter()
        .find(|c| c.id == "aci-el-org")
        .expect("known CA");
    let config = common::write_config(dir.path(), &Options::default());
    let text_config = std::fs::read_to_string(&config).expect("config");
    let text_config = with_signer(&text_config, "aci-el-pp", &expired_cert, &expired_key);
    // gip-cps-c4's signer certificate with aci-el-org's signer key: they do not match.
    let fo = pki()
        .cas
        .iter()
        .find(|c| c.id == "gip-cps-c4")
        .expect("known CA");
    let text_config = text_config.replace(
        &format!("ocsp_key = \"{}\"", fo.ocsp_key.display()),
        &format!("ocsp_key = \"{}\"", other.ocsp_key.display()),
    );
    std::fs::write(&config, text_config).expect("config written");
    common::seed(&config);

    // `vigie check` names every problem and fails.
    let check = common::vigie()
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("vigie check runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!check.status.success(), "check must fail: {out}");
    assert!(
        out.contains("aci-el-pp") && out.contains("expired"),
        "{out}"
    );
    assert!(
        out.contains("gip-cps-c4") && out.contains("does not match"),
        "{out}"
    );

    let s = Server::start_on(dir, config);
    // The healthy CA answers, checked by openssl.
    let ok = ocsp_cli(&s, "aci-el-org", &good("aci-el-org").path);
    assert!(ok.contains("Response verify OK"), "{ok}");
    assert!(ok.contains("Cert Status: good"), "{ok}");
    // The CAs left out: unauthorized (RFC 6960 §2.3), as for any CA not served.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    for ca in ["aci-el-pp", "gip-cps-c4"] {
        let answer =
            post_ocsp(&agent, &s.public, &ocsp_request(ca, &good(ca).path)).expect("answered");
        assert_eq!(status_of(&answer), OcspResponseStatus::Unauthorized, "{ca}");
        let cli = ocsp_cli(&s, ca, &good(ca).path);
        assert!(cli.contains("unauthorized"), "{ca}: {cli}");
        // Its CRLs: 503 with a problem naming why.
        let (status, ct, body) = get(&s.url(&format!("/crl/{ca}.crl")));
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        assert_eq!(ct, "application/problem+json");
        let problem: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(ca),
            "{problem}"
        );
    }
    let (status, _, _) = get(&s.url("/crl/aci-el-org.crl"));
    assert_eq!(status, 200);
    // /readyz: ready for the CA that serves, each CA left out named with its problem.
    let (status, ready) = readyz(&s, false);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ca_entry(&ready, "aci-el-org")["ready"], true, "{ready}");
    for ca in ["aci-el-pp", "gip-cps-c4"] {
        let e = ca_entry(&ready, ca);
        assert_eq!(e["ready"], false, "{ready}");
        assert!(
            !e["problems"].as_array().expect("problems").is_empty(),
            "{ready}"
        );
    }
    assert!(
        ca_entry(&ready, "aci-el-pp")["problems"][0]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{ready}"
    );
    let (status, strict) = readyz(&s, true);
    assert_eq!(status, 503, "{strict}");
    assert_eq!(strict["ready"], false);
}

/// The polling client of the reload test: every 50 ms, one OCSP request; every answer must
/// be successful, signed by a signer of the CA valid when it signed, with a nextUpdate within
/// that signer's validity.
struct Poller {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(public: String, ca: &'static str, cert: PathBuf) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (st, se, er) = (Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&errors));
        let thread = std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build();
            let issuer = ca_x509(ca);
            let request = ocsp_request(ca, &cert);
            while !st.load(Ordering::Acquire) {
                let sent_at = unix_now();
                let outcome = post_ocsp(&agent, &public, &request)
                    .and_then(|der| read_answer(&issuer, &der, sent_at));
                match outcome {
                    Ok(s) => {
                        let mut problems = Vec::new();
                        if s.next_update > s.signer_not_after {
                            problems.push("nextUpdate after the signer's notAfter");
                        }
                        if s.produced_at >= s.signer_not_after
                            || s.produced_at < s.signer_not_before
                        {
                            problems.push("signed outside the signer's validity");
                        }
                        if s.at > s.signer_not_after {
                            problems.push("served after the signer's notAfter");
                        }
                        for p in problems {
                            er.lock().expect("lock").push(format!("{p}: {s:?}"));
                        }
                        se.lock().expect("lock").push(s);
                    }
                    Err(e) => er.lock().expect("lock").push(e),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Poller {
            stop,
            seen,
            errors,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (Vec<Seen>, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("poller");
        }
        let seen = self.seen.lock().expect("lock").clone();
        let errors = self.errors.lock().expect("lock").clone();
        (seen, errors)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn sighup(s: &Server) {
    let pid = s.pid().expect("running");
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

fn ocsp_status(s: &Server, ca: &str) -> OcspResponseStatus {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    status_of(&post_ocsp(&agent, &s.public, &ocsp_request(ca, &good(ca).path)).expect("answered"))
}

/// A running server gains a CA (POST /v1/admin/reload), loses one and is given a next signer
/// (SIGHUP), refuses a broken configuration (both ways) keeping the running one, and rolls its
/// signer at `rollover_at` — while a client polls OCSP every 50 ms and sees no error, no answer
/// from a signer past its validity, and the new signer from the rollover on.
#[test]
fn reload_adds_removes_rolls_over_and_refuses_a_broken_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = unix_now();
    // The first signer of aci-el-org lives 100 s more: answers must not promise beyond it.
    let (old_cert, old_key) = issue_signer(dir.path(), "aci-el-org", "old", now - 3600, now + 100);
    let (new_cert, new_key) =
        issue_signer(dir.path(), "aci-el-org", "new", now - 60, now + 30 * 86400);
    let opts = Options {
        only: Some(vec!["aci-el-org", "aci-el-pp"]),
        admin_extra: token_line(TOKEN),
        ..Options::default()
    };
    let config = common::write_config(dir.path(), &opts);
    let first = with_signer(
        &std::fs::read_to_string(&config).expect("config"),
        "aci-el-org",
        &old_cert,
        &old_key,
    );
    std::fs::write(&config, &first).expect("config written");
    common::seed(&config);
    let s = Server::start_on(dir, config.clone());
    let api = Api::new(&s, Some(TOKEN));
    let old_der = X509::from_pem(&std::fs::read(&old_cert).expect("pem"))
        .expect("pem")
        .to_der()
        .expect("der");
    let new_der = X509::from_pem(&std::fs::read(&new_cert).expect("pem"))
        .expect("pem")
        .to_der()
        .expect("der");

    let poller = Poller::start(
        s.public.clone(),
        "aci-el-org",
        good("aci-el-org").path.clone(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ocsp_status(&s, "gip-cps-c4"),
        OcspResponseStatus::Unauthorized
    );

    // 1. POST /v1/admin/reload: gip-cps-c4 is added. Authenticated like every admin write.
    std::fs::write(&config, format!("{first}{}", ca_table("gip-cps-c4"))).expect("written");
    let anonymous = Api::new(&s, None).request("POST", "/v1/admin/reload", None, None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let answer = api.request("POST", "/v1/admin/reload", None, None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let outcome = answer.json();
    assert_eq!(
        outcome["cas"]["added"],
        serde_json::json!(["gip-cps-c4"]),
        "{outcome}"
    );
    assert_eq!(
        outcome["cas"]["removed"],
        serde_json::json!([]),
        "{outcome}"
    );
    assert_eq!(
        ocsp_status(&s, "gip-cps-c4"),
        OcspResponseStatus::Successful
    );
    let cli = ocsp_cli(&s, "gip-cps-c4", &good("gip-cps-c4").path);
    assert!(cli.contains("Response verify OK"), "{cli}");
    // Its CRL is built at once.
    wait_until("gip-cps-c4's CRL", Duration::from_secs(30), || {
        get(&s.url("/crl/gip-cps-c4.crl")).0 == 200
    });

    // 2. SIGHUP: aci-el-pp is removed; aci-el-org gets its next signer, taking over in 8 s.
    let rollover = unix_now() + 8;
    let rollover_text = vigie::model::UnixTime(rollover).to_rfc3339();
    let next_lines = format!(
        "next_ocsp_cert = \"{}\"\nnext_ocsp_key = \"{}\"\nrollover_at = \"{rollover_text}\"\n",
        new_cert.display(),
        new_key.display()
    );
    let without_pp = first.replace(&ca_table("aci-el-pp"), "");
    assert_ne!(without_pp, first, "aci-el-pp's table is found");
    // aci-el-org is the first table: its extra lines go before the next [[ca]].
    let second = format!(
        "{}{}",
        without_pp.trim_end().to_owned() + "\n" + &next_lines,
        ca_table("gip-cps-c4")
    );
    std::fs::write(&config, &second).expect("written");
    sighup(&s);
    wait_until("aci-el-pp removed", Duration::from_secs(20), || {
        ocsp_status(&s, "aci-el-pp") == OcspResponseStatus::Unauthorized
    });
    // Counted once the reload is complete (pre-signing restarted), moments after the swap.
    wait_until("the SIGHUP reload counted", Duration::from_secs(20), || {
        metric(&s, "vigie_config_reloads_total") >= 2.0
    });
    assert_eq!(metric(&s, "vigie_config_reloads_total"), 2.0);
    assert_eq!(get(&s.url("/crl/aci-el-pp.crl")).0, 404);

    // 3. A broken configuration is refused whole, by POST and by SIGHUP: the running one stays.
    let (_, ready_before) = readyz(&s, false);
    let broken = second.replace(
        &format!("next_ocsp_key = \"{}\"", new_key.display()),
        &format!("next_ocsp_key = \"{}\"", old_key.display()),
    );
    std::fs::write(&config, format!("{broken}{}", ca_table("aci-el-pp"))).expect("written");
    let refused = api.request("POST", "/v1/admin/reload", None, None);
    let problem = refused.problem(422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("next_ocsp_key"),
        "{problem}"
    );
    std::fs::write(&config, "this is [not TOML").expect("written");
    sighup(&s);
    wait_until(
        "the SIGHUP refusal counted",
        Duration::from_secs(20),
        || metric(&s, "vigie_config_reload_failures_total") >= 2.0,
    );
    assert_eq!(metric(&s, "vigie_config_reload_failures_total"), 2.0);
    let (_, ready_after) = readyz(&s, false);
    assert_eq!(ready_before["cas"], ready_after["cas"], "/readyz unchanged");
    assert_eq!(
        ocsp_status(&s, "aci-el-pp"),
        OcspResponseStatus::Unauthorized
    );
    assert_eq!(
        ocsp_status(&s, "gip-cps-c4"),
        OcspResponseStatus::Successful
    );

    // 4. The rollover: from rollover_at, answers come from the new signer.
    while unix_now() < rollover + 3 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let cli = ocsp_cli(&s, "aci-el-org", &good("aci-el-org").path);
    assert!(cli.contains("Response verify OK"), "{cli}");
    let (seen, errors) = poller.finish();
    assert!(
        errors.is_empty(),
        "the polling client saw errors: {errors:#?}"
    );
    assert!(seen.len() > 50, "{} answers polled", seen.len());
    assert!(
        seen.iter()
            .any(|a| a.signer_der == old_der && a.at < rollover),
        "the old signer answered before the rollover"
    );
    // A request sent a second after the rollover instant is answered after it (whole seconds).
    for a in &seen {
        if a.at > rollover {
            assert_eq!(a.signer_der, new_der, "answer after the rollover: {a:?}");
        }
        if a.signer_der == old_der {
            assert!(
                a.produced_at <= rollover,
                "old signer after the rollover: {a:?}"
            );
        }
    }
    assert!(
        seen.iter().any(|a| a.signer_der == new_der),
        "the new signer answered"
    );
    let (status, ready) = readyz(&s, true);
    assert_eq!(status, 200, "{ready}");
}

/// Stored answers know their maker: a change of `ocsp_validity` by reload makes the stored
/// answer a miss (signed again with the new validity); a clean restart keeps the store's
/// incarnation (the stored answer is served again), a crash does not.
#[test]
fn stored_answers_made_under_another_policy_or_incarnation_are_not_served() {
    let opts = Options {
        only: Some(vec!["aci-el-org"]),
        admin_extra: token_line(TOKEN),
        ca_extra: vec![(
            "aci-el-org".into(),
            "presign = false\nocsp_validity = \"1h\"".into(),
        )],
        ..Options::default()
    };
    let mut s = Server::start_with(&opts);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let issuer = ca_x509("aci-el-org");
    let request = ocsp_request("aci-el-org", &good("aci-el-org").path);
    let ask = |s: &Server| {
        let der = post_ocsp(&agent, &s.public, &request).expect("answered");
        let seen = read_answer(&issuer, &der, unix_now()).expect("a good answer");
        (der, seen)
    };
    let (first, seen) = ask(&s);
    let validity = seen.next_update - seen.produced_at;
    assert!((3000..=3600).contains(&validity), "1h: {validity}");

    // A clean restart: same incarnation, the stored answer is served as it is.
    std::thread::sleep(Duration::from_millis(1100));
    s.restart();
    let (again, _) = ask(&s);
    assert_eq!(again, first, "a clean restart serves the stored answer");

    // A crash: a new incarnation, the stored answer is signed again.
    std::thread::sleep(Duration::from_millis(1100));
    s.kill();
    s.spawn();
    let (after_crash, seen) = ask(&s);
    assert_ne!(
        after_crash, first,
        "after a crash the stored answer is a miss"
    );
    assert!(seen.produced_at > unix_now() - 30);

    // ocsp_validity changes by reload: the answer stored under 1h is not served again.
    let config = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &s.config,
        config.replace("ocsp_validity = \"1h\"", "ocsp_validity = \"2h\""),
    )
    .expect("written");
    let reloaded = Api::new(&s, Some(TOKEN)).request("POST", "/v1/admin/reload", None, None);
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    assert_eq!(
        reloaded.json()["cas"]["changed"],
        serde_json::json!(["aci-el-org"])
    );
    let (_, seen) = ask(&s);
    let validity = seen.next_update - seen.produced_at;
    assert!((6600..=7200).contains(&validity), "2h: {validity}");
    let cli = ocsp_cli(&s, "aci-el-org", &good("aci-el-org").path);
    assert!(cli.contains("Response verify OK"), "{cli}");
}
