//! CRL encoding (RFC 5280 §5.1): from entries, numbers and times to signed DER. Pure: no store,
//! no clock, no I/O — the caller says what time it is and which entries to write.
//!
//! ## Why part of the DER is written by hand
//!
//! A CRL of 10⁶ entries is ~50 MB of DER. Building it through `x509_cert::crl::TbsCertList`
//! would allocate a `RevokedCert` (with a `Vec` of extensions, each with its own `OctetString`)
//! per entry and encode single-threaded; `benches/crl.rs` shows that path far beyond the
//! one-second budget on two cores. So:
//!
//! - each `revokedCertificates` element (§5.1.2.6) is written by [`encode_entry`], a small
//!   writer whose output is checked byte for byte against `x509_cert::crl::RevokedCert`'s DER
//!   encoding (unit and property tests below);
//! - entries are encoded in chunks, in parallel (rayon), each chunk into its own buffer;
//! - [`assemble`] writes the outer headers by hand — `CertificateList` and `TBSCertList`
//!   SEQUENCEs (§5.1.1, §5.1.2) and the `revokedCertificates` SEQUENCE OF header — and copies
//!   the chunks once into the final buffer, which is signed in place ([`Signer::sign`] over the
//!   TBS slice) and returned without another copy.
//!
//! Everything else — the algorithm identifier, issuer Name, and every CRL extension (§5.2) — is
//! encoded with the `der`/`x509-cert` types.
//!
//! Times follow §5.1.2.4–§5.1.2.6: UTCTime for 1950 through 2049, GeneralizedTime otherwise;
//! always `Z`, always seconds. InvalidityDate is always GeneralizedTime (§5.3.2).

use bytes::Bytes;
use der::asn1::{ContextSpecific, Ia5String, OctetString, Uint};
use der::{Encode, TagMode, TagNumber};
use rayon::prelude::*;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

use super::Error;
use super::number::{CrlNumber, DeltaNumbers};
use super::scope::DpSet;
use crate::model::{RevocationReason, UnixTime};
use crate::signer::Signer;

/// ExpiredCertsOnCRL (ITU-T X.509 (2019) §9.5.2.9; id-ce 60), not in `const-oid`'s database.
pub const ID_CE_EXPIRED_CERTS_ON_CRL: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.60");

/// CRLReason removeFromCRL (RFC 5280 §5.3.1): only in delta CRLs.
pub const REMOVE_FROM_CRL: u8 = 8;

/// Entries per parallel encoding task: large enough to amortise scheduling, small enough to
/// spread over the threads.
pub const CHUNK_ENTRIES: usize = 4096;

/// What a CRL entry says about why the certificate is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryReason {
    /// Revoked, with this reason (or none). `Unspecified` is written as no reasonCode at all
    /// (RFC 5280 §5.3.1: "SHOULD be absent instead of using the unspecified (0) reasonCode").
    Revoked(Option<RevocationReason>),
    /// removeFromCRL (RFC 5280 §5.3.1): a delta CRL says the entry left the CRL (released hold,
    /// or expired beyond retention).
    RemoveFromCrl,
}

impl EntryReason {
    /// The reasonCode written, if any.
    pub fn code(self) -> Option<u8> {
        match self {
            EntryReason::Revoked(None | Some(RevocationReason::Unspecified)) => None,
            EntryReason::Revoked(Some(r)) => Some(r.code()),
            EntryReason::RemoveFromCrl => Some(REMOVE_FROM_CRL),
        }
    }
}

/// One entry, as the builder needs it. The serial is the magnitude, big-endian, no leading zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Serial magnitude (as [`crate::model::Serial::magnitude`]).
    pub serial: Vec<u8>,
    /// revocationDate.
    pub revoked_at: UnixTime,
    /// reasonCode.
    pub reason: EntryReason,
    /// invalidityDate (RFC 5280 §5.3.2); never written on removeFromCRL entries.
    pub invalidity_date: Option<UnixTime>,
}

/// Whether the CRL is complete or a delta, with what only that kind carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A complete CRL.
    Full {
        /// Its number.
        number: CrlNumber,
        /// FreshestCRL (RFC 5280 §5.2.6): where the delta CRLs are, when there are any.
        freshest_url: Option<String>,
        /// ExpiredCertsOnCRL: the CRL keeps certificates that expired at or after this time.
        expired_certs_on_crl: Option<UnixTime>,
    },
    /// A delta CRL (RFC 5280 §5.2.4): never carries FreshestCRL.
    Delta(DeltaNumbers),
}

impl Scope {
    /// The CRL's own number.
    pub fn number(&self) -> CrlNumber {
        match self {
            Scope::Full { number, .. } => *number,
            Scope::Delta(d) => d.number(),
        }
    }
}

