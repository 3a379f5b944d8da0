//! The OCSP responder (RFC 6960, with the RFC 9919 lightweight profile).
//!
//! [`Responder::answer`] takes the DER of a request and returns an [`Answer`]: a signed
//! response, or an error status. It knows nothing of HTTP ([`crate::http`] adds the headers).
//!
//! Single-CertID requests without a nonce — what caches and most clients send — are served from a
//! bounded in-memory cache of signed responses, backed by the store's `ocsp` column family. An
//! entry is served only while (a) the store's change generation for its serial has not moved
//! since the record it was signed from was read, and (b) now is before its nextUpdate. So a
//! revocation is visible to the very next request, without any lock on the read path. An entry
//! past half its validity is re-signed in the background while it is still served (CA/B BR
//! §4.9.10), and [`Responder::refresh_stored`] does the same for everything in the store.
//!
//! Requests with a nonce (when the CA echoes nonces) or several CertIDs are signed afresh.
//! Signing runs on a bounded [`pool::SigningPool`]; when it is saturated the answer is `tryLater`.
//!
//! A serial nobody registered is a stranger: its answer lives in the memory cache only, never in
//! the store, and is never re-signed in the background (a flood of made-up serials must cost
//! neither disk nor background work). Signatures that only an anonymous request asks for (a
//! nonce, a stranger, several CertIDs) are rationed per client network and against a share of
//! the pool ([`ration`]); beyond the ration, a request with a nonce gets the shared answer
//! without it (RFC 9654 §2.1 lets a responder ignore a nonce) when there is one, else
//! `tryLater`.
//! With [`presign`] (the default), every registered certificate's answer is signed into the
//! store in the background before it is asked for, so that a first request is a store read too;
//! the pool's lanes put status changes first, requests second and pre-signing last.

pub mod der_types;
pub mod pool;
pub mod presign;
pub mod ration;
pub mod request;
pub mod response;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;

use bytes::Bytes;
use der::{Decode, Encode};
use x509_ocsp::OcspResponseStatus;

use self::der_types::CertIdDer;
use self::pool::SigningPool;
use self::ration::Ration;
use self::response::{SingleStatus, Times};
use crate::clock::SharedClock;
use crate::config::OcspConfig;
use crate::metrics as m;
use crate::model::{
    CaId, CertRecord, CertStatus, NoncePolicy, RevocationReason, Serial, UnixTime,
    UnknownSerialPolicy,
};
use crate::pki::{Ca, CaRegistry, OcspSigner};
use crate::store::{Maker, Store, StoredResponse, StoredStatus};

/// Why a request got no signed answer. Each variant is one OCSP error status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request does not decode, or breaks a rule (nonce length, unsupported hash) →
    /// `malformedRequest`.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A CertID names an issuer this responder does not serve → `unauthorized` (RFC 9919 §4).
    #[error("issuer not served")]
    Unauthorized,
    /// The signing pool is saturated → `tryLater`.
    #[error("signing pool saturated")]
    TryLater,
    /// Anything else → `internalError`.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The OCSPResponseStatus this error is answered with.
    pub fn status(&self) -> OcspResponseStatus {
        match self {
            Error::Malformed(_) => OcspResponseStatus::MalformedRequest,
            Error::Unauthorized => OcspResponseStatus::Unauthorized,
            Error::TryLater => OcspResponseStatus::TryLater,
            Error::Internal(_) => OcspResponseStatus::InternalError,
        }
    }
}

/// A key whose token cannot sign now → `tryLater` (and cached answers keep being served);
/// any other signing failure → `internalError`.
fn signing_error(e: crate::signer::Error) -> Error {
    match e {
        crate::signer::Error::Unavailable(reason) => {
            tracing::warn!(%reason, "OCSP signature unavailable: answering tryLater");
            Error::TryLater
        }
        other => Error::Internal(other.to_string()),
    }
}

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// The label of an error status, for metrics.
pub fn status_label(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}

/// A signed response with what HTTP needs to describe it.
#[derive(Debug)]
pub struct SignedResponse {
    /// The DER OCSPResponse.
    pub der: Bytes,
    /// Its times.
    pub times: Times,
    /// good, revoked, unknown (or mixed, for several CertIDs).
    pub status: &'static str,
    /// Whether HTTP caches may keep it (RFC 9919 §5: never "unknown" answers).
    pub http_cacheable: bool,
    /// Made when a GET first needs them ([`SignedResponse::validators`]).
    validators: OnceLock<Validators>,
}

/// The HTTP validators of a cacheable response (RFC 9110 §8.8).
#[derive(Debug)]
pub struct Validators {
    /// Strong entity tag: a hash of the bytes, quoted.
    pub etag: String,
    /// thisUpdate as an HTTP-date (Last-Modified).
    pub last_modified: String,
    /// nextUpdate as an HTTP-date (Expires).
    pub expires: String,
}

/// Lengths of the three validators: a quoted 32-digit hash and two IMF-fixdate dates.
const VALIDATOR_LENGTHS: [usize; 3] = [34, 29, 29];

