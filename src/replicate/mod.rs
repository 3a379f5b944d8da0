//! Several nodes over NATS JetStream: one writer, any number of responder replicas, each with its
//! own RocksDB store. Without `[replication]` in the configuration vigie runs alone and none of
//! this starts.
//!
//! - [`writer`]: the writer's outbox publisher. The local event log is the outbox: every event,
//!   once durable locally, is published to the stream — the events a CA committed while its
//!   previous message awaited acknowledgement in one message — with `Nats-Msg-Id =
//!   <ca>/<sequence of the last event>` (JetStream drops duplicates) and
//!   `Nats-Expected-Last-Subject-Sequence` (JetStream refuses a message from a writer whose
//!   view of the stream is not the stream's: fencing). Every CRL the
//!   writer publishes follows, as bytes. A heartbeat goes out every second.
//! - [`replica`]: a durable consumer per replica (`node_id`) that applies each message once,
//!   writing the applied stream position in the same RocksDB batch as the change; events keep
//!   their origin sequence number and time ([`crate::store::Tx::apply_event`]).
//! - [`wire`]: subjects and message formats; [`config`]: the `[replication]` table.
//! - This module: [`Replication`], the state the HTTP layer consults (may this node write? is
//!   it stale? have the stream's servers acknowledged these events?), connecting, and
//!   [`start`]/[`Running::stop`].
//!
//! A replica refuses every write of the ingest API (403). It answers `tryLater` to OCSP
//! requests, and `/readyz` says 503 `stale`, while it has had no contact with the stream (the
//! writer's heartbeat or a message) for longer than `max_staleness`, and until it has applied
//! what the writer had published when contact came back.
//!
//! Only features of nats-server 2.9 are used (streams, pull consumers, message ids, expected
//! last subject sequence, direct message get by sequence or subject).

pub mod config;
pub mod replica;
pub mod wire;
pub mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::crl::Publisher;
use crate::model::CaId;
use crate::store::Store;

pub use config::{AckMode, ReplicationConfig, Role};

/// `meta` name (store-wide) of the last stream sequence applied (replica) or acknowledged
/// (writer): where to resume.
pub const APPLIED: &str = "repl_applied";
/// `meta` name of the stream sequence of the last writer claim applied.
pub const LAST_CLAIM: &str = "repl_last_claim";
/// `meta` name of this store's own claim, when it was a writer's.
pub const SELF_CLAIM: &str = "repl_self_claim";

/// Replication failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// NATS could not be reached or refused the connection.
    #[error("NATS {0}")]
    Connect(String),
    /// A JetStream request failed (stream or consumer management, message get).
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The stream keeps messages for less time than `min_retention`.
    #[error(
        "stream {stream} keeps messages for {max_age:?}, less than [replication] min_retention {min:?}: backups older than that could not catch up"
    )]
    Retention {
        /// The stream.
        stream: String,
        /// Its max_age.
        max_age: Duration,
        /// `min_retention`.
        min: Duration,
    },
    /// Another writer holds the stream.
    #[error("fenced: {0}")]
    Fenced(String),
    /// A message of the stream does not decode.
    #[error("stream message {seq} does not decode: {message}")]
    Wire {
        /// Its stream sequence.
        seq: u64,
        /// Why.
        message: String,
    },
    /// This replica's position is older than the stream's first message.
    #[error(
        "applied position {applied} is behind the stream's first message {first}: restore a recent backup"
    )]
    Behind {
        /// Last applied.
        applied: u64,
        /// First message kept by the stream.
        first: u64,
    },
    /// The stream did not acknowledge the events in time.
    #[error("the replication stream has not acknowledged event {seq} of CA {ca} within {waited:?}")]
    NotAcknowledged {
        /// The CA.
        ca: CaId,
        /// The event.
        seq: u64,
        /// How long the answer waited.
        waited: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Storing a CRL failed.
    #[error(transparent)]
    Crl(#[from] crate::crl::Error),
}

/// Why this node refuses a write of the ingest API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A replica never writes (403).
    Replica,
    /// A writer that another writer fenced off, or that has not claimed the stream (503).
    NotWriter(String),
}

