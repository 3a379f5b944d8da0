//! What the CA sends, turned into [`Change`]s: revocations as JSON (one object, an array, or
//! NDJSON), certificates as PEM (`application/pem-certificate-chain`), DER
//! (`application/pkix-cert`) or JSON (`{"certificates": ["-----BEGIN CERTIFICATE-----…"]}`).
//!
//! Every refusal names what is at fault: the field (`revocations[3].serial`), the item
//! (`certificates[1]`) or the body. Syntax errors (JSON, PEM armour, base64) are
//! [`Error::Malformed`]; well-formed values that cannot be accepted are [`Error::Invalid`].
//! Which CA signed a certificate is [`super::certificate`]'s business; whether a change is
//! allowed is [`super::apply`]'s.

use base64::Engine;
use serde_json::{Map, Value};

use super::{Change, Error, RevocationRequest};
use crate::model::{CaId, RevocationReason, Serial, UnixTime};

/// Most items accepted in one request (a batch is one transaction).
pub const MAX_BATCH_ITEMS: usize = 100_000;

/// A change addressed to one certificate of one CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertChange {
    /// The CA.
    pub ca: CaId,
    /// The certificate's serial.
    pub serial: Serial,
    /// What happens to it.
    pub change: Change,
    /// For a registration from the certificate itself: the distribution point names it carries
    /// (empty: none), counted in the CA's learned CRL scope. `None`: not known.
    pub distribution_points: Option<crate::crl::scope::DpSet>,
}

/// How a request body is encoded, from its `Content-Type` (parameters ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/x-ndjson` (one JSON object per line).
    NdJson,
    /// `application/pem-certificate-chain` (RFC 8555 §9.1): PEM blocks.
    PemChain,
    /// `application/pkix-cert` (RFC 2585): one DER certificate.
    PkixCert,
}

impl BodyFormat {
    /// The format of a `Content-Type` value, `None` when it is none of ours.
    pub fn from_content_type(content_type: &str) -> Option<BodyFormat> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        [
            ("application/json", BodyFormat::Json),
            ("application/x-ndjson", BodyFormat::NdJson),
            ("application/pem-certificate-chain", BodyFormat::PemChain),
            ("application/pkix-cert", BodyFormat::PkixCert),
        ]
        .into_iter()
        .find(|(name, _)| media.eq_ignore_ascii_case(name))
        .map(|(_, f)| f)
    }
}

fn unsupported(content_type: Option<&str>, accepted: &str) -> Error {
    Error::UnsupportedFormat(format!(
        "Content-Type {} is not accepted here; send {accepted}",
        content_type.map_or_else(|| "(none)".to_owned(), |c| format!("{c:?}"))
    ))
}

/// Parses a `POST /v1/revocations` body. `known` says whether a CA is configured. Returns the
/// changes, in order, and whether the body was a batch (an array or NDJSON: errors then name
/// the item, `revocations[i]`).
pub fn revocations(
    content_type: Option<&str>,
    body: &[u8],
    known: impl Fn(&CaId) -> bool,
) -> Result<(Vec<CertChange>, bool), Error> {
    const ACCEPTED: &str = "application/json (an object or an array) or application/x-ndjson";
    let format = content_type.and_then(BodyFormat::from_content_type);
    let (items, batch) = match format {
        Some(BodyFormat::Json) => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => (items, true),
            Ok(item @ Value::Object(_)) => (vec![item], false),
            Ok(_) => {
                return Err(Error::invalid(
                    "revocations",
                    "the body must be a revocation object or an array of them",
                ));
            }
            Err(e) => return Err(Error::Malformed(format!("body is not JSON: {e}"))),
        },
        Some(BodyFormat::NdJson) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Error::Malformed("body is not UTF-8".into()))?;
            let mut items = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let item = serde_json::from_str::<Value>(line)
                    .map_err(|e| Error::Malformed(format!("line {} is not JSON: {e}", n + 1)))?;
                items.push(item);
            }
            (items, true)
        }
        _ => return Err(unsupported(content_type, ACCEPTED)),
    };
    if items.is_empty() {
        return Err(Error::invalid("revocations", "the batch is empty"));
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(Error::invalid(
            "revocations",
            format!("more than {MAX_BATCH_ITEMS} items in one request"),
        ));
    }
    let changes = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let parsed = revocation(item, &known);
            if batch {
                parsed.map_err(|e| e.within(&format!("revocations[{i}]")))
            } else {
                parsed
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((changes, batch))
}

const REVOCATION_FIELDS: [&str; 5] = ["ca", "serial", "reason", "revoked_at", "invalidity_date"];

