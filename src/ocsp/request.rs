//! Reading an OCSP request: DER from a POST body, or the base64 path segment of a GET
//! (RFC 6960 Appendix A.1, RFC 9919 §3), as real clients send it.

use base64::Engine;
use der::Decode;
use der::asn1::OctetStringRef;

use super::Error;
use super::der_types::{CertIdDer, OcspRequestDer};
use crate::pki::HashAlg;

/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 9654).
pub const NONCE_OID: const_oid::ObjectIdentifier = const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;

/// Nonce lengths RFC 9654 §2.1 allows (1 to 128 octets).
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 1..=128;

/// One CertID of a request, classified.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    /// The CertID as sent, echoed in the answer.
    pub cert_id: CertIdDer<'a>,
    /// Its hash algorithm.
    pub alg: HashAlg,
    /// Which encoding of the hash algorithm it used: [`HashAlg::index`], plus 4 when the
    /// AlgorithmIdentifier has no parameters instead of NULL. With the CA and the serial, this
    /// fixes the CertID bytes, so it is part of every cache key.
    pub variant: u8,
}

impl Query<'_> {
    /// Content octets of the serial INTEGER, as sent.
    pub fn serial_content(&self) -> &[u8] {
        self.cert_id.serial_number.as_bytes()
    }
}

/// A parsed request.
#[derive(Clone, Debug)]
pub struct ParsedRequest<'a> {
    /// The CertIDs, in request order (at least one).
    pub queries: Vec<Query<'a>>,
    /// The nonce extension's extnValue as sent (an OCTET STRING wrapping 1..=128 octets), to echo.
    pub nonce: Option<&'a [u8]>,
}

/// Most CertIDs answered in one request.
pub const MAX_CERT_IDS: usize = 64;

/// Parses a DER OCSPRequest.
pub fn parse(der: &[u8]) -> Result<ParsedRequest<'_>, Error> {
    if der.is_empty() {
        return Err(Error::Malformed("empty request".into()));
    }
    let req = OcspRequestDer::from_der(der)
        .map_err(|e| Error::Malformed(format!("not a DER OCSPRequest: {e}")))?;
    let tbs = req.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err(Error::Malformed("unsupported request version".into()));
    }
    if tbs.request_list.is_empty() {
        return Err(Error::Malformed("requestList is empty".into()));
    }
    if tbs.request_list.len() > MAX_CERT_IDS {
        return Err(Error::Malformed(format!(
            "more than {MAX_CERT_IDS} CertIDs"
        )));
    }
    let mut queries = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        let cert_id = r.req_cert;
        let alg = HashAlg::from_oid(&cert_id.hash_algorithm.oid).ok_or_else(|| {
            Error::Malformed(format!(
                "unsupported CertID hash algorithm {}",
                cert_id.hash_algorithm.oid
            ))
        })?;
        let variant = match cert_id.hash_algorithm.parameters {
            None => alg.index() as u8 + 4,
            Some(p) if der::Tagged::tag(&p) == der::Tag::Null && p.value().is_empty() => {
                alg.index() as u8
            }
            Some(_) => {
                return Err(Error::Malformed(
                    "CertID hash algorithm parameters must be NULL or absent".into(),
                ));
            }
        };
        queries.push(Query {
            cert_id,
            alg,
            variant,
        });
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == NONCE_OID {
            if nonce.is_some() {
                return Err(Error::Malformed("nonce extension repeated".into()));
            }
            let value = ext.extn_value.as_bytes();
            // RFC 9654 §2.1: Nonce ::= OCTET STRING(SIZE(1..128)); 0 or more than 128 octets
            // is a malformed request.
            let inner = OctetStringRef::from_der(value)
                .map_err(|_| Error::Malformed("nonce is not a DER OCTET STRING".into()))?;
            if !NONCE_LEN.contains(&inner.as_bytes().len()) {
                return Err(Error::Malformed(format!(
                    "nonce of {} octets (1 to 128 allowed)",
                    inner.as_bytes().len()
                )));
            }
            nonce = Some(value);
        }
    }
    Ok(ParsedRequest { queries, nonce })
}

/// Decodes the path of a GET request (what follows `/ocsp/` or `/`): percent-decoding first
/// (`%2F`, `%2B`, `%3D` as encoders send them), then base64 with or without padding, in the
/// standard or the URL-safe alphabet. Raw `/` and `+` are kept, as many clients do not encode them.
pub fn decode_get_path(path: &str) -> Result<Vec<u8>, Error> {
    const LENIENT: base64::engine::GeneralPurposeConfig =
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true);
    const STANDARD: base64::engine::GeneralPurpose =
        base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: base64::engine::GeneralPurpose =
        base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

    let raw = path.as_bytes();
    let decoded: Vec<u8>;
    // Most clients send plain base64: decode it in place; percent-decode only when needed.
    let text: &[u8] = if raw.iter().any(|&b| b == b'%' || b.is_ascii_whitespace()) {
        decoded = percent_encoding::percent_decode(raw)
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        &decoded
    } else {
        raw
    };
    if text.is_empty() {
        return Err(Error::Malformed("empty GET path".into()));
    }
    let end = text.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1);
    let trimmed = &text[..end];
    STANDARD
        .decode(trimmed)
        .or_else(|_| URL_SAFE.decode(trimmed))
        .map_err(|_| Error::Malformed("GET path is not base64".into()))
}

