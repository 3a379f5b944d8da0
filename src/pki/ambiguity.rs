//! Refusing CAs that an OCSP request cannot tell apart. RFC 6960 §4.1.1: a CertID names its CA
//! by issuerNameHash and issuerKeyHash only. Two configured CAs with both alike (a renewed CA
//! certificate, same subject and key, under a second id) would make OCSP answer from one while
//! revocations landed on the other; such a configuration is refused, at start and at reload.

use std::sync::Arc;

use super::{Ca, Error, HashAlg};

/// Refuses `cas` when two of them have the same issuer name hash and key hash. The error names
/// the later of the two by its position in `cas` (its `[[ca]]` table), key `cert`.
pub fn refuse_ambiguous(cas: &[Arc<Ca>]) -> Result<(), Error> {
    // SHA-1 suffices: equal names and keys give equal hashes under every algorithm, and a
    // SHA-1 collision between two CAs of one configuration is not a configuration mistake.
    let sha1 = HashAlg::Sha1.index();
    for (i, ca) in cas.iter().enumerate() {
        if let Some(twin) = cas[..i].iter().find(|o| {
            o.hashes[sha1].name == ca.hashes[sha1].name && o.hashes[sha1].key == ca.hashes[sha1].key
        }) {
            return Err(Error {
                index: i,
                key: "cert",
                message: format!(
                    "CA {:?} has the same issuer name hash and key hash as CA {:?} (same subject and key, e.g. a renewed certificate of the same CA): OCSP requests could not tell them apart (RFC 6960 §4.1.1); configure that CA once",
                    ca.id.as_str(),
                    twin.id.as_str()
                ),
            });
        }
    }
    Ok(())
}
