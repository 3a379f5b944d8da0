//! Distinguished names compared as names, not as strings (RFC 4514 §2–3, RFC 4517 §4.2.15
//! distinguishedNameMatch, with caseIgnoreMatch for attribute values):
//!
//! - an RFC 4514 string from the configuration (`CN=CA operator,O=ASIP-SANTE`, attribute types
//!   by name or dotted OID, `\,` and `\2C` escapes, `#`-hex values) and a certificate's subject
//!   (DER) are both brought to a [`CanonicalName`]: RDNs in DER order (RFC 4514 writes them
//!   last first), each RDN's attributes as a set, each value as its characters with case
//!   folded and insignificant spaces removed (RFC 4518 §2.6.1, simplified to Unicode lowercase
//!   and whitespace collapsing);
//! - [`rfc4514`] writes a subject for logs and the audit trail, escaped so that no byte from
//!   a certificate can forge a log line or hide behind control or bidirectional characters.

use std::fmt::Write as _;

use const_oid::ObjectIdentifier;
use const_oid::db::DB;
use der::asn1::Any;
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

use super::Error;

/// A distinguished name in canonical form (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CanonicalName(Vec<Vec<(ObjectIdentifier, String)>>);

impl CanonicalName {
    /// Parses an RFC 4514 string. Spaces around the `,` and `+` separators are tolerated
    /// (values are compared without leading, trailing or repeated spaces anyway).
    pub fn parse(s: &str) -> Result<CanonicalName, Error> {
        let bad = |why: &str| Error::BadName(s.to_owned(), why.to_owned());
        if s.trim().is_empty() {
            return Err(bad("empty"));
        }
        let mut rdns = Vec::new();
        for rdn in split_unescaped(s, b',') {
            let mut set = Vec::new();
            for atv in split_unescaped(rdn, b'+') {
                let (ty, value) = atv
                    .split_once('=')
                    .ok_or_else(|| bad(&format!("{:?} has no '='", atv.trim())))?;
                let ty = ty.trim();
                let oid = if ty.starts_with(|c: char| c.is_ascii_digit()) {
                    ObjectIdentifier::new(ty).map_err(|_| bad(&format!("{ty:?} is not an OID")))?
                } else {
                    *DB.by_name(ty)
                        .ok_or_else(|| bad(&format!("unknown attribute type {ty:?}")))?
                };
                let value = trim_escaped(value);
                let text = match value.strip_prefix('#') {
                    Some(hexed) => {
                        let der = hex::decode(hexed)
                            .map_err(|_| bad(&format!("{value:?}: bad hex value")))?;
                        let any = Any::from_der(&der)
                            .map_err(|_| bad(&format!("{value:?}: not a DER value")))?;
                        value_text(&any)
                    }
                    None => unescape(value).map_err(|why| bad(&why))?,
                };
                set.push((oid, fold(&text)));
            }
            set.sort();
            rdns.push(set);
        }
        // RFC 4514 §2.1: the string starts with the last RDN of the sequence.
        rdns.reverse();
        Ok(CanonicalName(rdns))
    }

    /// The canonical form of a DER-encoded Name (a certificate's subject).
    pub fn from_der(name_der: &[u8]) -> Result<CanonicalName, Error> {
        let name = Name::from_der(name_der).map_err(|e| Error::BadSubject(e.to_string()))?;
        Ok(CanonicalName(
            name.0
                .iter()
                .map(|rdn| {
                    let mut set: Vec<_> = rdn
                        .0
                        .iter()
                        .map(|atv| (atv.oid, fold(&value_text(&atv.value))))
                        .collect();
                    set.sort();
                    set
                })
                .collect(),
        ))
    }
}

/// The escaped RFC 4514 string of a DER-encoded Name, for logs and the audit trail. Values that
/// are not character strings are written `#` + hex of their DER (§2.4); `"+,;<>\`, a leading
/// `#` or space and a trailing space are escaped with a backslash, and control, bidirectional
/// and other format characters as `\XX` of their UTF-8 octets. A Name that does not parse is
/// shown as `#` + hex of its DER.
pub fn rfc4514(name_der: &[u8]) -> String {
    let Ok(name) = Name::from_der(name_der) else {
        return format!("#{}", hex::encode(name_der));
    };
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match short_name(&atv.oid) {
                Some(n) => out.push_str(&n.to_ascii_uppercase()),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            match string_value(&atv.value) {
                Some(v) => escape_into(&mut out, &v),
                None => {
                    out.push('#');
                    out.push_str(&hex::encode(atv.value.to_der().unwrap_or_default()));
                }
            }
        }
    }
    out
}

fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    DB.find_names_for_oid(*oid).min_by_key(|n| n.len())
}

fn escape_into(out: &mut String, v: &str) {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_format(c) => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
}

/// Unicode format characters that change how a line displays (bidirectional overrides and
/// isolates, zero-width characters, the BOM).
fn is_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// The characters of a DirectoryString-like value, `None` for other types.
fn string_value(v: &Any) -> Option<String> {
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        // T.61 in theory; in practice Latin-1 (what OpenSSL assumes too).
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// What a value is compared as: its characters, or `#` + hex of its DER.
fn value_text(v: &Any) -> String {
    string_value(v).unwrap_or_else(|| format!("#{}", hex::encode(v.to_der().unwrap_or_default())))
}

/// caseIgnoreMatch, simplified: lowercase, no leading/trailing spaces, inner runs of spaces
/// as one.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Splits at `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == sep => {
                parts.push(&s[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(&s[start.min(s.len())..]);
    parts.into_iter()
}

/// Trims spaces around a value, keeping an escaped trailing space (`\ `).
fn trim_escaped(v: &str) -> &str {
    let start = v.trim_start();
    let trimmed = start.trim_end();
    let backslashes = trimmed.bytes().rev().take_while(|b| *b == b'\\').count();
    if backslashes % 2 == 1 && trimmed.len() < start.len() {
        &start[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

/// Undoes RFC 4514 §3 escapes: `\` + one of `"+,;<>\ #=`, or `\` + two hex digits (an octet
/// of the UTF-8 encoding).
fn unescape(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                let pair = [*h, *l];
                let hexed = std::str::from_utf8(&pair).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(hexed, 16).map_err(|e| e.to_string())?);
                i += 3;
            }
            (Some(c), _) if b"\"+,;<>\\ #=".contains(c) => {
                out.push(*c);
                i += 2;
            }
            _ => return Err(format!("{v:?}: bad escape")),
        }
    }
    String::from_utf8(out).map_err(|_| format!("{v:?}: escapes are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = openssl::x509::X509NameBuilder::new().expect("builder");
        for (k, v) in entries {
            b.append_entry_by_text(k, v).expect("entry");
        }
        b.build().to_der().expect("der")
    }

    #[test]
    fn names_match_as_names_not_strings() {
        let der = subject(&[
            ("C", "FR"),
            ("O", "ASIP-SANTE"),
            ("OU", "0002 187512751"),
            ("CN", "CA Operator, prod"),
        ]);
        let cert = CanonicalName::from_der(&der).expect("parses");
        for s in [
            "CN=CA Operator\\, prod,OU=0002 187512751,O=ASIP-SANTE,C=FR",
            "cn=ca operator\\2C prod, ou=0002  187512751, o=asip-sante, c=fr",
            "commonName=CA Operator\\, prod,2.5.4.11=0002 187512751,O=ASIP-SANTE,C=FR",
            "CN=CA Operator\\, prod,OU=0002 187512751,O=#0c0a415349502d53414e5445,C=FR",
        ] {
            assert_eq!(CanonicalName::parse(s).expect(s), cert, "{s}");
        }
        for s in [
            "C=FR,O=ASIP-SANTE,OU=0002 187512751,CN=CA Operator\\, prod",
            "CN=CA Operator,OU=0002 187512751,O=ASIP-SANTE,C=FR",
            "CN=CA Operator\\, prod,O=ASIP-SANTE,C=FR",
        ] {
            assert_ne!(CanonicalName::parse(s).expect(s), cert, "{s}");
        }
    }

    #[test]
    fn malformed_strings_are_refused() {
        for s in ["", "CN", "XYZZY=1", "CN=a\\", "CN=a\\q", "CN=#zz"] {
            assert!(CanonicalName::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn subjects_are_logged_escaped() {
        let der = subject(&[("O", "ACME"), ("CN", "evil,\nCN=admin\u{202E} ")]);
        let s = rfc4514(&der);
        assert_eq!(s, "CN=evil\\,\\0ACN=admin\\E2\\80\\AE\\ ,O=ACME");
        assert!(!s.contains('\n'));
        // What is written reads back as the same name.
        assert_eq!(
            CanonicalName::parse(&s).expect("round trip"),
            CanonicalName::from_der(&der).expect("der")
        );
        assert_eq!(rfc4514(b"\x30\x01"), "#3001");
    }
}
