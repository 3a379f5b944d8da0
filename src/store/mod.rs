//! The status store: RocksDB on disk, one column family per purpose.
//!
//! | CF | key | value |
//! |---|---|---|
//! | `certs` | ca ‖ serial | [`CertRecord`] |
//! | `revoked` | ca ‖ serial | [`RevokedEntry`]: the index CRLs are built from |
//! | `events` | ca ‖ seq | [`Event`], in order, without gaps |
//! | `ocsp` | ca ‖ serial ‖ variant | [`StoredResponse`]: signed response bytes |
//! | `crl` | ca ‖ kind ‖ number [‖ piece] | published CRLs: DER pieces (kind 0 full, 1 delta, ingested as SST files) and records (2, 3) |
//! | `meta` | ca ‖ name | counters |
//! | `audit` | at (u64 BE seconds) ‖ id (u64 BE) | who changed what through the ingest API ([`crate::ingest::audit`]) |
//! | `publish` | sink ‖ ca ‖ kind ‖ number | CRLs waiting for a publication sink ([`queue`]) |
//!
//! Changes go through [`Store::transact`]: under the CA's lock, the caller reads records and
//! stages new ones; the store appends their events, keeps the `revoked` index in step, writes it
//! all as one `WriteBatch`, and returns only once the write-ahead log is synced. Concurrent
//! transactions share one sync ([`GroupSync`]). Whether a change is allowed is the caller's
//! business ([`crate::ingest`]); this module only makes it atomic and durable.
//!
//! A stored OCSP response follows its record: a record's change deletes the serial's stored
//! responses in the same batch, and a response is stored only while its record is still at the
//! [`CertRecord::version`] it was signed from ([`Store::put_ocsp_response`], checked under the
//! CA's lock that every change holds until its batch is written). So a stored response that
//! carries its status ([`StoredStatus`]) is current and is served without reading the record; a
//! response written before schema 2 has no status and is served only after its record has been
//! read and found at its version. [`Store::change_generation`] gives in-memory caches a cheap way
//! to notice changes without reading the store.

pub mod backup;
pub mod health;
pub mod keys;
pub mod maker;
pub mod presign;
pub mod queue;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize};

use crate::model::{CaId, CertRecord, Event, EventKind, Revocation, Serial, UnixTime};
pub use maker::{Incarnation, Maker, StoredStatus};

/// Column family names.
pub mod cf {
    /// Certificate records.
    pub const CERTS: &str = "certs";
    /// Revoked certificates (CRL source).
    pub const REVOKED: &str = "revoked";
    /// Ordered event log.
    pub const EVENTS: &str = "events";
    /// Signed OCSP responses.
    pub const OCSP: &str = "ocsp";
    /// Published CRLs.
    pub const CRL: &str = "crl";
    /// Counters.
    pub const META: &str = "meta";
    /// The ingest API's audit trail.
    pub const AUDIT: &str = "audit";
    /// CRLs waiting for publication sinks (LDAP, directory).
    pub const PUBLISH: &str = "publish";
    /// All of them.
    pub const ALL: [&str; 8] = [CERTS, REVOKED, EVENTS, OCSP, CRL, META, AUDIT, PUBLISH];
}

/// A raw key and value read from RocksDB.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Subdirectory of the store where SST files are written before ingestion
/// ([`Store::ingest_crl`]); what a crash leaves there is removed at open.
const INGEST_DIR: &str = "ingest";

/// Current on-disk layout version. 2: stored answers follow their records (see the module
/// documentation); a vigie of schema 1, which does not delete them on a change, refuses the
/// store, so that it cannot leave an answer with a status behind a change.
pub const SCHEMA_VERSION: u64 = 2;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RocksDB reported an error (I/O, corruption, lock held by another process …).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value does not decode: corruption or a newer layout.
    #[error("stored value under {cf} does not decode: {message}")]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// Decoder's message.
        message: String,
    },
    /// The directory holds a layout newer than this binary knows.
    #[error("store schema version {found} is newer than this vigie ({SCHEMA_VERSION})")]
    Schema {
        /// The version on disk.
        found: u64,
    },
    /// A file of the store's directory could not be written or removed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A transaction named a CA the store was not opened for.
    #[error("CA {0} is not configured")]
    UnknownCa(String),
    /// A replicated event does not follow the CA's last applied event (see [`Tx::apply_event`]).
    #[error("CA {ca}: replicated event {got} does not follow event {last}")]
    Gap {
        /// The CA.
        ca: String,
        /// The last event applied.
        last: u64,
        /// The event offered.
        got: u64,
    },
}

impl Error {
    /// Whether this is the store being unable to write for a reason outside vigie (a full
    /// disk, a file system turned read-only, an I/O error: [`health::is_io`]), rather than a
    /// refusal or a corruption. Callers answer 503 for it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Rocks(e) => health::is_io(e),
            Error::Io(..) => true,
            _ => false,
        }
    }
}

/// A revoked certificate as CRLs need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// The revocation.
    pub revocation: Revocation,
    /// notAfter of the certificate, when its issuance was registered.
    pub not_after: Option<UnixTime>,
}

/// A signed OCSP response as kept in the `ocsp` CF (encoded by [`maker`]: the fields below in
/// order, then its maker; a record written before answers knew their maker has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// [`CertRecord::version`] it was signed from (0: no record).
    pub version: u64,
    /// When it was signed.
    pub produced_at: UnixTime,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// The whole DER OCSPResponse.
    pub der: Vec<u8>,
    /// Who made it (signer, policy, store incarnation); `None` for an old record: a miss.
    pub maker: Option<Maker>,
    /// The status it gives. `None`: stored before schema 2, current only if its record is
    /// still at `version`.
    pub status: Option<StoredStatus>,
}

struct Ledger {
    id: CaId,
    /// Last event sequence number written; the lock also serialises the CA's transactions.
    last_seq: Mutex<u64>,
}

/// Group commit: writers append to the WAL without syncing, then wait until one sync covers
/// their write. One caller at a time syncs, for everyone who wrote before it started.
#[derive(Default)]
pub struct GroupSync {
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Default)]
struct SyncState {
    written: u64,
    synced: u64,
    syncing: bool,
}

impl GroupSync {
    fn ticket(&self) -> u64 {
        let mut s = lock(&self.state);
        s.written += 1;
        s.written
    }

