//! Entry points for fuzzing: one function per parser that faces untrusted bytes, each taking
//! raw input and checking what must hold whatever the input (no panic; what is accepted is
//! coherent). The cargo-fuzz targets in `fuzz/` and the corpus test (`tests/fuzz_corpus.rs`)
//! call exactly these, so a crash found by fuzzing is replayed by `cargo test`.
//!
//! A broken invariant panics (that is how a fuzzer learns of it); nothing here is called by
//! the service.

use der::{Decode, Encode};

use crate::crl::build::{EntryReason, encode_entry};
use crate::model::{RevocationReason, Serial, UnixTime};
use crate::ocsp::request;

/// A fixed "now" for parsers that bound times by it (2026-01-01T00:00:00Z).
const NOW: UnixTime = UnixTime(1_767_225_600);

/// An OCSP request's DER (RFC 6960 §4.1.1), as a POST body is parsed. Whatever is accepted has
/// at least one CertID, each of which encodes back to DER.
pub fn ocsp_request(data: &[u8]) {
    if let Ok(req) = request::parse(data) {
        assert!(!req.queries.is_empty(), "a request without CertID accepted");
        for q in &req.queries {
            assert!(q.cert_id.to_der().is_ok(), "an accepted CertID re-encodes");
            let _ = Serial::from_der_content(q.serial_content());
        }
        if let Some(n) = req.nonce {
            // RFC 9654 §2.1: 1 to 128 octets.
            assert!((1..=128).contains(&n.len()), "nonce of {} octets", n.len());
        }
    }
}

/// A GET path after `/ocsp/` (RFC 6960 Appendix A.1, RFC 9919 §3): decoded, then parsed as
/// [`ocsp_request`] does. A request's own GET path decodes back to it.
pub fn get_path(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    if let Ok(der) = request::decode_get_path(&path) {
        ocsp_request(&der);
        if request::parse(&der).is_ok() {
            let again = request::decode_get_path(&request::to_get_path(&der));
            assert_eq!(
                again.ok().as_deref(),
                Some(der.as_slice()),
                "GET path round trip"
            );
        }
    }
}

/// A `POST /v1/revocations` body, as JSON (first octet even) or NDJSON (odd), every CA known.
pub fn ingest_json(data: &[u8]) {
    let (content_type, body) = match data.split_first() {
        Some((first, rest)) if first % 2 == 1 => ("application/x-ndjson", rest),
        Some((_, rest)) => ("application/json", rest),
        None => ("application/json", data),
    };
    if let Ok((changes, _batch)) =
        crate::ingest::request::revocations(Some(content_type), body, |_| true)
    {
        assert!(
            changes.len() <= crate::ingest::request::MAX_BATCH_ITEMS,
            "batch over the limit accepted"
        );
    }
}

/// A `POST /v1/certificates` body: PEM chain, DER or JSON (chosen by the first octet), then
/// each certificate as the ingest API looks at it before checking its issuer.
pub fn certificate_upload(data: &[u8]) {
    let (content_type, body) = match data.split_first() {
        Some((first, rest)) => (
            match first % 3 {
                0 => "application/pem-certificate-chain",
                1 => "application/pkix-cert",
                _ => "application/json",
            },
            rest,
        ),
        None => ("application/pkix-cert", data),
    };
    if let Ok(ders) = crate::ingest::request::certificates(Some(content_type), body) {
        for der in ders {
            let _ = crate::ingest::certificate::profile_hints(&der);
            let _ = x509_cert::Certificate::from_der(&der);
        }
    }
}

/// One line of an OpenSSL CA `index.txt`.
pub fn index_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let _ = crate::ingest::import::parse_line(&line, NOW);
}

/// The CRL entry encoder against x509-cert's decoder (RFC 5280 §5.1.2.6, §5.3.1, §5.3.2): an
/// entry made from the input's octets, once encoded, decodes to the same serial, dates and
/// reason, and re-encodes to the same octets.
pub fn crl_entry_round_trip(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let serial_len = usize::from(head % 21).min(rest.len());
    let (serial, rest) = rest.split_at(serial_len);
    let mut times = [0i64; 2];
    for (t, chunk) in times.iter_mut().zip(rest.chunks(6)) {
        let mut b = [0u8; 8];
        b[8 - chunk.len()..].copy_from_slice(chunk);
        let raw = u64::from_be_bytes(b);
        *t = if head & 0x80 == 0 {
            // 1970 through 9999: what x509-cert (the der crate) can decode.
            (raw % 253_402_300_800) as i64
        } else {
            // ±2^47 s around 1970: years far outside 0..=9999 as well.
            raw as i64 - (1 << 47)
        };
    }
    let revoked_at = UnixTime(times[0]);
    let invalidity = (head & 0x40 != 0).then_some(UnixTime(times[1]));
    let code = rest.get(12).copied().unwrap_or(0) % 12;
    let reason = match code {
        8 => EntryReason::RemoveFromCrl,
        11 => EntryReason::Revoked(None),
        c => EntryReason::Revoked(RevocationReason::from_code(c)),
    };
    let mut out = Vec::new();
    if encode_entry(&mut out, serial, revoked_at, reason, invalidity).is_err() {
        // Refused: a serial that is not a magnitude of 1 to 20 octets, or a year outside 0..=9999.
        let bad_serial = serial.is_empty() || serial.len() > 20 || serial[0] == 0;
        let year_out = |t: UnixTime| !(-62_167_219_200..253_402_300_800).contains(&t.0);
        assert!(
            bad_serial
                || year_out(revoked_at)
                || (reason != EntryReason::RemoveFromCrl && invalidity.is_some_and(year_out)),
            "a valid entry refused: {serial:02x?} {revoked_at:?} {reason:?} {invalidity:?}"
        );
        assert!(out.is_empty(), "nothing written for a refused entry");
        return;
    }
    if revoked_at.0 < 0 || invalidity.is_some_and(|t| t.0 < 0) {
        // Before 1970: valid DER that the der crate's date type cannot hold; checked no further.
        return;
    }
    let entry = x509_cert::crl::RevokedCert::from_der(&out).expect("x509-cert decodes the entry");
    let content = entry.serial_number.as_bytes();
    let magnitude = content.strip_prefix(&[0]).unwrap_or(content);
    assert_eq!(magnitude, serial, "serial");
    assert_eq!(
        entry.revocation_date.to_unix_duration().as_secs() as i64,
        revoked_at.0,
        "revocationDate"
    );
    let exts = entry.crl_entry_extensions.clone().unwrap_or_default();
    let reason_ext = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS);
    let written = reason_ext.map(|e| {
        der::asn1::Any::from_der(e.extn_value.as_bytes())
            .expect("reasonCode is DER")
            .value()
            .to_vec()
    });
    assert_eq!(written, reason.code().map(|c| vec![c]), "reasonCode");
    let invalidity_ext = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE);
    let written = invalidity_ext.map(|e| {
        der::asn1::GeneralizedTime::from_der(e.extn_value.as_bytes())
            .expect("invalidityDate is a GeneralizedTime")
            .to_unix_duration()
            .as_secs() as i64
    });
    let wanted = match reason {
        EntryReason::RemoveFromCrl => None,
        EntryReason::Revoked(_) => invalidity.map(|t| t.0),
    };
    assert_eq!(written, wanted, "invalidityDate");
    assert_eq!(entry.to_der().expect("re-encodes"), out, "DER round trip");
}
