//! The only place that signs: the seam. Callers hold a [`Signer`] and use three things of it —
//! sign a TBS ([`Signer::sign`]), the signature AlgorithmIdentifier to place beside it
//! ([`Signer::algorithm_der`]) and the key's SubjectPublicKeyInfo ([`Signer::public_key_der`]).
//! One file per kind of key behind it:
//!
//! - [`file`]: PEM/DER key files, signing through openssl;
//! - [`pkcs11`]: keys inside a PKCS#11 token (HSM, SoftHSM2), through `cryptoki`;
//! - [`uri`]: the RFC 7512 URIs that name such keys.
//!
//! A key is named by a [`KeyRef`] (a path, or a `pkcs11:` URI). Key and certificate are matched by
//! comparing SubjectPublicKeyInfo DER ([`Signer::bind_certificate`]), whatever the kind; that is
//! also where RSASSA-PSS is chosen, when the certificate's key is an id-RSASSA-PSS key (RFC 4055
//! §1.2). Nothing else in the crate calls a signing API.

pub mod file;
pub mod pkcs11;
pub mod uri;

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};

pub use self::file::FileSigner;
pub use self::pkcs11::{Pkcs11Settings, Pkcs11Signer};
pub use self::uri::Pkcs11Uri;

/// Why a signer could not be made or could not sign. PINs never appear in these messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file could not be read.
    #[error("cannot read key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a PEM or DER private key.
    #[error("{path} is not a private key in PEM or DER form: {source}")]
    Parse {
        /// The file.
        path: String,
        /// openssl's reason.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// A key type or curve without a signature algorithm here.
    #[error("unsupported key type: {0}")]
    Unsupported(String),
    /// openssl failed while signing.
    #[error("signing failed: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// A `pkcs11:` key reference that is not a valid RFC 7512 URI.
    #[error("{uri}: {source}")]
    Uri {
        /// The text given.
        uri: String,
        /// What is wrong.
        #[source]
        source: uri::Error,
    },
    /// A `pkcs11:` key while `[pkcs11]` is not configured.
    #[error("{0} is a PKCS#11 URI but there is no [pkcs11] table (module, pin_file)")]
    NoModule(String),
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {reason}")]
    Module {
        /// The module path.
        module: String,
        /// Why (a CKR_* name or the loader's message).
        reason: String,
    },
    /// The token refused the user PIN (the PIN itself is never shown).
    #[error(
        "PKCS#11 login to token {token:?} refused: {reason} (check [pkcs11] pin_file or VIGIE_PKCS11_PIN)"
    )]
    Login {
        /// The token label (or URI).
        token: String,
        /// The CKR_* name.
        reason: String,
    },
    /// The token could not be found or answered with an error.
    #[error("PKCS#11 token of {uri}: {reason}")]
    Token {
        /// The key URI.
        uri: String,
        /// What failed, with its CKR_* name.
        reason: String,
    },
    /// No private key object matches the URI.
    #[error("{0}: no private key object matches in the token")]
    KeyNotFound(String),
    /// The token cannot sign now (unreachable, busy, re-initialising): try again later.
    #[error("signing key unavailable: {0}")]
    Unavailable(String),
}

/// Where a key is: a file, or a PKCS#11 token (RFC 7512 URI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// A PEM or DER private key file.
    File(PathBuf),
    /// A key object in a token.
    Pkcs11(Pkcs11Uri),
}

impl KeyRef {
    /// Reads a `key`/`ocsp_key` value: a `pkcs11:` URI, or a path resolved against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<KeyRef, Error> {
        if Pkcs11Uri::is_uri(text) {
            return Pkcs11Uri::parse(text)
                .map(KeyRef::Pkcs11)
                .map_err(|source| Error::Uri {
                    uri: text.to_owned(),
                    source,
                });
        }
        let p = Path::new(text);
        Ok(KeyRef::File(if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }))
    }

    /// Whether the key is in a token.
    pub fn is_pkcs11(&self) -> bool {
        matches!(self, KeyRef::Pkcs11(_))
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::File(p) => write!(f, "{}", p.display()),
            KeyRef::Pkcs11(u) => write!(f, "{u}"),
        }
    }
}

/// Signature algorithm identifiers, DER-encoded AlgorithmIdentifier (RFC 5754 §3.2 for
/// sha256WithRSAEncryption with NULL parameters; RFC 5758 §3.2 for ECDSA, parameters absent;
/// RFC 4055 §3.1 for RSASSA-PSS).
pub mod alg {
    /// sha256WithRSAEncryption (1.2.840.113549.1.1.11), parameters NULL.
    pub const SHA256_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    /// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters.
    pub const ECDSA_WITH_SHA256: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    /// ecdsa-with-SHA384 (1.2.840.10045.4.3.3), no parameters.
    pub const ECDSA_WITH_SHA384: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
    ];
    /// id-RSASSA-PSS (1.2.840.113549.1.1.10) with RSASSA-PSS-params (RFC 4055 §3.1):
    /// hashAlgorithm sha256, maskGenAlgorithm mgf1SHA256, saltLength 32, trailerField 1
    /// (default, omitted). The hash AlgorithmIdentifiers carry NULL, as OpenSSL writes them.
    pub const RSASSA_PSS_SHA256: &[u8] = &[
        0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34,
        0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
    ];
}

