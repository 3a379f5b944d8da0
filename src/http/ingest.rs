//! The CA's ingest API on the admin listener (`openapi.yaml` at the repository root describes it):
//!
//! - `POST /v1/certificates`: register issued certificates (PEM chain, DER, or JSON);
//! - `POST /v1/revocations`: revoke (one object, an array, or NDJSON);
//! - `DELETE /v1/revocations/{ca}/{serial}`: release a certificateHold;
//! - `GET /v1/certificates/{ca}/{serial}`: the record;
//! - `GET /v1/cas`: the CAs served;
//! - `GET /v1/audit`: the audit trail of the writes ([`crate::ingest::audit`]).
//!
//! Each request is authenticated ([`Caller`]), parsed by [`crate::ingest::request`], and applied
//! as **one** store transaction ([`crate::ingest::commit`]) on the blocking pool: the answer is
//! sent once the transaction is durable, so an acknowledged event survives a crash, and the OCSP
//! responder's next answer already reflects it. A batch is all or nothing. Replays answer 200
//! with `"result": "unchanged"`. Each write request — applied, replayed or refused — is recorded
//! in the audit trail with who made it and from where.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use super::auth::Caller;
use super::{ApiError, AppState, count};
use crate::ingest::audit::{self, Endpoint, Requester};
use crate::ingest::request::{self, CertChange};
use crate::ingest::{self, Change, Outcome, certificate};
use crate::metrics as m;
use crate::model::{CaId, CertRecord, CertStatus, Serial, UnixTime};

/// Largest request body accepted (a batch), in bytes.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// A certificate record as the API shows it.
#[derive(Serialize, Debug)]
pub struct RecordView {
    /// CA id.
    pub ca: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// `good`, `revoked` or `unknown` (neither issued nor revoked: a released hold of a
    /// certificate whose issuance was never registered).
    pub status: &'static str,
    /// The registered issuance, if any.
    pub issuance: Option<IssuanceView>,
    /// The revocation in force, if any.
    pub revocation: Option<RevocationView>,
    /// Sequence number of the last event that changed this record.
    pub version: u64,
}

/// The issuance part of a [`RecordView`].
#[derive(Serialize, Debug)]
pub struct IssuanceView {
    /// RFC 3339; `null` when not known (imported from `index.txt`).
    pub not_before: Option<String>,
    /// RFC 3339.
    pub not_after: String,
    /// Subject, one line.
    pub subject: Option<String>,
    /// Profile hints (key usages).
    pub profile: Option<String>,
}

/// The revocation part of a [`RecordView`].
#[derive(Serialize, Debug)]
pub struct RevocationView {
    /// RFC 3339.
    pub revoked_at: String,
    /// RFC 5280 name, `null` when the CA gave none.
    pub reason: Option<&'static str>,
    /// RFC 3339.
    pub invalidity_date: Option<String>,
}

impl RecordView {
    /// The view of `record`.
    pub fn new(ca: &CaId, serial: &Serial, record: &CertRecord) -> RecordView {
        RecordView {
            ca: ca.to_string(),
            serial: serial.to_hex(),
            status: match record.status() {
                CertStatus::Good => "good",
                CertStatus::Revoked(_) => "revoked",
                CertStatus::Unknown => "unknown",
            },
            issuance: record.issuance.as_ref().map(|i| IssuanceView {
                not_before: (i.not_before != ingest::NOT_BEFORE_UNKNOWN)
                    .then(|| i.not_before.to_rfc3339()),
                not_after: i.not_after.to_rfc3339(),
                subject: i.subject.clone(),
                profile: i.profile.clone(),
            }),
            revocation: record.revocation.as_ref().map(|r| RevocationView {
                revoked_at: r.revoked_at.to_rfc3339(),
                reason: r.reason.map(|r| r.name()),
                invalidity_date: r.invalidity_date.map(|d| d.to_rfc3339()),
            }),
            version: record.version,
        }
    }
}

/// One item of a write's answer.
#[derive(Serialize, Debug)]
pub struct ItemView {
    /// `applied` (an event was written) or `unchanged` (a replay: nothing written).
    pub result: &'static str,
    /// The sequence number of the event written, `null` when unchanged.
    pub event_seq: Option<u64>,
    /// Revocations: whether the certificate's issuance is registered (`false`: recorded under
    /// `accept_unregistered_revocations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// The record after the change.
    #[serde(flatten)]
    pub record: RecordView,
}

