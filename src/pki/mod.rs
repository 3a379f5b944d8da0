//! The CAs vigie serves: their certificates, keys and signers, checked when the service loads
//! them (at start and at each reload), and the table that maps an OCSP CertID's
//! issuerNameHash/issuerKeyHash to a CA (RFC 6960 §4.1.1).
//!
//! A CA that fails to load (unreadable file, expired or not-yet-valid signer, key that does not
//! match, expired CA certificate) is left out and reported ([`CaRegistry::problems`]); the
//! others serve. A CA may name the signer that takes over at a set instant
//! (`next_ocsp_cert`, `next_ocsp_key`, `rollover_at`): [`Ca::signer_at`] says which signs when.
//!
//! [`demo`] creates a self-contained test PKI shaped like IGC-Santé.

pub mod ambiguity;
pub mod demo;
pub mod demo_hsm;

use std::path::Path;
use std::sync::Arc;

use der::Decode;
use openssl::hash::{MessageDigest, hash};
use openssl::x509::{X509, X509VerifyResult};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};

use crate::config::CaConfig;
use crate::model::{CaId, NoncePolicy, UnixTime, UnknownSerialPolicy};
use crate::signer::{Pkcs11Settings, Signer};

/// Why a CA could not be loaded. Carries the index of its `[[ca]]` table and the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("[[ca]] #{}: {key}: {message}", index + 1)]
pub struct Error {
    /// Index of the `[[ca]]` table.
    pub index: usize,
    /// The configuration key at fault (`cert`, `key`, `ocsp_cert`, `ocsp_key`).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Error {
    /// (table index, key, message), for the configuration's error.
    pub fn parts(&self) -> (usize, &'static str, String) {
        (self.index, self.key, self.message.clone())
    }
}

