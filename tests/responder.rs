//! The responder under a fixed clock: golden files for the bytes clients see (OCSP responses built
//! from fixed inputs, a fixed clock and a fixed RSA key — PKCS#1 v1.5 signatures are
//! deterministic — and JSON problem bodies), and the cache's behaviour over time (refresh at half
//! validity, never past nextUpdate, invalidation by a status change).
//!
//! Each golden response is also verified with the `openssl` crate, so a golden file cannot
//! silently hold garbage. `VIGIE_BLESS=1 cargo test --release --test responder` rewrites the files
//! after an intended change; review the diff with `openssl ocsp -respin … -resp_text`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::golden;
use vigie::clock::{FixedClock, SharedClock};
use vigie::http::ApiError;
use vigie::ingest::{self, Change, RevocationRequest};
use vigie::model::{CaId, Issuance, RevocationReason, Serial, UnixTime};
use vigie::ocsp::{Answer, Responder};
use vigie::pki::HashAlg;
use vigie::store::{Store, StoreOptions};
use x509_cert::ext::pkix::crl::CrlReason;

/// 2026-06-01T00:00:00Z.
const NOW: UnixTime = UnixTime(1_780_272_000);

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-pki")
}

struct Fixture {
    _dir: tempfile::TempDir,
    responder: Arc<Responder>,
    store: Arc<Store>,
    clock: Arc<FixedClock>,
}

fn fixture(unknown_serial: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = data();
    // The committed golden keys are checked out 0644 (git keeps no modes): allowed here.
    let text = format!(
        "[store]\npath = \"{}\"\n\
         [security]\nallow_loose_key_permissions = true\n[ocsp]\nthis_update_backdate = \"5m\"\nsigning_threads = 1\n\
         [[ca]]\nid = \"golden\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\n\
         ocsp_validity = \"1d\"\nunknown_serial = \"{unknown_serial}\"\n",
        dir.path().join("data").display(),
        d.join("ca.pem").display(),
        d.join("ca.key").display(),
        d.join("ocsp.pem").display(),
        d.join("ocsp.key").display(),
    );
    // Loaded without the environment's VIGIE_* overrides: the golden answers depend on it.
    let config = vigie::config::RawConfig::parse(&text, "golden", std::iter::empty())
        .expect("golden config parses")
        .validate("golden", dir.path())
        .expect("golden config loads");
    let ca = CaId::new("golden").expect("id");
    let store = Arc::new(
        Store::open(
            &config.store.path,
            std::slice::from_ref(&ca),
            &StoreOptions::default(),
        )
        .expect("store"),
    );
    let issuance = Issuance {
        not_before: UnixTime(1_767_225_600),
        not_after: UnixTime(1_861_920_000),
        subject: None,
        profile: None,
    };
    let revocation = RevocationRequest {
        revoked_at: Some(UnixTime(1_780_000_000)),
        reason: Some(RevocationReason::KeyCompromise),
        invalidity_date: Some(UnixTime(1_779_900_000)),
    };
    store
        .transact(
            std::slice::from_ref(&ca),
            NOW,
            |tx| -> Result<(), vigie::Error> {
                for (serial, revoke) in [("1001", false), ("1002", true)] {
                    let s = Serial::from_hex(serial).expect("hex");
                    ingest::apply(tx, &ca, &s, &Change::Issue(issuance.clone()))?;
                    if revoke {
                        ingest::apply(tx, &ca, &s, &Change::Revoke(revocation.clone()))?;
                    }
                }
                Ok(())
            },
        )
        .expect("seeded");
    let clock = Arc::new(FixedClock::new(NOW));
    let shared: SharedClock = clock.clone();
    let registry = Arc::new(vigie::pki::CaRegistry::load(
        &config.cas,
        config.pkcs11.as_ref(),
        NOW,
    ));
    assert!(registry.problems().is_empty(), "{:?}", registry.problems());
    let responder = Arc::new(Responder::new(
        Arc::clone(&registry),
        Arc::clone(&store),
        shared,
        &config.ocsp,
    ));
    Fixture {
        _dir: dir,
        responder,
        store,
        clock,
    }
}

