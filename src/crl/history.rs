//! The CRL history: past CRLs served by number (`GET /crl/{ca}/{number}.crl`, evidence for
//! audits and disputes), and its retention.
//!
//! **Reads.** A past CRL is read from the store (tens of MB for a large CA). Reads go through
//! a cache of [`CACHE_BYTES`] (weighted by size; concurrent requests for the same CRL share one
//! read) and at most [`MAX_LOADS`] store reads at once: beyond that, [`Error::Busy`] (HTTP 503
//! with `Retry-After`), so that a client asking for many old CRLs in parallel cannot tie up the
//! blocking threads or memory. The current CRLs are served from memory, outside both.
//!
//! **Retention.** `[crl] keep_history` (default 400 days): when a CA's CRLs are built, its CRLs
//! whose thisUpdate is older than that are deleted — record and DER pieces in one batch —
//! except the current complete and delta CRLs. Numbering does not depend on the history: the
//! next number is kept in the `meta` CF (`crl_next_number`), written with each CRL's record, so
//! a pruned number is never given again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use quick_cache::sync::{Cache, GuardResult};

use super::{CaSlot, CrlKind, CrlNumber, Error, PublishedCrl, Publisher, decode_record, read};
use crate::model::{CaId, UnixTime};
use crate::store::keys;

/// Memory for cached history CRLs.
pub const CACHE_BYTES: u64 = 64 << 20;

/// Store reads of history CRLs allowed at once.
pub const MAX_LOADS: usize = 4;

#[derive(Clone)]
struct BySize;

impl quick_cache::Weighter<(CaId, u64), Arc<PublishedCrl>> for BySize {
    fn weight(&self, _: &(CaId, u64), crl: &Arc<PublishedCrl>) -> u64 {
        crl.der.len() as u64 + 512
    }
}

/// The history cache and its read limit.
pub struct History {
    cache: Cache<(CaId, u64), Arc<PublishedCrl>, BySize>,
    loads: AtomicUsize,
}

impl Default for History {
    fn default() -> Self {
        History {
            cache: Cache::with_weighter(256, CACHE_BYTES, BySize),
            loads: AtomicUsize::new(0),
        }
    }
}

/// A slot among the [`MAX_LOADS`], released on drop.
struct LoadSlot<'a>(&'a AtomicUsize);

impl Drop for LoadSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl History {
    fn slot(&self) -> Option<LoadSlot<'_>> {
        let taken = self.loads.fetch_add(1, Ordering::AcqRel);
        let slot = LoadSlot(&self.loads);
        (taken < MAX_LOADS).then_some(slot)
    }
}

impl Publisher {
    /// A CRL of a CA by number: a current one from memory, a past one through the history
    /// cache. `Ok(None)` when the CA has no CRL with that number (never had, or pruned);
    /// [`Error::Busy`] when [`MAX_LOADS`] history reads are already running.
    pub fn history_crl(&self, ca: &str, number: u64) -> Result<Option<Arc<PublishedCrl>>, Error> {
        let slot = self.slot(ca)?;
        let current = read(&slot.current).clone();
        for p in [current.full, current.delta].into_iter().flatten() {
            if p.record.number == number {
                return Ok(Some(p));
            }
        }
        let key = (slot.ca.id.clone(), number);
        if let Some(hit) = self.history.cache.get(&key) {
            return Ok(Some(hit));
        }
        let Some(_load) = self.history.slot() else {
            return Err(Error::Busy);
        };
        match self.history.cache.get_value_or_guard(&key, None) {
            GuardResult::Value(v) => Ok(Some(v)),
            GuardResult::Guard(guard) => {
                let loaded = self.by_number(ca, number)?;
                if let Some(crl) = &loaded {
                    let _ = guard.insert(Arc::clone(crl));
                }
                Ok(loaded)
            }
            GuardResult::Timeout => Err(Error::Busy),
        }
    }

    /// Deletes the CA's CRLs whose thisUpdate is before `now − keep_history`, except the
    /// current ones. Called with the CA's build lock held, after a build. Returns how many.
    pub(super) fn prune_history(&self, slot: &CaSlot, now: UnixTime) -> Result<usize, Error> {
        let cutoff = now.minus(self.settings.keep_history);
        let current = read(&slot.current).clone();
        let keep: Vec<u64> = [current.full, current.delta]
            .into_iter()
            .flatten()
            .map(|p| p.record.number)
            .collect();
        let ca = &slot.ca.id;
        let mut records = Vec::new();
        let mut pieces = Vec::new();
        let mut numbers = Vec::new();
        for kind in [CrlKind::Full, CrlKind::Delta] {
            for kv in self
                .store
                .crl_entries(keys::crl_kind_prefix(ca, kind.record_kind()))
            {
                let (key, value) = kv?;
                let record = decode_record(&value)?;
                // Numbers grow with time (one writer numbers a CA's CRLs): the first recent
                // record ends the old ones.
                if record.this_update >= cutoff {
                    break;
                }
                if keep.contains(&record.number) {
                    continue;
                }
                let number = CrlNumber::new(record.number);
                records.push(key.to_vec());
                pieces.push(keys::crl(ca, kind == CrlKind::Delta, &number.key_bytes()));
                numbers.push(record.number);
            }
        }
        if records.is_empty() {
            return Ok(0);
        }
        self.store.delete_crls(&records, &pieces)?;
        for n in &numbers {
            self.history.cache.remove(&(ca.clone(), *n));
        }
        tracing::info!(
            ca = %ca,
            pruned = numbers.len(),
            oldest = numbers.iter().min(),
            newest = numbers.iter().max(),
            "CRL history pruned (older than [crl] keep_history)"
        );
        Ok(numbers.len())
    }
}
