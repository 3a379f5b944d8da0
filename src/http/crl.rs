//! CRLs over HTTP, on the public listener (RFC 5280 §4.2.1.13 HTTP distribution points,
//! RFC 2585 §4.2 media type):
//!
//! | path | what |
//! |---|---|
//! | `GET /crl/` | JSON list of the CAs, their current CRL numbers and nextUpdate |
//! | `GET /crl/{ca}.crl`, `/crl/{ca}.pem` | the current complete CRL, DER or PEM |
//! | `GET /crl/{ca}-delta.crl`, `/crl/{ca}-delta.pem` | the current delta CRL |
//! | `GET /crl/{ca}/{number}.crl`, `.pem` | any CRL of the CA by number, for audit |
//!
//! HEAD is answered as GET without the body. Current CRLs carry `ETag`, `Last-Modified`
//! (thisUpdate), `Expires` (nextUpdate) and `Cache-Control` with max-age ≤ nextUpdate − now
//! (and ≤ `[crl] max_age_cap`); `If-None-Match`/`If-Modified-Since` get 304. A CRL past its
//! nextUpdate is never served as current: 503 until a new one is built. A file name that is a CA
//! id ending in `-delta` names that CA's complete CRL (CA ids are matched first).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{ApiError, AppState, cache};
use crate::crl::{CrlKind, PublishedCrl};

/// `application/pkix-crl` (RFC 2585 §4.2).
pub const PKIX_CRL: &str = "application/pkix-crl";
/// The PEM form's media type.
pub const PEM_CRL: &str = "application/x-pem-file";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Der,
    Pem,
}