/// The kind of key, for metrics and display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this modulus size in bits.
    Rsa(u32),
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::EcP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// The kinds of key behind the seam.
enum Key {
    File(FileSigner),
    Pkcs11(Pkcs11Signer),
}

/// A private key that signs: the one type callers use.
pub struct Signer {
    key: Key,
    /// RSASSA-PSS rather than PKCS#1 v1.5 (the certificate's key is an id-RSASSA-PSS key).
    pss: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Signer");
        d.field("kind", &self.kind()).field("pss", &self.pss);
        if let Key::Pkcs11(p) = &self.key {
            d.field("uri", p.uri());
        }
        d.finish_non_exhaustive()
    }
}

/// id-RSASSA-PSS (RFC 4055 §3.1).
const ID_RSASSA_PSS: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// rsaEncryption (RFC 3279 §2.3.1).
const RSA_ENCRYPTION: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

impl Signer {
    /// Opens the key `key` names; `pkcs11` is the `[pkcs11]` table, needed for URIs.
    pub fn open(key: &KeyRef, pkcs11: Option<&Pkcs11Settings>) -> Result<Signer, Error> {
        let key = match key {
            KeyRef::File(path) => Key::File(FileSigner::from_file(path)?),
            KeyRef::Pkcs11(uri) => {
                let settings = pkcs11.ok_or_else(|| Error::NoModule(uri.to_string()))?;
                Key::Pkcs11(Pkcs11Signer::open(settings, uri.clone())?)
            }
        };
        Ok(Signer { key, pss: false })
    }

    /// Loads a private key from a PEM (PKCS#8 or traditional) or DER file.
    pub fn from_file(path: &Path) -> Result<Signer, Error> {
        Ok(Signer {
            key: Key::File(FileSigner::from_file(path)?),
            pss: false,
        })
    }

    /// Wraps an openssl key held in memory (tests, benchmarks, the demo generator).
    pub fn new(key: PKey<Private>) -> Result<Signer, Error> {
        Ok(Signer {
            key: Key::File(FileSigner::new(key)?),
            pss: false,
        })
    }

    /// Checks that this key is the one of the certificate `cert_der` (SubjectPublicKeyInfo DER
    /// compared, so it works for every kind of key), and signs with RSASSA-PSS from now on when
    /// the certificate's key is an id-RSASSA-PSS key (RFC 4055 §1.2: such a key is only used
    /// for PSS). Returns whether it matches.
    pub fn bind_certificate(&mut self, cert_der: &[u8]) -> bool {
        use der::Decode;
        let Ok(cert) = x509_cert::Certificate::from_der(cert_der) else {
            return false;
        };
        self.bind_spki(&cert.tbs_certificate.subject_public_key_info)
    }

    /// [`Signer::bind_certificate`] on the certificate's SubjectPublicKeyInfo.
    fn bind_spki(&mut self, spki: &spki::SubjectPublicKeyInfoOwned) -> bool {
        use der::{Decode, Encode};
        let Ok(cert_spki) = spki.to_der() else {
            return false;
        };
        if cert_spki == self.public_key_der() {
            return true;
        }
        // RFC 4055 §1.2: the same RSAPublicKey under id-RSASSA-PSS.
        if spki.algorithm.oid == ID_RSASSA_PSS {
            let Ok(ours) = spki::SubjectPublicKeyInfoOwned::from_der(self.public_key_der()) else {
                return false;
            };
            if ours.algorithm.oid == RSA_ENCRYPTION
                && ours.subject_public_key.raw_bytes() == spki.subject_public_key.raw_bytes()
            {
                self.pss = true;
                return true;
            }
        }
        false
    }