impl SignedResponse {
    /// A response made for one request only (nonce, several CertIDs): never cached.
    fn unique(der: Vec<u8>, times: Times, status: &'static str) -> SignedResponse {
        SignedResponse {
            der: Bytes::from(der),
            times,
            status,
            http_cacheable: false,
            validators: OnceLock::new(),
        }
    }

    /// A response that HTTP caches may keep, unless its status is "unknown".
    fn new(der: Vec<u8>, times: Times, status: &'static str) -> SignedResponse {
        SignedResponse {
            der: Bytes::from(der),
            times,
            status,
            http_cacheable: status != "unknown",
            validators: OnceLock::new(),
        }
    }

    /// Its ETag, Last-Modified and Expires, made on first use: an answer read from the store
    /// and sent over POST (no validators there) costs no hash of its bytes and no date
    /// formatting.
    pub fn validators(&self) -> &Validators {
        self.validators.get_or_init(|| {
            let digest = hex::encode(&crate::pki::sha256(&self.der)[..16]);
            Validators {
                etag: format!("\"{digest}\""),
                last_modified: httpdate::fmt_http_date(self.times.this_update.to_system_time()),
                expires: httpdate::fmt_http_date(self.times.next_update.to_system_time()),
            }
        })
    }
}

/// A cached single response.
#[derive(Debug)]
pub struct CachedResponse {
    /// The response.
    pub response: SignedResponse,
    /// When to start re-signing it (half-way to nextUpdate from its signing).
    refresh_at: UnixTime,
    /// Store change generation when its record was read.
    generation: u64,
    /// Who made it ([`Ca::maker_at`]): served only while that is still who makes this CA's
    /// answers (same signer, same policy).
    maker: u64,
    /// The CA (registry index when made, and id) and serial it answers for, to check the
    /// generation and the maker again.
    ca_index: usize,
    ca_id: CaId,
    serial: Option<Serial>,
    /// The CertID it answers, DER, for re-signing in the background.
    cert_id_der: Box<[u8]>,
    /// Set while a background re-signing is under way.
    refreshing: AtomicBool,
    /// Whether its serial is registered: a stranger's answer is never re-signed in the
    /// background, nor stored.
    registered: bool,
}

impl CachedResponse {
    /// The CA and the serial it answers for (`None`: a serial that cannot be one, answered
    /// "unknown").
    pub fn certificate(&self) -> (&CaId, Option<&Serial>) {
        (&self.ca_id, self.serial.as_ref())
    }

    /// An entry for `der`, signed at `times`, made from a record read at store `generation`.
    // Every argument is a distinct fact about the entry; a struct for one private constructor
    // would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn new(
        der: Vec<u8>,
        times: Times,
        status: &'static str,
        generation: u64,
        (ca, signer): (&Ca, &OcspSigner),
        serial: Option<&Serial>,
        cert_id_der: &[u8],
        registered: bool,
    ) -> Arc<CachedResponse> {
        Arc::new(CachedResponse {
            response: SignedResponse::new(der, times, status),
            refresh_at: half_way(times.produced_at, times.next_update),
            generation,
            maker: signer.maker,
            ca_index: ca.index,
            ca_id: ca.id.clone(),
            serial: serial.cloned(),
            cert_id_der: cert_id_der.into(),
            refreshing: AtomicBool::new(false),
            registered,
        })
    }
}

/// What the responder answers.
#[derive(Debug)]
pub enum Answer {
    /// A cacheable single response.
    Cached(Arc<CachedResponse>),
    /// A response made for this request only (nonce, several CertIDs).
    Unique(SignedResponse),
    /// An error status.
    Error(OcspResponseStatus),
}

impl Answer {
    /// The signed response, if any.
    pub fn signed(&self) -> Option<&SignedResponse> {
        match self {
            Answer::Cached(c) => Some(&c.response),
            Answer::Unique(r) => Some(r),
            Answer::Error(_) => None,
        }
    }

    /// The DER bytes to send.
    pub fn der(&self) -> Bytes {
        match self {
            Answer::Cached(c) => c.response.der.clone(),
            Answer::Unique(r) => r.der.clone(),
            Answer::Error(s) => Bytes::from_static(response::error_response(*s)),
        }
    }

    /// Label for metrics: the certificate status, or the error status.
    pub fn label(&self) -> &'static str {
        match self {
            Answer::Error(s) => status_label(*s),
            other => other.signed().map_or("internalError", |r| r.status),
        }
    }
}

#[derive(Clone)]
struct FrontWeighter;

impl quick_cache::Weighter<Box<[u8]>, Arc<CachedResponse>> for FrontWeighter {
    fn weight(&self, key: &Box<[u8]>, _: &Arc<CachedResponse>) -> u64 {
        // The entry itself is shared with the main cache: the key, its allocation, the slot.
        (key.len() + ALLOCATION + SLOT) as u64
    }
}

/// What the allocator adds to each heap allocation (glibc: a 16-octet header, sizes rounded to
/// 16), counted per allocation so that `cache_mb` bounds memory, not only payload.
const ALLOCATION: usize = 24;
/// A cache slot: the key and value handles, the hash, the eviction state.
const SLOT: usize = 64;

