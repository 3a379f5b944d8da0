//! `vigie probe`: the service checked from outside, as a relying party sees it — for cron or a
//! monitoring system. It speaks only HTTP to the public listener and reads only CA certificates.
//!
//! Per CA:
//! - the complete CRL (`{url}/crl/{id}.crl`) and, when the complete CRL points to one
//!   (FreshestCRL) or the server has one, the delta CRL (`{url}/crl/{id}-delta.crl`): signature
//!   by the CA key (openssl), issuer = the CA's subject, CRLNumber present and not lower than the
//!   last one seen (a state file), thisUpdate not in the future, nextUpdate present and at least
//!   `crl_min_remaining` away; RFC 5280 scope rules: IssuingDistributionPoint critical (§5.2.5)
//!   and naming the expected URL when known, the same in the delta (§5.2.4), FreshestCRL
//!   non-critical and only in the complete CRL (§5.2.6), DeltaCRLIndicator critical with a base
//!   not above the complete CRL's number, and a delta number above it (§5.2.4);
//! - OCSP (RFC 6960), GET (App. A.1) and POST, for sample serials (given, or the first revoked
//!   ones of the CRLs): a successful basic response whose signature verifies with the signer's
//!   key; the signer is the CA itself or a certificate issued by it (issuer name and signature)
//!   with extendedKeyUsage id-kp-OCSPSigning, valid now and for more than `signer_min_days`
//!   (§4.2.2.2); the ResponderID names it (§4.2.2.3); the answer is about the asked CertID,
//!   thisUpdate is not in the future and nextUpdate not past (§4.2.2.1);
//! - agreement: a serial the CRLs list (the delta overriding the complete CRL, removeFromCRL
//!   taking an entry off) is `revoked` in OCSP with the same revocation time and reason; a serial
//!   OCSP says was revoked before the CRL's thisUpdate is on the CRL.
//!
//! Results are [`Finding`]s in a [`Report`]: a table ([`Report::table`]), JSON, or a Prometheus
//! textfile-collector file ([`Report::prometheus`], written atomically by
//! [`write_atomically`]). LDAP publication is not checked yet (no LDAP client in the
//! dependencies).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::x509::{X509, X509Crl};
use serde::{Deserialize, Serialize};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, ResponderId};

use crate::model::{Serial, UnixTime};

/// Largest body read from the service (a CRL of a few million entries).
const MAX_BODY: u64 = 512 << 20;
/// Clock skew tolerated on thisUpdate / producedAt.
const SKEW: i64 = 300;

/// Why the probe could not run at all (problems with the service are [`Finding`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CA certificate could not be read.
    #[error("CA certificate {}: {message}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The state file is unreadable or could not be written.
    #[error("state file {}: {message}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An output file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// An option is unusable.
    #[error("{0}")]
    Option(String),
}

/// One CA to probe.
#[derive(Debug, Clone)]
pub struct ProbeCa {
    /// The CA id (as in the service's URLs).
    pub id: String,
    /// The CA certificate.
    pub cert: X509,
    /// Where to fetch the complete CRL.
    pub crl_url: String,
    /// Where to fetch the delta CRL.
    pub delta_url: String,
    /// The IssuingDistributionPoint URL the CRLs must carry, when known (`Some(None)`: none).
    pub expected_idp: Option<Vec<String>>,
    /// The FreshestCRL URL the complete CRL must carry, when known (`Some(None)`: none).
    pub expected_freshest: Option<Option<String>>,
    /// Serials to ask OCSP about besides the CRL's samples (hex).
    pub serials: Vec<String>,
}

/// What to probe and how strictly.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The CAs.
    pub cas: Vec<ProbeCa>,
    /// The OCSP URL (POST to it, GET below it).
    pub ocsp_url: String,
    /// Revoked serials taken from the CRLs per CA.
    pub samples: usize,
    /// Last CRL numbers seen, kept between runs.
    pub state_file: Option<PathBuf>,
    /// Least time a CRL must have before its nextUpdate, seconds.
    pub crl_min_remaining: i64,
    /// Least days an OCSP signer must still be valid.
    pub signer_min_days: i64,
    /// HTTP timeout.
    pub timeout: Duration,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The CA.
    pub ca: String,
    /// What was checked (`full CRL`, `delta CRL`, `OCSP GET 1a2b`, …).
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen, or the problem.
    pub detail: String,
}

/// Figures per CA, for the table and the Prometheus file.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CaFigures {
    /// The CA.
    pub ca: String,
    /// CRLNumber of the complete CRL.
    pub full_number: Option<u64>,
    /// Seconds left before its nextUpdate.
    pub full_seconds_left: Option<i64>,
    /// CRLNumber of the delta CRL.
    pub delta_number: Option<u64>,
    /// Seconds left before its nextUpdate.
    pub delta_seconds_left: Option<i64>,
    /// Days the OCSP signer has left (the least seen).
    pub signer_days_left: Option<i64>,
    /// notAfter of that signer (Unix time).
    pub signer_not_after: Option<i64>,
    /// OCSP answers checked.
    pub ocsp_answers: u64,
    /// Problems found.
    pub problems: u64,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when nothing failed.
    pub ok: bool,
    /// When the probe ran.
    pub checked_at: UnixTime,
    /// How long it took, seconds.
    pub duration_seconds: f64,
    /// Per CA.
    pub cas: Vec<CaFigures>,
    /// Every check, in order.
    pub findings: Vec<Finding>,
}