/// One revocation object.
fn revocation(item: &Value, known: &impl Fn(&CaId) -> bool) -> Result<CertChange, Error> {
    let Value::Object(map) = item else {
        return Err(Error::invalid("", "must be a JSON object"));
    };
    if let Some(other) = map
        .keys()
        .find(|k| !REVOCATION_FIELDS.contains(&k.as_str()))
    {
        return Err(Error::invalid(
            other.as_str(),
            format!("unknown field; expected {}", REVOCATION_FIELDS.join(", ")),
        ));
    }
    let ca = ca_field(map, "ca", known)?;
    let serial = serial_field(map, "serial")?;
    let reason = match optional_str(map, "reason")? {
        None => None,
        Some(name) => Some(RevocationReason::from_name(name).map_err(|_| {
            let hint = if name.eq_ignore_ascii_case("removeFromCRL") {
                "removeFromCRL is not a revocation: DELETE /v1/revocations/{ca}/{serial} releases a certificateHold".to_owned()
            } else {
                format!(
                    "{name:?} is not an RFC 5280 reason; expected one of {}",
                    RevocationReason::ALL.map(RevocationReason::name).join(", ")
                )
            };
            Error::invalid("reason", hint)
        })?),
    };
    let revoked_at = optional_str(map, "revoked_at")?
        .map(|s| parse_rfc3339("revoked_at", s))
        .transpose()?;
    let invalidity_date = optional_str(map, "invalidity_date")?
        .map(|s| parse_rfc3339("invalidity_date", s))
        .transpose()?;
    Ok(CertChange {
        ca,
        serial,
        change: Change::Revoke(RevocationRequest {
            revoked_at,
            reason,
            invalidity_date,
        }),
        distribution_points: None,
    })
}

fn required_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, Error> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(Error::invalid(field, "is required")),
        Some(_) => Err(Error::invalid(field, "must be a string")),
    }
}

fn optional_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Error> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(Error::invalid(field, "must be a string")),
    }
}

fn ca_field(
    map: &Map<String, Value>,
    field: &str,
    known: &impl Fn(&CaId) -> bool,
) -> Result<CaId, Error> {
    let id = required_str(map, field)?;
    match CaId::new(id) {
        Ok(ca) if known(&ca) => Ok(ca),
        _ => Err(Error::invalid(
            field,
            format!("no CA with id {id:?} is configured"),
        )),
    }
}

fn serial_field(map: &Map<String, Value>, field: &str) -> Result<Serial, Error> {
    let hex = match map.get(field) {
        Some(Value::Number(_)) => {
            return Err(Error::invalid(
                field,
                "must be a string of hexadecimal digits, not a JSON number",
            ));
        }
        _ => required_str(map, field)?,
    };
    parse_serial(field, hex)
}

/// A serial in hexadecimal (as in a path or a JSON field), refused with the field's name.
pub fn parse_serial(field: &str, hex: &str) -> Result<Serial, Error> {
    Serial::from_hex(hex).map_err(|e| {
        let why = match e {
            crate::model::ModelError::BadSerial(_, why) => why,
            _ => "not a serial number",
        };
        Error::invalid(
            field,
            format!("{hex:?}: {why} (expected 1 to 20 octets in hexadecimal)"),
        )
    })
}

