//! CRL publication (RFC 5280 §5): full and delta CRLs per CA, numbered from one persistent
//! sequence, built off the HTTP workers, stored, then swapped in atomically.
//!
//! - [`build`] encodes and signs (pure: entries, numbers and times in, DER out);
//! - [`delta`] decides what a delta CRL lists;
//! - [`number`] is the CRLNumber type;
//! - [`schedule`] runs the cron schedules, the deadline watchdog and delta-on-revoke;
//! - this module's [`Publisher`] reads the store, allocates numbers, builds on its own rayon
//!   pool, persists, and holds what is published;
//! - [`announce`] is the publication event: each CRL that becomes current is announced to the
//!   subscribers (HTTP serving, [`crate::http::crl`]; the sinks, [`crate::publish`]), and
//!   queued for every configured sink in the same batch that makes it current.
//!
//! ## Numbering and persistence
//!
//! Full and delta CRLs of a CA share one CRLNumber sequence (§5.2.3, §5.2.4). The next number
//! lives in the `meta` CF (`crl_next_number`) and is written in the same synced batch as the
//! CRL's record, so a number is never reused — after a restart or a crash.
//!
//! A CRL is stored in the `crl` CF as its DER, in pieces of [`PIECE_BYTES`], and a
//! [`CrlRecord`]. The pieces are written first, as one SST file ingested into the store
//! ([`Store::ingest_crl`]: durable, and without a second copy of a 50 MB CRL in a write batch
//! and a memtable); the record and the next number last, in one synced batch. A CRL exists once
//! its record does: a crash in between leaves only unreferenced pieces, replaced by the next
//! build (which reuses the number, since it was not recorded as used).
//!
//! ## Publication
//!
//! Readers get an `Arc<PublishedCrl>` from a lock held for a pointer copy: they see the
//! previous CRL or the new one, never a partial one. A CRL is swapped in only after it is
//! durable, and never once past its nextUpdate. Older CRLs stay retrievable by number
//! ([`Publisher::by_number`]).
//!
//! ## What a complete CRL says
//!
//! Every revoked certificate of the CA (the store's `revoked` index), sorted by serial, except
//! certificates expired for longer than `crl_keep_expired`; with reason codes (never
//! `unspecified`), invalidity dates, and the extensions AuthorityKeyIdentifier, CRLNumber,
//! IssuingDistributionPoint (critical; its fullName names the distribution points the CA's
//! certificates carry — learned from the registered certificates, or `crl_urls` — so relying
//! parties find each certificate in the CRL's scope, and a delta names the same scope; left out
//! when some certificates carry none: see [`scope`]), FreshestCRL (when the CA has delta CRLs) and
//! ExpiredCertsOnCRL (when expired certificates are kept forever; its date is the CA
//! certificate's notBefore, before which nothing the CA issued can have expired).

pub mod adopt;
pub mod announce;
pub mod build;
pub mod delta;
pub mod history;
pub mod number;
pub mod schedule;
pub mod scope;
pub mod times;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::config::{CaCrlConfig, Config, CrlConfig};
use crate::model::{CaId, KeepExpired, UnixTime};
use crate::pki::{Ca, CaRegistry};
use crate::store::{self, RevocationView, SerialRange, Store, keys};
use build::{CrlTemplate, CrlWriter, EntryReason, Scope};
pub use number::{CrlNumber, DeltaNumbers};
use scope::{DpName, DpSet, IdpPolicy};

/// Size of the pieces a CRL's DER is stored in.
pub const PIECE_BYTES: usize = 1 << 20;

/// `meta` name of a CA's next CRL number (u64, big-endian).
pub const NEXT_NUMBER: &str = "crl_next_number";

/// Why a CRL could not be built, stored or found.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRL number sequence reached its end (2⁶⁴ − 1 CRLs).
    #[error("the CRL number sequence is exhausted")]
    NumbersExhausted,
    /// A CRL number read back is not one RFC 5280 §5.2.3 allows (or vigie keeps).
    #[error("CRL number {0}: {1}")]
    BadNumber(String, &'static str),
    /// A delta CRL's base is not below its own number (RFC 5280 §5.2.4).
    #[error("delta CRL {number} cannot have base {base}: the base must be an earlier CRL")]
    BadDeltaBase {
        /// The delta's number.
        number: CrlNumber,
        /// The base's number.
        base: CrlNumber,
    },
    /// nextUpdate is not after thisUpdate (RFC 5280 §5.1.2.5).
    #[error("nextUpdate {next_update} is not after thisUpdate {this_update}")]
    BadTimes {
        /// thisUpdate.
        this_update: UnixTime,
        /// nextUpdate.
        next_update: UnixTime,
    },
    /// A time outside what UTCTime/GeneralizedTime can express (years 0 to 9999).
    #[error("{what} {time:?} cannot be encoded as an ASN.1 time")]
    TimeOutOfRange {
        /// Which field.
        what: &'static str,
        /// The time.
        time: UnixTime,
    },
    /// A serial that is not 1 to 20 octets without a leading zero.
    #[error("serial {0} cannot be written on a CRL")]
    BadSerial(String),
    /// A URL that is not an IA5String.
    #[error("URL {0:?} is not ASCII (IA5String)")]
    BadUrl(String),
    /// The `der` crate refused a value.
    #[error("DER encoding: {0}")]
    Der(#[from] der::Error),
    /// A CRL larger than 4 GiB.
    #[error("a CRL of {0} octets is too large")]
    TooLarge(usize),
    /// The CA key could not sign.
    #[error(transparent)]
    Sign(#[from] crate::signer::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A stored CRL or CRL record does not decode.
    #[error("stored CRL data is corrupt: {0}")]
    Corrupt(String),
    /// No such CA is configured.
    #[error("CA {0:?} is not configured")]
    UnknownCa(String),
    /// A delta CRL was asked for a CA that publishes none.
    #[error("CA {0} publishes no delta CRLs (delta_schedule is empty)")]
    NoDeltas(CaId),
    /// The CRL would already be past its nextUpdate when published.
    #[error(
        "the CRL built for CA {ca} expired before it could be published (nextUpdate {next_update})"
    )]
    Stale {
        /// The CA.
        ca: CaId,
        /// nextUpdate of the CRL.
        next_update: UnixTime,
    },
    /// A distribution point name could not be used, or a stored scope does not decode.
    #[error(transparent)]
    Scope(#[from] scope::Error),
    /// The rayon pool could not be started.
    #[error("CRL thread pool: {0}")]
    Pool(String),
    /// The cron scheduler refused a job or could not start.
    #[error("CRL schedule: {0}")]
    Schedule(String),
    /// Too many history CRLs are being read already ([`history::MAX_LOADS`]).
    #[error("too many CRL history reads at once; retry shortly")]
    Busy,
    /// The clock was set back before the thisUpdate of a CRL already published: nothing is
    /// built until it catches up ([`times`]).
    #[error(
        "the clock ({now}) is behind CA {ca}'s last published thisUpdate ({previous}): no CRL is built until it catches up"
    )]
    ClockBehind {
        /// The CA.
        ca: CaId,
        /// The clock's time.
        now: UnixTime,
        /// The latest thisUpdate published.
        previous: UnixTime,
    },
}

