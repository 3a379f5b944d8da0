//! Pre-signing (`[[ca]] presign`): every registered certificate of a CA has its signed answer
//! in the store before anyone asks, so a first request costs what a repeated one costs — a
//! store read, no signature.
//!
//! Two threads per service:
//!
//! - **passes** walk each CA's certificates and stored answers together
//!   ([`Store::presign_chunk`]) and sign, in the pool's background lane (at most
//!   `[ocsp] presign_share` of the signing threads), every answer that is missing, stale (its
//!   record changed) or due: past [`due_at`], 40 % of its validity, ahead of the request path
//!   which stops serving a stored answer at half its validity. A pass first counts what it has
//!   to do (`vigie_ocsp_presign_pending{ca}`), then signs, logging its rate and estimated
//!   completion every ten seconds; the next pass starts when the earliest answer falls due.
//!   This takes over from the refresher for these CAs (it skips them).
//! - **follow** reads each CA's event log as ingest appends to it: a status change (revocation,
//!   hold, release) is re-signed in the pool's urgent lane, ahead of any backlog; a registration
//!   is queued for the passes thread, which signs it between chunks of its walk. Ingest never
//!   waits for either: it only writes its events.
//!
//! Which answers: one per pre-signed CertID hash algorithm (`[ocsp] presign_hashes`, SHA-1 and
//! SHA-256 by default, with NULL parameters as OpenSSL, Go and Java encode them), because the
//! response echoes the request's CertID and so its signature covers the hash algorithm. Other
//! forms are signed on their first request, stored, and then kept fresh by the passes too.
//! Answers with a nonce are never pre-signed (each echoes its own nonce).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use der::asn1::{AnyRef, IntRef, OctetStringRef};
use der::{Decode, Encode};

use super::der_types::CertIdDer;
use super::{CachedResponse, Error, Responder, cache_key, status_of, stored_status};
use crate::metrics as m;
use crate::model::{CaId, EventKind, Serial, UnixTime};
use crate::pki::{Ca, HashAlg};
use crate::store::presign::PresignEntry;
use crate::store::{Maker, StoredResponse};

/// Serials read per chunk of a walk.
const CHUNK: usize = 2048;
/// Registrations queued for the passes thread; beyond, a full pass is asked for instead.
const MAX_REGISTRATIONS: usize = 100_000;
/// Status changes waiting in the urgent lane; beyond, they join the registrations (a bulk
/// revocation must not starve live requests for minutes).
const MAX_URGENT: usize = 1024;
/// How often the event logs are looked at.
const FOLLOW_EVERY: Duration = Duration::from_millis(5);
/// How often a pass in progress logs its rate.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Longest wait between passes (a pass also re-reads what is stored, to find anything signed
/// elsewhere that falls due).
const MAX_PASS_GAP: Duration = Duration::from_secs(3600);

/// When pre-signing re-signs a stored answer: at 40 % of its validity, so that it is replaced
/// before the request path stops serving it (at half, CA/B BR §4.9.10).
pub fn due_at(produced_at: UnixTime, next_update: UnixTime) -> UnixTime {
    produced_at.plus((next_update.0 - produced_at.0) * 2 / 5)
}

/// The variant (see [`super::request::Query::variant`]) of a CertID with NULL parameters.
pub fn variant_of(alg: HashAlg) -> u8 {
    alg.index() as u8
}

/// What [`Responder::presign_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Signed and stored an answer.
    Signed,
    /// The stored answer was current and not yet due.
    Fresh,
    /// A stale answer of a form nobody pre-signs was removed.
    Dropped,
    /// Nothing to sign (no registered certificate, or an "unknown" answer, never stored).
    Nothing,
}

/// The DER CertID of `serial` under `variant` for `ca` (RFC 6960 §4.1.1): exactly what a
/// client sends for that hash algorithm and parameter encoding.
pub fn cert_id_der(ca: &Ca, variant: u8, serial: &Serial) -> Result<Vec<u8>, Error> {
    let alg = HashAlg::ALL
        .get(usize::from(variant & 3))
        .copied()
        .ok_or_else(|| Error::Internal(format!("variant {variant}")))?;
    let oid = match alg {
        HashAlg::Sha1 => const_oid::db::rfc5912::ID_SHA_1,
        HashAlg::Sha256 => const_oid::db::rfc5912::ID_SHA_256,
        HashAlg::Sha384 => const_oid::db::rfc5912::ID_SHA_384,
        HashAlg::Sha512 => const_oid::db::rfc5912::ID_SHA_512,
    };
    let hashes = &ca.hashes[alg.index()];
    let serial_content = serial.der_content();
    let internal = |e: der::Error| Error::Internal(e.to_string());
    CertIdDer {
        hash_algorithm: spki::AlgorithmIdentifierRef {
            oid,
            parameters: (variant < 4).then_some(AnyRef::NULL),
        },
        issuer_name_hash: OctetStringRef::new(&hashes.name).map_err(internal)?,
        issuer_key_hash: OctetStringRef::new(&hashes.key).map_err(internal)?,
        serial_number: IntRef::new(&serial_content).map_err(internal)?,
    }
    .to_der()
    .map_err(internal)
}