/// The memory an answer cache entry holds: its struct and Arc header, every heap allocation it
/// owns (key, DER, CertID, serial, CA id, the three HTTP validators, counted whether made yet
/// or not) with the allocator's share, and the cache's slot. Counting the DER, the CertID and a
/// flat 256 octets instead let the 64 MiB default hold about 100 MiB (RSS measured during a
/// pre-signing pass of 10⁶).
fn footprint(key: &[u8], value: &CachedResponse) -> usize {
    let r = &value.response;
    let heap = [
        key.len(),
        r.der.len(),
        value.cert_id_der.len(),
        value.serial.as_ref().map_or(0, |s| s.magnitude().len()),
        value.ca_id.as_str().len(),
        VALIDATOR_LENGTHS[0],
        VALIDATOR_LENGTHS[1],
        VALIDATOR_LENGTHS[2],
    ];
    std::mem::size_of::<CachedResponse>()
        + 2 * std::mem::size_of::<usize>()
        + SLOT
        + heap.iter().map(|n| n + ALLOCATION).sum::<usize>()
        + ALLOCATION
}

/// Metric handles resolved once: the hot path increments them without a registry lookup.
struct Counters {
    /// By [`Counters::STATUSES`] × (GET, POST).
    responses: Vec<metrics::Counter>,
    hit: metrics::Counter,
    store: metrics::Counter,
    miss: metrics::Counter,
}

impl Counters {
    const STATUSES: [&'static str; 9] = [
        "good",
        "revoked",
        "unknown",
        "mixed",
        "malformedRequest",
        "internalError",
        "tryLater",
        "sigRequired",
        "unauthorized",
    ];

    fn new() -> Counters {
        let mut responses = Vec::with_capacity(Self::STATUSES.len() * 2);
        for status in Self::STATUSES {
            for method in ["GET", "POST"] {
                responses.push(
                    metrics::counter!(m::OCSP_RESPONSES, "status" => status, "method" => method),
                );
            }
        }
        Counters {
            responses,
            hit: metrics::counter!(m::OCSP_CACHE, "result" => "hit"),
            store: metrics::counter!(m::OCSP_CACHE, "result" => "store"),
            miss: metrics::counter!(m::OCSP_CACHE, "result" => "miss"),
        }
    }

    fn response(&self, status: &'static str, method: &'static str) {
        let i = Self::STATUSES.iter().position(|s| *s == status);
        match (i, method) {
            (Some(i), "GET") => self.responses[2 * i].increment(1),
            (Some(i), "POST") => self.responses[2 * i + 1].increment(1),
            _ => metrics::counter!(m::OCSP_RESPONSES, "status" => status, "method" => method)
                .increment(1),
        }
    }
}

#[derive(Clone)]
struct Weighter;

impl quick_cache::Weighter<Box<[u8]>, Arc<CachedResponse>> for Weighter {
    fn weight(&self, key: &Box<[u8]>, value: &Arc<CachedResponse>) -> u64 {
        footprint(key, value) as u64
    }
}

/// The responder.
pub struct Responder {
    /// Swapped whole by a reload ([`Responder::set_registry`]): a request in flight finishes
    /// with the registry it started with.
    registry: ArcSwap<CaRegistry>,
    store: Arc<Store>,
    clock: SharedClock,
    cache: quick_cache::sync::Cache<Box<[u8]>, Arc<CachedResponse>, Weighter>,
    /// The same entries, keyed by the request exactly as it arrived (a GET path or a POST body):
    /// a repeated request is answered without decoding base64 or DER.
    front: quick_cache::sync::Cache<Box<[u8]>, Arc<CachedResponse>, FrontWeighter>,
    counters: Counters,
    pool: SigningPool,
    ration: Ration,
    backdate: i64,
    /// The CAs pre-signing keeps the stored responses of fresh: the refresher leaves them
    /// alone ([`presign`]).
    presigned: Mutex<Vec<CaId>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("cas", &self.registry.load().len())
            .finish_non_exhaustive()
    }
}

/// Counts from one pass of [`Responder::refresh_stored`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshStats {
    /// Responses looked at.
    pub seen: u64,
    /// Responses re-signed.
    pub resigned: u64,
    /// Stale responses (status changed since) dropped.
    pub dropped: u64,
    /// Entries that could not be refreshed (logged and counted; the pass went on).
    pub errors: u64,
}

/// What [`Responder::refresh_stored`] did with one entry.
enum Refreshed {
    Resigned,
    Dropped,
}

fn cache_key(ca_index: usize, variant: u8, serial_content: &[u8]) -> Box<[u8]> {
    let mut k = Vec::with_capacity(3 + serial_content.len());
    k.extend_from_slice(&(ca_index as u16).to_be_bytes());
    k.push(variant);
    k.extend_from_slice(serial_content);
    k.into_boxed_slice()
}

