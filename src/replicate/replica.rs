//! The replica's side: a durable pull consumer named after `node_id`, created at the position
//! after the last message applied, and an [`Applier`] that applies each message once:
//!
//! - events go through [`crate::store::Tx::apply_event`] (origin sequence and time kept), the
//!   messages of one pull batch in one transaction, which also writes the new stream position
//!   ([`super::APPLIED`]) — a crash leaves either both or neither;
//! - CRL pieces are assembled in memory; the last one stores the CRL
//!   ([`crate::crl::Publisher::adopt`]) with the position in the same batch. The position does
//!   not move over pieces before the last, so a restart re-reads the CRL from its first piece;
//! - a writer's claim is recorded; a claim by another node on a store that was itself a
//!   writer's is refused (that store may hold events the stream never had).
//!
//! Stream sequences are contiguous (the stream holds only the writer's messages); a hole means
//! the stream dropped messages this replica had not applied (retention), and the replica stops
//! with a problem `/readyz` shows. A heartbeat subscription feeds the staleness clock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use super::wire::{self, Heartbeat, StreamMessage, Subjects};
use super::{APPLIED, Error, LAST_CLAIM, Replication, SELF_CLAIM};
use crate::clock::SharedClock;
use crate::crl::{CrlRecord, Publisher};
use crate::model::{CaId, Event};
use crate::store::Store;

/// Most messages applied in one transaction.
const BATCH: usize = 1000;

/// A CRL being assembled from its pieces.
struct Assembly {
    ca: CaId,
    record: CrlRecord,
    next_piece: u32,
    der: Vec<u8>,
}

/// Applies stream messages to the store. Used by replicas, and by a writer catching up with
/// the stream before it claims it.
pub struct Applier {
    shared: Arc<Replication>,
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    clock: SharedClock,
    cas: Vec<CaId>,
    assembly: Option<Assembly>,
    /// Last stream sequence processed (pieces of an incomplete CRL included).
    processed: u64,
}

