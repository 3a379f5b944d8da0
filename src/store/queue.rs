//! The publication queue: the `publish` column family, one entry per (sink, CA, kind, CRL
//! number) that a sink has not yet confirmed.
//!
//! Entries are written by the CRL publisher in the same synced batch that makes a CRL current
//! ([`Store::write_synced_queued`]), so a CRL that is served is also queued, even across a
//! crash; a sink's worker ([`crate::publish`]) removes them once the sink holds that CRL or a
//! newer one. The value is small ([`QueuedCrl`]): the DER stays in the `crl` column family.
//!
//! Key: `len ‖ sink ‖ ca ‖ kind ‖ number (20 octets, big-endian)`, kind 0 = complete, 1 =
//! delta, so one sink's entries are contiguous and, per CA and kind, in number order.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use super::{Error, Store, cf, decode, encode, keys};
use crate::model::{CaId, UnixTime};

/// A CRL waiting for one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedCrl {
    /// The sink's identity (see [`crate::publish::SinkConfig::id`]).
    pub sink: String,
    /// The CA.
    pub ca: CaId,
    /// A delta CRL (else complete).
    pub delta: bool,
    /// Its CRLNumber.
    pub number: u64,
    /// When it was queued (= made current).
    pub enqueued_at: UnixTime,
    /// Its nextUpdate: a sink still behind it then is lagging past what relying parties accept.
    pub next_update: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct Value {
    enqueued_at: UnixTime,
    next_update: UnixTime,
}

fn sink_prefix(sink: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + sink.len() + 40);
    k.push(sink.len().min(255) as u8);
    k.extend_from_slice(&sink.as_bytes()[..sink.len().min(255)]);
    k
}

impl QueuedCrl {
    /// Its key in the `publish` column family.
    pub fn key(&self) -> Vec<u8> {
        let mut k = sink_prefix(&self.sink);
        k.extend_from_slice(&keys::ca_prefix(&self.ca));
        k.push(u8::from(self.delta));
        k.extend_from_slice(&[0u8; 12]);
        k.extend_from_slice(&self.number.to_be_bytes());
        k
    }

    /// Its value in the `publish` column family.
    pub fn value(&self) -> Vec<u8> {
        encode(&Value {
            enqueued_at: self.enqueued_at,
            next_update: self.next_update,
        })
    }

    fn parse(key: &[u8], value: &[u8]) -> Result<QueuedCrl, Error> {
        let bad = || Error::Corrupt {
            cf: cf::PUBLISH,
            message: "bad key".into(),
        };
        let (&sink_len, rest) = key.split_first().ok_or_else(bad)?;
        let sink = rest.get(..sink_len as usize).ok_or_else(bad)?;
        let rest = &rest[sink_len as usize..];
        let (&ca_len, rest) = rest.split_first().ok_or_else(bad)?;
        let ca = rest.get(..ca_len as usize).ok_or_else(bad)?;
        let rest = &rest[ca_len as usize..];
        if rest.len() != 21 || rest[0] > 1 || rest[1..13].iter().any(|&b| b != 0) {
            return Err(bad());
        }
        let mut number = [0u8; 8];
        number.copy_from_slice(&rest[13..]);
        let v: Value = decode(cf::PUBLISH, value)?;
        Ok(QueuedCrl {
            sink: String::from_utf8(sink.to_vec()).map_err(|_| bad())?,
            ca: std::str::from_utf8(ca)
                .ok()
                .and_then(|s| CaId::new(s).ok())
                .ok_or_else(bad)?,
            delta: rest[0] == 1,
            number: u64::from_be_bytes(number),
            enqueued_at: v.enqueued_at,
            next_update: v.next_update,
        })
    }
}

impl Store {
    /// Every entry waiting for `sink`, by CA, kind and number.
    pub fn queued(&self, sink: &str) -> Result<Vec<QueuedCrl>, Error> {
        let prefix = sink_prefix(sink);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(
            self.cf(cf::PUBLISH),
            ro,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (k, v) = item?;
            out.push(QueuedCrl::parse(&k, &v)?);
        }
        Ok(out)
    }

    /// The sinks that have entries waiting (to drop those of sinks no longer configured).
    pub fn queued_sinks(&self) -> Result<Vec<String>, Error> {
        let mut out: Vec<String> = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf::PUBLISH), IteratorMode::Start)
        {
            let (k, v) = item?;
            let q = QueuedCrl::parse(&k, &v)?;
            if !out.contains(&q.sink) {
                out.push(q.sink);
            }
        }
        Ok(out)
    }

    /// Queues entries outside a CRL's batch (a sink's start-up catch-up). Synced.
    pub fn enqueue(&self, entries: &[QueuedCrl]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.put_cf(self.cf(cf::PUBLISH), e.key(), e.value());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Removes entries a sink confirmed. Not synced: after a crash an entry may come back, and
    /// publishing a CRL the sink already holds is a no-op.
    pub fn dequeue(&self, entries: &[QueuedCrl]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.delete_cf(self.cf(cf::PUBLISH), e.key());
        }
        self.db.write(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn entries_round_trip_in_order_and_leave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("aci").expect("valid");
        let store = Store::open(
            dir.path(),
            std::slice::from_ref(&ca),
            &StoreOptions::default(),
        )
        .expect("opens");
        let item = |sink: &str, delta, number| QueuedCrl {
            sink: sink.into(),
            ca: ca.clone(),
            delta,
            number,
            enqueued_at: UnixTime(5),
            next_update: UnixTime(99),
        };
        let entries = [
            item("ldap:ldap://x", false, 300),
            item("ldap:ldap://x", true, 2),
            item("ldap:ldap://x", false, 7),
            item("directory:/srv", false, 7),
        ];
        store
            .write_synced_queued::<&[u8], &[u8]>(
                &[],
                &[],
                &entries
                    .iter()
                    .map(|e| (e.key(), e.value()))
                    .collect::<Vec<_>>(),
            )
            .expect("writes");
        let got = store.queued("ldap:ldap://x").expect("reads");
        assert_eq!(
            got.iter().map(|q| (q.delta, q.number)).collect::<Vec<_>>(),
            vec![(false, 7), (false, 300), (true, 2)]
        );
        assert_eq!(got[0], entries[2]);
        let mut sinks = store.queued_sinks().expect("reads");
        sinks.sort();
        assert_eq!(
            sinks,
            vec!["directory:/srv".to_owned(), "ldap:ldap://x".to_owned()]
        );
        store.dequeue(&got[..2]).expect("removes");
        assert_eq!(store.queued("ldap:ldap://x").expect("reads").len(), 1);
        assert_eq!(store.queued("directory:/srv").expect("reads").len(), 1);
    }
}
