//! The load engine: C virtual clients, each with its own keep-alive connections, sending the
//! scenario's request kinds in their weighted proportions and checking every answer.
//!
//! Two load models:
//! - closed loop (`rate` absent): each client sends its next request as soon as the previous
//!   answer is in; latency is measured from the send;
//! - open loop (`rate` R): request i is *intended* for `start + i/R`, whichever client is free
//!   takes the next slot, and latency is measured from the intended time, so a server that
//!   stalls is charged for the requests that could not be sent meanwhile (no coordinated
//!   omission, as wrk2 does).
//!
//! Revocations (`ingest-revoke`) change what the population expects: an entry being revoked
//! accepts good or revoked, then only revoked once acknowledged; after each acknowledgement a
//! probe asks OCSP until the answer says revoked, and the delay is the revocation-to-visibility
//! histogram. Issued and revoked certificates are appended to the population file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vigie::pki::HashAlg;

use crate::check::{self, OcspExpectation, Verdict};
use crate::http::{self, Conn, Endpoint};
use crate::issuers::{Issuer, Issuers};
use crate::population::{Appender, Expected, Line, Population, SerialBytes};
use crate::scenario::{GetEncoding, HashChoice, Plan};
use crate::seed::{self, CertFactory, Issued, Revocation};
use crate::select::{Pick, Picker};
use crate::stats::{Kind, Outcome, Recorder, Shared};

/// Where to send.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The public listener (OCSP, CRLs): the first of [`Targets::publics`].
    pub public: Endpoint,
    /// Every public listener given (`--url A,B,…`: replicas of one service). Each virtual
    /// client sends its OCSP and CRL requests to one of them, in turn (client i to endpoint
    /// i mod n); a revocation's visibility probe waits until every one of them says revoked.
    pub publics: Vec<Endpoint>,
    /// The admin listener (ingest), when the plan needs it.
    pub admin: Option<Endpoint>,
    /// Bearer token for the admin listener.
    pub token: Option<String>,
    /// POST to `/ocsp/<URL-safe base64>` rather than `/ocsp` (static servers in `compare`).
    pub post_to_file_path: bool,
}

impl Targets {
    /// The public endpoint of index `i` (the first when there is no such one).
    pub fn public_of(&self, i: usize) -> &Endpoint {
        self.publics.get(i).unwrap_or(&self.public)
    }
}

/// What the engine works with besides the plan.
pub struct Context {
    /// The target's CAs.
    pub issuers: Arc<Issuers>,
    /// The population.
    pub population: Arc<Population>,
    /// The chooser.
    pub picker: Arc<Picker>,
    /// Issues certificates for `ingest-issue` (when the plan has it).
    pub factory: Option<Arc<CertFactory>>,
    /// Pre-issued certificates.
    pub issued_pool: Mutex<Vec<Issued>>,
    /// Where issued and revoked certificates are appended (when the population is a file).
    pub appender: Option<Mutex<Appender>>,
    /// Revocations whose outcome is unknown (timeouts, 5xx).
    pub uncertain_revocations: AtomicU64,
    /// Certificates issued during the run because the pool ran dry.
    pub issued_on_the_fly: AtomicU64,
    /// Certificates registered by `ingest-issue`.
    pub registered: AtomicU64,
    /// Sampled signature verification, with its cache of verified signers.
    pub verifier: check::SignatureVerifier,
    /// Certificates registered by `ingest-issue` in this run and not revoked yet: what
    /// `ingest-revoke` revokes when the population has no good certificate left.
    pub fresh: Mutex<Vec<(u16, SerialBytes)>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("population", &self.population.entries.len())
            .finish_non_exhaustive()
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// All connections' totals merged.
    pub recorder: Recorder,
    /// Timeline and live counters.
    pub shared: Arc<Shared>,
    /// Seconds measured (after the warm-up).
    pub measured_seconds: f64,
    /// Whether it was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// Open-loop pacing: request i is intended for `start + i × interval`. A dedicated thread
/// releases each slot at its time (thread sleeps are precise to tens of microseconds, where
/// tokio's timer rounds up to the next millisecond, which would add up to 1 ms of the
/// generator's own lateness to every measured latency); whichever client is free takes the next
/// released slot. Slots released while every client is busy wait in the queue, and their
/// latency counts from their intended time.
#[derive(Debug)]
struct Pacer {
    slots: Mutex<std::collections::VecDeque<Instant>>,
    ready: tokio::sync::Semaphore,
}

impl Pacer {
    fn start(start: Instant, end: Instant, rate: f64, stop: Arc<AtomicBool>) -> Arc<Pacer> {
        let pacer = Arc::new(Pacer {
            slots: Mutex::new(std::collections::VecDeque::new()),
            ready: tokio::sync::Semaphore::new(0),
        });
        let p = Arc::clone(&pacer);
        let interval_ns = 1e9 / rate;
        std::thread::Builder::new()
            .name("vigie-load-pacer".into())
            .spawn(move || {
                let mut i: u64 = 0;
                let slot = |i: u64| start + Duration::from_nanos((i as f64 * interval_ns) as u64);
                loop {
                    let now = Instant::now();
                    let mut released = 0;
                    {
                        let mut q = p.slots.lock().unwrap_or_else(|e| e.into_inner());
                        while slot(i) <= now && slot(i) < end {
                            q.push_back(slot(i));
                            i += 1;
                            released += 1;
                        }
                    }
                    if released > 0 {
                        p.ready.add_permits(released);
                    }
                    let next = slot(i);
                    if next >= end || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Wake at the next slot, but not more often than every 200 µs: the slots
                    // due meanwhile are released together (at most 200 µs late).
                    let wait = next.saturating_duration_since(Instant::now());
                    std::thread::sleep(wait.max(Duration::from_micros(200)));
                }
                p.ready.close();
            })
            .expect("the OS can start one thread");
        pacer
    }