/// Everything about a CRL except its entries, checked.
#[derive(Clone, Debug)]
pub struct CrlTemplate<'a> {
    issuer_name_der: &'a [u8],
    key_identifier: &'a [u8],
    this_update: UnixTime,
    next_update: UnixTime,
    idp: Option<&'a DpSet>,
    scope: Scope,
}

impl<'a> CrlTemplate<'a> {
    /// A template. `issuer_name_der` is the DER of the CA's subject Name, `key_identifier` its
    /// subjectKeyIdentifier (written as the AuthorityKeyIdentifier, §5.2.1). `idp`, when
    /// given, becomes the critical IssuingDistributionPoint's fullName, one GeneralName per
    /// distribution point name (§5.2.5; [`super::scope`] chooses them); a delta must
    /// carry the same one as its base. Refuses nextUpdate not after thisUpdate (§5.1.2.5) and
    /// times that no ASN.1 time type can hold.
    pub fn new(
        issuer_name_der: &'a [u8],
        key_identifier: &'a [u8],
        this_update: UnixTime,
        next_update: UnixTime,
        idp: Option<&'a DpSet>,
        scope: Scope,
    ) -> Result<CrlTemplate<'a>, Error> {
        if next_update <= this_update {
            return Err(Error::BadTimes {
                this_update,
                next_update,
            });
        }
        let mut probe = Vec::new();
        push_time(&mut probe, this_update, "thisUpdate")?;
        push_time(&mut probe, next_update, "nextUpdate")?;
        if let Scope::Full {
            expired_certs_on_crl: Some(t),
            ..
        } = &scope
        {
            push_generalized_time(&mut probe, *t, "ExpiredCertsOnCRL")?;
        }
        Ok(CrlTemplate {
            issuer_name_der,
            key_identifier,
            this_update,
            next_update,
            idp: idp.filter(|names| !names.is_empty()),
            scope,
        })
    }

    /// thisUpdate.
    pub fn this_update(&self) -> UnixTime {
        self.this_update
    }

    /// nextUpdate.
    pub fn next_update(&self) -> UnixTime {
        self.next_update
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// TBSCertList fields before revokedCertificates (RFC 5280 §5.1.2.1–§5.1.2.5): version v2,
    /// signature, issuer, thisUpdate, nextUpdate.
    fn tbs_prefix(&self, algorithm_der: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(64 + algorithm_der.len() + self.issuer_name_der.len());
        // §5.1.2.1: version v2 (INTEGER 1), required since extensions are present.
        out.extend_from_slice(&[0x02, 0x01, 0x01]);
        // §5.1.2.2: MUST equal signatureAlgorithm (§5.1.1.2); both come from the signer.
        out.extend_from_slice(algorithm_der);
        // §5.1.2.3
        out.extend_from_slice(self.issuer_name_der);
        // §5.1.2.4, §5.1.2.5
        push_time(&mut out, self.this_update, "thisUpdate")?;
        push_time(&mut out, self.next_update, "nextUpdate")?;
        Ok(out)
    }

    /// `crlExtensions [0] EXPLICIT Extensions` (RFC 5280 §5.2).
    fn extensions(&self) -> Result<Vec<u8>, Error> {
        let mut exts = Vec::with_capacity(6);
        // §5.2.1: AuthorityKeyIdentifier, keyIdentifier form, non-critical.
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(self.key_identifier)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            aki.to_der()?,
        )?);
        // §5.2.3: CRLNumber, non-critical, in complete and delta CRLs alike.
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
            false,
            integer(self.scope.number())?,
        )?);
        if let Scope::Delta(d) = &self.scope {
            // §5.2.4: DeltaCRLIndicator, critical, the base CRL's number.
            exts.push(ext(
                const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR,
                true,
                integer(d.base())?,
            )?);
        }
        if let Some(names) = self.idp {
            // §5.2.5: IssuingDistributionPoint, critical. `x509-cert` 0.2 gives the type the
            // wrong OID (id-pe-subjectInfoAccess), so the OID is named here.
            let idp = IssuingDistributionPoint {
                distribution_point: Some(full_names(names)?),
                only_contains_user_certs: false,
                only_contains_ca_certs: false,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            };
            exts.push(ext(
                const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT,
                true,
                idp.to_der()?,
            )?);
        }
        if let Scope::Full {
            freshest_url,
            expired_certs_on_crl,
            ..
        } = &self.scope
        {
            if let Some(url) = freshest_url {
                // §5.2.6: FreshestCRL, non-critical, complete CRLs only.
                let dps = vec![DistributionPoint {
                    distribution_point: Some(full_name(url)?),
                    reasons: None,
                    crl_issuer: None,
                }];
                exts.push(ext(
                    const_oid::db::rfc5280::ID_CE_FRESHEST_CRL,
                    false,
                    dps.to_der()?,
                )?);
            }
            if let Some(t) = expired_certs_on_crl {
                // X.509 (2019) §9.5.2.9: ExpiredCertsOnCRL ::= GeneralizedTime, non-critical.
                let mut v = Vec::with_capacity(17);
                push_generalized_time(&mut v, *t, "ExpiredCertsOnCRL")?;
                exts.push(ext(ID_CE_EXPIRED_CERTS_ON_CRL, false, v)?);
            }
        }
        let wrapped = ContextSpecific {
            tag_number: TagNumber::N0,
            tag_mode: TagMode::Explicit,
            value: exts,
        };
        Ok(wrapped.to_der()?)
    }
}