/// Builds a DER OCSPRequest for `serial` of the CA whose hashes are given (for the demo's
/// printed commands, the load generator and tests). The hash algorithm identifier carries NULL
/// parameters, as OpenSSL writes it.
pub fn build(
    alg: HashAlg,
    name_hash: &[u8],
    key_hash: &[u8],
    serial_content: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, der::Error> {
    use super::der_types::{ExtensionDer, RequestDer, TbsRequestDer};
    use der::Encode;
    use der::asn1::{AnyRef, IntRef};
    let oid = match alg {
        HashAlg::Sha1 => const_oid::db::rfc5912::ID_SHA_1,
        HashAlg::Sha256 => const_oid::db::rfc5912::ID_SHA_256,
        HashAlg::Sha384 => const_oid::db::rfc5912::ID_SHA_384,
        HashAlg::Sha512 => const_oid::db::rfc5912::ID_SHA_512,
    };
    let cert_id = CertIdDer {
        hash_algorithm: spki::AlgorithmIdentifierRef {
            oid,
            parameters: Some(AnyRef::NULL),
        },
        issuer_name_hash: OctetStringRef::new(name_hash)?,
        issuer_key_hash: OctetStringRef::new(key_hash)?,
        serial_number: IntRef::new(serial_content)?,
    };
    let nonce_value = nonce
        .map(|n| OctetStringRef::new(n).and_then(|o| o.to_der()))
        .transpose()?;
    let request_extensions = match &nonce_value {
        Some(v) => Some(vec![ExtensionDer {
            extn_id: NONCE_OID,
            critical: None,
            extn_value: OctetStringRef::new(v)?,
        }]),
        None => None,
    };
    OcspRequestDer {
        tbs_request: TbsRequestDer {
            version: None,
            requestor_name: None,
            request_list: vec![RequestDer {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
}

/// The GET path form of a request: base64 (standard alphabet, padded), percent-encoded as
/// RFC 6960 Appendix A.1 asks (`/`, `+`, `=` escaped).
pub fn to_get_path(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl ocsp -issuer t.pem -serial 0x1000 -no_nonce -reqout`: SHA-1 CertID.
    const REQ: &str = "MEMwQTA/MD0wOzAJBgUrDgMCGgUABBR2s7b0COSn8ABrQwIRWV4XrWGtDwQU81UDdHgxp7nvL2d1+aRqGb2C0O0CAhAA";
    // The same with `-nonce`: a 16-octet nonce.
    const REQ_NONCE: &str = "MGgwZjA/MD0wOzAJBgUrDgMCGgUABBR2s7b0COSn8ABrQwIRWV4XrWGtDwQU81UDdHgxp7nvL2d1+aRqGb2C0O0CAhAAoiMwITAfBgkrBgEFBQcwAQIEEgQQOEChkqmZsJbB+SxqJ6+ixQ==";

    #[test]
    fn get_path_variants_decode_alike() {
        let plain = decode_get_path(REQ).expect("plain");
        let encoded = REQ.replace('+', "%2B").replace('/', "%2F");
        assert_eq!(decode_get_path(&encoded).expect("percent-encoded"), plain);
        let url_safe = REQ.replace('+', "-").replace('/', "_");
        assert_eq!(decode_get_path(&url_safe).expect("url-safe"), plain);
        assert_eq!(decode_get_path(&format!("{REQ}==")).expect("padded"), plain);
        assert!(decode_get_path("").is_err());
        assert!(decode_get_path("!!!").is_err());
    }

    #[test]
    fn parses_a_real_request() {
        let der = decode_get_path(REQ).expect("base64");
        let p = parse(&der).expect("parses");
        assert_eq!(p.queries.len(), 1);
        assert_eq!(p.queries[0].alg, HashAlg::Sha1);
        assert_eq!(p.queries[0].variant, 0);
        assert_eq!(p.queries[0].serial_content(), &[0x10, 0x00]);
        assert!(p.nonce.is_none());
        let der = decode_get_path(REQ_NONCE).expect("base64");
        let p = parse(&der).expect("parses");
        assert_eq!(p.nonce.map(|n| n.len()), Some(18));
    }

    #[test]
    fn refuses_truncations_and_trailing_bytes() {
        let der = decode_get_path(REQ).expect("base64");
        for n in 0..der.len() {
            assert!(parse(&der[..n]).is_err(), "truncated at {n}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert!(parse(&longer).is_err());
    }
}
