//! The CAs vigie serves: their certificates, keys and signers, checked at start-up, and the
//! table that maps an OCSP CertID's issuerNameHash/issuerKeyHash to a CA (RFC 6960 §4.1.1).
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

/// One served CA, ready to answer.
#[derive(Debug)]
pub struct Ca {
    /// Position in the registry.
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
    /// Signs OCSP responses.
    pub ocsp_signer: Signer,
    /// The OCSP signer certificate, DER, included in responses.
    pub ocsp_cert_der: Vec<u8>,
    /// notAfter of the OCSP signer certificate: no response says nextUpdate past it.
    pub ocsp_cert_not_after: UnixTime,
    /// ResponderID byKey: SHA-1 of the OCSP signer's subjectPublicKey (RFC 6960 §4.2.1).
    pub responder_key_hash: Vec<u8>,
    /// CertID hashes, indexed by [`HashAlg::index`].
    pub hashes: [IssuerHashes; 4],
    /// Response validity, seconds.
    pub ocsp_validity: i64,
    /// Nonce policy.
    pub nonce: NoncePolicy,
    /// Never-registered serials policy.
    pub unknown_serial: UnknownSerialPolicy,
    /// Whether revocations of serials never registered are recorded (else refused).
    pub accept_unregistered_revocations: bool,
}

/// Every served CA.
#[derive(Debug, Default)]
pub struct CaRegistry {
    cas: Vec<Arc<Ca>>,
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

impl Ca {
    fn load(index: usize, c: &CaConfig, pkcs11: Option<&Pkcs11Settings>) -> Result<Ca, Error> {
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

        let ocsp_cert = read_cert(&c.ocsp_cert).map_err(|m| err("ocsp_cert", m))?;
        let ocsp_cert_der = ocsp_cert
            .to_der()
            .map_err(|e| err("ocsp_cert", e.to_string()))?;
        let self_signing = ocsp_cert_der == cert_der;
        // The CA key answering OCSP itself is allowed (RFC 6960 §4.2.2.2), but it puts the CA
        // key on the responders: only when the configuration says so.
        if self_signing != c.ocsp_signer_is_ca {
            return Err(err(
                "ocsp_cert",
                if self_signing {
                    format!(
                        "{} is the CA certificate itself: the CA key would sign OCSP responses. \
                         Configure a delegated OCSP signer, or say ocsp_signer = \"ca\" in this [[ca]]",
                        c.ocsp_cert.display()
                    )
                } else {
                    format!(
                        "ocsp_signer = \"ca\" but {} is not the CA certificate {}",
                        c.ocsp_cert.display(),
                        c.cert.display()
                    )
                },
            ));
        }
        if !self_signing {
            if cert.issued(&ocsp_cert) != X509VerifyResult::OK
                || !cert
                    .public_key()
                    .and_then(|k| ocsp_cert.verify(&k))
                    .unwrap_or(false)
            {
                return Err(err(
                    "ocsp_cert",
                    format!(
                        "{} was not issued by {}",
                        c.ocsp_cert.display(),
                        c.cert.display()
                    ),
                ));
            }
            let parsed_ocsp = x509_cert::Certificate::from_der(&ocsp_cert_der)
                .map_err(|e| err("ocsp_cert", format!("certificate does not parse: {e}")))?;
            let has_eku = parsed_ocsp
                .tbs_certificate
                .get::<ExtendedKeyUsage>()
                .ok()
                .flatten()
                .is_some_and(|(_, eku)| {
                    eku.0.contains(&const_oid::db::rfc5280::ID_KP_OCSP_SIGNING)
                });
            if !has_eku {
                return Err(err(
                    "ocsp_cert",
                    format!(
                        "{} lacks extendedKeyUsage id-kp-OCSPSigning (RFC 6960 §4.2.2.2)",
                        c.ocsp_cert.display()
                    ),
                ));
            }
        }
        let mut ocsp_signer =
            Signer::open(&c.ocsp_key, pkcs11).map_err(|e| err("ocsp_key", e.to_string()))?;
        if !ocsp_signer.bind_certificate(&ocsp_cert_der) {
            return Err(err(
                "ocsp_key",
                format!(
                    "{} does not match the public key of {} (SubjectPublicKeyInfo differs)",
                    c.ocsp_key,
                    c.ocsp_cert.display()
                ),
            ));
        }
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let ocsp_cert_not_after = not_after(&ocsp_cert);
        if ocsp_cert_not_after <= now {
            return Err(err(
                "ocsp_cert",
                format!("{} expired on {ocsp_cert_not_after}", c.ocsp_cert.display()),
            ));
        }

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
        let ocsp_bits = subject_public_key_bits(&ocsp_cert_der).map_err(|m| err("ocsp_cert", m))?;
        let responder_key_hash = hash(MessageDigest::sha1(), &ocsp_bits)
            .map(|d| d.to_vec())
            .map_err(|e| err("ocsp_cert", e.to_string()))?;
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
            ocsp_signer,
            ocsp_cert_der,
            ocsp_cert_not_after,
            responder_key_hash,
            hashes,
            ocsp_validity: c.ocsp_validity,
            nonce: c.nonce,
            unknown_serial: c.unknown_serial,
            accept_unregistered_revocations: c.accept_unregistered_revocations,
        })
    }

    /// Whether this CA's hashes under `alg` are these.
    pub fn matches(&self, alg: HashAlg, name_hash: &[u8], key_hash: &[u8]) -> bool {
        let h = &self.hashes[alg.index()];
        h.key == key_hash && h.name == name_hash
    }
}

impl CaRegistry {
    /// Loads and checks every CA.
    pub fn load(cas: &[CaConfig], pkcs11: Option<&Pkcs11Settings>) -> Result<CaRegistry, Error> {
        let mut loaded: Vec<Arc<Ca>> = Vec::with_capacity(cas.len());
        for (i, c) in cas.iter().enumerate() {
            let ca = Ca::load(i, c, pkcs11)?;
            if let Some(twin) = loaded.iter().find(|o| o.cert_der == ca.cert_der) {
                return Err(Error {
                    index: i,
                    key: "cert",
                    message: format!("same certificate as CA {:?}", twin.id.as_str()),
                });
            }
            loaded.push(Arc::new(ca));
        }
        ambiguity::refuse_ambiguous(&loaded)?;
        Ok(CaRegistry { cas: loaded })
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
