//! Keys read from PEM (PKCS#8 or traditional) or DER files, signing through openssl.
//!
//! The seam ([`super::Signer`]) decides nothing about the key: this file turns a `PKey` into
//! signatures and reports its SubjectPublicKeyInfo; the algorithm identifiers live in
//! [`super::alg`].

use std::path::Path;

use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;

use super::{Error, KeyKind};

/// A private key held in this process's memory.
pub struct FileSigner {
    key: PKey<Private>,
    /// The same key when it is an EC key: signed through `ECDSA_do_sign` over a digest computed
    /// apart, which skips OpenSSL 3's per-call `EVP_DigestSignInit` (algorithm fetch and context
    /// set-up, a fifth of a P-256 signature's cost; see `cargo bench --bench ocsp -- sign/`).
    ec: Option<EcKey<Private>>,
    kind: KeyKind,
    digest: MessageDigest,
    public_key_der: Vec<u8>,
}

impl FileSigner {
    /// Loads a private key from a PEM (PKCS#8 or traditional) or DER file.
    pub fn from_file(path: &Path) -> Result<FileSigner, Error> {
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
        FileSigner::new(key)
    }

    /// Wraps a key, choosing the digest from its type.
    pub fn new(key: PKey<Private>) -> Result<FileSigner, Error> {
        let (kind, digest) = match key.id() {
            Id::RSA => (KeyKind::Rsa(key.bits()), MessageDigest::sha256()),
            Id::EC => {
                let ec = key.ec_key()?;
                match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => (KeyKind::EcP256, MessageDigest::sha256()),
                    Some(Nid::SECP384R1) => (KeyKind::EcP384, MessageDigest::sha384()),
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
        Ok(FileSigner {
            key,
            ec,
            kind,
            digest,
            public_key_der,
        })
    }

    /// Signs `tbs`: PKCS#1 v1.5 or RSASSA-PSS (RFC 8017 §8.1, SHA-256, MGF1-SHA-256, salt 32)
    /// bytes, or a DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
    pub fn sign(&self, tbs: &[u8], pss: bool) -> Result<Vec<u8>, Error> {
        match (&self.ec, self.kind) {
            // The digest through a hasher, not OpenSSL 3's one-shot SHA256()/SHA384(), which
            // fetches the algorithm again on every call (`EVP_Q_digest`).
            (Some(ec), KeyKind::EcP256) => {
                return Ok(EcdsaSig::sign(&crate::pki::sha256(tbs), ec)?.to_der()?);
            }
            (Some(ec), KeyKind::EcP384) => {
                let mut h = openssl::sha::Sha384::new();
                h.update(tbs);
                return Ok(EcdsaSig::sign(&h.finish(), ec)?.to_der()?);
            }
            _ => {}
        }
        let mut signer = openssl::sign::Signer::new(self.digest, &self.key)?;
        if pss {
            signer.set_rsa_padding(Padding::PKCS1_PSS)?;
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
        }
        signer.update(tbs)?;
        Ok(signer.sign_to_vec()?)
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// Key type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}
