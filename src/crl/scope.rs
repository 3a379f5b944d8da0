//! The scope of a CA's complete CRL: which distribution point names its critical
//! IssuingDistributionPoint (RFC 5280 §5.2.5) carries, so that every certificate the CA
//! registered is in the CRL's scope for a relying party.
//!
//! This module owns:
//! - [`DpName`], [`DpSet`]: the distribution point names a certificate carries in its
//!   cRLDistributionPoints extension (RFC 5280 §4.2.1.13), read by [`distribution_points`];
//! - [`LearnedScope`]: what vigie learned of a CA's certificates — the distinct sets of names
//!   they carry (with how many certificates carry each) and how many carry none — stored in the
//!   `meta` CF ([`SCOPE_META`]) in the same batch as the registrations ([`record_in_tx`]);
//! - [`desired_idp`]: the IssuingDistributionPoint names a complete CRL gets, from the CA's
//!   configuration (`crl_urls`, `crl_url`) or, by default, from what was learned;
//! - [`covers`]: whether a certificate is in a CRL's scope.
//!
//! Building the extension is [`super::build`]'s business; when to rebuild is the publisher's.
//!
//! # The rule (RFC 5280 §6.3.3 (b)(2)(i))
//!
//! A relying party uses a CRL for a certificate when, for one of the certificate's distribution
//! points, one of its names is among the names of the CRL's IssuingDistributionPoint — or when
//! the CRL's IssuingDistributionPoint has no distributionPoint (or there is none at all). A
//! certificate without cRLDistributionPoints is in scope only of a CRL without one: OpenSSL
//! answers "different CRL scope", and Java's PKIX checker takes the issuer's name as the
//! distribution point (`DistributionPointFetcher`), which no URI matches.
//!
//! vigie's complete CRL lists every revoked certificate of the CA, so naming several
//! distribution points in it is true for each of them: the IssuingDistributionPoint names the
//! **union** of the names the CA's certificates carry (HTTP and LDAP URIs, or several shards'
//! URLs), and then every certificate shares at least one name with it. When that cannot be
//! done, the CRL carries **no IssuingDistributionPoint at all**:
//! - some registered certificates carry no usable name (no cRLDistributionPoints, or only
//!   distribution points with a cRLIssuer — an indirect CRL elsewhere — or named relative to
//!   the issuer, which a fullName cannot be mixed with);
//! - vigie knows no certificate's distribution points (nothing registered from the certificate
//!   itself: `index.txt` imports, revocations of unregistered serials);
//! - the union would be too large ([`MAX_IDP_NAMES`]), or the CA's certificates carry more
//!   distinct sets than are worth keeping ([`MAX_SETS`]).
//!
//! Why no extension rather than one without distributionPoint: RFC 5280 §5.2.5 forbids an
//! IssuingDistributionPoint whose encoding is an empty SEQUENCE, and its other fields
//! (onlyContainsUserCerts …) would narrow the scope in ways the CA never asked for. Without
//! one, OpenSSL (`crl_crldp_check`: no distpoint and the issuer name matches) and Java
//! (`DistributionPointFetcher.verifyCRL`: no IDP, nothing to compare) both take the CRL as
//! covering every certificate of its issuer, with or without distribution points. A delta CRL
//! names the same scope as its base (§5.2.4), so a change of the names is a new complete CRL.

use std::collections::BTreeSet;

use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

use crate::model::CaId;
use crate::store::{self, Tx};

/// `meta` name of a CA's [`LearnedScope`].
pub const SCOPE_META: &str = "crl_scope";

/// Most distinct sets of names kept per CA; certificates beyond are counted in
/// [`LearnedScope::overflow`] and the CRL then names no distribution point.
pub const MAX_SETS: usize = 256;

/// Most names an IssuingDistributionPoint gets from what was learned: a CA whose certificates
/// point to more (one URL per shard, say) gets a CRL without IssuingDistributionPoint.
pub const MAX_IDP_NAMES: usize = 32;

/// Version octet in front of a stored [`LearnedScope`].
const SCOPE_VERSION: u8 = 1;

