//! The CA's ingest API through the real server: authentication (tokens, mutual TLS), issuance by
//! PEM/DER/JSON with signature checks, every revocation reason, holds and releases, replays and
//! conflicts, all-or-nothing batches, invalid input answered with problem+json naming the field,
//! and a revocation visible to the very next OCSP request.

mod common;

use common::api::*;
use common::*;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use serde_json::{Value, json};

const CA: &str = "aci-el-org";

fn ingest_server() -> (Server, Api) {
    let s = Server::start_with(&Options::ingest());
    let api = Api::new(&s, Some(TOKEN));
    (s, api)
}

#[test]
fn authentication_none_wrong_and_right_token() {
    let (s, api) = ingest_server();
    let anonymous = Api::new(&s, None);
    let wrong = Api::new(&s, Some("not-the-token"));
    let serial = random_serial();
    let body = json!({"ca": CA, "serial": serial, "reason": "superseded"});
    for (who, client) in [("anonymous", &anonymous), ("wrong token", &wrong)] {
        let a = client.revoke(&body);
        a.problem(401);
        golden("unauthorized", &a.body);
        assert_eq!(client.get("/v1/cas").status, 401, "{who}");
        assert_eq!(client.record(CA, &serial).status, 401, "{who}");
    }
    // Nothing was written by the refused requests.
    assert_eq!(api.record(CA, &serial).status, 404);
    // Operations endpoints need no token.
    assert_eq!(anonymous.get("/healthz").status, 200);
    // The right token.
    let a = api.revoke(&body);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(api.get("/v1/cas").status, 200);
    // Tokens never reach the log.
    let log = s.stderr();
    assert!(log.contains("ingest request refused"), "{log}");
    assert!(
        !log.contains("not-the-token") && !log.contains(TOKEN),
        "{log}"
    );
    let metrics = anonymous.get("/metrics").text();
    assert!(
        metrics.contains("vigie_ingest_auth_failures_total"),
        "{metrics}"
    );
}

#[test]
fn without_credentials_configured_the_api_is_closed() {
    let s = Server::start();
    let api = Api::new(&s, Some(TOKEN));
    api.revoke(&json!({"ca": CA, "serial": "01"})).problem(401);
    assert!(
        s.stderr().contains("refuses every request"),
        "startup warning: {}",
        s.stderr()
    );
}

