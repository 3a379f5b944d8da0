//! The audit trail of the ingest API: who changed what, from where, when, and how it ended.
//!
//! One [`AuditRecord`] per request, in the store's `audit` column family, keyed by time:
//!
//! - a request that **changes** something (or replays what is recorded) is recorded inside the
//!   transaction that applies it ([`commit_audited`]): the record is in the same RocksDB write
//!   batch as the records and events it describes, so neither exists without the other, and it
//!   is durable when the CA gets its answer;
//! - a **refused** request (400, 404, 409, 413, 415, 422 after authentication) writes nothing
//!   to the status, so its record is a small write of its own, synced before the answer
//!   ([`record_refusal`]): an auditor wants the attempts too — a conflicting revocation says
//!   as much as an accepted one.
//!
//! What is *not* recorded: requests that fail authentication (401, and 403 for a client
//! certificate that is not allowed). They are logged and counted
//! (`vigie_ingest_auth_failures_total`), but an unauthenticated client must not be able to
//! write to the store's disk. Reads (`GET /v1/…`) are not recorded either: they change nothing.
//!
//! Each request item becomes one [`AuditEntry`] of `GET /v1/audit` and `vigie audit`, with an
//! outcome: `applied` (an event was written: `event_seq`), `replayed` (the same event was
//! already recorded: nothing changed) or `refused` (with the problem type, status and detail the
//! CA was answered; a refused batch is refused as a whole, every item says so).

use serde::{Deserialize, Serialize};

use super::request::CertChange;
use super::{Change, Error, Outcome, Rules, apply_all, cas_of};
use crate::model::{CaId, RevocationReason, UnixTime};
use crate::store::{self, Store, keys};

/// Largest page of `GET /v1/audit`.
pub const MAX_LIMIT: usize = 10_000;

/// Which write endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// `POST /v1/certificates`.
    Certificates,
    /// `POST /v1/revocations`.
    Revocations,
    /// `DELETE /v1/revocations/{ca}/{serial}`.
    Release,
}

/// Who made a request, from where, to which endpoint.
#[derive(Clone, Debug)]
pub struct Requester {
    /// The token label or client-certificate subject ([`crate::http::auth::Caller::actor`]).
    pub actor: String,
    /// The peer address of the connection.
    pub address: String,
    /// The endpoint.
    pub endpoint: Endpoint,
}

/// What a request item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Register an issued certificate.
    Issue,
    /// Revoke (any reason but certificateHold).
    Revoke,
    /// Suspend (certificateHold).
    Hold,
    /// Release a certificateHold.
    Release,
}

impl Action {
    /// `issue`, `revoke`, `hold`, `release`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Issue => "issue",
            Action::Revoke => "revoke",
            Action::Hold => "hold",
            Action::Release => "release",
        }
    }

    fn of(change: &Change) -> Action {
        match change {
            Change::Issue(_) => Action::Issue,
            Change::Revoke(r) if r.reason == Some(RevocationReason::CertificateHold) => {
                Action::Hold
            }
            Change::Revoke(_) => Action::Revoke,
            Change::Release => Action::Release,
        }
    }

    fn of_endpoint(endpoint: Endpoint) -> Action {
        match endpoint {
            Endpoint::Certificates => Action::Issue,
            Endpoint::Revocations => Action::Revoke,
            Endpoint::Release => Action::Release,
        }
    }
}

/// How an item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemOutcome {
    /// An event was written.
    Applied,
    /// Already recorded: nothing written but this record.
    Replayed,
    /// The request was refused.
    Refused,
}

impl ItemOutcome {
    /// `applied`, `replayed`, `refused`.
    pub fn name(self) -> &'static str {
        match self {
            ItemOutcome::Applied => "applied",
            ItemOutcome::Replayed => "replayed",
            ItemOutcome::Refused => "refused",
        }
    }
}

/// One item of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditItem {
    /// What it asked.
    pub action: Action,
    /// The CA id (`None` when the request did not parse that far).
    pub ca: Option<String>,
    /// The serial, lowercase hex.
    pub serial: Option<String>,
    /// The RFC 5280 reason name of a revocation.
    pub reason: Option<String>,
    /// How it ended.
    pub outcome: ItemOutcome,
    /// The event written, when applied.
    pub event_seq: Option<u64>,
}

/// The answer a refused request got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type (`conflict`, `invalid-field` …, as in the problem+json body).
    pub kind: String,
    /// The HTTP status.
    pub status: u16,
    /// The detail sent.
    pub detail: String,
}

/// One request, as stored (postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When.
    pub at: UnixTime,
    /// Who.
    pub actor: String,
    /// From where.
    pub address: String,
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// What, item by item.
    pub items: Vec<AuditItem>,
    /// For a refused request, what it was answered.
    pub problem: Option<Problem>,
}

