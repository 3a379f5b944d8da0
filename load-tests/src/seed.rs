//! `vigie-load seed`: a population of real certificates, issued by the demo CAs (whose keys are
//! on disk) and registered through the ingest API, some of them revoked, written to
//! `population.jsonl` for the scenarios.
//!
//! Issuing is made cheap: one subject key (ECDSA P-256 or RSA-2048) is reused for every
//! certificate, only the serial and subject change, and certificates are signed in parallel
//! (rayon) while earlier batches are being uploaded. The CA signature remains: with RSA-2048 CA
//! keys (`vigie demo --ca-bits 2048`) a 2-core machine issues a few thousand per second; with
//! the default RSA-4096 CA keys about six times fewer.
//!
//! Request bodies follow the ingest API: `POST /v1/certificates` with
//! `{"certificates": ["-----BEGIN CERTIFICATE-----…"]}` and `POST /v1/revocations` with an array
//! of `{"ca": …, "serial": "hex", "reason": …}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use vigie::signer::Signer;

use crate::http::{self, Conn, Endpoint};
use crate::population::{Appender, Expected, Line, SerialBytes};

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// openssl failed.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// The demo PKI could not be read.
    #[error("{0}")]
    Issuers(#[from] crate::issuers::Error),
    /// A CA key could not be read.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// HTTP failed.
    #[error("{0}")]
    Http(#[from] http::Error),
    /// The ingest API refused a batch.
    #[error("{what}: HTTP {status}: {body}")]
    Refused {
        /// Which call.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// The problem body.
        body: String,
    },
    /// The population file.
    #[error("{0}")]
    Population(#[from] crate::population::Error),
    /// A bad option.
    #[error("{0}")]
    Option(String),
}

/// The subject key type shared by all issued certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum KeyType {
    /// ECDSA P-256.
    P256,
    /// RSA-2048.
    Rsa2048,
}

/// One issuing CA's certificate template: a TBSCertificate made once by openssl's builder, in
/// which each new certificate only changes the serial and the CN digits, then signed with the
/// CA key through vigie's [`Signer`]. Building every certificate with the X509 builder costs
/// about three times the RSA signature itself under OpenSSL 3; patching a template costs
/// nothing next to it.
struct Template {
    id: String,
    tbs: Vec<u8>,
    serial_at: usize,
    cn_at: usize,
    algorithm: Vec<u8>,
    signer: Signer,
}

/// Placeholder serial (16 octets, top bit clear) and CN digits, found and patched in the TBS.
const SERIAL_PLACEHOLDER: [u8; 16] = [0x1d; 16];
const CN_PLACEHOLDER: &str = "ZZZZZZZZZZZZZZZZ";

/// Appends a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn find_unique(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut found = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Issues end-entity certificates for the demo CAs.
pub struct CertFactory {
    cas: Vec<Template>,
    /// Random per factory, so that two runs never make the same serial.
    serial_prefix: [u8; 8],
    counter: AtomicU64,
}

impl std::fmt::Debug for CertFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertFactory")
            .field("cas", &self.cas.iter().map(|c| &c.id).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Index of the CA in the factory (and in [`CertFactory::ca_ids`]).
    pub ca: u16,
    /// Its serial.
    pub serial: SerialBytes,
    /// PEM.
    pub pem: String,
    /// DER.
    pub der: Vec<u8>,
}

/// The template certificate of one CA, made with openssl's builder and signed once.
fn template_cert(
    ca_cert: &X509,
    ca_key: &PKey<Private>,
    subject_key: &PKey<Private>,
    not_before: i64,
) -> Result<X509, Error> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let bn = BigNum::from_slice(&SERIAL_PLACEHOLDER)?;
    b.set_serial_number(Asn1Integer::from_bn(&bn)?.as_ref())?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, "FR")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "VIGIE LOAD TEST")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "0002 187512751")?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("LOAD TEST {CN_PLACEHOLDER}"))?;
    let name = name.build();
    b.set_subject_name(&name)?;
    b.set_issuer_name(ca_cert.subject_name())?;
    b.set_pubkey(subject_key)?;
    b.set_not_before(Asn1Time::from_unix(not_before)?.as_ref())?;
    // Three years, as IGC-Santé software certificates.
    b.set_not_after(Asn1Time::from_unix(not_before + 3 * 365 * 86_400)?.as_ref())?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(false)
        .build(&b.x509v3_context(Some(ca_cert), None))?;
    b.append_extension(aki)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// Splits a DER Certificate into (TBSCertificate TLV, signatureAlgorithm TLV).