#[test]
fn issuance_by_pem_chain_der_and_json() {
    let (_s, api) = ingest_server();
    let (a, b, c, d) = (
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
    );
    let (ca_, cb, cc, cd) = (
        issue(CA, &a, None),
        issue(CA, &b, None),
        issue("aci-el-pp", &c, None),
        issue("gip-cps-c4", &d, None),
    );

    // Two certificates of two CAs in one PEM chain, with text around the blocks.
    let chain = format!("issued today\n{}\n{}", pem(&ca_), pem(&cc));
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(chain.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["applied"], 2);
    assert_eq!(v["results"][0]["ca"], CA);
    assert_eq!(v["results"][0]["serial"], a);
    assert_eq!(v["results"][0]["result"], "applied");
    assert_eq!(v["results"][0]["status"], "good");
    assert!(v["results"][0]["event_seq"].as_u64().is_some());
    assert_eq!(v["results"][1]["ca"], "aci-el-pp");
    let issuance = &v["results"][0]["issuance"];
    assert_eq!(
        issuance["subject"],
        format!("C=FR, O=TEST ORG, CN=ingest test {a}")
    );
    assert_eq!(
        issuance["profile"],
        "keyUsage=digitalSignature,keyEncipherment; extKeyUsage=clientAuth"
    );
    assert!(
        issuance["not_before"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // DER.
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pkix-cert"),
        Some(&cb.to_der().expect("der")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"][0]["serial"], b);

    // JSON, PEM and base64 DER.
    let b64 = openssl::base64::encode_block(&cd.to_der().expect("der"));
    let r = api.post_json(
        "/v1/certificates",
        &json!({"certificates": [pem(&ca_), b64]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["results"][0]["result"], "unchanged", "a replay");
    assert_eq!(v["results"][0]["event_seq"], Value::Null);
    assert_eq!(v["results"][1]["ca"], "gip-cps-c4");
    assert_eq!(
        (v["applied"].clone(), v["unchanged"].clone()),
        (json!(1), json!(1))
    );

    let rec = api.record(CA, &a);
    assert_eq!(rec.status, 200, "{}", rec.text());
    let rec = rec.json();
    assert_eq!(rec["status"], "good");
    assert_eq!(rec["revocation"], Value::Null);
    // Upper-case and colon-separated serials designate the same record.
    let spaced = a
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(api.record(CA, &spaced).json()["serial"], a);
}

#[test]
fn a_certificate_no_configured_ca_signed_is_refused() {
    let (_s, api) = ingest_server();
    let foreign_key =
        openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
            .expect("key");
    let (good_serial, bad_serial) = (random_serial(), random_serial());
    let good_cert = issue(CA, &good_serial, None);
    let forged = issue(CA, &bad_serial, Some(&foreign_key));
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(format!("{}{}", pem(&good_cert), pem(&forged)).as_bytes()),
    );
    let p = r.problem(422);
    assert_eq!(p["field"], "certificates[1]", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("does not verify")),
        "{p}"
    );
    // All or nothing: the good one was not registered either.
    api.record(CA, &good_serial).problem(404);
    api.record(CA, &bad_serial).problem(404);

    // A certificate of an issuer nobody configured (the root).
    let root_pem = std::fs::read(&pki().root_cert).expect("root");
    let p = api
        .request(
            "POST",
            "/v1/certificates",
            Some("application/pem-certificate-chain"),
            Some(&root_pem),
        )
        .problem(422);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not a configured CA")),
        "{p}"
    );
    // Not a certificate at all.
    let p = api
        .request(
            "POST",
            "/v1/certificates",
            Some("application/pkix-cert"),
            Some(b"\x30\x03\x02\x01\x01"),
        )
        .problem(422);
    assert_eq!(p["field"], "certificates[0]");
}

#[test]
fn every_rfc5280_reason() {
    let (_s, api) = ingest_server();
    let reasons = [
        "unspecified",
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "certificateHold",
        "privilegeWithdrawn",
        "aACompromise",
    ];
    let items: Vec<Value> = reasons
        .iter()
        .map(|r| json!({"ca": "aci-el-pp", "serial": random_serial(), "reason": r, "revoked_at": "2026-01-02T03:04:05Z"}))
        .collect();
    let r = api.revoke(&Value::Array(items.clone()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["applied"], reasons.len());
    for (item, reason) in items.iter().zip(reasons) {
        let rec = api
            .record("aci-el-pp", item["serial"].as_str().expect("serial"))
            .json();
        assert_eq!(rec["status"], "revoked");
        assert_eq!(rec["revocation"]["reason"], reason);
        assert_eq!(rec["revocation"]["revoked_at"], "2026-01-02T03:04:05Z");
        // Never registered as issued: recorded as such.
        assert_eq!(rec["issuance"], Value::Null);
    }
    // Case-insensitive names, and no reason at all.
    let serial = random_serial();
    let r = api.revoke(&json!({"ca": "aci-el-pp", "serial": serial, "reason": "CACOMPROMISE"}));
    assert_eq!(
        r.json()["results"][0]["revocation"]["reason"],
        "cACompromise"
    );
    let serial = random_serial();
    let r = api.revoke(&json!({"ca": "aci-el-pp", "serial": serial}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"][0]["revocation"]["reason"], Value::Null);
}

#[test]
fn hold_release_and_final_revocations() {
    let (_s, api) = ingest_server();
    let serial = random_serial();
    let cert = issue(CA, &serial, None);
    assert_eq!(
        api.post_json("/v1/certificates", &json!({"certificates": [pem(&cert)]}))
            .status,
        200
    );
    let hold = json!({"ca": CA, "serial": serial, "reason": "certificateHold"});
    assert_eq!(api.revoke(&hold).json()["results"][0]["status"], "revoked");
    let r = api.release(CA, &serial);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["result"].clone(), v["status"].clone()),
        (json!("applied"), json!("good"))
    );
    // Releasing again is a replay.
    assert_eq!(api.release(CA, &serial).json()["result"], "unchanged");
    // Hold again, then make it final.
    api.revoke(&hold);
    let r = api.revoke(&json!({"ca": CA, "serial": serial, "reason": "superseded"}));
    assert_eq!(r.json()["results"][0]["revocation"]["reason"], "superseded");
    let p = api.release(CA, &serial).problem(409);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only certificateHold")),
        "{p}"
    );
    api.release(CA, &random_serial()).problem(404);
    api.release("no-such-ca", &serial).problem(404);
}

// Hold → release → removeFromCRL in the next delta, through this API, is checked where the CRL
// helpers live: tests/crl.rs, `a_hold_and_its_release_through_the_ingest_api_reach_the_next_deltas`
// (and `publish_delta_on_revoke` by `a_revocation_through_the_ingest_api_reaches_the_delta_crl_after_the_debounce`).
#[test]
fn replays_are_no_ops_and_conflicts_explain_themselves() {
    let (_s, api) = ingest_server();
    let serial = "0a1b2c3d4e5f";
    let rev = json!({"ca": CA, "serial": serial, "reason": "superseded", "revoked_at": "2026-03-01T10:00:00Z"});
    let first = api.revoke(&rev);
    assert_eq!(first.status, 200);
    let seq = first.json()["results"][0]["event_seq"].clone();
    let again = api.revoke(&rev);
    assert_eq!(again.status, 200);
    let v = again.json();
    assert_eq!(v["results"][0]["result"], "unchanged");
    assert_eq!(v["results"][0]["version"], seq);
    // Without the time, it is still the same revocation.
    let no_time = json!({"ca": CA, "serial": serial, "reason": "superseded"});
    assert_eq!(
        api.revoke(&no_time).json()["results"][0]["result"],
        "unchanged"
    );

    let conflict = api.revoke(&json!({"ca": CA, "serial": serial, "reason": "affiliationChanged", "revoked_at": "2026-03-01T10:00:00Z"}));
    conflict.problem(409);
    golden("conflict_final_revocation", &conflict.body);

    // keyCompromise may follow a final revocation; the revocation time is kept.
    let kc = api.revoke(&json!({"ca": CA, "serial": serial, "reason": "keyCompromise", "invalidity_date": "2026-02-01T00:00:00Z"}));
    assert_eq!(kc.status, 200, "{}", kc.text());
    let rev = &kc.json()["results"][0]["revocation"];
    assert_eq!(rev["reason"], "keyCompromise");
    assert_eq!(rev["revoked_at"], "2026-03-01T10:00:00Z");
    assert_eq!(rev["invalidity_date"], "2026-02-01T00:00:00Z");
    // And then it is final too.
    api.revoke(&json!({"ca": CA, "serial": serial, "reason": "superseded"}))
        .problem(409);

    // Re-registering a serial with another certificate is a conflict.
    let s2 = random_serial();
    let c1 = issue(CA, &s2, None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let c2 = issue(CA, &s2, None);
    assert_eq!(
        api.post_json("/v1/certificates", &json!({"certificates": [pem(&c1)]}))
            .status,
        200
    );
    let p = api
        .post_json("/v1/certificates", &json!({"certificates": [pem(&c2)]}))
        .problem(409);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("certificates[0]: ")),
        "{p}"
    );
}

#[test]
fn a_batch_with_one_bad_item_writes_nothing() {
    let (_s, api) = ingest_server();
    let serials: Vec<String> = (0..5).map(|_| random_serial()).collect();
    let mut items: Vec<Value> = serials
        .iter()
        .map(|s| json!({"ca": CA, "serial": s, "reason": "superseded"}))
        .collect();
    items[3]["serial"] = json!("12xz");
    let r = api.revoke(&Value::Array(items.clone()));
    let p = r.problem(422);
    assert_eq!(p["field"], "revocations[3].serial");
    golden("invalid_serial_in_batch", &r.body);
    for s in &serials {
        api.record(CA, s).problem(404);
    }

    // A conflict in the middle of a batch: the items before it are not written either.
    let final_serial = random_serial();
    api.revoke(&json!({"ca": CA, "serial": final_serial, "reason": "cessationOfOperation"}));
    items[3] = json!({"ca": CA, "serial": final_serial, "reason": "superseded"});
    let p = api.revoke(&Value::Array(items.clone())).problem(409);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("revocations[3]: already revoked")),
        "{p}"
    );
    for (i, s) in serials.iter().enumerate() {
        if i != 3 {
            api.record(CA, s).problem(404);
        }
    }
    // A good batch of several CAs, as NDJSON.
    items[3] = json!({"ca": "gip-cps-c4", "serial": serials[3], "reason": "superseded"});
    let nd: String = items.iter().map(|i| format!("{i}\n")).collect();
    let r = api.request(
        "POST",
        "/v1/revocations",
        Some("application/x-ndjson"),
        Some(nd.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["applied"], 5);
}

