//! What travels on the stream and on the heartbeat subject, and the subjects themselves.
//!
//! Stream messages are [`StreamMessage`]s, postcard-encoded after a format octet
//! ([`FORMAT`]). Subjects of stream `S`:
//!
//! | subject | message | `Nats-Msg-Id` |
//! |---|---|---|
//! | `S.events.<ca>` | consecutive [`Event`]s of the CA's log | `<ca>/<sequence of the last>` |
//! | `S.crl.<ca>` | a piece of a CRL with its record | `<ca>/crl/<number>/<piece>` |
//! | `S.writer` | a writer's claim on the stream | `claim/<node_id>/<previous claim>` |
//! | `S.events.<ca>`, `S.crl.<ca>` | a new writer's fence after its claim | `fence/<claim>/<subject>` |
//! | `S.heartbeat` | [`Heartbeat`], core NATS, not stored | — |
//!
//! A CA id may hold `.`, which separates NATS subject tokens: it is written `~` in subjects
//! (a character CA ids never hold).

use serde::{Deserialize, Serialize};

use crate::crl::CrlRecord;
use crate::model::{CaId, Event, UnixTime};

/// Format octet in front of every stream message and heartbeat.
pub const FORMAT: u8 = 1;

/// Largest CRL piece carried by one message (NATS servers allow 1 MiB by default).
pub const CRL_PIECE_BYTES: usize = 512 << 10;

/// A message of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMessage {
    /// A writer takes the stream: what it publishes after this is the log.
    Claim {
        /// The writer's `node_id`.
        node_id: String,
        /// When it claimed.
        at: UnixTime,
    },
    /// A new writer's mark on one of a CA's subjects, right after its claim: any message the
    /// previous writer still sends on that subject is then refused (its expected last subject
    /// sequence no longer matches). Says what the subject held before it.
    Fence {
        /// The new writer's `node_id`.
        node_id: String,
        /// The CA.
        ca: CaId,
        /// On an events subject, the CA's last event sequence on the stream; on a CRL
        /// subject, the last CRL number complete on the stream.
        last: u64,
    },
    /// One event of a CA's log, with its origin sequence number and time (what writers
    /// published before events were grouped; still applied).
    Event {
        /// The CA.
        ca: CaId,
        /// The event.
        event: Event,
    },
    /// One piece of a published CRL; the last piece completes it.
    CrlPiece {
        /// The CA.
        ca: CaId,
        /// The CRL's record (number, kind, times …), in every piece.
        record: CrlRecord,
        /// Which piece, from 0.
        piece: u32,
        /// How many pieces.
        pieces: u32,
        /// The DER bytes of this piece.
        bytes: Vec<u8>,
    },
    /// Consecutive events of a CA's log (at least one), with their origin sequence numbers
    /// and times: every event the writer committed while the previous message on the subject
    /// awaited its acknowledgement.
    Events {
        /// The CA.
        ca: CaId,
        /// The events, in sequence order.
        events: Vec<Event>,
    },
}

/// The writer's heartbeat, every second, on core NATS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The writer's `node_id`.
    pub node_id: String,
    /// Stream sequence of the last message the writer has had acknowledged.
    pub last_sequence: u64,
    /// The writer's clock.
    pub at: UnixTime,
}

/// Encodes a value after the format octet.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(
        postcard::to_stdvec(value)
            .expect("postcard encodes plain structs into a Vec without failure"),
    );
    out
}

/// Length of a value once encoded (without the format octet).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX / 2)
}

/// Decodes what [`encode`] made.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown message format {other}")),
        None => Err("empty message".into()),
    }
}

/// The subjects of one stream.
#[derive(Clone, Debug)]
pub struct Subjects {
    stream: String,
}

fn token(ca: &CaId) -> String {
    ca.as_str().replace('.', "~")
}

impl Subjects {
    /// Subjects of stream `stream`.
    pub fn new(stream: &str) -> Subjects {
        Subjects {
            stream: stream.to_owned(),
        }
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// What the stream captures.
    pub fn captured(&self) -> Vec<String> {
        vec![
            format!("{}.events.*", self.stream),
            format!("{}.crl.*", self.stream),
            format!("{}.writer", self.stream),
        ]
    }

    /// A CA's events.
    pub fn events(&self, ca: &CaId) -> String {
        format!("{}.events.{}", self.stream, token(ca))
    }

    /// A CA's CRLs.
    pub fn crl(&self, ca: &CaId) -> String {
        format!("{}.crl.{}", self.stream, token(ca))
    }

    /// Writers' claims.
    pub fn writer(&self) -> String {
        format!("{}.writer", self.stream)
    }

    /// The heartbeat (core NATS, outside the stream).
    pub fn heartbeat(&self) -> String {
        format!("{}.heartbeat", self.stream)
    }
}

/// `Nats-Msg-Id` of a CA's event: `<ca>/<sequence>`.
pub fn event_id(ca: &CaId, seq: u64) -> String {
    format!("{ca}/{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Serial};

    #[test]
    fn messages_round_trip_and_unknown_formats_are_refused() {
        let ca = CaId::new("aci.el").expect("valid");
        let m = StreamMessage::Event {
            ca: ca.clone(),
            event: Event {
                seq: 7,
                recorded_at: UnixTime(5),
                serial: Serial::from_hex("0a").expect("valid"),
                kind: EventKind::Released {
                    released_at: UnixTime(5),
                },
            },
        };
        let bytes = encode(&m);
        assert_eq!(decode::<StreamMessage>(&bytes), Ok(m.clone()));
        let mut other = bytes.clone();
        other[0] = 9;
        assert!(decode::<StreamMessage>(&other).is_err());
        assert!(decode::<StreamMessage>(&[]).is_err());
        assert_eq!(Subjects::new("VIGIE").events(&ca), "VIGIE.events.aci~el");
        assert_eq!(event_id(&ca, 7), "aci.el/7");
        let StreamMessage::Event { event, .. } = m else {
            unreachable!("built above")
        };
        let mut next = event.clone();
        next.seq = 8;
        let grouped = StreamMessage::Events {
            ca,
            events: vec![event, next],
        };
        let bytes = encode(&grouped);
        assert_eq!(decode::<StreamMessage>(&bytes), Ok(grouped.clone()));
        let StreamMessage::Events { events, .. } = &grouped else {
            unreachable!("built above")
        };
        assert_eq!(bytes.len(), 1 + encoded_len(&grouped));
        assert!(encoded_len(&events[0]) < bytes.len() / 2);
    }
}
