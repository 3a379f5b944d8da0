//! The LDAP sink (`kind = "ldap"`), in the shape IGC-Santé's directory has: one entry per CA,
//! named by `[[ca]] ldap_dn` (default: the CA certificate's subject as an RFC 4514 string,
//! [`default_dn`]), with the auxiliary object classes `pkiCA` and `deltaCRL` (RFC 4523 §4.3,
//! §4.5; in OpenLDAP's `core.schema`), holding the complete CRL in
//! `certificateRevocationList;binary` and the delta in `deltaRevocationList;binary` (RFC 4523
//! §2.2: these attributes are transferred with the `;binary` option, RFC 4522).
//!
//! For each CRL, over one connection (`ldap://` or `ldaps://`, StartTLS with `starttls = true`,
//! simple bind as `bind_dn` with the password read from `bind_password_file` at each
//! connection):
//!
//! 1. read the entry (base search): its object classes and the CRL it holds;
//! 2. if it holds this CRL number or a newer one (the CRLNumber of the DER read back,
//!    RFC 5280 §5.2.3), stop: a CRL is never replaced by an older one;
//! 3. otherwise replace it with one modify (RFC 4511 §4.6), adding `pkiCA`/`deltaCRL` to the
//!    entry's classes if missing (a delete of the exact value read, as a conditional write, is
//!    not possible: these attributes have no equality matching rule);
//! 4. read it back and compare the bytes.
//!
//! A missing CA entry is created with the structural class `applicationProcess` (X.521, in
//! `core.schema`: it requires exactly `cn`, which a CA entry's RDN is; a CA is an application,
//! not a person, role or device) plus `pkiCA` and `deltaCRL`, with `cACertificate;binary`. Its
//! RDN must be `cn=…`; another RDN type is reported as an error naming the DN.
//!
//! Missing parent entries are created too, top down, with the standard structural class of
//! their RDN type (`c` country, `o` organization, `ou` organizationalUnit, `l`/`st` locality,
//! `dc` domain, `cn` applicationProcess). Why: the default DN is the PKI's own naming
//! (`…,ou=IGC-SANTE TEST,ou=0002 187512751,o=ASIP-SANTE,c=FR`), which a CA's directory
//! mirrors; refusing would make every deployment create those entries by hand before the first
//! CRL reaches relying parties. vigie never goes above what the server holds: when no naming
//! context holds the DN, the server's refusal is reported with the DN and the result code, and
//! a bind DN without write access there gets `insufficientAccessRights` the same way.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::asn1::{PL, StructureTag};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope};

use super::config::LdapConfig;
use super::{Error, Item, Outcome, compare_numbers, crl_number, holds_same_or_newer};
use crate::crl::CrlKind;

/// Connection and per-operation timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 4511 §4.1.9 result codes vigie acts on.
const SUCCESS: u32 = 0;
const NO_SUCH_OBJECT: u32 = 32;

/// The attribute holding a CRL of `kind` (RFC 4523 §2.2, §2.4), with the `;binary` option.
pub fn attribute(kind: CrlKind) -> &'static str {
    match kind {
        CrlKind::Full => "certificateRevocationList;binary",
        CrlKind::Delta => "deltaRevocationList;binary",
    }
}

/// The auxiliary class allowing that attribute (RFC 4523 §4.3 `pkiCA`, §4.5 `deltaCRL`).
fn auxiliary_class(kind: CrlKind) -> &'static str {
    match kind {
        CrlKind::Full => "pkiCA",
        CrlKind::Delta => "deltaCRL",
    }
}

/// The default DN of a CA's entry: its certificate's subject as an RFC 4514 string (most
/// significant RDN last), e.g. `CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,OU=IGC-SANTE
/// TEST,OU=0002 187512751,O=ASIP-SANTE,C=FR`.
pub fn default_dn(subject_der: &[u8]) -> Result<String, Error> {
    use der::Decode;
    let name = x509_cert::name::Name::from_der(subject_der)
        .map_err(|e| Error::Unusable(format!("CA subject does not decode: {e}")))?;
    Ok(name.to_string())
}

/// An LDAP directory.
#[derive(Debug)]
pub struct LdapSink {
    config: LdapConfig,
}

/// What a base search found.
struct Entry {
    classes: Vec<String>,
    values: Vec<Vec<u8>>,
}

impl Entry {
    fn has_class(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c.eq_ignore_ascii_case(class))
    }
}