    fn wait(
        &self,
        ticket: u64,
        sync: impl Fn() -> Result<(), rocksdb::Error>,
    ) -> Result<(), Error> {
        let mut s = lock(&self.state);
        while s.synced < ticket {
            if s.syncing {
                s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.syncing = true;
            let target = s.written;
            drop(s);
            let result = sync();
            metrics::counter!(crate::metrics::STORE_WAL_SYNCS).increment(1);
            s = lock(&self.state);
            s.syncing = false;
            if result.is_ok() {
                s.synced = s.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing half-done in memory (the data is
    // in RocksDB), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const STRIPES: usize = 1 << 16;

/// What a committed transaction changed, for one CA: sent to subscribers ([`Store::subscribe`]) once the
/// change is durable (CRL publishers, replicas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The CA.
    pub ca: CaId,
    /// Its last event sequence number after the transaction.
    pub last_seq: u64,
    /// Whether a revocation (or a hold, or a release) was among the changes.
    pub revocation_changed: bool,
    /// Whether the CA's CRL scope may have changed ([`Tx::mark_scope_changed`]): a registered
    /// certificate brought distribution points not seen before.
    pub scope_changed: bool,
}

/// Options for opening the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Block cache size in bytes.
    pub block_cache_bytes: usize,
    /// Memory for the memtables of all column families together, in bytes.
    pub write_buffer_bytes: usize,
    /// Sync the WAL before acknowledging a transaction (always true in service; tests of
    /// throughput may turn it off to measure the difference).
    pub sync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            sync: true,
        }
    }
}

/// The store.
pub struct Store {
    db: DB,
    /// One per CA, in the order they were first configured; a CA added by a reload is
    /// appended ([`Store::add_ca`]), none is ever removed while the store is open.
    ledgers: RwLock<Vec<Arc<Ledger>>>,
    /// This store's incarnation ([`maker`]): stored answers made under another are misses.
    incarnation: Incarnation,
    group: GroupSync,
    sync: bool,
    generations: Box<[AtomicU64]>,
    committed: tokio::sync::broadcast::Sender<Committed>,
    /// The next audit record id (unique within the store, see [`keys::audit`]).
    audit_id: AtomicU64,
    /// Whether writes go through, and why not ([`health`]).
    health: health::Health,
    /// Whether [`Store::close`] ran (else dropping the store closes it).
    closed: std::sync::atomic::AtomicBool,
}

/// A store dropped without [`Store::close`] — by an offline command (`vigie crl build`, `vigie
/// import`, a test reading the store) — closes itself, so that its incarnation carries over
/// and the stored answers stay valid. Not while panicking, and never after SIGKILL or a crash:
/// then the next open starts a new incarnation.
impl Drop for Store {
    fn drop(&mut self) {
        if self.closed.load(Ordering::Acquire) || std::thread::panicking() {
            return;
        }
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "the store could not be closed cleanly: its stored OCSP answers will be signed again");
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

fn decode<T: for<'de> Deserialize<'de>>(cf: &'static str, bytes: &[u8]) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        cf,
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes plain structs into a Vec without failure")
}

impl Store {
    /// Opens (creating if needed) the store at `path` for these CAs.
    pub fn open(path: &Path, cas: &[CaId], options: &StoreOptions) -> Result<Store, Error> {
        // HyperClockCache: lookups and inserts without a shard mutex. With answers spread over a
        // store much larger than the cache, nearly every read inserts a block and evicts one;
        // the LRU cache's shard locks, hash chains and list upkeep were ~7 % of the server's
        // CPU in a uniform run over 10⁶ pre-signed answers. Entries are 4 KiB blocks and index
        // or filter partitions of the same size.
        let cache = Cache::new_hyper_clock_cache(options.block_cache_bytes, 4096);
        let cf_opts = |point_lookups: bool, mostly_hits: bool| {
            let mut bbo = BlockBasedOptions::default();
            bbo.set_block_cache(&cache);
            // Answers in 16 KiB blocks: the responder's certificate each answer embeds is
            // compressed away in all but the first answer of a block. RSA-2048, 3·10⁵
            // certificates: store 455 → 284 MB (32 KiB: 239 MB), server CPU per first request
            // 35.9 → 28.8 µs (32 KiB: 34.6 µs) — fewer pages to copy and fewer index entries
            // outweigh the longer decompression. A store that fits the page cache is what keeps
            // first requests off the disk.
            if mostly_hits {
                bbo.set_block_size(16 << 10);
            }
            bbo.set_cache_index_and_filter_blocks(true);
            bbo.set_pin_l0_filter_and_index_blocks_in_cache(true);
            // Partitioned index and filters: a lookup loads one small partition, not the whole
            // index of a large SST file. Without them a block cache smaller than all indexes
            // and filters reloads (and checksums) megabytes per request: with 10⁶ certificates
            // and a 64 MiB cache, that was 0.8 ms of CPU per OCSP request.
            bbo.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
            bbo.set_pin_top_level_index_and_filter(true);
            if point_lookups {
                bbo.set_bloom_filter(10.0, false);
                bbo.set_partition_filters(true);
            }
            let mut o = Options::default();
            o.set_block_based_table_factory(&bbo);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            // No filter in the last level, where nearly all data lies: a lookup that finds its
            // key gains nothing from one, and every read of a stored answer is for a registered
            // serial, which has one once pre-signed. (Records keep theirs: made-up serials are
            // looked up there.)
            o.set_optimize_filters_for_hits(mostly_hits);
            o
        };
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(5);
        // All memtables together stay within this budget (six column families at RocksDB's
        // default of 64 MiB × 2 each could otherwise reach 768 MiB).
        db_opts.set_db_write_buffer_size(options.write_buffer_bytes);
        let descriptors = cf::ALL.iter().map(|name| {
            let point = matches!(*name, cf::CERTS | cf::OCSP);
            ColumnFamilyDescriptor::new(*name, cf_opts(point, *name == cf::OCSP))
        });
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors)?;
        let _ = std::fs::remove_dir_all(path.join(INGEST_DIR));

        let schema_key = keys::global_meta("schema");
        let meta = db
            .cf_handle(cf::META)
            .expect("META is created with the database");
        match db.get_cf(meta, &schema_key)? {
            Some(v) => {
                let found =
                    u64::from_be_bytes(v.as_slice().try_into().map_err(|_| Error::Corrupt {
                        cf: cf::META,
                        message: "schema version is not 8 bytes".into(),
                    })?);
                if found > SCHEMA_VERSION {
                    return Err(Error::Schema { found });
                }
                // Schema 1's answers carry no status: they are still checked against their
                // records, and every answer stored from now on follows its record.
                if found < SCHEMA_VERSION {
                    let mut wo = WriteOptions::default();
                    wo.set_sync(true);
                    db.put_cf_opt(meta, &schema_key, SCHEMA_VERSION.to_be_bytes(), &wo)?;
                }
            }
            None => db.put_cf(meta, &schema_key, SCHEMA_VERSION.to_be_bytes())?,
        }

        let mut ledgers = Vec::with_capacity(cas.len());
        for ca in cas {
            let last = Self::last_event_seq(&db, ca)?;
            ledgers.push(Arc::new(Ledger {
                id: ca.clone(),
                last_seq: Mutex::new(last),
            }));
        }
        let generations = (0..STRIPES).map(|_| AtomicU64::new(0)).collect();
        let (committed, _) = tokio::sync::broadcast::channel(1024);
        let audit_id = AtomicU64::new(Self::first_audit_id(&db)?);
        let incarnation = maker::open_incarnation(&db, options.sync)?;
        Ok(Store {
            db,
            ledgers: RwLock::new(ledgers),
            incarnation,
            group: GroupSync::default(),
            sync: options.sync,
            generations,
            committed,
            audit_id,
            health: health::Health::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family in cf::ALL is created at open")
    }

    /// Notes the outcome of a write in [`Store::writable`]'s state.
    fn wrote<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match &result {
            Ok(_) => self.health.succeeded(),
            Err(e) if e.is_unavailable() => self.health.failed(
                e.to_string(),
                crate::clock::Clock::now(&crate::clock::SystemClock),
            ),
            Err(_) => {}
        }
        result
    }

    /// `Ok` when the store writes, else why not ([`health`]). After a failed write, a small
    /// synced probe write is tried (at most once a second) so that the answer comes back to
    /// `Ok` by itself once RocksDB has resumed (a full disk that has room again).
    pub fn writable(&self) -> Result<(), health::Unwritable> {
        if self.health.probe_due(std::time::Instant::now()) {
            let mut wo = WriteOptions::default();
            wo.set_sync(self.sync);
            let probe = self
                .db
                .put_cf_opt(
                    self.cf(cf::META),
                    keys::global_meta("write-probe"),
                    crate::clock::Clock::now(&crate::clock::SystemClock)
                        .0
                        .to_be_bytes(),
                    &wo,
                )
                .map_err(Error::from);
            let _ = self.wrote(probe);
        }
        match self.health.problem() {
            None => Ok(()),
            Some(p) => Err(p),
        }
    }

    fn last_event_seq(db: &DB, ca: &CaId) -> Result<u64, Error> {
        let events = db
            .cf_handle(cf::EVENTS)
            .expect("EVENTS is created with the database");
        let prefix = keys::ca_prefix(ca);
        let end = keys::prefix_end(&prefix);
        let mut it = db.iterator_cf(events, IteratorMode::From(&end, Direction::Reverse));
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                if k.starts_with(&prefix) && k.len() == prefix.len() + 8 {
                    let mut seq = [0u8; 8];
                    seq.copy_from_slice(&k[prefix.len()..]);
                    Ok(u64::from_be_bytes(seq))
                } else {
                    Ok(0)
                }
            }
            None => Ok(0),
        }
    }

    /// Audit ids go on from the last record's, and from the clock in microseconds: ids stay
    /// unique even if the last record is not the one with the greatest id (a clock set back).
    fn first_audit_id(db: &DB) -> Result<u64, Error> {
        let audit = db
            .cf_handle(cf::AUDIT)
            .expect("AUDIT is created with the database");
        let last = match db.iterator_cf(audit, IteratorMode::End).next() {
            Some(item) => {
                let (k, _) = item?;
                keys::parse_audit(&k).map_or(0, |(_, id)| id)
            }
            None => 0,
        };
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(last.saturating_add(1).max(micros))
    }

    fn next_audit_key(&self, at: UnixTime) -> Vec<u8> {
        keys::audit(at, self.audit_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes one audit record on its own, synced (a refused request: nothing else to write).
    pub fn put_audit(&self, at: UnixTime, record: &[u8]) -> Result<(), Error> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.wrote(
            self.db
                .put_cf_opt(self.cf(cf::AUDIT), self.next_audit_key(at), record, &wo)
                .map_err(Error::from),
        )
    }

    /// Audit records whose key is at or after `start` ([`keys::audit`]), in key order: by time,
    /// then id.
    pub fn audit_from(&self, start: Vec<u8>) -> impl Iterator<Item = Result<KeyValue, Error>> + '_ {
        self.db
            .iterator_cf(
                self.cf(cf::AUDIT),
                IteratorMode::From(&start, Direction::Forward),
            )
            .map(|item| item.map_err(Error::from))
    }

    fn ledger(&self, ca: &CaId) -> Result<Arc<Ledger>, Error> {
        self.ledgers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|l| &l.id == ca)
            .cloned()
            .ok_or_else(|| Error::UnknownCa(ca.to_string()))
    }

