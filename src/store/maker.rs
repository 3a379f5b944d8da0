//! Stored answers know their maker: every OCSP response kept in the `ocsp` CF records who made
//! it — the signer's key hash (its ResponderID byKey), a digest of the CA's OCSP policy
//! ([`crate::pki::Ca::policy_digest`]) and the store's [`Incarnation`]. The responder serves a
//! stored answer only when all three are those of now ([`Maker::is`]); anything else is a miss
//! and the answer is signed again. So a signer rollover, a change of `ocsp_validity`,
//! `unknown_serial` or `nonce`, or a store recovered from a crash never serves an answer made
//! under other rules.
//!
//! ## The incarnation
//!
//! OCSP responses are written without the write-ahead log (they can always be signed again), so
//! a crash loses the latest of them and may bring back older ones, and a store restored from a
//! backup holds answers of another time. The incarnation is 16 random octets drawn when the store
//! is opened, unless the previous process closed it cleanly ([`crate::store::Store::close`]:
//! memtables flushed, then the incarnation written to `meta` as `clean_incarnation`, synced):
//! then the incarnation goes on. Opening deletes that mark (synced) before anything else is
//! written, so a process that dies before its own clean close leaves no mark, and the next open
//! draws a new incarnation: every stored answer of the old one is a miss.
//!
//! ## Encoding
//!
//! A record is the postcard encoding of version, producedAt, thisUpdate, nextUpdate and the DER
//! (the format before makers, which [`super::presign`] reads the head of), followed by the maker
//! (20 + 16 + 16 octets), then the status the answer gives (one octet: 1 good, 2 revoked). A
//! record that ends after the DER was written before answers knew their maker: it still
//! decodes, with no maker, and is a miss. A record that ends after the maker was written before
//! schema 2 (see [`super::SCHEMA_VERSION`]): it decodes without a status, and is served only
//! after its record has been read and found at the answer's version.

use rocksdb::{DB, WriteOptions};
use serde::{Deserialize, Serialize};

use super::presign::StoredHead;
use super::{Error, StoredResponse, cf, keys};
use crate::model::UnixTime;

/// `meta` name of the incarnation a clean close leaves for the next open.
const CLEAN_INCARNATION: &str = "clean_incarnation";

/// A store incarnation: see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Incarnation(pub [u8; 16]);

impl std::fmt::Display for Incarnation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Who made a stored answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maker {
    /// SHA-1 of the signer's subjectPublicKey (its ResponderID byKey, RFC 6960 §4.2.1).
    pub signer_key_hash: [u8; 20],
    /// [`crate::pki::Ca::policy_digest`] when it was signed.
    pub policy: [u8; 16],
    /// The store incarnation it was signed in.
    pub incarnation: Incarnation,
}

impl Maker {
    /// The maker of an answer signed now by the signer whose key hash is `signer_key_hash`,
    /// under `policy`, in `incarnation`.
    pub fn new(signer_key_hash: &[u8], policy: [u8; 16], incarnation: Incarnation) -> Maker {
        let mut key = [0u8; 20];
        let n = signer_key_hash.len().min(20);
        key[..n].copy_from_slice(&signer_key_hash[..n]);
        Maker {
            signer_key_hash: key,
            policy,
            incarnation,
        }
    }

    /// Whether a stored answer's maker (`None`: an old record) is this one.
    pub fn is(self, stored: Option<Maker>) -> bool {
        stored == Some(self)
    }
}

/// The certificate status a stored answer gives ("unknown" answers are never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredStatus {
    /// good.
    Good,
    /// revoked (or on hold).
    Revoked,
}

impl StoredStatus {
    fn octet(self) -> u8 {
        match self {
            StoredStatus::Good => 1,
            StoredStatus::Revoked => 2,
        }
    }

    fn from_octet(o: u8) -> Result<StoredStatus, Error> {
        match o {
            1 => Ok(StoredStatus::Good),
            2 => Ok(StoredStatus::Revoked),
            other => Err(Error::Corrupt {
                cf: cf::OCSP,
                message: format!("stored answer status octet {other}"),
            }),
        }
    }

    /// Its label, as the responder's metrics and logs name it.
    pub fn label(self) -> &'static str {
        match self {
            StoredStatus::Good => "good",
            StoredStatus::Revoked => "revoked",
        }
    }
}

/// The fields before the maker, borrowed for encoding (the layout of the first format).
#[derive(Serialize)]
struct Body<'a> {
    version: u64,
    produced_at: UnixTime,
    this_update: UnixTime,
    next_update: UnixTime,
    der: &'a [u8],
}

/// Encodes a response: the first format's fields, then its maker and its status when it has
/// them (a status is written only after a maker).
pub fn encode_response(r: &StoredResponse) -> Vec<u8> {
    let body = Body {
        version: r.version,
        produced_at: r.produced_at,
        this_update: r.this_update,
        next_update: r.next_update,
        der: &r.der,
    };
    let mut out = postcard::to_stdvec(&body)
        .expect("postcard encodes plain structs into a Vec without failure");
    if let Some(m) = &r.maker {
        out.extend(postcard::to_stdvec(m).expect("postcard encodes plain structs without failure"));
        if let Some(status) = r.status {
            out.push(status.octet());
        }
    }
    out
}

fn corrupt(e: postcard::Error) -> Error {
    Error::Corrupt {
        cf: cf::OCSP,
        message: e.to_string(),
    }
}