impl Responder {
    /// A responder over `store` for the CAs of `registry`.
    pub fn new(
        registry: Arc<CaRegistry>,
        store: Arc<Store>,
        clock: SharedClock,
        config: &OcspConfig,
    ) -> Responder {
        let items = (config.cache_bytes / 2048).max(64) as usize;
        Responder {
            store,
            clock,
            cache: quick_cache::sync::Cache::with_weighter(
                items,
                config.cache_bytes.max(1 << 20),
                Weighter,
            ),
            front: quick_cache::sync::Cache::with_weighter(
                items,
                (config.cache_bytes / 8).max(1 << 18),
                FrontWeighter,
            ),
            counters: Counters::new(),
            pool: SigningPool::with_share(
                config.signing_threads,
                config.signing_queue,
                config.presign_share,
            ),
            ration: Ration::new(
                config.sign_rate_per_client,
                config.sign_burst_per_client,
                config.anonymous_sign_share,
                config.signing_threads.max(1) + config.signing_queue.max(1),
            ),
            backdate: config.this_update_backdate,
            presigned: Mutex::new(Vec::new()),
            registry: ArcSwap::new(registry),
        }
    }

    /// Serves `registry` from now on (a reload); requests in flight finish with the previous
    /// one. Cached answers of CAs whose signer or policy changed become misses by their maker.
    pub fn set_registry(&self, registry: Arc<CaRegistry>) {
        self.registry.store(registry);
    }

    /// The maker of answers signed now for `ca` by `signer`, as stored ([`crate::store::maker`]).
    pub fn maker(&self, ca: &Ca, signer: &OcspSigner) -> Maker {
        Maker::new(&signer.key_hash, ca.policy_digest, self.store.incarnation())
    }

    fn presigned(&self) -> MutexGuard<'_, Vec<CaId>> {
        self.presigned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers a DER OCSPRequest. `method` labels metrics.
    pub async fn answer(self: &Arc<Self>, request: &[u8], method: &'static str) -> Answer {
        self.answer_keyed(request, None, method).await
    }

    /// The answer to a request seen before, looked up by its bytes as they arrived (`raw`: a GET
    /// path or a POST body, prefixed by the caller so the two never mix), without decoding it —
    /// if it is still fresh: same store generation for its serial, and not yet due for
    /// re-signing (then the full path takes over and refreshes it).
    pub fn answer_seen(&self, raw: &[u8], method: &'static str) -> Option<Arc<CachedResponse>> {
        let hit = self.front.get(raw)?;
        let generation = hit
            .serial
            .as_ref()
            .map_or(0, |s| self.store.change_generation(&hit.ca_id, s));
        let now = self.clock.now();
        if hit.generation != generation || now >= hit.refresh_at || from_the_future(&hit, now) {
            return None;
        }
        // Still made by whom this CA's answers are made by now (a reload, a rollover).
        let registry = self.registry.load();
        let ca = registry.get(hit.ca_index)?;
        if ca.id != hit.ca_id || ca.maker_at(now) != hit.maker {
            return None;
        }
        self.counters.hit.increment(1);
        self.counters.response(hit.response.status, method);
        Some(hit)
    }

    /// [`Responder::answer`], remembering a cacheable single answer under `raw` (see
    /// [`Responder::answer_seen`]). Requests with a nonce are never remembered.
    pub async fn answer_keyed(
        self: &Arc<Self>,
        request: &[u8],
        raw: Option<&[u8]>,
        method: &'static str,
    ) -> Answer {
        self.answer_for(request, raw, method, None).await
    }

    /// [`Responder::answer_keyed`] for a client at `client` (the peer address of its
    /// connection, never a header): the signatures only its request asks for are rationed per
    /// client network ([`ration`]). `None` is limited by the global share only.
    pub async fn answer_for(
        self: &Arc<Self>,
        request: &[u8],
        raw: Option<&[u8]>,
        method: &'static str,
        client: Option<IpAddr>,
    ) -> Answer {
        let answer = match self.try_answer(request, raw, client).await {
            Ok(a) => a,
            Err(e) => {
                match &e {
                    Error::Internal(why) => tracing::error!(error = %why, "OCSP internal error"),
                    Error::Malformed(why) => {
                        tracing::debug!(error = %why, "malformed OCSP request")
                    }
                    _ => {}
                }
                Answer::Error(e.status())
            }
        };
        self.counters.response(answer.label(), method);
        answer
    }