fn ext(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value)?,
    })
}

fn integer(n: CrlNumber) -> Result<Vec<u8>, Error> {
    Ok(Uint::new(&n.value().to_be_bytes())?.to_der()?)
}

/// `fullName` with one URI (FreshestCRL, RFC 5280 §5.2.6).
fn full_name(url: &str) -> Result<DistributionPointName, Error> {
    let uri = Ia5String::new(url).map_err(|_| Error::BadUrl(url.to_owned()))?;
    Ok(DistributionPointName::FullName(vec![
        GeneralName::UniformResourceIdentifier(uri),
    ]))
}

/// `fullName` (RFC 5280 §5.2.5 DistributionPointName): the names, in their stored (sorted)
/// order. A relying party matches any one of them (§6.3.3 (b)(2)(i)).
fn full_names(names: &DpSet) -> Result<DistributionPointName, Error> {
    let names = names
        .iter()
        .map(|n| n.general_name())
        .collect::<Result<Vec<GeneralName>, _>>()?;
    Ok(DistributionPointName::FullName(names))
}

// -------------------------------------------------------------------------------------------
// DER primitives
// -------------------------------------------------------------------------------------------

/// Appends a DER length (X.690 §8.1.3, definite form, minimal).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// Octets taken by a DER length.
pub fn len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// (year, month, day, hour, minute, second) of a Unix time, proleptic Gregorian, UTC.
fn civil(t: UnixTime) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.0.div_euclid(86400);
    let secs = t.0.rem_euclid(86400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// Writes a Time TLV into `buf` (at least 17 octets): UTCTime `YYMMDDHHMMSSZ` for 1950
/// through 2049 unless `generalized`, GeneralizedTime `YYYYMMDDHHMMSSZ` otherwise (years 0 to
/// 9999). Returns the length written.
fn write_time(
    buf: &mut [u8],
    t: UnixTime,
    generalized: bool,
    what: &'static str,
) -> Result<usize, Error> {
    let (y, mo, d, h, mi, s) = civil(t);
    if !(0..=9999).contains(&y) {
        return Err(Error::TimeOutOfRange { what, time: t });
    }
    let y = y as u32;
    let mut at = if !generalized && (1950..=2049).contains(&y) {
        buf[0] = 0x17;
        buf[1] = 13;
        2
    } else {
        buf[0] = 0x18;
        buf[1] = 15;
        buf[2] = b'0' + (y / 1000) as u8;
        buf[3] = b'0' + (y / 100 % 10) as u8;
        4
    };
    for v in [y % 100, mo, d, h, mi, s] {
        buf[at] = b'0' + (v / 10) as u8;
        buf[at + 1] = b'0' + (v % 10) as u8;
        at += 2;
    }
    buf[at] = b'Z';
    Ok(at + 1)
}

/// Appends a Time (RFC 5280 §5.1.2.4): UTCTime `YYMMDDHHMMSSZ` for 1950 through 2049,
/// GeneralizedTime `YYYYMMDDHHMMSSZ` otherwise (years 0 to 9999).
pub fn push_time(out: &mut Vec<u8>, t: UnixTime, what: &'static str) -> Result<(), Error> {
    let mut buf = [0u8; 17];
    let n = write_time(&mut buf, t, false, what)?;
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

/// Appends a GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2: no fractions, `Z`).
pub fn push_generalized_time(
    out: &mut Vec<u8>,
    t: UnixTime,
    what: &'static str,
) -> Result<(), Error> {
    let mut buf = [0u8; 17];
    let n = write_time(&mut buf, t, true, what)?;
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

/// DER of the reasonCode entry extension (RFC 5280 §5.3.1) without its last octet, the value:
/// `SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED v } }`.
const REASON_EXT_HEAD: [u8; 11] = [
    0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01,
];
/// DER of the invalidityDate entry extension (RFC 5280 §5.3.2) up to its GeneralizedTime:
/// `SEQUENCE { OID 2.5.29.24, OCTET STRING { GeneralizedTime } }`.
const INVALIDITY_EXT_HEAD: [u8; 9] = [0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11];

/// Appends one `revokedCertificates` element (RFC 5280 §5.1.2.6):
///
/// ```text
/// SEQUENCE {
///     userCertificate         CertificateSerialNumber,
///     revocationDate          Time,
///     crlEntryExtensions      Extensions OPTIONAL }
/// ```
///
/// with reasonCode (§5.3.1) and invalidityDate (§5.3.2, GeneralizedTime) when there are any.
/// `serial` is the magnitude (1 to 20 octets, no leading zero, as [`crate::model::Serial`]
/// guarantees); every length is below 128, so all lengths are one octet.
pub fn encode_entry(
    out: &mut Vec<u8>,
    serial: &[u8],
    revoked_at: UnixTime,
    reason: EntryReason,
    invalidity_date: Option<UnixTime>,
) -> Result<(), Error> {
    if serial.is_empty() || serial.len() > 20 || serial[0] == 0 {
        return Err(Error::BadSerial(hex::encode(serial)));
    }
    // At most 2 + (2 + 21) + 17 + 2 + 12 + 26 = 82 octets: assembled on the stack, appended once.
    let mut b = [0u8; 96];
    let pad = serial[0] & 0x80 != 0;
    b[0] = 0x30;
    b[2] = 0x02;
    b[3] = (serial.len() + usize::from(pad)) as u8;
    let mut at = 4 + usize::from(pad);
    b[at..at + serial.len()].copy_from_slice(serial);
    at += serial.len();
    at += write_time(&mut b[at..], revoked_at, false, "revocationDate")?;
    let code = reason.code();
    let invalidity = match reason {
        EntryReason::RemoveFromCrl => None,
        EntryReason::Revoked(_) => invalidity_date,
    };
    if code.is_some() || invalidity.is_some() {
        let exts = at;
        b[exts] = 0x30;
        at += 2;
        if let Some(code) = code {
            b[at..at + REASON_EXT_HEAD.len()].copy_from_slice(&REASON_EXT_HEAD);
            at += REASON_EXT_HEAD.len();
            b[at] = code;
            at += 1;
        }
        if let Some(t) = invalidity {
            b[at..at + INVALIDITY_EXT_HEAD.len()].copy_from_slice(&INVALIDITY_EXT_HEAD);
            at += INVALIDITY_EXT_HEAD.len();
            at += write_time(&mut b[at..], t, true, "invalidityDate")?;
        }
        b[exts + 1] = (at - exts - 2) as u8;
    }
    b[1] = (at - 2) as u8;
    out.extend_from_slice(&b[..at]);
    Ok(())
}

/// Encodes `entries` (already in serial order) in parallel on the current rayon pool, one
/// buffer per [`CHUNK_ENTRIES`] entries, in order.
pub fn encode_entries(entries: &[CrlEntry]) -> Result<Vec<Vec<u8>>, Error> {
    entries
        .par_chunks(CHUNK_ENTRIES)
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() * 56);
            for e in chunk {
                encode_entry(
                    &mut out,
                    &e.serial,
                    e.revoked_at,
                    e.reason,
                    e.invalidity_date,
                )?;
            }
            Ok(out)
        })
        .collect()
}