    /// Makes `ca` known to the store (a CA added by a reload): its transactions are accepted
    /// from now on, numbered after the events it may already have. No-op for a known CA.
    pub fn add_ca(&self, ca: &CaId) -> Result<(), Error> {
        let mut ledgers = self.ledgers.write().unwrap_or_else(|p| p.into_inner());
        if ledgers.iter().any(|l| &l.id == ca) {
            return Ok(());
        }
        let last = Self::last_event_seq(&self.db, ca)?;
        ledgers.push(Arc::new(Ledger {
            id: ca.clone(),
            last_seq: Mutex::new(last),
        }));
        Ok(())
    }

    /// This store's incarnation: see [`maker`].
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// The record of one certificate.
    pub fn cert(&self, ca: &CaId, serial: &Serial) -> Result<Option<CertRecord>, Error> {
        match self
            .db
            .get_pinned_cf(self.cf(cf::CERTS), keys::cert(ca, serial))?
        {
            Some(v) => Ok(Some(decode(cf::CERTS, &v)?)),
            None => Ok(None),
        }
    }

    /// The change generation of (CA, serial)'s stripe: it moves whenever a transaction changes
    /// a record in that stripe. Read it *before* reading the record a response is signed from;
    /// a cached response is fresh only while the generation has not moved since.
    pub fn change_generation(&self, ca: &CaId, serial: &Serial) -> u64 {
        self.generations[stripe(ca, serial)].load(Ordering::Acquire)
    }

    /// Last event sequence number of a CA (0 when none).
    pub fn last_seq(&self, ca: &CaId) -> Result<u64, Error> {
        Ok(*lock(&self.ledger(ca)?.last_seq))
    }

