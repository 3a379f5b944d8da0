//! Revocation rules and ambiguous CAs (issue 15, items 4 and 5), through the real server and a
//! real RocksDB:
//!
//! - a certificateHold made final keeps the hold's time, unless the request gives an earlier one;
//! - a revocation of a serial never registered is refused (404, `…/unknown-certificate`), unless
//!   the CA says `accept_unregistered_revocations = true` (then recorded, `"registered": false`);
//! - a revocation time before the certificate's notBefore, or further in the future than
//!   `[ingest] max_clock_skew`, is refused (422, naming `revoked_at`);
//! - under `unknown_serial = "revoked"`, releasing a hold on a never-issued serial is refused
//!   (409): OCSP would keep answering revoked while the delta CRL said removeFromCRL;
//! - two `[[ca]]` with the same issuer name and key (a renewed CA certificate under a second id)
//!   are refused at start, naming both.

mod common;

use common::api::*;
use common::*;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use serde_json::{Value, json};
use vigie::model::UnixTime;

/// Refuses unregistered revocations (the default).
const STRICT: &str = "aci-el-org";
/// Accepts them, and answers `revoked` for never-issued serials.
const LENIENT: &str = "aci-el-pp";

fn server() -> (Server, Api) {
    let s = Server::start_with(&Options {
        ca_extra: vec![
            (
                LENIENT.into(),
                "accept_unregistered_revocations = true".into(),
            ),
            (LENIENT.into(), "unknown_serial = \"revoked\"".into()),
        ],
        global_extra: "[ingest]\nmax_clock_skew = \"2m\"\n".into(),
        only: Some(vec![STRICT, LENIENT]),
        strict_revocations: true,
        ..Options::ingest()
    });
    let api = Api::new(&s, Some(TOKEN));
    (s, api)
}

/// Registers a new certificate of `ca` (notBefore one hour ago); returns its serial.
fn registered(api: &Api, ca: &str) -> String {
    let serial = random_serial();
    let cert = issue(ca, &serial, None);
    let a = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(pem(&cert).as_bytes()),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    serial
}

fn at(t: UnixTime) -> String {
    t.to_rfc3339()
}

fn revoked_at(api: &Api, ca: &str, serial: &str) -> String {
    let r = api.record(ca, serial).json();
    r["revocation"]["revoked_at"]
        .as_str()
        .unwrap_or_else(|| panic!("not revoked: {r}"))
        .to_owned()
}

#[test]
fn a_hold_made_final_keeps_its_time_unless_an_earlier_one_is_given() {
    let (_s, api) = server();
    let serial = registered(&api, STRICT);
    let hold_time = now().minus(600);
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "certificateHold",
        "revoked_at": at(hold_time)}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // Final, without a time: the hold's time stays (signatures made during the hold do not
    // become valid historically).
    let a = api.revoke(&json!({"ca": STRICT, "serial": serial, "reason": "keyCompromise"}));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(revoked_at(&api, STRICT, &serial), at(hold_time));
    assert_eq!(
        a.json()["results"][0]["revocation"]["reason"],
        "keyCompromise"
    );

    // A later time given: still the hold's.
    let serial = registered(&api, STRICT);
    api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "certificateHold",
        "revoked_at": at(hold_time)}),
    );
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "superseded",
        "revoked_at": at(now().minus(60))}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(revoked_at(&api, STRICT, &serial), at(hold_time));

    // An earlier time given (still after notBefore): the earlier one.
    let serial = registered(&api, STRICT);
    api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "certificateHold",
        "revoked_at": at(hold_time)}),
    );
    let earlier = hold_time.minus(1200);
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "keyCompromise",
        "revoked_at": at(earlier)}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(revoked_at(&api, STRICT, &serial), at(earlier));
}

#[test]
fn a_revocation_of_a_serial_never_registered_is_refused_unless_the_ca_accepts_it() {
    let (s, api) = server();
    // A fixed serial: the problem body is a golden file.
    let serial = "1badc0ffee".to_owned();
    let a = api.revoke(&json!({"ca": STRICT, "serial": serial, "reason": "keyCompromise"}));
    let p = a.problem(404);
    let kind = p["type"].as_str().unwrap_or_default();
    assert!(kind == "unknown-certificate", "{p}");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains(&serial),
        "{p}"
    );
    golden("unknown-certificate", &a.body);
    assert_eq!(api.record(STRICT, &serial).status, 404, "nothing recorded");
    // The audit trail has the attempt, refused, with what the CA was answered.
    let trail = api.get(&format!("/v1/audit?ca={STRICT}"));
    assert_eq!(trail.status, 200, "{}", trail.text());
    let trail: Value = trail.json();
    let entry = trail
        .as_array()
        .and_then(|e| e.iter().rev().find(|e| e["serial"] == serial.as_str()))
        .unwrap_or_else(|| panic!("the refusal is audited: {trail}"));
    assert_eq!(entry["outcome"], "refused", "{entry}");
    assert_eq!(entry["action"], "revoke", "{entry}");
    assert_eq!(entry["event_seq"], Value::Null, "{entry}");
    assert_eq!(entry["problem"]["status"], 404, "{entry}");
    assert_eq!(entry["problem"]["kind"], "unknown-certificate", "{entry}");
    // In a batch: nothing written, the item named.
    let good = registered(&api, STRICT);
    let a = api.revoke(&json!([
        {"ca": STRICT, "serial": good, "reason": "superseded"},
        {"ca": STRICT, "serial": serial, "reason": "superseded"},
    ]));
    let p = a.problem(404);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("revocations[1]"),
        "{p}"
    );
    assert_eq!(
        api.record(STRICT, &good).json()["status"],
        "good",
        "all or nothing"
    );

    // A registered certificate: "registered": true.
    let a = api.revoke(&json!({"ca": STRICT, "serial": good, "reason": "superseded"}));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["results"][0]["registered"], true);

    // The lenient CA records it, and says so.
    let a = api.revoke(&json!({"ca": LENIENT, "serial": serial, "reason": "keyCompromise"}));
    assert_eq!(a.status, 200, "{}", a.text());
    let v: Value = a.json();
    assert_eq!(v["results"][0]["registered"], false, "{v}");
    assert_eq!(v["results"][0]["status"], "revoked", "{v}");
    assert_eq!(api.record(LENIENT, &serial).json()["status"], "revoked");
    drop(s);
}