#[test]
fn unknown_cas_and_malformed_input_name_the_field() {
    let (_s, api) = ingest_server();
    let serial = random_serial();
    let p = api.record("no-such-ca", &serial).problem(404);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no-such-ca"))
    );
    let r = api.revoke(&json!({"ca": "no-such-ca", "serial": serial, "reason": "superseded"}));
    r.problem(422);
    golden("unknown_ca_field", &r.body);
    api.record(CA, &serial).problem(404);

    let r = api.request(
        "POST",
        "/v1/revocations",
        Some("application/json"),
        Some(br#"{"ca": "aci-el-org", "serial": "#),
    );
    r.problem(400);
    golden("malformed_json", &r.body);

    let cases: [(Value, &str); 8] = [
        (json!({"ca": CA, "serial": 1234}), "serial"),
        (json!({"ca": CA, "serial": "00"}), "serial"),
        (json!({"ca": CA, "serial": "ab".repeat(21)}), "serial"),
        (json!({"ca": CA}), "serial"),
        (
            json!({"ca": CA, "serial": "01", "reason": "removeFromCRL"}),
            "reason",
        ),
        (
            json!({"ca": CA, "serial": "01", "revoked_at": "2026-01-01"}),
            "revoked_at",
        ),
        (
            json!({"ca": CA, "serial": "01", "revoked_at": "2999-01-01T00:00:00Z"}),
            "revoked_at",
        ),
        (
            json!({"ca": CA, "serial": "01", "reason": "keyCompromise", "revoked_at": "2026-01-01T00:00:00Z", "invalidity_date": "2026-02-01T00:00:00Z"}),
            "invalidity_date",
        ),
    ];
    for (body, field) in cases {
        let p = api.revoke(&body).problem(422);
        assert_eq!(p["field"], field, "{body}: {p}");
        assert_eq!(p["type"], "invalid-field");
    }
    api.record(CA, "01").problem(404);
    let p = api.record(CA, "not-hex").problem(422);
    assert_eq!(p["field"], "serial");

    let r = api.request(
        "POST",
        "/v1/revocations",
        Some("application/x-www-form-urlencoded"),
        Some(b"ca=x"),
    );
    r.problem(415);
    golden("unsupported_media_type", &r.body);
    // Declared too large: refused before the body is read.
    let raw = raw_http(
        &_s.admin,
        &format!(
            "POST /v1/revocations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            (16 << 20) + 1
        ),
    );
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    let body = raw.split("\r\n\r\n").nth(1).expect("a body");
    golden("too_large", body.as_bytes());
    api.request("PUT", "/v1/revocations", None, None)
        .problem(405);
    api.get("/v1/nothing-here").problem(404);
}