    async fn try_answer(
        self: &Arc<Self>,
        request: &[u8],
        raw: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<Answer, Error> {
        let req = request::parse(request)?;
        let registry = self.registry.load();
        let mut ca: Option<&Arc<Ca>> = None;
        for q in &req.queries {
            let found = registry
                .find(
                    q.alg,
                    q.cert_id.issuer_name_hash.as_bytes(),
                    q.cert_id.issuer_key_hash.as_bytes(),
                )
                .ok_or(Error::Unauthorized)?;
            // One response has one signer: CertIDs of different CAs cannot share it.
            if ca.is_some_and(|c| c.index != found.index) {
                return Err(Error::Unauthorized);
            }
            ca = Some(found);
        }
        let ca = Arc::clone(ca.ok_or_else(|| Error::Malformed("no CertID".into()))?);
        drop(registry);
        // A CA whose signer has expired since it was loaded is down, like one that did not load.
        if ca.signer_at(self.clock.now()).not_after <= self.clock.now() {
            return Err(Error::Unauthorized);
        }
        let nonce = match ca.nonce {
            NoncePolicy::Echo => req.nonce,
            NoncePolicy::Ignore => None,
        };
        if let ([q], None) = (req.queries.as_slice(), nonce) {
            let entry = self.single(&ca, q, client).await?;
            // Only a request without a nonce is a key worth keeping: with one, every request
            // differs (a CA that ignores nonces would otherwise fill this cache with them).
            if let (Some(raw), None) = (raw, req.nonce) {
                self.front.insert(raw.into(), Arc::clone(&entry));
            }
            return Ok(Answer::Cached(entry));
        }
        // A signature for this request alone (nonce, several CertIDs): rationed.
        let refused = match self.ration.try_acquire(client, Instant::now()) {
            Ok(_permit) => {
                return self
                    .unique(&ca, &req.queries, nonce)
                    .await
                    .map(Answer::Unique);
            }
            Err(refused) => refused,
        };
        // RFC 9654 §2.1: the responder may ignore the nonce. The shared answer for the one
        // CertID serves, if it exists or needs no rationed signature (a registered serial).
        if let ([q], Some(_)) = (req.queries.as_slice(), nonce) {
            match self.single(&ca, q, client).await {
                Ok(entry) if entry.response.http_cacheable => {
                    rationed(refused, "without_nonce");
                    return Ok(Answer::Cached(entry));
                }
                Ok(_) => {}
                // Counted where it was refused (a stranger's ration, or the pool).
                Err(e) => return Err(e),
            }
        }
        rationed(refused, "try_later");
        Err(Error::TryLater)
    }

    fn generation(&self, ca: &Ca, serial: Option<&Serial>) -> u64 {
        serial.map_or(0, |s| self.store.change_generation(&ca.id, s))
    }

    async fn single(
        self: &Arc<Self>,
        ca: &Arc<Ca>,
        q: &request::Query<'_>,
        client: Option<IpAddr>,
    ) -> Result<Arc<CachedResponse>, Error> {
        let key = cache_key(ca.index, q.variant, q.serial_content());
        let serial = Serial::from_der_content(q.serial_content());
        let now = self.clock.now();
        if let Some(hit) = self.cache.get(&key)
            && hit.generation == self.generation(ca, serial.as_ref())
            && hit.maker == ca.maker_at(now)
            && hit.ca_id == ca.id
            && now < hit.response.times.next_update
            && !from_the_future(&hit, now)
            // A stranger's answer past half its validity is signed again on demand (rationed),
            // not in the background.
            && (hit.registered || now < hit.refresh_at)
        {
            if now >= hit.refresh_at && !hit.refreshing.swap(true, Ordering::AcqRel) {
                self.refresh_in_background(Arc::clone(ca), q.variant, key, Arc::clone(&hit));
            }
            self.counters.hit.increment(1);
            return Ok(hit);
        }
        let cert_id_der = q
            .cert_id
            .to_der()
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.fill(
            ca,
            &cert_id_der,
            q.variant,
            serial.as_ref(),
            key,
            Some(client),
        )
        .await
    }

    /// Serves the stored response if it is current, or signs one. A stored response that
    /// carries its status is current by the store's rule (it follows its record: see
    /// [`crate::store`]) and is served without reading the record; any other needs the record.
    /// `asked_by` is `Some(client address)` for a request (the stored response may serve; a
    /// stranger's signature is rationed for that client), `None` for a background re-signing.
    async fn fill(
        self: &Arc<Self>,
        ca: &Arc<Ca>,
        cert_id_der: &[u8],
        variant: u8,
        serial: Option<&Serial>,
        key: Box<[u8]>,
        asked_by: Option<Option<IpAddr>>,
    ) -> Result<Arc<CachedResponse>, Error> {
        let use_stored = asked_by.is_some();
        let now = self.clock.now();
        // Generation first, store second: a change committed in between moves the generation,
        // and the entry made here is then never served again.
        let generation = self.generation(ca, serial);
        let signer = Arc::clone(ca.signer_at(now));
        let maker = self.maker(ca, &signer);
        let stored = match (serial, use_stored) {
            (Some(s), true) => self
                .store
                .ocsp_response(&ca.id, s, variant)?
                .filter(|stored| {
                    maker.is(stored.maker)
                        && now < half_way(stored.produced_at, stored.next_update)
                        // Signed before the clock was set back: its thisUpdate would be in
                        // the future.
                        && stored.this_update <= now
                        && stored.produced_at <= now
                }),
            _ => None,
        };
        // A status carried by the answer (schema 2) is current: no record to read.
        let carried = stored
            .as_ref()
            .and_then(|s| s.status)
            .map(StoredStatus::label);
        let record = match (serial, carried) {
            (Some(s), None) => self.store.cert(&ca.id, s)?,
            _ => None,
        };
        let version = record.as_ref().map_or(0, |r| r.version);
        let registered = record.is_some();
        // An answer stored before schema 2: current if its record has not changed since.
        let label = carried.or_else(|| {
            stored
                .as_ref()
                .filter(|s| registered && s.version == version)
                .map(|_| status_of(ca, record.as_ref()).0.label())
        });
        if let (Some(stored), Some(label)) = (stored, label) {
            self.counters.store.increment(1);
            let times = Times {
                produced_at: stored.produced_at,
                this_update: stored.this_update,
                next_update: stored.next_update,
            };
            let entry = CachedResponse::new(
                stored.der,
                times,
                label,
                generation,
                (ca, &signer),
                serial,
                cert_id_der,
                true,
            );
            self.cache.insert(key, Arc::clone(&entry));
            return Ok(entry);
        }
        self.counters.miss.increment(1);
        // A stranger's signature serves whoever made the serial up: rationed.
        let _permit = match registered {
            true => None,
            false => match self.ration.try_acquire(asked_by.flatten(), Instant::now()) {
                Ok(p) => Some(p),
                Err(refused) => {
                    rationed(refused, "try_later");
                    return Err(Error::TryLater);
                }
            },
        };
        let (status, extended_revoke) = status_of(ca, record.as_ref());
        let cert_id =
            CertIdDer::from_der(cert_id_der).map_err(|e| Error::Internal(e.to_string()))?;
        let label = status.label();
        let keep = stored_status(&status);
        let times = self.times(ca, &signer, now)?;
        let tbs = response::tbs_response_data(
            &signer,
            &[(cert_id, status)],
            times,
            None,
            extended_revoke,
        )?;
        let der = self.sign(&signer, tbs).await?;
        // Strangers' and "unknown" answers stay in memory only: a flood of made-up serials must
        // not fill the disk (nor the refresher's work).
        if let Some(s) = serial
            && registered
            && label != "unknown"
        {
            let stored = StoredResponse {
                version,
                produced_at: times.produced_at,
                this_update: times.this_update,
                next_update: times.next_update,
                der: der.clone(),
                maker: Some(maker),
                status: keep,
            };
            // A store that cannot write (a full disk) does not stop answering: the answer is
            // served and kept in memory; the store's health says why it was not stored. Nor is
            // one whose record changed while it was signed (its generation moved: this
            // request's answer, never served again).
            if let Err(e) = self.store.put_ocsp_response(&ca.id, s, variant, &stored) {
                tracing::debug!(ca = %ca.id, error = %e, "OCSP answer not stored");
            }
        }
        let entry = CachedResponse::new(
            der,
            times,
            label,
            generation,
            (ca, &signer),
            serial,
            cert_id_der,
            registered,
        );
        self.cache.insert(key, Arc::clone(&entry));
        Ok(entry)
    }

    fn refresh_in_background(
        self: &Arc<Self>,
        ca: Arc<Ca>,
        variant: u8,
        key: Box<[u8]>,
        old: Arc<CachedResponse>,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let serial = CertIdDer::from_der(&old.cert_id_der)
                .ok()
                .and_then(|c| Serial::from_der_content(c.serial_number.as_bytes()));
            if let Err(e) = this
                .fill(&ca, &old.cert_id_der, variant, serial.as_ref(), key, None)
                .await
            {
                tracing::debug!(error = %e, "background re-signing postponed");
            }
            old.refreshing.store(false, Ordering::Release);
        });
    }

    async fn unique(
        &self,
        ca: &Arc<Ca>,
        queries: &[request::Query<'_>],
        nonce: Option<&[u8]>,
    ) -> Result<SignedResponse, Error> {
        let now = self.clock.now();
        let mut answers = Vec::with_capacity(queries.len());
        let mut extended_revoke = false;
        for q in queries {
            let record = match Serial::from_der_content(q.serial_content()) {
                Some(s) => self.store.cert(&ca.id, &s)?,
                None => None,
            };
            let (status, ext) = status_of(ca, record.as_ref());
            extended_revoke |= ext;
            answers.push((q.cert_id.clone(), status));
        }
        let label = match answers.first() {
            Some((_, first)) if answers.iter().all(|(_, s)| s.label() == first.label()) => {
                first.label()
            }
            _ => "mixed",
        };
        let signer = Arc::clone(ca.signer_at(now));
        let times = self.times(ca, &signer, now)?;
        let tbs = response::tbs_response_data(&signer, &answers, times, nonce, extended_revoke)?;
        let der = self.sign(&signer, tbs).await?;
        Ok(SignedResponse::unique(der, times, label))
    }

    /// A response for one CertID without nonce, signed on the calling thread (the refresher,
    /// pre-signing): its DER and its times.
    fn sign_single_now(
        &self,
        ca: &Ca,
        signer: &OcspSigner,
        cert_id: CertIdDer<'_>,
        status: SingleStatus,
        extended_revoke: bool,
        now: UnixTime,
    ) -> Result<(Vec<u8>, Times), Error> {
        let times = self.times(ca, signer, now)?;
        let tbs = response::tbs_response_data(
            signer,
            &[(cert_id, status)],
            times,
            None,
            extended_revoke,
        )?;
        let signature = sign_timed(signer, &tbs).map_err(signing_error)?;
        Ok((response::assemble(signer, &tbs, &signature)?, times))
    }

    fn times(&self, ca: &Ca, signer: &OcspSigner, now: UnixTime) -> Result<Times, Error> {
        let this_update = now.minus(self.backdate);
        // Never promise past the signer certificate's own end.
        let next_update = this_update.plus(ca.ocsp_validity).min(signer.not_after);
        if next_update <= now {
            return Err(Error::Internal(format!(
                "OCSP signer certificate of {} expires at {next_update}",
                ca.id
            )));
        }
        Times::new(now, this_update, next_update)
    }

    async fn sign(&self, signer: &Arc<OcspSigner>, tbs: Vec<u8>) -> Result<Vec<u8>, Error> {
        let signing = Arc::clone(signer);
        let rx = self
            .pool
            .try_run(move || sign_timed(&signing, &tbs).map(|s| (tbs, s)))
            .map_err(|_| Error::TryLater)?;
        let (tbs, signature) = rx
            .await
            .map_err(|_| Error::Internal("signing thread gone".into()))?
            .map_err(signing_error)?;
        response::assemble(signer, &tbs, &signature)
    }

    /// One pass over every stored response: re-signs those past half their validity (or whose
    /// nextUpdate is near), drops those whose status changed since. Runs on the caller's thread
    /// (the refresher's); signs directly, outside the request pool. CAs handed to [`presign`]
    /// are skipped: pre-signing keeps their stored responses fresh.
    ///
    /// One entry or one CA that fails (an undecodable stored value, a signer that refuses, a
    /// store that cannot write) is logged and counted in `vigie_refresh_errors_total{ca}`, and
    /// the pass goes on with the rest: [`RefreshStats::errors`].
    pub fn refresh_stored(&self) -> Result<RefreshStats, Error> {
        let mut stats = RefreshStats::default();
        let registry = self.registry();
        for ca in registry.iter() {
            if self.presigned().contains(&ca.id) {
                continue;
            }
            let failed = |stats: &mut RefreshStats,
                          serial: Option<&Serial>,
                          e: &dyn std::fmt::Display| {
                stats.errors += 1;
                metrics::counter!(m::REFRESH_ERRORS, "ca" => ca.id.to_string(), "task" => "ocsp")
                    .increment(1);
                tracing::error!(ca = %ca.id, serial = ?serial.map(Serial::to_hex), error = %e, "OCSP refresh of one stored answer failed; going on with the others");
            };
            let mut todo = Vec::new();
            let now = self.clock.now();
            let maker = self.maker(ca, ca.signer_at(now));
            for item in self.store.ocsp_responses(&ca.id) {
                match item {
                    Ok((serial, variant, stored)) => {
                        stats.seen += 1;
                        // Past half-way, or signed before the clock was set back.
                        // Due, signed before the clock was set back, or made by another
                        // signer or under another policy.
                        if now >= half_way(stored.produced_at, stored.next_update)
                            || stored.produced_at > now
                            || !maker.is(stored.maker)
                        {
                            todo.push((serial, variant, stored));
                        }
                    }
                    Err(e) => failed(&mut stats, None, &e),
                }
            }
            for (serial, variant, stored) in todo {
                match self.refresh_one(ca, &serial, variant, &stored) {
                    Ok(Refreshed::Resigned) => {
                        stats.resigned += 1;
                        metrics::counter!(m::OCSP_REFRESHED).increment(1);
                    }
                    Ok(Refreshed::Dropped) => stats.dropped += 1,
                    Err(e) => failed(&mut stats, Some(&serial), &e),
                }
            }
        }
        Ok(stats)
    }

    /// Re-signs one stored answer, or drops it when its status changed since.
    fn refresh_one(
        &self,
        ca: &Arc<Ca>,
        serial: &Serial,
        variant: u8,
        stored: &StoredResponse,
    ) -> Result<Refreshed, Error> {
        let generation = self.store.change_generation(&ca.id, serial);
        let record = self.store.cert(&ca.id, serial)?;
        // A stranger's answer (stored by an older version) is dropped, not re-signed.
        if record.is_none() || record.as_ref().map_or(0, |r| r.version) != stored.version {
            self.store.delete_ocsp_response(&ca.id, serial, variant)?;
            return Ok(Refreshed::Dropped);
        }
        let Some(cert_id_der) = cert_id_of(&stored.der) else {
            self.store.delete_ocsp_response(&ca.id, serial, variant)?;
            return Ok(Refreshed::Dropped);
        };
        let cert_id =
            CertIdDer::from_der(&cert_id_der).map_err(|e| Error::Internal(e.to_string()))?;
        let (status, extended_revoke) = status_of(ca, record.as_ref());
        let label = status.label();
        let keep = stored_status(&status);
        let now = self.clock.now();
        let signer = Arc::clone(ca.signer_at(now));
        let (der, times) =
            self.sign_single_now(ca, &signer, cert_id, status, extended_revoke, now)?;
        let fresh = StoredResponse {
            version: stored.version,
            produced_at: times.produced_at,
            this_update: times.this_update,
            next_update: times.next_update,
            der: der.clone(),
            maker: Some(self.maker(ca, &signer)),
            status: keep,
        };
        // The fresh answer serves from memory even if the store cannot keep it.
        let key = cache_key(ca.index, variant, &serial.der_content());
        if self.cache.get(&key).is_some() {
            self.cache.insert(
                key,
                CachedResponse::new(
                    der,
                    times,
                    label,
                    generation,
                    (ca, &signer),
                    Some(serial),
                    &cert_id_der,
                    true,
                ),
            );
        }
        // Refused when the record changed while it was signed: the change dropped the old one.
        match self
            .store
            .put_ocsp_response(&ca.id, serial, variant, &fresh)?
        {
            true => Ok(Refreshed::Resigned),
            false => Ok(Refreshed::Dropped),
        }
    }

    /// The registry served now.
    pub fn registry(&self) -> Arc<CaRegistry> {
        self.registry.load_full()
    }
}

