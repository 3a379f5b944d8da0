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
//! Publishing (a task, [`Outbox::pump`]): woken by every commit of the store, it sends on each
//! subject with nothing in flight the next message the stream lacks — on a CA's events subject
//! every event committed after the last one on the stream, grouped in one message whose
//! `Nats-Msg-Id` is `<ca>/<sequence of its last event>`; on its CRL subject the next piece of
//! the next CRL whose events are all on the stream — each with
//! `Nats-Expected-Last-Subject-Sequence` = the subject's last message, acknowledged. A
//! clustered stream checks that expectation against what it has already stored, so only one
//! message per subject can be in flight; grouping the events committed meanwhile keeps an
//! ingest answer at about one JetStream round trip whatever the rate. Any failure (timeout,
//! refused expectation) makes the publisher wait for what is still in flight, then read the
//! stream's state again ([`Outbox::resync`]): the stream, not memory, says what was published.
//! A claim by another node found there stops the writer: it refuses writes from then on. The
//! heartbeat task publishes, every second, on core NATS (not on the stream), the last sequence
//! acknowledged.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, StorageType};
use bytes::Bytes;

use super::replica::Applier;
use super::wire::{self, CRL_PIECE_BYTES, Heartbeat, StreamMessage, Subjects};
use super::{APPLIED, Error, LAST_CLAIM, Replication, SELF_CLAIM};
use crate::clock::SharedClock;
use crate::crl::Publisher;
use crate::model::CaId;
use crate::store::Store;

/// Most events carried by one message.
const EVENTS_PER_MESSAGE: usize = 2000;

/// Most bytes of events carried by one message (NATS servers allow 1 MiB by default).
const EVENT_BYTES_PER_MESSAGE: usize = 512 << 10;

/// How long a publication waits for its acknowledgement before the stream is read again.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// How often the publisher looks at the store without being woken (CRLs published, retries).
const TICK: Duration = Duration::from_millis(250);

/// How often, at most, the resume position is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long the writer keeps trying to reach JetStream at start-up.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How long reading the stream's state may take. JetStream requests wait up to five seconds
/// for an answer; while the stream elects a new leader they get none, so a shorter wait, then
/// a new try, resumes publication soon after the election rather than up to five seconds later.
const RESYNC_WAIT: Duration = Duration::from_millis(1500);

/// Pause before reading the stream again after it failed to answer.
const RETRY: Duration = Duration::from_millis(250);

/// What the stream holds, as last read from it and advanced by acknowledged publications.
#[derive(Debug, Default)]
struct Synced {
    /// Stream sequence of the last message per subject.
    subject_last: HashMap<String, u64>,
    /// Last event sequence on the stream, per CA.
    events: HashMap<CaId, u64>,
    /// Last CRL number complete on the stream, per CA.
    crls: HashMap<CaId, u64>,
    /// Next CRL piece to send, per CA: (number, piece); a CRL is sent again from its first
    /// piece after the stream was read (the pieces already there are dropped as duplicates).
    crl_next: HashMap<CaId, (u64, u32)>,
}

enum Effect {
    Events(CaId, u64),
    CrlPiece {
        ca: CaId,
        number: u64,
        piece: u32,
        pieces: u32,
    },
}

struct Outgoing {
    subject: String,
    id: String,
    payload: Vec<u8>,
    effect: Effect,
}

/// A message sent, awaiting its acknowledgement: at most one per subject.
struct InFlight {
    subject: String,
    ack: Pin<Box<dyn Future<Output = Result<PublishAck, Error>> + Send>>,
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
            Some((seq, StreamMessage::Events { events, .. })) => {
                (seq, events.last().map_or(0, |e| e.seq))
            }
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
        let mut synced = Synced::default();
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

