//! The writer's outbox publisher. The local event log is the outbox: nothing is queued in
//! memory that the store does not already hold, so a crash loses nothing acknowledged.
//!
//! Starting ([`Outbox::prepare`]):
//! 1. the stream is created if missing (`stream_replicas` copies, `max_age = min_retention`,
//!    file storage, two-minute duplicate window); one that keeps messages for less than
//!    `min_retention` is refused;
//! 2. the store catches up with the stream from its applied position (a promoted replica may
//!    be behind; an old writer finds here the claim of the writer that replaced it, and stops:
//!    fencing);
//! 3. the writer claims the stream: a `Claim` on `S.writer` with the expected last subject
//!    sequence of the last claim it applied — of two nodes promoted at once, one wins;
//! 4. it fences every subject of every CA with a `Fence` message (expected last subject
//!    sequence = what it read), so a previous writer still running is refused on its next
//!    message, and catches up once more with what such a writer may have slipped in between.
//!
//! Publishing (a task): each round reads what the stream lacks — events after the CA's last
//! event on the stream, then CRLs after the last complete one, whose events are all on the
//! stream — and publishes it pipelined, each message with `Nats-Msg-Id` and the
//! `Nats-Expected-Last-Subject-Sequence` it predicts (messages of one connection are stored in
//! the order sent, so the stream sequence of each is known in advance). Any failure or surprise
//! (timeout, refused expectation, duplicate) makes the next round read the stream's state again
//! ([`Outbox::resync`]): the stream, not memory, says what was published. A claim by another
//! node found there stops the writer: it refuses writes from then on. The heartbeat task
//! publishes, every second, the last sequence acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, StorageType};
use bytes::Bytes;

use super::replica::Applier;
use super::wire::{self, CRL_PIECE_BYTES, Heartbeat, StreamMessage, Subjects};
use super::{APPLIED, Error, LAST_CLAIM, Replication, SELF_CLAIM};
use crate::clock::SharedClock;
use crate::crl::Publisher;
use crate::model::CaId;
use crate::store::Store;

/// Most messages published in one round.
const ROUND: usize = 2000;

/// How long the writer keeps trying to reach JetStream at start-up.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// What the stream holds, as last read from it and advanced by acknowledged publications.
#[derive(Debug, Default)]
struct Synced {
    /// Predicted stream sequence of the next message.
    next_seq: u64,
    /// Stream sequence of the last message per subject.
    subject_last: HashMap<String, u64>,
    /// Last event sequence on the stream, per CA.
    events: HashMap<CaId, u64>,
    /// Last CRL number complete on the stream, per CA.
    crls: HashMap<CaId, u64>,
}

enum Effect {
    Event(CaId, u64),
    Crl(CaId, u64),
    None,
}

struct Outgoing {
    subject: String,
    id: String,
    payload: Vec<u8>,
    effect: Effect,
}

/// The writer's publisher. See the module documentation.
pub struct Outbox {
    shared: Arc<Replication>,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    stream: stream::Stream,
    subjects: Subjects,
    cas: Vec<CaId>,
    store: Arc<Store>,
    publisher: Arc<Publisher>,
    claim: u64,
}

fn js_err(e: impl std::fmt::Display) -> Error {
    Error::JetStream(e.to_string())
}

/// The last message on `subject`, if any.
async fn last_on(
    stream: &stream::Stream,
    subject: &str,
) -> Result<Option<(u64, StreamMessage)>, Error> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => {
            let decoded = wire::decode(&m.payload).map_err(|message| Error::Wire {
                seq: m.sequence,
                message,
            })?;
            Ok(Some((m.sequence, decoded)))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(js_err(e)),
    }
}

async fn publish_one(
    js: &async_nats::jetstream::Context,
    subject: String,
    id: String,
    payload: Vec<u8>,
    expected: u64,
) -> Result<u64, Error> {
    let ack = js
        .send_publish(
            subject,
            Publish::build()
                .payload(Bytes::from(payload))
                .message_id(id)
                .expected_last_subject_sequence(expected),
        )
        .await
        .map_err(js_err)?
        .await;
    match ack {
        Ok(a) => Ok(a.sequence),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(Error::Fenced(format!(
            "the stream changed under this writer ({e})"
        ))),
        Err(e) => Err(js_err(e)),
    }
}