/// One distribution point name: the DER of a GeneralName (RFC 5280 §4.2.1.6), a URI most of
/// the time. Kept as DER so that the IssuingDistributionPoint repeats it octet for octet: relying
/// parties compare names, not URLs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DpName(Vec<u8>);

/// The usable distribution point names of one certificate, sorted, without duplicates. Empty
/// when the certificate carries none.
pub type DpSet = BTreeSet<DpName>;

/// Why a name is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configured URL that is not an IA5String (RFC 5280 §4.2.1.6).
    #[error("URL {0:?} is not ASCII (IA5String)")]
    BadUrl(String),
    /// A stored scope that does not decode.
    #[error("stored CRL scope of CA {0} is corrupt: {1}")]
    Corrupt(String, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl DpName {
    /// A uniformResourceIdentifier name.
    pub fn uri(url: &str) -> Result<DpName, Error> {
        let ia5 = der::asn1::Ia5String::new(url).map_err(|_| Error::BadUrl(url.to_owned()))?;
        let der = GeneralName::UniformResourceIdentifier(ia5)
            .to_der()
            .map_err(|_| Error::BadUrl(url.to_owned()))?;
        Ok(DpName(der))
    }

    /// The GeneralName, decoded.
    pub fn general_name(&self) -> Result<GeneralName, der::Error> {
        GeneralName::from_der(&self.0)
    }
}

impl std::fmt::Display for DpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.general_name() {
            Ok(GeneralName::UniformResourceIdentifier(u)) => f.write_str(u.as_str()),
            Ok(GeneralName::DirectoryName(n)) => write!(f, "dirName:{n}"),
            Ok(GeneralName::DnsName(n)) => write!(f, "DNS:{}", n.as_str()),
            Ok(GeneralName::Rfc822Name(n)) => write!(f, "email:{}", n.as_str()),
            _ => write!(f, "name:{}", hex::encode(&self.0)),
        }
    }
}

impl std::fmt::Debug for DpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// `{a, b}` for logs.
pub fn describe(names: &DpSet) -> String {
    if names.is_empty() {
        return "(no CRL distribution point)".to_owned();
    }
    let v: Vec<String> = names.iter().map(ToString::to_string).collect();
    v.join(", ")
}

/// The names a certificate (DER) gives in its cRLDistributionPoints (RFC 5280 §4.2.1.13) that
/// a complete CRL of its issuer can name: the fullName names of distribution points without a
/// cRLIssuer (§4.2.1.13: with one, the CRL is an indirect CRL of another issuer). Names
/// relative to the issuer are left out: an IssuingDistributionPoint holds a fullName or a
/// relative name, not both. Empty when there is none (or the extension does not decode).
pub fn distribution_points(cert_der: &[u8]) -> DpSet {
    let mut out = DpSet::new();
    let Ok(cert) = x509_cert::Certificate::from_der(cert_der) else {
        return out;
    };
    let Ok(Some((_, dps))) = cert.tbs_certificate.get::<CrlDistributionPoints>() else {
        return out;
    };
    for dp in dps.0 {
        if dp.crl_issuer.is_some() {
            continue;
        }
        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
            for n in names {
                if let Ok(der) = n.to_der() {
                    out.insert(DpName(der));
                }
            }
        }
    }
    out
}

/// What vigie learned of a CA's registered certificates' distribution points (`meta` CF,
/// [`SCOPE_META`]). Each certificate is counted once, when its registration is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedScope {
    /// Distinct sets of names, with how many certificates carry each.
    pub sets: Vec<(DpSet, u64)>,
    /// Certificates with no usable name.
    pub without: u64,
    /// Certificates whose set was not kept (beyond [`MAX_SETS`]).
    pub overflow: u64,
}

impl LearnedScope {
    /// Decodes a stored scope.
    pub fn decode(ca: &CaId, bytes: &[u8]) -> Result<LearnedScope, Error> {
        match bytes.split_first() {
            Some((&SCOPE_VERSION, rest)) => postcard::from_bytes(rest)
                .map_err(|e| Error::Corrupt(ca.to_string(), e.to_string())),
            _ => Err(Error::Corrupt(ca.to_string(), "unknown version".to_owned())),
        }
    }

