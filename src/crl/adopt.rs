//! Adopting a CRL built elsewhere: a replica ([`crate::replicate`]) stores and serves the exact
//! bytes its writer published, with the writer's record, instead of building its own. Numbers
//! stay those of the writer's sequence, and the next number kept in `meta` follows them, so a
//! replica promoted to writer continues the sequence.
//!
//! An adopted CRL becomes current exactly as a built one does: queued for this node's
//! publication sinks in the same batch as its record, and announced to every subscriber
//! ([`super::announce`]) — HTTP serves what is announced, so a CRL adopted without an
//! announcement would never be served.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    CrlKind, CrlNumber, CrlRecord, Error, NEXT_NUMBER, PIECE_BYTES, PublishedCrl, Publisher, write,
};
use crate::model::CaId;
use crate::store::keys;

impl Publisher {
    /// Stores a CRL published by the writer — its DER pieces, then its record, the next number
    /// and the `extra_meta` store-wide values (a replica's stream position) in one synced batch
    /// — and makes it current if it is newer than the current one of its kind. A CRL already
    /// stored under this number is not written again (only `extra_meta` is). Returns whether
    /// it was new.
    pub fn adopt(
        &self,
        ca: &CaId,
        record: CrlRecord,
        der: Bytes,
        extra_meta: &[(&str, &[u8])],
    ) -> Result<bool, Error> {
        let slot = self.slot(ca.as_str())?;
        if der.len() as u64 != record.bytes {
            return Err(Error::Corrupt(format!(
                "CRL {} of {ca}: {} octets received, {} recorded",
                record.number,
                der.len(),
                record.bytes
            )));
        }
        let number = CrlNumber::new(record.number);
        let record_key = keys::crl_record(ca, record.kind.is_delta(), &number.key_bytes());
        let globals: Vec<(Vec<u8>, &[u8])> = extra_meta
            .iter()
            .map(|(name, v)| (keys::global_meta(name), *v))
            .collect();
        let _guard = super::lock(&slot.building);
        if self.store.crl_bytes(&record_key)?.is_some() {
            let none: &[(Vec<u8>, &[u8])] = &[];
            self.store.write_synced(none, &globals)?;
            return Ok(false);
        }
        self.store.ingest_crl(
            der.chunks(PIECE_BYTES)
                .enumerate()
                .map(|(i, piece)| (Self::piece_key(ca, record.kind, number, i as u32), piece)),
        )?;
        let record_bytes = postcard::to_stdvec(&record)
            .map_err(|e| Error::Corrupt(format!("CRL record does not encode: {e}")))?;
        let stored_next = match self.store.meta(ca, NEXT_NUMBER)? {
            Some(v) => v.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0),
            None => 0,
        };
        let next = number.next()?.value().max(stored_next).to_be_bytes();
        let mut meta: Vec<(Vec<u8>, &[u8])> = vec![(keys::meta(ca, NEXT_NUMBER), &next[..])];
        meta.extend(globals);
        let queued = self.queue_entries(ca, &record);
        self.store
            .write_synced_queued(&[(record_key, record_bytes.as_slice())], &meta, &queued)?;
        let kind = record.kind;
        let published = Arc::new(PublishedCrl::new(ca.clone(), record, der, None));
        let mut current = write(&slot.current);
        let newer = |c: &Option<Arc<PublishedCrl>>| {
            c.as_ref()
                .is_none_or(|c| c.record.number < published.record.number)
        };
        let made_current = match kind {
            CrlKind::Full if newer(&current.full) => {
                current.full = Some(Arc::clone(&published));
                if current
                    .delta
                    .as_ref()
                    .is_some_and(|d| d.record.base != Some(published.record.number))
                {
                    current.delta = None;
                }
                true
            }
            CrlKind::Delta
                if newer(&current.delta)
                    && current
                        .full
                        .as_ref()
                        .is_some_and(|f| published.record.base == Some(f.record.number)) =>
            {
                current.delta = Some(Arc::clone(&published));
                true
            }
            _ => false,
        };
        // The publication event, under the lock as for a built CRL: subscribers see a CA's
        // CRLs in order.
        if made_current {
            for subscriber in super::read(&self.subscribers).iter() {
                subscriber.announce(&published);
            }
        }
        drop(current);
        tracing::info!(
            %ca,
            kind = kind.label(),
            number = published.record.number,
            bytes = published.record.bytes,
            "CRL adopted from the writer"
        );
        Ok(true)
    }

    /// The publication queue entries of a CRL about to become current: one per sink, written
    /// in the batch that stores its record, so a current CRL is never missing from a sink's
    /// queue, even after a crash.
    pub(super) fn queue_entries(&self, ca: &CaId, record: &CrlRecord) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.sinks
            .iter()
            .map(|sink| {
                let q = crate::store::queue::QueuedCrl {
                    sink: sink.clone(),
                    ca: ca.clone(),
                    delta: record.kind.is_delta(),
                    number: record.number,
                    enqueued_at: self.clock.now(),
                    next_update: record.next_update,
                };
                (q.key(), q.value())
            })
            .collect()
    }

    /// The highest CRL number of a CA among its current CRLs (0: none).
    pub fn latest_number(&self, ca: &CaId) -> Result<u64, Error> {
        let current = self.current(ca.as_str())?;
        Ok([current.full, current.delta]
            .into_iter()
            .flatten()
            .map(|p| p.record.number)
            .max()
            .unwrap_or(0))
    }
}