fn request(f: &Fixture, serials: &[&str], nonce: Option<&[u8]>) -> Vec<u8> {
    let registry = f.responder.registry();
    let ca = registry.by_id("golden").expect("configured");
    let h = &ca.hashes[HashAlg::Sha1.index()];
    let first = Serial::from_hex(serials[0]).expect("hex").der_content();
    let one = vigie::ocsp::request::build(HashAlg::Sha1, &h.name, &h.key, &first, nonce)
        .expect("encodes");
    if serials.len() == 1 {
        return one;
    }
    // Several CertIDs: splice the other Requests into the requestList of the first.
    use der::{Decode, Encode};
    let mut parsed = vigie::ocsp::der_types::OcspRequestDer::from_der(&one).expect("own request");
    let contents: Vec<Vec<u8>> = serials
        .iter()
        .map(|s| Serial::from_hex(s).expect("hex").der_content())
        .collect();
    let template = parsed.tbs_request.request_list[0].clone();
    parsed.tbs_request.request_list = contents
        .iter()
        .map(|c| {
            let mut r = template.clone();
            r.req_cert.serial_number = der::asn1::IntRef::new(c).expect("int");
            r
        })
        .collect();
    parsed.to_der().expect("encodes")
}

fn answer(f: &Fixture, der: &[u8]) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    answer_on(&rt, f, der)
}

/// Answers as the HTTP handler does: the seen-requests cache first (keyed by the body as it
/// arrived), then the full path, which remembers the request.
fn answer_on(rt: &tokio::runtime::Runtime, f: &Fixture, der: &[u8]) -> Vec<u8> {
    let mut raw = vec![b'P'];
    raw.extend_from_slice(der);
    let a: Answer = match f.responder.answer_seen(&raw, "POST") {
        Some(hit) => Answer::Cached(hit),
        None => rt.block_on(f.responder.answer_keyed(der, Some(&raw), "POST")),
    };
    a.der().to_vec()
}

/// Checks a response with the `openssl ocsp` CLI: signature, and the status of each serial.
fn verify_cli(der: &[u8], serials: &[&str], want: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let resp = dir.path().join("resp.der");
    std::fs::write(&resp, der).expect("write");
    let ca = data().join("ca.pem");
    let (resp_s, ca_s) = (resp.display().to_string(), ca.display().to_string());
    // The fixed clock is months in the past: widen the accepted validity window.
    let mut args = vec![
        "ocsp",
        "-respin",
        &resp_s,
        "-issuer",
        &ca_s,
        "-CAfile",
        &ca_s,
        "-validity_period",
        "1000000000",
        "-no_nonce",
    ];
    let hex: Vec<String> = serials.iter().map(|s| format!("0x{s}")).collect();
    for h in &hex {
        args.extend_from_slice(&["-serial", h]);
    }
    let out = std::process::Command::new("openssl")
        .args(&args)
        .output()
        .expect("openssl CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Response verify OK"), "{text}");
    for (h, w) in hex.iter().zip(want) {
        assert!(
            text.contains(&format!("{h}: {w}")),
            "{h} should be {w}: {text}"
        );
    }
}

/// What one SingleResponse of a golden response must say.
#[derive(Clone, Copy, Debug)]
enum Want {
    Good,
    Unknown,
    Revoked {
        /// revocationTime, Unix seconds.
        at: u64,
        reason: Option<CrlReason>,
        /// The invalidityDate single extension (RFC 5280 §5.3.2 as used by RFC 6960 §4.4), Unix
        /// seconds.
        invalidity: Option<u64>,
    },
}

/// What a golden response must say, field by field.
struct Fields<'a> {
    statuses: Vec<(&'a str, Want)>,
    nonce: Option<&'a [u8]>,
    extended_revoke: bool,
}

/// id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).
const EXTENDED_REVOKE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.9");
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 9654).
const NONCE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-ce-invalidityDate (RFC 5280 §5.3.2).
const INVALIDITY_DATE: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.24");

fn seconds(t: &x509_ocsp::OcspGeneralizedTime) -> u64 {
    t.0.to_unix_duration().as_secs()
}