    /// Encodes it for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![SCOPE_VERSION];
        // Serialising plain vectors and integers cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Counts one certificate carrying `set`. Returns whether the learned IssuingDistributionPoint
    /// ([`LearnedScope::idp`]) may have changed: a new set, or the first certificate without one.
    pub fn add(&mut self, set: &DpSet) -> bool {
        if set.is_empty() {
            self.without += 1;
            return self.without == 1;
        }
        if let Some((_, n)) = self.sets.iter_mut().find(|(s, _)| s == set) {
            *n += 1;
            return false;
        }
        if self.sets.len() >= MAX_SETS {
            self.overflow += 1;
            return self.overflow == 1;
        }
        self.sets.push((set.clone(), 1));
        self.sets.sort();
        true
    }

    /// The names a complete CRL's IssuingDistributionPoint gets from this: the union of every
    /// set, or `None` (no IssuingDistributionPoint) when a certificate has none, when nothing is
    /// known, or when there would be too many (see the module documentation).
    pub fn idp(&self) -> Option<DpSet> {
        if self.without > 0 || self.overflow > 0 || self.sets.is_empty() {
            return None;
        }
        let union: DpSet = self
            .sets
            .iter()
            .flat_map(|(s, _)| s.iter().cloned())
            .collect();
        (union.len() <= MAX_IDP_NAMES).then_some(union)
    }

    /// Certificates that a CRL naming `idp` would not cover, with their sets.
    pub fn uncovered<'a>(
        &'a self,
        idp: Option<&'a DpSet>,
    ) -> impl Iterator<Item = (DpSet, u64)> + 'a {
        let without = (self.without > 0 && idp.is_some()).then(|| (DpSet::new(), self.without));
        without.into_iter().chain(
            self.sets
                .iter()
                .filter(move |(s, _)| !covers(idp, s))
                .map(|(s, n)| (s.clone(), *n)),
        )
    }
}

/// How the IssuingDistributionPoint of a CA's CRLs is chosen (`crl_urls`, `crl_url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdpPolicy {
    /// From the registered certificates (the default).
    Learned,
    /// These URIs (`crl_urls`, or `crl_url`); empty: no IssuingDistributionPoint.
    Fixed(DpSet),
}

impl IdpPolicy {
    /// The policy for configured URLs: `None` is [`IdpPolicy::Learned`].
    pub fn from_urls(urls: Option<&[String]>) -> Result<IdpPolicy, Error> {
        match urls {
            None => Ok(IdpPolicy::Learned),
            Some(urls) => Ok(IdpPolicy::Fixed(
                urls.iter()
                    .map(|u| DpName::uri(u))
                    .collect::<Result<_, _>>()?,
            )),
        }
    }
}

/// The IssuingDistributionPoint names a complete CRL gets under `policy`, given what was
/// learned; `None`: no IssuingDistributionPoint.
pub fn desired_idp(policy: &IdpPolicy, learned: &LearnedScope) -> Option<DpSet> {
    match policy {
        IdpPolicy::Fixed(names) if names.is_empty() => None,
        IdpPolicy::Fixed(names) => Some(names.clone()),
        IdpPolicy::Learned => learned.idp(),
    }
}

/// Whether a certificate carrying `set` is in the scope of a CRL whose IssuingDistributionPoint
/// names `idp` (RFC 5280 §6.3.3 (b)(2)(i)): always when there is no IssuingDistributionPoint;
/// otherwise when they share a name.
pub fn covers(idp: Option<&DpSet>, set: &DpSet) -> bool {
    match idp {
        None => true,
        Some(names) => set.iter().any(|n| names.contains(n)),
    }
}

/// A CA's learned scope as stored (empty when nothing was learned yet).
pub fn load(store: &store::Store, ca: &CaId) -> Result<LearnedScope, Error> {
    match store.meta(ca, SCOPE_META)? {
        Some(bytes) => LearnedScope::decode(ca, &bytes),
        None => Ok(LearnedScope::default()),
    }
}

