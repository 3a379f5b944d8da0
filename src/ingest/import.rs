//! `vigie import`: loads an OpenSSL CA database (`index.txt`, the de-facto interchange format of
//! small CAs) into the store, through the same rules as the ingest API.
//!
//! Each line has six tab-separated fields (OpenSSL `apps/ca.c`, `DB_*` indexes):
//!
//! | field | content |
//! |---|---|
//! | status | `V` valid, `R` revoked, `E` expired |
//! | expiry | notAfter, `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) |
//! | revocation | empty, or `time[,reason[,argument]]` |
//! | serial | hexadecimal |
//! | filename | usually `unknown` (ignored) |
//! | subject | `/C=FR/O=…/CN=…` (recorded as `C=FR, O=…, CN=…`) |
//!
//! Reasons are written as `openssl ca -revoke` writes them: `unspecified`, `keyCompromise`,
//! `CACompromise`, `affiliationChanged`, `superseded`, `cessationOfOperation`, `certificateHold`,
//! `removeFromCRL`, and three with an argument: `keyTime,YYYYMMDDHHMMSSZ` (keyCompromise with
//! the compromise time, recorded as the invalidity date), `CAkeyTime,…` (cACompromise, same) and
//! `holdInstruction,OID` (certificateHold). `keyCompromise,TIME`, `CACompromise,TIME`,
//! `privilegeWithdrawn` and `aACompromise` are accepted too.
//!
//! `index.txt` does not carry notBefore: imported issuances record [`NOT_BEFORE_UNKNOWN`], which a
//! later registration of the certificate itself completes. `removeFromCRL` means the hold was
//! released: the certificate is registered and any hold on it lifted.
//!
//! With [`ImportOptions::certificates`] (`vigie import --certs DIR`), the certificate of each
//! line is read from `DIR/<SERIAL>.pem` (or `.der`) when it is there — `openssl ca` writes each
//! certificate it issues to its `new_certs_dir` under that name — and registered from the
//! certificate itself, as `POST /v1/certificates` would: checked against the CA's key, with its
//! notBefore, and its CRL distribution points counted in the CA's learned CRL scope
//! ([`crate::crl::scope`]). A certificate that is not the line's (other serial, other CA)
//! skips the line.
//!
//! Lines are applied in transactions of [`ImportOptions::chunk`] lines. A line the rules refuse
//! (a conflict with what is recorded, a time that cannot be) is skipped and reported; when
//! its issuance was accepted before its revocation was refused, the issuance stays. A store
//! failure stops the import; chunks already committed stay committed, and importing the same
//! file again is harmless (every event already applied is unchanged).

use std::collections::BTreeMap;
use std::io::BufRead;

use std::path::PathBuf;
use std::sync::Arc;

use super::{Change, Error, NOT_BEFORE_UNKNOWN, Outcome, RevocationRequest};
use crate::crl::scope::DpSet;
use crate::model::{CaId, Issuance, RevocationReason, Serial, UnixTime};
use crate::pki::CaRegistry;
use crate::store::Store;

/// Where the certificates of the imported lines are (`vigie import --certs`).
#[derive(Clone, Debug)]
pub struct CertificateDir {
    /// The directory (`openssl ca`'s `new_certs_dir`): `<SERIAL>.pem` or `<SERIAL>.der`.
    pub dir: PathBuf,
    /// The configured CAs, to check who signed each certificate.
    pub registry: Arc<CaRegistry>,
}

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Lines per transaction.
    pub chunk: usize,
    /// How many skipped lines to describe one by one in the summary.
    pub max_reported: usize,
    /// Where to find the lines' certificates, if anywhere.
    pub certificates: Option<CertificateDir>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            chunk: 10_000,
            max_reported: 20,
            certificates: None,
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Lines by status letter (`V`, `R`, `E`).
    pub by_status: BTreeMap<char, u64>,
    /// Events written.
    pub applied: u64,
    /// Events already recorded (nothing written).
    pub unchanged: u64,
    /// Lines registered from their certificate (`--certs`).
    pub from_certificates: u64,
    /// Lines skipped, by cause.
    pub skipped_by_cause: BTreeMap<String, u64>,
    /// The first skipped lines: (line number, explanation).
    pub skipped: Vec<(u64, String)>,
}

