//! The publication workers: one per configured sink, draining that sink's durable queue
//! ([`crate::store::queue`]) with retries and backoff.
//!
//! [`Publication`] subscribes to the CRL publication event only to wake the workers: the queue
//! entries themselves were written in the batch that made each CRL current. A worker round
//! reads the sink's queue, keeps for each (CA, kind) only the newest CRL number (an older CRL
//! is never worth publishing once a newer one is current), hands it to the sink, and removes
//! every entry of that (CA, kind) up to that number once the sink confirmed. On failure the
//! worker waits (1 s, doubling up to [`MAX_BACKOFF`]) and tries again; nothing is lost, since
//! entries stay in the store until confirmed, across restarts and crashes.
//!
//! At start-up each sink is also handed the CRLs current then (a sink added to the
//! configuration catches up; one that already holds them is left alone).
//!
//! Metrics, by `sink` (and `ca`): `vigie_publish_queue_depth`,
//! `vigie_publish_last_success_timestamp_seconds`, `vigie_publish_failures_total`, and
//! `vigie_publish_latency_seconds` (CRL made current → confirmed by the sink). A sink still
//! behind a CRL whose nextUpdate has passed — relying parties that read it hold an expired
//! CRL — is logged as an error. `/readyz` reports each sink ([`Publication::status`]) but does
//! not turn unready for a lagging sink: serving matters more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use super::{Error, Item, Outcome, Sink, SinkConfig};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crl::announce::Subscriber;
use crate::crl::{PublishedCrl, Publisher};
use crate::model::{CaId, UnixTime};
use crate::store::Store;
use crate::store::queue::QueuedCrl;
use crate::tasks::Stop;

/// First wait after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts on a failing sink.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Even without an announcement, a worker looks at its queue this often.
const IDLE_CHECK: Duration = Duration::from_secs(60);
/// A lagging sink is logged as an error at most this often.
const LAG_LOG_EVERY: Duration = Duration::from_secs(60);

/// What a CA's entry in a sink is.
#[derive(Debug, Clone)]
struct CaTarget {
    id: CaId,
    ldap_dn: String,
    cert_der: Vec<u8>,
}

/// `/readyz`'s view of one sink.
#[derive(Debug, Clone, Serialize)]
pub struct SinkStatus {
    /// The sink's identity (`ldap:{url}`, `directory:{path}`): the `sink` metric label.
    pub sink: String,
    /// `ldap` or `directory`.
    pub kind: &'static str,
    /// CRLs waiting for it.
    pub queue_depth: usize,
    /// Last confirmed publication (RFC 3339), if any since start-up.
    pub last_success: Option<String>,
    /// The last failure, while it is not followed by a success.
    pub last_error: Option<String>,
    /// Whether CRLs are waiting and the last attempt failed.
    pub lagging: bool,
    /// Whether it is behind a CRL whose nextUpdate has passed.
    pub lagging_past_next_update: bool,
}

#[derive(Default)]
struct State {
    depth: usize,
    last_success: Option<UnixTime>,
    last_error: Option<String>,
    /// nextUpdate of the newest CRL the sink confirmed, per (CA, delta).
    confirmed: BTreeMap<(CaId, bool), UnixTime>,
    /// Oldest nextUpdate among the CRLs the sink is behind (those waiting, or the one it
    /// holds while a newer one waits).
    behind_until: Option<UnixTime>,
    last_lag_log: Option<Instant>,
}

struct SinkWorker {
    id: String,
    kind: &'static str,
    sink: Sink,
    wake: Notify,
    state: Mutex<State>,
}

/// The publication sinks and their workers.
pub struct Publication {
    sinks: Vec<SinkWorker>,
    cas: Vec<CaTarget>,
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    clock: SharedClock,
}