/// Reads a golden response with parsers vigie does not use to build it — the `openssl` crate
/// (OpenSSL's d2i_OCSP_RESPONSE) for the response status and the BasicOCSPResponse, RustCrypto's
/// `x509-ocsp` for every field — and checks what it says: status, CertID echoed (SHA-1, the CA's
/// hashes, the serial), cert status, revocation time and reason, invalidity date, producedAt,
/// thisUpdate/nextUpdate from the fixed clock, the nonce echoed, the extended-revoke extension.
fn check_fields(f: &Fixture, name: &str, der: &[u8], want: &Fields) {
    use der::Decode;
    use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse};
    let o = openssl::ocsp::OcspResponse::from_der(der)
        .unwrap_or_else(|e| panic!("{name}: OpenSSL cannot read it: {e}"));
    assert_eq!(
        o.status(),
        openssl::ocsp::OcspResponseStatus::SUCCESSFUL,
        "{name}"
    );
    o.basic()
        .unwrap_or_else(|e| panic!("{name}: no BasicOCSPResponse for OpenSSL: {e}"));

    let resp = OcspResponse::from_der(der).expect("x509-ocsp reads it");
    assert_eq!(
        resp.response_status,
        x509_ocsp::OcspResponseStatus::Successful,
        "{name}"
    );
    let bytes = resp.response_bytes.expect("responseBytes");
    assert_eq!(
        bytes.response_type,
        const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC,
        "{name}"
    );
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("BasicOCSPResponse");
    let data = &basic.tbs_response_data;
    assert_eq!(
        seconds(&data.produced_at),
        NOW.0 as u64,
        "{name}: producedAt"
    );
    let registry = f.responder.registry();
    let ca = registry.by_id("golden").expect("configured");
    let h = &ca.hashes[HashAlg::Sha1.index()];
    assert_eq!(data.responses.len(), want.statuses.len(), "{name}");
    for (single, (serial, status)) in data.responses.iter().zip(&want.statuses) {
        let id = &single.cert_id;
        assert_eq!(
            id.hash_algorithm.oid,
            const_oid::db::rfc5912::ID_SHA_1,
            "{name}: CertID hash echoed"
        );
        assert_eq!(id.issuer_name_hash.as_bytes(), &h.name[..], "{name}");
        assert_eq!(id.issuer_key_hash.as_bytes(), &h.key[..], "{name}");
        assert_eq!(
            id.serial_number.as_bytes(),
            &Serial::from_hex(serial).expect("hex").der_content()[..],
            "{name}: serial echoed"
        );
        // RFC 6960 §2.4 / RFC 9919: thisUpdate backdated 5 min, nextUpdate one ocsp_validity on.
        let this_update = seconds(&single.this_update);
        assert_eq!(this_update, NOW.0 as u64 - 300, "{name}: thisUpdate");
        assert_eq!(
            single.next_update.as_ref().map(seconds),
            Some(this_update + 86400),
            "{name}: nextUpdate"
        );
        let invalidity = single.single_extensions.as_ref().and_then(|exts| {
            exts.iter().find(|e| e.extn_id == INVALIDITY_DATE).map(|e| {
                der::asn1::GeneralizedTime::from_der(e.extn_value.as_bytes())
                    .expect("invalidityDate is a GeneralizedTime")
                    .to_unix_duration()
                    .as_secs()
            })
        });
        match (*status, &single.cert_status) {
            (Want::Good, CertStatus::Good(_)) | (Want::Unknown, CertStatus::Unknown(_)) => {
                assert_eq!(invalidity, None, "{name}: {serial}");
            }
            (
                Want::Revoked {
                    at,
                    reason,
                    invalidity: want_invalidity,
                },
                CertStatus::Revoked(info),
            ) => {
                assert_eq!(seconds(&info.revocation_time), at, "{name}: revocationTime");
                assert_eq!(info.revocation_reason, reason, "{name}: revocationReason");
                assert_eq!(invalidity, want_invalidity, "{name}: invalidityDate");
            }
            (w, got) => panic!("{name}: serial {serial} should be {w:?}, is {got:?}"),
        }
    }
    let exts = data.response_extensions.as_deref().unwrap_or_default();
    let nonce = exts.iter().find(|e| e.extn_id == NONCE);
    match want.nonce {
        // RFC 9654: the extension's value is the request's, an OCTET STRING, echoed exactly.
        Some(n) => {
            let e = nonce.unwrap_or_else(|| panic!("{name}: nonce not echoed"));
            let inner = der::asn1::OctetString::from_der(e.extn_value.as_bytes())
                .expect("the nonce is an OCTET STRING");
            assert_eq!(inner.as_bytes(), n, "{name}: nonce echoed");
            assert!(!e.critical, "{name}");
        }
        None => assert!(nonce.is_none(), "{name}: a nonce nobody sent"),
    }
    let extended = exts.iter().find(|e| e.extn_id == EXTENDED_REVOKE);
    if want.extended_revoke {
        let e = extended.unwrap_or_else(|| panic!("{name}: extended-revoke missing"));
        // RFC 6960 §4.4.8: value NULL, never critical.
        assert_eq!(e.extn_value.as_bytes(), &[0x05, 0x00], "{name}");
        assert!(!e.critical, "{name}");
    } else {
        assert!(extended.is_none(), "{name}: extended-revoke");
    }
}