    /// Runs `f` atomically for the CAs in `cas`: their transactions are serialised, `f` reads and
    /// stages changes through the [`Tx`], and the staged changes are written in one batch and made
    /// durable before this returns. If `f` fails, nothing is written.
    pub fn transact<T, E: From<Error>>(
        &self,
        cas: &[CaId],
        now: UnixTime,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut ids: Vec<&CaId> = cas.iter().collect();
        ids.sort();
        ids.dedup();
        let ledgers = ids
            .iter()
            .map(|id| self.ledger(id))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut guards = Vec::with_capacity(ids.len());
        for ledger in &ledgers {
            guards.push((ledger.id.clone(), lock(&ledger.last_seq)));
        }
        let mut tx = Tx {
            store: self,
            now,
            staged: HashMap::new(),
            seqs: guards.iter().map(|(id, g)| (id.clone(), **g)).collect(),
            batch: WriteBatch::default(),
            changed: Vec::new(),
            revocation_changed: HashMap::new(),
            audited: false,
            meta_staged: false,
            meta: HashMap::new(),
            scope_changed: Vec::new(),
        };
        let out = f(&mut tx)?;
        if tx.changed.is_empty() && !tx.audited && !tx.meta_staged {
            return Ok(out);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        let Tx {
            mut batch,
            seqs,
            changed,
            revocation_changed,
            meta,
            scope_changed,
            ..
        } = tx;
        for (key, value) in &meta {
            batch.put_cf(self.cf(cf::META), key, value);
        }
        self.wrote(self.db.write_opt(batch, &wo).map_err(Error::from))?;
        for (id, guard) in guards.iter_mut() {
            if let Some(seq) = seqs.get(id) {
                **guard = *seq;
            }
        }
        for (ca, serial) in &changed {
            let i = stripe(ca, serial);
            self.generations[i].fetch_add(1, Ordering::AcqRel);
        }
        let ticket = self.group.ticket();
        drop(guards);
        if self.sync {
            self.wrote(self.group.wait(ticket, || self.db.flush_wal(true)))?;
        }
        for (ca, last_seq) in seqs {
            let revocation_changed = revocation_changed.get(&ca).copied().unwrap_or(false);
            if changed.iter().any(|(c, _)| *c == ca) {
                // No subscriber is not an error.
                let scope_changed = scope_changed.contains(&ca);
                let _ = self.committed.send(Committed {
                    ca,
                    last_seq,
                    revocation_changed,
                    scope_changed,
                });
            }
        }
        Ok(out)
    }

    /// Notifications of committed (durable) transactions, one per CA changed.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// A stored OCSP response.
    pub fn ocsp_response(
        &self,
        ca: &CaId,
        serial: &Serial,
        variant: u8,
    ) -> Result<Option<StoredResponse>, Error> {
        // Not through the block cache: answers asked again are served from the responder's own
        // cache, so an answer's block is rarely read twice, and over a population larger than
        // the block cache each insert would evict what is read on every request — records,
        // index and filter partitions.
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        match self
            .db
            .get_pinned_cf_opt(self.cf(cf::OCSP), keys::ocsp(ca, serial, variant), &ro)?
        {
            Some(v) => Ok(Some(maker::decode_response(&v)?)),
            None => Ok(None),
        }
    }

    /// Stores a signed OCSP response (not synced: it can always be signed again) if its record
    /// is still at the version it was signed from, and says whether it did. Checked under the
    /// CA's lock, which a change holds until its batch (deleting the serial's stored responses)
    /// is written: a response signed from a record that changed meanwhile is never stored.
    pub fn put_ocsp_response(
        &self,
        ca: &CaId,
        serial: &Serial,
        variant: u8,
        r: &StoredResponse,
    ) -> Result<bool, Error> {
        let ledger = self.ledger(ca)?;
        let _changes_wait = lock(&ledger.last_seq);
        if self.cert(ca, serial)?.map(|c| c.version) != Some(r.version) {
            return Ok(false);
        }
        self.put_ocsp_response_unchecked(ca, serial, variant, r)?;
        Ok(true)
    }

    fn put_ocsp_response_unchecked(
        &self,
        ca: &CaId,
        serial: &Serial,
        variant: u8,
        r: &StoredResponse,
    ) -> Result<(), Error> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.wrote(
            self.db
                .put_cf_opt(
                    self.cf(cf::OCSP),
                    keys::ocsp(ca, serial, variant),
                    maker::encode_response(r),
                    &wo,
                )
                .map_err(Error::from),
        )
    }

    /// Deletes a stored OCSP response.
    pub fn delete_ocsp_response(
        &self,
        ca: &CaId,
        serial: &Serial,
        variant: u8,
    ) -> Result<(), Error> {
        self.wrote(
            self.db
                .delete_cf(self.cf(cf::OCSP), keys::ocsp(ca, serial, variant))
                .map_err(Error::from),
        )
    }