/// The maker and the status that follow the DER in `rest` (what follows the head), if any.
fn after_der(rest: &[u8]) -> Result<(Option<Maker>, Option<StoredStatus>), Error> {
    let (_der, tail): (&[u8], &[u8]) = postcard::take_from_bytes(rest).map_err(corrupt)?;
    if tail.is_empty() {
        return Ok((None, None));
    }
    let (maker, tail) = postcard::take_from_bytes::<Maker>(tail).map_err(corrupt)?;
    let status = match tail {
        [] => None,
        [o] => Some(StoredStatus::from_octet(*o)?),
        _ => {
            return Err(Error::Corrupt {
                cf: cf::OCSP,
                message: format!("{} octets after a stored answer's status", tail.len() - 1),
            });
        }
    };
    Ok((Some(maker), status))
}

/// Decodes a stored response of either format.
pub fn decode_response(bytes: &[u8]) -> Result<StoredResponse, Error> {
    let (head, rest) = postcard::take_from_bytes::<HeadFields>(bytes).map_err(corrupt)?;
    let (der, _): (&[u8], &[u8]) = postcard::take_from_bytes(rest).map_err(corrupt)?;
    let (maker, status) = after_der(rest)?;
    Ok(StoredResponse {
        version: head.version,
        produced_at: head.produced_at,
        this_update: head.this_update,
        next_update: head.next_update,
        der: der.to_vec(),
        maker,
        status,
    })
}

/// Decodes the head of a stored response (its version, times and maker), skipping its DER.
pub fn decode_head(bytes: &[u8]) -> Result<StoredHead, Error> {
    let (head, rest) = postcard::take_from_bytes::<HeadFields>(bytes).map_err(corrupt)?;
    Ok(StoredHead {
        version: head.version,
        produced_at: head.produced_at,
        this_update: head.this_update,
        next_update: head.next_update,
        maker: after_der(rest)?.0,
    })
}

#[derive(Deserialize)]
struct HeadFields {
    version: u64,
    produced_at: UnixTime,
    this_update: UnixTime,
    next_update: UnixTime,
}

/// The incarnation for a store being opened: the one a clean close left, else a new one. The
/// mark is removed (synced) before the store is used.
pub(super) fn open_incarnation(db: &DB, sync: bool) -> Result<Incarnation, Error> {
    let meta = db
        .cf_handle(cf::META)
        .expect("META is created with the database");
    let key = keys::global_meta(CLEAN_INCARNATION);
    let left = db
        .get_cf(meta, &key)?
        .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok());
    let incarnation = match left {
        Some(bytes) => Incarnation(bytes),
        None => {
            let mut bytes = [0u8; 16];
            openssl::rand::rand_bytes(&mut bytes).map_err(|e| {
                Error::Io(
                    "drawing a store incarnation".into(),
                    std::io::Error::other(e),
                )
            })?;
            let fresh = Incarnation(bytes);
            tracing::info!(incarnation = %fresh, "store not closed cleanly last time (or new): a new incarnation; answers stored before are signed again");
            fresh
        }
    };
    let mut wo = WriteOptions::default();
    wo.set_sync(sync);
    db.delete_cf_opt(meta, &key, &wo)?;
    Ok(incarnation)
}

/// Leaves the clean-close mark (synced): called last, after the memtables are flushed.
pub(super) fn mark_clean(db: &DB, incarnation: Incarnation) -> Result<(), Error> {
    let meta = db
        .cf_handle(cf::META)
        .expect("META is created with the database");
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    db.put_cf_opt(
        meta,
        keys::global_meta(CLEAN_INCARNATION),
        incarnation.0,
        &wo,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(maker: Option<Maker>) -> StoredResponse {
        StoredResponse {
            version: 3,
            produced_at: UnixTime(10),
            this_update: UnixTime(9),
            next_update: UnixTime(20),
            der: vec![0x30, 0x03, 1, 2, 3],
            maker,
            status: None,
        }
    }

    #[test]
    fn records_round_trip_with_and_without_maker_and_status() {
        let m = Maker::new(&[7; 20], [1; 16], Incarnation([2; 16]));
        let with = |status| StoredResponse {
            status: Some(status),
            ..response(Some(m))
        };
        for r in [
            with(StoredStatus::Good),
            with(StoredStatus::Revoked),
            response(Some(m)),
            response(None),
        ] {
            let bytes = encode_response(&r);
            assert_eq!(decode_response(&bytes).expect("decodes"), r);
            let head = decode_head(&bytes).expect("head");
            assert_eq!(head.maker, r.maker);
            assert_eq!(head.version, 3);
        }
    }

    /// A record written before makers (the plain postcard encoding of the old struct) still
    /// decodes, without a maker: a miss, not an error.
    #[test]
    fn old_records_decode_without_a_maker() {
        #[derive(Serialize)]
        struct Old {
            version: u64,
            produced_at: UnixTime,
            this_update: UnixTime,
            next_update: UnixTime,
            der: Vec<u8>,
        }
        let old = postcard::to_stdvec(&Old {
            version: 3,
            produced_at: UnixTime(10),
            this_update: UnixTime(9),
            next_update: UnixTime(20),
            der: vec![0x30, 0x03, 1, 2, 3],
        })
        .expect("encodes");
        let r = decode_response(&old).expect("decodes");
        assert_eq!(r, response(None));
        let m = Maker::new(&[7; 20], [1; 16], Incarnation([2; 16]));
        assert!(!m.is(r.maker));
        assert!(m.is(Some(m)));
    }

    /// A status octet that is not one, or octets after it, are corruption, not a status.
    #[test]
    fn a_bad_status_is_corrupt() {
        let m = Maker::new(&[7; 20], [1; 16], Incarnation([2; 16]));
        let mut bytes = encode_response(&response(Some(m)));
        bytes.push(3);
        assert!(matches!(
            decode_response(&bytes),
            Err(Error::Corrupt { .. })
        ));
        bytes.pop();
        bytes.extend([1, 1]);
        assert!(matches!(
            decode_response(&bytes),
            Err(Error::Corrupt { .. })
        ));
    }
}