impl LdapSink {
    /// A sink for `config`.
    pub fn new(config: LdapConfig) -> LdapSink {
        LdapSink { config }
    }

    fn client_error(&self, source: ldap3::LdapError) -> Error {
        Error::Ldap {
            url: self.config.url.clone(),
            source: Box::new(source),
        }
    }

    async fn connect(&self) -> Result<Ldap, Error> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(self.config.starttls);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| self.client_error(e))?;
        ldap3::drive!(conn);
        if let (Some(dn), Some(file)) = (&self.config.bind_dn, &self.config.bind_password_file) {
            let password = std::fs::read_to_string(file)
                .map_err(|e| Error::Io(format!("bind_password_file {}", file.display()), e))?;
            let password = password.trim_end_matches(['\n', '\r']);
            let r = ldap
                .with_timeout(TIMEOUT)
                .simple_bind(dn, password)
                .await
                .map_err(|e| self.client_error(e))?;
            check("bind", dn, r)?;
        }
        Ok(ldap)
    }

    /// Publishes `item` on the CA's entry (see the module documentation).
    pub async fn put(&self, item: &Item<'_>) -> Result<Outcome, Error> {
        let mut ldap = self.connect().await?;
        let outcome = self.put_on(&mut ldap, item).await;
        let _ = ldap.unbind().await;
        outcome
    }

    async fn put_on(&self, ldap: &mut Ldap, item: &Item<'_>) -> Result<Outcome, Error> {
        let dn = item.ldap_dn;
        let kind = item.crl.kind();
        let attr = attribute(kind);
        let der = item.crl.der.to_vec();
        match self.read(ldap, dn, attr).await? {
            None => self.create(ldap, item).await?,
            Some(entry) => {
                let held = entry
                    .values
                    .iter()
                    .filter_map(|v| crl_number(v))
                    .max_by(|a, b| compare_numbers(a, b));
                if holds_same_or_newer(held.as_deref(), item.crl.record.number) {
                    return Ok(Outcome::AlreadyHeld(held.unwrap_or_default()));
                }
                let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
                let missing: HashSet<Vec<u8>> = [
                    auxiliary_class(CrlKind::Full),
                    auxiliary_class(CrlKind::Delta),
                ]
                .into_iter()
                .filter(|class| !entry.has_class(class))
                .map(|class| class.as_bytes().to_vec())
                .collect();
                if !missing.is_empty() {
                    mods.push(Mod::Add(b"objectClass".to_vec(), missing));
                }
                // Replace, not delete-the-value-read-and-add: certificateRevocationList has no
                // equality matching rule (RFC 4523 §2.2; OpenLDAP answers 18
                // inappropriateMatching to a value delete). One writer numbers and publishes a
                // CA's CRLs, and the read above made sure this one is newer.
                mods.push(Mod::Replace(
                    attr.as_bytes().to_vec(),
                    HashSet::from([der.clone()]),
                ));
                let r = ldap
                    .with_timeout(TIMEOUT)
                    .modify(dn, mods)
                    .await
                    .map_err(|e| self.client_error(e))?;
                check("modify", dn, r)?;
            }
        }
        let back = self
            .read(ldap, dn, attr)
            .await?
            .ok_or_else(|| Error::ReadBack {
                target: dn.to_owned(),
                what: "the entry is gone".into(),
            })?;
        if back.values != [der] {
            return Err(Error::ReadBack {
                target: dn.to_owned(),
                what: format!(
                    "{attr} holds {} value(s), not the CRL number {} just written",
                    back.values.len(),
                    item.crl.record.number
                ),
            });
        }
        Ok(Outcome::Written)
    }

    /// Base search of `dn` for its object classes and `attr`; `None` when it does not exist.
    async fn read(&self, ldap: &mut Ldap, dn: &str, attr: &str) -> Result<Option<Entry>, Error> {
        let ldap3::SearchResult(entries, result) = ldap
            .with_timeout(TIMEOUT)
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["objectClass", attr],
            )
            .await
            .map_err(|e| self.client_error(e))?;
        if result.rc == NO_SUCH_OBJECT {
            return Ok(None);
        }
        check("search", dn, result)?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let attrs = parse_entry(entry.0).ok_or_else(|| {
            Error::Unusable(format!("LDAP search {dn}: malformed SearchResultEntry"))
        })?;
        let wanted = attr.split(';').next().unwrap_or(attr);
        let mut out = Entry {
            classes: Vec::new(),
            values: Vec::new(),
        };
        for (name, values) in attrs {
            let base = name.split(';').next().unwrap_or(&name);
            if base.eq_ignore_ascii_case("objectClass") {
                out.classes.extend(
                    values
                        .into_iter()
                        .map(|v| String::from_utf8_lossy(&v).into_owned()),
                );
            } else if base.eq_ignore_ascii_case(wanted) {
                out.values.extend(values);
            }
        }
        Ok(Some(out))
    }

    async fn exists(&self, ldap: &mut Ldap, dn: &str) -> Result<bool, Error> {
        let ldap3::SearchResult(_, result) = ldap
            .with_timeout(TIMEOUT)
            .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| self.client_error(e))?;
        if result.rc == NO_SUCH_OBJECT {
            return Ok(false);
        }
        check("search", dn, result)?;
        Ok(true)
    }

    /// Creates the CA's entry with the CRL (and its missing parents).
    async fn create(&self, ldap: &mut Ldap, item: &Item<'_>) -> Result<(), Error> {
        let dn = item.ldap_dn;
        let (rdn_type, cn, parent) = split_dn(dn)?;
        if !rdn_type.eq_ignore_ascii_case("cn") {
            return Err(Error::Unusable(format!(
                "no LDAP entry {dn}, and vigie creates CA entries only when their RDN is cn=…: \
                 create it in the directory (with object classes pkiCA and deltaCRL) or set \
                 [[ca]] ldap_dn"
            )));
        }
        let attrs = |item: &Item<'_>| -> Vec<(Vec<u8>, HashSet<Vec<u8>>)> {
            vec![
                (
                    b"objectClass".to_vec(),
                    ["applicationProcess", "pkiCA", "deltaCRL"]
                        .iter()
                        .map(|c| c.as_bytes().to_vec())
                        .collect(),
                ),
                (b"cn".to_vec(), HashSet::from([cn.clone().into_bytes()])),
                (
                    b"cACertificate;binary".to_vec(),
                    HashSet::from([item.ca_cert_der.to_vec()]),
                ),
                (
                    attribute(item.crl.kind()).as_bytes().to_vec(),
                    HashSet::from([item.crl.der.to_vec()]),
                ),
            ]
        };
        let r = ldap
            .with_timeout(TIMEOUT)
            .add(dn, attrs(item))
            .await
            .map_err(|e| self.client_error(e))?;
        if r.rc != NO_SUCH_OBJECT || parent.is_empty() {
            return check("add", dn, r);
        }
        self.create_parents(ldap, parent).await?;
        let r = ldap
            .with_timeout(TIMEOUT)
            .add(dn, attrs(item))
            .await
            .map_err(|e| self.client_error(e))?;
        check("add", dn, r)
    }

    /// Creates `dn` and its missing ancestors, top down.
    async fn create_parents(&self, ldap: &mut Ldap, dn: &str) -> Result<(), Error> {
        let mut missing = Vec::new();
        let mut current = dn;
        while !current.is_empty() && !self.exists(ldap, current).await? {
            missing.push(current);
            current = split_dn(current)?.2;
        }
        for dn in missing.into_iter().rev() {
            let (rdn_type, value, _) = split_dn(dn)?;
            let class = match rdn_type.to_ascii_lowercase().as_str() {
                "c" => "country",
                "o" => "organization",
                "ou" => "organizationalUnit",
                "l" | "st" => "locality",
                "dc" => "domain",
                "cn" => "applicationProcess",
                other => {
                    return Err(Error::Unusable(format!(
                        "no LDAP entry {dn}, and vigie does not create entries named by {other}=…: \
                         create it in the directory"
                    )));
                }
            };
            let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
                (
                    b"objectClass".to_vec(),
                    HashSet::from([class.as_bytes().to_vec()]),
                ),
                (
                    rdn_type.as_bytes().to_vec(),
                    HashSet::from([value.into_bytes()]),
                ),
            ];
            let r = ldap
                .with_timeout(TIMEOUT)
                .add(dn, attrs)
                .await
                .map_err(|e| self.client_error(e))?;
            // Another writer may have made it meanwhile (68 entryAlreadyExists).
            if r.rc != 68 {
                check("add", dn, r)?;
            }
            tracing::info!(dn, class, "LDAP parent entry created");
        }
        Ok(())
    }
}

