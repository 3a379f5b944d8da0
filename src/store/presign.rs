//! What pre-signing needs from the store: a walk over one CA's certificates and stored OCSP
//! responses together, in serial order, reading only the head of each response (its version
//! and times, not its DER), in chunks so that no iterator (and the files it pins) lives long.
//!
//! The two column families share their key order: a `certs` key is `ca ‖ len ‖ serial`, an
//! `ocsp` key the same followed by one variant octet, so one merge pass pairs each record with
//! its stored responses.

use rocksdb::ReadOptions;

use super::{Error, Maker, Store, cf, decode, keys};
use crate::model::{CaId, CertRecord, Serial, UnixTime};

/// The head of a [`super::StoredResponse`]: its version, times and maker, without its DER
/// (skipped, not copied: see [`super::maker`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// [`CertRecord::version`] it was signed from (0: no record).
    pub version: u64,
    /// When it was signed.
    pub produced_at: UnixTime,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// Who made it (`None`: a record from before makers).
    pub maker: Option<Maker>,
}

/// One serial of a CA as pre-signing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignEntry {
    /// The serial.
    pub serial: Serial,
    /// The version of its record, when it has one.
    pub record_version: Option<u64>,
    /// Whether the record registers an issuance or a revocation (a status worth pre-signing).
    pub registered: bool,
    /// Its stored responses: (variant, head), by variant.
    pub stored: Vec<(u8, StoredHead)>,
}

fn head(value: &[u8]) -> Result<StoredHead, Error> {
    super::maker::decode_head(value)
}

/// One entry of the walk that does not decode: logged and counted in
/// `vigie_refresh_errors_total{ca, task="presign"}`; the walk goes on with the others.
fn skipped(ca: &CaId, e: &Error) {
    metrics::counter!(crate::metrics::REFRESH_ERRORS, "ca" => ca.to_string(), "task" => "presign")
        .increment(1);
    tracing::error!(ca = %ca, error = %e, "pre-signing skips an entry that does not decode; going on with the others");
}

impl Store {
    /// The head (version and times) of a stored OCSP response.
    pub fn ocsp_head(
        &self,
        ca: &CaId,
        serial: &Serial,
        variant: u8,
    ) -> Result<Option<StoredHead>, Error> {
        match self
            .db
            .get_pinned_cf(self.cf(cf::OCSP), keys::ocsp(ca, serial, variant))?
        {
            Some(v) => Ok(Some(head(&v)?)),
            None => Ok(None),
        }
    }

