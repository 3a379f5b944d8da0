//! The CAs of the target, as the load generator needs them: CertID hashes to build requests,
//! the policies that decide what a correct answer is (nonce echo, never-issued serials), and the
//! certificates that verify signatures.
//!
//! Read from a demo directory made by `vigie demo` (`DIR/pki/manifest.json` and, when present,
//! `DIR/vigie.toml` for the per-CA policies). The PKI is never generated here: a missing manifest
//! is an error, so the tool cannot silently aim at a PKI the server does not serve.

use std::path::{Path, PathBuf};

use openssl::hash::hash;
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use vigie::pki::HashAlg;
use vigie::pki::demo::{DemoOptions, DemoPki, create_or_load};

/// Why the issuers could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No demo PKI in this directory.
    #[error(
        "{0}: no demo PKI here (run `vigie demo --dir DIR --no-serve` first, or pass the directory `vigie demo` used)"
    )]
    NoDemo(PathBuf),
    /// The demo PKI could not be loaded.
    #[error("demo PKI: {0}")]
    Demo(#[from] vigie::pki::demo::DemoError),
    /// A certificate could not be read or hashed.
    #[error("{0}")]
    Certificate(String),
    /// The demo configuration does not parse.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// openssl failed.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// issuerNameHash and issuerKeyHash under one algorithm.
#[derive(Debug, Clone)]
pub struct Hashes {
    /// Hash of the DER subject Name.
    pub name: Vec<u8>,
    /// Hash of the subjectPublicKey bits.
    pub key: Vec<u8>,
}

/// One issuing CA of the target.
#[derive(Debug)]
pub struct Issuer {
    /// Its id (`aci-el-org` …).
    pub id: String,
    /// Hashes by [`HashAlg::index`].
    pub hashes: [Hashes; 4],
    /// The CA certificate.
    pub cert: X509,
    /// Whether the CA echoes nonces (config `nonce = "echo"`, the default).
    pub echoes_nonce: bool,
    /// Whether never-issued serials are answered revoked (config `unknown_serial = "revoked"`).
    pub unknown_is_revoked: bool,
}

/// The target's CAs.
pub struct Issuers {
    /// In demo manifest order.
    pub cas: Vec<Issuer>,
    /// The demo PKI as loaded.
    pub pki: DemoPki,
    /// Trust anchors (both demo roots), for signature verification.
    pub roots: X509Store,
    /// The issuing CA certificates, to build chains of OCSP signer certificates.
    pub chain: Stack<X509>,
    /// The demo directory.
    pub dir: PathBuf,
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuers")
            .field("cas", &self.cas)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Per-CA policies read from the demo configuration: (id, echoes nonce, unknown is revoked).
fn policies(dir: &Path) -> Result<Vec<(String, bool, bool)>, Error> {
    let path = dir.join("vigie.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let raw = vigie::config::RawConfig::parse(
        &text,
        &path.display().to_string(),
        std::iter::empty::<(String, String)>(),
    )
    .map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(raw
        .cas
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.nonce != vigie::model::NoncePolicy::Ignore,
                c.unknown_serial == vigie::model::UnknownSerialPolicy::Revoked,
            )
        })
        .collect())
}

impl Issuers {
    /// Reads the issuing CAs of the demo in `dir`.
    pub fn from_demo_dir(dir: &Path) -> Result<Issuers, Error> {
        if !dir.join("pki").join("manifest.json").is_file() {
            return Err(Error::NoDemo(dir.to_owned()));
        }
        let pki = create_or_load(
            dir,
            &DemoOptions {
                public_url: String::new(),
                ca_rsa_bits: 2048,
            },
        )?;
        let policies = policies(dir)?;
        let mut cas = Vec::with_capacity(pki.cas.len());
        let mut chain = Stack::new()?;
        for ca in &pki.cas {
            let cert = vigie::pki::read_cert(&ca.cert).map_err(Error::Certificate)?;
            let subject = cert.subject_name().to_der()?;
            let der = cert.to_der()?;
            let key_bits = vigie::pki::subject_public_key_bits(&der).map_err(Error::Certificate)?;
            let mut hashes = Vec::with_capacity(4);
            for alg in HashAlg::ALL {
                hashes.push(Hashes {
                    name: hash(alg.digest(), &subject)?.to_vec(),
                    key: hash(alg.digest(), &key_bits)?.to_vec(),
                });
            }
            let hashes: [Hashes; 4] = hashes
                .try_into()
                .map_err(|_| Error::Certificate("four hash algorithms".into()))?;
            let (echoes_nonce, unknown_is_revoked) = policies
                .iter()
                .find(|(id, _, _)| *id == ca.id)
                .map_or((true, false), |(_, n, u)| (*n, *u));
            chain.push(cert.clone())?;
            cas.push(Issuer {
                id: ca.id.clone(),
                hashes,
                cert,
                echoes_nonce,
                unknown_is_revoked,
            });
        }
        let mut roots = X509StoreBuilder::new()?;
        let pem = std::fs::read(&pki.roots)
            .map_err(|e| Error::Certificate(format!("{}: {e}", pki.roots.display())))?;
        for root in X509::stack_from_pem(&pem)? {
            roots.add_cert(root)?;
        }
        Ok(Issuers {
            cas,
            pki,
            roots: roots.build(),
            chain,
            dir: dir.to_owned(),
        })
    }

    /// The CA ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.cas.iter().map(|c| c.id.clone()).collect()
    }
}
