//! Checking every answer: an OCSP response is parsed and compared with what the population
//! expects (status, reason, CertID echoed, nonce echoed or absent, validity window), and on a
//! sample its signature and signer chain are verified by openssl; a CRL is parsed and checked
//! (issuer, validity, full vs delta), its signature verified on a sample.
//!
//! The per-response parse is a small DER walker written here (about a microsecond per response,
//! so the generator stays cheap): it is not vigie's code, and the sampled responses are also
//! parsed by the `x509-ocsp` crate and verified by openssl, two implementations neither tool
//! wrote (STYLE.md #11). A wrong answer (a status the server should not have given) is reported
//! apart from an error (the server could not answer: `tryLater`, `internalError`, HTTP 5xx).

use std::collections::HashMap;
use std::sync::Mutex;

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspFlag, OcspResponse};
use openssl::pkey::{PKey, Public};
use openssl::x509::{X509, X509Crl};

use crate::issuers::{Issuer, Issuers};
use crate::population::Expected;

/// What a response turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Correct.
    Ok,
    /// The server answered, but wrongly (wrong status, CertID, nonce, times, bad signature).
    Wrong(String),
    /// The server did not answer properly (tryLater, internalError, HTTP error, undecodable).
    Error(String),
}

/// id-pkix-ocsp-basic, DER content octets.
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce, DER content octets.
const OID_OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// id-ce-deltaCRLIndicator (2.5.29.27).
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";

/// A DER tag-length-value reader over borrowed bytes (single-octet tags, definite lengths).
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one TLV: (tag, content, whole encoding).
    fn tlv(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), String> {
        let bytes = self.rest;
        let (&tag, after) = bytes.split_first().ok_or("truncated DER (tag)")?;
        let (&first, mut after) = after.split_first().ok_or("truncated DER (length)")?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || after.len() < n {
                return Err("bad DER length".into());
            }
            let mut len = 0usize;
            for &b in &after[..n] {
                len = (len << 8) | b as usize;
            }
            after = &after[n..];
            len
        };
        if after.len() < len {
            return Err("truncated DER (content)".into());
        }
        let header = bytes.len() - after.len();
        self.rest = &after[len..];
        Ok((tag, &after[..len], &bytes[..header + len]))
    }

    /// Reads a TLV that must carry `tag`.
    fn take(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        let (t, content, _) = self.tlv()?;
        if t != tag {
            return Err(format!("{what}: tag {t:#04x}, expected {tag:#04x}"));
        }
        Ok(content)
    }
}

/// Seconds since the epoch of a DER GeneralizedTime (`YYYYMMDDHHMMSSZ`) or UTCTime
/// (`YYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5.1 windowing).
pub fn parse_time(tag: u8, text: &[u8]) -> Result<i64, String> {
    let digits = |s: &[u8]| -> Result<i64, String> {
        s.iter().try_fold(0i64, |acc, &b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err("time has a non-digit".to_string())
            }
        })
    };
    let (year, rest) = match tag {
        0x18 if text.len() == 15 => (digits(&text[..4])?, &text[4..]),
        0x17 if text.len() == 13 => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        _ => return Err("time is not a DER UTCTime or GeneralizedTime".into()),
    };
    if rest.last() != Some(&b'Z') {
        return Err("time is not in UTC (Z)".into());
    }
    let (mo, d, h, mi, s) = (
        digits(&rest[0..2])?,
        digits(&rest[2..4])?,
        digits(&rest[4..6])?,
        digits(&rest[6..8])?,
        digits(&rest[8..10])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err("time out of range".into());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// The CertID TLV inside a DER OCSPRequest built by [`vigie::ocsp::request::build`] (the
/// first one), to compare with the response's.
pub fn request_cert_id(request: &[u8]) -> Result<&[u8], String> {
    let ocsp_request = Reader::new(request).take(0x30, "OCSPRequest")?;
    let tbs = Reader::new(ocsp_request).take(0x30, "TBSRequest")?;
    let mut tbs = Reader::new(tbs);
    while matches!(tbs.peek_tag(), Some(0xa0) | Some(0xa1)) {
        tbs.tlv()?;
    }
    let list = tbs.take(0x30, "requestList")?;
    let request = Reader::new(list).take(0x30, "Request")?;
    let (tag, _, whole) = Reader::new(request).tlv()?;
    if tag != 0x30 {
        return Err("CertID is not a SEQUENCE".into());
    }
    Ok(whole)
}

/// What one OCSP answer should be.
#[derive(Debug, Clone, Copy)]
pub struct OcspExpectation<'a> {
    /// The CA asked about.
    pub issuer: &'a Issuer,
    /// The CertID sent (its DER TLV): the answer must echo it byte for byte.
    pub cert_id: &'a [u8],
    /// The status the population expects.
    pub expected: Expected,
    /// The nonce extension's extnValue sent (the DER OCTET STRING), if any.
    pub nonce: Option<&'a [u8]>,
    /// Now, seconds since the epoch.
    pub now: i64,
}

