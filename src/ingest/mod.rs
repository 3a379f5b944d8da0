//! What the CA may change, and how: the rules that turn an issuance, revocation or release into
//! a new [`CertRecord`], or refuse it. Replaying an event already applied is a no-op; an event
//! that contradicts a final state is a conflict.
//!
//! The rules run inside a [`crate::store::Tx`], so the check and the write are one atomic step.
//! The HTTP API that feeds them is in [`crate::http`].

use crate::model::{
    CaId, CertRecord, EventKind, Issuance, Revocation, RevocationReason, Serial, UnixTime,
};
use crate::store::{self, Tx};

/// Why an event was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event contradicts what is recorded (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The event refers to something that does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A field has an impossible value (HTTP 422).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        message: String,
    },
    /// The store failed (HTTP 500/503).
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A revocation as the CA asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRequest {
    /// When the CA revoked it; `None` means now.
    pub revoked_at: Option<UnixTime>,
    /// The reason, if any.
    pub reason: Option<RevocationReason>,
    /// Invalidity date (keyCompromise), not after the revocation.
    pub invalidity_date: Option<UnixTime>,
}

/// An event as the CA pushes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Register an issued certificate.
    Issue(Issuance),
    /// Revoke (or suspend, with certificateHold).
    Revoke(RevocationRequest),
    /// Release a certificateHold.
    Release,
}

/// What applying an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The record changed; the event got this sequence number.
    Applied {
        /// Event sequence number.
        seq: u64,
        /// The new record.
        record: CertRecord,
    },
    /// The event was already applied: nothing written.
    Unchanged {
        /// The record as it stands.
        record: CertRecord,
    },
}

impl Outcome {
    /// The record after the event.
    pub fn record(&self) -> &CertRecord {
        match self {
            Outcome::Applied { record, .. } | Outcome::Unchanged { record } => record,
        }
    }
}

/// Applies one change to (ca, serial) within `tx`.
pub fn apply(
    tx: &mut Tx<'_>,
    ca: &CaId,
    serial: &Serial,
    change: &Change,
) -> Result<Outcome, Error> {
    let current = tx.record(ca, serial)?;
    let now = tx.now();
    match decide(current.as_ref(), change, now)? {
        Decision::Unchanged => {
            let record = current.ok_or_else(|| {
                Error::NotFound(format!("serial {serial} of CA {ca} is not known"))
            })?;
            Ok(Outcome::Unchanged { record })
        }
        Decision::Write(record, kind) => {
            let seq = tx.put(ca, serial, record.clone(), kind)?;
            Ok(Outcome::Applied {
                seq,
                record: CertRecord {
                    version: seq,
                    ..record
                },
            })
        }
    }
}

enum Decision {
    Unchanged,
    Write(CertRecord, EventKind),
}

