//! CRLs over HTTP, on the public listener (RFC 5280 §4.2.1.13 HTTP distribution points,
//! RFC 2585 §4.2 media type):
//!
//! | path | what |
//! |---|---|
//! | `GET /crl/` | JSON list of the CAs, their current CRL numbers and nextUpdate |
//! | `GET /crl/{ca}.crl`, `/crl/{ca}.pem` | the current complete CRL, DER or PEM |
//! | `GET /crl/{ca}-delta.crl`, `/crl/{ca}-delta.pem` | the current delta CRL |
//! | `GET /crl/{ca}/{number}.crl`, `.pem` | any CRL of the CA by number, for audit (within `[crl] keep_history`) |
//!
//! HEAD is answered as GET without the body. Current CRLs carry `ETag`, `Last-Modified`
//! (thisUpdate), `Expires` (nextUpdate) and `Cache-Control` with max-age ≤ nextUpdate − now
//! (and ≤ `[crl] max_age_cap`); `If-None-Match`/`If-Modified-Since` get 304. A CRL past its
//! nextUpdate is never served as current: 503 until a new one is built; nor is a delta CRL whose
//! base is past its nextUpdate ([`Served::delta_base_valid`]). A file name that is a CA
//! id ending in `-delta` names that CA's complete CRL (CA ids are matched first).
//!
//! HTTP serving is a subscriber of the CRL publication event ([`crate::crl::announce`]):
//! [`Served`] keeps, per CA, the current CRLs with their HTTP forms ([`ServedCrl`]: `ETag`,
//! HTTP dates, PEM), which the domain types do not carry.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::Serialize;

use super::{ApiError, AppState, cache};
use crate::crl::announce::Subscriber;
use crate::crl::{CrlKind, PublishedCrl, Publisher};
use crate::model::{CaId, UnixTime};

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

/// The answer for a CRL file name no CA serves: 503 when it names a configured CA that is
/// down (it did not load: its CRLs will be back when it does), 404 otherwise.
fn down_or_unknown(state: &AppState, stem: &str) -> ApiError {
    let registry = state.responder.registry();
    let down = registry.problem(stem).or_else(|| {
        stem.strip_suffix("-delta")
            .and_then(|ca| registry.problem(ca))
    });
    match down {
        Some(p) => ApiError::Unavailable(format!(
            "CA {} is down: {}: {}; its CRLs are not served until it loads",
            p.id, p.key, p.message
        )),
        None => ApiError::NotFound(format!("no CA {stem:?} is served here (see GET /crl/)")),
    }
}

fn internal(e: crate::crl::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A CRL with its HTTP forms.
#[derive(Debug)]
pub struct ServedCrl {
    /// The CRL.
    pub crl: Arc<PublishedCrl>,
    /// `ETag` of the DER form (the PEM form appends `-pem`).
    pub etag: String,
    /// `Last-Modified`: thisUpdate as an HTTP date.
    pub last_modified: String,
    /// `Expires`: nextUpdate as an HTTP date.
    pub expires: String,
    pem: OnceLock<Bytes>,
}

impl ServedCrl {
    /// The HTTP forms of `crl`.
    pub fn new(crl: Arc<PublishedCrl>) -> ServedCrl {
        // The tail of the DER is the end of the signature over everything else: it identifies
        // the content (RFC 9110 §8.8.3: a strong validator) without hashing 50 MB.
        let tail = &crl.der[crl.der.len().saturating_sub(8)..];
        let etag = format!("\"{}-{}\"", crl.record.number, hex::encode(tail));
        ServedCrl {
            last_modified: httpdate::fmt_http_date(crl.record.this_update.to_system_time()),
            expires: httpdate::fmt_http_date(crl.record.next_update.to_system_time()),
            etag,
            crl,
            pem: OnceLock::new(),
        }
    }

    /// The PEM form (`X509 CRL`, RFC 7468 §5), made on first use.
    pub fn pem(&self) -> Bytes {
        self.pem
            .get_or_init(|| crate::crl::pem(&self.crl.der))
            .clone()
    }

    /// The PEM form if it was already made.
    pub fn pem_if_made(&self) -> Option<Bytes> {
        self.pem.get().cloned()
    }

    /// `ETag` of the PEM form.
    pub fn pem_etag(&self) -> String {
        format!("{}-pem\"", self.etag.trim_end_matches('"'))
    }
}

#[derive(Default)]
struct ServedPair {
    full: Option<Arc<ServedCrl>>,
    /// The complete CRL `full` replaced: the base of the delta still served until the delta on
    /// the new base is built.
    previous_full: Option<Arc<ServedCrl>>,
    delta: Option<Arc<ServedCrl>>,
}

/// The CRLs HTTP serves: a subscriber of the publication event, holding each CA's current
/// complete and delta CRLs with their HTTP forms.
pub struct Served {
    /// A CA added by a reload gets its entry with its first announcement.
    cas: RwLock<HashMap<CaId, Arc<RwLock<ServedPair>>>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field(
                "cas",
                &self.cas.read().unwrap_or_else(|p| p.into_inner()).len(),
            )
            .finish()
    }
}

impl Served {
    /// Subscribes to `publisher`'s announcements (which replays what is current now).
    pub fn subscribe(publisher: &Publisher) -> Arc<Served> {
        let served = Arc::new(Served {
            cas: RwLock::new(
                publisher
                    .ca_ids()
                    .into_iter()
                    .map(|id| (id, Arc::new(RwLock::new(ServedPair::default()))))
                    .collect(),
            ),
        });
        publisher.subscribe(Arc::clone(&served) as Arc<dyn Subscriber>);
        served
    }