/// The answer to a POST.
#[derive(Serialize, Debug)]
pub struct BatchView {
    /// Items that wrote an event.
    pub applied: usize,
    /// Items that were replays.
    pub unchanged: usize,
    /// One per item, in request order.
    pub results: Vec<ItemView>,
}

fn item(change: &CertChange, outcome: &Outcome) -> ItemView {
    let (result, event_seq) = match outcome {
        Outcome::Applied { seq, .. } => ("applied", Some(*seq)),
        Outcome::Unchanged { .. } => ("unchanged", None),
    };
    let kind = match &change.change {
        Change::Issue(_) => "issued",
        Change::Revoke(_) => "revoked",
        Change::Release => "released",
    };
    metrics::counter!(m::INGEST_EVENTS, "kind" => kind, "result" => result).increment(1);
    ItemView {
        result,
        event_seq,
        registered: matches!(change.change, Change::Revoke(_))
            .then(|| outcome.record().issuance.is_some()),
        record: RecordView::new(&change.ca, &change.serial, outcome.record()),
    }
}

async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge(MAX_BODY_BYTES));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn content_type(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Commits `changes` as one durable transaction with its audit record, timing it for
/// `vigie_ingest_commit_seconds`.
fn commit_timed(
    st: &AppState,
    changes: &[CertChange],
    label: Option<&str>,
    who: &Requester,
) -> Result<Vec<Outcome>, ingest::Error> {
    let start = std::time::Instant::now();
    let registry = st.responder.registry();
    let rules =
        |ca: &CaId| ingest::Rules::of(registry.by_id(ca.as_str()).map(|c| &**c), st.max_clock_skew);
    let outcomes = audit::commit_audited(&st.store, st.clock.now(), changes, label, who, &rules)?;
    metrics::histogram!(m::INGEST_COMMIT_SECONDS).record(start.elapsed().as_secs_f64());
    Ok(outcomes)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ingest::Error> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking pool: {e}")))?
        .map_err(ApiError::from)
}

/// Who is calling, for the audit trail.
fn requester(caller: &Caller, req: &HttpRequest, endpoint: Endpoint) -> Requester {
    Requester {
        actor: caller.actor(),
        address: req
            .peer_addr()
            .map_or_else(|| "?".to_owned(), |a| a.to_string()),
        endpoint,
    }
}

/// Records a refused request in the audit trail (a synced write of its own), then hands the
/// refusal back. Server failures (5xx) are not refusals: they are logged, not audited.
fn refused(
    st: &AppState,
    who: &Requester,
    changes: &[CertChange],
    target: Option<(&str, &str)>,
    e: ApiError,
) -> ApiError {
    let status = actix_web::ResponseError::status_code(&e);
    if status.is_client_error() {
        let problem = audit::Problem {
            kind: e.kind().to_owned(),
            status: status.as_u16(),
            detail: e.to_string(),
        };
        if let Err(err) =
            audit::record_refusal(&st.store, st.clock.now(), who, changes, target, problem)
        {
            return ApiError::Internal(format!(
                "recording a refused request in the audit trail: {err}"
            ));
        }
    }
    e
}

/// Runs a write on the blocking pool: `f` returns the changes it parsed (possibly none) with
/// the result of committing them; a refusal is recorded before it is returned.
async fn write(
    state: &web::Data<AppState>,
    who: Requester,
    f: impl FnOnce(&AppState, &Requester) -> (Vec<CertChange>, Result<Vec<Outcome>, ingest::Error>)
    + Send
    + 'static,
) -> Result<(Vec<CertChange>, Vec<Outcome>), ApiError> {
    let st = state.clone();
    web::block(move || {
        let app: &AppState = &st;
        let (changes, result) = f(app, &who);
        match result {
            Ok(outcomes) => Ok((changes, outcomes)),
            Err(e) => Err(refused(&st, &who, &changes, None, ApiError::from(e))),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("blocking pool: {e}")))?
}

/// Reads the body; a refusal (too large, broken) is audited.
async fn read_body_audited(
    state: &web::Data<AppState>,
    who: &Requester,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, ApiError> {
    match read_body(req, payload).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let (st, who) = (state.clone(), who.clone());
            web::block(move || refused(&st, &who, &[], None, e))
                .await
                .map_err(|e| ApiError::Internal(format!("blocking pool: {e}")))
                .and_then(Err)
        }
    }
}

fn answer(
    caller: &Caller,
    endpoint: &'static str,
    changes: &[CertChange],
    outcomes: &[Outcome],
) -> HttpResponse {
    let results: Vec<ItemView> = changes
        .iter()
        .zip(outcomes)
        .map(|(c, o)| item(c, o))
        .collect();
    let applied = results.iter().filter(|r| r.event_seq.is_some()).count();
    let unchanged = results.len() - applied;
    if applied > 0 {
        tracing::info!(%caller, endpoint, applied, unchanged, first_serial = %changes[0].serial, first_ca = %changes[0].ca, "ingest");
    } else {
        tracing::debug!(%caller, endpoint, unchanged, "ingest replay");
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(BatchView {
            applied,
            unchanged,
            results,
        })
}

/// Refuses a write on a node that is not the writer (`[replication]`): a replica with 403, a
/// writer that has not claimed the stream or was fenced off with 503.
fn check_writable(state: &AppState) -> Result<(), ApiError> {
    use crate::replicate::Refusal;
    match state.replication.as_ref().and_then(|r| r.refusal()) {
        None => Ok(()),
        Some(Refusal::Replica) => Err(ApiError::Forbidden(
            "this node is a replica ([replication] role = \"replica\"): it refuses writes; send them to the writer"
                .into(),
        )),
        Some(Refusal::NotWriter(why)) => Err(ApiError::Unavailable(format!(
            "this writer does not accept writes: {why}"
        ))),
    }
}

/// With `[replication] ack = "stream"`: waits until the stream holds every event the answer
/// covers (for a replay, the event that made the record what it is), else 503.
async fn acknowledged(
    state: &AppState,
    changes: &[CertChange],
    outcomes: &[Outcome],
) -> Result<(), ApiError> {
    let Some(replication) = &state.replication else {
        return Ok(());
    };
    let mut targets: Vec<(CaId, u64)> = Vec::new();
    for (c, o) in changes.iter().zip(outcomes) {
        let v = o.record().version;
        match targets.iter_mut().find(|(ca, _)| *ca == c.ca) {
            Some((_, seq)) => *seq = (*seq).max(v),
            None => targets.push((c.ca.clone(), v)),
        }
    }
    replication.wait_acknowledged(&targets).await.map_err(|e| {
        ApiError::Unavailable(format!(
            "not acknowledged: {e}; the events are stored by the writer and will be published when the stream answers: retry (a replay is answered once they are)"
        ))
    })
}

/// `POST /v1/revocations`.
pub async fn post_revocations(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    count("admin", "revocations");
    check_writable(&state)?;
    let who = requester(&caller, &req, Endpoint::Revocations);
    let body = read_body_audited(&state, &who, &req, payload).await?;
    let ct = content_type(&req);
    let (changes, outcomes) = write(&state, who, move |st, who| {
        let registry = st.responder.registry();
        match request::revocations(ct.as_deref(), &body, |ca| {
            registry.by_id(ca.as_str()).is_some()
        }) {
            Ok((changes, batch)) => {
                let result = commit_timed(st, &changes, batch.then_some("revocations"), who);
                (changes, result)
            }
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await?;
    acknowledged(&state, &changes, &outcomes).await?;
    Ok(answer(&caller, "revocations", &changes, &outcomes))
}

/// `POST /v1/certificates`.
pub async fn post_certificates(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    count("admin", "certificates");
    check_writable(&state)?;
    let who = requester(&caller, &req, Endpoint::Certificates);
    let body = read_body_audited(&state, &who, &req, payload).await?;
    let ct = content_type(&req);
    let (changes, outcomes) = write(&state, who, move |st, who| {
        let registry = st.responder.registry();
        let parsed = request::certificates(ct.as_deref(), &body).and_then(|ders| {
            ders.iter()
                .enumerate()
                .map(|(i, der)| {
                    certificate::identify(&registry, der)
                        .map(|c| CertChange {
                            ca: c.ca,
                            serial: c.serial,
                            change: Change::Issue(c.issuance),
                            distribution_points: Some(c.distribution_points),
                        })
                        .map_err(|e| e.within(&format!("certificates[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()
        });
        match parsed {
            Ok(changes) => {
                let result = commit_timed(st, &changes, Some("certificates"), who);
                if let Ok(outcomes) = &result {
                    for (c, o) in changes.iter().zip(outcomes) {
                        if let (Outcome::Applied { .. }, Some(dps)) = (o, &c.distribution_points) {
                            st.crl.note_registered(&c.ca, &c.serial, dps);
                        }
                    }
                }
                (changes, result)
            }
            Err(e) => (Vec::new(), Err(e)),
        }
    })
    .await?;
    acknowledged(&state, &changes, &outcomes).await?;
    Ok(answer(&caller, "certificates", &changes, &outcomes))
}

fn address(state: &AppState, ca: &str, serial: &str) -> Result<(CaId, Serial), ApiError> {
    let ca = state
        .responder
        .registry()
        .by_id(ca)
        .map(|c| c.id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("no CA with id {ca:?} is configured")))?;
    let serial = request::parse_serial("serial", serial)?;
    Ok((ca, serial))
}

/// `DELETE /v1/revocations/{ca}/{serial}`: releases a certificateHold.
pub async fn delete_revocation(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    count("admin", "release");
    check_writable(&state)?;
    let who = requester(&caller, &req, Endpoint::Release);
    let (ca, serial) = match address(&state, &path.0, &path.1) {
        Ok(a) => a,
        Err(e) => {
            let (st, who, path) = (state.clone(), who.clone(), path.into_inner());
            return web::block(move || refused(&st, &who, &[], Some((&path.0, &path.1)), e))
                .await
                .map_err(|e| ApiError::Internal(format!("blocking pool: {e}")))
                .and_then(Err);
        }
    };
    let changes = vec![CertChange {
        ca,
        serial,
        change: Change::Release,
        distribution_points: None,
    }];
    let (changes, outcomes) = write(&state, who, move |st, who| {
        let result = commit_timed(st, &changes, None, who);
        (changes, result)
    })
    .await?;
    acknowledged(&state, &changes, &outcomes).await?;
    let view = item(&changes[0], &outcomes[0]);
    if view.event_seq.is_some() {
        tracing::info!(%caller, ca = %changes[0].ca, serial = %changes[0].serial, "certificateHold released");
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
}

/// `GET /v1/audit?since=RFC3339&ca=ID&limit=N&after=ID`: the audit trail, oldest first, at
/// most `limit` entries (default 1000, at most 10000). When more remain, the
/// `Vigie-Audit-Next` header holds the `after` value of the next page.
pub async fn get_audit(
    _caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    count("admin", "audit");
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        since: Option<String>,
        ca: Option<String>,
        limit: Option<usize>,
        after: Option<String>,
    }
    let p = web::Query::<Params>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    let since = match p.since.as_deref() {
        Some(s) => Some(
            UnixTime::parse_rfc3339(s).ok_or_else(|| ApiError::Unprocessable {
                field: "since".into(),
                message: format!("{s:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)"),
            })?,
        ),
        None => None,
    };
    let ca = match p.ca.as_deref() {
        Some(id) => Some(
            state
                .responder
                .registry()
                .by_id(id)
                .map(|c| c.id.clone())
                .ok_or_else(|| ApiError::Unprocessable {
                    field: "ca".into(),
                    message: format!("no CA with id {id:?} is configured"),
                })?,
        ),
        None => None,
    };
    let query = audit::Query {
        since,
        ca,
        limit: p.limit.unwrap_or(1000),
        after: p.after,
    };
    let st = state.clone();
    let (entries, next) = blocking(move || audit::read(&st.store, &query)).await?;
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(next) = next {
        b.insert_header(("Vigie-Audit-Next", next));
    }
    Ok(b.json(entries))
}

/// `GET /v1/certificates/{ca}/{serial}`.
pub async fn get_certificate(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    count("admin", "certificate");
    let (ca, serial) = address(&state, &path.0, &path.1)?;
    let record = state
        .store
        .cert(&ca, &serial)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "serial {serial} of CA {ca} was never registered or revoked"
            ))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RecordView::new(&ca, &serial, &record)))
}

/// One CA in `GET /v1/cas`.
#[derive(Serialize, Debug)]
pub struct CaView {
    /// Identifier.
    pub id: String,
    /// Subject of the CA certificate.
    pub subject: String,
    /// Sequence number of the CA's last event (0: none yet).
    pub last_event_seq: u64,
}

/// `GET /v1/cas`.
pub async fn get_cas(
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    count("admin", "cas");
    let cas = state
        .responder
        .registry()
        .iter()
        .map(|ca| {
            Ok(CaView {
                id: ca.id.to_string(),
                subject: ca.subject.clone(),
                last_event_seq: state
                    .store
                    .last_seq(&ca.id)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "cas": cas })))
}