#[test]
fn revocation_times_before_not_before_or_beyond_the_clock_skew_are_refused() {
    let (_s, api) = server();
    let serial = registered(&api, STRICT);
    // notBefore is one hour ago (tests/common/api.rs `issue`).
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "superseded",
        "revoked_at": at(now().minus(2 * 3600))}),
    );
    let p = a.problem(422);
    assert_eq!(p["field"], "revoked_at", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("notBefore"),
        "{p}"
    );
    // [ingest] max_clock_skew = "2m": four minutes ahead is too far (the default 5m would take it).
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "superseded",
        "revoked_at": at(now().plus(240))}),
    );
    let p = a.problem(422);
    assert_eq!(p["field"], "revoked_at", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("max_clock_skew"),
        "{p}"
    );
    assert_eq!(
        api.record(STRICT, &serial).json()["status"],
        "good",
        "nothing written"
    );
    // One minute ahead is within the skew.
    let a = api.revoke(
        &json!({"ca": STRICT, "serial": serial, "reason": "superseded",
        "revoked_at": at(now().plus(60))}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
}

#[test]
fn releasing_a_hold_on_a_never_issued_serial_under_the_revoked_policy_is_refused() {
    let (s, api) = server();
    let serial = random_serial();
    let a = api.revoke(&json!({"ca": LENIENT, "serial": serial, "reason": "certificateHold"}));
    assert_eq!(a.status, 200, "{}", a.text());
    let a = api.release(LENIENT, &serial);
    let p = a.problem(409);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown_serial"),
        "{p}"
    );
    assert_eq!(
        api.record(LENIENT, &serial).json()["status"],
        "revoked",
        "nothing written"
    );
    // A registered certificate's hold is released as before.
    let registered = registered(&api, LENIENT);
    api.revoke(&json!({"ca": LENIENT, "serial": registered, "reason": "certificateHold"}));
    let a = api.release(LENIENT, &registered);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["status"], "good");
    drop(s);
}

/// The CA certificate of `ca` issued again: same subject, same key, another serial and validity
/// (a renewal), self-signed with the CA's key.
fn renewed_ca_cert(ca: &str) -> openssl::x509::X509 {
    let old = ca_x509(ca);
    let key = ca_key(ca);
    let mut b = openssl::x509::X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_hex_str(&random_serial()).expect("hex");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("int"))
        .expect("serial");
    b.set_subject_name(old.subject_name()).expect("subject");
    b.set_issuer_name(old.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("key");
    let t = now().0;
    b.set_not_before(&Asn1Time::from_unix(t - 60).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(t + 10 * 365 * 86400).expect("t"))
        .expect("na");
    b.append_extension(
        openssl::x509::extension::BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .expect("bc"),
    )
    .expect("bc");
    b.append_extension(
        openssl::x509::extension::KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    let ski = openssl::x509::extension::SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    b.build()
}

#[test]
fn two_cas_with_the_same_name_and_key_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        &Options {
            only: Some(vec![STRICT]),
            ..Options::default()
        },
    );
    let renewed = dir.path().join("renewed.pem");
    std::fs::write(&renewed, renewed_ca_cert(STRICT).to_pem().expect("PEM")).expect("written");
    let ca = pki().cas.iter().find(|c| c.id == STRICT).expect("CA");
    let mut config = std::fs::read_to_string(&path).expect("config");
    config.push_str(&format!(
        "[[ca]]\nid = \"renewed\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\n",
        renewed.display(),
        ca.key.display(),
        ca.ocsp_cert.display(),
        ca.ocsp_key.display()
    ));
    std::fs::write(&path, config).expect("config");
    for verb in ["check", "serve"] {
        let out = common::vigie()
            .args([verb, "--config"])
            .arg(&path)
            .output()
            .expect("vigie runs");
        let t = common::text(&out);
        assert!(!out.status.success(), "{verb} must refuse: {t}");
        assert!(
            t.contains(&format!("\"{STRICT}\"")) && t.contains("\"renewed\""),
            "{verb}: the message names both CAs: {t}"
        );
        assert!(t.contains("issuer name"), "{verb}: {t}");
    }
}