    /// The CA's events the stream lacks, in one message: every event after the last one on
    /// the stream, up to [`EVENTS_PER_MESSAGE`] events or [`EVENT_BYTES_PER_MESSAGE`] bytes.
    /// Its `Nats-Msg-Id` is `<ca>/<sequence>` of its last event.
    fn next_events(&self, synced: &Synced, ca: &CaId) -> Result<Option<Outgoing>, Error> {
        let from = synced.events.get(ca).copied().unwrap_or(0);
        let mut events = Vec::new();
        let mut bytes = 0;
        for event in self.store.events_after(ca, from).take(EVENTS_PER_MESSAGE) {
            let event = event?;
            bytes += wire::encoded_len(&event);
            if bytes > EVENT_BYTES_PER_MESSAGE && !events.is_empty() {
                break;
            }
            events.push(event);
        }
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(None);
        };
        Ok(Some(Outgoing {
            subject: self.subjects.events(ca),
            id: wire::event_id(ca, last),
            payload: wire::encode(&StreamMessage::Events {
                ca: ca.clone(),
                events,
            }),
            effect: Effect::Events(ca.clone(), last),
        }))
    }

    /// The next piece of the CA's next CRL the stream lacks, once the stream holds every
    /// event that CRL reflects (a CRL follows its events).
    fn next_crl_piece(&self, synced: &Synced, ca: &CaId) -> Result<Option<Outgoing>, Error> {
        let on_stream = synced.events.get(ca).copied().unwrap_or(0);
        let latest = self.publisher.latest_number(ca)?;
        let complete = synced.crls.get(ca).copied().unwrap_or(0);
        let (mut n, mut piece) = synced
            .crl_next
            .get(ca)
            .copied()
            .filter(|(n, _)| *n > complete)
            .unwrap_or((complete + 1, 0));
        while n <= latest {
            let Some(p) = self.publisher.by_number(ca.as_str(), n)? else {
                (n, piece) = (n + 1, 0);
                continue;
            };
            if p.record.watermark > on_stream {
                return Ok(None);
            }
            let pieces = p.der.len().div_ceil(CRL_PIECE_BYTES).max(1) as u32;
            let Some(bytes) = p.der.chunks(CRL_PIECE_BYTES).nth(piece as usize) else {
                (n, piece) = (n + 1, 0);
                continue;
            };
            return Ok(Some(Outgoing {
                subject: self.subjects.crl(ca),
                id: format!("{ca}/crl/{n}/{piece}"),
                payload: wire::encode(&StreamMessage::CrlPiece {
                    ca: ca.clone(),
                    record: p.record.clone(),
                    piece,
                    pieces,
                    bytes: bytes.to_vec(),
                }),
                effect: Effect::CrlPiece {
                    ca: ca.clone(),
                    number: n,
                    piece,
                    pieces,
                },
            }));
        }
        Ok(None)
    }

    /// Sends one message with `Nats-Msg-Id` and the expected last subject sequence (the
    /// stream sequence of the subject's last message, acknowledged: nothing else of this
    /// writer is in flight on that subject). The acknowledgement is awaited by the caller,
    /// before [`ACK_WAIT`] from now.
    async fn send(&self, synced: &Synced, o: Outgoing) -> Result<InFlight, Error> {
        let expected = synced.subject_last.get(&o.subject).copied().unwrap_or(0);
        let publish = Publish::build()
            .payload(Bytes::from(o.payload))
            .message_id(o.id)
            .expected_last_subject_sequence(expected);
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        let ack = self
            .js
            .send_publish(o.subject.clone(), publish)
            .await
            .map_err(js_err)?;
        let ack = Box::pin(async move {
            match tokio::time::timeout_at(deadline, ack.into_future()).await {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(e)) if e.kind() == PublishErrorKind::WrongLastSequence => Err(
                    Error::JetStream(format!("expected last subject sequence refused ({e})")),
                ),
                Ok(Err(e)) => Err(js_err(e)),
                Err(_) => Err(Error::JetStream(format!(
                    "no acknowledgement within {ACK_WAIT:?}"
                ))),
            }
        });
        Ok(InFlight {
            subject: o.subject,
            ack,
            effect: o.effect,
        })
    }

    /// Takes one acknowledgement into account: what the message carries is on the stream (a
    /// duplicate was stored before, and is not stored again: the subject's last message does
    /// not change). Returns the message's stream sequence.
    fn settle(
        &self,
        synced: &mut Synced,
        f: InFlight,
        ack: Result<PublishAck, Error>,
    ) -> Result<u64, Error> {
        let a = ack?;
        if !a.duplicate {
            synced.subject_last.insert(f.subject, a.sequence);
        }
        match f.effect {
            Effect::Events(ca, last) => {
                synced.events.insert(ca.clone(), last);
                self.shared.set_acked(&ca, last);
            }
            Effect::CrlPiece {
                ca,
                number,
                piece,
                pieces,
            } => {
                if piece + 1 >= pieces {
                    synced.crls.insert(ca.clone(), number);
                    synced.crl_next.insert(ca, (number + 1, 0));
                } else {
                    synced.crl_next.insert(ca, (number, piece + 1));
                }
            }
        }
        Ok(a.sequence)
    }

    /// After a failure: waits for what is still in flight (each until its own deadline) so
    /// that the stream, read again next, holds everything this writer will ever see stored,
    /// and takes the successes into account.
    async fn drain(&self, synced: &mut Synced, in_flight: &mut Vec<InFlight>) {
        for mut f in in_flight.drain(..) {
            let ack = f.ack.as_mut().await;
            let _ = self.settle(synced, f, ack);
        }
    }

    /// Publishes continuously. Woken by every commit, it sends on each subject that has
    /// nothing in flight the next message the stream lacks (a CA's events: all those
    /// committed since the last message, in one message), and on each acknowledgement the
    /// next one. One message in flight per subject: a clustered stream checks the expected
    /// last subject sequence against what it has stored, so a second message on the same
    /// subject sent before the first is stored would be refused. Returns `Ok` when told to
    /// stop, an error when the stream must be read again.
    async fn pump(
        &self,
        synced: &mut Synced,
        committed: &mut tokio::sync::broadcast::Receiver<crate::store::Committed>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut in_flight: Vec<InFlight> = Vec::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut position_saved = self.shared.applied_sequence();
        let mut position = position_saved;
        let mut saved_at = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            for ca in &self.cas {
                for events in [true, false] {
                    let subject = if events {
                        self.subjects.events(ca)
                    } else {
                        self.subjects.crl(ca)
                    };
                    if in_flight.iter().any(|f| f.subject == subject) {
                        continue;
                    }
                    let next = if events {
                        self.next_events(synced, ca)?
                    } else {
                        self.next_crl_piece(synced, ca)?
                    };
                    let Some(o) = next else { continue };
                    match self.send(synced, o).await {
                        Ok(f) => in_flight.push(f),
                        Err(e) => {
                            self.drain(synced, &mut in_flight).await;
                            return Err(e);
                        }
                    }
                }
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                (i, ack) = std::future::poll_fn(|cx| {
                    for (i, f) in in_flight.iter_mut().enumerate() {
                        if let Poll::Ready(ack) = f.ack.as_mut().poll(cx) {
                            return Poll::Ready((i, ack));
                        }
                    }
                    Poll::Pending
                }), if !in_flight.is_empty() => {
                    let f = in_flight.swap_remove(i);
                    match self.settle(synced, f, ack) {
                        Ok(seq) => {
                            position = position.max(seq);
                            self.shared.on_applied(seq);
                        }
                        Err(e) => {
                            self.drain(synced, &mut in_flight).await;
                            return Err(e);
                        }
                    }
                }
                r = committed.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                        return Ok(());
                    }
                    // One look at the store covers every commit notified so far.
                    while committed.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
            // The writer's resume position is only where catching up starts (its own
            // messages change nothing there): saved at most every `SAVE_EVERY`, off the
            // path of ingest answers.
            if position > position_saved && saved_at.elapsed() >= SAVE_EVERY {
                self.store
                    .put_global_meta(&[(APPLIED, &position.to_be_bytes())])?;
                position_saved = position;
                saved_at = tokio::time::Instant::now();
            }
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
        loop {
            if *stop.borrow() {
                return;
            }
            let resync = tokio::time::timeout(RESYNC_WAIT, self.resync())
                .await
                .unwrap_or_else(|_| {
                    Err(Error::JetStream(format!(
                        "the stream's state was not read within {RESYNC_WAIT:?}"
                    )))
                });
            let mut synced = match resync {
                Ok(s) => s,
                Err(e @ Error::Fenced(_)) => {
                    self.shared.set_problem(e.to_string());
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replication stream unavailable; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            match self.pump(&mut synced, &mut committed, &mut stop).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "publication interrupted; reading the stream again");
                }
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