/// Counts a refused rationed signature.
/// Signs `tbs` on the calling thread, counted in `vigie_ocsp_signing_seconds` (every signature
/// is: on request, in the background, pre-signed).
fn sign_timed(signer: &OcspSigner, tbs: &[u8]) -> Result<Vec<u8>, crate::signer::Error> {
    let start = Instant::now();
    let signature = signer.signer.sign(tbs);
    metrics::histogram!(m::OCSP_SIGNING_SECONDS).record(start.elapsed().as_secs_f64());
    signature
}

fn rationed(refused: ration::Refused, outcome: &'static str) {
    metrics::counter!(m::OCSP_RATIONED, "limit" => refused.label(), "outcome" => outcome)
        .increment(1);
}

/// Whether a cached answer was signed at a time later than `now`: the clock was set back since.
/// Serving it would hand out a thisUpdate in the future (RFC 6960 §4.2.2.1: clients reject it);
/// it is signed again instead.
fn from_the_future(hit: &CachedResponse, now: UnixTime) -> bool {
    hit.response.times.this_update > now || hit.response.times.produced_at > now
}

fn half_way(from: UnixTime, to: UnixTime) -> UnixTime {
    from.plus((to.0 - from.0) / 2)
}

/// The status a stored answer keeps beside it: "unknown" answers are never stored.
pub fn stored_status(status: &SingleStatus) -> Option<StoredStatus> {
    match status {
        SingleStatus::Good => Some(StoredStatus::Good),
        SingleStatus::Revoked { .. } => Some(StoredStatus::Revoked),
        SingleStatus::Unknown => None,
    }
}