/// The golden file's own bytes, for [`check_fields`] (so the file itself is what is checked).
fn golden_bytes(name: &str) -> Vec<u8> {
    std::fs::read(golden::dir().join(name)).expect("golden file present")
}

#[test]
fn ocsp_responses_match_their_golden_files() {
    let f = fixture("unknown");
    let revoked = Want::Revoked {
        at: 1_780_000_000,
        reason: Some(CrlReason::KeyCompromise),
        invalidity: Some(1_779_900_000),
    };
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a [u8]>, Vec<Want>);
    let cases: [Case; 5] = [
        ("ocsp/good.der", vec!["1001"], None, vec![Want::Good]),
        (
            "ocsp/revoked-keycompromise.der",
            vec!["1002"],
            None,
            vec![revoked],
        ),
        ("ocsp/unknown.der", vec!["1003"], None, vec![Want::Unknown]),
        (
            "ocsp/nonce.der",
            vec!["1001"],
            Some(&[0x42; 16]),
            vec![Want::Good],
        ),
        (
            "ocsp/several.der",
            vec!["1001", "1002", "1003"],
            None,
            vec![Want::Good, revoked, Want::Unknown],
        ),
    ];
    for (name, serials, nonce, want) in cases {
        let der = answer(&f, &request(&f, &serials, nonce));
        let words: Vec<&str> = want
            .iter()
            .map(|w| match w {
                Want::Good => "good",
                Want::Unknown => "unknown",
                Want::Revoked { .. } => "revoked",
            })
            .collect();
        verify_cli(&der, &serials, &words);
        golden::check(name, &der);
        let fields = Fields {
            statuses: serials.iter().copied().zip(want).collect(),
            nonce,
            extended_revoke: false,
        };
        check_fields(&f, name, &golden_bytes(name), &fields);
    }
    let g = fixture("revoked");
    let der = answer(&g, &request(&g, &["1003"], None));
    verify_cli(&der, &["1003"], &["revoked"]);
    let name = "ocsp/never-issued-revoked-policy.der";
    golden::check(name, &der);
    // RFC 6960 §2.2 and §4.4.8: revoked at 1970-01-01, certificateHold, extended-revoke.
    let never_issued = Want::Revoked {
        at: 0,
        reason: Some(CrlReason::CertificateHold),
        invalidity: None,
    };
    let fields = Fields {
        statuses: vec![("1003", never_issued)],
        nonce: None,
        extended_revoke: true,
    };
    check_fields(&g, name, &golden_bytes(name), &fields);

    let name = "ocsp/malformed.der";
    golden::check(name, &answer(&f, b"\x30\x03garbage"));
    let bytes = golden_bytes(name);
    let o = openssl::ocsp::OcspResponse::from_der(&bytes).expect("OpenSSL reads it");
    assert_eq!(
        o.status(),
        openssl::ocsp::OcspResponseStatus::MALFORMED_REQUEST
    );
    let x = <x509_ocsp::OcspResponse as der::Decode>::from_der(&bytes).expect("x509-ocsp reads it");
    assert_eq!(
        x.response_status,
        x509_ocsp::OcspResponseStatus::MalformedRequest
    );
    assert!(x.response_bytes.is_none(), "an error status has no body");
}

#[test]
fn problem_bodies_match_their_golden_files() {
    let cases = [
        (
            "errors/not-found.json",
            ApiError::NotFound("no such resource: GET /nothing".into()),
        ),
        ("errors/too-large.json", ApiError::TooLarge(4096)),
        ("errors/unauthorized.json", ApiError::Unauthorized),
        ("errors/method-not-allowed.json", ApiError::MethodNotAllowed),
    ];
    for (name, e) in cases {
        golden::check(name, &vigie::http::error::problem_body(&e));
    }
}