fn split_certificate(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let bad = || Error::Option("template certificate does not parse".into());
    let tlv = |bytes: &[u8]| -> Option<(usize, usize)> {
        // (header length, content length)
        let first = *bytes.get(1)?;
        if first < 0x80 {
            return Some((2, first as usize));
        }
        let n = (first & 0x7f) as usize;
        let mut len = 0usize;
        for &b in bytes.get(2..2 + n)? {
            len = (len << 8) | b as usize;
        }
        Some((2 + n, len))
    };
    let (h, _) = tlv(der).ok_or_else(bad)?;
    let inner = &der[h..];
    let (th, tl) = tlv(inner).ok_or_else(bad)?;
    let tbs = inner.get(..th + tl).ok_or_else(bad)?.to_vec();
    let rest = &inner[th + tl..];
    let (ah, al) = tlv(rest).ok_or_else(bad)?;
    let alg = rest.get(..ah + al).ok_or_else(bad)?.to_vec();
    Ok((tbs, alg))
}

impl CertFactory {
    /// Reads the CA certificates and keys of the demo in `dir` (only `only` when not empty).
    pub fn from_demo(dir: &Path, only: &[String], key: KeyType) -> Result<CertFactory, Error> {
        let issuers = crate::issuers::Issuers::from_demo_dir(dir)?;
        let subject_key = match key {
            KeyType::P256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            KeyType::Rsa2048 => PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?)?,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut cas = Vec::new();
        for ca in &issuers.pki.cas {
            if !only.is_empty() && !only.contains(&ca.id) {
                continue;
            }
            let pem = std::fs::read(&ca.key).map_err(|e| Error::Key {
                path: ca.key.clone(),
                message: e.to_string(),
            })?;
            let ca_key = PKey::private_key_from_pem(&pem).map_err(|e| Error::Key {
                path: ca.key.clone(),
                message: e.to_string(),
            })?;
            let cert = vigie::pki::read_cert(&ca.cert).map_err(|message| Error::Key {
                path: ca.cert.clone(),
                message,
            })?;
            let template = template_cert(&cert, &ca_key, &subject_key, now - 86_400)?;
            let (tbs, algorithm) = split_certificate(&template.to_der()?)?;
            let serial_at = find_unique(&tbs, &SERIAL_PLACEHOLDER)
                .ok_or_else(|| Error::Option("serial placeholder not found once".into()))?;
            let cn_at = find_unique(&tbs, CN_PLACEHOLDER.as_bytes())
                .ok_or_else(|| Error::Option("CN placeholder not found once".into()))?;
            let signer = Signer::new(ca_key).map_err(|e| Error::Key {
                path: ca.key.clone(),
                message: e.to_string(),
            })?;
            cas.push(Template {
                id: ca.id.clone(),
                tbs,
                serial_at,
                cn_at,
                algorithm,
                signer,
            });
        }
        if cas.is_empty() {
            return Err(Error::Option(format!(
                "none of the CAs {only:?} is in the demo"
            )));
        }
        let mut serial_prefix = [0u8; 8];
        openssl::rand::rand_bytes(&mut serial_prefix)?;
        serial_prefix[0] = (serial_prefix[0] & 0x3f) | 0x10;
        Ok(CertFactory {
            cas,
            serial_prefix,
            counter: AtomicU64::new(0),
        })
    }

    /// The CA ids, by index.
    pub fn ca_ids(&self) -> Vec<String> {
        self.cas.iter().map(|c| c.id.clone()).collect()
    }

    /// Issues the next certificate, for CA `ca` (index, modulo the number of CAs).
    pub fn issue(&self, ca: usize) -> Result<Issued, Error> {
        use base64::Engine as _;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let ca_index = ca % self.cas.len();
        let t = &self.cas[ca_index];
        let mut serial = [0u8; 16];
        serial[..8].copy_from_slice(&self.serial_prefix);
        serial[8..].copy_from_slice(&n.to_be_bytes());
        let mut tbs = t.tbs.clone();
        tbs[t.serial_at..t.serial_at + 16].copy_from_slice(&serial);
        let digits = format!("{n:016X}");
        tbs[t.cn_at..t.cn_at + 16].copy_from_slice(digits.as_bytes());
        let signature = t
            .signer
            .sign(&tbs)
            .map_err(|e| Error::Option(format!("signing: {e}")))?;
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }.
        let mut bits = Vec::with_capacity(signature.len() + 4);
        bits.push(0x03);
        push_len(&mut bits, signature.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&signature);
        let content = tbs.len() + t.algorithm.len() + bits.len();
        let mut der = Vec::with_capacity(content + 4);
        der.push(0x30);
        push_len(&mut der, content);
        der.extend_from_slice(&tbs);
        der.extend_from_slice(&t.algorithm);
        der.extend_from_slice(&bits);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 60);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Ok(Issued {
            ca: ca_index as u16,
            serial: SerialBytes::from_content(&serial)
                .ok_or_else(|| Error::Option("serial".into()))?,
            pem,
            der,
        })
    }
}

