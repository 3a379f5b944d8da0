//! PKCS#11 URIs (RFC 7512): which token and which key object a `key`/`ocsp_key` names, e.g.
//! `pkcs11:token=vigie;object=aci-el-org-ocsp;type=private`.
//!
//! This module only parses and displays; finding the token and the object is `pkcs11.rs`'s job.
//! A PIN never comes from a URI here (`pin-value` and `pin-source` are refused): it comes from
//! `[pkcs11] pin_file` or `VIGIE_PKCS11_PIN`.

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// It does not start with `pkcs11:`.
    #[error("not a PKCS#11 URI (RFC 7512 §2.3: it starts with \"pkcs11:\")")]
    Scheme,
    /// A `%` not followed by two hexadecimal digits, or text that is not UTF-8 once decoded.
    #[error("bad percent-encoding in {0:?} (RFC 7512 §2.3: %XX with two hex digits)")]
    Encoding(String),
    /// An attribute given twice (RFC 7512 §2.3: each at most once).
    #[error("attribute {0:?} given twice")]
    Duplicate(String),
    /// An attribute that this responder does not use, or a value it cannot take.
    #[error("{0}")]
    Unsupported(String),
    /// Nothing says which key: neither `object` nor `id`.
    #[error("the URI names no key: give object=… (CKA_LABEL) or id=… (CKA_ID)")]
    NoObject,
}

/// What a PKCS#11 URI says about a key (RFC 7512 §2.3 path attributes).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    /// `token`: CK_TOKEN_INFO label.
    pub token: Option<String>,
    /// `manufacturer`: CK_TOKEN_INFO manufacturerID.
    pub manufacturer: Option<String>,
    /// `serial`: CK_TOKEN_INFO serialNumber.
    pub serial: Option<String>,
    /// `model`: CK_TOKEN_INFO model.
    pub model: Option<String>,
    /// `slot-id`: the slot number (RFC 7512 §2.3, as amended by the p11-kit usage).
    pub slot_id: Option<u64>,
    /// `object`: CKA_LABEL of the key.
    pub object: Option<String>,
    /// `id`: CKA_ID of the key (bytes, percent-encoded in the URI).
    pub id: Option<Vec<u8>>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

/// Characters left as they are when writing a URI (RFC 7512 §2.3 `pk11-v-unres`, minus `;`).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b)
}

fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if unreserved(b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn decode(v: &str) -> Result<Vec<u8>, Error> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Encoding(v.to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_text(v: &str) -> Result<String, Error> {
    String::from_utf8(decode(v)?).map_err(|_| Error::Encoding(v.to_owned()))
}

impl Pkcs11Uri {
    /// Whether `text` is meant as a PKCS#11 URI (rather than a file path).
    pub fn is_uri(text: &str) -> bool {
        text.len() >= 7 && text[..7].eq_ignore_ascii_case("pkcs11:")
    }

    /// Parses an RFC 7512 URI naming a private key.
    pub fn parse(text: &str) -> Result<Pkcs11Uri, Error> {
        if !Pkcs11Uri::is_uri(text) {
            return Err(Error::Scheme);
        }
        let rest = &text[7..];
        // RFC 7512 §2.3: pk11-URI = "pkcs11:" pk11-path [ "?" pk11-query ].
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| Error::Unsupported(format!("{attr:?} is not name=value")))?;
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(Error::Duplicate(name));
            }
            seen.push(name.clone());
            match name.as_str() {
                "token" => uri.token = Some(decode_text(value)?),
                "manufacturer" => uri.manufacturer = Some(decode_text(value)?),
                "serial" => uri.serial = Some(decode_text(value)?),
                "model" => uri.model = Some(decode_text(value)?),
                "object" => uri.object = Some(decode_text(value)?),
                "id" => uri.id = Some(decode(value)?),
                "slot-id" => {
                    uri.slot_id = Some(decode_text(value)?.parse().map_err(|_| {
                        Error::Unsupported(format!("slot-id {value:?} is not a number"))
                    })?);
                }
                "type" => match decode_text(value)?.as_str() {
                    "private" => {}
                    other => {
                        return Err(Error::Unsupported(format!(
                            "type={other}: a signing key is type=private"
                        )));
                    }
                },
                // Library attributes say which module; `[pkcs11] module` says it here.
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {}
                other => {
                    return Err(Error::Unsupported(format!(
                        "unknown attribute {other:?} (RFC 7512 §2.3)"
                    )));
                }
            }
        }
        // Every query attribute is refused; the first one is named.
        if let Some(attr) = query.split('&').find(|a| !a.is_empty()) {
            let name = attr.split_once('=').map_or(attr, |(n, _)| n);
            match name.to_ascii_lowercase().as_str() {
                "pin-value" | "pin-source" => {
                    return Err(Error::Unsupported(format!(
                        "{name} is refused: the PIN comes from [pkcs11] pin_file or \
                         VIGIE_PKCS11_PIN, never from the configuration"
                    )));
                }
                "module-name" | "module-path" => {
                    return Err(Error::Unsupported(format!(
                        "{name}: the module is [pkcs11] module"
                    )));
                }
                other => {
                    return Err(Error::Unsupported(format!(
                        "unknown query attribute {other:?} (RFC 7512 §2.4)"
                    )));
                }
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(Error::NoObject);
        }
        Ok(uri)
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let text = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("model", &self.model),
        ];
        for (name, v) in text {
            if let Some(v) = v {
                parts.push(format!("{name}={}", encode(v.as_bytes())));
            }
        }
        if let Some(s) = self.slot_id {
            parts.push(format!("slot-id={s}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            // RFC 7512 §2.3: id is always shown percent-encoded.
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            parts.push(format!("id={hex}"));
        }
        parts.push("type=private".into());
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7512_examples_parse() {
        let u = Pkcs11Uri::parse("pkcs11:token=vigie;object=aci-el-org-ocsp;type=private")
            .expect("parses");
        assert_eq!(u.token.as_deref(), Some("vigie"));
        assert_eq!(u.object.as_deref(), Some("aci-el-org-ocsp"));
        // RFC 7512 §3 example, with percent-encoded spaces and id bytes.
        let u = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91",
        )
        .expect("parses");
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        let again = Pkcs11Uri::parse(&u.to_string()).expect("own output parses");
        assert_eq!(again, u);
        let u = Pkcs11Uri::parse("PKCS11:id=%01").expect("scheme is case-insensitive");
        assert_eq!(u.id.as_deref(), Some(&[1u8][..]));
    }

    #[test]
    fn bad_uris_are_refused_with_a_reason() {
        assert_eq!(Pkcs11Uri::parse("/etc/key.pem"), Err(Error::Scheme));
        assert_eq!(Pkcs11Uri::parse("pkcs11:token=x"), Err(Error::NoObject));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:object=a%2"),
            Err(Error::Encoding(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:object=a;object=b"),
            Err(Error::Duplicate(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:object=a;type=cert"),
            Err(Error::Unsupported(_))
        ));
        let e = Pkcs11Uri::parse("pkcs11:object=a?pin-value=1234").expect_err("PIN in URI");
        assert!(!e.to_string().contains("1234"), "{e}");
        assert!(e.to_string().contains("pin_file"), "{e}");
    }
}