fn decide(current: Option<&CertRecord>, change: &Change, now: UnixTime) -> Result<Decision, Error> {
    let empty = CertRecord {
        issuance: None,
        revocation: None,
        version: 0,
    };
    let record = current.cloned().unwrap_or(empty);
    match change {
        Change::Issue(issuance) => {
            if issuance.not_after <= issuance.not_before {
                return Err(Error::Invalid {
                    field: "notAfter".into(),
                    message: "not after notBefore".into(),
                });
            }
            match &record.issuance {
                Some(existing)
                    if existing.not_after == issuance.not_after
                        && existing.not_before == issuance.not_before =>
                {
                    Ok(Decision::Unchanged)
                }
                Some(_) => Err(Error::Conflict(
                    "a different certificate with this serial is already registered for this CA"
                        .into(),
                )),
                None => Ok(Decision::Write(
                    CertRecord {
                        issuance: Some(issuance.clone()),
                        ..record
                    },
                    EventKind::Issued(issuance.clone()),
                )),
            }
        }
        Change::Revoke(req) => {
            let revoked_at = req.revoked_at.unwrap_or(now);
            if req.invalidity_date.is_some_and(|inv| inv > revoked_at) {
                return Err(Error::Invalid {
                    field: "invalidity_date".into(),
                    message: "must not be after the revocation time (RFC 5280 §5.3.2)".into(),
                });
            }
            if revoked_at > now.plus(300) {
                return Err(Error::Invalid {
                    field: "revoked_at".into(),
                    message: "is in the future".into(),
                });
            }
            let wanted = Revocation {
                revoked_at,
                reason: req.reason,
                invalidity_date: req.invalidity_date,
            };
            match &record.revocation {
                Some(existing) => {
                    let same = existing.reason == req.reason
                        && req.revoked_at.is_none_or(|t| t == existing.revoked_at)
                        && existing.invalidity_date == req.invalidity_date;
                    if same {
                        return Ok(Decision::Unchanged);
                    }
                    let from_hold = existing.reason == Some(RevocationReason::CertificateHold);
                    // RFC 5280 §5.3.1: a hold may become a permanent revocation. A final
                    // revocation may be re-stated as keyCompromise (CA/B BR §4.9.1.1 practice),
                    // keeping its original time unless the CA gives an earlier one.
                    let to_key_compromise = req.reason == Some(RevocationReason::KeyCompromise);
                    if from_hold || to_key_compromise {
                        let mut updated = wanted;
                        if !from_hold && req.revoked_at.is_none() {
                            updated.revoked_at = existing.revoked_at;
                        }
                        return Ok(Decision::Write(
                            CertRecord {
                                revocation: Some(updated.clone()),
                                ..record
                            },
                            EventKind::Revoked(updated),
                        ));
                    }
                    Err(Error::Conflict(format!(
                        "already revoked at {} with reason {}; a final revocation cannot change (only certificateHold can, and any reason can become keyCompromise)",
                        existing.revoked_at,
                        existing.reason.map_or("(none)", RevocationReason::name),
                    )))
                }
                None => Ok(Decision::Write(
                    CertRecord {
                        revocation: Some(wanted.clone()),
                        ..record
                    },
                    EventKind::Revoked(wanted),
                )),
            }
        }
        Change::Release => match (&record.revocation, current) {
            (_, None) => Err(Error::NotFound("no such certificate".into())),
            (None, Some(_)) => Ok(Decision::Unchanged),
            (Some(r), Some(_)) if r.reason == Some(RevocationReason::CertificateHold) => {
                Ok(Decision::Write(
                    CertRecord {
                        revocation: None,
                        ..record
                    },
                    EventKind::Released { released_at: now },
                ))
            }
            (Some(r), Some(_)) => Err(Error::Conflict(format!(
                "revoked with reason {}: only certificateHold can be released",
                r.reason.map_or("(none)", RevocationReason::name)
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iss() -> Issuance {
        Issuance {
            not_before: UnixTime(0),
            not_after: UnixTime(100),
            subject: None,
            profile: None,
        }
    }

    fn rev(reason: RevocationReason) -> Change {
        Change::Revoke(RevocationRequest {
            revoked_at: None,
            reason: Some(reason),
            invalidity_date: None,
        })
    }

    fn written(d: Decision) -> CertRecord {
        match d {
            Decision::Write(r, _) => r,
            Decision::Unchanged => panic!("expected a write"),
        }
    }

    #[test]
    fn issue_then_replay_is_a_no_op() {
        let r = written(decide(None, &Change::Issue(iss()), UnixTime(5)).expect("ok"));
        assert!(matches!(
            decide(Some(&r), &Change::Issue(iss()), UnixTime(6)),
            Ok(Decision::Unchanged)
        ));
        let other = Issuance {
            not_after: UnixTime(200),
            ..iss()
        };
        assert!(matches!(
            decide(Some(&r), &Change::Issue(other), UnixTime(6)),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn final_revocations_are_final_holds_are_not() {
        let issued = written(decide(None, &Change::Issue(iss()), UnixTime(5)).expect("ok"));
        let held = written(
            decide(
                Some(&issued),
                &rev(RevocationReason::CertificateHold),
                UnixTime(6),
            )
            .expect("ok"),
        );
        let released = written(decide(Some(&held), &Change::Release, UnixTime(7)).expect("ok"));
        assert_eq!(released.revocation, None);
        let superseded = written(
            decide(Some(&held), &rev(RevocationReason::Superseded), UnixTime(8)).expect("ok"),
        );
        assert!(matches!(
            decide(
                Some(&superseded),
                &rev(RevocationReason::Superseded),
                UnixTime(9)
            ),
            Ok(Decision::Unchanged)
        ));
        assert!(matches!(
            decide(
                Some(&superseded),
                &rev(RevocationReason::AffiliationChanged),
                UnixTime(9)
            ),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            decide(Some(&superseded), &Change::Release, UnixTime(9)),
            Err(Error::Conflict(_))
        ));
        let kc = written(
            decide(
                Some(&superseded),
                &rev(RevocationReason::KeyCompromise),
                UnixTime(10),
            )
            .expect("upgrade"),
        );
        assert_eq!(
            kc.revocation.as_ref().map(|r| r.revoked_at),
            Some(UnixTime(8)),
            "keeps the original time"
        );
    }

    #[test]
    fn revocation_of_an_unregistered_serial_is_recorded() {
        let r =
            written(decide(None, &rev(RevocationReason::KeyCompromise), UnixTime(5)).expect("ok"));
        assert!(r.issuance.is_none() && r.revocation.is_some());
        assert!(matches!(
            decide(None, &Change::Release, UnixTime(5)),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn invalid_times_are_refused() {
        let bad = Change::Revoke(RevocationRequest {
            revoked_at: Some(UnixTime(10)),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime(20)),
        });
        assert!(matches!(
            decide(None, &bad, UnixTime(30)),
            Err(Error::Invalid { .. })
        ));
        let future = Change::Revoke(RevocationRequest {
            revoked_at: Some(UnixTime(10_000)),
            reason: None,
            invalidity_date: None,
        });
        assert!(matches!(
            decide(None, &future, UnixTime(30)),
            Err(Error::Invalid { .. })
        ));
    }
}
