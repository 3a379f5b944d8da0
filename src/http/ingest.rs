//! The CA's ingest API on the admin listener (`openapi.yaml` at the repository root describes it):
//!
//! - `POST /v1/certificates`: register issued certificates (PEM chain, DER, or JSON);
//! - `POST /v1/revocations`: revoke (one object, an array, or NDJSON);
//! - `DELETE /v1/revocations/{ca}/{serial}`: release a certificateHold;
//! - `GET /v1/certificates/{ca}/{serial}`: the record;
//! - `GET /v1/cas`: the CAs served.
//!
//! Each request is authenticated ([`Caller`]), parsed by [`crate::ingest::request`], and applied
//! as **one** store transaction ([`crate::ingest::commit`]) on the blocking pool: the answer is
//! sent once the transaction is durable, so an acknowledged event survives a crash, and the OCSP
//! responder's next answer already reflects it. A batch is all or nothing. Replays answer 200
//! with `"result": "unchanged"`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use super::auth::Caller;
use super::{ApiError, AppState, count};
use crate::ingest::request::{self, CertChange};
use crate::ingest::{self, Change, Outcome, certificate};
use crate::metrics as m;
use crate::model::{CaId, CertRecord, CertStatus, Serial};

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

/// Commits `changes` as one durable transaction, timing it for `vigie_ingest_commit_seconds`.
fn commit_timed(
    st: &AppState,
    changes: &[CertChange],
    label: Option<&str>,
) -> Result<Vec<Outcome>, ingest::Error> {
    let start = std::time::Instant::now();
    let outcomes = ingest::commit(&st.store, st.clock.now(), changes, label)?;
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

/// `POST /v1/revocations`.
pub async fn post_revocations(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    count("admin", "revocations");
    let body = read_body(&req, payload).await?;
    let ct = content_type(&req);
    let st = state.clone();
    let (changes, outcomes) = blocking(move || {
        let registry = st.responder.registry();
        let (changes, batch) = request::revocations(ct.as_deref(), &body, |ca| {
            registry.by_id(ca.as_str()).is_some()
        })?;
        let outcomes = commit_timed(&st, &changes, batch.then_some("revocations"))?;
        Ok((changes, outcomes))
    })
    .await?;
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
    let body = read_body(&req, payload).await?;
    let ct = content_type(&req);
    let st = state.clone();
    let (changes, outcomes) = blocking(move || {
        let registry = st.responder.registry();
        let ders = request::certificates(ct.as_deref(), &body)?;
        let changes = ders
            .iter()
            .enumerate()
            .map(|(i, der)| {
                certificate::identify(registry, der)
                    .map(|c| CertChange {
                        ca: c.ca,
                        serial: c.serial,
                        change: Change::Issue(c.issuance),
                        distribution_points: Some(c.distribution_points),
                    })
                    .map_err(|e| e.within(&format!("certificates[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = commit_timed(&st, &changes, Some("certificates"))?;
        for (c, o) in changes.iter().zip(&outcomes) {
            if let (Outcome::Applied { .. }, Some(dps)) = (o, &c.distribution_points) {
                st.crl.note_registered(&c.ca, &c.serial, dps);
            }
        }
        Ok((changes, outcomes))
    })
    .await?;
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
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    count("admin", "release");
    let (ca, serial) = address(&state, &path.0, &path.1)?;
    let st = state.clone();
    let change = CertChange {
        ca,
        serial,
        change: Change::Release,
        distribution_points: None,
    };
    let changes = vec![change];
    let (changes, outcomes) = blocking(move || {
        let outcomes = commit_timed(&st, &changes, None)?;
        Ok((changes, outcomes))
    })
    .await?;
    let view = item(&changes[0], &outcomes[0]);
    if view.event_seq.is_some() {
        tracing::info!(%caller, ca = %changes[0].ca, serial = %changes[0].serial, "certificateHold released");
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
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