/// Sends `request` as is over plain TCP and returns the whole answer.
fn raw_http(base: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn ocsp_request(cert: &X509, issuer: &X509) -> (Vec<u8>, OcspCertId) {
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).expect("id");
    let mut req = OcspRequest::new().expect("req");
    req.add_id(id).expect("add");
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).expect("id");
    (req.to_der().expect("der"), id)
}

fn ocsp_status(s: &Server, der: &[u8], id: &OcspCertId) -> (OcspCertStatus, Option<i32>) {
    let resp = ureq::post(&s.url("/ocsp"))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(der)
        .expect("OCSP answer");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    let resp = OcspResponse::from_der(&body).expect("OCSPResponse");
    let basic = resp.basic().expect("basic");
    let mut roots = X509StoreBuilder::new().expect("store");
    for root in X509::stack_from_pem(&std::fs::read(&pki().roots).expect("roots")).expect("pem") {
        roots.add_cert(root).expect("add");
    }
    for ca in &pki().cas {
        roots
            .add_cert(X509::from_pem(&std::fs::read(&ca.cert).expect("ca")).expect("pem"))
            .expect("add");
    }
    let roots = roots.build();
    basic
        .verify(&Stack::new().expect("stack"), &roots, OcspFlag::empty())
        .expect("the response verifies");
    let status = basic.find_status(id).expect("status for our CertID");
    (
        status.status,
        (status.status == OcspCertStatus::REVOKED).then_some(status.reason.as_raw()),
    )
}