impl ImportSummary {
    /// Total lines skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_by_cause.values().sum()
    }

    fn skip(&mut self, line: u64, cause: &str, detail: String, max: usize) {
        *self.skipped_by_cause.entry(cause.to_owned()).or_default() += 1;
        if self.skipped.len() < max {
            self.skipped.push((line, detail));
        }
    }
}

/// One parsed line: the serial and the changes it stands for, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Status letter.
    pub status: char,
    /// Serial.
    pub serial: Serial,
    /// Issue, then Revoke or Release when the line says so.
    pub changes: Vec<Change>,
}

/// Why a line cannot be imported: (cause, for counting; detail).
pub type LineError = (&'static str, String);

/// Parses one `index.txt` line. `Ok(None)` for a blank line. `now` bounds revocation times.
pub fn parse_line(line: &str, now: UnixTime) -> Result<Option<IndexEntry>, LineError> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() < 4 {
        return Err((
            "malformed line",
            format!(
                "{} tab-separated fields, expected 6 (status, expiry, revocation, serial, filename, subject)",
                fields.len()
            ),
        ));
    }
    let status = match fields[0] {
        "V" => 'V',
        "R" => 'R',
        "E" => 'E',
        other => {
            return Err((
                "unknown status",
                format!("status {other:?} is not V, R or E"),
            ));
        }
    };
    let not_after = parse_asn1_time(fields[1]).ok_or_else(|| {
        (
            "bad expiry",
            format!("expiry {:?} is not YYMMDDHHMMSSZ", fields[1]),
        )
    })?;
    let serial = Serial::from_hex(fields[3]).map_err(|e| ("bad serial", e.to_string()))?;
    let subject = fields
        .get(5)
        .map(|s| openssl_oneline_to_rfc4514ish(s))
        .filter(|s| !s.is_empty());
    let issuance = Issuance {
        not_before: NOT_BEFORE_UNKNOWN,
        not_after,
        subject,
        profile: None,
    };
    let mut changes = vec![Change::Issue(issuance)];
    match (status, fields[2].trim()) {
        ('R', "") => {
            return Err((
                "bad revocation",
                "status R without a revocation time".into(),
            ));
        }
        ('R', revocation) => {
            if let Some(change) = parse_revocation(revocation, now)? {
                changes.push(change);
            }
        }
        (_, "") => {}
        (s, other) => {
            return Err((
                "bad revocation",
                format!("status {s} with a revocation field {other:?}"),
            ));
        }
    }
    Ok(Some(IndexEntry {
        status,
        serial,
        changes,
    }))
}

fn parse_revocation(field: &str, now: UnixTime) -> Result<Option<Change>, LineError> {
    let mut parts = field.split(',');
    let time = parts.next().unwrap_or("");
    let revoked_at = parse_asn1_time(time).ok_or_else(|| {
        (
            "bad revocation",
            format!("revocation time {time:?} is not YYMMDDHHMMSSZ"),
        )
    })?;
    let reason_name = parts.next();
    let argument = parts.next();
    let compromise_time = |arg: Option<&str>| -> Result<Option<UnixTime>, LineError> {
        match arg {
            None | Some("") => Ok(None),
            Some(t) => parse_asn1_time(t).map(Some).ok_or_else(|| {
                (
                    "bad revocation",
                    format!("compromise time {t:?} is not YYYYMMDDHHMMSSZ"),
                )
            }),
        }
    };
    use RevocationReason as R;
    let (reason, invalidity_date) = match reason_name {
        None | Some("") => (None, None),
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            match lower.as_str() {
                "removefromcrl" => return Ok(Some(Change::Release)),
                "keytime" | "keycompromise" => (Some(R::KeyCompromise), compromise_time(argument)?),
                "cakeytime" | "cacompromise" => (Some(R::CaCompromise), compromise_time(argument)?),
                "holdinstruction" => (Some(R::CertificateHold), None),
                _ => match R::from_name(name) {
                    Ok(r) => (Some(r), None),
                    Err(_) => {
                        return Err((
                            "unknown reason",
                            format!("revocation reason {name:?} is not one OpenSSL writes"),
                        ));
                    }
                },
            }
        }
    };
    if revoked_at > now.plus(300) {
        return Err((
            "bad revocation",
            format!("revocation time {revoked_at} is in the future"),
        ));
    }
    if invalidity_date.is_some_and(|d| d > revoked_at) {
        return Err((
            "bad revocation",
            "compromise time after the revocation time".into(),
        ));
    }
    Ok(Some(Change::Revoke(RevocationRequest {
        revoked_at: Some(revoked_at),
        reason,
        invalidity_date,
    })))
}