fn check(operation: &'static str, dn: &str, r: ldap3::LdapResult) -> Result<(), Error> {
    if r.rc == SUCCESS {
        return Ok(());
    }
    Err(Error::Refused {
        operation,
        dn: dn.to_owned(),
        rc: r.rc,
        text: r.text,
        matched: if r.matched.is_empty() {
            String::new()
        } else {
            format!("; the nearest existing entry is {:?}", r.matched)
        },
    })
}

/// The attributes of a SearchResultEntry (RFC 4511 §4.5.2: `[APPLICATION 4] SEQUENCE {
/// objectName LDAPDN, attributes SEQUENCE OF SEQUENCE { type, vals SET OF value } }`), parsed
/// without panicking on a malformed answer.
fn parse_entry(tag: StructureTag) -> Option<Vec<(String, Vec<Vec<u8>>)>> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    let _dn = parts.next()?.expect_primitive()?;
    let mut out = Vec::new();
    for attribute in parts.next()?.expect_constructed()? {
        let mut a = attribute.expect_constructed()?.into_iter();
        let name = String::from_utf8(a.next()?.expect_primitive()?).ok()?;
        let mut values = Vec::new();
        for v in a.next()?.expect_constructed()? {
            match v.payload {
                PL::P(bytes) => values.push(bytes),
                PL::C(_) => return None,
            }
        }
        out.push((name, values));
    }
    Some(out)
}