#[test]
fn the_next_ocsp_request_after_an_acknowledged_revocation_answers_revoked() {
    let (s, api) = ingest_server();
    for ca in ["aci-el-org", "aci-el-pp"] {
        let serial = random_serial();
        let cert = issue(ca, &serial, None);
        let issuer = ca_x509(ca);
        let (req, id) = ocsp_request(&cert, &issuer);
        assert_eq!(ocsp_status(&s, &req, &id).0, OcspCertStatus::UNKNOWN);
        assert_eq!(
            api.request(
                "POST",
                "/v1/certificates",
                Some("application/pkix-cert"),
                Some(&cert.to_der().expect("der"))
            )
            .status,
            200
        );
        // Registered: good, and cached (asked twice).
        assert_eq!(ocsp_status(&s, &req, &id).0, OcspCertStatus::GOOD);
        assert_eq!(ocsp_status(&s, &req, &id).0, OcspCertStatus::GOOD);
        let r = api.revoke(&json!({"ca": ca, "serial": serial, "reason": "keyCompromise"}));
        assert_eq!(r.status, 200, "{}", r.text());
        // The very next request, without any delay.
        assert_eq!(
            ocsp_status(&s, &req, &id),
            (OcspCertStatus::REVOKED, Some(1)),
            "{ca}"
        );
        // Hold → release → good again, at once as well.
        let serial = random_serial();
        let cert = issue(ca, &serial, None);
        let (req, id) = ocsp_request(&cert, &issuer);
        api.request(
            "POST",
            "/v1/certificates",
            Some("application/pkix-cert"),
            Some(&cert.to_der().expect("der")),
        );
        assert_eq!(ocsp_status(&s, &req, &id).0, OcspCertStatus::GOOD);
        api.revoke(&json!({"ca": ca, "serial": serial, "reason": "certificateHold"}));
        assert_eq!(
            ocsp_status(&s, &req, &id),
            (OcspCertStatus::REVOKED, Some(6))
        );
        assert_eq!(api.release(ca, &serial).status, 200);
        assert_eq!(ocsp_status(&s, &req, &id).0, OcspCertStatus::GOOD);
    }
}

#[test]
fn openapi_describes_exactly_the_admin_routes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    assert!(text.starts_with("openapi: 3.1"), "OpenAPI 3.1");
    // Paths are two-space-indented keys under `paths:`; methods four-space-indented under them.
    let mut documented = Vec::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!("/{}", p.trim_end().trim_end_matches(':')));
        } else if let (Some(p), Some(m)) = (&path, line.strip_prefix("    ")) {
            let m = m.trim_end().trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&m) {
                documented.push((m.to_uppercase(), p.clone()));
            }
        }
    }
    let mut registered: Vec<(String, String)> = vigie::http::ADMIN_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    registered.sort();
    assert_eq!(
        documented, registered,
        "openapi.yaml and ADMIN_ROUTES differ"
    );
}

#[test]
fn problem_bodies_of_domain_errors_are_stable() {
    use vigie::http::error::{ApiError, problem_body};
    use vigie::ingest::Error;
    let cases = [
        (
            "ingest_invalid",
            ApiError::from(
                Error::invalid("serial", "\"zz\": not a hexadecimal number")
                    .within("revocations[0]"),
            ),
        ),
        (
            "ingest_not_found",
            ApiError::from(Error::NotFound("no such certificate".into())),
        ),
        ("internal", ApiError::Internal("disk on fire".into())),
    ];
    for (name, e) in cases {
        golden(name, &problem_body(&e));
    }
}

