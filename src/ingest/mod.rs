//! What the CA may change, and how: the rules that turn an issuance, revocation or release into
//! a new [`CertRecord`], or refuse it. Replaying an event already applied is a no-op; an event
//! that contradicts a final state is a conflict.
//!
//! The rules ([`apply`]) run inside a [`crate::store::Tx`], so the check and the write are one
//! atomic step. Around them:
//! - [`request`] turns what the CA sends (JSON revocations, PEM/DER/JSON certificates) into
//!   [`Change`]s, naming the field at fault when it cannot;
//! - [`certificate`] finds which configured CA signed a certificate and what to record of it;
//! - [`import`] reads an OpenSSL CA database (`index.txt`) for `vigie import`.
//!
//! The HTTP API that feeds them is in `crate::http::ingest`; this module knows nothing of HTTP.
//!
//! # The rules, in short
//!
//! - **Issue**: registers notBefore/notAfter/subject/profile. The same validity again is
//!   unchanged; a different one is a conflict (another certificate with the same serial). An
//!   issuance whose notBefore is [`NOT_BEFORE_UNKNOWN`] (what `index.txt` imports record) is
//!   completed, not contradicted, by the real certificate with the same notAfter. A registration
//!   written from the certificate itself also counts its CRL distribution points in the CA's
//!   learned CRL scope, in the same batch ([`register`], [`crate::crl::scope`]).
//! - **Revoke**: of a registered certificate; of a serial never registered only when the CA
//!   says `accept_unregistered_revocations = true` (the record then has a revocation and no
//!   issuance), otherwise [`Error::UnknownCertificate`] (a typo, or a decimal serial read as
//!   hex, would leave the real certificate good). The time may not be before the certificate's
//!   notBefore, nor more than `[ingest] max_clock_skew` ahead of now ([`rules`]). The same
//!   revocation again is unchanged; an omitted `revoked_at` or `invalidity_date` means "as
//!   recorded", so a retry without them is a replay too.
//!   A certificateHold may become any revocation (RFC 5280 §5.3.1), keeping the hold's time
//!   unless the CA gives an earlier one (signatures made during the hold must not validate
//!   historically). A final revocation may not change, with one exception: it may be re-stated
//!   as **keyCompromise** (a compromise found after a revocation for another reason, CA/B BR
//!   §4.9.1.1 practice); the revocation time is then kept too, unless the CA gives an earlier one.
//! - **Release**: lifts a certificateHold (the next delta CRL says removeFromCRL). Releasing a
//!   certificate that is not revoked is unchanged; releasing a final revocation is a conflict,
//!   and so is releasing a hold on a serial never registered under `unknown_serial = "revoked"`
//!   (OCSP would keep saying revoked).

pub mod audit;
pub mod certificate;
pub mod import;
pub mod request;
pub mod rules;

pub use rules::Rules;

use crate::model::{
    CaId, CertRecord, EventKind, Issuance, Revocation, RevocationReason, Serial, UnixTime,
};
use crate::store::{self, Store, Tx};

/// Why an event was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event contradicts what is recorded (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The event refers to something that does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// A revocation of a serial the CA never registered, refused by the CA's rules (HTTP 404,
    /// problem type `…/unknown-certificate`).
    #[error("{0}")]
    UnknownCertificate(String),
    /// A field has an impossible value (HTTP 422).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        message: String,
    },
    /// The body does not parse at all: JSON syntax, PEM armour, base64 (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// The body is in a format this endpoint does not read (HTTP 415).
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A file could not be read (`vigie import`).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed (HTTP 500/503).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The CA's learned CRL scope could not be updated (HTTP 500).
    #[error(transparent)]
    Scope(#[from] crate::crl::scope::Error),
}

impl Error {
    /// The same error, located at `item` of a batch (e.g. `revocations[3]`): a field becomes
    /// `revocations[3].serial`, a conflict's message is prefixed with the item.
    pub fn within(self, item: &str) -> Error {
        match self {
            Error::Invalid { field, message } => Error::Invalid {
                field: if field.is_empty() {
                    item.to_owned()
                } else {
                    format!("{item}.{field}")
                },
                message,
            },
            Error::Conflict(m) => Error::Conflict(format!("{item}: {m}")),
            Error::NotFound(m) => Error::NotFound(format!("{item}: {m}")),
            Error::UnknownCertificate(m) => Error::UnknownCertificate(format!("{item}: {m}")),
            Error::Malformed(m) => Error::Malformed(format!("{item}: {m}")),
            other => other,
        }
    }