impl Responder {
    /// Makes sure the stored answer of (`ca`, `serial`, `variant`) is current and not due,
    /// signing it on the calling thread when it is not. `wanted`: this form is pre-signed for
    /// registered certificates (otherwise a stored answer is only kept fresh, or dropped when
    /// stale). Safe against concurrent changes: the answer stores the record version it was
    /// signed from, and the in-memory entry the generation read before the record.
    pub fn presign_one(
        &self,
        ca: &Arc<Ca>,
        serial: &Serial,
        variant: u8,
        wanted: bool,
    ) -> Result<Outcome, Error> {
        let now = self.clock.now();
        let generation = self.store.change_generation(&ca.id, serial);
        let record = self.store.cert(&ca.id, serial)?;
        let version = record.as_ref().map_or(0, |r| r.version);
        let stored = self.store.ocsp_head(&ca.id, serial, variant)?;
        let signer = Arc::clone(ca.signer_at(now));
        let maker = self.maker(ca, &signer);
        if let Some(h) = stored
            && h.version == version
            && maker.is(h.maker)
            && now < due_at(h.produced_at, h.next_update)
            // Signed before the clock was set back: signed again, never served from the future.
            && h.produced_at <= now
        {
            return Ok(Outcome::Fresh);
        }
        let registered = record
            .as_ref()
            .is_some_and(|r| r.issuance.is_some() || r.revocation.is_some());
        if !(wanted && registered) {
            match stored {
                None => return Ok(Outcome::Nothing),
                Some(h) if h.version != version => {
                    self.store.delete_ocsp_response(&ca.id, serial, variant)?;
                    return Ok(Outcome::Dropped);
                }
                Some(_) => {}
            }
        }
        let (status, extended_revoke) = status_of(ca, record.as_ref());
        let label = status.label();
        let keep = stored_status(&status);
        if label == "unknown" {
            if stored.is_some() {
                self.store.delete_ocsp_response(&ca.id, serial, variant)?;
                return Ok(Outcome::Dropped);
            }
            return Ok(Outcome::Nothing);
        }
        let cert_id_der = cert_id_der(ca, variant, serial)?;
        let cert_id =
            CertIdDer::from_der(&cert_id_der).map_err(|e| Error::Internal(e.to_string()))?;
        let (der, times) =
            self.sign_single_now(ca, &signer, cert_id, status, extended_revoke, now)?;
        let fresh = StoredResponse {
            version,
            produced_at: times.produced_at,
            this_update: times.this_update,
            next_update: times.next_update,
            der,
            maker: Some(maker),
            status: keep,
        };
        // Refused when the record changed while it was signed: the change is queued ahead of
        // the backlog and signed again from the new record.
        if !self
            .store
            .put_ocsp_response(&ca.id, serial, variant, &fresh)?
        {
            return Ok(Outcome::Nothing);
        }
        // An entry already in memory is replaced; others are read from the store when asked
        // (pre-signing 10⁶ answers must not churn the cache of what is being asked).
        let key = cache_key(ca.index, variant, &serial.der_content());
        if self.cache.get(&key).is_some() {
            self.cache.insert(
                key,
                CachedResponse::new(
                    fresh.der,
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
        Ok(Outcome::Signed)
    }

    /// The signing pool (its lanes are shared by requests and pre-signing).
    pub fn signing_pool(&self) -> &super::pool::SigningPool {
        &self.pool
    }
}

/// Per pre-signed CA.
struct CaState {
    ca: Arc<Ca>,
    /// Answers the current pass has still to sign.
    pending: AtomicU64,
    pending_gauge: metrics::Gauge,
    urgent: metrics::Counter,
    background: metrics::Counter,
}

impl CaState {
    fn set_pending(&self, n: u64) {
        self.pending.store(n, Ordering::Release);
        self.pending_gauge.set(n as f64);
    }

    fn one_less(&self) {
        let left = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(1))
            })
            .map_or(0, |p| p.saturating_sub(1));
        self.pending_gauge.set(left as f64);
    }
}