/// `YYMMDDHHMMSSZ` (UTCTime: years 50–99 are 19xx, RFC 5280 §4.1.2.5.1) or `YYYYMMDDHHMMSSZ`.
pub fn parse_asn1_time(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    let (digits, year_len) = match b.len() {
        13 => (&b[..12], 2),
        15 => (&b[..14], 4),
        _ => return None,
    };
    if *b.last()? != b'Z' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |from: usize, len: usize| -> i64 {
        digits[from..from + len]
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
    };
    let mut year = n(0, year_len);
    if year_len == 2 {
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let o = year_len;
    let (month, day, hour, minute, second) =
        (n(o, 2), n(o + 2, 2), n(o + 4, 2), n(o + 6, 2), n(o + 8, 2));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let t = super::request::days_from_civil(year, month, day) * 86400
        + hour * 3600
        + minute * 60
        + second.min(59);
    Some(UnixTime(t))
}

/// `/C=FR/O=ASIP-SANTE/CN=x` → `C=FR, O=ASIP-SANTE, CN=x`. A `/` inside a value (not followed by
/// `attribute=`) stays in the value.
pub fn openssl_oneline_to_rfc4514ish(s: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for seg in s.split('/') {
        let is_attr = seg.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        });
        match parts.last_mut() {
            Some(last) if !is_attr => {
                last.push('/');
                last.push_str(seg);
            }
            _ if seg.is_empty() => {}
            _ => parts.push(seg.to_owned()),
        }
    }
    parts.join(", ")
}

/// Imports `input` into `ca`'s records. `progress` is called after each chunk with the bytes read
/// so far. Stops at the first store failure.
pub fn import(
    store: &Store,
    ca: &CaId,
    mut input: impl BufRead,
    now: UnixTime,
    options: &ImportOptions,
    mut progress: impl FnMut(u64, &ImportSummary),
) -> Result<ImportSummary, Error> {
    let mut summary = ImportSummary::default();
    let mut bytes = 0u64;
    let mut line = String::new();
    let mut chunk: Vec<(u64, IndexEntry, Option<DpSet>)> = Vec::with_capacity(options.chunk);
    let chunk_size = options.chunk.max(1);
    loop {
        line.clear();
        let n = input.read_line(&mut line).map_err(|source| Error::Io {
            path: "index".into(),
            source,
        })?;
        let eof = n == 0;
        if !eof {
            bytes += n as u64;
            summary.lines += 1;
            match parse_line(&line, now) {
                Ok(Some(mut entry)) => {
                    *summary.by_status.entry(entry.status).or_default() += 1;
                    match options
                        .certificates
                        .as_ref()
                        .map(|d| with_certificate(d, ca, &mut entry))
                        .transpose()
                    {
                        Ok(dps) => {
                            let dps = dps.flatten();
                            summary.from_certificates += u64::from(dps.is_some());
                            chunk.push((summary.lines, entry, dps));
                        }
                        Err((cause, detail)) => {
                            summary.skip(summary.lines, cause, detail, options.max_reported)
                        }
                    }
                }
                Ok(None) => {}
                Err((cause, detail)) => {
                    summary.skip(summary.lines, cause, detail, options.max_reported)
                }
            }
        }
        if chunk.len() >= chunk_size || (eof && !chunk.is_empty()) {
            apply_chunk(store, ca, &chunk, now, &mut summary, options.max_reported)?;
            chunk.clear();
            progress(bytes, &summary);
        }
        if eof {
            progress(bytes, &summary);
            return Ok(summary);
        }
    }
}