/// Body of `POST /v1/certificates` for several certificates.
pub fn certificates_body(pems: &[&str]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        certificates: &'a [&'a str],
    }
    serde_json::to_vec(&Body { certificates: pems }).unwrap_or_default()
}

/// One revocation of `POST /v1/revocations`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Revocation {
    /// CA id.
    pub ca: String,
    /// Serial, hex.
    pub serial: String,
    /// RFC 5280 reason name.
    pub reason: String,
}

/// Body of `POST /v1/revocations`: one object, or an array for several.
pub fn revocations_body(revs: &[Revocation]) -> Vec<u8> {
    let r = match revs {
        [one] => serde_json::to_vec(one),
        many => serde_json::to_vec(many),
    };
    r.unwrap_or_default()
}

/// Sends a JSON POST to the admin API with the bearer token.
pub async fn post_json(
    conn: &mut Option<Conn>,
    endpoint: &Endpoint,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
    buf: &mut Vec<u8>,
) -> Result<http::Response, http::Error> {
    let auth = format!("Bearer {token}");
    http::write_request(
        buf,
        "POST",
        endpoint,
        path,
        &[("Content-Type", content_type), ("Authorization", &auth)],
        body,
    );
    // A kept-alive connection may have been closed by the server while idle (the uploader
    // waited for signatures): then retry once on a fresh one. Safe: the ingest API treats a
    // replayed event as a no-op (200).
    let reused = conn.is_some();
    for attempt in 0..2 {
        if conn.is_none() {
            *conn = Some(Conn::connect(endpoint).await?);
        }
        let c = conn.as_mut().ok_or(http::Error::Closed)?;
        match c.send(buf).await {
            Ok(r) => {
                if r.close {
                    *conn = None;
                }
                return Ok(r);
            }
            Err(e) => {
                *conn = None;
                let stale = matches!(e, http::Error::Closed | http::Error::Io(_));
                if !(reused && stale && attempt == 0) {
                    return Err(e);
                }
            }
        }
    }
    Err(http::Error::Closed)
}

/// Options of `seed`.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Demo directory.
    pub demo_dir: PathBuf,
    /// How many certificates.
    pub count: u64,
    /// Admin URL.
    pub admin: String,
    /// Bearer token.
    pub token: String,
    /// Fraction revoked.
    pub revoke_fraction: f64,
    /// Reasons used for revocations, in turn.
    pub reasons: Vec<String>,
    /// Certificates per POST.
    pub batch: usize,
    /// Signing threads (0: all CPUs).
    pub threads: usize,
    /// Uploads in flight.
    pub uploads: usize,
    /// Subject key type.
    pub key: KeyType,
    /// Only these CAs (empty: all).
    pub cas: Vec<String>,
    /// Output file.
    pub out: PathBuf,
    /// Whether to show progress.
    pub progress: bool,
}

/// What `seed` did.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// Certificates registered.
    pub registered: u64,
    /// Of which revoked.
    pub revoked: u64,
    /// Seconds.
    pub seconds: f64,
    /// The population file.
    pub population: String,
}