#[derive(Default)]
struct Registrations {
    queue: VecDeque<(usize, Serial)>,
    /// Too many arrived at once: the next pass finds them.
    overflow: bool,
}

struct Shared {
    responder: Arc<Responder>,
    cas: Vec<CaState>,
    /// Variants pre-signed, in order.
    variants: Vec<u8>,
    registrations: Mutex<Registrations>,
    wake: Condvar,
    stopping: AtomicBool,
    /// Jobs handed to the pool and not finished.
    in_flight: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running pre-signing threads; [`Presigning::stop`] ends them.
pub struct Presigning {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Presigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigning")
            .field("cas", &self.shared.cas.len())
            .finish_non_exhaustive()
    }
}

impl Presigning {
    /// Starts pre-signing for the CAs in `cas` (those with `presign = true`), pre-signing the
    /// CertID forms of `hashes`; passes are at least `min_gap` apart. `None` when `cas` is
    /// empty. The refresher leaves these CAs' stored answers to pre-signing from now on.
    pub fn start(
        responder: Arc<Responder>,
        cas: &[CaId],
        hashes: &[HashAlg],
        min_gap: Duration,
    ) -> Option<Presigning> {
        let registry = responder.registry();
        let states: Vec<CaState> = cas
            .iter()
            .filter_map(|id| registry.by_id(id.as_str()))
            .map(|ca| {
                let label = ca.id.as_str().to_owned();
                CaState {
                    ca: Arc::clone(ca),
                    pending: AtomicU64::new(0),
                    pending_gauge: metrics::gauge!(m::OCSP_PRESIGN_PENDING, "ca" => label.clone()),
                    urgent: metrics::counter!(m::OCSP_PRESIGNED, "ca" => label.clone(), "lane" => "urgent"),
                    background: metrics::counter!(m::OCSP_PRESIGNED, "ca" => label, "lane" => "background"),
                }
            })
            .collect();
        if states.is_empty() {
            return None;
        }
        *responder.presigned() = states.iter().map(|s| s.ca.id.clone()).collect();
        let shared = Arc::new(Shared {
            responder,
            cas: states,
            variants: hashes.iter().map(|a| variant_of(*a)).collect(),
            registrations: Mutex::new(Registrations::default()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
        });
        let passes = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("vigie-presign".into())
                .spawn(move || shared.passes(min_gap))
                .expect("the OS can start one thread at start-up")
        };
        let follow = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("vigie-presign-follow".into())
                .spawn(move || shared.follow())
                .expect("the OS can start one thread at start-up")
        };
        Some(Presigning {
            shared,
            threads: vec![passes, follow],
        })
    }

    /// Stops both threads (a pass in progress stops after its current chunk), then waits a
    /// few seconds at most for the answers already handed to the pool.
    pub fn stop(mut self) {
        self.shared.responder.presigned().clear();
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Hands one answer to the pool's background lane (waiting for room). `counted`: it is
    /// part of the pass's pending count.
    fn submit(
        self: &Arc<Self>,
        i: usize,
        serial: Serial,
        variant: u8,
        wanted: bool,
        counted: bool,
    ) {
        let this = Arc::clone(self);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let job = move || {
            let state = &this.cas[i];
            match this
                .responder
                .presign_one(&state.ca, &serial, variant, wanted)
            {
                Ok(Outcome::Signed) => state.background.increment(1),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(ca = %state.ca.id, serial = %serial.to_hex(), error = %e, "pre-signing failed")
                }
            }
            if counted {
                state.one_less();
            }
            this.in_flight.fetch_sub(1, Ordering::AcqRel);
        };
        let keep_waiting = || !self.stopping();
        if self
            .responder
            .pool
            .run_background(job, keep_waiting)
            .is_err()
        {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Signs the registrations queued by [`Shared::follow`].
    fn drain_registrations(self: &Arc<Self>) {
        loop {
            let next = lock(&self.registrations).queue.pop_front();
            let Some((i, serial)) = next else { return };
            for &v in &self.variants {
                if self.stopping() {
                    return;
                }
                self.submit(i, serial.clone(), v, true, false);
            }
        }
    }

    fn passes(self: Arc<Self>, min_gap: Duration) {
        let mut next_pass = Instant::now();
        while !self.stopping() {
            self.drain_registrations();
            let overflow = std::mem::take(&mut lock(&self.registrations).overflow);
            if overflow || Instant::now() >= next_pass {
                let until_due = self.pass();
                next_pass = Instant::now() + until_due.clamp(min_gap, MAX_PASS_GAP);
                continue;
            }
            let g = lock(&self.registrations);
            if g.queue.is_empty() && !g.overflow && !self.stopping() {
                let wait = next_pass
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1));
                let _ = self.wake.wait_timeout(g, wait);
            }
        }
    }

    /// The answers of `entry` to sign now: (variant, pre-signed form).
    fn due(
        &self,
        entry: &PresignEntry,
        (now, maker): (UnixTime, Maker),
        earliest: &mut Option<UnixTime>,
    ) -> Vec<(u8, bool)> {
        let version = entry.record_version.unwrap_or(0);
        let mut out = Vec::new();
        let mut check = |variant: u8,
                         wanted: bool,
                         head: Option<&crate::store::presign::StoredHead>| {
            match head {
                // Made by the signer and under the policy of now: due at 40 % of its validity.
                Some(h) if h.version == version && maker.is(h.maker) && h.produced_at <= now => {
                    let due = due_at(h.produced_at, h.next_update);
                    if now >= due {
                        out.push((variant, wanted));
                    } else if earliest.is_none_or(|e| due < e) {
                        *earliest = Some(due);
                    }
                }
                Some(_) => out.push((variant, wanted)),
                None if wanted => out.push((variant, wanted)),
                None => {}
            }
        };
        let head_of = |v: u8| entry.stored.iter().find(|(sv, _)| *sv == v).map(|(_, h)| h);
        if entry.registered {
            for &v in &self.variants {
                check(v, true, head_of(v));
            }
        }
        for (v, h) in &entry.stored {
            if !(entry.registered && self.variants.contains(v)) {
                check(*v, false, Some(h));
            }
        }
        out
    }

    /// Walks `ca` once, calling `f` with each chunk; stops early when stopping.
    fn walk(&self, ca: &CaId, mut f: impl FnMut(Vec<PresignEntry>)) -> Result<(), Error> {
        let store = &self.responder.store;
        let mut after: Option<Serial> = None;
        loop {
            if self.stopping() {
                return Ok(());
            }
            let (chunk, more) = store.presign_chunk(ca, after.as_ref(), CHUNK)?;
            after = chunk.last().map(|e| e.serial.clone());
            f(chunk);
            if !more {
                return Ok(());
            }
        }
    }

    /// One pass over every pre-signed CA; returns how long until the earliest answer falls due.
    fn pass(self: &Arc<Self>) -> Duration {
        let clock = &self.responder.clock;
        let mut earliest: Option<UnixTime> = None;
        for (i, state) in self.cas.iter().enumerate() {
            let id = &state.ca.id;
            // Count first, so that progress and completion can be told.
            let now = clock.now();
            let maker = self.responder.maker(&state.ca, state.ca.signer_at(now));
            let mut todo = 0u64;
            let counted = self.walk(id, |chunk| {
                for e in &chunk {
                    todo += self.due(e, (now, maker), &mut earliest).len() as u64;
                }
            });
            if let Err(e) = counted {
                tracing::error!(ca = %id, error = %e, "pre-signing pass failed");
                continue;
            }
            state.set_pending(todo);
            if todo == 0 || self.stopping() {
                continue;
            }
            tracing::info!(ca = %id, pending = todo, "pre-signing: pass started");
            let started = Instant::now();
            let mut last_log = started;
            let walked = self.walk(id, |chunk| {
                let now = clock.now();
                let maker = self.responder.maker(&state.ca, state.ca.signer_at(now));
                let mut ignored = None;
                for e in chunk {
                    for (variant, wanted) in self.due(&e, (now, maker), &mut ignored) {
                        if self.stopping() {
                            return;
                        }
                        self.submit(i, e.serial.clone(), variant, wanted, true);
                    }
                }
                // Registrations that arrived meanwhile go before the rest of the backlog.
                self.drain_registrations();
                if last_log.elapsed() >= LOG_EVERY {
                    last_log = Instant::now();
                    log_progress(id, todo, state.pending.load(Ordering::Acquire), started);
                }
            });
            if let Err(e) = walked {
                tracing::error!(ca = %id, error = %e, "pre-signing pass failed");
                continue;
            }
            // Wait for the last answers handed to the pool, for an honest completion time.
            while self.in_flight.load(Ordering::Acquire) > 0 && !self.stopping() {
                std::thread::sleep(Duration::from_millis(5));
                if last_log.elapsed() >= LOG_EVERY {
                    last_log = Instant::now();
                    log_progress(id, todo, state.pending.load(Ordering::Acquire), started);
                }
            }
            let secs = started.elapsed().as_secs_f64();
            state.set_pending(0);
            if !self.stopping() {
                tracing::info!(
                    ca = %id,
                    answers = todo,
                    seconds = format!("{secs:.1}"),
                    rate = format!("{:.0}/s", todo as f64 / secs.max(1e-3)),
                    "pre-signing: pass complete"
                );
            }
            // What this pass signed falls due 40 % of a validity from now.
            let mut next = clock.now().plus(state.ca.ocsp_validity * 2 / 5);
            // A signer rollover makes every answer due at its instant.
            if let Some(at) = state.ca.rollover_after(clock.now()) {
                next = next.min(at);
            }
            if earliest.is_none_or(|e| next < e) {
                earliest = Some(next);
            }
        }
        let now = clock.now();
        earliest.map_or(MAX_PASS_GAP, |e| {
            Duration::from_secs(e.0.saturating_sub(now.0).max(0) as u64)
        })
    }

    /// Follows each CA's event log: status changes to the urgent lane, registrations to the
    /// passes thread.
    fn follow(self: Arc<Self>) {
        let store = Arc::clone(&self.responder.store);
        let mut cursors: Vec<u64> = self
            .cas
            .iter()
            .map(|s| store.last_seq(&s.ca.id).unwrap_or(0))
            .collect();
        while !self.stopping() {
            for (i, state) in self.cas.iter().enumerate() {
                let last = store.last_seq(&state.ca.id).unwrap_or(0);
                if last <= cursors[i] {
                    continue;
                }
                let mut registered = Vec::new();
                for event in store.events_after(&state.ca.id, cursors[i]) {
                    let event = match event {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::error!(ca = %state.ca.id, error = %e, "pre-signing cannot read the event log");
                            break;
                        }
                    };
                    if event.seq > last {
                        break;
                    }
                    cursors[i] = event.seq;
                    let urgent = !matches!(event.kind, EventKind::Issued(_))
                        && self.responder.pool.depths().urgent < MAX_URGENT;
                    if urgent {
                        self.urgent(i, &event.serial);
                    } else {
                        registered.push((i, event.serial));
                    }
                }
                if !registered.is_empty() {
                    let mut g = lock(&self.registrations);
                    if g.queue.len() + registered.len() > MAX_REGISTRATIONS {
                        g.overflow = true;
                    } else {
                        g.queue.extend(registered);
                    }
                    drop(g);
                    self.wake.notify_all();
                }
            }
            std::thread::sleep(FOLLOW_EVERY);
        }
    }

    /// Re-signs every pre-signed form of a changed serial, ahead of everything else.
    fn urgent(self: &Arc<Self>, i: usize, serial: &Serial) {
        for &variant in &self.variants {
            let this = Arc::clone(self);
            let serial = serial.clone();
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let queued = self.responder.pool.run_urgent(move || {
                let state = &this.cas[i];
                match this.responder.presign_one(&state.ca, &serial, variant, true) {
                    Ok(Outcome::Signed) => state.urgent.increment(1),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(ca = %state.ca.id, serial = %serial.to_hex(), error = %e, "re-signing after a status change failed")
                    }
                }
                this.in_flight.fetch_sub(1, Ordering::AcqRel);
            });
            if queued.is_err() {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

fn log_progress(ca: &CaId, todo: u64, pending: u64, started: Instant) {
    let done = todo.saturating_sub(pending);
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let rate = done as f64 / secs;
    let eta = if rate > 0.0 {
        format!("{:.0}s", pending as f64 / rate)
    } else {
        "unknown".into()
    };
    tracing::info!(
        ca = %ca,
        pending,
        done,
        rate = format!("{rate:.0}/s"),
        eta,
        "pre-signing"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_before_the_request_path_stops_serving() {
        let produced = UnixTime(1000);
        let next = UnixTime(1000 + 86_400);
        let due = due_at(produced, next);
        assert_eq!(due, UnixTime(1000 + 34_560));
        assert!(due < super::super::half_way(produced, next));
    }
}