fn item(change: &CertChange, outcome: ItemOutcome, event_seq: Option<u64>) -> AuditItem {
    AuditItem {
        action: Action::of(&change.change),
        ca: Some(change.ca.to_string()),
        serial: Some(change.serial.to_hex()),
        reason: match &change.change {
            Change::Revoke(r) => r.reason.map(|r| r.name().to_owned()),
            _ => None,
        },
        outcome,
        event_seq,
    }
}

fn encode(record: &AuditRecord) -> Vec<u8> {
    postcard::to_stdvec(record).expect("postcard encodes plain structs into a Vec without failure")
}

/// [`super::commit`] under each CA's `rules` ([`super::Rules`]), recording the request in the
/// same transaction. A request the rules refuse writes nothing here: the caller records the
/// refusal ([`record_refusal`]).
pub fn commit_audited(
    store: &Store,
    now: UnixTime,
    changes: &[CertChange],
    label: Option<&str>,
    who: &Requester,
    rules: &dyn Fn(&CaId) -> Rules,
) -> Result<Vec<Outcome>, Error> {
    store.transact(&cas_of(changes), now, |tx| {
        let outcomes = apply_all(tx, changes, label, rules)?;
        let items = changes
            .iter()
            .zip(&outcomes)
            .map(|(c, o)| match o {
                Outcome::Applied { seq, .. } => item(c, ItemOutcome::Applied, Some(*seq)),
                Outcome::Unchanged { .. } => item(c, ItemOutcome::Replayed, None),
            })
            .collect();
        tx.audit(&encode(&AuditRecord {
            at: now,
            actor: who.actor.clone(),
            address: who.address.clone(),
            endpoint: who.endpoint,
            items,
            problem: None,
        }));
        Ok(outcomes)
    })
}

/// Records a refused request, synced. `changes` are its items when it parsed that far;
/// `target` the (CA, serial) of a request that names them in its path.
pub fn record_refusal(
    store: &Store,
    now: UnixTime,
    who: &Requester,
    changes: &[CertChange],
    target: Option<(&str, &str)>,
    problem: Problem,
) -> Result<(), store::Error> {
    let mut items: Vec<AuditItem> = changes
        .iter()
        .map(|c| item(c, ItemOutcome::Refused, None))
        .collect();
    if items.is_empty() {
        // Only what fits a log line of the path: the values are the client's.
        let clip = |s: &str| s.chars().take(64).collect::<String>();
        items.push(AuditItem {
            action: Action::of_endpoint(who.endpoint),
            ca: target.map(|(ca, _)| clip(ca)),
            serial: target.map(|(_, s)| clip(s)),
            reason: None,
            outcome: ItemOutcome::Refused,
            event_seq: None,
        });
    }
    store.put_audit(
        now,
        &encode(&AuditRecord {
            at: now,
            actor: who.actor.clone(),
            address: who.address.clone(),
            endpoint: who.endpoint,
            items,
            problem: Some(problem),
        }),
    )
}

/// One line of `GET /v1/audit`.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    /// Position in the trail; pass it as `after` to read on from here.
    pub id: String,
    /// When, RFC 3339.
    pub at: String,
    /// Who: token label or client-certificate subject (RFC 4514, escaped).
    pub actor: String,
    /// Peer address.
    pub address: String,
    /// `issue`, `revoke`, `hold`, `release`.
    pub action: &'static str,
    /// CA id.
    pub ca: Option<String>,
    /// Serial, lowercase hex.
    pub serial: Option<String>,
    /// Revocation reason.
    pub reason: Option<String>,
    /// `applied`, `replayed`, `refused`.
    pub outcome: &'static str,
    /// The event written, when applied.
    pub event_seq: Option<u64>,
    /// How many items the request had (1 for a single event; more for a batch).
    pub request_items: usize,
    /// For a refused request, what it was answered.
    pub problem: Option<Problem>,
}

/// What to read.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// From this time (inclusive).
    pub since: Option<UnixTime>,
    /// Only items of this CA.
    pub ca: Option<CaId>,
    /// At most this many entries.
    pub limit: usize,
    /// Strictly after this entry id.
    pub after: Option<String>,
}

/// An entry id: `{at}-{record id}-{item}`.
fn entry_id(key: &[u8], item: usize) -> String {
    let (at, id) = keys::parse_audit(key).unwrap_or_default();
    format!("{at}-{id}-{item}")
}

fn parse_entry_id(s: &str) -> Option<(Vec<u8>, usize)> {
    let mut parts = s.split('-');
    let at: u64 = parts.next()?.parse().ok()?;
    let id: u64 = parts.next()?.parse().ok()?;
    let item: usize = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((keys::audit(UnixTime(i64::try_from(at).ok()?), id), item))
}

