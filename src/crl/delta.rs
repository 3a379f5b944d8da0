//! What goes on a delta CRL (RFC 5280 §5.2.4): exactly the entries that differ between its base
//! CRL and the complete CRL that would be built now, so that *base ⊕ delta = current status*:
//!
//! - a serial listed now but not on the base, or listed differently (a hold became a final
//!   revocation, a reason changed, an invalidity date was added) → its current entry;
//! - a serial on the base but no longer listed — a released certificateHold, or an expired
//!   certificate past its retention — → a `removeFromCRL` entry (§5.3.1), dated with the base
//!   entry's revocationDate.
//!
//! Which serials can differ is known without scanning every revocation: those touched by an
//! event since the base's watermark (the last event sequence number it covered), plus those the
//! base recorded as leaving by retention before its horizon ([`super::CrlRecord::expiring`]).
//! Their base entries are found with one merge pass over the base CRL's DER (both are in serial
//! order); the comparison is on the encoded entries, byte for byte.
//!
//! Reading the store and encoding are left to [`crate::store`] and [`super::build`].

use std::collections::BTreeSet;

use super::build::{self, CrlEntry, EntryReason, RawEntry};
use super::{CrlRecord, Error};
use crate::model::{KeepExpired, Serial, UnixTime};
use crate::store::{RevocationView, RevokedEntry};

/// When an entry for a certificate with this notAfter leaves complete CRLs, under this
/// retention; `None`: never (no notAfter known, or kept forever).
pub fn drop_time(not_after: Option<UnixTime>, keep: KeepExpired) -> Option<UnixTime> {
    match (not_after, keep) {
        (Some(na), KeepExpired::For(secs)) => Some(na.plus(secs)),
        _ => None,
    }
}

/// Whether a revoked certificate is still listed at `now`.
pub fn listed(entry: &RevokedEntry, now: UnixTime, keep: KeepExpired) -> bool {
    drop_time(entry.not_after, keep).is_none_or(|t| t > now)
}

/// The complete CRL's entry for a revoked serial.
pub fn full_entry(serial: &[u8], entry: &RevokedEntry) -> CrlEntry {
    CrlEntry {
        serial: serial.to_vec(),
        revoked_at: entry.revocation.revoked_at,
        reason: EntryReason::Revoked(entry.revocation.reason),
        invalidity_date: entry.revocation.invalidity_date,
    }
}

fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The delta entries against `base` (whose DER is `base_der`), as of `view` at time `now`,
/// in serial order. `base_der` must be the CRL `base` describes.
pub fn delta_entries(
    view: &RevocationView<'_>,
    base_der: &[u8],
    base: &CrlRecord,
    now: UnixTime,
    keep: KeepExpired,
) -> Result<Vec<CrlEntry>, Error> {
    let mut touched: BTreeSet<Serial> = BTreeSet::new();
    for event in view.events_after(base.watermark) {
        touched.insert(event?.serial);
    }
    for (serial, drop_at) in &base.expiring {
        if *drop_at <= now {
            let s = Serial::from_magnitude(serial)
                .map_err(|e| Error::Corrupt(format!("CRL record: {e}")))?;
            touched.insert(s);
        }
    }
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let touched: Vec<Serial> = touched.into_iter().collect();

    // One merge pass over the base's entries: both sides are in serial order.
    let mut on_base: Vec<Option<RawEntry<'_>>> = vec![None; touched.len()];
    let mut i = 0;
    build::for_each_raw_entry(base_der, |raw| {
        while i < touched.len()
            && cmp_magnitude(touched[i].magnitude(), raw.serial) == std::cmp::Ordering::Less
        {
            i += 1;
        }
        if i < touched.len() && touched[i].magnitude() == raw.serial {
            on_base[i] = Some(raw);
        }
        Ok(())
    })?;

    let mut out = Vec::new();
    let mut encoded = Vec::with_capacity(96);
    for (serial, base_entry) in touched.iter().zip(on_base) {
        let now_entry = view
            .revoked_entry(serial)?
            .filter(|e| listed(e, now, keep))
            .map(|e| full_entry(serial.magnitude(), &e));
        match (now_entry, base_entry) {
            (Some(e), Some(raw)) => {
                encoded.clear();
                build::encode_entry(
                    &mut encoded,
                    &e.serial,
                    e.revoked_at,
                    e.reason,
                    e.invalidity_date,
                )?;
                if encoded != raw.der {
                    out.push(e);
                }
            }
            (Some(e), None) => out.push(e),
            (None, Some(raw)) => out.push(CrlEntry {
                serial: serial.magnitude().to_vec(),
                revoked_at: raw.revocation_date()?,
                reason: EntryReason::RemoveFromCrl,
                invalidity_date: None,
            }),
            (None, None) => {}
        }
    }
    Ok(out)
}