/// Reads the certificate of `entry` from `dir`, if there, and makes the entry's issuance the
/// certificate's. Returns its distribution points (`None`: no certificate file).
fn with_certificate(
    dir: &CertificateDir,
    ca: &CaId,
    entry: &mut IndexEntry,
) -> Result<Option<DpSet>, LineError> {
    let hex = hex::encode_upper(entry.serial.magnitude());
    let Some((path, bytes)) = [
        format!("{hex}.pem"),
        format!("{}.pem", hex.to_ascii_lowercase()),
        format!("{hex}.der"),
    ]
    .iter()
    .map(|name| dir.dir.join(name))
    .find_map(|p| std::fs::read(&p).ok().map(|b| (p, b))) else {
        return Ok(None);
    };
    let der = match super::request::pem_blocks(&String::from_utf8_lossy(&bytes)) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .find(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der)
            .ok_or_else(|| {
                (
                    "bad certificate",
                    format!("{}: no CERTIFICATE block", path.display()),
                )
            })?,
        _ => bytes,
    };
    let c = super::certificate::identify(&dir.registry, &der)
        .map_err(|e| ("bad certificate", format!("{}: {e}", path.display())))?;
    if c.ca != *ca || c.serial != entry.serial {
        return Err((
            "bad certificate",
            format!(
                "{}: is serial {} of CA {}, not this line's",
                path.display(),
                c.serial,
                c.ca
            ),
        ));
    }
    match entry.changes.first_mut() {
        Some(Change::Issue(issuance)) => *issuance = c.issuance,
        _ => entry.changes.insert(0, Change::Issue(c.issuance)),
    }
    Ok(Some(c.distribution_points))
}