    /// Every stored OCSP response of a CA: (serial, variant, response). For the refresher.
    pub fn ocsp_responses(
        &self,
        ca: &CaId,
    ) -> impl Iterator<Item = Result<(Serial, u8, StoredResponse), Error>> + '_ {
        self.prefix_iter(cf::OCSP, keys::ca_prefix(ca)).map(|item| {
            let (k, v) = item?;
            let (serial, variant) = keys::parse_ocsp(&k).ok_or_else(|| Error::Corrupt {
                cf: cf::OCSP,
                message: "bad key".into(),
            })?;
            Ok((serial, variant, maker::decode_response(&v)?))
        })
    }

    /// Every revoked certificate of a CA, in serial order.
    pub fn revoked(
        &self,
        ca: &CaId,
    ) -> impl Iterator<Item = Result<(Serial, RevokedEntry), Error>> + '_ {
        self.prefix_iter(cf::REVOKED, keys::ca_prefix(ca))
            .map(|item| {
                let (k, v) = item?;
                let serial = keys::serial_of(&k).ok_or_else(|| Error::Corrupt {
                    cf: cf::REVOKED,
                    message: "bad key".into(),
                })?;
                Ok((serial, decode(cf::REVOKED, &v)?))
            })
    }

    /// Every certificate record of a CA, in serial order.
    pub fn certs(
        &self,
        ca: &CaId,
    ) -> impl Iterator<Item = Result<(Serial, CertRecord), Error>> + '_ {
        self.prefix_iter(cf::CERTS, keys::ca_prefix(ca))
            .map(|item| {
                let (k, v) = item?;
                let serial = keys::serial_of(&k).ok_or_else(|| Error::Corrupt {
                    cf: cf::CERTS,
                    message: "bad key".into(),
                })?;
                Ok((serial, decode(cf::CERTS, &v)?))
            })
    }

    /// Events of a CA with sequence numbers greater than `after`, in order.
    pub fn events_after(
        &self,
        ca: &CaId,
        after: u64,
    ) -> impl Iterator<Item = Result<Event, Error>> + '_ {
        let prefix = keys::ca_prefix(ca);
        let start = keys::event(ca, after.saturating_add(1));
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
        self.db
            .iterator_cf_opt(
                self.cf(cf::EVENTS),
                ro,
                IteratorMode::From(&start, Direction::Forward),
            )
            .map(|item| {
                let (_, v) = item?;
                decode(cf::EVENTS, &v)
            })
    }

    fn prefix_iter(
        &self,
        cf_name: &'static str,
        prefix: Vec<u8>,
    ) -> impl Iterator<Item = Result<KeyValue, Error>> + '_ {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::prefix_end(&prefix));
        // Whole-CA scans (the OCSP refresher, listings) must not push the blocks that serve
        // requests out of the cache.
        ro.fill_cache(false);
        self.db
            .iterator_cf_opt(
                self.cf(cf_name),
                ro,
                IteratorMode::From(&prefix, Direction::Forward),
            )
            .map(|item| item.map_err(Error::from))
    }

    /// A store-wide `meta` value (see [`Tx::put_global_meta`]), raw bytes.
    pub fn global_meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.db.get_cf(self.cf(cf::META), keys::global_meta(name))?)
    }

    /// Writes store-wide `meta` values in one synced batch.
    pub fn put_global_meta(&self, values: &[(&str, &[u8])]) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for (name, v) in values {
            batch.put_cf(self.cf(cf::META), keys::global_meta(name), v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.wrote(self.db.write_opt(batch, &wo).map_err(Error::from))
    }

    /// A CA's named counter in `meta` (e.g. the next CRL number), raw bytes.
    pub fn meta(&self, ca: &CaId, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.db.get_cf(self.cf(cf::META), keys::meta(ca, name))?)
    }

    /// Writes raw `crl` CF and `meta` entries in one synced batch (for the CRL publisher).
    pub fn write_synced<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        crl_puts: &[(K, V)],
        meta_puts: &[(K, V)],
    ) -> Result<(), Error> {
        self.write_synced_queued(crl_puts, meta_puts, &[])
    }

    /// As [`Store::write_synced`], with publication queue entries ([`queue::QueuedCrl::key`])
    /// in the same batch: a CRL becomes current and is queued for every sink at once, or neither.
    pub fn write_synced_queued<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        crl_puts: &[(K, V)],
        meta_puts: &[(K, V)],
        queue_puts: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        for (k, v) in crl_puts {
            batch.put_cf(self.cf(cf::CRL), k, v);
        }
        for (k, v) in meta_puts {
            batch.put_cf(self.cf(cf::META), k, v);
        }
        for (k, v) in queue_puts {
            batch.put_cf(self.cf(cf::PUBLISH), k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.wrote(self.db.write_opt(batch, &wo).map_err(Error::from))
    }

    /// Writes `crl` CF entries, keys in increasing order, as one SST file ingested into the
    /// store: large values (a 50 MB CRL) go to disk once, without passing through the
    /// write-ahead log and a memtable, and without a second copy in memory. The file is synced
    /// before it is ingested, and ingestion is atomic: when this returns, the entries are
    /// durable. (The CRL publisher then writes the CRL's record with [`Store::write_synced`].)
    pub fn ingest_crl<'v>(
        &self,
        entries: impl IntoIterator<Item = (Vec<u8>, &'v [u8])>,
    ) -> Result<(), Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.db.path().join(INGEST_DIR);
        self.wrote(
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.display().to_string(), e)),
        )?;
        let path = dir.join(format!(
            "crl-{}-{}.sst",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut opts = Options::default();
        // CRL DER is mostly serials and signatures: compression would cost more than it saves.
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        let result = (|| {
            let mut writer = rocksdb::SstFileWriter::create(&opts);
            writer.open(&path)?;
            for (k, v) in entries {
                writer.put(k, v)?;
            }
            writer.finish()?;
            let mut io = rocksdb::IngestExternalFileOptions::default();
            io.set_move_files(true);
            self.db
                .ingest_external_file_cf_opts(self.cf(cf::CRL), &io, vec![&path])
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        self.wrote(result.map_err(Error::from))
    }

    /// Every `crl` CF entry whose key starts with `prefix`, in key order.
    pub fn crl_entries(
        &self,
        prefix: Vec<u8>,
    ) -> impl Iterator<Item = Result<KeyValue, Error>> + '_ {
        self.prefix_iter(cf::CRL, prefix)
    }

    /// Deletes CRLs in one synced batch: their records (exact keys) and every piece under each
    /// of `piece_prefixes` (CRL history pruning).
    pub fn delete_crls(
        &self,
        records: &[Vec<u8>],
        piece_prefixes: &[Vec<u8>],
    ) -> Result<(), Error> {
        let mut batch = WriteBatch::default();
        let crl = self.cf(cf::CRL);
        for k in records {
            batch.delete_cf(crl, k);
        }
        for p in piece_prefixes {
            batch.delete_range_cf(crl, p.as_slice(), keys::prefix_end(p).as_slice());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.wrote(self.db.write_opt(batch, &wo).map_err(Error::from))
    }

    /// A raw `crl` CF value.
    pub fn crl_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.db.get_cf(self.cf(cf::CRL), key)?)
    }

    /// The `crl` CF entry with the greatest key starting with `prefix` (the latest CRL of a
    /// kind, since numbers are big-endian in keys).
    pub fn crl_last(&self, prefix: &[u8]) -> Result<Option<KeyValue>, Error> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(prefix.to_vec());
        let end = keys::prefix_end(prefix);
        let mut it = self.db.iterator_cf_opt(
            self.cf(cf::CRL),
            ro,
            IteratorMode::From(&end, Direction::Reverse),
        );
        match it.next() {
            Some(item) => {
                let (k, v) = item?;
                if k.starts_with(prefix) {
                    Ok(Some((k, v)))
                } else {
                    Ok(None)
                }
            }
            None => Ok(None),
        }
    }

    /// A consistent view (RocksDB snapshot) of one CA's revocations and events, for building
    /// a CRL: the `revoked` index and the event log read from it agree with each other, since
    /// each transaction is one atomic batch.
    pub fn revocation_view(&self, ca: &CaId) -> Result<RevocationView<'_>, Error> {
        self.ledger(ca)?;
        Ok(RevocationView {
            store: self,
            prefix: keys::ca_prefix(ca),
            snapshot: self.db.snapshot(),
        })
    }

    /// Flushes, then records that this incarnation ended cleanly (on shutdown, last): the next
    /// open keeps it ([`maker`]).
    pub fn close(&self) -> Result<(), Error> {
        self.flush()?;
        maker::mark_clean(&self.db, self.incarnation)?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// Flushes memtables and syncs the WAL (on shutdown).
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush_wal(true)?;
        for name in cf::ALL {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }

    /// Flushes, then compacts every column family fully (after a bulk load: later scans, such
    /// as a CRL build, read a few large sorted files instead of many small ones).
    pub fn compact(&self) -> Result<(), Error> {
        self.flush()?;
        for name in cf::ALL {
            self.db
                .compact_range_cf(self.cf(name), None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }
}

/// A range of `revoked` CF keys of one CA: serials in `[lower, upper)` (see
/// [`RevocationView::partitions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialRange {
    lower: Vec<u8>,
    upper: Vec<u8>,
}

/// A snapshot of one CA's `revoked` index and event log: see [`Store::revocation_view`].
pub struct RevocationView<'a> {
    store: &'a Store,
    prefix: Vec<u8>,
    snapshot: rocksdb::Snapshot<'a>,
}