/// Complete or delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrlKind {
    /// A complete CRL.
    Full,
    /// A delta CRL (RFC 5280 §5.2.4).
    Delta,
}

impl CrlKind {
    /// `full` or `delta`, for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            CrlKind::Full => "full",
            CrlKind::Delta => "delta",
        }
    }

    fn is_delta(self) -> bool {
        self == CrlKind::Delta
    }

    fn record_kind(self) -> u8 {
        2 + u8::from(self.is_delta())
    }
}

/// What vigie keeps about a CRL besides its DER (`crl` CF: [`RECORD_MARK`], a version, then
/// postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlRecord {
    /// Complete or delta.
    pub kind: CrlKind,
    /// CRLNumber.
    pub number: u64,
    /// BaseCRLNumber of a delta.
    pub base: Option<u64>,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// When it was built (the clock's time, before backdating).
    pub built_at: UnixTime,
    /// The last event sequence number of the CA it reflects.
    pub watermark: u64,
    /// Entries listed.
    pub entries: u64,
    /// Size of the DER.
    pub bytes: u64,
    /// Pieces the DER is stored in.
    pub pieces: u32,
    /// IssuingDistributionPoint fullName names written (`None`: no IssuingDistributionPoint).
    /// Records written before several names were possible held one URL (`idp_url`): see
    /// [`decode_record`].
    pub idp: Option<DpSet>,
    /// FreshestCRL written, if any.
    pub freshest_url: Option<String>,
    /// Complete CRLs: deltas may be built on this CRL until this time; after it, a new
    /// complete CRL is needed ([`CrlRecord::expiring`] only covers retention drops until then).
    pub horizon: UnixTime,
    /// Complete CRLs: listed serials (magnitudes) whose retention ends before the horizon, with
    /// when it ends — what a delta must remove without an event saying so.
    pub expiring: Vec<(Vec<u8>, UnixTime)>,
    /// The retention of expired certificates it was built with, seconds (`None`: forever).
    /// Deltas are only built on a base of the current retention.
    pub keep_expired: Option<i64>,
}

/// A CRL record as written before IssuingDistributionPoints could name several distribution
/// points (plain postcard, one `idp_url`).
#[derive(Deserialize)]
struct CrlRecordV1 {
    kind: CrlKind,
    number: u64,
    base: Option<u64>,
    this_update: UnixTime,
    next_update: UnixTime,
    built_at: UnixTime,
    watermark: u64,
    entries: u64,
    bytes: u64,
    pieces: u32,
    idp_url: Option<String>,
    freshest_url: Option<String>,
    horizon: UnixTime,
    expiring: Vec<(Vec<u8>, UnixTime)>,
    keep_expired: Option<i64>,
}

fn retention(keep: KeepExpired) -> Option<i64> {
    match keep {
        KeepExpired::For(secs) => Some(secs),
        KeepExpired::Forever => None,
    }
}

/// How long the phases of a build took.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildTimings {
    /// Reading the store and encoding entries.
    pub encode: Duration,
    /// Writing the outer structure and signing.
    pub sign: Duration,
    /// Storing (synced).
    pub store: Duration,
}

/// A CRL as made current: what is announced to subscribers. HTTP forms (ETag, HTTP dates,
/// PEM) are [`crate::http::crl`]'s business.
#[derive(Debug)]
pub struct PublishedCrl {
    /// The CA.
    pub ca: CaId,
    /// Its record.
    pub record: CrlRecord,
    /// The DER.
    pub der: Bytes,
    /// How long building it took (when built by this process).
    pub timings: Option<BuildTimings>,
}

impl PublishedCrl {
    fn new(ca: CaId, record: CrlRecord, der: Bytes, timings: Option<BuildTimings>) -> Self {
        PublishedCrl {
            ca,
            record,
            der,
            timings,
        }
    }

    /// Complete or delta.
    pub fn kind(&self) -> CrlKind {
        self.record.kind
    }

    /// CRLNumber.
    pub fn number(&self) -> CrlNumber {
        CrlNumber::new(self.record.number)
    }

    /// Whether it may be served at `now` (before its nextUpdate).
    pub fn is_valid_at(&self, now: UnixTime) -> bool {
        now < self.record.next_update
    }
}

/// The PEM form of a DER CRL (RFC 7468 §5: label `X509 CRL`, 64-character lines), for HTTP
/// and the directory sink.
pub fn pem(der: &[u8]) -> Bytes {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN X509 CRL-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END X509 CRL-----\n");
    Bytes::from(out)
}

/// What a CA currently publishes.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The latest complete CRL.
    pub full: Option<Arc<PublishedCrl>>,
    /// The latest delta CRL, whose base is `full` (a delta on an older base is dropped).
    pub delta: Option<Arc<PublishedCrl>>,
}

/// What is due for a CA at some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Due {
    /// A complete CRL (and then a delta on it, if the CA has deltas).
    pub full: bool,
    /// A delta CRL.
    pub delta: bool,
}

