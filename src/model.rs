//! The domain's vocabulary: serial numbers, CA identifiers, revocation reasons, certificate records
//! and the events that change them.
//!
//! Everything here is plain data with validating constructors. Persistence lives in
//! [`crate::store`], wire encodings in [`crate::ocsp`] and [`crate::crl`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds since 1970-01-01T00:00:00Z. Certificate and OCSP times have a one-second resolution.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The epoch, 1970-01-01T00:00:00Z: the revocation time RFC 6960 §2.2 prescribes for a serial
    /// that was never issued.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// This time plus `secs` seconds (saturating).
    pub fn plus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// This time minus `secs` seconds (saturating).
    pub fn minus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_sub(secs))
    }

    /// As a `SystemTime`; times before the epoch clamp to the epoch.
    pub fn to_system_time(self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.0.max(0) as u64)
    }

    /// RFC 3339 form, e.g. `2026-11-30T12:00:00Z`; a time RFC 3339 cannot write (after year
    /// 9999) as `@<seconds since the epoch>`, never a panic (such times reach error messages).
    pub fn to_rfc3339(self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        match write!(
            out,
            "{}",
            humantime::format_rfc3339_seconds(self.to_system_time())
        ) {
            Ok(()) => out,
            Err(_) => format!("@{}", self.0),
        }
    }

    /// Parses an RFC 3339 timestamp (`2026-11-30T12:00:00Z`, fractions dropped).
    pub fn parse_rfc3339(s: &str) -> Option<UnixTime> {
        let t = humantime::parse_rfc3339_weak(s).ok()?;
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(UnixTime(i64::try_from(d.as_secs()).ok()?))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Why a value could not become one of this module's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A CA identifier that is empty, too long or not URL-safe.
    #[error("CA id {0:?} must be 1-64 characters of a-z, 0-9, '-', '_' or '.'")]
    BadCaId(String),
    /// A serial number that is not a positive integer of at most 20 octets.
    #[error("serial {0:?}: {1}")]
    BadSerial(String, &'static str),
    /// A revocation reason name that RFC 5280 §5.3.1 does not define.
    #[error("unknown revocation reason {0:?}")]
    BadReason(String),
}

/// Identifier of a configured CA: URL-safe, used in HTTP paths and store keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaId(String);

impl CaId {
    /// Validates `id`: 1 to 64 characters of `a-z0-9-_.`, not starting with a dot.
    pub fn new(id: &str) -> Result<CaId, ModelError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if ok {
            Ok(CaId(id.to_owned()))
        } else {
            Err(ModelError::BadCaId(id.to_owned()))
        }
    }

    /// The identifier as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A certificate serial number: a positive INTEGER of at most 20 octets (RFC 5280 §4.1.2.2),
/// held as its magnitude in big-endian bytes without leading zeros.
///
/// Ordering compares numerically, which is also the byte order of [`Serial::key_bytes`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Longest magnitude accepted, in octets.
    pub const MAX_OCTETS: usize = 20;

    /// From big-endian magnitude bytes (leading zeros allowed and stripped).
    pub fn from_magnitude(bytes: &[u8]) -> Result<Serial, ModelError> {
        let first = bytes.iter().position(|&b| b != 0);
        let Some(first) = first else {
            return Err(ModelError::BadSerial(
                hex::encode(bytes),
                "zero is not a valid serial",
            ));
        };
        let mag = &bytes[first..];
        if mag.len() > Self::MAX_OCTETS {
            return Err(ModelError::BadSerial(
                hex::encode(bytes),
                "longer than 20 octets",
            ));
        }
        Ok(Serial(mag.to_vec()))
    }

    /// From the content octets of a DER INTEGER (two's complement). `None` for zero or a
    /// negative value, which no conforming CA issues; such a serial is simply not known.
    pub fn from_der_content(content: &[u8]) -> Option<Serial> {
        if content.first().is_none_or(|&b| b & 0x80 != 0) {
            return None;
        }
        Serial::from_magnitude(content).ok()
    }

    /// From hexadecimal (upper or lower case, optional `0x` prefix, optional `:` separators).
    pub fn from_hex(s: &str) -> Result<Serial, ModelError> {
        let t = s.trim();
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        let digits: String = t.chars().filter(|&c| c != ':').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ModelError::BadSerial(
                s.to_owned(),
                "not a hexadecimal number",
            ));
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(&padded)
            .map_err(|_| ModelError::BadSerial(s.to_owned(), "not a hexadecimal number"))?;
        Serial::from_magnitude(&bytes).map_err(|e| match e {
            ModelError::BadSerial(_, why) => ModelError::BadSerial(s.to_owned(), why),
            other => other,
        })
    }

    /// The magnitude, big-endian, no leading zeros.
    pub fn magnitude(&self) -> &[u8] {
        &self.0
    }

    /// The content octets of the DER INTEGER (a leading zero added when the top bit is set).
    pub fn der_content(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        if self.0[0] & 0x80 != 0 {
            v.push(0);
        }
        v.extend_from_slice(&self.0);
        v
    }

    /// Lowercase hexadecimal, no leading zero nibble pairs.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Serial {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// CRLReason, RFC 5280 §5.3.1. Code 7 is unused; `removeFromCRL` (8) only appears in delta CRLs