/// The status a CA's policy gives a record, and whether it needs the extended-revoke extension.
pub fn status_of(ca: &Ca, record: Option<&CertRecord>) -> (SingleStatus, bool) {
    match record.map(CertRecord::status) {
        Some(CertStatus::Good) => (SingleStatus::Good, false),
        Some(CertStatus::Revoked(r)) => (
            SingleStatus::Revoked {
                at: r.revoked_at,
                reason: r.reason,
                invalidity_date: r.invalidity_date,
            },
            false,
        ),
        Some(CertStatus::Unknown) | None => match ca.unknown_serial {
            UnknownSerialPolicy::Unknown => (SingleStatus::Unknown, false),
            // RFC 6960 §2.2: revoked, certificateHold, 1970-01-01; §4.4.8: extended-revoke.
            UnknownSerialPolicy::Revoked => (
                SingleStatus::Revoked {
                    at: UnixTime::EPOCH,
                    reason: Some(RevocationReason::CertificateHold),
                    invalidity_date: None,
                },
                true,
            ),
        },
    }
}

/// The CertID of the first SingleResponse of a stored (successful, basic) response.
fn cert_id_of(response_der: &[u8]) -> Option<Vec<u8>> {
    let resp = der_types::OcspResponseDer::from_der(response_der).ok()?;
    let basic =
        der_types::BasicOcspResponseDer::from_der(resp.response_bytes?.response.as_bytes()).ok()?;
    let tbs = basic.tbs_response_data.to_der().ok()?;
    let data = der_types::ResponseDataDer::from_der(&tbs).ok()?;
    data.responses.first()?.cert_id.to_der().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(der_len: usize) -> CachedResponse {
        let times = Times {
            produced_at: UnixTime(1_800_000_000),
            this_update: UnixTime(1_800_000_000),
            next_update: UnixTime(1_800_086_400),
        };
        CachedResponse {
            response: SignedResponse::new(vec![0x30; der_len], times, "good"),
            refresh_at: UnixTime(1_800_043_200),
            generation: 0,
            maker: 0,
            ca_index: 0,
            ca_id: CaId::new("aci-el-org").expect("valid id"),
            serial: Serial::from_hex("0123456789abcdef0123").ok(),
            cert_id_der: vec![0x30; 70].into_boxed_slice(),
            refreshing: AtomicBool::new(false),
            registered: true,
        }
    }

    #[test]
    fn an_entry_weighs_what_it_holds() {
        let key = vec![7u8; 26].into_boxed_slice();
        let e = entry(470);
        let r = &e.response;
        let payload = key.len()
            + r.der.len()
            + e.cert_id_der.len()
            + e.serial.as_ref().map_or(0, |s| s.magnitude().len())
            + e.ca_id.as_str().len()
            + VALIDATOR_LENGTHS.iter().sum::<usize>();
        let weight = footprint(&key, &e);
        assert!(
            weight >= payload + std::mem::size_of::<CachedResponse>() + 8 * ALLOCATION,
            "every heap allocation and the struct count: {weight} for {payload} of payload"
        );
        // A P-256 answer of ~470 octets: about 1.2 KB in memory, not the 800 counted before.
        assert!((1_000..1_600).contains(&weight), "{weight}");
        assert!(
            footprint(&key, &entry(2_000)) - weight == 2_000 - 470,
            "the DER counts octet for octet"
        );
    }
}