impl RevocationView<'_> {
    fn read_options(&self, fill_cache: bool) -> ReadOptions {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&self.snapshot);
        ro.fill_cache(fill_cache);
        ro
    }

    /// The CA's last event sequence number as of the snapshot (0 when none).
    pub fn last_seq(&self) -> Result<u64, Error> {
        let end = keys::prefix_end(&self.prefix);
        let ro = self.read_options(true);
        let mut it = self.store.db.iterator_cf_opt(
            self.store.cf(cf::EVENTS),
            ro,
            IteratorMode::From(&end, Direction::Reverse),
        );
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                if k.starts_with(&self.prefix) && k.len() == self.prefix.len() + 8 {
                    let mut seq = [0u8; 8];
                    seq.copy_from_slice(&k[self.prefix.len()..]);
                    Ok(u64::from_be_bytes(seq))
                } else {
                    Ok(0)
                }
            }
            None => Ok(0),
        }
    }

    /// Contiguous, ordered, disjoint key ranges that together hold every revoked serial of the
    /// CA, for reading them in parallel: one range per (serial length, first octet) present.
    /// Read in the returned order, they give serial order.
    pub fn partitions(&self) -> Result<Vec<SerialRange>, Error> {
        let cf = self.store.cf(cf::REVOKED);
        let mut ranges = Vec::new();
        for len in 1..=Serial::MAX_OCTETS as u8 {
            let mut start = self.prefix.clone();
            start.push(len);
            let mut ro = self.read_options(true);
            ro.set_iterate_upper_bound(keys::prefix_end(&start));
            let mut it = self.store.db.iterator_cf_opt(
                cf,
                ro,
                IteratorMode::From(&start, Direction::Forward),
            );
            if it.next().transpose()?.is_none() {
                continue;
            }
            for first in 1..=255u8 {
                let mut lower = start.clone();
                lower.push(first);
                let upper = keys::prefix_end(&lower);
                ranges.push(SerialRange { lower, upper });
            }
        }
        Ok(ranges)
    }

    /// Calls `f` with each revoked serial (magnitude) in `range` and its entry, in serial
    /// order. Bypasses the block cache: a CRL build reads everything once.
    pub fn for_each_revoked<E: From<Error>>(
        &self,
        range: &SerialRange,
        mut f: impl FnMut(&[u8], RevokedEntry) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut ro = self.read_options(false);
        ro.set_iterate_upper_bound(range.upper.clone());
        let mut it = self
            .store
            .db
            .raw_iterator_cf_opt(self.store.cf(cf::REVOKED), ro);
        it.seek(&range.lower);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let serial = k
                .get(self.prefix.len() + 1..)
                .filter(|m| !m.is_empty() && k[self.prefix.len()] as usize == m.len())
                .ok_or_else(|| Error::Corrupt {
                    cf: cf::REVOKED,
                    message: "bad key".into(),
                })?;
            f(serial, decode(cf::REVOKED, v)?)?;
            it.next();
        }
        it.status().map_err(Error::from)?;
        Ok(())
    }

    /// One serial's revoked entry as of the snapshot.
    pub fn revoked_entry(&self, serial: &Serial) -> Result<Option<RevokedEntry>, Error> {
        let mut key = self.prefix.clone();
        key.push(serial.magnitude().len() as u8);
        key.extend_from_slice(serial.magnitude());
        match self.store.db.get_cf_opt(
            self.store.cf(cf::REVOKED),
            &key,
            &self.read_options(true),
        )? {
            Some(v) => Ok(Some(decode(cf::REVOKED, &v)?)),
            None => Ok(None),
        }
    }

    /// Events with sequence numbers greater than `after`, in order, as of the snapshot.
    pub fn events_after(&self, after: u64) -> impl Iterator<Item = Result<Event, Error>> + '_ {
        let mut start = self.prefix.clone();
        start.extend_from_slice(&after.saturating_add(1).to_be_bytes());
        let mut ro = self.read_options(true);
        ro.set_iterate_upper_bound(keys::prefix_end(&self.prefix));
        self.store
            .db
            .iterator_cf_opt(
                self.store.cf(cf::EVENTS),
                ro,
                IteratorMode::From(&start, Direction::Forward),
            )
            .map(|item| {
                let (_, v) = item?;
                decode(cf::EVENTS, &v)
            })
    }
}

fn stripe(ca: &CaId, serial: &Serial) -> usize {
    // FNV-1a over the CA id and the serial: cheap, and spreads sequential serials. By id, not
    // by position: positions change when a reload adds or removes CAs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in ca
        .as_str()
        .as_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(serial.magnitude())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h as usize ^ (h >> 32) as usize) & (STRIPES - 1)
}

/// A transaction in progress: see [`Store::transact`].
pub struct Tx<'a> {
    store: &'a Store,
    now: UnixTime,
    staged: HashMap<(CaId, Serial), CertRecord>,
    seqs: HashMap<CaId, u64>,
    batch: WriteBatch,
    changed: Vec<(CaId, Serial)>,
    revocation_changed: HashMap<CaId, bool>,
    audited: bool,
    /// A store-wide `meta` value was staged ([`Tx::put_global_meta`]): write even without changes.
    meta_staged: bool,
    /// `meta` entries staged (key → value), written with the batch.
    meta: HashMap<Vec<u8>, Vec<u8>>,
    scope_changed: Vec<CaId>,
}