    /// Signs `tbs`, returning the signature value (PKCS#1 v1.5 or PSS bytes, or a DER
    /// ECDSA-Sig-Value). [`Error::Unavailable`] means the key's token cannot sign now.
    pub fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.key {
            Key::File(f) => f.sign(tbs, self.pss),
            Key::Pkcs11(p) => p.sign(tbs, self.pss),
        }
    }

    /// The signature AlgorithmIdentifier, DER-encoded, to place beside the signature.
    pub fn algorithm_der(&self) -> &'static [u8] {
        match self.kind() {
            KeyKind::Rsa(_) if self.pss => alg::RSASSA_PSS_SHA256,
            KeyKind::Rsa(_) => alg::SHA256_WITH_RSA,
            KeyKind::EcP256 => alg::ECDSA_WITH_SHA256,
            KeyKind::EcP384 => alg::ECDSA_WITH_SHA384,
        }
    }

    /// The SubjectPublicKeyInfo of the key, DER-encoded.
    pub fn public_key_der(&self) -> &[u8] {
        match &self.key {
            Key::File(f) => f.public_key_der(),
            Key::Pkcs11(p) => p.public_key_der(),
        }
    }

    /// Key type and size.
    pub fn kind(&self) -> KeyKind {
        match &self.key {
            Key::File(f) => f.kind(),
            Key::Pkcs11(p) => p.kind(),
        }
    }

    /// Whether the key is in a PKCS#11 token.
    pub fn is_pkcs11(&self) -> bool {
        matches!(self.key, Key::Pkcs11(_))
    }

    /// Whether signatures are RSASSA-PSS.
    pub fn is_pss(&self) -> bool {
        self.pss
    }

    /// Signs a certificate: `tbs_der` is a TBSCertificate whose `signature` field is replaced by
    /// this signer's algorithm (RFC 5280 §4.1.2.3: it must equal signatureAlgorithm), and the
    /// whole Certificate (§4.1) is returned, DER. Lets a CA key in a token issue certificates.
    pub fn sign_certificate(&self, tbs_der: &[u8]) -> Result<Vec<u8>, Error> {
        use der::{Decode, Encode};
        let bad = |e: der::Error| Error::Unsupported(format!("TBSCertificate: {e}"));
        let mut tbs = x509_cert::TbsCertificate::from_der(tbs_der).map_err(bad)?;
        let algorithm =
            spki::AlgorithmIdentifierOwned::from_der(self.algorithm_der()).map_err(bad)?;
        tbs.signature = algorithm.clone();
        let tbs_der = tbs.to_der().map_err(bad)?;
        let signature = self.sign(&tbs_der)?;
        let cert = x509_cert::Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: der::asn1::BitString::from_bytes(&signature).map_err(bad)?,
        };
        cert.to_der().map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    fn verify(signer: &Signer, tbs: &[u8], sig: &[u8]) -> bool {
        let pubkey = PKey::public_key_from_der(signer.public_key_der()).expect("own public key");
        let digest = match signer.kind() {
            KeyKind::EcP384 => MessageDigest::sha384(),
            _ => MessageDigest::sha256(),
        };
        let mut v = openssl::sign::Verifier::new(digest, &pubkey).expect("verifier");
        v.update(tbs).expect("update");
        // A DER ECDSA-Sig-Value or PKCS#1 bytes, checked by openssl's EVP verifier.
        v.verify(sig).unwrap_or(false)
    }

    #[test]
    fn rsa_and_ecdsa_signatures_verify() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let ec = PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey");
        let group384 = EcGroup::from_curve_name(Nid::SECP384R1).expect("group");
        let ec384 = PKey::from_ec_key(EcKey::generate(&group384).expect("ec")).expect("pkey");
        for key in [rsa, ec, ec384] {
            let s = Signer::new(key).expect("supported");
            let sig = s.sign(b"to be signed").expect("signs");
            assert!(verify(&s, b"to be signed", &sig));
            assert!(!verify(&s, b"something else", &sig));
        }
    }

    #[test]
    fn an_rsassa_pss_certificate_key_gets_pss_signatures() {
        use der::{Decode, Encode};
        let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let mut signer = Signer::new(key.clone()).expect("supported");
        // The same RSAPublicKey under id-RSASSA-PSS, parameters absent (RFC 4055 §1.2).
        let mut spki =
            spki::SubjectPublicKeyInfoOwned::from_der(signer.public_key_der()).expect("spki");
        spki.algorithm = spki::AlgorithmIdentifierOwned {
            oid: ID_RSASSA_PSS,
            parameters: None,
        };
        assert!(signer.bind_spki(&spki));
        assert!(signer.is_pss());
        assert_eq!(signer.algorithm_der(), alg::RSASSA_PSS_SHA256);
        let sig = signer.sign(b"tbs").expect("signs");
        let public = PKey::public_key_from_der(&key.public_key_to_der().expect("der")).expect("pk");
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &public).expect("v");
        v.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
            .expect("pss");
        v.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(32))
            .expect("salt");
        v.set_rsa_mgf1_md(MessageDigest::sha256()).expect("mgf1");
        v.update(b"tbs").expect("update");
        assert!(v.verify(&sig).expect("verifies"));
        // Another key does not bind, whatever the algorithm.
        let other = Signer::new(PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey"))
            .expect("supported");
        let mut plain = Signer::new(key).expect("supported");
        let other_spki =
            spki::SubjectPublicKeyInfoOwned::from_der(other.public_key_der()).expect("spki");
        assert!(!plain.bind_spki(&other_spki));
        let own = spki::SubjectPublicKeyInfoOwned::from_der(plain.public_key_der()).expect("spki");
        assert!(plain.bind_spki(&own) && !plain.is_pss());
        assert_eq!(own.to_der().expect("der"), plain.public_key_der());
    }

    #[test]
    fn algorithm_identifiers_parse() {
        use der::Decode;
        for der_alg in [
            alg::SHA256_WITH_RSA,
            alg::ECDSA_WITH_SHA256,
            alg::ECDSA_WITH_SHA384,
            alg::RSASSA_PSS_SHA256,
        ] {
            spki::AlgorithmIdentifierOwned::from_der(der_alg).expect("valid DER");
        }
    }
}