impl Outbox {
    /// Creates or checks the stream, catches up with it, claims it and fences it. Fails if
    /// another writer claimed the stream after this store last followed it.
    pub async fn prepare(
        shared: Arc<Replication>,
        client: async_nats::Client,
        cas: Vec<CaId>,
        store: Arc<Store>,
        publisher: Arc<Publisher>,
        clock: SharedClock,
    ) -> Result<Outbox, Error> {
        let config = shared.config().clone();
        let js = super::jetstream(client.clone());
        let subjects = Subjects::new(&config.stream);
        let stream = ensure_stream(&js, &config, &subjects).await?;
        let mut outbox = Outbox {
            shared: Arc::clone(&shared),
            client,
            js,
            stream,
            subjects,
            cas: cas.clone(),
            store: Arc::clone(&store),
            publisher: Arc::clone(&publisher),
            claim: 0,
        };
        let mut applier = Applier::new(shared, store, publisher, clock.clone(), cas);
        applier = outbox.catch_up(applier).await?;

        let last_claim = last_on(&outbox.stream, &outbox.subjects.writer())
            .await?
            .map_or(0, |(seq, _)| seq);
        let applied = applier.applied()?;
        if last_claim > applied {
            return Err(Error::Fenced(format!(
                "another writer claimed the stream (message {last_claim}) while this one was starting"
            )));
        }
        let node_id = config.node_id.clone();
        let claim = publish_one(
            &outbox.js,
            outbox.subjects.writer(),
            format!("claim/{node_id}/{last_claim}"),
            wire::encode(&StreamMessage::Claim {
                node_id: node_id.clone(),
                at: clock.now(),
            }),
            last_claim,
        )
        .await
        .map_err(|e| match e {
            Error::Fenced(_) => Error::Fenced(format!(
                "another writer claimed the stream while {node_id:?} was starting"
            )),
            other => other,
        })?;
        let c = claim.to_be_bytes();
        outbox
            .store
            .put_global_meta(&[(SELF_CLAIM, &c), (LAST_CLAIM, &c)])?;
        outbox.claim = claim;
        tracing::info!(%node_id, claim, "claimed the replication stream");

        // Fence every subject; a message slipped in by a previous writer between its reading
        // and the fence is caught up with, and the subject fenced again.
        for attempt in 0.. {
            applier = outbox.catch_up(applier).await?;
            match outbox.fence().await {
                Ok(()) => break,
                Err(Error::Fenced(why)) if attempt < 10 => {
                    tracing::warn!(%why, "a previous writer is still publishing; fencing again");
                }
                Err(e) => return Err(e),
            }
        }
        outbox.catch_up(applier).await?;
        outbox.shared.set_writing(true);
        Ok(outbox)
    }

    /// Applies every message of the stream after the store's applied position.
    async fn catch_up(&self, mut applier: Applier) -> Result<Applier, Error> {
        let info = self.stream.get_info().await.map_err(js_err)?;
        let last = info.state.last_sequence;
        let mut seq = applier.applied()? + 1;
        if info.state.messages > 0 && seq < info.state.first_sequence {
            return Err(Error::Behind {
                applied: seq - 1,
                first: info.state.first_sequence,
            });
        }
        if seq <= last {
            tracing::info!(
                from = seq,
                to = last,
                "catching up with the stream before writing"
            );
        }
        while seq <= last {
            let mut batch = Vec::new();
            while seq <= last && batch.len() < 500 {
                let m = self.stream.get_raw_message(seq).await.map_err(js_err)?;
                batch.push((seq, m.payload));
                seq += 1;
            }
            let (a, result) = tokio::task::spawn_blocking(move || {
                let r = applier.apply(&batch);
                (applier, r)
            })
            .await
            .map_err(|e| js_err(format!("catch-up task: {e}")))?;
            applier = a;
            result?;
        }
        Ok(applier)
    }