/// Allowed clock difference between the generator and the server, seconds.
const SKEW: i64 = 300;

fn classify_error_status(code: u8) -> Verdict {
    match code {
        // tryLater and internalError: the server could not answer.
        2 => Verdict::Error("OCSP internalError".into()),
        3 => Verdict::Error("OCSP tryLater".into()),
        // malformedRequest, sigRequired, unauthorized: our requests are well formed, for
        // served CAs, unsigned by design: answering so is wrong.
        1 => Verdict::Wrong("OCSP malformedRequest for a valid request".into()),
        5 => Verdict::Wrong("OCSP sigRequired".into()),
        6 => Verdict::Wrong("OCSP unauthorized for a served CA".into()),
        other => Verdict::Wrong(format!("OCSP responseStatus {other}")),
    }
}

/// Checks an OCSP response body against the expectation (no signature check: see
/// [`verify_ocsp_signature`]).
pub fn check_ocsp(body: &[u8], want: &OcspExpectation<'_>) -> Verdict {
    match walk_ocsp(body, want) {
        Ok(v) => v,
        Err(why) => Verdict::Wrong(format!("undecodable OCSP response: {why}")),
    }
}

fn walk_ocsp(body: &[u8], want: &OcspExpectation<'_>) -> Result<Verdict, String> {
    let mut top = Reader::new(body);
    let resp = top.take(0x30, "OCSPResponse")?;
    if !top.is_empty() {
        return Err("bytes after the OCSPResponse".into());
    }
    let mut resp = Reader::new(resp);
    let status = resp.take(0x0a, "responseStatus")?;
    match status {
        [0] => {}
        [code] => return Ok(classify_error_status(*code)),
        _ => return Err("responseStatus is not one octet".into()),
    }
    let bytes = resp.take(0xa0, "responseBytes")?;
    let mut bytes = Reader::new(Reader::new(bytes).take(0x30, "ResponseBytes")?);
    if bytes.take(0x06, "responseType")? != OID_OCSP_BASIC {
        return Err("responseType is not id-pkix-ocsp-basic".into());
    }
    let basic = bytes.take(0x04, "response")?;
    let basic = Reader::new(basic).take(0x30, "BasicOCSPResponse")?;
    let tbs = Reader::new(basic).take(0x30, "ResponseData")?;
    let mut tbs = Reader::new(tbs);
    if tbs.peek_tag() == Some(0xa0) {
        tbs.tlv()?; // version
    }
    let (responder_tag, _, _) = tbs.tlv()?;
    if responder_tag != 0xa1 && responder_tag != 0xa2 {
        return Err("responderID is neither byName nor byKey".into());
    }
    let (tag, produced) = {
        let (t, c, _) = tbs.tlv()?;
        (t, c)
    };
    let produced_at = parse_time(tag, produced)?;
    let responses = tbs.take(0x30, "responses")?;
    let mut response_extensions = None;
    if tbs.peek_tag() == Some(0xa1) {
        response_extensions = Some(tbs.take(0xa1, "responseExtensions")?);
    }
    let mut responses = Reader::new(responses);
    let single = responses.take(0x30, "SingleResponse")?;
    if !responses.is_empty() {
        return Ok(Verdict::Wrong("more than one SingleResponse".into()));
    }
    let mut single = Reader::new(single);
    let (tag, _, cert_id) = single.tlv()?;
    if tag != 0x30 {
        return Err("CertID is not a SEQUENCE".into());
    }
    if cert_id != want.cert_id {
        return Ok(Verdict::Wrong(
            "the CertID answered differs from the CertID asked".into(),
        ));
    }
    let (status_tag, status_content, _) = single.tlv()?;
    let (t, this_update) = {
        let (t, c, _) = single.tlv()?;
        (t, c)
    };
    let this_update = parse_time(t, this_update)?;
    let next_update = if single.peek_tag() == Some(0xa0) {
        let inner = single.take(0xa0, "nextUpdate")?;
        let (t, c, _) = Reader::new(inner).tlv()?;
        Some(parse_time(t, c)?)
    } else {
        None
    };

    // The status.
    let answered = match status_tag {
        0x80 => Expected::Good,
        0xa1 => {
            let mut info = Reader::new(status_content);
            let (t, c, _) = info.tlv()?;
            let revoked_at = parse_time(t, c)?;
            let mut reason = None;
            if info.peek_tag() == Some(0xa0) {
                let r =
                    Reader::new(info.take(0xa0, "revocationReason")?).take(0x0a, "CRLReason")?;
                reason = r.first().copied();
            }
            if want.issuer.unknown_is_revoked
                && want.expected == Expected::Unknown
                && revoked_at == 0
                && reason == Some(6)
            {
                // RFC 6960 §2.2: a never-issued serial answered revoked, certificateHold, 1970.
                Expected::Unknown
            } else {
                Expected::Revoked(reason.filter(|&r| r != 0))
            }
        }
        0x82 => Expected::Unknown,
        other => return Err(format!("certStatus tag {other:#04x}")),
    };
    let right = match want.expected {
        Expected::Changing => matches!(answered, Expected::Good | Expected::Revoked(_)),
        e => e == answered,
    };
    if !right {
        return Ok(Verdict::Wrong(format!(
            "status {} where {} was expected",
            label(answered),
            label(want.expected)
        )));
    }

    // Times (RFC 6960 §4.2.2.1; vigie never serves a response past its nextUpdate).
    if this_update > want.now + SKEW || produced_at > want.now + SKEW {
        return Ok(Verdict::Wrong(
            "thisUpdate or producedAt in the future".into(),
        ));
    }
    match next_update {
        Some(n) if n <= want.now => {
            return Ok(Verdict::Wrong("response past its nextUpdate".into()));
        }
        Some(n) if n <= this_update => {
            return Ok(Verdict::Wrong("nextUpdate not after thisUpdate".into()));
        }
        None => return Ok(Verdict::Wrong("no nextUpdate".into())),
        _ => {}
    }

    // The nonce (RFC 9654 §2.1): echoed when sent to a CA that echoes, never present otherwise.
    let nonce = match response_extensions {
        Some(exts) => find_nonce(exts)?,
        None => None,
    };
    match (want.nonce, nonce) {
        (Some(sent), Some(got)) if sent != got => {
            return Ok(Verdict::Wrong(
                "nonce echoed differs from the nonce sent".into(),
            ));
        }
        (Some(_), None) if want.issuer.echoes_nonce => {
            return Ok(Verdict::Wrong("nonce not echoed".into()));
        }
        (None, Some(_)) => {
            return Ok(Verdict::Wrong(
                "a nonce in the answer to a request without one".into(),
            ));
        }
        _ => {}
    }
    Ok(Verdict::Ok)
}