/// Splits an RFC 4514 DN into the type and (unescaped) value of its first RDN and the rest
/// (the parent's DN, "" at the top). Multi-valued and hex-encoded RDNs are refused.
fn split_dn(dn: &str) -> Result<(String, String, &str), Error> {
    let unusable = |why: &str| Error::Unusable(format!("DN {dn:?}: {why}"));
    let bytes = dn.as_bytes();
    let mut i = 0;
    let mut end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => {
                end = i;
                break;
            }
            b'+' => return Err(unusable("multi-valued RDNs are not supported")),
            _ => i += 1,
        }
    }
    let rdn = &dn[..end.min(dn.len())];
    let parent = dn.get(end + 1..).unwrap_or("").trim();
    let (t, v) = rdn
        .split_once('=')
        .ok_or_else(|| unusable("an RDN without '='"))?;
    let v = v.trim();
    if v.starts_with('#') {
        return Err(unusable("hex-encoded RDN values are not supported"));
    }
    let mut value = Vec::with_capacity(v.len());
    let vb = v.as_bytes();
    let mut j = 0;
    while j < vb.len() {
        if vb[j] == b'\\' {
            let next = vb
                .get(j + 1)
                .copied()
                .ok_or_else(|| unusable("a trailing '\\'"))?;
            let hex = vb
                .get(j + 1..j + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    value.push(b);
                    j += 3;
                }
                None => {
                    value.push(next);
                    j += 2;
                }
            }
        } else {
            value.push(vb[j]);
            j += 1;
        }
    }
    let value = String::from_utf8(value).map_err(|_| unusable("an RDN value that is not UTF-8"))?;
    Ok((t.trim().to_owned(), value, parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_split_into_rdn_and_parent() {
        let (t, v, p) =
            split_dn("CN=TEST AC IGC-SANTE,OU=0002 187512751,O=ASIP-SANTE,C=FR").expect("parses");
        assert_eq!(
            (t.as_str(), v.as_str(), p),
            (
                "CN",
                "TEST AC IGC-SANTE",
                "OU=0002 187512751,O=ASIP-SANTE,C=FR"
            )
        );
        let (t, v, p) = split_dn("cn=A\\, B\\2C C,c=FR").expect("parses");
        assert_eq!((t.as_str(), v.as_str(), p), ("cn", "A, B, C", "c=FR"));
        let (t, v, p) = split_dn("c=FR").expect("parses");
        assert_eq!((t.as_str(), v.as_str(), p), ("c", "FR", ""));
        assert!(split_dn("cn=a+sn=b,c=FR").is_err());
        assert!(split_dn("nonsense").is_err());
    }

    #[test]
    fn default_dn_is_rfc4514_most_significant_last() {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/golden-pki/ca.pem"
        ))
        .expect("CA");
        let cert = openssl::x509::X509::from_pem(&der).expect("PEM");
        let subject = cert.subject_name().to_der().expect("DER");
        let dn = default_dn(&subject).expect("decodes");
        let first = cert
            .subject_name()
            .entries()
            .next()
            .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
            .expect("an RDN");
        assert!(
            dn.ends_with(&first),
            "{dn} ends with the most significant RDN {first}"
        );
        assert!(dn.contains('='));
    }
}
