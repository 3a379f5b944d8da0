//! Which client certificates may use the ingest API (`[admin] client_allow`), and whether one
//! issued by a CA vigie itself serves has been revoked.
//!
//! The TLS handshake already checked that the certificate chains up to `[admin] client_ca`
//! (`crate::service::admin_tls`). That says *who vouches* for the client, not *which* clients
//! are operators: every certificate a CA issues chains to it. So `client_ca` alone is refused at
//! start-up, and each request's certificate must match one entry of the allowlist:
//!
//! - `subject:<RFC 4514 DN>` — the certificate's subject, compared as a name ([`super::dn`]);
//! - `spki-sha256:<64 hex digits>` — the SHA-256 of the certificate's SubjectPublicKeyInfo DER
//!   (`openssl x509 -in c.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum`),
//!   which pins a key rather than a name.
//!
//! When one of the `client_ca` certificates is also a `[[ca]]` served by vigie, a client
//! certificate it issued is looked up in vigie's own store and refused when revoked (held
//! certificates included): revoking an operator's certificate through vigie closes its door.

use std::sync::Arc;

use openssl::x509::{X509, X509Ref, X509VerifyResult};

use super::Error;
use super::dn::{self, CanonicalName};
use crate::model::{CaId, CertStatus, Serial};
use crate::pki::Ca;
use crate::store::Store;

/// One `client_allow` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRule {
    /// `subject:…`.
    Subject(CanonicalName),
    /// `spki-sha256:…`.
    SpkiSha256([u8; 32]),
}

impl ClientRule {
    /// Parses `subject:<DN>` or `spki-sha256:<hex>`.
    pub fn parse(entry: &str) -> Result<ClientRule, Error> {
        let entry = entry.trim();
        if let Some(dn) = entry.strip_prefix("subject:") {
            return Ok(ClientRule::Subject(CanonicalName::parse(dn)?));
        }
        if let Some(h) = entry.strip_prefix("spki-sha256:") {
            let bytes = hex::decode(h.trim().replace(':', ""))
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    Error::BadRule("spki-sha256: needs 64 hex digits (a SHA-256)".into())
                })?;
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes);
            return Ok(ClientRule::SpkiSha256(a));
        }
        Err(Error::BadRule(
            "expected \"subject:<RFC 4514 DN>\" or \"spki-sha256:<hex>\"".into(),
        ))
    }
}

/// What the admin listener knows of a connection's verified client certificate.
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    /// The subject as an escaped RFC 4514 string (for logs and the audit trail).
    pub subject: String,
    /// The subject in canonical form; `None` if it does not parse.
    pub name: Option<CanonicalName>,
    /// SHA-256 of the SubjectPublicKeyInfo DER (`None` if the key cannot be read).
    pub spki_sha256: Option<[u8; 32]>,
    /// The certificate.
    pub cert: X509,
}

impl ClientCertificate {
    /// Reads what is needed of `cert`.
    pub fn new(cert: &X509Ref) -> ClientCertificate {
        let subject_der = cert.subject_name().to_der().unwrap_or_default();
        // i2d_PUBKEY: the SubjectPublicKeyInfo DER, as `openssl pkey -pubin -outform DER`.
        let spki = cert.public_key().and_then(|k| k.public_key_to_der()).ok();
        ClientCertificate {
            subject: dn::rfc4514(&subject_der),
            name: CanonicalName::from_der(&subject_der).ok(),
            spki_sha256: spki.map(|der| openssl::sha::sha256(&der)),
            cert: cert.to_owned(),
        }
    }
}

/// The `client_allow` list.
#[derive(Clone, Debug, Default)]
pub struct ClientAllow {
    rules: Vec<ClientRule>,
}

impl ClientAllow {
    /// From the configured entries; an error names the entry's position (from 0).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<ClientAllow, (usize, Error)> {
        let rules = entries
            .iter()
            .enumerate()
            .map(|(i, e)| ClientRule::parse(e.as_ref()).map_err(|err| (i, err)))
            .collect::<Result<_, _>>()?;
        Ok(ClientAllow { rules })
    }

    /// Whether no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The position of the first entry `client` matches, if any.
    pub fn allows(&self, client: &ClientCertificate) -> Option<usize> {
        self.rules.iter().position(|rule| match rule {
            ClientRule::Subject(name) => client.name.as_ref() == Some(name),
            ClientRule::SpkiSha256(h) => client
                .spki_sha256
                .is_some_and(|mine| openssl::memcmp::eq(h, &mine)),
        })
    }
}

/// A client certificate found revoked in vigie's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedClient {
    /// The CA that issued it.
    pub ca: CaId,
    /// Its serial.
    pub serial: Serial,
}

/// Looks `cert` up in the store when one of `own` (vigie's CAs that are also client CAs)
/// issued it: `Some` when it is revoked (or on hold) there.
pub fn revoked_by_own_ca(
    cert: &X509Ref,
    own: &[Arc<Ca>],
    store: &Store,
) -> Result<Option<RevokedClient>, Error> {
    let Some(ca) = own.iter().find(|ca| {
        ca.cert.issued(cert) == X509VerifyResult::OK
            && ca
                .cert
                .public_key()
                .and_then(|k| cert.verify(&k))
                .unwrap_or(false)
    }) else {
        return Ok(None);
    };
    let Some(serial) = cert
        .serial_number()
        .to_bn()
        .ok()
        .and_then(|bn| Serial::from_magnitude(&bn.to_vec()).ok())
    else {
        return Ok(None);
    };
    let record = store.cert(&ca.id, &serial)?;
    Ok(match record.map(|r| r.status()) {
        Some(CertStatus::Revoked(_)) => Some(RevokedClient {
            ca: ca.id.clone(),
            serial,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_refuse_other_forms() {
        assert!(matches!(
            ClientRule::parse("subject:CN=op,O=ACME"),
            Ok(ClientRule::Subject(_))
        ));
        assert!(matches!(
            ClientRule::parse(&format!("spki-sha256:{}", "ab".repeat(32))),
            Ok(ClientRule::SpkiSha256(_))
        ));
        assert!(ClientRule::parse("spki-sha256:abcd").is_err());
        assert!(ClientRule::parse("CN=op").is_err());
        assert!(ClientRule::parse("subject:").is_err());
        let e = ClientAllow::parse(&["subject:CN=a", "fingerprint:x"]).expect_err("second");
        assert_eq!(e.0, 1);
    }
}