/// and is not a reason a certificate can be revoked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationReason {
    /// 0 — never written on a CRL entry (RFC 5280 §5.3.1 says omit the extension instead).
    Unspecified,
    /// 1
    KeyCompromise,
    /// 2
    CaCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 6 — the only reversible reason (a "suspension").
    CertificateHold,
    /// 9
    PrivilegeWithdrawn,
    /// 10
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 9] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The ENUMERATED value of RFC 5280 §5.3.1.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for an ENUMERATED value, `None` for 7, 8 (removeFromCRL) and anything else.
    pub fn from_code(code: u8) -> Option<RevocationReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The name RFC 5280 gives it, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// Parses an RFC 5280 name, case-insensitively (`keyCompromise`, `cACompromise`, `cacompromise`).
    pub fn from_name(name: &str) -> Result<RevocationReason, ModelError> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ModelError::BadReason(name.to_owned()))
    }

    /// Whether a later event may undo this revocation (only certificateHold, RFC 5280 §5.3.1).
    pub fn is_reversible(self) -> bool {
        self == Self::CertificateHold
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the CA told us when it issued a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuance {
    /// notBefore of the certificate.
    pub not_before: UnixTime,
    /// notAfter of the certificate.
    pub not_after: UnixTime,
    /// Subject, one-line RFC 4514-like form, for operators.
    pub subject: Option<String>,
    /// Certificate profile or usage hint (e.g. `ORG_AUTH_CLI`, or key usages).
    pub profile: Option<String>,
}

/// A revocation as the CA declared it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When the CA revoked the certificate.
    pub revoked_at: UnixTime,
    /// CRLReason; `None` when the CA gave none.
    pub reason: Option<RevocationReason>,
    /// When the key is believed to have been compromised (RFC 5280 §5.3.2); before `revoked_at`.
    pub invalidity_date: Option<UnixTime>,
}

/// Everything vigie knows about one serial of one CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Set when the CA registered the issuance. A revocation may arrive for a serial whose
    /// issuance was never registered: then this stays `None`.
    pub issuance: Option<Issuance>,
    /// Set while the certificate is revoked (a released hold clears it).
    pub revocation: Option<Revocation>,
    /// Sequence number of the last event that changed this record: a version that cached OCSP
    /// responses are compared against.
    pub version: u64,
}

impl CertRecord {
    /// The status this record gives, before any per-CA policy is applied.
    pub fn status(&self) -> CertStatus {
        match (&self.revocation, &self.issuance) {
            (Some(r), _) => CertStatus::Revoked(r.clone()),
            (None, Some(_)) => CertStatus::Good,
            (None, None) => CertStatus::Unknown,
        }
    }
}

/// The answer about one serial (RFC 6960 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by the CA and not revoked.
    Good,
    /// Revoked (or on hold).
    Revoked(Revocation),
    /// Not known to vigie.
    Unknown,
}

/// A change to one certificate, as the CA pushes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The CA issued this certificate.
    Issued(Issuance),
    /// The CA revoked it (or put it on hold).
    Revoked(Revocation),
    /// The CA released a certificateHold.
    Released {
        /// When the CA released it.
        released_at: UnixTime,
    },
}

