//! OCSP over HTTP (RFC 6960 Appendix A, RFC 9919 §3 and §5): POST and GET, with caching headers
//! on GET and conditional requests. Every answer is an OCSP response (an error status when need
//! be), never an HTML page.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use x509_ocsp::OcspResponseStatus;

use super::{AppState, cache};
use crate::ocsp::{Answer, request, response};

const OCSP_RESPONSE: &str = "application/ocsp-response";

fn error_answer(status: StatusCode, ocsp: OcspResponseStatus) -> HttpResponse {
    metrics::counter!(crate::metrics::OCSP_RESPONSES, "status" => crate::ocsp::status_label(ocsp), "method" => "POST")
        .increment(1);
    HttpResponse::build(status)
        .content_type(OCSP_RESPONSE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(response::error_response(ocsp))
}

/// A replica out of contact with its stream (`[replication] max_staleness`) answers tryLater:
/// never a stale "good".
fn stale(state: &AppState) -> bool {
    state.replication.as_ref().is_some_and(|r| r.is_stale())
}

/// `POST /ocsp` and `POST /`.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut body: web::Payload,
) -> HttpResponse {
    if stale(&state) {
        return error_answer(StatusCode::OK, OcspResponseStatus::TryLater);
    }
    let started = Instant::now();
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        if !ct.eq_ignore_ascii_case("application/ocsp-request") {
            return error_answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                OcspResponseStatus::MalformedRequest,
            );
        }
    }
    let limit = state.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            OcspResponseStatus::MalformedRequest,
        );
    }
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(256).min(limit));
    // A body drip-fed past the deadline holds a connection for nothing: cut it.
    let deadline = tokio::time::Instant::now() + state.body_timeout;
    loop {
        let Ok(chunk) = tokio::time::timeout_at(deadline, body.next()).await else {
            metrics::counter!(crate::metrics::OCSP_RESPONSES, "status" => "malformedRequest", "method" => "POST")
                .increment(1);
            return HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
                .content_type(OCSP_RESPONSE)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .force_close()
                .body(response::error_response(
                    OcspResponseStatus::MalformedRequest,
                ));
        };
        let Some(chunk) = chunk else { break };
        match chunk {
            Ok(c) if buf.len() + c.len() <= limit => buf.extend_from_slice(&c),
            Ok(_) => {
                return error_answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    OcspResponseStatus::MalformedRequest,
                );
            }
            Err(_) => {
                return error_answer(
                    StatusCode::BAD_REQUEST,
                    OcspResponseStatus::MalformedRequest,
                );
            }
        }
    }
    // The body, tagged so that it never matches a GET path in the responder's seen-requests cache.
    let mut raw = Vec::with_capacity(buf.len() + 1);
    raw.push(b'P');
    raw.extend_from_slice(&buf);
    let answer = match state.responder.answer_seen(&raw, "POST") {
        Some(hit) => Answer::Cached(hit),
        None => {
            state
                .responder
                .answer_for(&buf, Some(&raw), "POST", client(&req))
                .await
        }
    };
    observe(false, answer.label(), started);
    respond(&state, &req, answer, false)
}

/// `GET /ocsp/{base64}` and `GET /{base64}`: the path after `prefix` is the request.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    prefix: &'static str,
) -> HttpResponse {
    if stale(&state) {
        return error_answer(StatusCode::OK, OcspResponseStatus::TryLater);
    }
    let started = Instant::now();
    let path = req.uri().path();
    let encoded = path.strip_prefix(prefix).unwrap_or("");
    if encoded.len() > state.max_request_bytes * 2 {
        return error_answer(
            StatusCode::URI_TOO_LONG,
            OcspResponseStatus::MalformedRequest,
        );
    }
    let mut raw = Vec::with_capacity(encoded.len() + 1);
    raw.push(b'G');
    raw.extend_from_slice(encoded.as_bytes());
    if let Some(hit) = state.responder.answer_seen(&raw, "GET") {
        let answer = Answer::Cached(hit);
        observe(true, answer.label(), started);
        return respond(&state, &req, answer, true);
    }
    let answer = match request::decode_get_path(encoded) {
        Ok(der) if der.len() <= state.max_request_bytes => {
            state
                .responder
                .answer_for(&der, Some(&raw), "GET", client(&req))
                .await
        }
        _ => {
            metrics::counter!(crate::metrics::OCSP_RESPONSES, "status" => "malformedRequest", "method" => "GET").increment(1);
            Answer::Error(OcspResponseStatus::MalformedRequest)
        }
    };
    observe(true, answer.label(), started);
    respond(&state, &req, answer, true)
}

/// The client's address, as its connection's peer: never a header a client could forge.
fn client(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// Statuses whose latency histograms are resolved once (others are looked up per call).
const TIMED_STATUSES: [&str; 9] = [
    "good",
    "revoked",
    "unknown",
    "mixed",
    "malformedRequest",
    "internalError",
    "tryLater",
    "sigRequired",
    "unauthorized",
];

/// Records `vigie_ocsp_request_seconds` by method and status: from the handler's start to the
/// answer (decoding, cache or signing), without the network.
fn observe(is_get: bool, status: &'static str, started: Instant) {
    static HANDLES: OnceLock<Vec<metrics::Histogram>> = OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        TIMED_STATUSES
            .iter()
            .flat_map(|s| {
                ["GET", "POST"].map(|m| {
                    metrics::histogram!(crate::metrics::OCSP_REQUEST_SECONDS, "status" => *s, "method" => m)
                })
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let method = if is_get { "GET" } else { "POST" };
    match TIMED_STATUSES.iter().position(|s| *s == status) {
        Some(i) => handles[2 * i + usize::from(!is_get)].record(seconds),
        None => metrics::histogram!(crate::metrics::OCSP_REQUEST_SECONDS, "status" => status, "method" => method)
            .record(seconds),
    }
}

fn respond(state: &AppState, req: &HttpRequest, answer: Answer, is_get: bool) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    builder.content_type(OCSP_RESPONSE);
    let Some(signed) = answer.signed().filter(|s| is_get && s.http_cacheable) else {
        // Errors, "unknown" and POST answers are not for shared caches (RFC 9919 §5).
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        return builder.body(answer.der());
    };
    let now = state.clock.now();
    let validators = signed.validators();
    let validity = cache::Validity {
        etag: &validators.etag,
        this_update: signed.times.this_update,
        next_update: signed.times.next_update,
        last_modified: &validators.last_modified,
        expires: &validators.expires,
    };
    let not_modified = cache::not_modified(req, &validity);
    if not_modified {
        builder.status(StatusCode::NOT_MODIFIED);
    }
    cache::add_headers(&mut builder, &validity, now, state.max_age_cap);
    // `Cache-Tag: <ca>/<serial>`: a CDN that purges by tag drops every URL form (GET paths
    // differ by hash algorithm and base64 spelling) of one certificate's answer at once.
    if let Answer::Cached(c) = &answer
        && let (ca, Some(serial)) = c.certificate()
    {
        builder.insert_header((cache::CACHE_TAG, format!("{}/{}", ca, serial.to_hex())));
    }
    if not_modified {
        builder.finish()
    } else {
        builder.body(answer.der())
    }
}