/// What the HTTP layer and the background tasks share. See the module documentation.
#[derive(Debug)]
pub struct Replication {
    config: ReplicationConfig,
    base: Instant,
    /// Milliseconds since `base` + 1 of the last contact; 0: never.
    last_contact: AtomicU64,
    /// Last stream sequence applied (replica) or acknowledged (writer).
    applied: AtomicU64,
    /// The writer's last acknowledged sequence, from its latest heartbeat.
    writer_last: AtomicU64,
    stale: AtomicBool,
    /// Sequence to reach to be fresh again; `u64::MAX`: waiting for a heartbeat.
    catch_up_target: AtomicU64,
    /// A lasting problem (fenced, behind the stream's retention, log gap).
    problem: Mutex<Option<String>>,
    /// Writer: claimed the stream and not fenced.
    writing: AtomicBool,
    /// Writer: last event sequence on the stream, per CA.
    acked: tokio::sync::watch::Sender<HashMap<CaId, u64>>,
}

impl Replication {
    /// The state of a node starting with `config`.
    pub fn new(config: ReplicationConfig) -> Replication {
        Replication {
            config,
            base: Instant::now(),
            last_contact: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            writer_last: AtomicU64::new(0),
            stale: AtomicBool::new(true),
            catch_up_target: AtomicU64::new(u64::MAX),
            problem: Mutex::new(None),
            writing: AtomicBool::new(false),
            acked: tokio::sync::watch::Sender::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// Whether an ingest write must be refused, and why.
    pub fn refusal(&self) -> Option<Refusal> {
        match self.config.role {
            Role::Replica => Some(Refusal::Replica),
            Role::Writer if self.writing.load(Ordering::Acquire) => None,
            Role::Writer => {
                Some(Refusal::NotWriter(self.problem().unwrap_or_else(|| {
                    "this writer has not claimed the stream".into()
                })))
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// Records contact with the stream now.
    pub fn touch(&self) {
        self.last_contact.store(self.now_ms(), Ordering::Release);
    }

    /// Time since the last contact with the stream (`None`: never had any).
    pub fn since_contact(&self) -> Option<Duration> {
        match self.last_contact.load(Ordering::Acquire) {
            0 => None,
            t => Some(Duration::from_millis(self.now_ms().saturating_sub(t))),
        }
    }

    /// A heartbeat from the writer saying it has published up to `last_sequence`.
    pub fn on_heartbeat(&self, last_sequence: u64) {
        self.touch();
        self.writer_last.store(last_sequence, Ordering::Release);
        let _ = self.catch_up_target.compare_exchange(
            u64::MAX,
            last_sequence,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.check_caught_up();
    }

    /// A message at `seq` was applied (or, on the writer, acknowledged).
    pub fn on_applied(&self, seq: u64) {
        self.touch();
        self.applied.fetch_max(seq, Ordering::AcqRel);
        self.check_caught_up();
    }

    fn check_caught_up(&self) {
        if self.stale.load(Ordering::Acquire)
            && self.applied.load(Ordering::Acquire) >= self.catch_up_target.load(Ordering::Acquire)
            && self.problem().is_none()
        {
            self.stale.store(false, Ordering::Release);
            tracing::info!(
                applied = self.applied.load(Ordering::Acquire),
                "replica caught up with the stream"
            );
        }
    }

    /// Whether a replica must not answer from its store (no recent contact, or not caught up
    /// since contact came back). A writer is never stale.
    pub fn is_stale(&self) -> bool {
        if self.config.role == Role::Writer {
            return false;
        }
        if self.stale.load(Ordering::Acquire) {
            return true;
        }
        let lost = self
            .since_contact()
            .is_none_or(|d| d > self.config.max_staleness);
        if lost {
            self.catch_up_target.store(u64::MAX, Ordering::Release);
            if !self.stale.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    max_staleness = ?self.config.max_staleness,
                    "no contact with the replication stream: answering tryLater"
                );
            }
        }
        lost
    }

    /// Last stream sequence applied (replica) or acknowledged (writer).
    pub fn applied_sequence(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// A lasting problem, if any.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a lasting problem (the node stays stale / stops writing).
    pub fn set_problem(&self, problem: String) {
        tracing::error!(%problem, "replication stopped");
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(problem);
        self.writing.store(false, Ordering::Release);
        self.stale.store(true, Ordering::Release);
    }

    /// Why `/readyz` must say 503, if it must.
    pub fn readiness_problem(&self) -> Option<String> {
        if let Some(p) = self.problem() {
            return Some(p);
        }
        if self.is_stale() {
            return Some(match self.since_contact() {
                Some(d) if d > self.config.max_staleness => format!(
                    "stale: no contact with the replication stream for {}s",
                    d.as_secs()
                ),
                None => "stale: no contact with the replication stream yet".into(),
                Some(_) => format!(
                    "stale: catching up (applied {}, writer at {})",
                    self.applied.load(Ordering::Acquire),
                    self.writer_last.load(Ordering::Acquire)
                ),
            });
        }
        None
    }

    /// What `/readyz` shows about replication.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.config.role.name(),
            "node_id": self.config.node_id,
            "state": if self.problem().is_some() { "failed" } else if self.is_stale() { "stale" } else { "current" },
            "applied_sequence": self.applied.load(Ordering::Acquire),
            "writer_sequence": self.writer_last.load(Ordering::Acquire),
            "last_contact_seconds": self.since_contact().map(|d| d.as_secs_f64()),
        })
    }

    /// Updates the replication gauges.
    pub fn record_metrics(&self) {
        let applied = self.applied.load(Ordering::Acquire);
        let writer = self.writer_last.load(Ordering::Acquire).max(applied);
        let lag = match self.config.role {
            Role::Writer => 0,
            Role::Replica => writer - applied,
        };
        metrics::gauge!(crate::metrics::REPLICATION_LAG_EVENTS).set(lag as f64);
        metrics::gauge!(crate::metrics::REPLICATION_APPLIED_SEQUENCE).set(applied as f64);
        metrics::gauge!(crate::metrics::REPLICATION_LAST_CONTACT_SECONDS).set(
            self.since_contact()
                .map_or(f64::INFINITY, |d| d.as_secs_f64()),
        );
    }

    /// Writer: the stream holds the CA's events up to `seq`.
    pub(crate) fn set_acked(&self, ca: &CaId, seq: u64) {
        self.acked.send_if_modified(|m| {
            let e = m.entry(ca.clone()).or_insert(0);
            if *e < seq {
                *e = seq;
                true
            } else {
                false
            }
        });
    }

    /// Writer: the CA's last event known to be on the stream.
    pub(crate) fn acked_of(&self, ca: &CaId) -> u64 {
        self.acked.borrow().get(ca).copied().unwrap_or(0)
    }

    pub(crate) fn set_writing(&self, writing: bool) {
        self.writing.store(writing, Ordering::Release);
    }

    /// Writer with `ack = "stream"`: waits until the stream holds each CA's events up to the
    /// given sequence number, at most `max_staleness`. With `ack = "local"` returns at once.
    pub async fn wait_acknowledged(&self, targets: &[(CaId, u64)]) -> Result<(), Error> {
        if self.config.ack == AckMode::Local || targets.is_empty() {
            return Ok(());
        }
        let waited = self.config.max_staleness;
        let mut rx = self.acked.subscribe();
        let done = |m: &HashMap<CaId, u64>| {
            targets
                .iter()
                .find(|(ca, seq)| m.get(ca).copied().unwrap_or(0) < *seq)
                .cloned()
        };
        let result = tokio::time::timeout(waited, async {
            loop {
                if done(&rx.borrow_and_update()).is_none() {
                    return true;
                }
                if let Some(p) = self.problem() {
                    tracing::warn!(%p, "ingest answered 503: replication stopped");
                    return false;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        match result {
            Ok(true) => Ok(()),
            _ => {
                let (ca, seq) = done(&rx.borrow()).unwrap_or((targets[0].0.clone(), targets[0].1));
                Err(Error::NotAcknowledged { ca, seq, waited })
            }
        }
    }
}

/// Connects to NATS with the configured credentials. With `retry`, returns at once and keeps
/// trying in the background (a replica starts and answers tryLater while NATS is away).
pub async fn connect(config: &ReplicationConfig, retry: bool) -> Result<async_nats::Client, Error> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(format!("vigie-{}-{}", config.role.name(), config.node_id))
        .connection_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_secs(5))
        .max_reconnects(None);
    if let Some(creds) = &config.auth.creds_file {
        opts = opts
            .credentials_file(creds)
            .await
            .map_err(|e| Error::Connect(format!("credentials {}: {e}", creds.display())))?;
    }
    if let Some(token) = &config.auth.token {
        opts = opts.token(token.clone());
    }
    if let Some(ca) = &config.auth.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    }
    if retry {
        opts = opts.retry_on_initial_connect();
    }
    opts.connect(config.nats.clone())
        .await
        .map_err(|e| Error::Connect(format!("{:?}: {e}", config.nats)))
}

/// The JetStream context vigie uses: requests and publication acknowledgements time out after
/// a few seconds, so a stream that does not answer is noticed quickly.
pub fn jetstream(client: async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::context::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .ack_timeout(Duration::from_secs(5))
        .build(client)
}

/// The background tasks of replication.
#[derive(Debug)]
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the tasks (publication in progress finishes its round).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Starts this node's part. A writer first catches up with the stream and claims it (failing if
/// another writer has claimed it since this store last saw it); a replica starts its consumer in
/// the background.
pub async fn start(
    config: ReplicationConfig,
    cas: Vec<CaId>,
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    clock: SharedClock,
) -> Result<(Arc<Replication>, Running), Error> {
    let shared = Arc::new(Replication::new(config.clone()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    match config.role {
        Role::Writer => {
            let client = connect(&config, false).await?;
            let outbox =
                writer::Outbox::prepare(Arc::clone(&shared), client, cas, store, publisher, clock)
                    .await?;
            tasks.extend(outbox.spawn(stop_rx));
        }
        Role::Replica => {
            let client = connect(&config, true).await?;
            tasks.extend(replica::spawn(
                Arc::clone(&shared),
                client,
                cas,
                store,
                publisher,
                clock,
                stop_rx,
            ));
        }
    }
    let metrics_shared = Arc::clone(&shared);
    let mut metrics_stop = stop.subscribe();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let _ = metrics_shared.is_stale();
                    metrics_shared.record_metrics();
                }
                _ = metrics_stop.changed() => return,
            }
        }
    }));
    Ok((shared, Running { stop, tasks }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(role: Role) -> ReplicationConfig {
        ReplicationConfig {
            role,
            node_id: "n1".into(),
            nats: vec!["nats://127.0.0.1:1".into()],
            stream: "VIGIE".into(),
            stream_replicas: 1,
            ack: AckMode::Stream,
            max_staleness: Duration::from_secs(2),
            min_retention: Duration::from_secs(60),
            auth: config::NatsAuth {
                creds_file: None,
                token: None,
                tls_ca: None,
            },
        }
    }

    #[test]
    fn a_replica_is_stale_until_it_reaches_what_the_writer_announced() {
        let r = Replication::new(config(Role::Replica));
        assert!(r.is_stale(), "no contact yet");
        assert_eq!(r.refusal(), Some(Refusal::Replica));
        r.on_applied(5);
        assert!(r.is_stale(), "no heartbeat yet");
        r.on_heartbeat(8);
        assert!(r.is_stale(), "behind the writer");
        r.on_applied(8);
        assert!(!r.is_stale());
        assert!(r.readiness_problem().is_none());
    }

    #[tokio::test]
    async fn waiting_for_acknowledgements_times_out_and_succeeds() {
        let r = Replication::new(config(Role::Writer));
        let ca = CaId::new("a").expect("valid");
        assert!(!r.is_stale(), "a writer is never stale");
        let target = [(ca.clone(), 2)];
        let waiting = r.wait_acknowledged(&target);
        r.set_acked(&ca, 2);
        waiting.await.expect("acknowledged");
        let started = Instant::now();
        let err = r
            .wait_acknowledged(&[(ca.clone(), 3)])
            .await
            .expect_err("never acknowledged");
        assert!(
            matches!(err, Error::NotAcknowledged { seq: 3, .. }),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
    }
}