/// A CertID hash algorithm (RFC 6960 §4.1.1; SHA-2 per RFC 6960 §4.3 and RFC 9919).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1, still what most clients send.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// All supported algorithms, in index order.
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// From the DER content octets of its OBJECT IDENTIFIER.
    pub fn from_oid(oid: &const_oid::ObjectIdentifier) -> Option<HashAlg> {
        use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
        match *oid {
            ID_SHA_1 => Some(HashAlg::Sha1),
            ID_SHA_256 => Some(HashAlg::Sha256),
            ID_SHA_384 => Some(HashAlg::Sha384),
            ID_SHA_512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Position in [`HashAlg::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The openssl digest.
    pub fn digest(self) -> MessageDigest {
        match self {
            HashAlg::Sha1 => MessageDigest::sha1(),
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        }
    }

    /// Output length in octets.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

/// A CA's issuerNameHash and issuerKeyHash under one algorithm.
#[derive(Clone, Debug)]
pub struct IssuerHashes {
    /// Hash of the DER of the CA's subject Name.
    pub name: Vec<u8>,
    /// Hash of the CA's subjectPublicKey BIT STRING value.
    pub key: Vec<u8>,
}

/// An OCSP signer: its key, its certificate, and what responses say about it.
#[derive(Debug)]
pub struct OcspSigner {
    /// Signs OCSP responses.
    pub signer: Signer,
    /// The signer certificate, DER, included in responses (RFC 6960 §4.2.2.2).
    pub cert_der: Vec<u8>,
    /// notBefore of the signer certificate.
    pub not_before: UnixTime,
    /// notAfter of the signer certificate: no response says nextUpdate past it.
    pub not_after: UnixTime,
    /// ResponderID byKey: SHA-1 of the signer's subjectPublicKey (RFC 6960 §4.2.1). Also what
    /// a stored answer records of its maker ([`crate::store::Maker`]).
    pub key_hash: Vec<u8>,
    /// Fingerprint of (this signer, the CA's OCSP policy): what in-memory answers record of
    /// their maker; a different value is a miss ([`Ca::maker_at`]).
    pub maker: u64,
}

/// The signer that takes over at `at` (`[[ca]] next_ocsp_cert`, `next_ocsp_key`, `rollover_at`).
#[derive(Debug)]
pub struct NextSigner {
    /// From this instant on, new answers are signed by `signer`.
    pub at: UnixTime,
    /// The next signer.
    pub signer: Arc<OcspSigner>,
}

/// One served CA, ready to answer.
#[derive(Debug)]
pub struct Ca {
    /// Position in the registry (changes with a reload: never kept outside the registry it
    /// came from, except as a cache key checked with [`Ca::maker_at`]).
    pub index: usize,
    /// Identifier.
    pub id: CaId,
    /// The CA certificate.
    pub cert: X509,
    /// Its DER.
    pub cert_der: Vec<u8>,
    /// DER of the subject Name (the issuer of what it signs).
    pub subject_der: Vec<u8>,
    /// One-line subject, for display.
    pub subject: String,
    /// SHA-1 of the CA's subjectPublicKey (its usual key identifier, RFC 5280 §4.2.1.2 (1)).
    pub key_sha1: Vec<u8>,
    /// subjectKeyIdentifier of the CA certificate when present, else `key_sha1`: the
    /// authorityKeyIdentifier of CRLs.
    pub key_identifier: Vec<u8>,
    /// Signs CRLs; `None` on a node that builds no CRL for this CA (no `key`).
    pub crl_signer: Option<Signer>,
    /// The OCSP signer (until `next_ocsp.at`, when there is a next one).
    pub ocsp: Arc<OcspSigner>,
    /// The signer that takes over at a set instant, if any.
    pub next_ocsp: Option<NextSigner>,
    /// CertID hashes, indexed by [`HashAlg::index`].
    pub hashes: [IssuerHashes; 4],
    /// Response validity, seconds.
    pub ocsp_validity: i64,
    /// Nonce policy.
    pub nonce: NoncePolicy,
    /// Never-registered serials policy.
    pub unknown_serial: UnknownSerialPolicy,
    /// Digest of the CA and its OCSP policy (id, CA key, `ocsp_validity`, `nonce`,
    /// `unknown_serial`): part of what a stored answer records of its maker.
    pub policy_digest: [u8; 16],
    /// Whether revocations of serials never registered are recorded (else refused).
    pub accept_unregistered_revocations: bool,
}

/// Why one CA is left out: it failed to load, and the others serve without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProblem {
    /// The CA.
    pub id: CaId,
    /// The configuration key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CA {}: {}: {}", self.id, self.key, self.message)
    }
}

/// Every served CA, and the configured CAs left out with why ([`CaRegistry::problems`]).
#[derive(Debug, Default)]
pub struct CaRegistry {
    cas: Vec<Arc<Ca>>,
    down: Vec<CaProblem>,
}

/// SHA-256 of `data` through OpenSSL's hasher. On hot paths (an ECDSA signature, the ETag of an
/// answer entering the cache) this replaces the one-shot `SHA256()` and `openssl::hash::hash`,
/// which in OpenSSL 3 fetch the algorithm again on every call (`EVP_Q_digest`, `EVP_MD_fetch`).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(data);
    h.finish()
}

/// Reads a PEM or DER certificate.
pub fn read_cert(path: &Path) -> Result<X509, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    X509::from_pem(&bytes)
        .or_else(|_| X509::from_der(&bytes))
        .map_err(|_| format!("{} is not a certificate in PEM or DER form", path.display()))
}

/// The value of the subjectPublicKey BIT STRING of a certificate (what CertID's issuerKeyHash and
/// ResponderID's byKey hash).
pub fn subject_public_key_bits(cert_der: &[u8]) -> Result<Vec<u8>, String> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    Ok(cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec())
}

fn x509_time(t: &openssl::asn1::Asn1TimeRef) -> UnixTime {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("the epoch is representable");
    let diff = epoch
        .diff(t)
        .map(|d| i64::from(d.days) * 86400 + i64::from(d.secs))
        .unwrap_or(0);
    UnixTime(diff)
}

/// notAfter of a certificate.
pub fn not_after(cert: &X509) -> UnixTime {
    x509_time(cert.not_after())
}

/// notBefore of a certificate.
pub fn not_before(cert: &X509) -> UnixTime {
    x509_time(cert.not_before())
}

/// One-line subject.
pub fn one_line_name(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads an OCSP signer (`cert_key`/`key_key` name its configuration keys) and checks it
/// against the CA: issued by it with id-kp-OCSPSigning, or the CA certificate itself when
/// `ocsp_signer = "ca"` says so; its key matches its certificate.
#[allow(clippy::too_many_arguments)]
fn load_ocsp_signer(
    ca_config: &CaConfig,
    ca_cert: &X509,
    ca_cert_der: &[u8],
    cert_path: &Path,
    key: &crate::signer::KeyRef,
    (cert_key, key_key): (&'static str, &'static str),
    pkcs11: Option<&Pkcs11Settings>,
    policy_digest: &[u8; 16],
    err: &dyn Fn(&'static str, String) -> Error,
) -> Result<OcspSigner, Error> {
    let c = ca_config;
    let ocsp_cert = read_cert(cert_path).map_err(|m| err(cert_key, m))?;
    let ocsp_cert_der = ocsp_cert
        .to_der()
        .map_err(|e| err(cert_key, e.to_string()))?;
    let self_signing = ocsp_cert_der == ca_cert_der;
    // The CA key answering OCSP itself is allowed (RFC 6960 §4.2.2.2), but it puts the CA
    // key on the responders: only when the configuration says so.
    if self_signing != c.ocsp_signer_is_ca {
        return Err(err(
            cert_key,
            if self_signing {
                format!(
                    "{} is the CA certificate itself: the CA key would sign OCSP responses. \
                     Configure a delegated OCSP signer, or say ocsp_signer = \"ca\" in this [[ca]]",
                    cert_path.display()
                )
            } else {
                format!(
                    "ocsp_signer = \"ca\" but {} is not the CA certificate {}",
                    cert_path.display(),
                    c.cert.display()
                )
            },
        ));
    }
    if !self_signing {
        if ca_cert.issued(&ocsp_cert) != X509VerifyResult::OK
            || !ca_cert
                .public_key()
                .and_then(|k| ocsp_cert.verify(&k))
                .unwrap_or(false)
        {
            return Err(err(
                cert_key,
                format!(
                    "{} was not issued by {}",
                    cert_path.display(),
                    c.cert.display()
                ),
            ));
        }
        let parsed_ocsp = x509_cert::Certificate::from_der(&ocsp_cert_der)
            .map_err(|e| err(cert_key, format!("certificate does not parse: {e}")))?;
        let has_eku = parsed_ocsp
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .ok()
            .flatten()
            .is_some_and(|(_, eku)| eku.0.contains(&const_oid::db::rfc5280::ID_KP_OCSP_SIGNING));
        if !has_eku {
            return Err(err(
                cert_key,
                format!(
                    "{} lacks extendedKeyUsage id-kp-OCSPSigning (RFC 6960 §4.2.2.2)",
                    cert_path.display()
                ),
            ));
        }
    }
    let mut signer = Signer::open(key, pkcs11).map_err(|e| err(key_key, e.to_string()))?;
    if !signer.bind_certificate(&ocsp_cert_der) {
        return Err(err(
            key_key,
            format!(
                "{key} does not match the public key of {} (SubjectPublicKeyInfo differs)",
                cert_path.display()
            ),
        ));
    }
    let ocsp_bits = subject_public_key_bits(&ocsp_cert_der).map_err(|m| err(cert_key, m))?;
    let key_hash = hash(MessageDigest::sha1(), &ocsp_bits)
        .map(|d| d.to_vec())
        .map_err(|e| err(cert_key, e.to_string()))?;
    Ok(OcspSigner {
        signer,
        not_before: not_before(&ocsp_cert),
        not_after: not_after(&ocsp_cert),
        maker: maker_fingerprint(policy_digest, &key_hash),
        key_hash,
        cert_der: ocsp_cert_der,
    })
}

/// What a CA's answers depend on besides their signer and the certificate's status: the CA
/// (id, key) and its OCSP policy. A change of any of them makes stored answers misses.
fn policy_digest(c: &CaConfig, ca_key_sha1: &[u8]) -> [u8; 16] {
    let mut input = Vec::with_capacity(64);
    input.extend_from_slice(b"vigie ocsp policy 1\0");
    input.extend_from_slice(c.id.as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(ca_key_sha1);
    input.extend_from_slice(&c.ocsp_validity.to_be_bytes());
    input.push(match c.nonce {
        NoncePolicy::Echo => 1,
        NoncePolicy::Ignore => 2,
    });
    input.push(match c.unknown_serial {
        UnknownSerialPolicy::Unknown => 1,
        UnknownSerialPolicy::Revoked => 2,
    });
    let digest = hash(MessageDigest::sha256(), &input).map_or([0; 32], |d| {
        let mut out = [0u8; 32];
        out.copy_from_slice(&d);
        out
    });
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn maker_fingerprint(policy_digest: &[u8; 16], signer_key_hash: &[u8]) -> u64 {
    let mut input = policy_digest.to_vec();
    input.extend_from_slice(signer_key_hash);
    let d = hash(MessageDigest::sha256(), &input)
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let mut out = [0u8; 8];
    out.copy_from_slice(d.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(out)
}

impl Ca {
    /// Loads and checks one CA at `now`: its certificate (a CA, not expired), its CRL key, its
    /// OCSP signer (valid now, unless the next one has taken over) and the next signer (valid
    /// at its `rollover_at`, taking over before the current one expires).
    fn load(
        index: usize,
        c: &CaConfig,
        pkcs11: Option<&Pkcs11Settings>,
        now: UnixTime,
    ) -> Result<Ca, Error> {
        let err = |key: &'static str, message: String| Error {
            index,
            key,
            message,
        };
        let cert = read_cert(&c.cert).map_err(|m| err("cert", m))?;
        let cert_der = cert.to_der().map_err(|e| err("cert", e.to_string()))?;
        let parsed = x509_cert::Certificate::from_der(&cert_der)
            .map_err(|e| err("cert", format!("certificate does not parse: {e}")))?;
        let is_ca = parsed
            .tbs_certificate
            .get::<BasicConstraints>()
            .ok()
            .flatten()
            .is_some_and(|(_, bc)| bc.ca);
        if !is_ca {
            return Err(err(
                "cert",
                format!(
                    "{} is not a CA certificate (basicConstraints cA is not TRUE)",
                    c.cert.display()
                ),
            ));
        }
        let cert_not_after = not_after(&cert);
        if cert_not_after <= now {
            return Err(err(
                "cert",
                format!(
                    "the CA certificate {} expired on {cert_not_after}",
                    c.cert.display()
                ),
            ));
        }
        let crl_signer = match &c.key {
            None => None,
            Some(key) => {
                let mut signer =
                    Signer::open(key, pkcs11).map_err(|e| err("key", e.to_string()))?;
                if !signer.bind_certificate(&cert_der) {
                    return Err(err(
                        "key",
                        format!(
                            "{key} does not match the public key of {} (SubjectPublicKeyInfo differs)",
                            c.cert.display()
                        ),
                    ));
                }
                Some(signer)
            }
        };

        let subject_der = cert
            .subject_name()
            .to_der()
            .map_err(|e| err("cert", e.to_string()))?;
        let key_bits = subject_public_key_bits(&cert_der).map_err(|m| err("cert", m))?;
        let hashes = HashAlg::ALL.map(|alg| IssuerHashes {
            name: hash(alg.digest(), &subject_der)
                .map(|d| d.to_vec())
                .unwrap_or_default(),
            key: hash(alg.digest(), &key_bits)
                .map(|d| d.to_vec())
                .unwrap_or_default(),
        });
        let key_sha1 = hashes[HashAlg::Sha1.index()].key.clone();
        let key_identifier = cert
            .subject_key_id()
            .map(|k| k.as_slice().to_vec())
            .unwrap_or_else(|| key_sha1.clone());
        let policy_digest = policy_digest(c, &key_sha1);

        let ocsp = load_ocsp_signer(
            c,
            &cert,
            &cert_der,
            &c.ocsp_cert,
            &c.ocsp_key,
            ("ocsp_cert", "ocsp_key"),
            pkcs11,
            &policy_digest,
            &err,
        )?;
        let next_ocsp = match &c.next_ocsp {
            None => None,
            Some(n) => {
                let next = load_ocsp_signer(
                    c,
                    &cert,
                    &cert_der,
                    &n.cert,
                    &n.key,
                    ("next_ocsp_cert", "next_ocsp_key"),
                    pkcs11,
                    &policy_digest,
                    &err,
                )?;
                if next.not_before > n.rollover_at {
                    return Err(err(
                        "rollover_at",
                        format!(
                            "{} is not valid before {}, after rollover_at {}",
                            n.cert.display(),
                            next.not_before,
                            n.rollover_at
                        ),
                    ));
                }
                if next.not_after <= n.rollover_at.max(now) {
                    return Err(err(
                        "next_ocsp_cert",
                        format!("{} expired on {}", n.cert.display(), next.not_after),
                    ));
                }
                Some(NextSigner {
                    at: n.rollover_at,
                    signer: Arc::new(next),
                })
            }
        };
        // Once the next signer has taken over, the first one no longer matters.
        let rolled = next_ocsp.as_ref().is_some_and(|n| now >= n.at);
        if !rolled {
            if ocsp.not_after <= now {
                return Err(err(
                    "ocsp_cert",
                    format!("{} expired on {}", c.ocsp_cert.display(), ocsp.not_after),
                ));
            }
            if ocsp.not_before > now {
                return Err(err(
                    "ocsp_cert",
                    format!(
                        "{} is not valid before {}",
                        c.ocsp_cert.display(),
                        ocsp.not_before
                    ),
                ));
            }
            if let Some(n) = &next_ocsp
                && ocsp.not_after < n.at
            {
                return Err(err(
                    "rollover_at",
                    format!(
                        "{} expires on {}, before rollover_at {}: answers would have no signer in between",
                        c.ocsp_cert.display(),
                        ocsp.not_after,
                        n.at
                    ),
                ));
            }
        }
        Ok(Ca {
            index,
            id: c.id.clone(),
            subject: one_line_name(cert.subject_name()),
            cert,
            cert_der,
            subject_der,
            key_sha1,
            key_identifier,
            crl_signer,
            ocsp: Arc::new(ocsp),
            next_ocsp,
            hashes,
            ocsp_validity: c.ocsp_validity,
            nonce: c.nonce,
            unknown_serial: c.unknown_serial,
            policy_digest,
            accept_unregistered_revocations: c.accept_unregistered_revocations,
        })
    }

    /// The OCSP signer of answers made at `now`: the next one from its `rollover_at` on.
    pub fn signer_at(&self, now: UnixTime) -> &Arc<OcspSigner> {
        match &self.next_ocsp {
            Some(n) if now >= n.at => &n.signer,
            _ => &self.ocsp,
        }
    }

    /// Fingerprint of who makes this CA's answers at `now` (signer and policy): an in-memory
    /// answer recording another is a miss.
    pub fn maker_at(&self, now: UnixTime) -> u64 {
        self.signer_at(now).maker
    }

    /// The instant the signer changes, when one is set and still ahead of `now`.
    pub fn rollover_after(&self, now: UnixTime) -> Option<UnixTime> {
        self.next_ocsp.as_ref().map(|n| n.at).filter(|at| *at > now)
    }

    /// Whether this CA's hashes under `alg` are these.
    pub fn matches(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> bool {
        let h = &self.hashes[alg.index()];
        h.key == key_hash && h.name == name_hash
    }
}

impl CaRegistry {
    /// Loads and checks every CA at `now`. A CA that fails is left out and reported in
    /// [`CaRegistry::problems`]; the others serve.
    pub fn load(cas: &[CaConfig], pkcs11: Option<&Pkcs11Settings>, now: UnixTime) -> CaRegistry {
        let mut loaded: Vec<Arc<Ca>> = Vec::with_capacity(cas.len());
        let mut down = Vec::new();
        for (i, c) in cas.iter().enumerate() {
            let result = Ca::load(loaded.len(), c, pkcs11, now).and_then(|ca| {
                match loaded.iter().find(|o| o.cert_der == ca.cert_der) {
                    Some(twin) => Err(Error {
                        index: i,
                        key: "cert",
                        message: format!("same certificate as CA {:?}", twin.id.as_str()),
                    }),
                    None => Ok(ca),
                }
            });
            match result {
                Ok(ca) => loaded.push(Arc::new(ca)),
                Err(e) => {
                    tracing::error!(ca = %c.id, key = e.key, error = %e.message, "CA left out: it does not load");
                    down.push(CaProblem {
                        id: c.id.clone(),
                        key: e.key,
                        message: e.message,
                    });
                }
            }
        }
        CaRegistry { cas: loaded, down }
    }

    /// Loads the CAs of a validated configuration now (the service, and the commands that
    /// need keys or certificates, do this: the configuration only names files).
    pub fn from_config(config: &crate::config::Config) -> CaRegistry {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        CaRegistry::load(&config.cas, config.pkcs11.as_ref(), now)
    }

    /// The configured CAs that did not load, with why.
    pub fn problems(&self) -> &[CaProblem] {
        &self.down
    }

    /// Why the CA with this id did not load, if it is configured and did not.
    pub fn problem(&self, id: &str) -> Option<&CaProblem> {
        self.down.iter().find(|p| p.id.as_str() == id)
    }

    /// Refuses a registry where two CAs have the same issuer name hash and key hash
    /// ([`ambiguity`]): the whole configuration is refused, at start and at reload.
    pub fn refuse_ambiguous(&self) -> Result<(), Error> {
        ambiguity::refuse_ambiguous(&self.cas)
    }

    /// The CA a CertID designates (RFC 6960 §4.1.1): both hashes must match.
    pub fn find(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> Option<&Arc<Ca>> {
        self.cas
            .iter()
            .find(|ca| ca.matches(alg, name_hash, key_hash))
    }

    /// The CA with this id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<Ca>> {
        self.cas.iter().find(|ca| ca.id.as_str() == id)
    }

    /// The CA at this position.
    pub fn get(&self, index: usize) -> Option<&Arc<Ca>> {
        self.cas.get(index)
    }

    /// All CAs, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Ca>> {
        self.cas.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }
}