/// Parses an RFC 3339 date-time (`2026-11-30T12:00:00Z`, `2026-11-30T13:00:00.5+01:00`).
/// Fractions of a second are dropped; a time without its offset is refused (ambiguous).
pub fn parse_rfc3339(field: &str, s: &str) -> Result<UnixTime, Error> {
    let bad = || {
        Error::invalid(
            field,
            format!("{s:?} is not an RFC 3339 date-time such as \"2026-11-30T12:00:00Z\""),
        )
    };
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, Error> {
        let part = b.get(range).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| -> Result<(), Error> {
        if b.get(i).is_some_and(|x| c.contains(x)) {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(13, b":")?;
    sep(16, b":")?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            sep(i + 3, b":")?;
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return Err(bad()),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // RFC 3339 §5.6 allows second 60 (leap second): counted as :59.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let t = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second.min(59)
        - offset;
    if t < 0 {
        return Err(Error::invalid(field, format!("{s:?} is before 1970")));
    }
    Ok(UnixTime(t))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a `POST /v1/certificates` body into DER certificates, in order. Does not look inside
/// them: [`super::certificate::identify`] does.
pub fn certificates(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    const ACCEPTED: &str = "application/pem-certificate-chain, application/pkix-cert or application/json ({\"certificates\": [\"-----BEGIN CERTIFICATE-----…\"]})";
    let ders = match content_type.and_then(BodyFormat::from_content_type) {
        Some(BodyFormat::PkixCert) => {
            if body.is_empty() {
                return Err(Error::Malformed("the body is empty".into()));
            }
            vec![body.to_vec()]
        }
        Some(BodyFormat::PemChain) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Error::Malformed("a PEM body must be text (UTF-8)".into()))?;
            let blocks = pem_blocks(text)?;
            if blocks.is_empty() {
                return Err(Error::Malformed(
                    "no \"-----BEGIN CERTIFICATE-----\" block in the body".into(),
                ));
            }
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, (label, der))| {
                    if label == "CERTIFICATE" {
                        Ok(der)
                    } else {
                        Err(Error::invalid(
                            format!("certificates[{i}]"),
                            format!("a PEM block labelled {label:?} is not a CERTIFICATE"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?
        }
        Some(BodyFormat::Json) => json_certificates(body)?,
        _ => return Err(unsupported(content_type, ACCEPTED)),
    };
    if ders.len() > MAX_BATCH_ITEMS {
        return Err(Error::invalid(
            "certificates",
            format!("more than {MAX_BATCH_ITEMS} certificates in one request"),
        ));
    }
    Ok(ders)
}

fn json_certificates(body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Malformed(format!("body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::invalid(
            "certificates",
            "the body must be an object {\"certificates\": [...]}",
        ));
    };
    if let Some(other) = map.keys().find(|k| k.as_str() != "certificates") {
        return Err(Error::invalid(
            other.as_str(),
            "unknown field; expected certificates",
        ));
    }
    let list = match map.get("certificates") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => return Err(Error::invalid("certificates", "the list is empty")),
        None | Some(Value::Null) => return Err(Error::invalid("certificates", "is required")),
        Some(_) => {
            return Err(Error::invalid(
                "certificates",
                "must be an array of PEM strings",
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("certificates[{i}]");
            let Value::String(s) = v else {
                return Err(Error::invalid(
                    field,
                    "must be a string (PEM or base64 DER)",
                ));
            };
            if s.contains("-----BEGIN") {
                // The JSON parsed: a PEM string that does not decode is this field's fault
                // (422 naming it), not an unreadable body (400).
                let mut blocks = pem_blocks(s).map_err(|e| match e {
                    Error::Malformed(m) => Error::invalid(field.clone(), m),
                    other => other.within(&field),
                })?;
                match (blocks.pop(), blocks.is_empty()) {
                    (Some((label, der)), true) if label == "CERTIFICATE" => Ok(der),
                    (Some((label, _)), true) => Err(Error::invalid(
                        field,
                        format!("a PEM block labelled {label:?} is not a CERTIFICATE"),
                    )),
                    _ => Err(Error::invalid(
                        field,
                        "must hold exactly one PEM certificate",
                    )),
                }
            } else {
                decode_base64(s).ok_or_else(|| {
                    Error::invalid(field, "is neither a PEM certificate nor base64 DER")
                })
            }
        })
        .collect()
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
        .filter(|d| !d.is_empty())
}

/// The PEM blocks of `text` (RFC 7468): (label, decoded bytes). Text between blocks is ignored.
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let label_end = after.find("-----").ok_or_else(|| {
            Error::Malformed(format!(
                "PEM block {} has no end of its BEGIN line",
                out.len()
            ))
        })?;
        let label = &after[..label_end];
        let content = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = content.find(&end_marker).ok_or_else(|| {
            Error::Malformed(format!(
                "PEM block {} ({label}) has no \"{end_marker}\" line",
                out.len()
            ))
        })?;
        let der = decode_base64(&content[..end]).ok_or_else(|| {
            Error::Malformed(format!(
                "PEM block {} ({label}) is not valid base64",
                out.len()
            ))
        })?;
        out.push((label.to_owned(), der));
        rest = &content[end + end_marker.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(_: &CaId) -> bool {
        true
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let t = |s| parse_rfc3339("t", s);
        assert_eq!(t("1970-01-01T00:00:00Z").expect("ok"), UnixTime(0));
        assert_eq!(
            t("2026-11-30T12:00:00Z").expect("ok"),
            UnixTime::parse_rfc3339("2026-11-30T12:00:00Z").expect("ok")
        );
        assert_eq!(
            t("2026-11-30T13:00:00.123+01:00").expect("ok"),
            t("2026-11-30T12:00:00Z").expect("ok")
        );
        assert_eq!(
            t("2024-02-29t23:59:60-00:30").expect("ok"),
            t("2024-03-01T00:29:59Z").expect("ok")
        );
        for bad in [
            "2026-11-30T12:00:00",
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-30T12:00:00+0100",
            "2026-11-30T12:00:00.Z",
            "1969-12-31T23:59:59Z",
            "2026-11-30T12:00:00Zjunk",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_object_or_a_batch() {
        let one = br#"{"ca":"aci-el-org","serial":"1A2B","reason":"keyCompromise","revoked_at":"2026-01-01T00:00:00Z","invalidity_date":"2025-12-01T00:00:00Z"}"#;
        let (changes, batch) = revocations(Some("application/json"), one, known).expect("parses");
        assert!(!batch);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].serial.to_hex(), "1a2b");
        let Change::Revoke(r) = &changes[0].change else {
            panic!("a revocation")
        };
        assert_eq!(r.reason, Some(RevocationReason::KeyCompromise));
        assert!(r.invalidity_date.is_some() && r.revoked_at.is_some());

        let batch = br#"[{"ca":"a","serial":"01"},{"ca":"a","serial":"zz"}]"#;
        let err = revocations(Some("application/json; charset=utf-8"), batch, known)
            .expect_err("bad serial");
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "revocations[1].serial"),
            "{err}"
        );
        let nd = b"{\"ca\":\"a\",\"serial\":\"01\"}\n\n{\"ca\":\"a\",\"serial\":\"02\",\"reason\":null}\n";
        assert_eq!(
            revocations(Some("application/x-ndjson"), nd, known)
                .expect("ndjson")
                .0
                .len(),
            2
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let field_of =
            |body: &str| match revocations(Some("application/json"), body.as_bytes(), |c: &CaId| {
                c.as_str() == "a"
            }) {
                Err(Error::Invalid { field, .. }) => field,
                other => panic!("{body}: {other:?}"),
            };
        assert_eq!(field_of(r#"{"serial":"01"}"#), "ca");
        assert_eq!(field_of(r#"{"ca":"b","serial":"01"}"#), "ca");
        assert_eq!(field_of(r#"{"ca":"a","serial":1}"#), "serial");
        assert_eq!(field_of(r#"{"ca":"a","serial":"00"}"#), "serial");
        assert_eq!(
            field_of(r#"{"ca":"a","serial":"01","reason":"removeFromCRL"}"#),
            "reason"
        );
        assert_eq!(
            field_of(r#"{"ca":"a","serial":"01","reason":"bored"}"#),
            "reason"
        );
        assert_eq!(
            field_of(r#"{"ca":"a","serial":"01","revoked_at":"yesterday"}"#),
            "revoked_at"
        );
        assert_eq!(
            field_of(r#"{"ca":"a","serial":"01","invalidityDate":"x"}"#),
            "invalidityDate"
        );
        assert_eq!(field_of("[]"), "revocations");
        assert_eq!(field_of("[1]"), "revocations[0]");
        assert!(matches!(
            revocations(Some("application/json"), b"{", known),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            revocations(Some("application/x-www-form-urlencoded"), b"{}", known),
            Err(Error::UnsupportedFormat(_))
        ));
        assert!(matches!(
            revocations(None, b"{}", known),
            Err(Error::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn pem_blocks_and_json_certificates() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\ntext\n-----BEGIN CERTIFICATE-----\r\nMAMC\r\nAQI=\r\n-----END CERTIFICATE-----\n";
        let ders = certificates(Some("application/pem-certificate-chain"), pem.as_bytes())
            .expect("parses");
        assert_eq!(ders, vec![vec![0x30, 3, 2, 1, 1], vec![0x30, 3, 2, 1, 2]]);
        let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            certificates(Some("application/pem-certificate-chain"), key.as_bytes()),
            Err(Error::Invalid { field, .. }) if field == "certificates[0]"
        ));
        assert!(matches!(
            certificates(
                Some("application/pem-certificate-chain"),
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"
            ),
            Err(Error::Malformed(_))
        ));
        let json = serde_json::json!({"certificates": [pem.split("text").next().expect("first"), "MAMCAQI="]});
        let ders =
            certificates(Some("application/json"), json.to_string().as_bytes()).expect("parses");
        assert_eq!(ders.len(), 2);
        let json = serde_json::json!({"certificates": [pem]});
        assert!(matches!(
            certificates(Some("application/json"), json.to_string().as_bytes()),
            Err(Error::Invalid { field, .. }) if field == "certificates[0]"
        ));
        assert!(matches!(
            certificates(Some("text/plain"), b"x"),
            Err(Error::UnsupportedFormat(_))
        ));
    }

    /// Found by schemathesis: a JSON body that parses, holding a PEM string whose base64 does
    /// not decode, was a 400 (unreadable body) instead of a 422 naming the item.
    #[test]
    fn a_broken_pem_string_in_json_is_a_field_error() {
        let json = serde_json::json!({"certificates": [
            "-----BEGIN CERTIFICATE-----\nMIIF\u{2026}\n-----END CERTIFICATE-----\n"
        ]});
        assert!(matches!(
            certificates(Some("application/json"), json.to_string().as_bytes()),
            Err(Error::Invalid { field, .. }) if field == "certificates[0]"
        ));
    }
}