/// Room reserved for a DER header: tag + up to 5 length octets (lengths below 2³²).
const HEADER_ROOM: usize = 6;

/// Writes a signed CRL whose entries arrive in pieces, in serial order, so that a large CRL is
/// held once in memory (plus the piece being appended), never as a list of pieces *and* a copy.
///
/// The buffer starts with room for the outer headers and the TBS fields before
/// `revokedCertificates`; entries are appended after that room as they come. [`finish`]
/// then writes, right to left in the room, the `revokedCertificates` SEQUENCE OF header
/// (§5.1.2.6), the TBS prefix (§5.1.2.1–§5.1.2.5) and the `TBSCertList` SEQUENCE header
/// (§5.1.2), appends `crlExtensions` (§5.2), signs the TBS where it lies, appends
/// signatureAlgorithm and signatureValue (§5.1.1.2, §5.1.1.3) and finally writes the
/// `CertificateList` SEQUENCE header (§5.1.1). Unused room stays in front of the returned
/// [`Bytes`] slice: nothing is moved.
///
/// [`finish`]: CrlWriter::finish
pub struct CrlWriter<'t, 'a> {
    template: &'t CrlTemplate<'a>,
    prefix: Vec<u8>,
    buf: Vec<u8>,
    room: usize,
    entries: usize,
}

impl<'t, 'a> CrlWriter<'t, 'a> {
    /// A writer for this template, signing with an algorithm whose identifier is
    /// `algorithm_der`; `capacity` is a hint of the entries' total size in octets.
    pub fn new(
        template: &'t CrlTemplate<'a>,
        algorithm_der: &[u8],
        capacity: usize,
    ) -> Result<Self, Error> {
        let prefix = template.tbs_prefix(algorithm_der)?;
        let room = 3 * HEADER_ROOM + prefix.len();
        let mut buf = Vec::with_capacity(room + capacity + 4096);
        buf.resize(room, 0);
        Ok(CrlWriter {
            template,
            prefix,
            buf,
            room,
            entries: 0,
        })
    }