fn be(bytes: Option<Vec<u8>>) -> u64 {
    bytes
        .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

impl Applier {
    /// An applier over this node's store.
    pub fn new(
        shared: Arc<Replication>,
        store: Arc<Store>,
        publisher: Arc<Publisher>,
        clock: SharedClock,
        cas: Vec<CaId>,
    ) -> Applier {
        Applier {
            shared,
            store,
            publisher,
            clock,
            cas,
            assembly: None,
            processed: 0,
        }
    }

    /// The last stream sequence durably applied.
    pub fn applied(&self) -> Result<u64, Error> {
        Ok(be(self.store.global_meta(APPLIED)?))
    }

    /// Applies consecutive messages `(stream sequence, payload)`. Messages at or below the
    /// position already processed are skipped; a hole is an error ([`Error::Behind`]).
    pub fn apply(&mut self, messages: &[(u64, Bytes)]) -> Result<(), Error> {
        let durable = self.applied()?;
        self.processed = self.processed.max(durable);
        let mut events: Vec<(CaId, Event)> = Vec::new();
        let mut events_end = 0;
        for (seq, payload) in messages {
            let seq = *seq;
            if seq <= self.processed {
                continue;
            }
            if seq != self.processed + 1 {
                if events_end > 0 {
                    self.commit_events(&mut events, events_end)?;
                }
                return Err(Error::Behind {
                    applied: self.processed,
                    first: seq,
                });
            }
            let message: StreamMessage =
                wire::decode(payload).map_err(|message| Error::Wire { seq, message })?;
            match message {
                StreamMessage::Event { ca, event } => {
                    if self.cas.contains(&ca) {
                        events.push((ca, event));
                    }
                    events_end = seq;
                }
                StreamMessage::Events { ca, events: more } => {
                    if self.cas.contains(&ca) {
                        events.extend(more.into_iter().map(|e| (ca.clone(), e)));
                    }
                    events_end = seq;
                }
                other => {
                    if events_end > 0 {
                        self.commit_events(&mut events, events_end)?;
                        events_end = 0;
                    }
                    self.apply_other(seq, other)?;
                    self.shared.on_applied(seq);
                }
            }
            self.processed = seq;
        }
        if events_end > 0 {
            self.commit_events(&mut events, events_end)?;
        }
        Ok(())
    }

    fn commit_events(&mut self, events: &mut Vec<(CaId, Event)>, end: u64) -> Result<(), Error> {
        let mut cas: Vec<CaId> = events.iter().map(|(ca, _)| ca.clone()).collect();
        cas.sort();
        cas.dedup();
        let position = end.to_be_bytes();
        self.store
            .transact(&cas, self.clock.now(), |tx| -> Result<(), Error> {
                for (ca, event) in events.iter() {
                    tx.apply_event(ca, event)?;
                }
                tx.put_global_meta(APPLIED, &position);
                Ok(())
            })?;
        events.clear();
        self.shared.on_applied(end);
        Ok(())
    }

    /// Applies a claim or a CRL piece; returns whether the position was written.
    fn apply_other(&mut self, seq: u64, message: StreamMessage) -> Result<bool, Error> {
        let position = seq.to_be_bytes();
        match message {
            StreamMessage::Event { .. } | StreamMessage::Events { .. } => Ok(false),
            StreamMessage::Fence { .. } => {
                self.store.put_global_meta(&[(APPLIED, &position)])?;
                Ok(true)
            }
            StreamMessage::Claim { node_id, at } => {
                let own = be(self.store.global_meta(SELF_CLAIM)?);
                if own != 0 && node_id != self.shared.config().node_id {
                    return Err(Error::Fenced(format!(
                        "writer {node_id:?} claimed the stream at {at} (message {seq}) after this store's own writer claim (message {own}): this store may hold events the stream does not; rebuild this node from a backup of the current writer's line"
                    )));
                }
                tracing::info!(writer = %node_id, %at, seq, "writer claim applied");
                self.store
                    .put_global_meta(&[(APPLIED, &position), (LAST_CLAIM, &position)])?;
                Ok(true)
            }
            StreamMessage::CrlPiece {
                ca,
                record,
                piece,
                pieces,
                bytes,
            } => {
                if piece == 0 {
                    self.assembly = Some(Assembly {
                        ca: ca.clone(),
                        record: record.clone(),
                        next_piece: 0,
                        der: Vec::with_capacity(usize::try_from(record.bytes).unwrap_or(0)),
                    });
                }
                let fits = self.assembly.as_ref().is_some_and(|a| {
                    a.ca == ca && a.record.number == record.number && a.next_piece == piece
                });
                if !fits {
                    // A piece of a CRL whose start was torn off (the writer re-publishes it
                    // whole): nothing to keep.
                    self.assembly = None;
                    return Ok(false);
                }
                let Some(a) = self.assembly.as_mut() else {
                    return Ok(false);
                };
                a.der.extend_from_slice(&bytes);
                a.next_piece += 1;
                if a.next_piece < pieces {
                    return Ok(false);
                }
                let Some(a) = self.assembly.take() else {
                    return Ok(false);
                };
                if self.cas.contains(&a.ca) {
                    self.publisher.adopt(
                        &a.ca,
                        a.record,
                        Bytes::from(a.der),
                        &[(APPLIED, &position)],
                    )?;
                } else {
                    self.store.put_global_meta(&[(APPLIED, &position)])?;
                }
                Ok(true)
            }
        }
    }
}

fn lock(a: &Mutex<Applier>) -> MutexGuard<'_, Applier> {
    // The applier's state in memory is only a CRL being assembled: usable after a panic.
    a.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the replica's tasks: the consumer and the heartbeat listener.
pub fn spawn(
    shared: Arc<Replication>,
    client: async_nats::Client,
    cas: Vec<CaId>,
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    clock: SharedClock,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let subjects = Subjects::new(&shared.config().stream);
    let heartbeat = tokio::spawn(listen_heartbeats(
        Arc::clone(&shared),
        client.clone(),
        subjects.clone(),
        stop.clone(),
    ));
    let applier = Arc::new(Mutex::new(Applier::new(
        Arc::clone(&shared),
        store,
        publisher,
        clock,
        cas,
    )));
    let consumer = tokio::spawn(consume(shared, client, subjects, applier, stop));
    vec![heartbeat, consumer]
}

async fn listen_heartbeats(
    shared: Arc<Replication>,
    client: async_nats::Client,
    subjects: Subjects,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let mut sub = match client.subscribe(subjects.heartbeat()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat subscription failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                m = sub.next() => match m {
                    Some(m) => match wire::decode::<Heartbeat>(&m.payload) {
                        Ok(h) => shared.on_heartbeat(h.last_sequence),
                        Err(e) => tracing::warn!(error = %e, "heartbeat does not decode"),
                    },
                    None => break,
                },
                _ = stop.changed() => return,
            }
        }
    }
}