    async fn fence(&self) -> Result<(), Error> {
        let node_id = &self.shared.config().node_id;
        for ca in &self.cas {
            let synced = self.read_subjects(ca).await?;
            for (subject, last_seq, last) in synced {
                publish_one(
                    &self.js,
                    subject.clone(),
                    format!("fence/{}/{subject}", self.claim),
                    wire::encode(&StreamMessage::Fence {
                        node_id: node_id.clone(),
                        ca: ca.clone(),
                        last,
                    }),
                    last_seq,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// For one CA: (subject, last stream sequence on it, last event or CRL number it says).
    async fn read_subjects(&self, ca: &CaId) -> Result<Vec<(String, u64, u64)>, Error> {
        let mut out = Vec::with_capacity(2);
        let events = self.subjects.events(ca);
        let (seq, last) = match last_on(&self.stream, &events).await? {
            Some((seq, StreamMessage::Event { event, .. })) => (seq, event.seq),
            Some((seq, StreamMessage::Fence { last, .. })) => (seq, last),
            Some((seq, _)) => (seq, 0),
            None => (0, 0),
        };
        out.push((events, seq, last));
        let crl = self.subjects.crl(ca);
        let (seq, last) = match last_on(&self.stream, &crl).await? {
            Some((
                seq,
                StreamMessage::CrlPiece {
                    record,
                    piece,
                    pieces,
                    ..
                },
            )) => (
                seq,
                if piece + 1 == pieces {
                    record.number
                } else {
                    record.number.saturating_sub(1)
                },
            ),
            Some((seq, StreamMessage::Fence { last, .. })) => (seq, last),
            Some((seq, _)) => (seq, 0),
            None => (0, 0),
        };
        out.push((crl, seq, last));
        Ok(out)
    }

    /// Reads what the stream holds; refuses (fenced) if the last claim is not this writer's.
    async fn resync(&self) -> Result<Synced, Error> {
        let info = self.stream.get_info().await.map_err(js_err)?;
        let last_claim = last_on(&self.stream, &self.subjects.writer()).await?;
        match last_claim {
            Some((seq, _)) if seq == self.claim => {}
            Some((seq, StreamMessage::Claim { node_id, at })) => {
                return Err(Error::Fenced(format!(
                    "writer {node_id:?} claimed the stream at {at} (message {seq})"
                )));
            }
            other => {
                return Err(Error::Fenced(format!(
                    "the stream's last claim is not this writer's ({:?})",
                    other.map(|(s, _)| s)
                )));
            }
        }
        let mut synced = Synced {
            next_seq: info.state.last_sequence + 1,
            ..Synced::default()
        };
        synced
            .subject_last
            .insert(self.subjects.writer(), self.claim);
        for ca in &self.cas {
            let subjects = self.read_subjects(ca).await?;
            for (i, (subject, seq, last)) in subjects.into_iter().enumerate() {
                synced.subject_last.insert(subject, seq);
                if i == 0 {
                    // A replayed old event may be last on the subject: what was acknowledged
                    // before stays acknowledged.
                    let last = last.max(self.shared.acked_of(ca));
                    synced.events.insert(ca.clone(), last);
                    self.shared.set_acked(ca, last);
                } else {
                    synced.crls.insert(ca.clone(), last);
                }
            }
        }
        self.shared.on_applied(info.state.last_sequence);
        Ok(synced)
    }

    /// What the stream lacks, up to [`ROUND`] messages.
    fn pending(&self, synced: &Synced) -> Result<Vec<Outgoing>, Error> {
        let mut out = Vec::new();
        for ca in &self.cas {
            let from = synced.events.get(ca).copied().unwrap_or(0);
            for event in self.store.events_after(ca, from).take(ROUND) {
                let event = event?;
                let seq = event.seq;
                out.push(Outgoing {
                    subject: self.subjects.events(ca),
                    id: wire::event_id(ca, seq),
                    payload: wire::encode(&StreamMessage::Event {
                        ca: ca.clone(),
                        event,
                    }),
                    effect: Effect::Event(ca.clone(), seq),
                });
            }
        }
        for ca in &self.cas {
            let on_stream = synced.events.get(ca).copied().unwrap_or(0);
            let latest = self.publisher.latest_number(ca)?;
            let mut n = synced.crls.get(ca).copied().unwrap_or(0) + 1;
            while n <= latest && out.len() < ROUND {
                if let Some(p) = self.publisher.by_number(ca.as_str(), n)? {
                    // A CRL follows the events it reflects.
                    if p.record.watermark > on_stream {
                        break;
                    }
                    let pieces: Vec<&[u8]> = p.der.chunks(CRL_PIECE_BYTES).collect();
                    let count = pieces.len() as u32;
                    for (i, bytes) in pieces.into_iter().enumerate() {
                        let i = i as u32;
                        out.push(Outgoing {
                            subject: self.subjects.crl(ca),
                            id: format!("{ca}/crl/{n}/{i}"),
                            payload: wire::encode(&StreamMessage::CrlPiece {
                                ca: ca.clone(),
                                record: p.record.clone(),
                                piece: i,
                                pieces: count,
                                bytes: bytes.to_vec(),
                            }),
                            effect: if i + 1 == count {
                                Effect::Crl(ca.clone(), n)
                            } else {
                                Effect::None
                            },
                        });
                    }
                }
                n += 1;
            }
        }
        Ok(out)
    }

    /// One round: publishes what is pending. `Ok(true)` if something was published, an error
    /// when the stream must be read again.
    async fn round(&self, synced: &mut Synced) -> Result<bool, Error> {
        let outgoing = self.pending(synced)?;
        if outgoing.is_empty() {
            return Ok(false);
        }
        let mut sent = Vec::with_capacity(outgoing.len());
        let mut failure = None;
        for o in outgoing {
            let expected = synced.subject_last.get(&o.subject).copied().unwrap_or(0);
            let predicted = synced.next_seq;
            let publish = Publish::build()
                .payload(Bytes::from(o.payload))
                .message_id(o.id)
                .expected_last_subject_sequence(expected);
            match self.js.send_publish(o.subject.clone(), publish).await {
                Ok(ack) => {
                    synced.subject_last.insert(o.subject, predicted);
                    synced.next_seq += 1;
                    sent.push((ack, predicted, o.effect));
                }
                Err(e) => {
                    failure = Some(js_err(e));
                    break;
                }
            }
        }
        let mut last_ok = 0;
        for (ack, predicted, effect) in sent {
            match ack.await {
                Ok(a) => {
                    match effect {
                        Effect::Event(ca, seq) => {
                            synced.events.insert(ca.clone(), seq);
                            self.shared.set_acked(&ca, seq);
                        }
                        Effect::Crl(ca, n) => {
                            synced.crls.insert(ca, n);
                        }
                        Effect::None => {}
                    }
                    if a.sequence != predicted || a.duplicate {
                        failure.get_or_insert(Error::JetStream(format!(
                            "stored as message {} (duplicate: {}), expected {predicted}",
                            a.sequence, a.duplicate
                        )));
                        break;
                    }
                    last_ok = a.sequence;
                }
                Err(e) => {
                    failure.get_or_insert(if e.kind() == PublishErrorKind::WrongLastSequence {
                        Error::Fenced(e.to_string())
                    } else {
                        js_err(e)
                    });
                    break;
                }
            }
        }
        if last_ok > 0 {
            self.store
                .put_global_meta(&[(APPLIED, &last_ok.to_be_bytes())])?;
            self.shared.on_applied(last_ok);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    /// Starts the publishing and heartbeat tasks.
    pub fn spawn(
        self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&self.shared),
            self.client.clone(),
            self.subjects.clone(),
            stop.clone(),
        ));
        let publishing = tokio::spawn(self.run(stop));
        vec![heartbeat, publishing]
    }

    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut committed = self.store.subscribe();
        let mut synced: Option<Synced> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                return;
            }
            let state = match synced.take() {
                Some(s) => Ok(s),
                None => self.resync().await,
            };
            let mut state = match state {
                Ok(s) => s,
                Err(e @ Error::Fenced(_)) => {
                    self.shared.set_problem(e.to_string());
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replication stream unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            match self.round(&mut state).await {
                Ok(true) => {
                    synced = Some(state);
                    continue;
                }
                Ok(false) => synced = Some(state),
                Err(e) => {
                    tracing::warn!(error = %e, "publication interrupted; reading the stream again");
                    continue;
                }
            }
            tokio::select! {
                r = committed.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                        return;
                    }
                }
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    config: &super::ReplicationConfig,
    subjects: &Subjects,
) -> Result<stream::Stream, Error> {
    let wanted = stream::Config {
        name: subjects.stream().to_owned(),
        subjects: subjects.captured(),
        num_replicas: config.stream_replicas,
        max_age: config.min_retention,
        duplicate_window: Duration::from_secs(120).min(config.min_retention),
        storage: StorageType::File,
        description: Some("vigie: events and CRLs from the writer".into()),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let mut stream = loop {
        match js.get_or_create_stream(wanted.clone()).await {
            Ok(s) => break s,
            Err(e) if started.elapsed() < START_PATIENCE => {
                tracing::info!(error = %e, "waiting for JetStream");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(js_err(e)),
        }
    };
    let info = stream.info().await.map_err(js_err)?;
    let max_age = info.config.max_age;
    if !max_age.is_zero() && max_age < config.min_retention {
        return Err(Error::Retention {
            stream: subjects.stream().to_owned(),
            max_age,
            min: config.min_retention,
        });
    }
    Ok(stream)
}

async fn heartbeat(
    shared: Arc<Replication>,
    client: async_nats::Client,
    subjects: Subjects,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let subject = subjects.heartbeat();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if shared.refusal().is_some() {
            // Fenced: the stream has another writer.
            continue;
        }
        let beat = Heartbeat {
            node_id: shared.config().node_id.clone(),
            last_sequence: shared.applied_sequence(),
            at: crate::model::UnixTime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            ),
        };
        if let Err(e) = client
            .publish(subject.clone(), Bytes::from(wire::encode(&beat)))
            .await
        {
            tracing::debug!(error = %e, "heartbeat not sent");
            continue;
        }
        // The server's answer to a ping is this writer's contact with NATS.
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), client.flush()).await {
            shared.touch();
        }
    }
}