mod mtls {
    //! Mutual TLS on the admin listener: a client certificate from `client_ca` gets in (alone, or
    //! with a token when tokens are configured too); a foreign one, or none, does not get past the
    //! handshake.

    use super::*;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};

    fn key() -> PKey<Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key")
    }

    /// A certificate for `CN=cn` (the shared builder of `common::tls`).
    fn cert(
        cn: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        is_ca: bool,
    ) -> X509 {
        common::tls::cert(&[("CN", cn)], key, issuer, is_ca)
    }

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        /// Writes a file; keys (`*.key`) mode 0600, as vigie requires of its own.
        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, bytes).expect("write");
            if name.ends_with(".key") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
            p
        }
    }

    /// GET /v1/cas over TLS with an optional client certificate; `None` when the handshake or the
    /// exchange failed.
    fn get_cas(
        admin: &str,
        ca_file: &Path,
        client: Option<(&Path, &Path)>,
        token: Option<&str>,
    ) -> Option<String> {
        let addr = admin.trim_start_matches("https://");
        let mut c = SslConnector::builder(SslMethod::tls_client()).expect("connector");
        c.set_ca_file(ca_file).expect("ca");
        c.set_verify(SslVerifyMode::PEER);
        if let Some((cert, key)) = client {
            c.set_certificate_file(cert, SslFiletype::PEM)
                .expect("cert");
            c.set_private_key_file(key, SslFiletype::PEM).expect("key");
        }
        let connector = c.build();
        let tcp = std::net::TcpStream::connect(addr).expect("tcp");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        let mut config = connector.configure().expect("configure");
        config.set_verify_hostname(false);
        let mut tls = config.connect("localhost", tcp).ok()?;
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        tls.write_all(
            format!("GET /v1/cas HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
        let mut out = Vec::new();
        match tls.read_to_end(&mut out) {
            Ok(_) if !out.is_empty() => Some(String::from_utf8_lossy(&out).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn client_certificates_from_client_ca_get_in_foreign_ones_do_not() {
        let files = Files {
            dir: tempfile::tempdir().expect("tmp"),
        };
        let (ca_key, foreign_key, server_key, client_key, stranger_key) =
            (key(), key(), key(), key(), key());
        let client_ca = cert("vigie test client CA", &ca_key, None, true);
        let foreign_ca = cert("someone else's CA", &foreign_key, None, true);
        let server = cert(
            "vigie admin",
            &server_key,
            Some((&client_ca, &ca_key)),
            false,
        );
        let client = cert(
            "CA operator",
            &client_key,
            Some((&client_ca, &ca_key)),
            false,
        );
        let stranger = cert(
            "CA operator",
            &stranger_key,
            Some((&foreign_ca, &foreign_key)),
            false,
        );
        let ca_file = files.write("client-ca.pem", &client_ca.to_pem().expect("pem"));
        let server_cert = files.write("server.pem", &server.to_pem().expect("pem"));
        let server_key_file = files.write(
            "server.key",
            &server_key.private_key_to_pem_pkcs8().expect("pem"),
        );
        let client_cert = files.write("client.pem", &client.to_pem().expect("pem"));
        let client_key_file = files.write(
            "client.key",
            &client_key.private_key_to_pem_pkcs8().expect("pem"),
        );
        let stranger_cert = files.write("stranger.pem", &stranger.to_pem().expect("pem"));
        let stranger_key_file = files.write(
            "stranger.key",
            &stranger_key.private_key_to_pem_pkcs8().expect("pem"),
        );
        let tls_lines = format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\nclient_allow = [\"subject:CN=CA operator\"]\n",
            server_cert.display(),
            server_key_file.display(),
            ca_file.display()
        );

        // Client certificate alone.
        let s = Server::start_with(&Options {
            admin_extra: tls_lines.clone(),
            ..Options::default()
        });
        assert!(s.admin.starts_with("https://"), "{}", s.admin);
        let ok = get_cas(
            &s.admin,
            &ca_file,
            Some((&client_cert, &client_key_file)),
            None,
        )
        .expect("a client of client_ca gets an answer");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("aci-el-org"), "{ok}");
        let foreign = get_cas(
            &s.admin,
            &ca_file,
            Some((&stranger_cert, &stranger_key_file)),
            None,
        );
        assert!(foreign.is_none(), "refused at the handshake: {foreign:?}");
        let none = get_cas(&s.admin, &ca_file, None, None);
        assert!(none.is_none(), "refused at the handshake: {none:?}");
        drop(s);

        // Both configured: both required.
        let s = Server::start_with(&Options {
            admin_extra: format!("{tls_lines}{}", token_line(TOKEN)),
            ..Options::default()
        });
        let without_token = get_cas(
            &s.admin,
            &ca_file,
            Some((&client_cert, &client_key_file)),
            None,
        )
        .expect("answer");
        assert!(without_token.starts_with("HTTP/1.1 401"), "{without_token}");
        let with_token = get_cas(
            &s.admin,
            &ca_file,
            Some((&client_cert, &client_key_file)),
            Some(TOKEN),
        )
        .expect("answer");
        assert!(with_token.starts_with("HTTP/1.1 200"), "{with_token}");
        let token_only = get_cas(&s.admin, &ca_file, None, Some(TOKEN));
        assert!(
            token_only.is_none(),
            "refused at the handshake: {token_only:?}"
        );

        drop(s);

        // An intermediate CA as client_ca (here the demo's issuing CA, as an IGC-Santé CA
        // operator would use its ORG_AUTH_CLI certificate): the client sends only its leaf.
        let leaf_serial = random_serial();
        let (leaf, leaf_key) = issue_with_key(CA, &leaf_serial, None);
        let leaf_cert = files.write("leaf.pem", &leaf.to_pem().expect("pem"));
        let leaf_key_file = files.write(
            "leaf.key",
            &leaf_key.private_key_to_pem_pkcs8().expect("pem"),
        );
        let s = Server::start_with(&Options {
            admin_extra: format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n\
                 client_allow = [\"subject:CN=ingest test {leaf_serial},O=TEST ORG,C=FR\"]\n",
                server_cert.display(),
                server_key_file.display(),
                ca_cert(CA).display()
            ),
            ..Options::default()
        });
        let ok = get_cas(&s.admin, &ca_file, Some((&leaf_cert, &leaf_key_file)), None)
            .expect("a leaf of the intermediate client_ca gets an answer");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let other = get_cas(
            &s.admin,
            &ca_file,
            Some((&client_cert, &client_key_file)),
            None,
        );
        assert!(other.is_none(), "refused at the handshake: {other:?}");
    }
}

/// `2029-11-30T12:00:00Z` → `291130120000Z` (index.txt's UTCTime).
fn utc_time(rfc3339: &str) -> String {
    let d: String = rfc3339.chars().filter(char::is_ascii_digit).collect();
    format!("{}Z", &d[2..14])
}

fn vigie(args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut c = common::vigie();
    c.args(args)
        .env("VIGIE_LOG", "warn")
        .env_remove("VIGIE_TOKEN");
    if let Some(t) = token {
        c.env("VIGIE_TOKEN", t);
    }
    c.output().expect("vigie runs")
}

#[test]
fn vigie_import_loads_an_openssl_index_and_the_cli_talks_to_the_api() {
    let mut s = Server::start_with(&Options::ingest());
    let (v, r_kc, r_hold, r_hold2, released, e, real) = (
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
    );
    let real_cert = issue(CA, &real, None);
    let real_na = {
        let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("epoch");
        let d = epoch.diff(real_cert.not_after()).expect("diff");
        vigie::model::UnixTime(i64::from(d.days) * 86400 + i64::from(d.secs)).to_rfc3339()
    };
    let subject = "/C=FR/O=ASIP-SANTE/OU=0002 187512751/CN=imported";
    let index = format!(
        "V\t291231235959Z\t\t{v}\tunknown\t{subject}\n\
         R\t291231235959Z\t260101120000Z,keyTime,20251225000000Z\t{r_kc}\tunknown\t{subject}\n\
         R\t291231235959Z\t260101120000Z,holdInstruction,holdInstructionReject\t{r_hold}\tunknown\t{subject}\n\
         R\t291231235959Z\t260101120000Z,certificateHold\t{r_hold2}\tunknown\t{subject}\n\
         R\t291231235959Z\t260101120000Z,removeFromCRL\t{released}\tunknown\t{subject}\n\
         E\t200101000000Z\t\t{e}\tunknown\t{subject}\n\
         V\t{}\t\t{real}\tunknown\t{subject}\n\
         \n\
         R\t291231235959Z\t260101120000Z,bored\t0abc\tunknown\t{subject}\n\
         V\t291231235959Z\t\tnot-hex\tunknown\t{subject}\n",
        utc_time(&real_na)
    );
    let path = s.dir.path().join("index.txt");
    std::fs::write(&path, index).expect("index written");
    let config = s.config.clone();
    let import_args = [
        "import",
        "--ca",
        CA,
        "--config",
        path_str(&config),
        path_str(&path),
    ];

    // The server holds the store: the import says so.
    let busy = vigie(&import_args, None);
    assert!(!busy.status.success());
    let err = text(&busy);
    assert!(
        err.contains("in use") && err.contains("vigie serve"),
        "{err}"
    );

    s.stop();
    let out = vigie(&import_args, None);
    let summary = text(&out);
    assert!(out.status.success(), "{summary}");
    assert!(summary.contains("lines read   10"), "{summary}");
    assert!(summary.contains("lines skipped    2"), "{summary}");
    assert!(
        summary.contains("unknown reason: 1") && summary.contains("bad serial: 1"),
        "{summary}"
    );
    assert!(
        summary.contains("line 9:") && summary.contains("line 10:"),
        "{summary}"
    );
    // Importing again changes nothing.
    let again = text(&vigie(&import_args, None));
    assert!(again.contains("events applied   0"), "{again}");
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));

    let rec = api.record(CA, &v).json();
    assert_eq!(rec["status"], "good");
    assert_eq!(
        rec["issuance"]["not_before"],
        Value::Null,
        "not in index.txt"
    );
    assert_eq!(rec["issuance"]["not_after"], "2029-12-31T23:59:59Z");
    assert_eq!(
        rec["issuance"]["subject"],
        "C=FR, O=ASIP-SANTE, OU=0002 187512751, CN=imported"
    );
    let rec = api.record(CA, &r_kc).json();
    assert_eq!(rec["revocation"]["reason"], "keyCompromise");
    assert_eq!(rec["revocation"]["revoked_at"], "2026-01-01T12:00:00Z");
    assert_eq!(rec["revocation"]["invalidity_date"], "2025-12-25T00:00:00Z");
    for held in [&r_hold, &r_hold2] {
        assert_eq!(
            api.record(CA, held).json()["revocation"]["reason"],
            "certificateHold"
        );
    }
    assert_eq!(api.record(CA, &released).json()["status"], "good");
    assert_eq!(api.record(CA, &e).json()["status"], "good");
    // The certificate itself completes the imported record instead of conflicting with it.
    let r = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pkix-cert"),
        Some(&real_cert.to_der().expect("der")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let item = &r.json()["results"][0];
    assert_eq!(item["result"], "applied");
    assert!(item["issuance"]["not_before"].is_string(), "{item}");

    // The CLI: revoke, release, status.
    let url = s.admin.clone();
    let out = vigie(
        &[
            "revoke",
            "--url",
            &url,
            "--ca",
            CA,
            "--serial",
            &v,
            "--reason",
            "certificateHold",
        ],
        Some(TOKEN),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"applied\": 1"), "{}", text(&out));
    let out = vigie(
        &["status", "--url", &url, "--ca", CA, "--serial", &v],
        Some(TOKEN),
    );
    assert!(text(&out).contains("certificateHold"), "{}", text(&out));
    let out = vigie(
        &["release", "--url", &url, "--ca", CA, "--serial", &v],
        Some(TOKEN),
    );
    assert!(
        text(&out).contains("\"status\": \"good\""),
        "{}",
        text(&out)
    );
    let out = vigie(&["status", "--url", &url], Some(TOKEN));
    assert!(
        out.status.success() && text(&out).contains("aci-el-pp"),
        "{}",
        text(&out)
    );
    let out = vigie(
        &[
            "revoke",
            "--url",
            &url,
            "--ca",
            CA,
            "--serial",
            &v,
            "--reason",
            "superseded",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("HTTP 401") && text(&out).contains("VIGIE_TOKEN"),
        "{}",
        text(&out)
    );
}