/// Called while a complete CRL is encoded with (partitions done, partitions in all, entries so
/// far), after each batch of partitions; then once with `None` when signing starts.
pub type Progress = Arc<dyn Fn(Option<(usize, usize, u64)>) + Send + Sync>;

/// One CA's state in the publisher.
struct CaSlot {
    ca: Arc<Ca>,
    policy: CaCrlConfig,
    /// How the IssuingDistributionPoint is chosen (from `policy.idp_urls`).
    idp_policy: IdpPolicy,
    /// A complete CRL for a new scope is waiting to be built (coalescing).
    scope_pending: AtomicBool,
    /// Shared with the slot that replaces this one at a reload ([`Publisher::reconcile`]).
    current: Arc<RwLock<Current>>,
    /// Serialises builds of this CA: numbering and the choice of base depend on it. Shared
    /// with the slot that replaces this one at a reload, so a build started before the reload
    /// and one after never run at once.
    building: Arc<Mutex<()>>,
    /// A delta-on-revoke build is waiting for its debounce delay.
    delta_pending: AtomicBool,
}

/// Builds, stores and holds every CA's CRLs. See the module documentation.
pub struct Publisher {
    /// Told how far a complete CRL's encoding is: `vigie crl build`'s progress bar.
    progress: Option<Progress>,
    store: Arc<Store>,
    clock: SharedClock,
    settings: CrlConfig,
    /// One per CA with its CA key here, in configuration order; replaced whole by a reload.
    slots: RwLock<Vec<Arc<CaSlot>>>,
    pool: rayon::ThreadPool,
    history: history::History,
    /// Told of every CRL that becomes current ([`announce`]).
    subscribers: RwLock<Vec<Arc<dyn announce::Subscriber>>>,
    /// Identities of the configured publication sinks: each CRL is queued for each of them.
    sinks: Vec<String>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("cas", &read(&self.slots).len())
            .finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Writers only swap `Arc`s: a poisoned lock holds a consistent value.
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn try_lock(m: &Mutex<()>) -> Option<MutexGuard<'_, ()>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The CA's CRL signer; every CA of the publisher has one (see [`Publisher::new`]).
fn crl_signer(ca: &Ca) -> Result<&crate::signer::Signer, Error> {
    ca.crl_signer
        .as_ref()
        .ok_or_else(|| Error::UnknownCa(ca.id.to_string()))
}

/// First octet of a [`CrlRecord`] written since records are versioned. A record of the first
/// format starts with its `kind` (postcard: 0 or 1), never with this.
pub const RECORD_MARK: u8 = 0xff;

/// Version written after [`RECORD_MARK`].
const RECORD_VERSION: u8 = 2;

fn encode_record(record: &CrlRecord) -> Result<Vec<u8>, Error> {
    let mut out = vec![RECORD_MARK, RECORD_VERSION];
    out.extend(
        postcard::to_stdvec(record)
            .map_err(|e| Error::Corrupt(format!("CRL record does not encode: {e}")))?,
    );
    Ok(out)
}

/// Decodes a stored record, of either format: a record of the first format (one `idp_url`)
/// becomes one naming that URI, so a delta can still be built on a complete CRL stored by an
/// earlier version (same scope, same DER name).
pub fn decode_record(bytes: &[u8]) -> Result<CrlRecord, Error> {
    let corrupt = |e: postcard::Error| Error::Corrupt(format!("CRL record: {e}"));
    match bytes {
        [RECORD_MARK, RECORD_VERSION, rest @ ..] => postcard::from_bytes(rest).map_err(corrupt),
        [RECORD_MARK, v, ..] => Err(Error::Corrupt(format!("CRL record version {v}"))),
        _ => {
            let v1: CrlRecordV1 = postcard::from_bytes(bytes).map_err(corrupt)?;
            let idp = match v1.idp_url {
                None => None,
                Some(url) => Some(
                    std::iter::once(DpName::uri(&url).map_err(|e| Error::Corrupt(e.to_string()))?)
                        .collect(),
                ),
            };
            Ok(CrlRecord {
                kind: v1.kind,
                number: v1.number,
                base: v1.base,
                this_update: v1.this_update,
                next_update: v1.next_update,
                built_at: v1.built_at,
                watermark: v1.watermark,
                entries: v1.entries,
                bytes: v1.bytes,
                pieces: v1.pieces,
                idp,
                freshest_url: v1.freshest_url,
                horizon: v1.horizon,
                expiring: v1.expiring,
                keep_expired: v1.keep_expired,
            })
        }
    }
}

/// One partition's encoded entries.
struct Part {
    der: Vec<u8>,
    entries: usize,
    expiring: Vec<(Vec<u8>, UnixTime)>,
}

impl Publisher {
    /// A publisher for every configured CA of `registry` that has its CA key here, holding what
    /// the store already has (the latest complete CRL, and the latest delta if it is based on
    /// it). Builds nothing: see [`Publisher::catch_up`] and [`schedule`]. A configured CA that
    /// did not load (not in `registry`) has no CRLs here.
    pub fn new(
        config: &Config,
        registry: &CaRegistry,
        store: Arc<Store>,
        clock: SharedClock,
    ) -> Result<Self, Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.crl.threads.max(1))
            .thread_name(|i| format!("vigie-crl-{i}"))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        let mut slots = Vec::with_capacity(config.cas.len());
        for c in &config.cas {
            let Some(ca) = registry.by_id(c.id.as_str()) else {
                continue;
            };
            // A CA without a key here (no crl_schedule) has its CRLs built elsewhere.
            if ca.crl_signer.is_none() {
                continue;
            }
            slots.push(Arc::new(CaSlot {
                ca: Arc::clone(ca),
                idp_policy: IdpPolicy::from_urls(c.crl.idp_urls.as_deref())?,
                scope_pending: AtomicBool::new(false),
                policy: c.crl.clone(),
                current: Arc::new(RwLock::new(Current::default())),
                building: Arc::new(Mutex::new(())),
                delta_pending: AtomicBool::new(false),
            }));
        }
        let publisher = Publisher {
            progress: None,
            store,
            clock,
            settings: config.crl.clone(),
            slots: RwLock::new(slots),
            pool,
            history: history::History::default(),
            subscribers: RwLock::new(Vec::new()),
            sinks: config.publish.iter().map(|s| s.id()).collect(),
        };
        for slot in publisher.slots_now() {
            publisher.load_slot(&slot);
        }
        Ok(publisher)
    }

    /// Reads what the store has for a new slot.
    fn load_slot(&self, slot: &CaSlot) {
        self.report_uncovered(slot);
        match self.load_current(slot) {
            Ok(current) => {
                for p in [&current.full, &current.delta].into_iter().flatten() {
                    export_gauges(p);
                }
                *write(&slot.current) = current
            }
            Err(e) => {
                tracing::warn!(ca = %slot.ca.id, error = %e, "stored CRLs unusable; new ones will be built");
            }
        }
    }

    fn slots_now(&self) -> Vec<Arc<CaSlot>> {
        read(&self.slots).clone()
    }

    /// Takes the CA set of a reloaded configuration: a CA added gets a slot holding what the
    /// store has for it (announced to the subscribers at once), a CA removed (or that no longer
    /// has its key here) loses its slot, a CA kept takes its new certificate, key and settings
    /// while keeping its published CRLs and its build lock. Returns the CAs added. Builds
    /// nothing: the caller catches up ([`Publisher::catch_up`]).
    pub fn reconcile(&self, config: &Config, registry: &CaRegistry) -> Result<Vec<CaId>, Error> {
        let old = self.slots_now();
        let mut slots = Vec::with_capacity(config.cas.len());
        let mut added = Vec::new();
        for c in &config.cas {
            let Some(ca) = registry.by_id(c.id.as_str()) else {
                continue;
            };
            if ca.crl_signer.is_none() {
                continue;
            }
            let previous = old.iter().find(|s| s.ca.id == c.id);
            let slot = Arc::new(CaSlot {
                ca: Arc::clone(ca),
                idp_policy: IdpPolicy::from_urls(c.crl.idp_urls.as_deref())?,
                scope_pending: AtomicBool::new(false),
                policy: c.crl.clone(),
                current: previous.map_or_else(
                    || Arc::new(RwLock::new(Current::default())),
                    |p| Arc::clone(&p.current),
                ),
                building: previous
                    .map_or_else(|| Arc::new(Mutex::new(())), |p| Arc::clone(&p.building)),
                delta_pending: AtomicBool::new(false),
            });
            if previous.is_none() {
                self.load_slot(&slot);
                added.push(c.id.clone());
            }
            slots.push(slot);
        }
        let new_slots = slots.clone();
        *write(&self.slots) = slots;
        // The subscribers (HTTP serving, sinks) learn the CRLs of the CAs added.
        let subscribers = read(&self.subscribers).clone();
        for slot in new_slots.iter().filter(|s| added.contains(&s.ca.id)) {
            let current = read(&slot.current).clone();
            for crl in [&current.full, &current.delta].into_iter().flatten() {
                for s in &subscribers {
                    s.announce(crl);
                }
            }
        }
        Ok(added)
    }

    fn load_current(&self, slot: &CaSlot) -> Result<Current, Error> {
        let ca = &slot.ca.id;
        let full = self.load_latest(ca, CrlKind::Full)?;
        let delta = self.load_latest(ca, CrlKind::Delta)?.filter(|d| {
            full.as_ref()
                .is_some_and(|f| d.record.base == Some(f.record.number))
        });
        Ok(Current { full, delta })
    }

    fn load_latest(&self, ca: &CaId, kind: CrlKind) -> Result<Option<Arc<PublishedCrl>>, Error> {
        let Some((_, value)) = self
            .store
            .crl_last(&keys::crl_kind_prefix(ca, kind.record_kind()))?
        else {
            return Ok(None);
        };
        let record = decode_record(&value)?;
        let der = self.load_der(ca, &record)?;
        Ok(Some(Arc::new(PublishedCrl::new(
            ca.clone(),
            record,
            der,
            None,
        ))))
    }

    fn piece_key(ca: &CaId, kind: CrlKind, number: CrlNumber, piece: u32) -> Vec<u8> {
        let mut k = keys::crl(ca, kind.is_delta(), &number.key_bytes());
        k.extend_from_slice(&piece.to_be_bytes());
        k
    }

    fn load_der(&self, ca: &CaId, record: &CrlRecord) -> Result<Bytes, Error> {
        let number = CrlNumber::new(record.number);
        let mut der = Vec::with_capacity(usize::try_from(record.bytes).unwrap_or(0));
        for piece in 0..record.pieces {
            let bytes = self
                .store
                .crl_bytes(&Self::piece_key(ca, record.kind, number, piece))?
                .ok_or_else(|| {
                    Error::Corrupt(format!("CRL {number} of {ca}: piece {piece} missing"))
                })?;
            der.extend_from_slice(&bytes);
        }
        if der.len() as u64 != record.bytes {
            return Err(Error::Corrupt(format!(
                "CRL {number} of {ca}: {} octets stored, {} recorded",
                der.len(),
                record.bytes
            )));
        }
        Ok(Bytes::from(der))
    }

    fn slot(&self, ca: &str) -> Result<Arc<CaSlot>, Error> {
        read(&self.slots)
            .iter()
            .find(|s| s.ca.id.as_str() == ca)
            .cloned()
            .ok_or_else(|| Error::UnknownCa(ca.to_owned()))
    }

    /// Reports the progress of complete CRL builds to `progress` (for a terminal).
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The CA ids, in configuration order.
    pub fn ca_ids(&self) -> Vec<CaId> {
        read(&self.slots).iter().map(|s| s.ca.id.clone()).collect()
    }

    /// Adds a subscriber to the publication event; it is told at once of the CRLs current now
    /// (under the same locks as later announcements, so it misses none and sees them in order).
    pub fn subscribe(&self, subscriber: Arc<dyn announce::Subscriber>) {
        write(&self.subscribers).push(Arc::clone(&subscriber));
        for slot in self.slots_now() {
            let current = read(&slot.current);
            for crl in [&current.full, &current.delta].into_iter().flatten() {
                subscriber.announce(crl);
            }
        }
    }

    /// Identities of the publication sinks every new CRL is queued for.
    pub fn sinks(&self) -> &[String] {
        &self.sinks
    }

    /// What a CA currently publishes (possibly past nextUpdate: check before serving).
    pub fn current(&self, ca: &str) -> Result<Current, Error> {
        Ok(read(&self.slot(ca)?.current).clone())
    }

    /// A CA's CRL settings.
    pub fn policy(&self, ca: &str) -> Result<CaCrlConfig, Error> {
        Ok(self.slot(ca)?.policy.clone())
    }

    /// The store it reads and writes.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The clock the publisher reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// `[crl]` settings.
    pub fn settings(&self) -> &CrlConfig {
        &self.settings
    }

    /// A CRL of a CA by number, current or from the history in the store.
    pub fn by_number(&self, ca: &str, number: u64) -> Result<Option<Arc<PublishedCrl>>, Error> {
        let slot = self.slot(ca)?;
        let current = read(&slot.current).clone();
        for p in [current.full, current.delta].into_iter().flatten() {
            if p.record.number == number {
                return Ok(Some(p));
            }
        }
        let n = CrlNumber::new(number);
        for kind in [CrlKind::Full, CrlKind::Delta] {
            let key = keys::crl_record(&slot.ca.id, kind.is_delta(), &n.key_bytes());
            if let Some(v) = self.store.crl_bytes(&key)? {
                let record = decode_record(&v)?;
                let der = self.load_der(&slot.ca.id, &record)?;
                return Ok(Some(Arc::new(PublishedCrl::new(
                    slot.ca.id.clone(),
                    record,
                    der,
                    None,
                ))));
            }
        }
        Ok(None)
    }

    fn margin(&self, validity: i64) -> i64 {
        self.settings.safety_margin.min(validity / 2)
    }

    /// The safety margin that applies to CRLs of this validity (seconds): the `[crl]
    /// safety_margin`, or half the validity if that is shorter.
    pub fn safety_margin(&self, validity: i64) -> i64 {
        self.margin(validity)
    }

    /// What is due for a CA at `now`: a complete CRL when there is none, or when its nextUpdate
    /// is nearer than the safety margin (at most half the validity), or when its scope no longer
    /// matches the configuration or what was learned of the certificates ([`scope`]); a delta when the CA has deltas and there is none on the
    /// current base, or when its nextUpdate is near.
    pub fn due(&self, ca: &str, now: UnixTime) -> Result<Due, Error> {
        let slot = self.slot(ca)?;
        let current = read(&slot.current).clone();
        let p = &slot.policy;
        let full = match &current.full {
            None => true,
            Some(f) => {
                f.record.next_update.0 - now.0 < self.margin(p.validity)
                    || f.record.idp != self.desired_idp(&slot)?
                    || f.record.freshest_url != self.freshest_url(p)
                    || f.record.keep_expired != retention(p.keep_expired)
                    || (p.delta_schedule.is_some() && now >= f.record.horizon)
            }
        };
        let delta = p.delta_schedule.is_some()
            && (full
                || match &current.delta {
                    None => true,
                    Some(d) => d.record.next_update.0 - now.0 < self.margin(p.delta_validity),
                });
        Ok(Due { full, delta })
    }

    /// The IssuingDistributionPoint names a complete CRL of this CA gets now ([`scope`]).
    fn desired_idp(&self, slot: &CaSlot) -> Result<Option<DpSet>, Error> {
        let learned = match slot.idp_policy {
            IdpPolicy::Learned => scope::load(&self.store, &slot.ca.id)?,
            IdpPolicy::Fixed(_) => scope::LearnedScope::default(),
        };
        Ok(scope::desired_idp(&slot.idp_policy, &learned))
    }

    /// Counts and logs (once, now) the registered certificates that the CA's configured scope
    /// leaves out. A learned scope covers every certificate by construction.
    fn report_uncovered(&self, slot: &CaSlot) {
        let ca = slot.ca.id.to_string();
        let counter = metrics::counter!(crate::metrics::CRL_SCOPE_MISMATCH, "ca" => ca);
        // Every CA has the series, at 0 until a certificate is left out.
        counter.increment(0);
        let IdpPolicy::Fixed(names) = &slot.idp_policy else {
            return;
        };
        if names.is_empty() {
            return;
        }
        let learned = match scope::load(&self.store, &slot.ca.id) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(ca = %slot.ca.id, error = %e, "learned CRL scope unreadable");
                return;
            }
        };
        for (set, n) in learned.uncovered(Some(names)) {
            counter.increment(n);
            tracing::warn!(
                ca = %slot.ca.id,
                certificates = n,
                distribution_points = %scope::describe(&set),
                crl_idp = %scope::describe(names),
                "registered certificates are outside the scope of this CA's CRLs: relying parties will not find their status there (set crl_urls to include their distribution points, or leave it out)"
            );
        }
    }

    /// A certificate carrying the distribution points `set` was just registered for `ca`:
    /// counts it in `vigie_crl_scope_mismatch_total` and logs it if the CA's configured scope
    /// does not cover it. A learned scope will (the next complete CRL names its points).
    pub fn note_registered(&self, ca: &CaId, serial: &crate::model::Serial, set: &DpSet) {
        let Ok(slot) = self.slot(ca.as_str()) else {
            return;
        };
        let IdpPolicy::Fixed(names) = &slot.idp_policy else {
            return;
        };
        let idp = (!names.is_empty()).then_some(names);
        if scope::covers(idp, set) {
            return;
        }
        metrics::counter!(crate::metrics::CRL_SCOPE_MISMATCH, "ca" => ca.to_string()).increment(1);
        tracing::warn!(
            ca = %ca,
            %serial,
            distribution_points = %scope::describe(set),
            crl_idp = %scope::describe(names),
            "registered certificate is outside the scope of this CA's CRLs (crl_urls/crl_url names none of its distribution points)"
        );
    }

    /// Whether this CA's IssuingDistributionPoint is learned from its certificates.
    pub fn learns_scope(&self, ca: &str) -> bool {
        self.slot(ca)
            .is_ok_and(|s| s.idp_policy == IdpPolicy::Learned)
    }

    /// Marks a complete CRL for a new scope as pending; false if one already was.
    pub(crate) fn claim_scope_pending(&self, ca: &str) -> bool {
        self.slot(ca)
            .map(|s| !s.scope_pending.swap(true, Ordering::AcqRel))
            .unwrap_or(false)
    }

    /// Clears that mark (just before the build).
    pub(crate) fn release_scope_pending(&self, ca: &str) {
        if let Ok(s) = self.slot(ca) {
            s.scope_pending.store(false, Ordering::Release);
        }
    }

    fn freshest_url(&self, p: &CaCrlConfig) -> Option<String> {
        p.delta_schedule.as_ref().map(|_| p.delta_url.clone())
    }

    /// Builds now whatever [`Publisher::due`] says, unless a build of this CA is already
    /// running (it will publish something fresh). Blocking: call it off the async workers.
    pub fn catch_up(&self, ca: &str) -> Result<Vec<Arc<PublishedCrl>>, Error> {
        let slot = self.slot(ca)?;
        let Some(_guard) = try_lock(&slot.building) else {
            return Ok(Vec::new());
        };
        let due = self.due(ca, self.clock.now())?;
        let mut out = Vec::new();
        if due.full {
            out.extend(self.publish_locked(&slot, CrlKind::Full)?);
        } else if due.delta {
            out.extend(self.publish_locked(&slot, CrlKind::Delta)?);
        }
        Ok(out)
    }

    /// [`Publisher::catch_up`] for every CA, one after the other; failures are logged and
    /// counted (the watchdog retries them).
    pub fn catch_up_all(&self) {
        for slot in self.slots_now() {
            let _ = self.catch_up(slot.ca.id.as_str());
        }
    }

    /// Builds and publishes a CRL of `kind` now, waiting for a build in progress. A complete
    /// CRL is followed by a delta on it when the CA has deltas; a delta whose base would be
    /// unusable (none, beyond its horizon, or of another scope) is preceded by a complete CRL.
    /// Blocking. Returns what was published, in order.
    pub fn publish(&self, ca: &str, kind: CrlKind) -> Result<Vec<Arc<PublishedCrl>>, Error> {
        let slot = self.slot(ca)?;
        let _guard = lock(&slot.building);
        self.publish_locked(&slot, kind)
    }

    /// As [`Publisher::publish`], but returns `None` at once if a build of this CA is running.
    pub fn try_publish(
        &self,
        ca: &str,
        kind: CrlKind,
    ) -> Result<Option<Vec<Arc<PublishedCrl>>>, Error> {
        let slot = self.slot(ca)?;
        let Some(_guard) = try_lock(&slot.building) else {
            return Ok(None);
        };
        self.publish_locked(&slot, kind).map(Some)
    }

    /// Waits for a build in progress, then builds a complete CRL (and its delta) if one is due
    /// ([`Publisher::due`]): after a change of scope, say.
    pub fn publish_full_if_due(&self, ca: &str) -> Result<Vec<Arc<PublishedCrl>>, Error> {
        let slot = self.slot(ca)?;
        let _guard = lock(&slot.building);
        if self.due(ca, self.clock.now())?.full {
            self.publish_locked(&slot, CrlKind::Full)
        } else {
            Ok(Vec::new())
        }
    }

    /// Waits until no build is running (for shutdown).
    pub fn wait_idle(&self) {
        for slot in self.slots_now() {
            drop(lock(&slot.building));
        }
    }

    /// Marks a delta-on-revoke as pending; false if one already was (coalescing).
    pub(crate) fn claim_delta_pending(&self, ca: &str) -> bool {
        self.slot(ca)
            .map(|s| !s.delta_pending.swap(true, Ordering::AcqRel))
            .unwrap_or(false)
    }

    /// Clears the pending mark (just before that delta is built).
    pub(crate) fn release_delta_pending(&self, ca: &str) {
        if let Ok(s) = self.slot(ca) {
            s.delta_pending.store(false, Ordering::Release);
        }
    }

    fn publish_locked(
        &self,
        slot: &CaSlot,
        kind: CrlKind,
    ) -> Result<Vec<Arc<PublishedCrl>>, Error> {
        let has_deltas = slot.policy.delta_schedule.is_some();
        if kind == CrlKind::Delta && !has_deltas {
            return Err(Error::NoDeltas(slot.ca.id.clone()));
        }
        let mut out = Vec::new();
        let base = read(&slot.current).full.clone();
        let base = match (kind, base) {
            (CrlKind::Delta, Some(b)) if self.base_usable(slot, &b) => b,
            _ => {
                let full = self.record_outcome(slot, CrlKind::Full, self.build_full(slot))?;
                out.push(Arc::clone(&full));
                if !has_deltas {
                    return Ok(out);
                }
                full
            }
        };
        out.push(self.record_outcome(slot, CrlKind::Delta, self.build_delta(slot, &base))?);
        Ok(out)
    }

    fn base_usable(&self, slot: &CaSlot, base: &PublishedCrl) -> bool {
        self.desired_idp(slot)
            .is_ok_and(|idp| base.record.idp == idp)
            && base.record.keep_expired == retention(slot.policy.keep_expired)
            && self.clock.now() < base.record.horizon
    }

    fn record_outcome(
        &self,
        slot: &CaSlot,
        kind: CrlKind,
        result: Result<Arc<PublishedCrl>, Error>,
    ) -> Result<Arc<PublishedCrl>, Error> {
        let ca = slot.ca.id.to_string();
        match &result {
            Ok(p) => {
                let labels = [("ca", ca), ("kind", kind.label().to_owned())];
                if let Some(t) = p.timings {
                    metrics::histogram!(crate::metrics::CRL_BUILD_SECONDS, &labels)
                        .record((t.encode + t.sign + t.store).as_secs_f64());
                }
                export_gauges(p);
                tracing::info!(
                    ca = %p.ca,
                    kind = kind.label(),
                    number = p.record.number,
                    base = ?p.record.base,
                    entries = p.record.entries,
                    bytes = p.record.bytes,
                    next_update = %p.record.next_update,
                    seconds = p.timings.map(|t| (t.encode + t.sign + t.store).as_secs_f64()),
                    "CRL published"
                );
            }
            Err(e) => {
                metrics::counter!(crate::metrics::CRL_BUILD_FAILURES, "ca" => ca, "kind" => kind.label())
                    .increment(1);
                tracing::error!(ca = %slot.ca.id, kind = kind.label(), error = %e, "CRL build failed");
            }
        }
        result
    }

    fn next_number(&self, slot: &CaSlot) -> Result<CrlNumber, Error> {
        let stored = match self.store.meta(&slot.ca.id, NEXT_NUMBER)? {
            Some(v) => {
                let be: [u8; 8] = v.as_slice().try_into().map_err(|_| {
                    Error::Corrupt(format!("{NEXT_NUMBER} of {} is not 8 octets", slot.ca.id))
                })?;
                CrlNumber::new(u64::from_be_bytes(be))
            }
            None => CrlNumber::FIRST,
        };
        // Belt and braces: never at or below what is already published.
        let current = read(&slot.current).clone();
        let mut next = stored.max(CrlNumber::FIRST);
        for p in [current.full, current.delta].into_iter().flatten() {
            next = next.max(p.number().next()?);
        }
        Ok(next)
    }

    /// thisUpdate of the CA's next CRL built at `now`: never in the future, never before the
    /// CRLs it follows ([`times`]).
    fn this_update(&self, slot: &CaSlot, now: UnixTime) -> Result<UnixTime, Error> {
        let current = read(&slot.current).clone();
        let previous = [current.full, current.delta]
            .into_iter()
            .flatten()
            .map(|c| c.record.this_update)
            .max();
        times::this_update(now, self.settings.backdate, previous).map_err(|previous| {
            Error::ClockBehind {
                ca: slot.ca.id.clone(),
                now,
                previous,
            }
        })
    }

    fn build_full(&self, slot: &CaSlot) -> Result<Arc<PublishedCrl>, Error> {
        let ca = &slot.ca;
        let p = &slot.policy;
        let started = Instant::now();
        let now = self.clock.now();
        let number = self.next_number(slot)?;
        let this_update = self.this_update(slot, now)?;
        let next_update = this_update.plus(p.validity);
        let horizon = next_update.plus(p.validity);
        let freshest_url = self.freshest_url(p);
        let idp = self.desired_idp(slot)?;
        let expired_certs_on_crl =
            (p.keep_expired == KeepExpired::Forever).then(|| crate::pki::not_before(&ca.cert));
        let template = CrlTemplate::new(
            &ca.subject_der,
            &ca.key_identifier,
            this_update,
            next_update,
            idp.as_ref(),
            Scope::Full {
                number,
                freshest_url: freshest_url.clone(),
                expired_certs_on_crl,
            },
        )?;
        let view = self.store.revocation_view(&ca.id)?;
        let watermark = view.last_seq()?;
        let hint = read(&slot.current)
            .full
            .as_ref()
            .map_or(0, |f| f.der.len() + f.der.len() / 8);
        let signer = crl_signer(ca)?;
        let mut writer = CrlWriter::new(&template, signer.algorithm_der(), hint)?;
        let mut expiring = Vec::new();
        let progress = self.progress.as_deref();
        let so_far = std::cell::Cell::new(0u64);
        encode_revoked(
            &self.pool,
            &view,
            now,
            p.keep_expired,
            horizon,
            |part| {
                so_far.set(so_far.get() + part.entries as u64);
                writer.push(&part.der, part.entries);
                expiring.extend(part.expiring);
            },
            |done, all| {
                if let Some(f) = progress {
                    f(Some((done, all, so_far.get())));
                }
            },
        )?;
        drop(view);
        let entries = writer.entries();
        if let Some(f) = progress {
            f(None);
        }
        let encoded = started.elapsed();
        let der = writer.finish(signer)?;
        let signed = started.elapsed();
        let record = CrlRecord {
            kind: CrlKind::Full,
            number: number.value(),
            base: None,
            this_update,
            next_update,
            built_at: now,
            watermark,
            entries: entries as u64,
            bytes: der.len() as u64,
            pieces: der.len().div_ceil(PIECE_BYTES) as u32,
            idp,
            freshest_url,
            horizon,
            expiring,
            keep_expired: retention(p.keep_expired),
        };
        self.persist_and_swap(slot, record, der, started, encoded, signed)
    }

    fn build_delta(&self, slot: &CaSlot, base: &PublishedCrl) -> Result<Arc<PublishedCrl>, Error> {
        let ca = &slot.ca;
        let p = &slot.policy;
        let started = Instant::now();
        let now = self.clock.now();
        let numbers = DeltaNumbers::new(self.next_number(slot)?, base.number())?;
        let this_update = self.this_update(slot, now)?;
        let next_update = this_update.plus(p.delta_validity);
        let template = CrlTemplate::new(
            &ca.subject_der,
            &ca.key_identifier,
            this_update,
            next_update,
            base.record.idp.as_ref(),
            Scope::Delta(numbers),
        )?;
        let view = self.store.revocation_view(&ca.id)?;
        let watermark = view.last_seq()?;
        let entries = delta::delta_entries(&view, &base.der, &base.record, now, p.keep_expired)?;
        drop(view);
        let chunks = self.pool.install(|| build::encode_entries(&entries))?;
        let encoded = started.elapsed();
        let der = build::assemble(&template, crl_signer(ca)?, chunks)?;
        let signed = started.elapsed();
        let record = CrlRecord {
            kind: CrlKind::Delta,
            number: numbers.number().value(),
            base: Some(numbers.base().value()),
            this_update,
            next_update,
            built_at: now,
            watermark,
            entries: entries.len() as u64,
            bytes: der.len() as u64,
            pieces: der.len().div_ceil(PIECE_BYTES) as u32,
            idp: base.record.idp.clone(),
            freshest_url: None,
            horizon: base.record.horizon,
            expiring: Vec::new(),
            keep_expired: base.record.keep_expired,
        };
        self.persist_and_swap(slot, record, der, started, encoded, signed)
    }

    fn persist_and_swap(
        &self,
        slot: &CaSlot,
        record: CrlRecord,
        der: Bytes,
        started: Instant,
        encoded: Duration,
        signed: Duration,
    ) -> Result<Arc<PublishedCrl>, Error> {
        let ca = &slot.ca.id;
        let number = CrlNumber::new(record.number);
        if self.clock.now() >= record.next_update {
            return Err(Error::Stale {
                ca: ca.clone(),
                next_update: record.next_update,
            });
        }
        self.store.ingest_crl(
            der.chunks(PIECE_BYTES)
                .enumerate()
                .map(|(i, piece)| (Self::piece_key(ca, record.kind, number, i as u32), piece)),
        )?;
        let record_bytes = encode_record(&record)?;
        let next = number.next()?.value().to_be_bytes();
        // Queued for every sink in the batch that makes it current.
        let queued = self.queue_entries(ca, &record);
        self.store.write_synced_queued(
            &[(
                keys::crl_record(ca, record.kind.is_delta(), &number.key_bytes()),
                record_bytes.as_slice(),
            )],
            &[(keys::meta(ca, NEXT_NUMBER), &next[..])],
            &queued,
        )?;
        let stored = started.elapsed();
        let timings = BuildTimings {
            encode: encoded,
            sign: signed - encoded,
            store: stored - signed,
        };
        let kind = record.kind;
        let published = Arc::new(PublishedCrl::new(ca.clone(), record, der, Some(timings)));
        let mut current = write(&slot.current);
        match kind {
            CrlKind::Full => {
                current.full = Some(Arc::clone(&published));
                // A delta on an older base no longer goes with the current complete CRL.
                if current
                    .delta
                    .as_ref()
                    .is_some_and(|d| d.record.base != Some(published.record.number))
                {
                    current.delta = None;
                }
            }
            CrlKind::Delta => current.delta = Some(Arc::clone(&published)),
        }
        // The publication event, still under the lock: subscribers see a CA's CRLs in order.
        for subscriber in read(&self.subscribers).iter() {
            subscriber.announce(&published);
        }
        drop(current);
        // Retention of the history ([`history`]); a failure leaves old CRLs for the next build.
        if let Err(e) = self.prune_history(slot, self.clock.now()) {
            tracing::warn!(ca = %ca, error = %e, "CRL history pruning failed");
        }
        Ok(published)
    }

    /// For `/readyz`: each CA and, when it has no valid complete CRL at `now`, why.
    pub fn readiness(&self, now: UnixTime) -> Vec<(CaId, Option<String>)> {
        read(&self.slots)
            .iter()
            .map(|s| {
                let current = read(&s.current).clone();
                let problem = match current.full {
                    None => Some("no CRL published yet".to_owned()),
                    Some(f) if !f.is_valid_at(now) => Some(format!(
                        "CRL {} expired at {}",
                        f.record.number, f.record.next_update
                    )),
                    Some(_) => None,
                };
                (s.ca.id.clone(), problem)
            })
            .collect()
    }
}