fn split_extension(file: &str) -> Option<(&str, Form)> {
    if let Some(stem) = file.strip_suffix(".crl") {
        Some((stem, Form::Der))
    } else {
        file.strip_suffix(".pem").map(|stem| (stem, Form::Pem))
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::NotFound(format!("no such CRL: {path}"))
}

fn internal(e: crate::crl::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The body, its `ETag` and media type. The PEM form of a large CRL takes tens of
/// milliseconds to make, once: that happens off the HTTP workers.
async fn body(
    crl: &Arc<PublishedCrl>,
    form: Form,
) -> Result<(web::Bytes, String, &'static str), ApiError> {
    Ok(match form {
        Form::Der => (crl.der.clone(), crl.etag.clone(), PKIX_CRL),
        Form::Pem => {
            let pem = match crl.pem_if_made() {
                Some(pem) => pem,
                None => {
                    let crl = Arc::clone(crl);
                    web::block(move || crl.pem())
                        .await
                        .map_err(|e| ApiError::Internal(e.to_string()))?
                }
            };
            (pem, crl.pem_etag(), PEM_CRL)
        }
    })
}

/// `GET|HEAD /crl/{file}`: a current complete or delta CRL.
pub async fn current(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::count("public", "crl");
    let (stem, form) = split_extension(&file).ok_or_else(|| not_found(req.path()))?;
    let publisher = &state.crl;
    let (ca, kind) = if publisher.current(stem).is_ok() {
        (stem, CrlKind::Full)
    } else {
        match stem.strip_suffix("-delta") {
            Some(ca) if publisher.current(ca).is_ok() => (ca, CrlKind::Delta),
            _ => {
                return Err(ApiError::NotFound(format!(
                    "no CA {stem:?} is served here (see GET /crl/)"
                )));
            }
        }
    };
    let current = publisher.current(ca).map_err(internal)?;
    let crl = match kind {
        CrlKind::Full => current.full,
        CrlKind::Delta => {
            if publisher
                .policy(ca)
                .map_err(internal)?
                .delta_schedule
                .is_none()
            {
                return Err(ApiError::NotFound(format!(
                    "CA {ca} publishes no delta CRLs"
                )));
            }
            current.delta
        }
    };
    let now = state.clock.now();
    let Some(crl) = crl.filter(|c| c.is_valid_at(now)) else {
        return Err(ApiError::Unavailable(format!(
            "no valid {} CRL for CA {ca} at the moment; one is being built",
            kind.label()
        )));
    };
    let (bytes, etag, content_type) = body(&crl, form).await?;
    let validity = cache::Validity {
        etag: &etag,
        this_update: crl.record.this_update,
        next_update: crl.record.next_update,
        last_modified: &crl.last_modified,
        expires: &crl.expires,
    };
    let mut b = HttpResponse::Ok();
    cache::add_headers(&mut b, &validity, now, publisher.settings().max_age_cap);
    b.insert_header((cache::CACHE_TAG, format!("{ca}/crl")));
    if cache::not_modified(&req, &validity) {
        return Ok(b.status(StatusCode::NOT_MODIFIED).finish());
    }
    Ok(b.content_type(content_type).body(bytes))
}

/// `GET|HEAD /crl/{ca}/{number}.crl` (or `.pem`): a CRL by number, current or past. Its bytes
/// never change, so it is cacheable for a day whatever its nextUpdate; it may be expired —
/// this is the audit trail, not what relying parties check certificates against.
pub async fn by_number(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    super::count("public", "crl_history");
    let (ca, file) = path.into_inner();
    let (stem, form) = split_extension(&file).ok_or_else(|| not_found(req.path()))?;
    let number: u64 = stem.parse().map_err(|_| not_found(req.path()))?;
    let publisher = &state.crl;
    if publisher.current(&ca).is_err() {
        return Err(ApiError::NotFound(format!(
            "no CA {ca:?} is served here (see GET /crl/)"
        )));
    }
    // A past CRL is read from the store (up to tens of MB): off the HTTP workers.
    let lookup = {
        let publisher = Arc::clone(publisher);
        let ca = ca.clone();
        web::block(move || publisher.by_number(&ca, number))
    };
    let crl = lookup
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("CA {ca} has no CRL number {number}")))?;
    let (bytes, etag, content_type) = body(&crl, form).await?;
    let mut b = HttpResponse::Ok();
    b.insert_header((
        header::CACHE_CONTROL,
        "max-age=86400, public, no-transform, immutable",
    ))
    .insert_header((header::ETAG, etag.as_str()))
    .insert_header((header::LAST_MODIFIED, crl.last_modified.as_str()))
    .insert_header((cache::CACHE_TAG, format!("{ca}/crl")));
    let validity = cache::Validity {
        etag: &etag,
        this_update: crl.record.this_update,
        next_update: crl.record.next_update,
        last_modified: &crl.last_modified,
        expires: &crl.expires,
    };
    if cache::not_modified(&req, &validity) {
        return Ok(b.status(StatusCode::NOT_MODIFIED).finish());
    }
    Ok(b.content_type(content_type).body(bytes))
}

#[derive(Serialize)]
struct Listed {
    number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<u64>,
    this_update: String,
    next_update: String,
    valid: bool,
    entries: u64,
    bytes: u64,
    url: String,
}

#[derive(Serialize)]
struct ListedCa {
    id: String,
    issuer: String,
    full: Option<Listed>,
    delta: Option<Listed>,
}

/// `GET|HEAD /crl/`: the CAs and their current CRLs.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    super::count("public", "crl_list");
    let now = state.clock.now();
    let publisher = &state.crl;
    let listed = |c: &PublishedCrl, url: String| Listed {
        number: c.record.number,
        base: c.record.base,
        this_update: c.record.this_update.to_rfc3339(),
        next_update: c.record.next_update.to_rfc3339(),
        valid: c.is_valid_at(now),
        entries: c.record.entries,
        bytes: c.record.bytes,
        url,
    };
    let cas: Vec<ListedCa> = publisher
        .ca_ids()
        .filter_map(|id| {
            let current = publisher.current(id.as_str()).ok()?;
            let issuer = state
                .responder
                .registry()
                .by_id(id.as_str())
                .map(|ca| ca.subject.clone())
                .unwrap_or_default();
            Some(ListedCa {
                id: id.to_string(),
                issuer,
                full: current
                    .full
                    .as_deref()
                    .map(|c| listed(c, format!("/crl/{id}.crl"))),
                delta: current
                    .delta
                    .as_deref()
                    .map(|c| listed(c, format!("/crl/{id}-delta.crl"))),
            })
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(serde_json::json!({ "cas": cas }))
}