/// Counts a newly registered certificate carrying `set` in its CA's learned scope, within the
/// registration's transaction (same batch). Marks the transaction when the learned
/// IssuingDistributionPoint may change, so the publisher builds a new complete CRL.
pub fn record_in_tx(tx: &mut Tx<'_>, ca: &CaId, set: &DpSet) -> Result<(), Error> {
    let mut learned = match tx.meta(ca, SCOPE_META)? {
        Some(bytes) => LearnedScope::decode(ca, &bytes)?,
        None => LearnedScope::default(),
    };
    let before = learned.idp();
    learned.add(set);
    tx.put_meta(ca, SCOPE_META, learned.encode());
    if learned.idp() != before {
        tx.mark_scope_changed(ca);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str]) -> DpSet {
        urls.iter().map(|u| DpName::uri(u).expect("uri")).collect()
    }

    #[test]
    fn the_union_covers_every_set_and_none_means_no_idp() {
        let mut l = LearnedScope::default();
        assert_eq!(l.idp(), None, "nothing known: no IssuingDistributionPoint");
        assert!(l.add(&set(&["http://a/x.crl", "ldap://d/cn=x"])));
        assert!(
            !l.add(&set(&["ldap://d/cn=x", "http://a/x.crl"])),
            "same set"
        );
        assert!(l.add(&set(&["http://b/y.crl"])));
        let idp = l.idp().expect("a union");
        assert_eq!(idp.len(), 3);
        for (s, _) in &l.sets {
            assert!(covers(Some(&idp), s));
        }
        assert_eq!(l.uncovered(Some(&idp)).count(), 0);
        assert!(l.add(&DpSet::new()), "first certificate without");
        assert_eq!(l.idp(), None);
        assert!(!l.add(&DpSet::new()));
        assert_eq!(l.without, 2);
        assert_eq!(l.sets.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }

    #[test]
    fn fixed_urls_may_leave_certificates_out() {
        let mut l = LearnedScope::default();
        l.add(&set(&["http://a/x.crl"]));
        l.add(&DpSet::new());
        let fixed = IdpPolicy::from_urls(Some(&["http://a/x.crl".to_owned()])).expect("ok");
        let idp = desired_idp(&fixed, &l);
        let out: Vec<(DpSet, u64)> = l.uncovered(idp.as_ref()).collect();
        assert_eq!(out, vec![(DpSet::new(), 1)]);
        let none = IdpPolicy::from_urls(Some(&[])).expect("ok");
        assert_eq!(desired_idp(&none, &l), None);
        assert_eq!(l.uncovered(None).count(), 0);
        assert!(IdpPolicy::from_urls(Some(&["http://é".to_owned()])).is_err());
    }

    #[test]
    fn too_many_sets_or_names_mean_no_idp() {
        let mut l = LearnedScope::default();
        for i in 0..MAX_IDP_NAMES {
            l.add(&set(&[&format!("http://a/{i}.crl")]));
        }
        assert_eq!(l.idp().map(|s| s.len()), Some(MAX_IDP_NAMES));
        l.add(&set(&["http://a/one-more.crl"]));
        assert_eq!(l.idp(), None);
        let mut l = LearnedScope::default();
        for i in 0..=MAX_SETS {
            l.add(&set(&["http://a/common.crl", &format!("http://a/{i}.crl")]));
        }
        assert_eq!(l.sets.len(), MAX_SETS);
        assert_eq!(l.overflow, 1);
        assert_eq!(l.idp(), None);
    }

    #[test]
    fn stored_form_round_trips_and_is_versioned() {
        let ca = CaId::new("ca").expect("valid");
        let mut l = LearnedScope::default();
        l.add(&set(&[
            "http://a/x.crl",
            "ldap://h/cn=X?certificateRevocationList;binary",
        ]));
        l.add(&DpSet::new());
        let bytes = l.encode();
        assert_eq!(LearnedScope::decode(&ca, &bytes).expect("decodes"), l);
        assert!(LearnedScope::decode(&ca, &[9, 0]).is_err());
        assert!(LearnedScope::decode(&ca, &[]).is_err());
    }

    #[test]
    fn names_display_as_uris() {
        let n = DpName::uri("ldap://h/cn=X").expect("uri");
        assert_eq!(n.to_string(), "ldap://h/cn=X");
        assert_eq!(describe(&DpSet::new()), "(no CRL distribution point)");
    }
}