/// Runs `seed`.
pub fn run(opts: &SeedOptions) -> Result<SeedReport, Error> {
    if opts.batch == 0 || opts.uploads == 0 {
        return Err(Error::Option(
            "--batch and --uploads must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.revoke_fraction) {
        return Err(Error::Option(
            "--revoke-fraction must be within 0..1".into(),
        ));
    }
    for r in &opts.reasons {
        vigie::model::RevocationReason::from_name(r).map_err(|e| Error::Option(e.to_string()))?;
    }
    let factory = Arc::new(CertFactory::from_demo(&opts.demo_dir, &opts.cas, opts.key)?);
    let ca_ids = factory.ca_ids();
    let started = Instant::now();
    let batches = opts.count.div_ceil(opts.batch as u64);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Option(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<Issued>, Error>>(opts.uploads * 2);
    // Producer: sign batches in parallel, in the background.
    {
        let factory = Arc::clone(&factory);
        let count = opts.count;
        let batch = opts.batch as u64;
        std::thread::spawn(move || {
            pool.install(|| {
                use rayon::prelude::*;
                (0..batches).into_par_iter().for_each_with(tx, |tx, b| {
                    let from = b * batch;
                    let to = (from + batch).min(count);
                    let made: Result<Vec<Issued>, Error> =
                        (from..to).map(|i| factory.issue(i as usize)).collect();
                    let _ = tx.blocking_send(made);
                });
            });
        });
    }
    let progress = if opts.progress {
        let pb = indicatif::ProgressBar::new(opts.count);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} certificates ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Option(e.to_string()))?;
    let appender = Arc::new(std::sync::Mutex::new(Appender::open(&opts.out)?));
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let result: Result<(), Error> = rt.block_on(async {
        let endpoint = Endpoint::parse(&opts.admin).await?;
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for worker in 0..opts.uploads {
            let rx = Arc::clone(&rx);
            let endpoint = endpoint.clone();
            let opts = opts.clone();
            let ca_ids = ca_ids.clone();
            let appender = Arc::clone(&appender);
            let counts = Arc::clone(&counts);
            let progress = progress.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = None;
                let mut buf = Vec::new();
                let mut rng = rand::rngs::SmallRng::seed_from_u64(worker as u64);
                let mut reason_turn = worker;
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(batch) = next else { break };
                    let batch = batch?;
                    let pems: Vec<&str> = batch.iter().map(|c| c.pem.as_str()).collect();
                    let body = certificates_body(&pems);
                    let r = post_json(
                        &mut conn,
                        &endpoint,
                        "/v1/certificates",
                        &opts.token,
                        "application/json",
                        &body,
                        &mut buf,
                    )
                    .await
                    .map_err(|e| {
                        Error::Option(format!(
                            "POST /v1/certificates ({} KiB): {e} — a server refusing a body over its limit may just close the connection: try a smaller --batch",
                            body.len() / 1024
                        ))
                    })?;
                    if !(200..300).contains(&r.status) {
                        return Err(Error::Refused {
                            what: "POST /v1/certificates",
                            status: r.status,
                            body: String::from_utf8_lossy(&r.body).into_owned(),
                        });
                    }
                    let mut revs = Vec::new();
                    let mut expected = Vec::with_capacity(batch.len());
                    for c in &batch {
                        if rng.random_bool(opts.revoke_fraction) && !opts.reasons.is_empty() {
                            let reason = &opts.reasons[reason_turn % opts.reasons.len()];
                            reason_turn += 1;
                            revs.push(Revocation {
                                ca: ca_ids[c.ca as usize].clone(),
                                serial: c.serial.to_hex(),
                                reason: reason.clone(),
                            });
                            let code = vigie::model::RevocationReason::from_name(reason)
                                .map(|r| r.code())
                                .ok()
                                .filter(|&c| c != 0);
                            expected.push(Expected::Revoked(code));
                        } else {
                            expected.push(Expected::Good);
                        }
                    }
                    if !revs.is_empty() {
                        let r = post_json(
                            &mut conn,
                            &endpoint,
                            "/v1/revocations",
                            &opts.token,
                            "application/json",
                            &revocations_body(&revs),
                            &mut buf,
                        )
                        .await?;
                        if !(200..300).contains(&r.status) {
                            return Err(Error::Refused {
                                what: "POST /v1/revocations",
                                status: r.status,
                                body: String::from_utf8_lossy(&r.body).into_owned(),
                            });
                        }
                    }
                    {
                        let mut a = appender
                            .lock()
                            .map_err(|_| Error::Option("population writer poisoned".into()))?;
                        for (c, e) in batch.iter().zip(&expected) {
                            a.push(&Line::new(&ca_ids[c.ca as usize], &c.serial, *e))?;
                        }
                    }
                    counts.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    counts.1.fetch_add(revs.len() as u64, Ordering::Relaxed);
                    progress.inc(batch.len() as u64);
                }
                Ok::<(), Error>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| Error::Option(e.to_string()))??;
        }
        Ok(())
    });
    progress.finish_and_clear();
    appender
        .lock()
        .map_err(|_| Error::Option("population writer poisoned".into()))?
        .flush()?;
    result?;
    Ok(SeedReport {
        registered: counts.0.load(Ordering::Relaxed),
        revoked: counts.1.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        population: opts.out.display().to_string(),
    })
}

/// Issues `count` certificates with `threads` threads (no upload): the issuing rate alone.
pub fn issue_only(factory: &CertFactory, count: u64, threads: usize) -> Result<f64, Error> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Option(e.to_string()))?;
    let started = Instant::now();
    pool.install(|| {
        use rayon::prelude::*;
        (0..count)
            .into_par_iter()
            .try_for_each(|i| factory.issue(i as usize).map(drop))
    })?;
    Ok(count as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_ingest_api() {
        let b =
            certificates_body(&["-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"]);
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert!(
            v["certificates"][0]
                .as_str()
                .is_some_and(|s| s.starts_with("-----BEGIN CERTIFICATE-----"))
        );
        let one = Revocation {
            ca: "aci-el-org".into(),
            serial: "1f".into(),
            reason: "keyCompromise".into(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&revocations_body(std::slice::from_ref(&one))).expect("json");
        assert_eq!(v["ca"], "aci-el-org");
        assert_eq!(v["serial"], "1f");
        assert_eq!(v["reason"], "keyCompromise");
        let v: serde_json::Value =
            serde_json::from_slice(&revocations_body(&[one.clone(), one])).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
    }
}