    /// Appends encoded entries (from [`encode_entry`]); `count` is how many.
    pub fn push(&mut self, encoded: &[u8], count: usize) {
        self.buf.extend_from_slice(encoded);
        self.entries += count;
    }

    /// Entries appended so far.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Completes, signs and returns the CRL.
    pub fn finish(mut self, signer: &Signer) -> Result<Bytes, Error> {
        let extensions = self.template.extensions()?;
        let revoked_len = self.buf.len() - self.room;
        // Right to left in the room: revokedCertificates header, TBS prefix, TBS header.
        let mut at = self.room;
        if revoked_len > 0 {
            let mut head = vec![0x30];
            push_len(&mut head, revoked_len);
            at -= head.len();
            self.buf[at..at + head.len()].copy_from_slice(&head);
        }
        at -= self.prefix.len();
        self.buf[at..at + self.prefix.len()].copy_from_slice(&self.prefix);
        let tbs_content = self.buf.len() - at + extensions.len();
        let mut head = vec![0x30];
        push_len(&mut head, tbs_content);
        at = at
            .checked_sub(head.len())
            .filter(|&a| a >= HEADER_ROOM)
            .ok_or(Error::TooLarge(tbs_content))?;
        self.buf[at..at + head.len()].copy_from_slice(&head);
        let tbs_start = at;
        self.buf.extend_from_slice(&extensions);
        let signature = signer.sign(&self.buf[tbs_start..])?;
        self.buf.extend_from_slice(signer.algorithm_der());
        self.buf.push(0x03);
        push_len(&mut self.buf, signature.len() + 1);
        self.buf.push(0); // no unused bits
        self.buf.extend_from_slice(&signature);
        let content = self.buf.len() - tbs_start;
        let mut head = vec![0x30];
        push_len(&mut head, content);
        let start = tbs_start
            .checked_sub(head.len())
            .ok_or(Error::TooLarge(content))?;
        self.buf[start..tbs_start].copy_from_slice(&head);
        Ok(Bytes::from(self.buf).slice(start..))
    }
}

/// Writes the signed CRL from the template and already encoded entries (concatenated in the
/// given order, which must be serial order). An empty list writes no `revokedCertificates`
/// field at all (RFC 5280 §5.1.2.6).
pub fn assemble(
    template: &CrlTemplate<'_>,
    signer: &Signer,
    chunks: Vec<Vec<u8>>,
) -> Result<Bytes, Error> {
    let total = chunks.iter().map(Vec::len).sum();
    let mut writer = CrlWriter::new(template, signer.algorithm_der(), total)?;
    for chunk in chunks {
        writer.push(&chunk, 0);
    }
    writer.finish(signer)
}

/// Encodes and signs a CRL with these entries (in serial order), encoding on the current rayon
/// pool.
pub fn build(
    template: &CrlTemplate<'_>,
    signer: &Signer,
    entries: &[CrlEntry],
) -> Result<Bytes, Error> {
    let chunks = encode_entries(entries)?;
    assemble(template, signer, chunks)
}

// -------------------------------------------------------------------------------------------
// Reading back
// -------------------------------------------------------------------------------------------

/// One `revokedCertificates` element as found in a CRL's DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEntry<'a> {
    /// The serial magnitude (leading zero octet of the INTEGER removed).
    pub serial: &'a [u8],
    /// The whole element, tag to end.
    pub der: &'a [u8],
}