    /// Whether the base of `delta` (RFC 5280 §5.2.4: the complete CRL its DeltaCRLIndicator
    /// names) is still valid at `now`. A delta is only usable with its base: once the base is
    /// past its nextUpdate, a relying party cannot combine them, so the delta is not served
    /// either. A base not known here is judged by the current complete CRL.
    pub fn delta_base_valid(&self, ca: &str, delta: &ServedCrl, now: UnixTime) -> bool {
        let Some(pair) = self
            .cas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(id, _)| id.as_str() == ca)
            .map(|(_, pair)| Arc::clone(pair))
        else {
            return false;
        };
        let pair = pair.read().unwrap_or_else(|p| p.into_inner());
        let base = [&pair.full, &pair.previous_full]
            .into_iter()
            .flatten()
            .find(|f| Some(f.crl.record.number) == delta.crl.record.base)
            .or(pair.full.as_ref());
        base.is_some_and(|b| b.crl.is_valid_at(now))
    }

    /// The current CRL of `kind` of a CA, as last announced.
    pub fn get(&self, ca: &str, kind: CrlKind) -> Option<Arc<ServedCrl>> {
        let slot = self
            .cas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(id, _)| id.as_str() == ca)?
            .1
            .clone();
        let pair = slot.read().unwrap_or_else(|p| p.into_inner());
        match kind {
            CrlKind::Full => pair.full.clone(),
            CrlKind::Delta => pair.delta.clone(),
        }
    }
}

impl Subscriber for Served {
    fn announce(&self, crl: &Arc<PublishedCrl>) {
        let slot = Arc::clone(
            self.cas
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(crl.ca.clone())
                .or_default(),
        );
        let served = Arc::new(ServedCrl::new(Arc::clone(crl)));
        let mut pair = slot.write().unwrap_or_else(|p| p.into_inner());
        match crl.kind() {
            CrlKind::Full => {
                // The delta on the previous base stays served until the delta on this one is
                // built (moments later): it is still a valid CRL up to its nextUpdate, and a 503
                // in between would make fetchers fail for nothing.
                pair.previous_full = pair.full.replace(served);
            }
            CrlKind::Delta => pair.delta = Some(served),
        }
    }
}

/// The body, its `ETag` and media type. The PEM form of a large CRL takes tens of
/// milliseconds to make, once: that happens off the HTTP workers.
async fn body(
    crl: &Arc<ServedCrl>,
    form: Form,
) -> Result<(web::Bytes, String, &'static str), ApiError> {
    Ok(match form {
        Form::Der => (crl.crl.der.clone(), crl.etag.clone(), PKIX_CRL),
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
                return Err(down_or_unknown(&state, stem));
            }
        }
    };
    let crl = match kind {
        CrlKind::Full => state.served.get(ca, CrlKind::Full),
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
            state.served.get(ca, CrlKind::Delta)
        }
    };
    let now = state.clock.now();
    let Some(crl) = crl.filter(|c| c.crl.is_valid_at(now)) else {
        return Err(ApiError::Unavailable(format!(
            "no valid {} CRL for CA {ca} at the moment; one is being built",
            kind.label()
        )));
    };
    if kind == CrlKind::Delta && !state.served.delta_base_valid(ca, &crl, now) {
        return Err(ApiError::Unavailable(format!(
            "the base of CA {ca}'s delta CRL {} is past its nextUpdate: the delta is not served without a valid base; both are being built",
            crl.crl.record.number
        )));
    }
    let (bytes, etag, content_type) = body(&crl, form).await?;
    let validity = cache::Validity {
        etag: &etag,
        this_update: crl.crl.record.this_update,
        next_update: crl.crl.record.next_update,
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

/// `GET|HEAD /crl/{ca}/{number}.crl` (or `.pem`): a CRL by number, current or past, read
/// through the history cache and its limit of concurrent reads (503 with `Retry-After` beyond
/// it, see [`crate::crl::history`]). Its bytes never change: while it is valid it is cacheable
/// until its nextUpdate (at most a day); once expired it is evidence, not a current list, and
/// is served with `Cache-Control: no-cache` so that no cache hands it out as fresh.
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
        return Err(down_or_unknown(&state, &ca));
    }
    // A past CRL is read from the store (up to tens of MB): off the HTTP workers.
    let lookup = {
        let publisher = Arc::clone(publisher);
        let ca = ca.clone();
        web::block(move || publisher.history_crl(&ca, number))
    };
    let crl = match lookup
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    {
        Ok(crl) => crl,
        Err(crate::crl::Error::Busy) => {
            let mut resp = actix_web::ResponseError::error_response(&ApiError::Unavailable(
                crate::crl::Error::Busy.to_string(),
            ));
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return Ok(resp);
        }
        Err(e) => return Err(internal(e)),
    }
    .ok_or_else(|| {
        ApiError::NotFound(format!(
            "CA {ca} has no CRL number {number} (never built, or older than [crl] keep_history)"
        ))
    })?;
    let crl = Arc::new(ServedCrl::new(crl));
    let (bytes, etag, content_type) = body(&crl, form).await?;
    let now = state.clock.now();
    let cache_control = if crl.crl.is_valid_at(now) {
        format!(
            "max-age={}, public, no-transform",
            (crl.crl.record.next_update.0 - now.0).clamp(0, 86400)
        )
    } else {
        "no-cache".to_owned()
    };
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::LAST_MODIFIED, crl.last_modified.as_str()))
        .insert_header((cache::CACHE_TAG, format!("{ca}/crl")));
    let validity = cache::Validity {
        etag: &etag,
        this_update: crl.crl.record.this_update,
        next_update: crl.crl.record.next_update,
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
    let registry = state.responder.registry();
    let cas: Vec<ListedCa> = publisher
        .ca_ids()
        .into_iter()
        .filter_map(|id| {
            let current = publisher.current(id.as_str()).ok()?;
            let issuer = registry
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