fn find_nonce(exts: &[u8]) -> Result<Option<&[u8]>, String> {
    let list = Reader::new(exts).take(0x30, "Extensions")?;
    let mut list = Reader::new(list);
    while !list.is_empty() {
        let mut ext = Reader::new(list.take(0x30, "Extension")?);
        let oid = ext.take(0x06, "extnID")?;
        if ext.peek_tag() == Some(0x01) {
            ext.tlv()?;
        }
        let value = ext.take(0x04, "extnValue")?;
        if oid == OID_OCSP_NONCE {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// A status's name.
pub fn label(e: Expected) -> &'static str {
    match e {
        Expected::Good => "good",
        Expected::Revoked(_) => "revoked",
        Expected::Unknown => "unknown",
        Expected::Changing => "good-or-revoked",
    }
}

/// The parts of a BasicOCSPResponse a signature check needs.
struct SignedParts<'a> {
    tbs: &'a [u8],
    algorithm_oid: &'a [u8],
    signature: &'a [u8],
    first_cert: Option<&'a [u8]>,
}

fn signed_parts(body: &[u8]) -> Result<SignedParts<'_>, String> {
    let resp = Reader::new(body).take(0x30, "OCSPResponse")?;
    let mut resp = Reader::new(resp);
    if resp.take(0x0a, "responseStatus")? != [0] {
        return Err("not a successful response".into());
    }
    let bytes = resp.take(0xa0, "responseBytes")?;
    let mut bytes = Reader::new(Reader::new(bytes).take(0x30, "ResponseBytes")?);
    bytes.take(0x06, "responseType")?;
    let basic = Reader::new(bytes.take(0x04, "response")?).take(0x30, "BasicOCSPResponse")?;
    let mut basic = Reader::new(basic);
    let (tag, _, tbs) = basic.tlv()?;
    if tag != 0x30 {
        return Err("tbsResponseData is not a SEQUENCE".into());
    }
    let alg = basic.take(0x30, "signatureAlgorithm")?;
    let algorithm_oid = Reader::new(alg).take(0x06, "algorithm")?;
    let bits = basic.take(0x03, "signature")?;
    let signature = match bits.split_first() {
        Some((0, sig)) => sig,
        _ => return Err("signature BIT STRING with unused bits".into()),
    };
    let first_cert = if basic.peek_tag() == Some(0xa0) {
        let certs = Reader::new(basic.take(0xa0, "certs")?).take(0x30, "certs")?;
        let (_, _, cert) = Reader::new(certs).tlv()?;
        Some(cert)
    } else {
        None
    };
    Ok(SignedParts {
        tbs,
        algorithm_oid,
        signature,
        first_cert,
    })
}