/// One CRL entry: revocation time and reason code (`None`: no reason; 8: removeFromCRL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    revoked_at: i64,
    reason: Option<u32>,
}

/// What the probe learnt from a CRL.
struct ParsedCrl {
    number: u64,
    base: Option<u64>,
    this_update: i64,
    entries: Vec<(Serial, Listed)>,
    idp: Option<(bool, Vec<String>)>,
}

/// Collects findings for one CA.
struct Checker<'a> {
    ca: &'a str,
    findings: Vec<Finding>,
    problems: u64,
}

impl Checker<'_> {
    fn ok(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding {
            ca: self.ca.to_owned(),
            check: check.into(),
            ok: true,
            detail: detail.into(),
        });
    }

    fn problem(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.problems += 1;
        self.findings.push(Finding {
            ca: self.ca.to_owned(),
            check: check.into(),
            ok: false,
            detail: detail.into(),
        });
    }
}

/// Last CRL numbers seen, by `ca/kind`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    crl_numbers: BTreeMap<String, u64>,
}

fn load_state(path: &Path) -> Result<State, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: path.to_owned(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(Error::State {
            path: path.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a
/// reader (node_exporter's textfile collector) never sees a partial file.
pub fn write_atomically(path: &Path, text: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "probe".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Reads a CA certificate (PEM or DER).
pub fn read_ca(path: &Path) -> Result<X509, Error> {
    crate::pki::read_cert(path).map_err(|message| Error::CaCert {
        path: path.to_owned(),
        message,
    })
}

/// Fetches a URL: (HTTP status, body). Transport failures are `Err` with a readable text.
fn fetch(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), String> {
    let req = agent.request(method, url);
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/ocsp-request")
            .send_bytes(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = response.status();
    let mut out = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut out)
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok((status, out))
}

fn unix(t: x509_cert::time::Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

fn uint_value(bytes: &[u8]) -> Option<u64> {
    let n = der::asn1::Uint::from_der(bytes).ok()?;
    let b = n.as_bytes();
    (b.len() <= 8).then(|| b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
}

fn uris(name: &Option<DistributionPointName>) -> Vec<String> {
    match name {
        Some(DistributionPointName::FullName(names)) => names
            .iter()
            .filter_map(|n| match n {
                GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn describe(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let text = if a >= 86_400 {
        format!("{}d {}h", a / 86_400, a % 86_400 / 3600)
    } else if a >= 3600 {
        format!("{}h {:02}m", a / 3600, a % 3600 / 60)
    } else {
        format!("{}m {:02}s", a / 60, a % 60)
    };
    if secs < 0 { format!("-{text}") } else { text }
}

/// Checks one CRL; returns what the rest of the probe needs, or `None` after a problem that
/// makes its content unusable.
#[allow(clippy::too_many_arguments)]
fn check_crl(
    c: &mut Checker<'_>,
    label: &str,
    der: &[u8],
    ca: &ProbeCa,
    ca_key: &PKey<Public>,
    now: i64,
    opts: &ProbeOptions,
    state: &mut State,
    figures: &mut CaFigures,
) -> Option<ParsedCrl> {
    use const_oid::db::rfc5280 as oids;
    let is_delta = label == "delta CRL";
    let crl = match X509Crl::from_der(der) {
        Ok(crl) => crl,
        Err(e) => {
            c.problem(label, format!("not a DER CRL: {e}"));
            return None;
        }
    };
    match crl.verify(ca_key) {
        Ok(true) => {}
        _ => {
            c.problem(
                label,
                format!("signature does not verify with the key of CA {}", ca.id),
            );
            return None;
        }
    }
    let parsed = match CertificateList::from_der(der) {
        Ok(p) => p,
        Err(e) => {
            c.problem(label, format!("does not parse: {e}"));
            return None;
        }
    };
    let tbs = &parsed.tbs_cert_list;
    let ca_subject = ca.cert.subject_name().to_der().unwrap_or_default();
    if tbs.issuer.to_der().ok().as_deref() != Some(ca_subject.as_slice()) {
        c.problem(
            label,
            format!("issuer {} is not the CA's subject", tbs.issuer),
        );
    }
    let mut number = None;
    let mut base = None;
    let mut idp = None;
    let mut freshest: Option<(bool, Vec<String>)> = None;
    for e in tbs.crl_extensions.iter().flatten() {
        let v = e.extn_value.as_bytes();
        if e.extn_id == oids::ID_CE_CRL_NUMBER {
            number = uint_value(v);
        } else if e.extn_id == oids::ID_CE_DELTA_CRL_INDICATOR {
            if !e.critical {
                c.problem(label, "DeltaCRLIndicator is not critical (RFC 5280 §5.2.4)");
            }
            base = uint_value(v);
        } else if e.extn_id == oids::ID_CE_ISSUING_DISTRIBUTION_POINT {
            match IssuingDistributionPoint::from_der(v) {
                Ok(p) => idp = Some((e.critical, uris(&p.distribution_point))),
                Err(err) => c.problem(label, format!("IssuingDistributionPoint: {err}")),
            }
        } else if e.extn_id == oids::ID_CE_FRESHEST_CRL {
            match Vec::<DistributionPoint>::from_der(v) {
                Ok(points) => {
                    freshest = Some((
                        e.critical,
                        points
                            .iter()
                            .flat_map(|p| uris(&p.distribution_point))
                            .collect(),
                    ))
                }
                Err(err) => c.problem(label, format!("FreshestCRL: {err}")),
            }
        } else if e.critical {
            c.problem(
                label,
                format!("unknown critical extension {} (RFC 5280 §5.2)", e.extn_id),
            );
        }
    }
    let Some(number) = number else {
        c.problem(label, "no CRLNumber (RFC 5280 §5.2.3)");
        return None;
    };
    if is_delta && base.is_none() {
        c.problem(label, "served as a delta CRL but has no DeltaCRLIndicator");
    }
    if !is_delta && base.is_some() {
        c.problem(
            label,
            "served as a complete CRL but has a DeltaCRLIndicator",
        );
    }
    // IssuingDistributionPoint (§5.2.5): critical; the expected URL.
    if let Some((false, _)) = &idp {
        c.problem(
            label,
            "IssuingDistributionPoint is not critical (RFC 5280 §5.2.5)",
        );
    }
    if let Some(expected) = &ca.expected_idp {
        let got = idp.as_ref().map(|(_, u)| u.clone()).unwrap_or_default();
        let want: Vec<String> = expected.clone();
        if got != want {
            c.problem(
                label,
                format!("IssuingDistributionPoint names {got:?}, expected {want:?}"),
            );
        }
    }
    // FreshestCRL (§5.2.6): non-critical, only in complete CRLs.
    match (&freshest, is_delta) {
        (Some(_), true) => c.problem(
            label,
            "a delta CRL carries FreshestCRL (RFC 5280 §5.2.6: complete CRLs only)",
        ),
        (Some((true, _)), false) => c.problem(label, "FreshestCRL is critical (RFC 5280 §5.2.6)"),
        _ => {}
    }
    if let (false, Some(expected)) = (is_delta, &ca.expected_freshest) {
        let got = freshest
            .as_ref()
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        let want: Vec<String> = expected.iter().cloned().collect();
        if got != want {
            c.problem(
                label,
                format!("FreshestCRL names {got:?}, expected {want:?}"),
            );
        }
    }
    // Times (§5.1.2.4, §5.1.2.5).
    let this_update = unix(tbs.this_update);
    if this_update > now + SKEW {
        c.problem(
            label,
            format!("thisUpdate {} is in the future", UnixTime(this_update)),
        );
    }
    let left = match tbs.next_update {
        None => {
            c.problem(label, "no nextUpdate");
            None
        }
        Some(t) => Some(unix(t) - now),
    };
    if let Some(left) = left {
        if left <= 0 {
            c.problem(
                label,
                format!(
                    "stale: nextUpdate {} passed {} ago",
                    UnixTime(now + left),
                    describe(-left)
                ),
            );
        } else if left < opts.crl_min_remaining {
            c.problem(
                label,
                format!(
                    "stale: nextUpdate {} is only {} away (less than {})",
                    UnixTime(now + left),
                    describe(left),
                    describe(opts.crl_min_remaining)
                ),
            );
        }
    }
    // Numbers never go back.
    let key = format!("{}/{}", ca.id, if is_delta { "delta" } else { "full" });
    if let Some(seen) = state.crl_numbers.get(&key).filter(|seen| number < **seen) {
        c.problem(
            label,
            format!("CRLNumber {number} is lower than {seen}, seen before (RFC 5280 §5.2.3)"),
        );
    }
    let entry = state.crl_numbers.entry(key).or_insert(number);
    *entry = (*entry).max(number);
    let mut entries = Vec::new();
    for r in tbs.revoked_certificates.iter().flatten() {
        let Some(serial) = Serial::from_der_content(r.serial_number.as_bytes()) else {
            c.problem(label, "an entry's serial is not a positive integer");
            continue;
        };
        let mut reason = None;
        for e in r.crl_entry_extensions.iter().flatten() {
            if e.extn_id == oids::ID_CE_CRL_REASONS {
                match x509_cert::ext::pkix::CrlReason::from_der(e.extn_value.as_bytes()) {
                    Ok(code) => reason = Some(code as u32),
                    Err(err) => c.problem(label, format!("entry {serial}: reasonCode {err}")),
                }
            }
        }
        entries.push((
            serial,
            Listed {
                revoked_at: unix(r.revocation_date),
                reason,
            },
        ));
    }
    if is_delta {
        figures.delta_number = Some(number);
        figures.delta_seconds_left = left;
    } else {
        figures.full_number = Some(number);
        figures.full_seconds_left = left;
    }
    c.ok(
        label,
        format!(
            "number {number}{}, {} entries, nextUpdate in {}",
            base.map(|b| format!(" (base {b})")).unwrap_or_default(),
            entries.len(),
            left.map_or_else(|| "—".to_owned(), describe)
        ),
    );
    Some(ParsedCrl {
        number,
        base,
        this_update,
        entries,
        idp,
    })
}

/// The signature algorithms an OCSP response may use, with their digests.
fn digest_of(oid: &const_oid::ObjectIdentifier) -> Option<MessageDigest> {
    use const_oid::db::rfc5912 as a;
    let is = |candidates: &[const_oid::ObjectIdentifier]| candidates.contains(oid);
    if is(&[a::SHA_256_WITH_RSA_ENCRYPTION, a::ECDSA_WITH_SHA_256]) {
        Some(MessageDigest::sha256())
    } else if is(&[a::SHA_384_WITH_RSA_ENCRYPTION, a::ECDSA_WITH_SHA_384]) {
        Some(MessageDigest::sha384())
    } else if is(&[a::SHA_512_WITH_RSA_ENCRYPTION, a::ECDSA_WITH_SHA_512]) {
        Some(MessageDigest::sha512())
    } else if is(&[a::SHA_1_WITH_RSA_ENCRYPTION]) {
        Some(MessageDigest::sha1())
    } else {
        None
    }
}

/// A DER OCSP request for one serial of `ca` (RFC 6960 §4.1.1), CertID with SHA-1.
fn ocsp_request(ca: &X509, serial: &Serial) -> Result<Vec<u8>, String> {
    use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};
    // RFC 6960 §4.1.1: CertID over SHA-1 (the hash every responder supports), parameters NULL.
    let ca_der = ca.to_der().map_err(|e| e.to_string())?;
    let name = ca.subject_name().to_der().map_err(|e| e.to_string())?;
    let key_bits = crate::pki::subject_public_key_bits(&ca_der)?;
    let sha1 = |d: &[u8]| openssl::sha::sha1(d).to_vec();
    let cert_id = CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_1,
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: der::asn1::OctetString::new(sha1(&name)).map_err(|e| e.to_string())?,
        issuer_key_hash: der::asn1::OctetString::new(sha1(&key_bits)).map_err(|e| e.to_string())?,
        serial_number: x509_cert::serial_number::SerialNumber::new(serial.magnitude())
            .map_err(|e| e.to_string())?,
    };
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| e.to_string())
}

/// What OCSP said about one serial.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Good,
    Revoked(Listed),
    Unknown,
}

/// Checks one OCSP answer; returns the status when the answer is usable.
#[allow(clippy::too_many_arguments)]
fn check_ocsp(
    c: &mut Checker<'_>,
    label: &str,
    body: &[u8],
    ca: &ProbeCa,
    ca_key: &PKey<Public>,
    serial: &Serial,
    now: i64,
    opts: &ProbeOptions,
    figures: &mut CaFigures,
) -> Option<Said> {
    let response = match OcspResponse::from_der(body) {
        Ok(r) => r,
        Err(e) => {
            c.problem(label, format!("not a DER OCSP response: {e}"));
            return None;
        }
    };
    if response.response_status != OcspResponseStatus::Successful {
        c.problem(
            label,
            format!("response status {:?}", response.response_status),
        );
        return None;
    }
    let Some(bytes) = response.response_bytes else {
        c.problem(label, "successful but no responseBytes");
        return None;
    };
    let basic = match BasicOcspResponse::from_der(bytes.response.as_bytes()) {
        Ok(b) => b,
        Err(e) => {
            c.problem(label, format!("BasicOCSPResponse does not parse: {e}"));
            return None;
        }
    };
    let ca_der = ca.cert.to_der().unwrap_or_default();
    // The signer: a certificate of the response that the ResponderID names, or the CA.
    let names = |cert_der: &[u8]| -> bool {
        let Ok(x) = X509::from_der(cert_der) else {
            return false;
        };
        match &basic.tbs_response_data.responder_id {
            ResponderId::ByKey(hash) => crate::pki::subject_public_key_bits(cert_der)
                .map(|bits| openssl::sha::sha1(&bits).as_slice() == hash.as_bytes())
                .unwrap_or(false),
            ResponderId::ByName(name) => name.to_der().ok() == x.subject_name().to_der().ok(),
        }
    };
    let mut candidates: Vec<Vec<u8>> = basic
        .certs
        .iter()
        .flatten()
        .filter_map(|cert| cert.to_der().ok())
        .collect();
    candidates.push(ca_der.clone());
    let Some(signer_der) = candidates.into_iter().find(|d| names(d)) else {
        c.problem(
            label,
            "the ResponderID names neither an included certificate nor the CA (RFC 6960 §4.2.2.3)",
        );
        return None;
    };
    let Ok(signer) = X509::from_der(&signer_der) else {
        c.problem(label, "the signer certificate does not parse");
        return None;
    };
    // The signature over tbsResponseData (RFC 6960 §4.2.1).
    let tbs = basic.tbs_response_data.to_der().unwrap_or_default();
    let verified = digest_of(&basic.signature_algorithm.oid).and_then(|md| {
        let key = signer.public_key().ok()?;
        let mut v = openssl::sign::Verifier::new(md, &key).ok()?;
        v.verify_oneshot(basic.signature.raw_bytes(), &tbs).ok()
    });
    match verified {
        Some(true) => {}
        Some(false) => {
            c.problem(label, "signature does not verify with the signer's key");
            return None;
        }
        None => {
            c.problem(
                label,
                format!(
                    "signature algorithm {} not supported by the probe",
                    basic.signature_algorithm.oid
                ),
            );
            return None;
        }
    }
    // Authorisation (RFC 6960 §4.2.2.2): the CA, or a certificate it issued for OCSP signing.
    let signer_subject = crate::pki::one_line_name(signer.subject_name());
    if signer_der != ca_der {
        let issued_by_ca = signer.verify(ca_key).unwrap_or(false)
            && signer.issuer_name().to_der().ok() == ca.cert.subject_name().to_der().ok();
        if !issued_by_ca {
            c.problem(
                label,
                format!("signer {signer_subject} was not issued by CA {}", ca.id),
            );
        }
        let has_eku = x509_cert::Certificate::from_der(&signer_der)
            .ok()
            .and_then(|cert| {
                cert.tbs_certificate
                    .get::<x509_cert::ext::pkix::ExtendedKeyUsage>()
                    .ok()
                    .flatten()
            })
            .is_some_and(|(_, eku)| eku.0.contains(&const_oid::db::rfc5280::ID_KP_OCSP_SIGNING));
        if !has_eku {
            c.problem(
                label,
                format!("signer {signer_subject} lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)"),
            );
        }
    }
    let not_after = crate::pki::not_after(&signer).0;
    let not_before = crate::pki::not_before(&signer).0;
    let days_left = (not_after - now).div_euclid(86_400);
    if figures.signer_not_after.is_none_or(|n| not_after < n) {
        figures.signer_not_after = Some(not_after);
        figures.signer_days_left = Some(days_left);
    }
    if not_after <= now {
        c.problem(
            label,
            format!(
                "OCSP signer {signer_subject} expired on {}",
                UnixTime(not_after)
            ),
        );
    } else if not_before > now + SKEW {
        c.problem(
            label,
            format!(
                "OCSP signer {signer_subject} is not valid before {}",
                UnixTime(not_before)
            ),
        );
    } else if days_left < opts.signer_min_days {
        c.problem(
            label,
            format!(
                "OCSP signer {signer_subject} expires in {days_left} days (on {})",
                UnixTime(not_after)
            ),
        );
    }
    // The answer about our serial, and its times (RFC 6960 §4.2.2.1).
    let produced = basic
        .tbs_response_data
        .produced_at
        .0
        .to_unix_duration()
        .as_secs() as i64;
    if produced > now + SKEW {
        c.problem(
            label,
            format!("producedAt {} is in the future", UnixTime(produced)),
        );
    }
    let single = basic.tbs_response_data.responses.iter().find(|r| {
        Serial::from_der_content(r.cert_id.serial_number.as_bytes()).as_ref() == Some(serial)
    });
    let Some(single) = single else {
        c.problem(label, "the response does not answer for the serial asked");
        return None;
    };
    let this_update = single.this_update.0.to_unix_duration().as_secs() as i64;
    if this_update > now + SKEW {
        c.problem(
            label,
            format!("thisUpdate {} is in the future", UnixTime(this_update)),
        );
    }
    match &single.next_update {
        Some(n) if (n.0.to_unix_duration().as_secs() as i64) <= now => c.problem(
            label,
            format!(
                "stale answer: nextUpdate {} has passed",
                UnixTime(n.0.to_unix_duration().as_secs() as i64)
            ),
        ),
        _ => {}
    }
    let said = match &single.cert_status {
        CertStatus::Good(_) => Said::Good,
        CertStatus::Unknown(_) => Said::Unknown,
        CertStatus::Revoked(info) => Said::Revoked(Listed {
            revoked_at: info.revocation_time.0.to_unix_duration().as_secs() as i64,
            reason: info.revocation_reason.map(|r| r as u32),
        }),
    };
    figures.ocsp_answers += 1;
    Some(said)
}

fn reason_name(code: Option<u32>) -> String {
    code.and_then(|c| u8::try_from(c).ok())
        .and_then(crate::model::RevocationReason::from_code)
        .map_or_else(
            || match code {
                None => "no reason".to_owned(),
                Some(c) => format!("reason {c}"),
            },
            |r| r.name().to_owned(),
        )
}

fn said_text(s: &Said) -> String {
    match s {
        Said::Good => "good".into(),
        Said::Unknown => "unknown".into(),
        Said::Revoked(l) => format!(
            "revoked at {} ({})",
            UnixTime(l.revoked_at),
            reason_name(l.reason)
        ),
    }
}

/// Probes every CA.
pub fn run(opts: &ProbeOptions, now: UnixTime) -> Result<Report, Error> {
    let started = Instant::now();
    let agent = ureq::AgentBuilder::new().timeout(opts.timeout).build();
    let mut state = match &opts.state_file {
        Some(p) => load_state(p)?,
        None => State::default(),
    };
    let mut findings = Vec::new();
    let mut figures_all = Vec::new();
    for ca in &opts.cas {
        let mut c = Checker {
            ca: &ca.id,
            findings: Vec::new(),
            problems: 0,
        };
        let mut figures = CaFigures {
            ca: ca.id.clone(),
            ..CaFigures::default()
        };
        probe_ca(&mut c, &agent, ca, opts, now.0, &mut state, &mut figures);
        figures.problems = c.problems;
        findings.extend(c.findings);
        figures_all.push(figures);
    }
    if let Some(path) = &opts.state_file {
        let text = serde_json::to_vec_pretty(&state).map_err(|e| Error::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(path, &text)?;
    }
    Ok(Report {
        ok: findings.iter().all(|f| f.ok),
        checked_at: now,
        duration_seconds: started.elapsed().as_secs_f64(),
        cas: figures_all,
        findings,
    })
}

fn probe_ca(
    c: &mut Checker<'_>,
    agent: &ureq::Agent,
    ca: &ProbeCa,
    opts: &ProbeOptions,
    now: i64,
    state: &mut State,
    figures: &mut CaFigures,
) {
    let ca_key = match ca.cert.public_key() {
        Ok(k) => k,
        Err(e) => {
            c.problem("CA certificate", format!("no usable public key: {e}"));
            return;
        }
    };
    // Complete CRL.
    let full = match fetch(agent, "GET", &ca.crl_url, None) {
        Ok((200, body)) => check_crl(c, "full CRL", &body, ca, &ca_key, now, opts, state, figures),
        Ok((status, body)) => {
            c.problem(
                "full CRL",
                format!(
                    "GET {}: HTTP {status} {}",
                    ca.crl_url,
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            );
            None
        }
        Err(e) => {
            c.problem("full CRL", e);
            None
        }
    };
    // Delta CRL: expected when the complete CRL points to one.
    let expects_delta = match &ca.expected_freshest {
        Some(expected) => expected.is_some(),
        None => true,
    };
    let delta = match fetch(agent, "GET", &ca.delta_url, None) {
        Ok((200, body)) => check_crl(
            c,
            "delta CRL",
            &body,
            ca,
            &ca_key,
            now,
            opts,
            state,
            figures,
        ),
        Ok((404, _)) if !expects_delta => None,
        Ok((status, _)) => {
            if expects_delta {
                c.problem("delta CRL", format!("GET {}: HTTP {status}", ca.delta_url));
            }
            None
        }
        Err(e) => {
            c.problem("delta CRL", e);
            None
        }
    };
    if let (Some(f), Some(d)) = (&full, &delta) {
        // RFC 5280 §5.2.4: a delta's number is above its base's; its base is a complete CRL
        // the relying party can have (not above the current one); the same scope.
        if let Some(base) = d.base {
            if base > f.number {
                c.problem(
                    "delta CRL",
                    format!(
                        "base CRL {base} is above the complete CRL {} served",
                        f.number
                    ),
                );
            }
            if d.number <= base {
                c.problem(
                    "delta CRL",
                    format!("number {} is not above its base {base}", d.number),
                );
            }
        }
        if d.number < f.number && d.base != Some(f.number) {
            c.problem(
                "delta CRL",
                format!(
                    "delta {} (base {:?}) is older than the complete CRL {}",
                    d.number, d.base, f.number
                ),
            );
        }
        let scope = |p: &ParsedCrl| p.idp.as_ref().map(|(_, u)| u.clone());
        if scope(f) != scope(d) {
            c.problem(
                "delta CRL",
                "IssuingDistributionPoint differs from the complete CRL's (RFC 5280 §5.2.4)",
            );
        }
    }
    // What the CRLs say, the delta overriding the complete CRL.
    let mut listed: HashMap<Serial, Listed> = HashMap::new();
    let mut order: Vec<Serial> = Vec::new();
    if let Some(f) = &full {
        for (s, l) in &f.entries {
            listed.insert(s.clone(), *l);
            order.push(s.clone());
        }
    }
    if let Some(d) = &delta {
        for (s, l) in &d.entries {
            if l.reason == Some(8) {
                listed.remove(s);
            } else {
                if !listed.contains_key(s) {
                    order.push(s.clone());
                }
                listed.insert(s.clone(), *l);
            }
        }
    }
    let crl_time = match (&full, &delta) {
        (Some(f), Some(d)) => Some(f.this_update.max(d.this_update)),
        (Some(f), None) => Some(f.this_update),
        _ => None,
    };
    // Serials to ask about: the given ones, then revoked ones from the CRLs.
    let mut serials: Vec<Serial> = Vec::new();
    for hex in &ca.serials {
        match Serial::from_hex(hex) {
            Ok(s) => serials.push(s),
            Err(e) => c.problem(format!("serial {hex}"), e.to_string()),
        }
    }
    for s in order
        .iter()
        .filter(|s| listed.contains_key(*s))
        .take(opts.samples)
    {
        if !serials.contains(s) {
            serials.push(s.clone());
        }
    }
    if serials.is_empty() {
        c.ok(
            "OCSP",
            "no serial to ask about (none given, none on the CRLs)",
        );
    }
    for serial in &serials {
        let request = match ocsp_request(&ca.cert, serial) {
            Ok(r) => r,
            Err(e) => {
                c.problem(format!("OCSP {serial}"), format!("request: {e}"));
                continue;
            }
        };
        let mut answers = Vec::new();
        for method in ["GET", "POST"] {
            let label = format!("OCSP {method} {serial}");
            let fetched = if method == "GET" {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&request);
                let encoded =
                    percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC);
                let url = format!("{}/{encoded}", opts.ocsp_url.trim_end_matches('/'));
                fetch(agent, "GET", &url, None)
            } else {
                fetch(agent, "POST", &opts.ocsp_url, Some(&request))
            };
            match fetched {
                Ok((200, body)) => {
                    if let Some(said) =
                        check_ocsp(c, &label, &body, ca, &ca_key, serial, now, opts, figures)
                    {
                        answers.push((label, said));
                    }
                }
                Ok((status, _)) => c.problem(&label, format!("HTTP {status}")),
                Err(e) => c.problem(&label, e),
            }
        }
        if let [(_, a), (_, b)] = answers.as_slice()
            && a != b
        {
            c.problem(
                format!("OCSP {serial}"),
                format!("GET says {}, POST says {}", said_text(a), said_text(b)),
            );
        }
        for (label, said) in &answers {
            agreement(c, label, serial, said, listed.get(serial), crl_time);
        }
    }
}

/// CRL/OCSP agreement for one serial.
fn agreement(
    c: &mut Checker<'_>,
    label: &str,
    serial: &Serial,
    said: &Said,
    listed: Option<&Listed>,
    crl_time: Option<i64>,
) {
    match (listed, said) {
        (Some(l), Said::Revoked(o)) if l == o => c.ok(
            label,
            format!("revoked, as on the CRL ({})", said_text(said)),
        ),
        (Some(l), Said::Revoked(o)) => {
            let mut diffs = Vec::new();
            if l.reason != o.reason {
                diffs.push(format!(
                    "reason: CRL {}, OCSP {}",
                    reason_name(l.reason),
                    reason_name(o.reason)
                ));
            }
            if l.revoked_at != o.revoked_at {
                diffs.push(format!(
                    "revocation time: CRL {}, OCSP {}",
                    UnixTime(l.revoked_at),
                    UnixTime(o.revoked_at)
                ));
            }
            c.problem(
                label,
                format!("CRL and OCSP disagree on {serial}: {}", diffs.join("; ")),
            );
        }
        (Some(l), other) => c.problem(
            label,
            format!(
                "CRL and OCSP disagree on {serial}: the CRL lists it (revoked at {}, {}) but OCSP says {}",
                UnixTime(l.revoked_at),
                reason_name(l.reason),
                said_text(other)
            ),
        ),
        (None, Said::Revoked(o))
            if o.revoked_at > 0 && crl_time.is_some_and(|t| o.revoked_at < t) =>
        {
            c.problem(
                label,
                format!(
                    "CRL and OCSP disagree on {serial}: OCSP says {}, before the CRL's thisUpdate {}, but the CRL does not list it",
                    said_text(said),
                    UnixTime(crl_time.unwrap_or_default())
                ),
            )
        }
        (None, _) => c.ok(label, said_text(said)),
    }
}

impl Report {
    /// A plain-text table: one line per check, then one line per CA.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 4]> = vec![[
            "CA".into(),
            "check".into(),
            "result".into(),
            "detail".into(),
        ]];
        for f in &self.findings {
            rows.push([
                f.ca.clone(),
                f.check.clone(),
                if f.ok { "ok" } else { "PROBLEM" }.into(),
                f.detail.clone(),
            ]);
        }
        let mut widths = [0usize; 3];
        for r in &rows {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(r[i].chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            out.push_str(&format!(
                "{:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            ));
        }
        let problems: u64 = self.cas.iter().map(|c| c.problems).sum();
        out.push_str(&format!(
            "\n{} CA(s), {} check(s), {} problem(s) — {}\n",
            self.cas.len(),
            self.findings.len(),
            problems,
            if self.ok { "OK" } else { "FAILED" }
        ));
        out
    }

    /// The textfile-collector form (Prometheus text format 0.0.4).
    pub fn prometheus(&self) -> String {
        fn esc(s: &str) -> String {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        }
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in samples {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let per_ca = |f: &dyn Fn(&CaFigures) -> Option<f64>| -> Vec<(String, f64)> {
            self.cas
                .iter()
                .filter_map(|c| f(c).map(|v| (format!("{{ca=\"{}\"}}", esc(&c.ca)), v)))
                .collect()
        };
        family(
            "vigie_probe_success",
            "1 when every check of the CA passed",
            "gauge",
            per_ca(&|c| Some(if c.problems == 0 { 1.0 } else { 0.0 })),
        );
        family(
            "vigie_probe_problems",
            "Problems found for the CA",
            "gauge",
            per_ca(&|c| Some(c.problems as f64)),
        );
        let mut numbers = Vec::new();
        let mut left = Vec::new();
        for c in &self.cas {
            for (kind, n, l) in [
                ("full", c.full_number, c.full_seconds_left),
                ("delta", c.delta_number, c.delta_seconds_left),
            ] {
                let labels = format!("{{ca=\"{}\",kind=\"{kind}\"}}", esc(&c.ca));
                if let Some(n) = n {
                    numbers.push((labels.clone(), n as f64));
                }
                if let Some(l) = l {
                    left.push((labels, l as f64));
                }
            }
        }
        family(
            "vigie_probe_crl_number",
            "CRLNumber of the CRL fetched",
            "gauge",
            numbers,
        );
        family(
            "vigie_probe_crl_remaining_seconds",
            "Seconds left before the fetched CRL's nextUpdate",
            "gauge",
            left,
        );
        family(
            "vigie_probe_ocsp_signer_not_after_timestamp_seconds",
            "notAfter of the OCSP signer seen in answers (Unix time)",
            "gauge",
            per_ca(&|c| c.signer_not_after.map(|d| d as f64)),
        );
        family(
            "vigie_probe_ocsp_answers",
            "OCSP answers checked",
            "gauge",
            per_ca(&|c| Some(c.ocsp_answers as f64)),
        );
        family(
            "vigie_probe_last_run_timestamp_seconds",
            "When the probe ran (Unix time)",
            "gauge",
            vec![(String::new(), self.checked_at.0 as f64)],
        );
        family(
            "vigie_probe_duration_seconds",
            "How long the probe took",
            "gauge",
            vec![(String::new(), self.duration_seconds)],
        );
        out
    }
}

/// The CAs of a vigie configuration, as the probe sees them: URLs under `url` (the public
/// listener as the probe reaches it), expected IssuingDistributionPoint and FreshestCRL from
/// the configuration.
pub fn cas_from_config(config: &crate::config::Config, url: &str) -> Vec<ProbeCa> {
    let base = url.trim_end_matches('/');
    let registry = crate::pki::CaRegistry::from_config(config);
    config
        .cas
        .iter()
        .filter_map(|c| {
            let ca = registry.by_id(c.id.as_str())?;
            Some(ProbeCa {
                id: c.id.to_string(),
                cert: ca.cert.clone(),
                crl_url: format!("{base}/crl/{}.crl", c.id),
                delta_url: format!("{base}/crl/{}-delta.crl", c.id),
                // Learned from the registered certificates unless crl_urls/crl_url say: not compared then.
                expected_idp: c.crl.idp_urls.clone(),
                expected_freshest: Some(
                    c.crl
                        .delta_schedule
                        .as_ref()
                        .map(|_| c.crl.delta_url.clone()),
                ),
                serials: Vec::new(),
            })
        })
        .collect()
}

/// A CA given on the command line: its CRLs under `url`; the scope URLs expected under
/// `crl_url_base` when given (the URLs certificates carry), otherwise not compared.
pub fn ca_from_cert(id: &str, cert: X509, url: &str, crl_url_base: Option<&str>) -> ProbeCa {
    let base = url.trim_end_matches('/');
    ProbeCa {
        id: id.to_owned(),
        cert,
        crl_url: format!("{base}/crl/{id}.crl"),
        delta_url: format!("{base}/crl/{id}-delta.crl"),
        expected_idp: crl_url_base
            .map(|b| vec![format!("{}/crl/{id}.crl", b.trim_end_matches('/'))]),
        expected_freshest: None,
        serials: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("vigie.prom");
        write_atomically(&p, b"a 1\n").expect("written");
        write_atomically(&p, b"a 2\n").expect("replaced");
        assert_eq!(std::fs::read(&p).expect("read"), b"a 2\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn disagreement_names_reason_and_time() {
        let mut c = Checker {
            ca: "x",
            findings: Vec::new(),
            problems: 0,
        };
        let serial = Serial::from_hex("0a").expect("serial");
        let crl = Listed {
            revoked_at: 100,
            reason: Some(1),
        };
        let ocsp = Said::Revoked(Listed {
            revoked_at: 100,
            reason: Some(4),
        });
        agreement(&mut c, "OCSP GET 0a", &serial, &ocsp, Some(&crl), Some(200));
        assert_eq!(c.problems, 1);
        assert!(
            c.findings[0]
                .detail
                .contains("reason: CRL keyCompromise, OCSP superseded"),
            "{}",
            c.findings[0].detail
        );
        agreement(&mut c, "OCSP GET 0a", &serial, &Said::Good, None, Some(200));
        assert_eq!(c.problems, 1, "good and not listed agree");
        let early = Said::Revoked(Listed {
            revoked_at: 150,
            reason: None,
        });
        agreement(&mut c, "OCSP GET 0a", &serial, &early, None, Some(200));
        assert_eq!(c.problems, 2, "revoked before the CRL but not listed");
    }

    #[test]
    fn prometheus_text_is_well_formed() {
        let report = Report {
            ok: false,
            checked_at: UnixTime(1_000),
            duration_seconds: 0.5,
            cas: vec![CaFigures {
                ca: "aci-el-org".into(),
                full_number: Some(7),
                full_seconds_left: Some(3600),
                problems: 1,
                ..CaFigures::default()
            }],
            findings: Vec::new(),
        };
        let text = report.prometheus();
        let samples = crate::status::parse_exposition(&text);
        let find = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
        assert_eq!(find("vigie_probe_success"), Some(0.0));
        assert_eq!(find("vigie_probe_crl_number"), Some(7.0));
        assert_eq!(find("vigie_probe_last_run_timestamp_seconds"), Some(1000.0));
    }
}