impl Tx<'_> {
    /// A CA's named `meta` entry as this transaction sees it (including what it staged).
    pub fn meta(&self, ca: &CaId, name: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(v) = self.meta.get(&keys::meta(ca, name)) {
            return Ok(Some(v.clone()));
        }
        self.store.meta(ca, name)
    }

    /// Stages a CA's named `meta` entry, written in the transaction's batch. Only written when
    /// the transaction also changes a certificate record.
    pub fn put_meta(&mut self, ca: &CaId, name: &str, value: Vec<u8>) {
        self.meta.insert(keys::meta(ca, name), value);
    }

    /// Says, in the commit notification, that the CA's CRL scope may have changed.
    pub fn mark_scope_changed(&mut self, ca: &CaId) {
        if !self.scope_changed.contains(ca) {
            self.scope_changed.push(ca.clone());
        }
    }

    /// The record as this transaction sees it (including what it staged).
    pub fn record(&self, ca: &CaId, serial: &Serial) -> Result<Option<CertRecord>, Error> {
        if let Some(r) = self.staged.get(&(ca.clone(), serial.clone())) {
            return Ok(Some(r.clone()));
        }
        self.store.cert(ca, serial)
    }

    /// Stages `record` as the new state of (ca, serial), logging `kind` as its event. Returns the
    /// event's sequence number, which becomes the record's version.
    pub fn put(
        &mut self,
        ca: &CaId,
        serial: &Serial,
        record: CertRecord,
        kind: EventKind,
    ) -> Result<u64, Error> {
        let seq = self
            .seqs
            .get_mut(ca)
            .ok_or_else(|| Error::UnknownCa(ca.to_string()))?;
        *seq += 1;
        let event = Event {
            seq: *seq,
            recorded_at: self.now,
            serial: serial.clone(),
            kind,
        };
        self.stage(ca, record, event)
    }

    /// Applies an event numbered and timed elsewhere (by the writer whose log a replica
    /// follows, [`crate::replicate`]): the record becomes what the event says, the event keeps
    /// its sequence number and time. An event at or below the CA's last sequence number is
    /// already applied: `Ok(false)`, nothing staged. One that skips a number is refused
    /// ([`Error::Gap`]): a replica never applies a log with holes.
    pub fn apply_event(&mut self, ca: &CaId, event: &Event) -> Result<bool, Error> {
        let last = *self
            .seqs
            .get(ca)
            .ok_or_else(|| Error::UnknownCa(ca.to_string()))?;
        if event.seq <= last {
            return Ok(false);
        }
        if event.seq != last + 1 {
            return Err(Error::Gap {
                ca: ca.to_string(),
                last,
                got: event.seq,
            });
        }
        let mut record = self.record(ca, &event.serial)?.unwrap_or(CertRecord {
            issuance: None,
            revocation: None,
            version: 0,
        });
        match &event.kind {
            EventKind::Issued(i) => record.issuance = Some(i.clone()),
            EventKind::Revoked(r) => record.revocation = Some(r.clone()),
            EventKind::Released { .. } => record.revocation = None,
        }
        self.seqs.insert(ca.clone(), event.seq);
        self.stage(ca, record, event.clone())?;
        Ok(true)
    }

    /// Stages a store-wide `meta` value (e.g. a replica's stream position), written in the same
    /// batch as the rest of the transaction.
    pub fn put_global_meta(&mut self, name: &str, value: &[u8]) {
        self.batch
            .put_cf(self.store.cf(cf::META), keys::global_meta(name), value);
        self.meta_staged = true;
    }

    fn stage(&mut self, ca: &CaId, mut record: CertRecord, event: Event) -> Result<u64, Error> {
        let seq = event.seq;
        let serial = event.serial.clone();
        record.version = seq;
        let key = keys::cert(ca, &serial);
        let store = self.store;
        let previous = self.record(ca, &serial)?;
        // Its stored answers go with the change (see the module documentation). A serial
        // without a record has none: answers are stored only for records.
        if previous.is_some() {
            for variant in 0..keys::OCSP_VARIANTS {
                self.batch
                    .delete_cf(store.cf(cf::OCSP), keys::ocsp(ca, &serial, variant));
            }
        }
        let before = previous.and_then(|r| r.revocation);
        if before != record.revocation {
            self.revocation_changed.insert(ca.clone(), true);
        }
        self.batch
            .put_cf(store.cf(cf::CERTS), &key, encode(&record));
        match &record.revocation {
            Some(revocation) => {
                let entry = RevokedEntry {
                    revocation: revocation.clone(),
                    not_after: record.issuance.as_ref().map(|i| i.not_after),
                };
                self.batch
                    .put_cf(store.cf(cf::REVOKED), &key, encode(&entry));
            }
            None => self.batch.delete_cf(store.cf(cf::REVOKED), &key),
        }
        self.batch
            .put_cf(store.cf(cf::EVENTS), keys::event(ca, seq), encode(&event));
        self.changed.push((ca.clone(), serial.clone()));
        self.staged.insert((ca.clone(), serial), record);
        Ok(seq)
    }

    /// The time the transaction runs at.
    pub fn now(&self) -> UnixTime {
        self.now
    }

    /// Stages an audit record (at the transaction's time) in the same batch as the changes:
    /// the record exists if and only if they do. A transaction with only an audit record (a
    /// replay) is written and synced too.
    pub fn audit(&mut self, record: &[u8]) {
        let key = self.store.next_audit_key(self.now);
        self.batch.put_cf(self.store.cf(cf::AUDIT), key, record);
        self.audited = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Issuance, RevocationReason};

    /// A store at `path` for the one CA `ca`, with the default options.
    fn open_one(path: &Path, ca: &CaId) -> Store {
        Store::open(path, std::slice::from_ref(ca), &StoreOptions::default()).expect("opens")
    }

    fn issuance() -> Issuance {
        Issuance {
            not_before: UnixTime(0),
            not_after: UnixTime(1000),
            subject: None,
            profile: None,
        }
    }

    #[test]
    fn transactions_persist_records_events_and_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let s = Serial::from_hex("0102").expect("valid");
        {
            let store = Store::open(
                dir.path(),
                std::slice::from_ref(&ca),
                &StoreOptions::default(),
            )
            .expect("opens");
            let g0 = store.change_generation(&ca, &s);
            store
                .transact(
                    std::slice::from_ref(&ca),
                    UnixTime(10),
                    |tx| -> Result<(), Error> {
                        let rec = CertRecord {
                            issuance: Some(issuance()),
                            revocation: None,
                            version: 0,
                        };
                        tx.put(&ca, &s, rec, EventKind::Issued(issuance()))?;
                        let mut rec = tx.record(&ca, &s)?.expect("staged");
                        let rev = Revocation {
                            revoked_at: UnixTime(20),
                            reason: Some(RevocationReason::KeyCompromise),
                            invalidity_date: None,
                        };
                        rec.revocation = Some(rev.clone());
                        tx.put(&ca, &s, rec, EventKind::Revoked(rev))?;
                        Ok(())
                    },
                )
                .expect("commits");
            assert_ne!(store.change_generation(&ca, &s), g0);
        }
        let store = Store::open(
            dir.path(),
            std::slice::from_ref(&ca),
            &StoreOptions::default(),
        )
        .expect("reopens");
        let rec = store.cert(&ca, &s).expect("reads").expect("present");
        assert_eq!(rec.version, 2);
        assert!(rec.revocation.is_some());
        assert_eq!(store.last_seq(&ca).expect("known"), 2);
        let events: Vec<Event> = store
            .events_after(&ca, 0)
            .collect::<Result<_, _>>()
            .expect("reads");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(store.events_after(&ca, 1).count(), 1);
        let revoked: Vec<_> = store.revoked(&ca).collect::<Result<_, _>>().expect("reads");
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].1.not_after, Some(UnixTime(1000)));
    }

    #[test]
    fn a_failed_transaction_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let s = Serial::from_hex("01").expect("valid");
        let store = open_one(dir.path(), &ca);
        let r: Result<(), Error> = store.transact(std::slice::from_ref(&ca), UnixTime(1), |tx| {
            let rec = CertRecord {
                issuance: Some(issuance()),
                revocation: None,
                version: 0,
            };
            tx.put(&ca, &s, rec, EventKind::Issued(issuance()))?;
            Err(Error::UnknownCa("abort".into()))
        });
        assert!(r.is_err());
        assert_eq!(store.cert(&ca, &s).expect("reads"), None);
        assert_eq!(store.last_seq(&ca).expect("known"), 0);
    }

    #[test]
    fn concurrent_transactions_share_syncs_and_keep_sequences_dense() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let store = open_one(dir.path(), &ca);
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let store = &store;
                let ca = &ca;
                scope.spawn(move || {
                    for i in 0..50u8 {
                        let s = Serial::from_magnitude(&[t + 1, i]).expect("valid");
                        store
                            .transact(
                                std::slice::from_ref(ca),
                                UnixTime(1),
                                |tx| -> Result<(), Error> {
                                    let rec = CertRecord {
                                        issuance: Some(issuance()),
                                        revocation: None,
                                        version: 0,
                                    };
                                    tx.put(ca, &s, rec, EventKind::Issued(issuance()))?;
                                    Ok(())
                                },
                            )
                            .expect("commits");
                    }
                });
            }
        });
        let seqs: Vec<u64> = store
            .events_after(&ca, 0)
            .map(|e| e.expect("reads").seq)
            .collect();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    }

    /// A stored answer follows its record: the change deletes every variant in its batch, and
    /// an answer signed from the record before the change is refused afterwards.
    #[test]
    fn stored_answers_follow_their_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let s = Serial::from_hex("0102").expect("valid");
        let store = open_one(dir.path(), &ca);
        let put = |tx: &mut Tx<'_>, revocation: Option<Revocation>| -> Result<u64, Error> {
            let rec = CertRecord {
                issuance: Some(issuance()),
                revocation: revocation.clone(),
                version: 0,
            };
            let kind = match revocation {
                Some(r) => EventKind::Revoked(r),
                None => EventKind::Issued(issuance()),
            };
            tx.put(&ca, &s, rec, kind)
        };
        let v1 = store
            .transact(std::slice::from_ref(&ca), UnixTime(1), |tx| put(tx, None))
            .expect("commits");
        let answer = |version| StoredResponse {
            version,
            produced_at: UnixTime(10),
            this_update: UnixTime(9),
            next_update: UnixTime(20),
            der: vec![0x30, 0],
            maker: Some(Maker::new(&[1; 20], [2; 16], store.incarnation())),
            status: Some(StoredStatus::Good),
        };
        for variant in 0..keys::OCSP_VARIANTS {
            assert!(
                store
                    .put_ocsp_response(&ca, &s, variant, &answer(v1))
                    .expect("put")
            );
        }
        assert!(
            !store
                .put_ocsp_response(&ca, &s, 0, &answer(v1 + 1))
                .expect("checked"),
            "not the record's version"
        );
        let revocation = Revocation {
            revoked_at: UnixTime(2),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        };
        let v2 = store
            .transact(std::slice::from_ref(&ca), UnixTime(2), |tx| {
                put(tx, Some(revocation))
            })
            .expect("commits");
        for variant in 0..keys::OCSP_VARIANTS {
            assert_eq!(
                store.ocsp_response(&ca, &s, variant).expect("reads"),
                None,
                "variant {variant} went with the change"
            );
        }
        // Signed from the first record, stored after the revocation: refused.
        assert!(
            !store
                .put_ocsp_response(&ca, &s, 0, &answer(v1))
                .expect("checked")
        );
        assert_eq!(store.ocsp_response(&ca, &s, 0).expect("reads"), None);
        let revoked = StoredResponse {
            status: Some(StoredStatus::Revoked),
            ..answer(v2)
        };
        assert!(store.put_ocsp_response(&ca, &s, 0, &revoked).expect("put"));
        assert_eq!(
            store.ocsp_response(&ca, &s, 0).expect("reads"),
            Some(revoked)
        );
    }

    /// A store of schema 1 opens and is marked schema 2; a schema from the future is refused.
    #[test]
    fn schema_one_is_carried_forward_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaId::new("ca").expect("valid");
        let schema = |store: &Store| {
            let v = store
                .db
                .get_cf(store.cf(cf::META), keys::global_meta("schema"))
                .expect("reads")
                .expect("present");
            u64::from_be_bytes(v.as_slice().try_into().expect("8 octets"))
        };
        let set = |store: &Store, v: u64| {
            store
                .db
                .put_cf(
                    store.cf(cf::META),
                    keys::global_meta("schema"),
                    v.to_be_bytes(),
                )
                .expect("writes")
        };
        let open = || {
            Store::open(
                dir.path(),
                std::slice::from_ref(&ca),
                &StoreOptions::default(),
            )
        };
        {
            let store = open().expect("opens");
            assert_eq!(schema(&store), SCHEMA_VERSION);
            set(&store, 1);
        }
        {
            let store = open().expect("a schema 1 store opens");
            assert_eq!(schema(&store), 2);
            set(&store, SCHEMA_VERSION + 1);
        }
        assert!(matches!(open(), Err(Error::Schema { found }) if found == SCHEMA_VERSION + 1));
    }
}
