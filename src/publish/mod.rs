//! CRL publication beyond vigie's own HTTP: the places relying parties look — an LDAP
//! directory (IGC-Santé publishes `certificateRevocationList;binary` on `pkiCA` entries,
//! RFC 4523) and a file directory that a static web origin or a CDN serves.
//!
//! The seam: [`Sink`] is the one type callers use, one file per kind behind it ([`ldap`],
//! [`directory`]); a new kind is a new file, a [`SinkConfig`] variant and a match arm here.
//! Each sink is fed from its own durable queue in the store ([`crate::store::queue`]): the CRL
//! publisher queues each CRL for every sink in the batch that makes it current, and a
//! [`queue::Publication`] worker per sink drains that queue, retrying with backoff, woken by
//! the publication event ([`crate::crl::announce`]). A sink that is slow or down never delays
//! CRL building or HTTP serving; it only makes its queue grow (`vigie_publish_queue_depth`).
//!
//! Sinks never replace a CRL with an older one: each reads the CRL number the target holds and
//! leaves a newer or equal one alone ([`Outcome::AlreadyHeld`]).

pub mod config;
pub mod directory;
pub mod ldap;
pub mod queue;

use std::cmp::Ordering;

pub use config::SinkConfig;
pub use queue::Publication;

use crate::crl::PublishedCrl;
use crate::model::CaId;

/// Why a CRL could not be published to a sink (the worker retries).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The LDAP client failed: connection, TLS, timeout, protocol.
    #[error("LDAP {url}: {source}")]
    Ldap {
        /// The server.
        url: String,
        /// What the client said (boxed: the client's error is large).
        #[source]
        source: Box<ldap3::LdapError>,
    },
    /// The LDAP server refused an operation (RFC 4511 §4.1.9 result code and message).
    #[error("LDAP {operation} {dn}: result {rc} ({text}){matched}")]
    Refused {
        /// bind, search, add, modify.
        operation: &'static str,
        /// The entry.
        dn: String,
        /// The result code.
        rc: u32,
        /// The diagnostic message.
        text: String,
        /// `matchedDN` when the server gave one (the nearest existing ancestor).
        matched: String,
    },
    /// The entry cannot be made or used as configured (a DN vigie cannot create, …).
    #[error("{0}")]
    Unusable(String),
    /// What was read back after writing is not what was written.
    #[error("read back from {target}: {what}")]
    ReadBack {
        /// The entry or file.
        target: String,
        /// What differs.
        what: String,
    },
    /// A file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The queue or a CRL could not be read from the store.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// A queued CRL could not be loaded.
    #[error(transparent)]
    Crl(#[from] crate::crl::Error),
}

/// One CRL for one sink, with what the sink needs to know of its CA.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The CA's id (file names).
    pub ca: &'a CaId,
    /// DN of the CA's LDAP entry (`[[ca]] ldap_dn`, or from the certificate's subject).
    pub ldap_dn: &'a str,
    /// The CA certificate (DER), written as `cACertificate;binary` when an entry is created.
    pub ca_cert_der: &'a [u8],
    /// The CRL.
    pub crl: &'a PublishedCrl,
}

/// What a successful publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The CRL was written and read back.
    Written,
    /// The target already held this CRL number or a newer one (as a big-endian magnitude):
    /// nothing was written.
    AlreadyHeld(Vec<u8>),
}

/// A configured sink.
#[derive(Debug)]
pub enum Sink {
    /// An LDAP directory.
    Ldap(ldap::LdapSink),
    /// A file directory.
    Directory(directory::DirectorySink),
}

impl Sink {
    /// The sink a `[[publish]]` table describes.
    pub fn new(config: &SinkConfig) -> Sink {
        match config {
            SinkConfig::Ldap(c) => Sink::Ldap(ldap::LdapSink::new(c.clone())),
            SinkConfig::Directory(c) => Sink::Directory(directory::DirectorySink::new(c.clone())),
        }
    }

    /// Publishes one CRL: afterwards the target holds it, or a newer one.
    pub async fn put(&self, item: &Item<'_>) -> Result<Outcome, Error> {
        match self {
            Sink::Ldap(s) => s.put(item).await,
            Sink::Directory(s) => s.put(item).await,
        }
    }
}

/// The CRLNumber of a DER CRL (RFC 5280 §5.2.3) as a big-endian magnitude without leading
/// zeros; `None` if it does not parse or has none.
pub fn crl_number(der: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::from_der(der).ok()?;
    let ext = crl
        .tbs_cert_list
        .crl_extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_NUMBER)?;
    let n = der::asn1::Uint::from_der(ext.extn_value.as_bytes()).ok()?;
    let bytes = n.as_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    Some(bytes[first..].to_vec())
}

/// Compares two big-endian magnitudes without leading zeros.
pub fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The magnitude of a u64 CRL number, as [`crl_number`] gives it.
pub fn number_bytes(n: u64) -> Vec<u8> {
    let be = n.to_be_bytes();
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be[first..].to_vec()
}

/// Whether a target holding `held` (from [`crl_number`]) must not be overwritten by `new`.
pub fn holds_same_or_newer(held: Option<&[u8]>, new: u64) -> bool {
    held.is_some_and(|h| compare_numbers(h, &number_bytes(new)) != Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_as_integers() {
        assert_eq!(number_bytes(0x0102), vec![1, 2]);
        assert_eq!(compare_numbers(&[0xff], &[1, 0]), Ordering::Less);
        assert_eq!(compare_numbers(&[2, 0], &[1, 0xff]), Ordering::Greater);
        assert!(holds_same_or_newer(Some(&[7]), 7));
        assert!(holds_same_or_newer(Some(&[1, 0]), 255));
        assert!(!holds_same_or_newer(Some(&[6]), 7));
        assert!(!holds_same_or_newer(None, 7));
    }

    #[test]
    fn crl_numbers_are_read_from_der() {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/crl/full.der"
        ))
        .expect("golden CRL");
        assert!(crl_number(&der).is_some_and(|n| !n.is_empty()));
        assert_eq!(crl_number(b"not a CRL"), None);
    }
}