fn apply_chunk(
    store: &Store,
    ca: &CaId,
    chunk: &[(u64, IndexEntry, Option<DpSet>)],
    now: UnixTime,
    summary: &mut ImportSummary,
    max_reported: usize,
) -> Result<(), Error> {
    let mut local = ImportSummary::default();
    store.transact(std::slice::from_ref(ca), now, |tx| -> Result<(), Error> {
        for (line_no, entry, dps) in chunk {
            for (i, change) in entry.changes.iter().enumerate() {
                let c = super::request::CertChange {
                    ca: ca.clone(),
                    serial: entry.serial.clone(),
                    change: change.clone(),
                    distribution_points: dps.clone().filter(|_| i == 0),
                };
                match super::register(tx, &c) {
                    Ok(Outcome::Applied { .. }) => local.applied += 1,
                    Ok(Outcome::Unchanged { .. }) => local.unchanged += 1,
                    Err(Error::Store(e)) => return Err(Error::Store(e)),
                    Err(Error::Scope(e)) => return Err(Error::Scope(e)),
                    Err(e) => {
                        let cause = match &e {
                            Error::Conflict(_) => "conflict with the store",
                            Error::NotFound(_) => "nothing to release",
                            _ => "refused by the rules",
                        };
                        local.skip(
                            *line_no,
                            cause,
                            format!("serial {}: {e}", entry.serial),
                            max_reported,
                        );
                        break;
                    }
                }
            }
        }
        Ok(())
    })?;
    summary.applied += local.applied;
    summary.unchanged += local.unchanged;
    for (cause, n) in local.skipped_by_cause {
        *summary.skipped_by_cause.entry(cause).or_default() += n;
    }
    for s in local.skipped {
        if summary.skipped.len() < max_reported {
            summary.skipped.push(s);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    #[test]
    fn times_as_openssl_writes_them() {
        assert_eq!(parse_asn1_time("700101000000Z"), Some(UnixTime(0)));
        assert_eq!(parse_asn1_time("19700101000000Z"), Some(UnixTime(0)));
        assert_eq!(
            parse_asn1_time("491231235959Z"),
            parse_asn1_time("20491231235959Z")
        );
        assert_eq!(
            parse_asn1_time("500101000000Z"),
            parse_asn1_time("19500101000000Z")
        );
        assert_eq!(parse_asn1_time("2601010000Z"), None);
        assert_eq!(parse_asn1_time("261301000000Z"), None);
    }

    #[test]
    fn valid_revoked_and_expired_lines() {
        let v = parse_line(
            "V\t290101000000Z\t\t1A2B\tunknown\t/C=FR/O=ASIP-SANTE/CN=a/b\n",
            NOW,
        )
        .expect("ok")
        .expect("entry");
        assert_eq!(v.serial.to_hex(), "1a2b");
        let Change::Issue(i) = &v.changes[0] else {
            panic!("issue")
        };
        assert_eq!(i.not_before, NOT_BEFORE_UNKNOWN);
        assert_eq!(i.subject.as_deref(), Some("C=FR, O=ASIP-SANTE, CN=a/b"));

        let r = parse_line(
            "R\t290101000000Z\t260101000000Z,keyTime,20251201000000Z\t0F\tunknown\t/CN=x",
            NOW,
        )
        .expect("ok")
        .expect("entry");
        assert_eq!(
            r.changes[1],
            Change::Revoke(RevocationRequest {
                revoked_at: parse_asn1_time("260101000000Z"),
                reason: Some(RevocationReason::KeyCompromise),
                invalidity_date: parse_asn1_time("20251201000000Z"),
            })
        );
        for (field, reason) in [
            (
                "260101000000Z,CAkeyTime,20251201000000Z",
                Some(RevocationReason::CaCompromise),
            ),
            (
                "260101000000Z,holdInstruction,holdInstructionReject",
                Some(RevocationReason::CertificateHold),
            ),
            (
                "260101000000Z,certificateHold",
                Some(RevocationReason::CertificateHold),
            ),
            (
                "260101000000Z,CACompromise",
                Some(RevocationReason::CaCompromise),
            ),
            (
                "260101000000Z,superseded",
                Some(RevocationReason::Superseded),
            ),
            ("260101000000Z", None),
        ] {
            let e = parse_line(
                &format!("R\t290101000000Z\t{field}\t0F\tunknown\t/CN=x"),
                NOW,
            )
            .expect("ok")
            .expect("entry");
            let Change::Revoke(req) = &e.changes[1] else {
                panic!("revoke")
            };
            assert_eq!(req.reason, reason, "{field}");
        }
        let released = parse_line(
            "R\t290101000000Z\t260101000000Z,removeFromCRL\t0F\tunknown\t/CN=x",
            NOW,
        )
        .expect("ok")
        .expect("entry");
        assert_eq!(released.changes[1], Change::Release);
        let e = parse_line("E\t200101000000Z\t\t10\tunknown\t/CN=x", NOW)
            .expect("ok")
            .expect("entry");
        assert_eq!(e.changes.len(), 1);
        assert_eq!(parse_line("  \n", NOW), Ok(None));
    }

    #[test]
    fn bad_lines_say_why() {
        let cause = |l: &str| parse_line(l, NOW).expect_err(l).0;
        assert_eq!(
            cause("X\t290101000000Z\t\t01\tunknown\t/CN=x"),
            "unknown status"
        );
        assert_eq!(cause("V\t2901\t\t01\tunknown\t/CN=x"), "bad expiry");
        assert_eq!(
            cause("V\t290101000000Z\t\tXYZ\tunknown\t/CN=x"),
            "bad serial"
        );
        assert_eq!(
            cause("V\t290101000000Z\t\t00\tunknown\t/CN=x"),
            "bad serial"
        );
        assert_eq!(
            cause("R\t290101000000Z\t\t01\tunknown\t/CN=x"),
            "bad revocation"
        );
        assert_eq!(
            cause("R\t290101000000Z\t260101000000Z,bored\t01\tunknown\t/CN=x"),
            "unknown reason"
        );
        assert_eq!(
            cause("R\t290101000000Z\t490101000000Z\t01\tunknown\t/CN=x"),
            "bad revocation"
        );
        assert_eq!(cause("V only"), "malformed line");
    }
}
