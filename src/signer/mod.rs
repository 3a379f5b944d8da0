//! The only place that signs. A [`Signer`] holds a private key and signs TBS bytes (an OCSP
//! ResponseData or a CRL TBSCertList) with the signature algorithm the key dictates.
//!
//! Today keys come from PEM files through openssl; an HSM (PKCS#11) signer would implement the
//! same three things: [`Signer::sign`], [`Signer::algorithm_der`] and [`Signer::public_key_der`].
//! Nothing else in the crate calls openssl's signing API.

use std::path::Path;

use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};

/// Why a signer could not be made or could not sign.
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
}

/// Signature algorithm identifiers, DER-encoded AlgorithmIdentifier (RFC 5754 §3.2 for
/// sha256WithRSAEncryption with NULL parameters; RFC 5758 §3.2 for ECDSA, parameters absent).
mod alg {
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

/// A private key that signs.
pub struct Signer {
    key: PKey<Private>,
    /// The same key when it is an EC key: signed through `ECDSA_do_sign` over a digest computed
    /// apart, which skips OpenSSL 3's per-call `EVP_DigestSignInit` (algorithm fetch and context
    /// set-up, a fifth of a P-256 signature's cost; see `cargo bench --bench ocsp -- sign/`).
    ec: Option<EcKey<Private>>,
    kind: KeyKind,
    digest: MessageDigest,
    algorithm: &'static [u8],
    public_key_der: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a private key from a PEM (PKCS#8 or traditional) or DER file.
    pub fn from_file(path: &Path) -> Result<Signer, Error> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        let key = PKey::private_key_from_pem(&bytes)
            .or_else(|_| PKey::private_key_from_der(&bytes))
            .map_err(|source| Error::Parse {
                path: shown,
                source,
            })?;
        Signer::new(key)
    }

    /// Wraps a key, choosing the signature algorithm from its type.
    pub fn new(key: PKey<Private>) -> Result<Signer, Error> {
        let (kind, digest, algorithm) = match key.id() {
            Id::RSA => (
                KeyKind::Rsa(key.bits()),
                MessageDigest::sha256(),
                alg::SHA256_WITH_RSA,
            ),
            Id::EC => {
                let ec = key.ec_key()?;
                match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => (
                        KeyKind::EcP256,
                        MessageDigest::sha256(),
                        alg::ECDSA_WITH_SHA256,
                    ),
                    Some(Nid::SECP384R1) => (
                        KeyKind::EcP384,
                        MessageDigest::sha384(),
                        alg::ECDSA_WITH_SHA384,
                    ),
                    other => return Err(Error::Unsupported(format!("EC curve {other:?}"))),
                }
            }
            other => return Err(Error::Unsupported(format!("{other:?}"))),
        };
        let public_key_der = key.public_key_to_der()?;
        let ec = match kind {
            KeyKind::EcP256 | KeyKind::EcP384 => Some(key.ec_key()?),
            KeyKind::Rsa(_) => None,
        };
        Ok(Signer {
            key,
            ec,
            kind,
            digest,
            algorithm,
            public_key_der,
        })
    }

    /// Signs `tbs`, returning the signature value (PKCS#1 v1.5 bytes, or a DER ECDSA-Sig-Value).
    pub fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, Error> {
        match (&self.ec, self.kind) {
            (Some(ec), KeyKind::EcP256) => {
                return Ok(EcdsaSig::sign(&openssl::sha::sha256(tbs), ec)?.to_der()?);
            }
            (Some(ec), KeyKind::EcP384) => {
                return Ok(EcdsaSig::sign(&openssl::sha::sha384(tbs), ec)?.to_der()?);
            }
            _ => {}
        }
        let mut signer = openssl::sign::Signer::new(self.digest, &self.key)?;
        signer.update(tbs)?;
        Ok(signer.sign_to_vec()?)
    }

    /// The signature AlgorithmIdentifier, DER-encoded, to place beside the signature.
    pub fn algorithm_der(&self) -> &'static [u8] {
        self.algorithm
    }

    /// The SubjectPublicKeyInfo of the key, DER-encoded.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// Key type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key, for comparing with a certificate's public key.
    pub fn public_key_matches(&self, cert: &openssl::x509::X509Ref) -> bool {
        cert.public_key()
            .map(|pk| self.key.public_eq(&pk))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::rsa::Rsa;

    fn verify(signer: &Signer, tbs: &[u8], sig: &[u8]) -> bool {
        let pubkey = PKey::public_key_from_der(signer.public_key_der()).expect("own public key");
        let mut v = openssl::sign::Verifier::new(signer.digest, &pubkey).expect("verifier");
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
    fn algorithm_identifiers_parse() {
        use der::Decode;
        for der_alg in [
            alg::SHA256_WITH_RSA,
            alg::ECDSA_WITH_SHA256,
            alg::ECDSA_WITH_SHA384,
        ] {
            spki::AlgorithmIdentifierOwned::from_der(der_alg).expect("valid DER");
        }
    }
}