/// Reads entries, oldest first. Returns them and, when the limit cut the list, the id to pass
/// as `after` for the next page.
pub fn read(store: &Store, q: &Query) -> Result<(Vec<AuditEntry>, Option<String>), Error> {
    let limit = q.limit.clamp(1, MAX_LIMIT);
    let after = match &q.after {
        Some(a) => Some(
            parse_entry_id(a)
                .ok_or_else(|| Error::invalid("after", "is not an entry id from this trail"))?,
        ),
        None => None,
    };
    let since_key = keys::audit(q.since.unwrap_or(UnixTime::EPOCH), 0);
    let start = match &after {
        Some((key, _)) if *key > since_key => key.clone(),
        _ => since_key,
    };
    let mut out = Vec::new();
    for kv in store.audit_from(start) {
        let (key, value) = kv?;
        let record: AuditRecord = postcard::from_bytes(&value).map_err(|e| {
            Error::Store(store::Error::Corrupt {
                cf: store::cf::AUDIT,
                message: e.to_string(),
            })
        })?;
        for (i, it) in record.items.iter().enumerate() {
            if after
                .as_ref()
                .is_some_and(|(k, n)| (&key[..], i) <= (&k[..], *n))
            {
                continue;
            }
            if q.ca
                .as_ref()
                .is_some_and(|ca| it.ca.as_deref() != Some(ca.as_str()))
            {
                continue;
            }
            if out.len() == limit {
                let next = out.last().map(|e: &AuditEntry| e.id.clone());
                return Ok((out, next));
            }
            out.push(AuditEntry {
                id: entry_id(&key, i),
                at: record.at.to_rfc3339(),
                actor: record.actor.clone(),
                address: record.address.clone(),
                action: it.action.name(),
                ca: it.ca.clone(),
                serial: it.serial.clone(),
                reason: it.reason.clone(),
                outcome: it.outcome.name(),
                event_seq: it.event_seq,
                request_items: record.items.len(),
                problem: record.problem.clone(),
            });
        }
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::RevocationRequest;
    use crate::model::Serial;
    use crate::store::StoreOptions;

    fn change(ca: &CaId, serial: &str, reason: RevocationReason) -> CertChange {
        CertChange {
            ca: ca.clone(),
            serial: Serial::from_hex(serial).expect("hex"),
            change: Change::Revoke(RevocationRequest {
                revoked_at: None,
                reason: Some(reason),
                invalidity_date: None,
            }),
            distribution_points: None,
        }
    }

    #[test]
    fn changes_replays_and_refusals_are_recorded_and_paged() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (CaId::new("a").expect("id"), CaId::new("b").expect("id"));
        let store = Store::open(
            dir.path(),
            &[a.clone(), b.clone()],
            &StoreOptions::default(),
        )
        .expect("opens");
        let who = Requester {
            actor: "ca-prod".into(),
            address: "192.0.2.1:5000".into(),
            endpoint: Endpoint::Revocations,
        };
        // Unregistered serials: recorded under the lenient rules.
        let lenient = |_: &CaId| crate::ingest::Rules::default();
        let batch = vec![
            change(&a, "01", RevocationReason::KeyCompromise),
            change(&b, "02", RevocationReason::CertificateHold),
        ];
        commit_audited(
            &store,
            UnixTime(100),
            &batch,
            Some("revocations"),
            &who,
            &lenient,
        )
        .expect("ok");
        commit_audited(&store, UnixTime(200), &batch[..1], None, &who, &lenient).expect("replay");
        let conflict = vec![change(&a, "01", RevocationReason::Superseded)];
        let e = commit_audited(&store, UnixTime(300), &conflict, None, &who, &lenient)
            .expect_err("409");
        assert!(matches!(e, Error::Conflict(_)));
        record_refusal(
            &store,
            UnixTime(300),
            &who,
            &conflict,
            None,
            Problem {
                kind: "conflict".into(),
                status: 409,
                detail: e.to_string(),
            },
        )
        .expect("recorded");

        let all = |q: Query| read(&store, &q).expect("reads");
        let (entries, next) = all(Query {
            limit: 100,
            ..Query::default()
        });
        assert_eq!(next, None);
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (e.action, e.ca.as_deref(), e.outcome, e.request_items))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("revoke", Some("a"), "applied", 2),
                ("hold", Some("b"), "applied", 2),
                ("revoke", Some("a"), "replayed", 1),
                ("revoke", Some("a"), "refused", 1),
            ]
        );
        assert_eq!(entries[3].problem.as_ref().map(|p| p.status), Some(409));
        assert_eq!(entries[0].reason.as_deref(), Some("keyCompromise"));

        let (only_b, _) = all(Query {
            ca: Some(b.clone()),
            limit: 100,
            ..Query::default()
        });
        assert_eq!(only_b.len(), 1);
        let (recent, _) = all(Query {
            since: Some(UnixTime(200)),
            limit: 100,
            ..Query::default()
        });
        assert_eq!(recent.len(), 2);

        // Pages of one: every entry once, in order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = all(Query {
                limit: 1,
                after: after.clone(),
                ..Query::default()
            });
            seen.extend(page.into_iter().map(|e| e.id));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(
            seen,
            entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
        );
    }
}