fn this_update(der: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("r.der");
    std::fs::write(&p, der).expect("write");
    let out = std::process::Command::new("openssl")
        .args([
            "ocsp",
            "-respin",
            p.to_str().expect("utf-8"),
            "-resp_text",
            "-noverify",
        ])
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("This Update: ").map(str::to_owned))
        .expect("a thisUpdate line")
}

#[test]
fn cached_until_half_validity_then_refreshed_in_the_background() {
    let f = fixture("unknown");
    let req = request(&f, &["1001"], None);
    let first = answer(&f, &req);
    assert_eq!(answer(&f, &req), first, "served from the cache");
    // 1d validity, thisUpdate 5 min back: half-way from signing is just under 12 h.
    f.clock.advance(11 * 3600);
    assert_eq!(
        answer(&f, &req),
        first,
        "before half validity: same response"
    );
    f.clock.advance(3600);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let served = answer_on(&rt, &f, &req);
    assert_eq!(
        served, first,
        "still valid, served while a fresh one is signed"
    );
    let mut refreshed = None;
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let now = answer_on(&rt, &f, &req);
        if now != first {
            refreshed = Some(now);
            break;
        }
    }
    let refreshed = refreshed.expect("re-signed in the background");
    assert_ne!(this_update(&refreshed), this_update(&first));
}

#[test]
fn never_served_past_next_update() {
    let f = fixture("unknown");
    let req = request(&f, &["1001"], None);
    let first = answer(&f, &req);
    f.clock.advance(2 * 86400);
    let later = answer(&f, &req);
    assert_ne!(later, first);
    let t = this_update(&later);
    assert!(
        t.starts_with("Jun  2 23:55:00 2026"),
        "thisUpdate of the new response: {t}"
    );
}

#[test]
fn a_revocation_invalidates_the_cached_good_response() {
    let f = fixture("unknown");
    let req = request(&f, &["1001"], None);
    let good = answer(&f, &req);
    verify_cli(&good, &["1001"], &["good"]);
    let ca = CaId::new("golden").expect("id");
    let serial = Serial::from_hex("1001").expect("hex");
    f.store
        .transact(std::slice::from_ref(&ca), NOW, |tx| {
            ingest::apply(
                tx,
                &ca,
                &serial,
                &Change::Revoke(RevocationRequest {
                    revoked_at: None,
                    reason: Some(RevocationReason::Superseded),
                    invalidity_date: None,
                }),
            )
        })
        .expect("revoked");
    let after = answer(&f, &req);
    verify_cli(&after, &["1001"], &["revoked"]);
}

#[test]
fn the_refresher_resigns_stored_responses_and_drops_stale_ones() {
    let f = fixture("unknown");
    let good = answer(&f, &request(&f, &["1001"], None));
    let _revoked = answer(&f, &request(&f, &["1002"], None));
    let stats = f.responder.refresh_stored().expect("refresh runs");
    assert_eq!(
        (stats.seen, stats.resigned, stats.dropped),
        (2, 0, 0),
        "nothing due yet"
    );
    f.clock.advance(13 * 3600);
    let stats = f.responder.refresh_stored().expect("refresh runs");
    assert_eq!((stats.seen, stats.resigned), (2, 2));
    let again = answer(&f, &request(&f, &["1001"], None));
    assert_ne!(again, good, "the memory cache holds the re-signed response");
    assert_ne!(this_update(&again), this_update(&good));

    // A status change deletes the stored response in its own write: the refresher no longer
    // sees it, and the next request signs the new status.
    let ca = CaId::new("golden").expect("id");
    let serial = Serial::from_hex("1001").expect("hex");
    f.store
        .transact(std::slice::from_ref(&ca), NOW, |tx| {
            let hold = RevocationRequest {
                revoked_at: None,
                reason: Some(RevocationReason::CertificateHold),
                invalidity_date: None,
            };
            ingest::apply(tx, &ca, &serial, &Change::Revoke(hold))
        })
        .expect("held");
    for variant in 0..vigie::store::keys::OCSP_VARIANTS {
        assert_eq!(
            f.store.ocsp_response(&ca, &serial, variant).expect("reads"),
            None
        );
    }
    f.clock.advance(13 * 3600);
    let stats = f.responder.refresh_stored().expect("refresh runs");
    assert_eq!((stats.seen, stats.resigned, stats.dropped), (1, 1, 0));
    let held = answer(&f, &request(&f, &["1001"], None));
    verify_cli(&held, &["1001"], &["revoked"]);
}