/// An accepted change, as kept in the ordered event log (source of delta CRLs and replicas).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the CA's log, from 1, without gaps.
    pub seq: u64,
    /// When vigie accepted it.
    pub recorded_at: UnixTime,
    /// The certificate concerned.
    pub serial: Serial,
    /// What happened.
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_beyond_year_9999_print_without_panicking() {
        assert_eq!(UnixTime(253_402_300_800).to_rfc3339(), "@253402300800");
        assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
    }

    use super::*;

    #[test]
    fn serial_orders_numerically() {
        let a = Serial::from_hex("ff").expect("valid");
        let b = Serial::from_hex("0100").expect("valid");
        assert!(a < b);
        assert_eq!(a.der_content(), vec![0, 0xff]);
        assert_eq!(Serial::from_der_content(&[0, 0xff]), Some(a));
        assert_eq!(Serial::from_der_content(&[0xff]), None, "negative");
    }

    #[test]
    fn serial_rejects_zero_and_overlong() {
        assert!(Serial::from_hex("00").is_err());
        assert!(Serial::from_hex(&"ab".repeat(21)).is_err());
        assert!(Serial::from_hex(&"ab".repeat(20)).is_ok());
        assert!(Serial::from_hex("xyz").is_err());
        assert_eq!(Serial::from_hex("0A:1b").expect("valid").to_hex(), "0a1b");
    }

    #[test]
    fn reasons_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
            assert_eq!(RevocationReason::from_name(r.name()), Ok(r));
        }
        assert_eq!(RevocationReason::from_code(7), None);
        assert_eq!(RevocationReason::from_code(8), None);
        assert!(RevocationReason::from_name("removeFromCRL").is_err());
    }

    #[test]
    fn ca_id_is_url_safe() {
        assert!(CaId::new("aci-el-org").is_ok());
        assert!(CaId::new("ACI").is_err());
        assert!(CaId::new("a/b").is_err());
        assert!(CaId::new("").is_err());
    }
}

/// What a CA answers for a serial it never registered (`[[ca]] unknown_serial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum UnknownSerialPolicy {
    /// `unknown` (the default).
    Unknown,
    /// `revoked`, certificateHold, 1970-01-01, extended-revoke (RFC 6960 §2.2, §4.4.8).
    Revoked,
}

impl TryFrom<String> for UnknownSerialPolicy {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "unknown" => Ok(UnknownSerialPolicy::Unknown),
            "revoked" => Ok(UnknownSerialPolicy::Revoked),
            other => Err(format!("{other:?}: expected \"unknown\" or \"revoked\"")),
        }
    }
}

/// What a CA does with a request nonce (`[[ca]] nonce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum NoncePolicy {
    /// Sign a fresh response that echoes it (RFC 9654).
    Echo,
    /// Serve the cached response without the nonce.
    Ignore,
}

impl TryFrom<String> for NoncePolicy {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "echo" => Ok(NoncePolicy::Echo),
            "ignore" => Ok(NoncePolicy::Ignore),
            other => Err(format!("{other:?}: expected \"echo\" or \"ignore\"")),
        }
    }
}

/// How long revoked certificates stay on CRLs after they expire (`[[ca]] crl_keep_expired`:
/// a duration, or `"forever"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum KeepExpired {
    /// This many seconds after notAfter.
    For(i64),
    /// Forever (ExpiredCertsOnCRL says since when: RFC 5280 §5.2.7 (X.509 2019)).
    Forever,
}

impl TryFrom<String> for KeepExpired {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value == "forever" {
            return Ok(KeepExpired::Forever);
        }
        let d = humantime::parse_duration(&value).map_err(|e| {
            format!("{value:?} is not a duration like \"1d\", \"6h\", \"30s\" ({e})")
        })?;
        i64::try_from(d.as_secs())
            .map(KeepExpired::For)
            .map_err(|_| format!("{value:?} is too long"))
    }
}

/// Who signs a CA's OCSP responses (`[[ca]] ocsp_signer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum OcspSignerPolicy {
    /// `delegated` (the default): a delegated OCSP signer issued by the CA.
    #[default]
    Delegated,
    /// `ca`: the CA certificate itself.
    Ca,
}

impl TryFrom<String> for OcspSignerPolicy {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "delegated" => Ok(OcspSignerPolicy::Delegated),
            "ca" => Ok(OcspSignerPolicy::Ca),
            other => Err(format!("{other:?}: expected \"delegated\" or \"ca\"")),
        }
    }
}