    /// A field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// notBefore recorded when it is not known (OpenSSL's `index.txt` does not carry it): the epoch.
/// No real certificate has it; a later issuance of the same certificate with its true notBefore
/// completes the record instead of conflicting with it.
pub const NOT_BEFORE_UNKNOWN: UnixTime = UnixTime::EPOCH;

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

/// Applies one change to (ca, serial) within `tx`, under the default [`Rules`].
pub fn apply(
    tx: &mut Tx<'_>,
    ca: &CaId,
    serial: &Serial,
    change: &Change,
) -> Result<Outcome, Error> {
    apply_with(tx, ca, serial, change, &Rules::default())
}

/// Applies one change to (ca, serial) within `tx`, under the CA's `rules`.
pub fn apply_with(
    tx: &mut Tx<'_>,
    ca: &CaId,
    serial: &Serial,
    change: &Change,
    rules: &Rules,
) -> Result<Outcome, Error> {
    let current = tx.record(ca, serial)?;
    let now = tx.now();
    let decision = decide_with(current.as_ref(), change, now, rules).map_err(|e| match e {
        Error::UnknownCertificate(m) => {
            Error::UnknownCertificate(format!("serial {serial} of CA {ca}: {m}"))
        }
        other => other,
    })?;
    match decision {
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

/// Applies `changes` in one transaction over every CA they name: all of them, or none (the
/// first refusal is returned, located at `{label}[i]` when `label` is given, and nothing is
/// written). Returns once the transaction is durable, with each change's outcome in order.
/// The default [`Rules`] apply (what offline callers want); the ingest API goes through
/// [`audit::commit_audited`] with each CA's rules.
pub fn commit(
    store: &Store,
    now: UnixTime,
    changes: &[request::CertChange],
    label: Option<&str>,
) -> Result<Vec<Outcome>, Error> {
    store.transact(&cas_of(changes), now, |tx| {
        apply_all(tx, changes, label, &|_| Rules::default())
    })
}

/// The CAs `changes` name, sorted, once each.
fn cas_of(changes: &[request::CertChange]) -> Vec<CaId> {
    let mut cas: Vec<CaId> = changes.iter().map(|c| c.ca.clone()).collect();
    cas.sort();
    cas.dedup();
    cas
}

/// Applies `changes` in order within `tx`, each under its CA's `rules`; the first refusal is
/// located at `{label}[i]`.
fn apply_all(
    tx: &mut Tx<'_>,
    changes: &[request::CertChange],
    label: Option<&str>,
    rules: &dyn Fn(&CaId) -> Rules,
) -> Result<Vec<Outcome>, Error> {
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            register_with(tx, c, &rules(&c.ca)).map_err(|e| match label {
                Some(label) => e.within(&format!("{label}[{i}]")),
                None => e,
            })
        })
        .collect()
}

/// Applies one change; a registration that is written (new, or completing an import) counts
/// the certificate's distribution points, when known, in its CA's learned CRL scope, in the same
/// batch ([`crate::crl::scope::record_in_tx`]). A replay counts nothing.
pub fn register(tx: &mut Tx<'_>, c: &request::CertChange) -> Result<Outcome, Error> {
    register_with(tx, c, &Rules::default())
}

/// [`register`] under the CA's `rules`.
pub fn register_with(
    tx: &mut Tx<'_>,
    c: &request::CertChange,
    rules: &Rules,
) -> Result<Outcome, Error> {
    let outcome = apply_with(tx, &c.ca, &c.serial, &c.change, rules)?;
    if let (Outcome::Applied { .. }, Change::Issue(_), Some(dps)) =
        (&outcome, &c.change, &c.distribution_points)
    {
        crate::crl::scope::record_in_tx(tx, &c.ca, dps)?;
    }
    Ok(outcome)
}

enum Decision {
    Unchanged,
    Write(CertRecord, EventKind),
}

#[cfg(test)]
fn decide(current: Option<&CertRecord>, change: &Change, now: UnixTime) -> Result<Decision, Error> {
    decide_with(current, change, now, &Rules::default())
}

fn decide_with(
    current: Option<&CertRecord>,
    change: &Change,
    now: UnixTime,
    rules: &Rules,
) -> Result<Decision, Error> {
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
                    field: "not_after".into(),
                    message: "is not after notBefore".into(),
                });
            }
            match &record.issuance {
                Some(existing)
                    if existing.not_after == issuance.not_after
                        && (existing.not_before == issuance.not_before
                            || issuance.not_before == NOT_BEFORE_UNKNOWN) =>
                {
                    Ok(Decision::Unchanged)
                }
                // An import (notBefore unknown) completed by the certificate itself.
                Some(existing)
                    if existing.not_after == issuance.not_after
                        && existing.not_before == NOT_BEFORE_UNKNOWN =>
                {
                    let completed = Issuance {
                        subject: issuance
                            .subject
                            .clone()
                            .or_else(|| existing.subject.clone()),
                        profile: issuance
                            .profile
                            .clone()
                            .or_else(|| existing.profile.clone()),
                        ..issuance.clone()
                    };
                    Ok(Decision::Write(
                        CertRecord {
                            issuance: Some(completed.clone()),
                            ..record
                        },
                        EventKind::Issued(completed),
                    ))
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
            rules::check_revocation(&record, req, revoked_at, now, rules)?;
            let wanted = Revocation {
                revoked_at,
                reason: req.reason,
                invalidity_date: req.invalidity_date,
            };
            match &record.revocation {
                Some(existing) => {
                    // An omitted time means "as recorded": a retry without it is a replay.
                    let same = existing.reason == req.reason
                        && req.revoked_at.is_none_or(|t| t == existing.revoked_at)
                        && req
                            .invalidity_date
                            .is_none_or(|d| existing.invalidity_date == Some(d));
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
                        // Keep the original time (the hold's too) unless the CA gives an
                        // earlier one: a later time would un-revoke the certificate for a
                        // while, and signatures made during a hold would validate historically.
                        updated.revoked_at = updated.revoked_at.min(existing.revoked_at);
                        if req.revoked_at.is_none() {
                            updated.revoked_at = existing.revoked_at;
                        }
                        if req.invalidity_date.is_none() {
                            updated.invalidity_date = existing.invalidity_date;
                        }
                        if updated
                            .invalidity_date
                            .is_some_and(|d| d > updated.revoked_at)
                        {
                            return Err(Error::Invalid {
                                field: "invalidity_date".into(),
                                message: format!(
                                    "must not be after the revocation time {} (RFC 5280 §5.3.2)",
                                    updated.revoked_at
                                ),
                            });
                        }
                        // Replaying an upgrade whose time was kept changes nothing.
                        if updated == *existing {
                            return Ok(Decision::Unchanged);
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
                rules::check_release(&record, rules)?;
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
            Some(UnixTime(6)),
            "keeps the original time: the hold's"
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

    #[test]
    fn key_compromise_upgrade_never_moves_the_revocation_later_and_replays_cleanly() {
        let superseded =
            written(decide(None, &rev(RevocationReason::Superseded), UnixTime(100)).expect("ok"));
        let later = Change::Revoke(RevocationRequest {
            revoked_at: Some(UnixTime(150)),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        });
        let kc = written(decide(Some(&superseded), &later, UnixTime(200)).expect("upgrade"));
        assert_eq!(
            kc.revocation.as_ref().map(|r| r.revoked_at),
            Some(UnixTime(100)),
            "a later time would leave a window where the certificate looks good"
        );
        assert!(matches!(
            decide(Some(&kc), &later, UnixTime(300)),
            Ok(Decision::Unchanged)
        ));
        let earlier = Change::Revoke(RevocationRequest {
            revoked_at: Some(UnixTime(50)),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime(40)),
        });
        let kc2 = written(decide(Some(&kc), &earlier, UnixTime(300)).expect("earlier"));
        assert_eq!(
            kc2.revocation.as_ref().map(|r| r.revoked_at),
            Some(UnixTime(50))
        );
        let late_invalidity = Change::Revoke(RevocationRequest {
            revoked_at: None,
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime(120)),
        });
        assert!(matches!(
            decide(Some(&superseded), &late_invalidity, UnixTime(300)),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn an_imported_issuance_is_completed_by_the_certificate() {
        let imported = Issuance {
            not_before: NOT_BEFORE_UNKNOWN,
            not_after: UnixTime(100),
            subject: Some("CN=x".into()),
            profile: None,
        };
        let real = Issuance {
            not_before: UnixTime(10),
            not_after: UnixTime(100),
            subject: None,
            profile: Some("clientAuth".into()),
        };
        let r = written(decide(None, &Change::Issue(imported.clone()), UnixTime(5)).expect("ok"));
        let completed =
            written(decide(Some(&r), &Change::Issue(real.clone()), UnixTime(6)).expect("ok"));
        let i = completed.issuance.expect("issued");
        assert_eq!(i.not_before, UnixTime(10));
        assert_eq!(i.subject.as_deref(), Some("CN=x"));
        assert_eq!(i.profile.as_deref(), Some("clientAuth"));
        // Importing again after the certificate was registered changes nothing.
        let again = CertRecord {
            issuance: Some(real),
            revocation: None,
            version: 2,
        };
        assert!(matches!(
            decide(Some(&again), &Change::Issue(imported), UnixTime(7)),
            Ok(Decision::Unchanged)
        ));
    }

    #[test]
    fn errors_are_located_within_a_batch() {
        let e = Error::invalid("serial", "bad").within("revocations[3]");
        assert_eq!(e.to_string(), "revocations[3].serial: bad");
        let e = Error::Conflict("no".into()).within("revocations[1]");
        assert_eq!(e.to_string(), "revocations[1]: no");
    }

    #[test]
    fn the_rules_of_a_ca() {
        let strict = Rules {
            accept_unregistered_revocations: false,
            unknown_serial_revoked: true,
            max_clock_skew: 60,
        };
        let at = |t: i64, reason| {
            Change::Revoke(RevocationRequest {
                revoked_at: Some(UnixTime(t)),
                reason: Some(reason),
                invalidity_date: None,
            })
        };
        assert!(matches!(
            decide_with(
                None,
                &rev(RevocationReason::Superseded),
                UnixTime(5),
                &strict
            ),
            Err(Error::UnknownCertificate(_))
        ));
        let issued = written(decide(None, &Change::Issue(iss()), UnixTime(5)).expect("ok"));
        let issued = CertRecord {
            issuance: Some(Issuance {
                not_before: UnixTime(1000),
                ..iss()
            }),
            ..issued
        };
        assert!(matches!(
            decide_with(Some(&issued), &at(999, RevocationReason::Superseded), UnixTime(2000), &strict),
            Err(Error::Invalid { ref field, .. }) if field == "revoked_at"
        ));
        assert!(matches!(
            decide_with(Some(&issued), &at(2061, RevocationReason::Superseded), UnixTime(2000), &strict),
            Err(Error::Invalid { ref field, .. }) if field == "revoked_at"
        ));
        let held = written(
            decide_with(
                Some(&issued),
                &at(1500, RevocationReason::CertificateHold),
                UnixTime(2000),
                &strict,
            )
            .expect("hold"),
        );
        let final_ = written(
            decide_with(
                Some(&held),
                &at(1900, RevocationReason::KeyCompromise),
                UnixTime(2000),
                &strict,
            )
            .expect("final"),
        );
        assert_eq!(
            final_.revocation.map(|r| r.revoked_at),
            Some(UnixTime(1500))
        );
        // Releasing a hold on a never-registered serial under unknown_serial = "revoked".
        let lenient = Rules {
            accept_unregistered_revocations: true,
            ..strict
        };
        let held_unregistered = written(
            decide_with(
                None,
                &rev(RevocationReason::CertificateHold),
                UnixTime(5),
                &lenient,
            )
            .expect("recorded"),
        );
        assert!(matches!(
            decide_with(
                Some(&held_unregistered),
                &Change::Release,
                UnixTime(6),
                &lenient
            ),
            Err(Error::Conflict(_))
        ));
        assert!(
            decide(Some(&held_unregistered), &Change::Release, UnixTime(6)).is_ok(),
            "under unknown_serial = \"unknown\" the release is fine"
        );
    }

    #[test]
    fn a_retry_without_the_invalidity_date_keeps_it() {
        let with_date = Change::Revoke(RevocationRequest {
            revoked_at: Some(UnixTime(100)),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime(50)),
        });
        let kc = written(decide(None, &with_date, UnixTime(200)).expect("ok"));
        assert!(matches!(
            decide(
                Some(&kc),
                &rev(RevocationReason::KeyCompromise),
                UnixTime(300)
            ),
            Ok(Decision::Unchanged)
        ));
        let superseded =
            written(decide(None, &rev(RevocationReason::Superseded), UnixTime(100)).expect("ok"));
        let kc = written(decide(Some(&superseded), &with_date, UnixTime(200)).expect("ok"));
        assert_eq!(
            kc.revocation.as_ref().and_then(|r| r.invalidity_date),
            Some(UnixTime(50))
        );
        assert!(matches!(
            decide(
                Some(&kc),
                &rev(RevocationReason::KeyCompromise),
                UnixTime(300)
            ),
            Ok(Decision::Unchanged)
        ));
    }
}