    /// The next slot, waiting for its release; `None` when the run is over.
    async fn next(&self) -> Option<Instant> {
        let permit = self.ready.acquire().await.ok()?;
        permit.forget();
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

struct Engine {
    plan: Plan,
    targets: Targets,
    ctx: Arc<Context>,
    shared: Arc<Shared>,
    end: Instant,
    stop: Arc<AtomicBool>,
    pacer: Option<Arc<Pacer>>,
    probes: Arc<tokio::sync::Semaphore>,
}

/// One virtual client.
struct Client {
    rng: SmallRng,
    /// Index of this client's endpoint in [`Targets::publics`].
    public_at: usize,
    public: Option<Conn>,
    admin: Option<Conn>,
    etags: HashMap<(u16, bool), String>,
    buf: Vec<u8>,
    rec: Recorder,
}

/// What a revocation is about.
enum Target {
    /// A population entry.
    Entry(usize),
    /// A certificate issued during this run (CA index, serial).
    Fresh(u16, SerialBytes),
}

/// The end of one exchange.
struct Done {
    outcome: Outcome,
    bytes: usize,
    message: Option<String>,
    sent: Instant,
    done: Instant,
}

fn hash_for(choice: HashChoice, rng: &mut SmallRng) -> HashAlg {
    match choice {
        HashChoice::One(a) => a,
        HashChoice::Mixed => {
            if rng.random_bool(0.5) {
                HashAlg::Sha1
            } else {
                HashAlg::Sha256
            }
        }
    }
}

/// The GET path of an OCSP request in the chosen encoding.
pub fn get_path(der: &[u8], encoding: GetEncoding) -> String {
    match encoding {
        GetEncoding::Percent => format!("/ocsp/{}", vigie::ocsp::request::to_get_path(der)),
        GetEncoding::UrlSafe => format!(
            "/ocsp/{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der)
        ),
    }
}

/// An OCSP request about one certificate: its DER, the CertID inside, the nonce extnValue.
pub struct OcspRequest {
    /// DER OCSPRequest.
    pub der: Vec<u8>,
    /// The CertID TLV.
    pub cert_id: Vec<u8>,
    /// The nonce extension's extnValue (DER OCTET STRING), if any.
    pub nonce: Option<Vec<u8>>,
}

/// Builds the OCSP request for `serial` of `issuer`.
pub fn ocsp_request(
    issuer: &Issuer,
    alg: HashAlg,
    serial: &SerialBytes,
    nonce: Option<&[u8]>,
) -> Result<OcspRequest, String> {
    let h = &issuer.hashes[alg.index()];
    let der = vigie::ocsp::request::build(alg, &h.name, &h.key, serial.content(), nonce)
        .map_err(|e| e.to_string())?;
    let cert_id = check::request_cert_id(&der)?.to_vec();
    let nonce = nonce.map(|n| {
        let mut v = Vec::with_capacity(n.len() + 2);
        v.push(0x04);
        v.push(n.len() as u8);
        v.extend_from_slice(n);
        v
    });
    Ok(OcspRequest {
        der,
        cert_id,
        nonce,
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sends `request` on the connection in `slot` (connecting first if needed) within `timeout`.
async fn exchange(
    slot: &mut Option<Conn>,
    endpoint: &Endpoint,
    request: &[u8],
    timeout: Duration,
) -> (Instant, Result<http::Response, Option<http::Error>>) {
    let attempt = async {
        let reused = slot.is_some();
        if slot.is_none() {
            *slot = Some(Conn::connect(endpoint).await?);
        }
        let sent = Instant::now();
        let conn = slot.as_mut().ok_or(http::Error::Closed)?;
        let mut r = conn.send(request).await;
        // A kept-alive connection the server closed while it was idle (its keep-alive timeout):
        // reconnect and send again, once, as HTTP clients do. Every request sent here is
        // idempotent (OCSP, CRL; the ingest API answers a replayed event as a no-op).
        if reused && matches!(r, Err(http::Error::Closed) | Err(http::Error::Io(_))) {
            let mut fresh = Conn::connect(endpoint).await?;
            r = fresh.send(request).await;
            *slot = Some(fresh);
        }
        Ok::<_, http::Error>((sent, r))
    };
    let started = Instant::now();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok((sent, Ok(r)))) => {
            if r.close {
                *slot = None;
            }
            (sent, Ok(r))
        }
        Ok(Ok((sent, Err(e)))) => {
            *slot = None;
            (sent, Err(Some(e)))
        }
        Ok(Err(e)) => {
            *slot = None;
            (started, Err(Some(e)))
        }
        Err(_) => {
            *slot = None;
            (started, Err(None))
        }
    }
}

fn failed(sent: Instant, e: Option<http::Error>) -> Done {
    match e {
        Some(e) => Done {
            outcome: Outcome::Error,
            bytes: 0,
            message: Some(e.to_string()),
            sent,
            done: Instant::now(),
        },
        None => Done {
            outcome: Outcome::Timeout,
            bytes: 0,
            message: Some("timeout".into()),
            sent,
            done: Instant::now(),
        },
    }
}

impl Done {
    /// The record of a request whose answer was judged `verdict`.
    fn judged(verdict: Verdict, bytes: usize, sent: Instant, done: Instant) -> Done {
        let (outcome, message) = match verdict {
            Verdict::Ok => (Outcome::Ok, None),
            Verdict::Wrong(m) => (Outcome::Wrong, Some(m)),
            Verdict::Error(m) => (Outcome::Error, Some(m)),
        };
        Done {
            outcome,
            bytes,
            message,
            sent,
            done,
        }
    }
}

impl Engine {
    fn pick_kind(&self, rng: &mut SmallRng) -> Kind {
        let x: f64 = rng.random();
        self.plan
            .kinds
            .iter()
            .find(|(_, c)| x < *c)
            .or(self.plan.kinds.last())
            .map_or(Kind::OcspPost, |(k, _)| *k)
    }

    /// Whether a revocation would find a good certificate (a few tries, then the fresh pool).
    fn can_revoke(&self, rng: &mut SmallRng) -> bool {
        let pop = &self.ctx.population;
        (0..20).any(|_| {
            self.ctx
                .picker
                .pick_good(rng)
                .is_some_and(|i| pop.entries[i].expected() == Expected::Good)
        }) || !self
            .ctx
            .fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    async fn run_client(self: Arc<Self>, id: usize) -> Recorder {
        let warmup_end = self.shared.start + self.plan.warmup;
        let mut c = Client {
            rng: SmallRng::seed_from_u64(
                self.plan.scenario.load.seed.wrapping_add(id as u64 * 7919),
            ),
            public_at: id % self.targets.publics.len().max(1),
            public: None,
            admin: None,
            etags: HashMap::new(),
            buf: Vec::with_capacity(1024),
            rec: Recorder::new(warmup_end),
        };
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let intended = match &self.pacer {
                Some(p) => match p.next().await {
                    Some(t) => t,
                    None => break,
                },
                None => {
                    let t = Instant::now();
                    if t >= self.end {
                        break;
                    }
                    t
                }
            };
            let mut kind = self.pick_kind(&mut c.rng);
            if kind == Kind::IngestRevoke && !self.can_revoke(&mut c.rng) {
                // Nothing good left to revoke yet: issue instead (the next revocations will
                // take what this issues).
                kind = Kind::IngestIssue;
            }
            let d = match kind {
                Kind::OcspPost | Kind::OcspGet | Kind::OcspPostNonce | Kind::OcspGetNonce => {
                    self.ocsp(&mut c, kind).await
                }
                Kind::CrlFull
                | Kind::CrlDelta
                | Kind::CrlFullConditional
                | Kind::CrlDeltaConditional => self.crl(&mut c, kind).await,
                Kind::IngestIssue => self.issue(&mut c).await,
                Kind::IngestRevoke => self.revoke(&mut c).await,
            };
            // Closed loop: latency from the send (connecting is part of it).
            let intended = if self.pacer.is_some() {
                intended
            } else {
                intended.min(d.sent)
            };
            c.rec.record(
                &self.shared,
                kind,
                intended,
                d.sent,
                d.done,
                d.outcome,
                d.bytes,
            );
            if let Some(m) = d.message {
                let class = match d.outcome {
                    Outcome::Wrong => "wrong",
                    Outcome::Timeout => "timeout",
                    _ => "error",
                };
                c.rec.message(class, kind, &m);
            }
        }
        c.rec.flush(&self.shared);
        c.rec
    }

    async fn ocsp(&self, c: &mut Client, kind: Kind) -> Done {
        let pick = self.ctx.picker.pick(&mut c.rng);
        let (ca, serial, expected) = match pick {
            Pick::Entry(i) => {
                let e = &self.ctx.population.entries[i];
                (e.ca, e.serial, e.expected())
            }
            Pick::Unknown { ca, serial } => (ca, serial, Expected::Unknown),
        };
        let Some(issuer) = self.ctx.issuers.cas.get(ca as usize) else {
            return Done {
                outcome: Outcome::Error,
                bytes: 0,
                message: Some(format!("population CA index {ca} not served")),
                sent: Instant::now(),
                done: Instant::now(),
            };
        };
        let alg = hash_for(self.plan.hash, &mut c.rng);
        let with_nonce = matches!(kind, Kind::OcspPostNonce | Kind::OcspGetNonce);
        let nonce_bytes: Option<Vec<u8>> = with_nonce.then(|| {
            let mut n = vec![0u8; self.plan.scenario.ocsp.nonce_bytes];
            c.rng.fill(&mut n[..]);
            n
        });
        let req = match ocsp_request(issuer, alg, &serial, nonce_bytes.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                return Done {
                    outcome: Outcome::Error,
                    bytes: 0,
                    message: Some(format!("building the request: {e}")),
                    sent: Instant::now(),
                    done: Instant::now(),
                };
            }
        };
        let endpoint = self.targets.public_of(c.public_at);
        match kind {
            Kind::OcspPost | Kind::OcspPostNonce => {
                let path = if self.targets.post_to_file_path {
                    get_path(&req.der, GetEncoding::UrlSafe)
                } else {
                    "/ocsp".to_owned()
                };
                http::write_request(
                    &mut c.buf,
                    "POST",
                    endpoint,
                    &path,
                    &[("Content-Type", "application/ocsp-request")],
                    &req.der,
                )
            }
            _ => {
                let path = get_path(&req.der, self.plan.get_encoding);
                http::write_request(&mut c.buf, "GET", endpoint, &path, &[], b"");
            }
        }
        let (sent, r) = exchange(&mut c.public, endpoint, &c.buf, self.plan.timeout).await;
        let done = Instant::now();
        let resp = match r {
            Ok(r) => r,
            Err(e) => return failed(sent, e),
        };
        // A revocation of this certificate may have overlapped the request (another client
        // began it after this request was built): then good and revoked are both right.
        let expected = match pick {
            Pick::Entry(i) if self.ctx.population.entries[i].expected() != expected => {
                Expected::Changing
            }
            _ => expected,
        };
        let want = OcspExpectation {
            issuer,
            cert_id: &req.cert_id,
            expected,
            nonce: req.nonce.as_deref(),
            now: now_unix(),
        };
        let verdict = self.check_ocsp_response(&resp, &want, ca as usize, &mut c.rng);
        Done::judged(verdict, resp.body.len(), sent, done)
    }

    fn check_ocsp_response(
        &self,
        resp: &http::Response,
        want: &OcspExpectation<'_>,
        ca: usize,
        rng: &mut SmallRng,
    ) -> Verdict {
        if resp.status != 200 {
            return match check::check_ocsp(&resp.body, want) {
                // An OCSP error status in a non-200 answer: classify by the OCSP status.
                v @ Verdict::Error(_) => v,
                _ if resp.status >= 500 => Verdict::Error(format!("HTTP {}", resp.status)),
                _ => Verdict::Wrong(format!("HTTP {}", resp.status)),
            };
        }
        let ct_ok = resp
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/ocsp-response"));
        if !ct_ok {
            return Verdict::Wrong(format!(
                "Content-Type {:?} is not application/ocsp-response",
                resp.content_type
            ));
        }
        let v = check::check_ocsp(&resp.body, want);
        if v == Verdict::Ok && rng.random_bool(self.plan.scenario.ocsp.verify_rate) {
            self.shared.verified.fetch_add(1, Ordering::Relaxed);
            return self.ctx.verifier.verify(&resp.body, ca, &self.ctx.issuers);
        }
        v
    }

    async fn crl(&self, c: &mut Client, kind: Kind) -> Done {
        let n = self.ctx.issuers.cas.len().max(1);
        let ca = c.rng.random_range(0..n) as u16;
        let Some(issuer) = self.ctx.issuers.cas.get(ca as usize) else {
            return failed(Instant::now(), Some(http::Error::Closed));
        };
        let delta = matches!(kind, Kind::CrlDelta | Kind::CrlDeltaConditional);
        let conditional = matches!(kind, Kind::CrlFullConditional | Kind::CrlDeltaConditional);
        let path = if delta {
            format!("/crl/{}-delta.crl", issuer.id)
        } else {
            format!("/crl/{}.crl", issuer.id)
        };
        let etag = conditional
            .then(|| c.etags.get(&(ca, delta)).cloned())
            .flatten();
        let headers: Vec<(&str, &str)> = match &etag {
            Some(e) => vec![("If-None-Match", e.as_str())],
            None => Vec::new(),
        };
        let endpoint = self.targets.public_of(c.public_at);
        http::write_request(&mut c.buf, "GET", endpoint, &path, &headers, b"");
        let (sent, r) = exchange(&mut c.public, endpoint, &c.buf, self.plan.timeout).await;
        let done = Instant::now();
        let resp = match r {
            Ok(r) => r,
            Err(e) => return failed(sent, e),
        };
        let verdict = match resp.status {
            304 if etag.is_some() => Verdict::Ok,
            304 => Verdict::Wrong("304 to an unconditional GET".into()),
            200 if !resp
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/pkix-crl")) =>
            {
                Verdict::Wrong(format!(
                    "Content-Type {:?} is not application/pkix-crl",
                    resp.content_type
                ))
            }
            200 => {
                let verify = c.rng.random_bool(self.plan.scenario.crl.verify_rate);
                let v = check::check_crl(&resp.body, issuer, delta, now_unix(), verify);
                if v == Verdict::Ok {
                    match &resp.etag {
                        Some(e) => {
                            c.etags.insert((ca, delta), e.clone());
                        }
                        None if conditional => {
                            return Done {
                                outcome: Outcome::Wrong,
                                bytes: resp.body.len(),
                                message: Some("CRL without ETag".into()),
                                sent,
                                done,
                            };
                        }
                        None => {}
                    }
                }
                v
            }
            s if s >= 500 => Verdict::Error(format!("HTTP {s}")),
            s => Verdict::Error(format!("HTTP {s} for {path}")),
        };
        Done::judged(verdict, resp.body.len(), sent, done)
    }

    fn admin(&self) -> Result<(&Endpoint, &str), Done> {
        match (&self.targets.admin, &self.targets.token) {
            (Some(a), Some(t)) => Ok((a, t.as_str())),
            _ => Err(Done {
                outcome: Outcome::Error,
                bytes: 0,
                message: Some("no admin URL or token given".into()),
                sent: Instant::now(),
                done: Instant::now(),
            }),
        }
    }

    async fn issue(&self, c: &mut Client) -> Done {
        let (endpoint, token) = match self.admin() {
            Ok(a) => a,
            Err(d) => return d,
        };
        let Some(factory) = self.ctx.factory.clone() else {
            return Done {
                outcome: Outcome::Error,
                bytes: 0,
                message: Some("no certificate factory".into()),
                sent: Instant::now(),
                done: Instant::now(),
            };
        };
        let batch = self.plan.scenario.ingest.batch;
        let mut certs: Vec<Issued> = {
            let mut pool = self
                .ctx
                .issued_pool
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let n = pool.len();
            pool.split_off(n.saturating_sub(batch))
        };
        while certs.len() < batch {
            let f = Arc::clone(&factory);
            let ca = c.rng.random_range(0..16usize);
            match tokio::task::spawn_blocking(move || f.issue(ca)).await {
                Ok(Ok(cert)) => {
                    self.ctx.issued_on_the_fly.fetch_add(1, Ordering::Relaxed);
                    certs.push(cert);
                }
                Ok(Err(e)) => {
                    return failed(Instant::now(), Some(http::Error::Parse(e.to_string())));
                }
                Err(e) => return failed(Instant::now(), Some(http::Error::Parse(e.to_string()))),
            }
        }
        let ca_ids = factory.ca_ids();
        let (content_type, body): (&str, Vec<u8>) = if batch == 1 {
            ("application/pkix-cert", certs[0].der.clone())
        } else {
            let pems: Vec<&str> = certs.iter().map(|c| c.pem.as_str()).collect();
            ("application/json", seed::certificates_body(&pems))
        };
        let auth = format!("Bearer {token}");
        http::write_request(
            &mut c.buf,
            "POST",
            endpoint,
            "/v1/certificates",
            &[("Content-Type", content_type), ("Authorization", &auth)],
            &body,
        );
        let (sent, r) = exchange(&mut c.admin, endpoint, &c.buf, self.plan.timeout).await;
        let done = Instant::now();
        let resp = match r {
            Ok(r) => r,
            Err(e) => return failed(sent, e),
        };
        let (outcome, message) = if (200..300).contains(&resp.status) {
            self.ctx
                .registered
                .fetch_add(certs.len() as u64, Ordering::Relaxed);
            if let Some(a) = &self.ctx.appender {
                let mut a = a.lock().unwrap_or_else(|p| p.into_inner());
                for cert in &certs {
                    let id = ca_ids.get(cert.ca as usize).map_or("", String::as_str);
                    let _ = a.push(&Line::new(id, &cert.serial, Expected::Good));
                }
            }
            {
                let mut fresh = self.ctx.fresh.lock().unwrap_or_else(|p| p.into_inner());
                if fresh.len() < 100_000 {
                    fresh.extend(certs.iter().map(|c| (c.ca, c.serial)));
                }
            }
            (Outcome::Ok, None)
        } else {
            (
                if resp.status >= 500 {
                    Outcome::Error
                } else {
                    Outcome::Wrong
                },
                Some(format!(
                    "HTTP {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                )),
            )
        };
        Done {
            outcome,
            bytes: resp.body.len(),
            message,
            sent,
            done,
        }
    }

    async fn revoke(&self, c: &mut Client) -> Done {
        let (endpoint, token) = match self.admin() {
            Ok(a) => a,
            Err(d) => return d,
        };
        let reasons = &self.plan.scenario.ingest.reasons;
        let batch = self.plan.scenario.ingest.batch;
        let reason = |rng: &mut SmallRng| {
            let reason = reasons[rng.random_range(0..reasons.len())].clone();
            let code = vigie::model::RevocationReason::from_name(&reason)
                .ok()
                .map(|r| r.code())
                .filter(|&c| c != 0);
            (code, reason)
        };
        // Population entries first (OCSP traffic asks about them), then certificates issued
        // during this run.
        let mut chosen: Vec<(Target, Option<u8>, String)> = Vec::new();
        for _ in 0..batch * 20 {
            if chosen.len() == batch {
                break;
            }
            let Some(i) = self.ctx.picker.pick_good(&mut c.rng) else {
                break;
            };
            if self.ctx.population.entries[i].begin_revocation() {
                let (code, name) = reason(&mut c.rng);
                chosen.push((Target::Entry(i), code, name));
            }
        }
        if chosen.len() < batch {
            let mut fresh = self.ctx.fresh.lock().unwrap_or_else(|p| p.into_inner());
            while chosen.len() < batch {
                let Some((ca, serial)) = fresh.pop() else {
                    break;
                };
                let (code, name) = reason(&mut c.rng);
                chosen.push((Target::Fresh(ca, serial), code, name));
            }
        }
        if chosen.is_empty() {
            return Done {
                outcome: Outcome::Error,
                bytes: 0,
                message: Some("no good certificate left to revoke".into()),
                sent: Instant::now(),
                done: Instant::now(),
            };
        }
        let pop = &self.ctx.population;
        let target = |t: &Target| -> (u16, SerialBytes) {
            match t {
                Target::Entry(i) => (pop.entries[*i].ca, pop.entries[*i].serial),
                Target::Fresh(ca, serial) => (*ca, *serial),
            }
        };
        let revs: Vec<Revocation> = chosen
            .iter()
            .map(|(t, _, reason)| {
                let (ca, serial) = target(t);
                Revocation {
                    ca: pop.cas[ca as usize].clone(),
                    serial: serial.to_hex(),
                    reason: reason.clone(),
                }
            })
            .collect();
        let body = seed::revocations_body(&revs);
        let auth = format!("Bearer {token}");
        http::write_request(
            &mut c.buf,
            "POST",
            endpoint,
            "/v1/revocations",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            &body,
        );
        let (sent, r) = exchange(&mut c.admin, endpoint, &c.buf, self.plan.timeout).await;
        let done = Instant::now();
        let resp = match r {
            Ok(r) => r,
            Err(e) => {
                // Applied or not: nobody knows. Both answers stay acceptable.
                self.ctx
                    .uncertain_revocations
                    .fetch_add(chosen.len() as u64, Ordering::Relaxed);
                return failed(sent, e);
            }
        };
        if (200..300).contains(&resp.status) {
            let acked = Instant::now();
            for (t, code, _) in &chosen {
                if let Target::Entry(i) = t {
                    pop.entries[*i].set_expected(Expected::Revoked(*code));
                }
                let (ca, serial) = target(t);
                if let Some(a) = &self.ctx.appender {
                    let mut a = a.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = a.push(&Line::new(
                        &pop.cas[ca as usize],
                        &serial,
                        Expected::Revoked(*code),
                    ));
                }
                // Revocations acknowledged during the warm-up are not measured.
                if self.plan.scenario.ingest.visibility
                    && acked >= self.shared.start + self.plan.warmup
                {
                    self.spawn_probe(ca, serial, *code, acked);
                }
            }
            Done {
                outcome: Outcome::Ok,
                bytes: resp.body.len(),
                message: None,
                sent,
                done,
            }
        } else {
            let outcome = if resp.status >= 500 {
                self.ctx
                    .uncertain_revocations
                    .fetch_add(chosen.len() as u64, Ordering::Relaxed);
                Outcome::Error
            } else {
                // Refused whole (the API writes nothing of a rejected batch): still good.
                for (t, _, _) in &chosen {
                    if let Target::Entry(i) = t {
                        pop.entries[*i].set_expected(Expected::Good);
                    }
                }
                Outcome::Wrong
            };
            Done {
                outcome,
                bytes: resp.body.len(),
                message: Some(format!(
                    "HTTP {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                )),
                sent,
                done,
            }
        }
    }

    /// After an acknowledged revocation: ask OCSP until it says revoked.
    fn spawn_probe(&self, ca: u16, serial: SerialBytes, code: Option<u8>, acked: Instant) {
        let Ok(permit) = Arc::clone(&self.probes).try_acquire_owned() else {
            return; // Too many probes in flight: this one is not measured.
        };
        let issuers = Arc::clone(&self.ctx.issuers);
        let shared = Arc::clone(&self.shared);
        let endpoints = if self.targets.publics.is_empty() {
            vec![self.targets.public.clone()]
        } else {
            self.targets.publics.clone()
        };
        let limit = self.plan.probe_timeout;
        let timeout = self.plan.timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let Some(issuer) = issuers.cas.get(ca as usize) else {
                return;
            };
            let Ok(req) = ocsp_request(issuer, HashAlg::Sha1, &serial, None) else {
                return;
            };
            // Every endpoint in turn: the time recorded is when the last one said revoked
            // (an endpoint already revoked when its turn comes counts at that moment: an
            // upper bound).
            let mut stale = 0;
            'endpoints: for endpoint in &endpoints {
                let mut buf = Vec::new();
                http::write_request(
                    &mut buf,
                    "POST",
                    endpoint,
                    "/ocsp",
                    &[("Content-Type", "application/ocsp-request")],
                    &req.der,
                );
                let mut conn = None;
                while acked.elapsed() < limit {
                    let (_, r) = exchange(&mut conn, endpoint, &buf, timeout).await;
                    if let Ok(resp) = r {
                        let want = OcspExpectation {
                            issuer,
                            cert_id: &req.cert_id,
                            expected: Expected::Revoked(code),
                            nonce: None,
                            now: now_unix(),
                        };
                        if check::check_ocsp(&resp.body, &want) == Verdict::Ok {
                            continue 'endpoints;
                        }
                        stale += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                shared.record_visibility(None, stale);
                return;
            }
            shared.record_visibility(Some(acked.elapsed()), stale);
        });
    }
}

/// Runs the plan. `progress` is called about once a second with (elapsed, planned total).
pub async fn run(
    plan: &Plan,
    targets: Targets,
    ctx: Arc<Context>,
    mut progress: impl FnMut(&Shared, Duration, Duration) + Send,
) -> RunOutput {
    let start = Instant::now();
    let total = plan.warmup + plan.duration;
    let end = start + total;
    let shared = Arc::new(Shared::new(start));
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = plan
        .rate
        .map(|r| Pacer::start(start, end, r, Arc::clone(&stop)));
    let engine = Arc::new(Engine {
        plan: plan.clone(),
        targets,
        ctx,
        shared: Arc::clone(&shared),
        end,
        stop: Arc::clone(&stop),
        pacer,
        probes: Arc::new(tokio::sync::Semaphore::new(256)),
    });
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let mut clients = Vec::with_capacity(plan.connections);
    for id in 0..plan.connections {
        clients.push(tokio::spawn(Arc::clone(&engine).run_client(id)));
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                progress(&shared, start.elapsed(), total);
                if Instant::now() >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
    }
    let mut recorder = Recorder::new(start + plan.warmup);
    for c in clients {
        if let Ok(r) = c.await {
            recorder.absorb(r);
        }
    }
    let finished = Instant::now();
    // Let visibility probes finish (bounded by their own limit).
    let _ = tokio::time::timeout(
        plan.probe_timeout + Duration::from_secs(1),
        engine.probes.acquire_many(256),
    )
    .await;
    let measured = finished
        .saturating_duration_since(start + plan.warmup)
        .as_secs_f64();
    RunOutput {
        recorder,
        shared,
        measured_seconds: measured,
        interrupted: stop.load(Ordering::Relaxed),
    }
}
