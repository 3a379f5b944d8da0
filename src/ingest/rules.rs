//! The per-CA rules a revocation or a release must pass before it meets the record (RFC 5280
//! §5.3, CA/B Forum baseline requirements §4.9): what the ingest API refuses although the request
//! is well formed.
//!
//! - A revocation of a serial the CA never registered is refused ([`Error::UnknownCertificate`],
//!   HTTP 404) unless the CA says `accept_unregistered_revocations = true`: a typo, or a decimal
//!   serial read as hex, would otherwise leave the real certificate `good`.
//! - A revocation time before the certificate's notBefore, or more than `[ingest]
//!   max_clock_skew` ahead of now, is refused ([`Error::Invalid`], HTTP 422).
//! - Releasing a hold on a serial never registered is refused ([`Error::Conflict`], HTTP 409)
//!   when the CA answers `unknown_serial = "revoked"`: OCSP would keep answering revoked while
//!   the delta CRL said removeFromCRL.
//!
//! The transitions themselves (hold → final, re-stating as keyCompromise, replays) are in
//! [`super::decide`]; this file only says no. Offline callers (`vigie import`, the demo, tests
//! seeding a store) apply [`Rules::default`], which records everything.

use super::{Error, NOT_BEFORE_UNKNOWN, RevocationRequest};
use crate::model::{CertRecord, RevocationReason, UnixTime};

/// The rules of one CA for what the ingest API accepts (`[[ca]]
/// accept_unregistered_revocations`, `[[ca]] unknown_serial`, `[ingest] max_clock_skew`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Record revocations of serials never registered (else [`Error::UnknownCertificate`]).
    pub accept_unregistered_revocations: bool,
    /// The CA answers `revoked` for never-issued serials (`unknown_serial = "revoked"`).
    pub unknown_serial_revoked: bool,
    /// Largest revocation time accepted ahead of now, seconds.
    pub max_clock_skew: i64,
}

impl Default for Rules {
    /// What offline callers (`vigie import`, the demo, tests seeding a store) apply: every
    /// revocation recorded, five minutes of clock skew.
    fn default() -> Self {
        Rules {
            accept_unregistered_revocations: true,
            unknown_serial_revoked: false,
            max_clock_skew: 300,
        }
    }
}

impl Rules {
    /// The rules of `ca` as configured (`[[ca]]` keys and `[ingest] max_clock_skew`). A CA not
    /// served gets the strict ones (its requests are refused for that anyway).
    pub fn of(ca: Option<&crate::pki::Ca>, max_clock_skew: i64) -> Rules {
        Rules {
            accept_unregistered_revocations: ca.is_some_and(|c| c.accept_unregistered_revocations),
            unknown_serial_revoked: ca
                .is_some_and(|c| c.unknown_serial == crate::model::UnknownSerialPolicy::Revoked),
            max_clock_skew,
        }
    }
}

/// Checks a revocation of `record` at `revoked_at` (the request's time, or now).
pub(super) fn check_revocation(
    record: &CertRecord,
    req: &RevocationRequest,
    revoked_at: UnixTime,
    now: UnixTime,
    rules: &Rules,
) -> Result<(), Error> {
    if revoked_at > now.plus(rules.max_clock_skew) {
        return Err(Error::Invalid {
            field: "revoked_at".into(),
            message: format!(
                "is more than [ingest] max_clock_skew ({} s) in the future",
                rules.max_clock_skew
            ),
        });
    }
    let Some(issuance) = &record.issuance else {
        if rules.accept_unregistered_revocations {
            return Ok(());
        }
        return Err(Error::UnknownCertificate(
            "was never registered: register the certificate first (POST /v1/certificates), or set accept_unregistered_revocations = true for this CA".into(),
        ));
    };
    // RFC 5280 §5.3: a certificate cannot have been revoked before it existed.
    if let Some(given) = req.revoked_at
        && issuance.not_before != NOT_BEFORE_UNKNOWN
        && given < issuance.not_before
    {
        return Err(Error::Invalid {
            field: "revoked_at".into(),
            message: format!(
                "is before the certificate's notBefore {}",
                issuance.not_before
            ),
        });
    }
    Ok(())
}

/// Checks the release of the hold recorded in `record`.
pub(super) fn check_release(record: &CertRecord, rules: &Rules) -> Result<(), Error> {
    let hold = record
        .revocation
        .as_ref()
        .is_some_and(|r| r.reason == Some(RevocationReason::CertificateHold));
    if hold && record.issuance.is_none() && rules.unknown_serial_revoked {
        return Err(Error::Conflict(
            "this serial was never registered and the CA answers unknown_serial = \"revoked\" for such serials: OCSP would keep answering revoked while the delta CRL said removeFromCRL; register the certificate first".into(),
        ));
    }
    Ok(())
}