    /// Up to `max` serials of `ca` that have a record or a stored response, in serial order,
    /// starting after `after` (from the first when `None`). The second value says whether more
    /// follow. Bypasses the block cache, like every whole-CA scan. A key or value that does not
    /// decode is skipped and reported ([`skipped`]): one bad entry does not stop the walk.
    pub fn presign_chunk(
        &self,
        ca: &CaId,
        after: Option<&Serial>,
        max: usize,
    ) -> Result<(Vec<PresignEntry>, bool), Error> {
        let prefix = keys::ca_prefix(ca);
        let upper = keys::prefix_end(&prefix);
        let options = || {
            let mut ro = ReadOptions::default();
            ro.set_iterate_upper_bound(upper.clone());
            ro.fill_cache(false);
            ro
        };
        // Just past `after`: its own record (`k ‖ 0` follows `k` and precedes every greater key,
        // since no serial's key is a prefix of another's) and all its variants (< 0xff).
        let (cert_start, ocsp_start) = match after {
            Some(s) => {
                let k = keys::cert(ca, s);
                let mut c = k.clone();
                c.push(0);
                let mut o = k;
                o.push(0xff);
                (c, o)
            }
            None => (prefix.clone(), prefix.clone()),
        };
        let mut certs = self.db.raw_iterator_cf_opt(self.cf(cf::CERTS), options());
        certs.seek(&cert_start);
        let mut ocsp = self.db.raw_iterator_cf_opt(self.cf(cf::OCSP), options());
        ocsp.seek(&ocsp_start);
        let bad_key = |cf: &'static str| Error::Corrupt {
            cf,
            message: "bad key".into(),
        };
        let mut out = Vec::with_capacity(max.min(4096));
        let mut more = false;
        loop {
            let cert_key = certs.key();
            let ocsp_key = match ocsp.key() {
                // An `ocsp` key is a `certs` key and a variant octet: one that cannot be is
                // skipped (and reported), not the end of the walk.
                Some(k) if k.len() > prefix.len() + 1 => Some(&k[..k.len() - 1]),
                Some(_) => {
                    skipped(ca, &bad_key(cf::OCSP));
                    ocsp.next();
                    continue;
                }
                None => None,
            };
            let key: Vec<u8> = match (cert_key, ocsp_key) {
                (None, None) => break,
                (Some(c), None) => c.to_vec(),
                (None, Some(o)) => o.to_vec(),
                (Some(c), Some(o)) => c.min(o).to_vec(),
            };
            if out.len() >= max {
                more = true;
                break;
            }
            let Some(serial) = keys::serial_of(&key) else {
                // Not a serial's key: skip it in both column families.
                skipped(ca, &bad_key(cf::CERTS));
                if cert_key == Some(key.as_slice()) {
                    certs.next();
                }
                while ocsp
                    .key()
                    .is_some_and(|k| k.len() == key.len() + 1 && k.starts_with(&key))
                {
                    ocsp.next();
                }
                continue;
            };
            let mut entry = PresignEntry {
                serial,
                record_version: None,
                registered: false,
                stored: Vec::new(),
            };
            if cert_key == Some(key.as_slice()) {
                if let Some(v) = certs.value() {
                    match decode::<CertRecord>(cf::CERTS, v) {
                        Ok(record) => {
                            entry.record_version = Some(record.version);
                            entry.registered =
                                record.issuance.is_some() || record.revocation.is_some();
                        }
                        Err(e) => skipped(ca, &e),
                    }
                }
                certs.next();
            }
            while let (Some(k), Some(v)) = (ocsp.key(), ocsp.value()) {
                if k.len() != key.len() + 1 || !k.starts_with(&key) {
                    break;
                }
                match head(v) {
                    Ok(h) => entry.stored.push((k[key.len()], h)),
                    Err(e) => skipped(ca, &e),
                }
                ocsp.next();
            }
            out.push(entry);
        }
        certs.status()?;
        ocsp.status()?;
        Ok((out, more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Issuance};
    use crate::store::{StoreOptions, StoredResponse};

    #[test]
    fn chunks_pair_records_with_their_responses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let other = CaId::new("cb").expect("valid");
        let store = Store::open(
            dir.path(),
            &[ca.clone(), other.clone()],
            &StoreOptions::default(),
        )
        .expect("opens");
        let issuance = Issuance {
            not_before: UnixTime(0),
            not_after: UnixTime(1000),
            subject: None,
            profile: None,
        };
        let serials: Vec<Serial> = (1..=300u16)
            .map(|i| Serial::from_magnitude(&i.to_be_bytes()).expect("valid"))
            .collect();
        store
            .transact(&[ca.clone(), other.clone()], UnixTime(1), |tx| {
                for s in &serials {
                    let rec = CertRecord {
                        issuance: Some(issuance.clone()),
                        revocation: None,
                        version: 0,
                    };
                    tx.put(&ca, s, rec.clone(), EventKind::Issued(issuance.clone()))?;
                    tx.put(&other, s, rec, EventKind::Issued(issuance.clone()))?;
                }
                Ok::<_, Error>(())
            })
            .expect("commits");
        let response = |version| StoredResponse {
            version,
            produced_at: UnixTime(10),
            this_update: UnixTime(9),
            next_update: UnixTime(20),
            der: vec![0x30; 1500],
            maker: None,
            status: None,
        };
        // Serial 7 with two variants, and a response without a record (serial 0x1000, as a
        // store of schema 1 may hold: never stored since).
        for variant in [0, 1] {
            assert!(
                store
                    .put_ocsp_response(&ca, &serials[6], variant, &response(7))
                    .expect("put")
            );
        }
        let lone = Serial::from_hex("1000").expect("valid");
        assert!(
            !store
                .put_ocsp_response(&ca, &lone, 0, &response(0))
                .expect("checked"),
            "no record, no stored answer"
        );
        store
            .put_ocsp_response_unchecked(&ca, &lone, 0, &response(0))
            .expect("put");
        let mut all = Vec::new();
        let mut after: Option<Serial> = None;
        loop {
            let (chunk, more) = store.presign_chunk(&ca, after.as_ref(), 64).expect("walks");
            after = chunk.last().map(|e| e.serial.clone());
            all.extend(chunk);
            if !more {
                break;
            }
        }
        assert_eq!(
            all.len(),
            301,
            "300 records and one lone response, once each"
        );
        assert!(all.windows(2).all(|w| w[0].serial < w[1].serial));
        let seven = all.iter().find(|e| e.serial == serials[6]).expect("there");
        assert_eq!(
            seven.stored.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(seven.stored[0].1.version, 7);
        assert_eq!(seven.stored[0].1.next_update, UnixTime(20));
        assert!(seven.registered);
        let lone_entry = all.iter().find(|e| e.serial == lone).expect("there");
        assert_eq!(lone_entry.record_version, None);
        assert_eq!(lone_entry.stored.len(), 1);
        // Corrupt entries (a value that does not decode, a key that is no serial's) are
        // skipped: the walk still sees everything else.
        let ocsp_cf = store.cf(cf::OCSP);
        store
            .db
            .put_cf(ocsp_cf, keys::ocsp(&ca, &serials[8], 0), b"\xff\xff\xff")
            .expect("put");
        let mut junk = keys::ca_prefix(&ca);
        junk.push(0);
        store.db.put_cf(ocsp_cf, &junk, b"x").expect("put");
        let (again, _) = store
            .presign_chunk(&ca, None, 1000)
            .expect("walks past them");
        assert_eq!(again.len(), 301);
        let nine = again
            .iter()
            .find(|e| e.serial == serials[8])
            .expect("there");
        assert!(nine.registered && nine.stored.is_empty());
        assert_eq!(
            store.ocsp_head(&ca, &serials[6], 1).expect("reads"),
            Some(StoredHead {
                version: 7,
                produced_at: UnixTime(10),
                this_update: UnixTime(9),
                next_update: UnixTime(20),
                maker: None,
            })
        );
    }
}