impl std::fmt::Debug for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // State is plain numbers and strings: still consistent after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Publication {
    /// The configured sinks, subscribed to `publisher`'s announcements. Drops the queues of
    /// sinks no longer configured, and queues the CRLs current now for every sink.
    pub fn new(
        config: &Config,
        registry: &crate::pki::CaRegistry,
        publisher: Arc<Publisher>,
        clock: SharedClock,
    ) -> Result<Arc<Publication>, Error> {
        let store = Arc::clone(publisher.store());
        let mut cas = Vec::with_capacity(config.cas.len());
        for c in &config.cas {
            let Some(ca) = registry.by_id(c.id.as_str()) else {
                continue;
            };
            let ldap_dn = match &c.ldap_dn {
                Some(dn) => dn.clone(),
                None => super::ldap::default_dn(&ca.subject_der)?,
            };
            cas.push(CaTarget {
                id: c.id.clone(),
                ldap_dn,
                cert_der: ca.cert_der.clone(),
            });
        }
        let sinks: Vec<SinkWorker> = config
            .publish
            .iter()
            .map(|c: &SinkConfig| SinkWorker {
                id: c.id(),
                kind: c.kind(),
                sink: Sink::new(c),
                wake: Notify::new(),
                state: Mutex::new(State::default()),
            })
            .collect();
        for old in store.queued_sinks()? {
            if !sinks.iter().any(|s| s.id == old) {
                let entries = store.queued(&old)?;
                tracing::warn!(sink = %old, dropped = entries.len(), "queue of a sink no longer configured dropped");
                store.dequeue(&entries)?;
            }
        }
        let now = clock.now();
        let mut catch_up = Vec::new();
        for sink in &sinks {
            let waiting = store.queued(&sink.id)?;
            for ca in &cas {
                let current = publisher.current(ca.id.as_str())?;
                for crl in [current.full, current.delta].into_iter().flatten() {
                    let q = queued(&sink.id, &crl, now);
                    if !waiting.iter().any(|w| w.key() == q.key()) {
                        catch_up.push(q);
                    }
                }
            }
        }
        store.enqueue(&catch_up)?;
        let publication = Arc::new(Publication {
            sinks,
            cas,
            store,
            publisher: Arc::clone(&publisher),
            clock,
        });
        publisher.subscribe(Arc::clone(&publication) as Arc<dyn Subscriber>);
        for (i, sink) in publication.sinks.iter().enumerate() {
            let depth = publication.store.queued(&sink.id)?.len();
            publication.set_depth(i, depth);
        }
        for s in &publication.sinks {
            tracing::info!(sink = %s.id, "CRL publication sink configured");
        }
        Ok(publication)
    }

    /// How many sinks are configured (one worker each: [`Publication::run`]).
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether no sink is configured.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Each sink's state, for `/readyz`.
    pub fn status(&self, now: UnixTime) -> Vec<SinkStatus> {
        self.sinks
            .iter()
            .map(|s| {
                let st = lock(&s.state);
                SinkStatus {
                    sink: s.id.clone(),
                    kind: s.kind,
                    queue_depth: st.depth,
                    last_success: st.last_success.map(|t| t.to_rfc3339()),
                    last_error: st.last_error.clone(),
                    lagging: st.depth > 0 && st.last_error.is_some(),
                    lagging_past_next_update: st.depth > 0
                        && st.behind_until.is_some_and(|t| t <= now),
                }
            })
            .collect()
    }

    fn set_depth(&self, sink: usize, depth: usize) {
        let s = &self.sinks[sink];
        lock(&s.state).depth = depth;
        metrics::gauge!(crate::metrics::PUBLISH_QUEUE_DEPTH, "sink" => s.id.clone())
            .set(depth as f64);
    }

    /// The worker of sink number `sink`: drains its queue until the service stops (a
    /// [`crate::tasks`] task).
    pub async fn run(self: Arc<Self>, sink: usize, mut stop: Stop) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let failed = match self.drain(sink, &stop).await {
                Ok(()) => {
                    backoff = MIN_BACKOFF;
                    false
                }
                Err(e) => {
                    self.failed(sink, &e);
                    true
                }
            };
            if stop.is_stopped() {
                return;
            }
            if failed {
                if stop.sleep(backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            } else {
                tokio::select! {
                    _ = self.sinks[sink].wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                    _ = stop.stopped() => return,
                }
            }
        }
    }

    fn failed(&self, sink: usize, e: &Error) {
        let s = &self.sinks[sink];
        let now = self.clock.now();
        let mut st = lock(&s.state);
        st.last_error = Some(e.to_string());
        let past = st.behind_until.is_some_and(|t| t <= now);
        let log_lag = past && st.last_lag_log.is_none_or(|t| t.elapsed() >= LAG_LOG_EVERY);
        if log_lag {
            st.last_lag_log = Some(Instant::now());
        }
        drop(st);
        if log_lag {
            tracing::error!(sink = %s.id, queue_depth = lock(&s.state).depth, error = %e,
                "publication sink lags past a CRL's nextUpdate: relying parties that read it hold an expired CRL");
        } else {
            tracing::warn!(sink = %s.id, error = %e, "CRL publication failed; will retry");
        }
    }

    /// One round: publishes the newest queued CRL of each (CA, kind), oldest first.
    async fn drain(&self, sink: usize, stop: &Stop) -> Result<(), Error> {
        let s = &self.sinks[sink];
        let store = Arc::clone(&self.store);
        let id = s.id.clone();
        let entries = tokio::task::spawn_blocking(move || store.queued(&id))
            .await
            .map_err(|e| Error::Io("queue read task".into(), std::io::Error::other(e)))??;
        self.set_depth(sink, entries.len());
        let mut groups: BTreeMap<(CaId, bool), Vec<QueuedCrl>> = BTreeMap::new();
        for e in entries {
            groups.entry((e.ca.clone(), e.delta)).or_default().push(e);
        }
        {
            let mut st = lock(&s.state);
            st.behind_until = groups
                .iter()
                .filter_map(|(key, g)| {
                    let oldest_waiting = g.iter().map(|e| e.next_update).min();
                    let held = st.confirmed.get(key).copied();
                    held.into_iter().chain(oldest_waiting).min()
                })
                .min();
        }
        for ((ca_id, _), group) in groups {
            if stop.is_stopped() {
                return Ok(());
            }
            let Some(newest) = group.iter().max_by_key(|e| e.number).cloned() else {
                continue;
            };
            let Some(ca) = self.cas.iter().find(|c| c.id == ca_id) else {
                // A CA no longer configured: nothing to publish it with.
                self.dequeue(sink, &group)?;
                continue;
            };
            let publisher = Arc::clone(&self.publisher);
            let number = newest.number;
            let wanted = ca_id.clone();
            let crl =
                tokio::task::spawn_blocking(move || publisher.by_number(wanted.as_str(), number))
                    .await
                    .map_err(|e| Error::Io("CRL read task".into(), std::io::Error::other(e)))??;
            let Some(crl) = crl else {
                tracing::error!(sink = %s.id, ca = %ca_id, number, "queued CRL not found in the store; dropped");
                self.dequeue(sink, &group)?;
                continue;
            };
            self.publish_one(sink, ca, &crl, &newest, &group).await?;
        }
        Ok(())
    }

    async fn publish_one(
        &self,
        sink: usize,
        ca: &CaTarget,
        crl: &Arc<PublishedCrl>,
        newest: &QueuedCrl,
        group: &[QueuedCrl],
    ) -> Result<(), Error> {
        let s = &self.sinks[sink];
        let item = Item {
            ca: &ca.id,
            ldap_dn: &ca.ldap_dn,
            ca_cert_der: &ca.cert_der,
            crl,
        };
        let result = s.sink.put(&item).await;
        let labels = [("sink", s.id.clone()), ("ca", ca.id.to_string())];
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                metrics::counter!(crate::metrics::PUBLISH_FAILURES, &labels).increment(1);
                return Err(e);
            }
        };
        let now = self.clock.now();
        match &outcome {
            Outcome::Written => {
                let latency = (now.0 - newest.enqueued_at.0).max(0);
                metrics::histogram!(crate::metrics::PUBLISH_LATENCY_SECONDS, &labels)
                    .record(latency as f64);
                tracing::info!(sink = %s.id, ca = %ca.id, kind = crl.kind().label(),
                    number = crl.record.number, "CRL published to sink");
            }
            Outcome::AlreadyHeld(held) => {
                tracing::info!(sink = %s.id, ca = %ca.id, kind = crl.kind().label(),
                    number = crl.record.number, held = %hex::encode(held),
                    "sink already holds this CRL or a newer one");
            }
        }
        metrics::gauge!(crate::metrics::PUBLISH_LAST_SUCCESS, &labels).set(now.0 as f64);
        {
            let mut st = lock(&s.state);
            st.last_success = Some(now);
            st.last_error = None;
            st.confirmed
                .insert((ca.id.clone(), newest.delta), crl.record.next_update);
        }
        let done: Vec<QueuedCrl> = group
            .iter()
            .filter(|e| e.number <= newest.number)
            .cloned()
            .collect();
        self.dequeue(sink, &done)
    }

    fn dequeue(&self, sink: usize, entries: &[QueuedCrl]) -> Result<(), Error> {
        self.store.dequeue(entries)?;
        let depth = {
            let st = lock(&self.sinks[sink].state);
            st.depth.saturating_sub(entries.len())
        };
        self.set_depth(sink, depth);
        Ok(())
    }
}

fn queued(sink: &str, crl: &PublishedCrl, now: UnixTime) -> QueuedCrl {
    QueuedCrl {
        sink: sink.to_owned(),
        ca: crl.ca.clone(),
        delta: crl.kind() == crate::crl::CrlKind::Delta,
        number: crl.record.number,
        enqueued_at: now,
        next_update: crl.record.next_update,
    }
}

impl Subscriber for Publication {
    fn announce(&self, _crl: &Arc<PublishedCrl>) {
        // The CRL is already in every sink's queue (same batch): wake the workers.
        for s in &self.sinks {
            s.wake.notify_one();
            let mut st = lock(&s.state);
            st.depth += 1;
            metrics::gauge!(crate::metrics::PUBLISH_QUEUE_DEPTH, "sink" => s.id.clone())
                .set(st.depth as f64);
        }
    }
}