/// The digest of a signature algorithm OID (RSA PKCS#1 v1.5 and ECDSA with SHA-2).
fn digest_of(oid: &[u8]) -> Option<MessageDigest> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    match oid {
        [rsa @ .., 11] if rsa == RSA => Some(MessageDigest::sha256()),
        [rsa @ .., 12] if rsa == RSA => Some(MessageDigest::sha384()),
        [rsa @ .., 13] if rsa == RSA => Some(MessageDigest::sha512()),
        [ec @ .., 2] if ec == ECDSA => Some(MessageDigest::sha256()),
        [ec @ .., 3] if ec == ECDSA => Some(MessageDigest::sha384()),
        [ec @ .., 4] if ec == ECDSA => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// (CA index, DER of the signer certificate included in the response).
type SignerKey = (usize, Vec<u8>);

/// Verifies OCSP response signatures on a sample, cheaply enough to do under load.
///
/// The first response signed by a given signer certificate for a given CA gets openssl's full
/// `OCSP_basic_verify` (signature, signer chain to the demo roots, signer authorised for that
/// CA: RFC 6960 §4.2.2.2) — about half a millisecond with OpenSSL 3, mostly certificate
/// decoding. Its public key is then kept, and later responses carrying the same certificate
/// byte for byte get their signature verified with it (openssl `EVP_DigestVerify`, tens of
/// microseconds). Every sampled response is also parsed by the `x509-ocsp` crate.
pub struct SignatureVerifier {
    trusted: Mutex<HashMap<SignerKey, Result<PKey<Public>, String>>>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier").finish_non_exhaustive()
    }
}