/// The gauges of a published CRL (number, entries, size, times), by CA and kind: set when a CRL
/// is built, and for the CRLs found in the store at start-up.
fn export_gauges(p: &PublishedCrl) {
    let labels = [
        ("ca", p.ca.to_string()),
        ("kind", p.kind().label().to_owned()),
    ];
    metrics::gauge!(crate::metrics::CRL_ENTRIES, &labels).set(p.record.entries as f64);
    metrics::gauge!(crate::metrics::CRL_BYTES, &labels).set(p.record.bytes as f64);
    metrics::gauge!(crate::metrics::CRL_NUMBER, &labels).set(p.record.number as f64);
    metrics::gauge!(crate::metrics::CRL_LAST_PUBLISH, &labels).set(p.record.built_at.0 as f64);
    metrics::gauge!(crate::metrics::CRL_NEXT_UPDATE, &labels).set(p.record.next_update.0 as f64);
}

/// Reads a CA's revoked certificates from `view` in parallel partitions on `pool`, encodes
/// those still listed at `now` (retention `keep`), and hands the parts to `sink` in serial
/// order, a few at a time: memory holds the parts of one batch, not of the whole CRL.
/// `on_batch` is told (partitions done, partitions in all) after each batch.
fn encode_revoked(
    pool: &rayon::ThreadPool,
    view: &RevocationView<'_>,
    now: UnixTime,
    keep: KeepExpired,
    horizon: UnixTime,
    mut sink: impl FnMut(Part),
    mut on_batch: impl FnMut(usize, usize),
) -> Result<(), Error> {
    let partitions = view.partitions()?;
    let batch = pool.current_num_threads().max(1) * 16;
    let mut done = 0;
    for ranges in partitions.chunks(batch) {
        let parts: Vec<Part> = pool.install(|| {
            ranges
                .par_iter()
                .map(|r| encode_partition(view, r, now, keep, horizon))
                .collect::<Result<_, Error>>()
        })?;
        for part in parts {
            sink(part);
        }
        done += ranges.len();
        on_batch(done, partitions.len());
    }
    Ok(())
}

fn encode_partition(
    view: &RevocationView<'_>,
    range: &SerialRange,
    now: UnixTime,
    keep: KeepExpired,
    horizon: UnixTime,
) -> Result<Part, Error> {
    let mut part = Part {
        der: Vec::new(),
        entries: 0,
        expiring: Vec::new(),
    };
    view.for_each_revoked(range, |serial, entry| -> Result<(), Error> {
        if let Some(drop_at) = delta::drop_time(entry.not_after, keep) {
            if drop_at <= now {
                return Ok(());
            }
            if drop_at <= horizon {
                part.expiring.push((serial.to_vec(), drop_at));
            }
        }
        let r = &entry.revocation;
        build::encode_entry(
            &mut part.der,
            serial,
            r.revoked_at,
            EntryReason::Revoked(r.reason),
            r.invalidity_date,
        )
        .map_err(|e| match e {
            Error::TimeOutOfRange { what, time } => {
                tracing::error!(serial = %hex::encode(serial), %what, ?time, "revocation time cannot be encoded");
                Error::TimeOutOfRange { what, time }
            }
            other => other,
        })?;
        part.entries += 1;
        Ok(())
    })?;
    Ok(part)
}

#[cfg(test)]
mod tests;