impl RawEntry<'_> {
    /// The entry's revocationDate.
    pub fn revocation_date(&self) -> Result<UnixTime, Error> {
        let (_, start, _) = tlv(self.der, 0)?;
        let (_, _, serial_end) = tlv(self.der, start)?;
        let (tag, t_start, t_end) = tlv(self.der, serial_end)?;
        parse_time(tag, &self.der[t_start..t_end])
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads a UTCTime (tag 0x17, `YYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5.1) or GeneralizedTime
/// (0x18, `YYYYMMDDHHMMSSZ`, §4.1.2.5.2) in the forms vigie writes.
pub fn parse_time(tag: u8, content: &[u8]) -> Result<UnixTime, Error> {
    let bad = || Error::Corrupt(format!("bad time {:?}", String::from_utf8_lossy(content)));
    let (digits, century) = match (tag, content.len()) {
        (0x17, 13) => (&content[..12], None),
        (0x18, 15) => (&content[..14], Some(())),
        _ => return Err(bad()),
    };
    if content.last() != Some(&b'Z') || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let num = |i: usize| i64::from(digits[i] - b'0') * 10 + i64::from(digits[i + 1] - b'0');
    let (year, rest) = match century {
        None => {
            let yy = num(0);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        Some(()) => (num(0) * 100 + num(2), 4),
    };
    let (mo, d, h, mi, s) = (
        num(rest),
        num(rest + 2),
        num(rest + 4),
        num(rest + 6),
        num(rest + 8),
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    Ok(UnixTime(
        days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + s,
    ))
}

/// (tag, content start, content end) of the TLV at `pos`.
fn tlv(buf: &[u8], pos: usize) -> Result<(u8, usize, usize), Error> {
    let bad = || Error::Corrupt("CRL DER is truncated or malformed".into());
    let tag = *buf.get(pos).ok_or_else(bad)?;
    let first = *buf.get(pos + 1).ok_or_else(bad)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 8 {
            return Err(bad());
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(pos + 2 + i).ok_or_else(bad)? as usize;
        }
        (len, 2 + n)
    };
    let start = pos + head;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(bad)?;
    Ok((tag, start, end))
}

/// The `revokedCertificates` elements of a CRL, in the order written, without decoding them
/// beyond their serial. For delta computation over a CRL vigie wrote itself; anything that does
/// not have the RFC 5280 §5.1 shape is [`Error::Corrupt`].
pub fn raw_entries(crl_der: &[u8]) -> Result<Vec<RawEntry<'_>>, Error> {
    let mut out = Vec::new();
    for_each_raw_entry(crl_der, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` on each `revokedCertificates` element of a CRL, in order (see [`raw_entries`]).
pub fn for_each_raw_entry<'a>(
    crl_der: &'a [u8],
    mut f: impl FnMut(RawEntry<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let shape = |what: &str| Error::Corrupt(format!("CRL DER: {what}"));
    let (tag, outer, _) = tlv(crl_der, 0)?;
    if tag != 0x30 {
        return Err(shape("CertificateList is not a SEQUENCE"));
    }
    let (tag, tbs_start, tbs_end) = tlv(crl_der, outer)?;
    if tag != 0x30 {
        return Err(shape("TBSCertList is not a SEQUENCE"));
    }
    let mut pos = tbs_start;
    // version, signature, issuer, thisUpdate
    for expected in [0x02u8, 0x30, 0x30] {
        let (tag, _, end) = tlv(crl_der, pos)?;
        if tag != expected {
            return Err(shape("unexpected field before thisUpdate"));
        }
        pos = end;
    }
    let (tag, _, end) = tlv(crl_der, pos)?;
    if tag != 0x17 && tag != 0x18 {
        return Err(shape("thisUpdate is not a Time"));
    }
    pos = end;
    if pos < tbs_end {
        let (tag, _, end) = tlv(crl_der, pos)?;
        if tag == 0x17 || tag == 0x18 {
            pos = end;
        }
    }
    if pos >= tbs_end {
        return Ok(());
    }
    let (tag, list_start, list_end) = tlv(crl_der, pos)?;
    if tag != 0x30 {
        return Ok(()); // [0] crlExtensions: no revokedCertificates.
    }
    let mut p = list_start;
    while p < list_end {
        let (tag, start, end) = tlv(crl_der, p)?;
        if tag != 0x30 {
            return Err(shape("revoked entry is not a SEQUENCE"));
        }
        let (tag, s_start, s_end) = tlv(crl_der, start)?;
        if tag != 0x02 || s_start == s_end {
            return Err(shape("revoked entry does not start with an INTEGER"));
        }
        let mut serial = &crl_der[s_start..s_end];
        if serial.len() > 1 && serial[0] == 0 {
            serial = &serial[1..];
        }
        f(RawEntry {
            serial,
            der: &crl_der[p..end],
        })?;
        p = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use der::asn1::GeneralizedTime;
    use proptest::prelude::*;
    use x509_cert::crl::{CertificateList, RevokedCert};
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::Time;

    fn der_time(t: UnixTime) -> Time {
        let d = std::time::Duration::from_secs(t.0 as u64);
        let dt = der::DateTime::from_unix_duration(d).expect("representable");
        if dt.year() < 2050 {
            Time::UtcTime(der::asn1::UtcTime::from_date_time(dt).expect("utc"))
        } else {
            Time::GeneralTime(GeneralizedTime::from_date_time(dt))
        }
    }

    /// The same entry through `x509-cert`'s types: the reference for [`encode_entry`].
    fn reference(
        serial: &[u8],
        revoked_at: UnixTime,
        reason: EntryReason,
        invalidity: Option<UnixTime>,
    ) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(code) = reason.code() {
            let v = vec![0x0a, 0x01, code];
            exts.push(Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                critical: false,
                extn_value: OctetString::new(v).expect("octets"),
            });
        }
        if let (Some(t), EntryReason::Revoked(_)) = (invalidity, reason) {
            let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(t.0 as u64))
                .expect("representable");
            let gt = GeneralizedTime::from_date_time(dt);
            exts.push(Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE,
                critical: false,
                extn_value: OctetString::new(gt.to_der().expect("time")).expect("octets"),
            });
        }
        let mut content = Vec::new();
        if serial[0] & 0x80 != 0 {
            content.push(0);
        }
        content.extend_from_slice(serial);
        let rc = RevokedCert {
            serial_number: SerialNumber::new(&content).expect("serial"),
            revocation_date: der_time(revoked_at),
            crl_entry_extensions: if exts.is_empty() { None } else { Some(exts) },
        };
        rc.to_der().expect("encodes")
    }

    fn reason_strategy() -> impl Strategy<Value = EntryReason> {
        prop_oneof![
            Just(EntryReason::RemoveFromCrl),
            Just(EntryReason::Revoked(None)),
            proptest::sample::select(RevocationReason::ALL.to_vec())
                .prop_map(|r| EntryReason::Revoked(Some(r))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn entries_match_x509_cert_encoding(
            mut serial in proptest::collection::vec(any::<u8>(), 1..=20),
            revoked in 0i64..4_102_444_800 * 2,
            reason in reason_strategy(),
            invalidity in proptest::option::of(0i64..4_102_444_800 * 2),
        ) {
            if serial[0] == 0 { serial[0] = 1; }
            // x509-cert refuses 21 content octets (RFC 5280 §4.1.2.2's limit for CAs);
            // vigie still lists such a serial: see `twenty_octet_serials_with_top_bit_set`.
            if serial.len() == 20 { serial[0] &= 0x7f; if serial[0] == 0 { serial[0] = 1; } }
            let mut ours = Vec::new();
            encode_entry(&mut ours, &serial, UnixTime(revoked), reason, invalidity.map(UnixTime))
                .expect("encodes");
            let theirs = reference(&serial, UnixTime(revoked), reason, invalidity.map(UnixTime));
            prop_assert_eq!(&ours, &theirs);
            let back = RevokedCert::from_der(&ours).expect("parses");
            prop_assert_eq!(back.revocation_date.to_unix_duration().as_secs() as i64, revoked);
        }
    }

    #[test]
    fn utc_time_through_2049_generalized_from_2050() {
        let mut v = Vec::new();
        // 2049-12-31T23:59:59Z
        push_time(&mut v, UnixTime(2_524_607_999), "t").expect("ok");
        assert_eq!(v, b"\x17\x0d491231235959Z");
        v.clear();
        // 2050-01-01T00:00:00Z
        push_time(&mut v, UnixTime(2_524_608_000), "t").expect("ok");
        assert_eq!(v, b"\x18\x0f20500101000000Z");
        v.clear();
        // 1949-12-31T23:59:59Z: before UTCTime's window.
        push_time(&mut v, UnixTime(-631_152_001), "t").expect("ok");
        assert_eq!(v, b"\x18\x0f19491231235959Z");
        v.clear();
        push_time(&mut v, UnixTime(0), "t").expect("ok");
        assert_eq!(v, b"\x17\x0d700101000000Z");
        assert!(push_time(&mut v, UnixTime(i64::MAX / 2), "t").is_err());
        assert!(push_time(&mut v, UnixTime(-70_000_000_000), "t").is_err());
    }

    proptest! {
        #[test]
        fn times_round_trip(t in -62_167_219_200i64..253_402_300_799) {
            let mut v = Vec::new();
            push_time(&mut v, UnixTime(t), "t").expect("in range");
            prop_assert_eq!(parse_time(v[0], &v[2..]).expect("parses"), UnixTime(t));
        }
    }

    #[test]
    fn lengths_are_minimal() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 50_000_000] {
            let mut v = Vec::new();
            push_len(&mut v, len);
            assert_eq!(v.len(), len_len(len), "{len}");
            let mut full = vec![0x04];
            full.extend_from_slice(&v);
            full.resize(full.len() + len, 0);
            let parsed = OctetString::from_der(&full).expect("valid DER length");
            assert_eq!(parsed.as_bytes().len(), len);
        }
    }

    fn test_signer() -> Signer {
        let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
            .expect("pkey");
        Signer::new(key).expect("signer")
    }

    #[test]
    fn assembled_crl_parses_with_x509_cert_and_lists_entries_in_order() {
        let signer = test_signer();
        let name = x509_cert::name::Name::default().to_der().expect("name");
        let entries: Vec<CrlEntry> = (1u32..=10_000)
            .map(|i| CrlEntry {
                serial: i
                    .to_be_bytes()
                    .iter()
                    .copied()
                    .skip_while(|&b| b == 0)
                    .collect(),
                revoked_at: UnixTime(1_700_000_000 + i64::from(i)),
                reason: if i % 3 == 0 {
                    EntryReason::Revoked(Some(RevocationReason::KeyCompromise))
                } else {
                    EntryReason::Revoked(None)
                },
                invalidity_date: (i % 6 == 0).then_some(UnixTime(1_600_000_000)),
            })
            .collect();
        let idp: DpSet = [
            "http://x.test/crl/a.crl",
            "ldap://x.test/cn=A?certificateRevocationList;binary",
        ]
        .iter()
        .map(|u| super::super::scope::DpName::uri(u).expect("URI"))
        .collect();
        let template = CrlTemplate::new(
            &name,
            &[1, 2, 3],
            UnixTime(1_700_000_000),
            UnixTime(1_700_086_400),
            Some(&idp),
            Scope::Full {
                number: CrlNumber::new(7),
                freshest_url: Some("http://x.test/crl/a-delta.crl".into()),
                expired_certs_on_crl: Some(UnixTime(1_000_000_000)),
            },
        )
        .expect("valid");
        let der = build(&template, &signer, &entries).expect("builds");
        let parsed = CertificateList::from_der(&der).expect("x509-cert parses it");
        let revoked = parsed.tbs_cert_list.revoked_certificates.expect("entries");
        assert_eq!(revoked.len(), entries.len());
        assert_eq!(
            revoked[2].serial_number.as_bytes(),
            &[3],
            "sorted, as given"
        );
        let raw = raw_entries(&der).expect("reads back");
        assert_eq!(raw.len(), entries.len());
        assert_eq!(raw[9_999].serial, &10_000u32.to_be_bytes()[2..]);
        let exts = parsed.tbs_cert_list.crl_extensions.expect("extensions");
        let oids: Vec<String> = exts.iter().map(|e| e.extn_id.to_string()).collect();
        assert_eq!(
            oids,
            [
                "2.5.29.35",
                "2.5.29.20",
                "2.5.29.28",
                "2.5.29.46",
                "2.5.29.60"
            ]
        );
        assert!(exts[2].critical, "IssuingDistributionPoint is critical");
        let written = IssuingDistributionPoint::from_der(exts[2].extn_value.as_bytes())
            .expect("an IssuingDistributionPoint");
        match written.distribution_point {
            Some(DistributionPointName::FullName(names)) => assert_eq!(
                names.len(),
                2,
                "one fullName with both distribution point names"
            ),
            other => panic!("unexpected distributionPoint {other:?}"),
        }
        let x = openssl::x509::X509Crl::from_der(&der).expect("openssl parses it");
        let pk = openssl::pkey::PKey::public_key_from_der(signer.public_key_der()).expect("pk");
        assert!(x.verify(&pk).expect("verifies"));
    }

    #[test]
    fn empty_crl_has_no_revoked_certificates_field() {
        let signer = test_signer();
        let name = x509_cert::name::Name::default().to_der().expect("name");
        let base = CrlNumber::new(3);
        let template = CrlTemplate::new(
            &name,
            &[9; 20],
            UnixTime(2_600_000_000),
            UnixTime(2_600_003_600),
            None,
            Scope::Delta(DeltaNumbers::new(CrlNumber::new(4), base).expect("valid")),
        )
        .expect("valid");
        let der = build(&template, &signer, &[]).expect("builds");
        let parsed = CertificateList::from_der(&der).expect("parses");
        assert!(parsed.tbs_cert_list.revoked_certificates.is_none());
        assert!(matches!(
            parsed.tbs_cert_list.this_update,
            Time::GeneralTime(_)
        ));
        let exts = parsed.tbs_cert_list.crl_extensions.expect("extensions");
        let delta = exts
            .iter()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR)
            .expect("indicator");
        assert!(delta.critical);
        assert!(
            !exts
                .iter()
                .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_FRESHEST_CRL),
            "a delta never carries FreshestCRL"
        );
        assert!(raw_entries(&der).expect("reads").is_empty());
    }

    #[test]
    fn templates_refuse_inverted_times() {
        let r = CrlTemplate::new(
            &[],
            &[],
            UnixTime(10),
            UnixTime(10),
            None,
            Scope::Full {
                number: CrlNumber::FIRST,
                freshest_url: None,
                expired_certs_on_crl: None,
            },
        );
        assert!(matches!(r, Err(Error::BadTimes { .. })));
    }

    #[test]
    fn twenty_octet_serials_with_top_bit_set() {
        // Non-conforming (21 content octets) but issued in the wild: still written, and
        // readable by openssl.
        let serial = [0xffu8; 20];
        let mut v = Vec::new();
        encode_entry(
            &mut v,
            &serial,
            UnixTime(0),
            EntryReason::Revoked(None),
            None,
        )
        .expect("encodes");
        assert_eq!(&v[..4], &[0x30, 38, 0x02, 21]);
        assert_eq!(v[4], 0);
        let raw = RawEntry {
            serial: &v[5..25],
            der: &v,
        };
        assert_eq!(raw.revocation_date().expect("date"), UnixTime(0));
    }

    #[test]
    fn bad_serials_are_refused() {
        let mut v = Vec::new();
        let r = EntryReason::Revoked(None);
        assert!(encode_entry(&mut v, &[], UnixTime(0), r, None).is_err());
        assert!(encode_entry(&mut v, &[0, 1], UnixTime(0), r, None).is_err());
        assert!(encode_entry(&mut v, &[1; 21], UnixTime(0), r, None).is_err());
    }
}