impl Default for SignatureVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl SignatureVerifier {
    /// An empty cache.
    pub fn new() -> Self {
        SignatureVerifier {
            trusted: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `body`, an answer about a certificate of CA number `ca` of `issuers`.
    pub fn verify(&self, body: &[u8], ca: usize, issuers: &Issuers) -> Verdict {
        let parts = match signed_parts(body) {
            Ok(p) => p,
            Err(e) => return Verdict::Wrong(format!("signature check: {e}")),
        };
        let Some(cert) = parts.first_cert else {
            // No certificate: only the CA itself may have signed (RFC 6960 §4.2.2.2).
            return match issuers.cas.get(ca).map(|c| c.cert.public_key()) {
                Some(Ok(k)) => verify_with(&k, &parts),
                _ => Verdict::Wrong("no signer certificate and no CA key".into()),
            };
        };
        let key = (ca, cert.to_vec());
        let cached = self.trusted.lock().ok().and_then(|t| t.get(&key).cloned());
        let pkey = match cached {
            Some(r) => r,
            None => {
                let r = full_verify(body, issuers).and_then(|()| {
                    X509::from_der(cert)
                        .and_then(|c| c.public_key())
                        .map_err(|e| format!("signer certificate: {e}"))
                });
                if let Ok(mut t) = self.trusted.lock() {
                    t.insert(key, r.clone());
                }
                r
            }
        };
        let v = match pkey {
            Ok(k) => verify_with(&k, &parts),
            Err(e) => Verdict::Wrong(e),
        };
        if v != Verdict::Ok {
            return v;
        }
        parse_with_x509_ocsp(body)
    }
}

fn verify_with(key: &PKey<Public>, parts: &SignedParts<'_>) -> Verdict {
    let Some(md) = digest_of(parts.algorithm_oid) else {
        return Verdict::Wrong("unexpected signature algorithm".into());
    };
    let ok = openssl::sign::Verifier::new(md, key)
        .and_then(|mut v| v.verify_oneshot(parts.signature, parts.tbs))
        .unwrap_or(false);
    if ok {
        Verdict::Ok
    } else {
        Verdict::Wrong("OCSP response signature does not verify".into())
    }
}

/// openssl's full check: signature, signer chain to the roots, signer authorised for the CA.
fn full_verify(body: &[u8], issuers: &Issuers) -> Result<(), String> {
    let resp = OcspResponse::from_der(body)
        .map_err(|e| format!("openssl cannot parse the response: {e}"))?;
    let basic = resp
        .basic()
        .map_err(|e| format!("openssl: not a basic response: {e}"))?;
    basic
        .verify(&issuers.chain, &issuers.roots, OcspFlag::empty())
        .map_err(|e| format!("signature or signer chain rejected by openssl: {e}"))
}

fn parse_with_x509_ocsp(body: &[u8]) -> Verdict {
    use der::Decode;
    let parsed = match x509_ocsp::OcspResponse::from_der(body) {
        Ok(p) => p,
        Err(e) => return Verdict::Wrong(format!("x509-ocsp cannot parse the response: {e}")),
    };
    let Some(rb) = parsed.response_bytes else {
        return Verdict::Wrong("x509-ocsp: no responseBytes".into());
    };
    match x509_ocsp::BasicOcspResponse::from_der(rb.response.as_bytes()) {
        Ok(b) if b.tbs_response_data.responses.len() == 1 => Verdict::Ok,
        Ok(_) => Verdict::Wrong("x509-ocsp: not exactly one SingleResponse".into()),
        Err(e) => Verdict::Wrong(format!("x509-ocsp cannot parse the basic response: {e}")),
    }
}

/// Checks a DER CRL of `issuer`: it parses, names the CA as issuer, is current (thisUpdate not
/// in the future, nextUpdate in the future), and carries a DeltaCRLIndicator exactly when it is
/// a delta. With `verify`, its signature is checked with the CA's public key by openssl.
pub fn check_crl(body: &[u8], issuer: &Issuer, delta: bool, now: i64, verify: bool) -> Verdict {
    use der::{Decode, Encode};
    let crl = match x509_cert::crl::CertificateList::from_der(body) {
        Ok(c) => c,
        Err(e) => return Verdict::Wrong(format!("CRL does not parse: {e}")),
    };
    let tbs = &crl.tbs_cert_list;
    let issuer_der = tbs.issuer.to_der().unwrap_or_default();
    let ca_subject = issuer.cert.subject_name().to_der().unwrap_or_default();
    if issuer_der != ca_subject {
        return Verdict::Wrong("CRL issuer is not the CA".into());
    }
    let this_update = tbs.this_update.to_unix_duration().as_secs() as i64;
    if this_update > now + SKEW {
        return Verdict::Wrong("CRL thisUpdate in the future".into());
    }
    match tbs.next_update {
        Some(n) if (n.to_unix_duration().as_secs() as i64) <= now => {
            return Verdict::Wrong("CRL past its nextUpdate".into());
        }
        None => return Verdict::Wrong("CRL without nextUpdate".into()),
        _ => {}
    }
    let has_delta_indicator = tbs
        .crl_extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id.to_string() == OID_DELTA_CRL_INDICATOR && e.critical);
    if has_delta_indicator != delta {
        return Verdict::Wrong(if delta {
            "delta CRL without a critical DeltaCRLIndicator".into()
        } else {
            "full CRL with a DeltaCRLIndicator".into()
        });
    }
    if verify {
        let ok = X509Crl::from_der(body)
            .and_then(|c| issuer.cert.public_key().and_then(|k| c.verify(&k)))
            .unwrap_or(false);
        if !ok {
            return Verdict::Wrong("CRL signature rejected by openssl".into());
        }
    }
    Verdict::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time(0x18, b"19700101000000Z"), Ok(0));
        assert_eq!(parse_time(0x18, b"20000301000000Z"), Ok(951_868_800));
        assert_eq!(parse_time(0x17, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(parse_time(0x17, b"500101000000Z"), Ok(-631_152_000));
        assert!(parse_time(0x18, b"2000030100000Z").is_err());
        assert!(parse_time(0x18, b"20001301000000Z").is_err());
    }

    #[test]
    fn reader_refuses_truncation() {
        let mut r = Reader::new(&[0x30, 0x03, 0x02, 0x01]);
        assert!(r.tlv().is_err());
        let mut r = Reader::new(&[0x30, 0x82, 0x00]);
        assert!(r.tlv().is_err());
        let mut r = Reader::new(&[0x04, 0x81, 0x01, 0xaa]);
        assert_eq!(r.tlv().map(|t| t.1.to_vec()), Ok(vec![0xaa]));
    }

    #[test]
    fn cert_id_is_found_in_built_requests() {
        use vigie::pki::HashAlg;
        let name = [1u8; 20];
        let key = [2u8; 20];
        for nonce in [None, Some(&[7u8; 16][..])] {
            let req = vigie::ocsp::request::build(HashAlg::Sha1, &name, &key, &[0x10, 0x00], nonce)
                .expect("builds");
            let id = request_cert_id(&req).expect("found");
            assert_eq!(id[0], 0x30);
            assert!(id.ends_with(&[0x02, 0x02, 0x10, 0x00]));
            assert!(id.windows(20).any(|w| w == name));
        }
    }
}