async fn consume(
    shared: Arc<Replication>,
    client: async_nats::Client,
    subjects: Subjects,
    applier: Arc<Mutex<Applier>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let js = super::jetstream(client);
    loop {
        if *stop.borrow() {
            return;
        }
        match consume_once(&shared, &js, &subjects, &applier, &mut stop).await {
            Ok(()) => return,
            Err(e @ (Error::Fenced(_) | Error::Wire { .. } | Error::Store(_) | Error::Crl(_))) => {
                shared.set_problem(e.to_string());
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "replication consumer interrupted; starting again");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

async fn consume_once(
    shared: &Replication,
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    applier: &Arc<Mutex<Applier>>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), Error> {
    let js_err = |e: &dyn std::fmt::Display| Error::JetStream(e.to_string());
    let stream = js
        .get_stream(subjects.stream())
        .await
        .map_err(|e| js_err(&e))?;
    let info = stream.get_info().await.map_err(|e| js_err(&e))?;
    let applied = {
        let mut a = lock(applier);
        // Assembled pieces are lost with the consumer: start again from the position.
        a.assembly = None;
        a.processed = 0;
        a.applied()?
    };
    if info.state.messages > 0 && applied + 1 < info.state.first_sequence {
        let e = Error::Behind {
            applied,
            first: info.state.first_sequence,
        };
        shared.set_problem(e.to_string());
        return Err(e);
    }
    let name = shared.config().node_id.clone();
    let _ = stream.delete_consumer(&name).await;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            description: Some("vigie replica".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: applied + 1,
            },
            ack_policy: AckPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| js_err(&e))?;
    tracing::info!(consumer = %name, from = applied + 1, "replication consumer started");
    shared.touch();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .heartbeat(Duration::from_secs(1))
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| js_err(&e))?;
    let mut last_progress = std::time::Instant::now();
    loop {
        let first = tokio::select! {
            m = messages.next() => m,
            _ = stop.changed() => return Ok(()),
        };
        let Some(first) = first else {
            return Err(Error::JetStream(
                "the consumer's message stream ended".into(),
            ));
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match messages.next().now_or_never() {
                Some(Some(m)) => batch.push(m),
                _ => break,
            }
        }
        let mut received = Vec::with_capacity(batch.len());
        let mut last = None;
        for m in batch {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    // Missed heartbeats while the servers are away: keep waiting a while,
                    // then start a consumer again (its leader may have moved).
                    tracing::debug!(error = %e, "replication pull");
                    if last_progress.elapsed() > Duration::from_secs(5) {
                        return Err(Error::JetStream(format!("pull failing: {e}")));
                    }
                    continue;
                }
            };
            let seq = m.info().map_err(|e| js_err(&e))?.stream_sequence;
            received.push((seq, m.payload.clone()));
            last = Some(m);
            last_progress = std::time::Instant::now();
        }
        if received.is_empty() {
            continue;
        }
        // RocksDB writes are synchronous: off the reactor.
        let a = Arc::clone(applier);
        let result = tokio::task::spawn_blocking(move || lock(&a).apply(&received))
            .await
            .map_err(|e| Error::JetStream(format!("applying task: {e}")))?;
        match result {
            Ok(()) => {}
            Err(Error::Behind { .. }) => {
                // A hole in what was delivered: start a consumer again from the position
                // (which checks the stream's retention).
                return Err(Error::JetStream("a hole in the delivered messages".into()));
            }
            Err(e) => return Err(e),
        }
        if let Some(m) = last {
            let _ = m.ack().await;
        }
    }
}
