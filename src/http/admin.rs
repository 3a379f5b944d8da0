//! Operations endpoints: `/healthz` (the process answers), `/readyz` (every CA can answer:
//! signer certificates valid, a complete CRL published and not past its nextUpdate),
//! `/metrics` (Prometheus text). `/status` (the operator's page, [`super::status`]) shares the
//! access rule of `/metrics`: [`operator_access`].
//! `/metrics` (Prometheus text). `/readyz` also reports the publication sinks (`publish`: queue
//! depth, last success, lag), without letting a lagging sink make the service unready: serving
//! matters more.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::AppState;

/// `GET /healthz`.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({"status": "ok"}))
}

#[derive(Serialize)]
struct CaReadiness {
    id: String,
    ready: bool,
    /// `None` for a CA that did not load.
    ocsp_signer_not_after: Option<String>,
    problems: Vec<String>,
}

/// `?strict=true` (or `1`): ready only when every configured CA is. `false`, `0` or no
/// `strict` is the default; any other value (or the parameter twice) is a 400, not a guess.
fn strict(req: &HttpRequest) -> Result<bool, String> {
    let mut values = req
        .query_string()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| *k == "strict")
        .map(|(_, v)| v);
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(false),
        (Some(v), None) => v,
        (Some(_), Some(_)) => return Err("query parameter strict is given twice".into()),
    };
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!(
            "query parameter strict: {other:?} is not a boolean (true or false)"
        )),
    }
}

/// `GET /readyz`: each CA's readiness (`cas`, with the problems of those that are not: no valid
/// CRL, an expired signer, or a CA left out because it did not load). 200 while at least one
/// CA is ready — a load balancer must not drop the healthy CAs for one that is down — and
/// 503 when none is; with `?strict=true`, 503 while any CA is not ready.
pub async fn readyz(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let strict = match strict(&req) {
        Ok(strict) => strict,
        Err(message) => {
            return actix_web::ResponseError::error_response(&super::error::ApiError::BadRequest(
                message,
            ));
        }
    };
    let now = state.clock.now();
    let crl = state.crl.readiness(now);
    let registry = state.responder.registry();
    let mut cas: Vec<CaReadiness> = registry
        .iter()
        .map(|ca| {
            let signer = ca.signer_at(now);
            let mut problems = Vec::new();
            if signer.not_after <= now {
                problems.push("OCSP signer certificate expired".to_owned());
            }
            if let Some((_, Some(problem))) = crl.iter().find(|(id, _)| *id == ca.id) {
                problems.push(problem.clone());
            }
            CaReadiness {
                id: ca.id.to_string(),
                ready: problems.is_empty(),
                ocsp_signer_not_after: Some(signer.not_after.to_rfc3339()),
                problems,
            }
        })
        .collect();
    // The CAs that did not load: not ready, with why.
    cas.extend(registry.problems().iter().map(|p| CaReadiness {
        id: p.id.to_string(),
        ready: false,
        ocsp_signer_not_after: None,
        problems: vec![format!("not loaded: {}: {}", p.key, p.message)],
    }));
    // A replica out of contact with its stream, or that stopped following it, is not ready.
    let replication_problem = state
        .replication
        .as_ref()
        .and_then(|r| r.readiness_problem());
    let ready = if strict {
        cas.iter().all(|c| c.ready)
    } else {
        cas.iter().any(|c| c.ready)
    } && replication_problem.is_none();
    let publish = state.publication.status(now);
    // A store that cannot write stops ingest (503), not OCSP nor CRL serving: it is reported,
    // and leaves readiness to what is served.
    // (A probe write may be made: off the async workers.)
    let st = std::sync::Arc::clone(&state.store);
    let store = web::block(move || crate::store::health::readiness(&st))
        .await
        .unwrap_or_else(
            |e| serde_json::json!({"writable": false, "problem": e.to_string(), "since": null}),
        );
    let mut body =
        serde_json::json!({"ready": ready, "cas": cas, "publish": publish, "store": store});
    if let Some(r) = &state.replication {
        body["replication"] = r.summary();
        body["replication"]["problem"] = serde_json::json!(replication_problem);
    }
    let mut b = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    b.insert_header(("Cache-Control", "no-store")).json(body)
}

/// Who may read the operator's views, `/metrics` and `/status`: one rule for both. Open, as
/// Prometheus expects, unless `[admin] metrics_token_sha256` is set: then the reader sends that
/// bearer token (`authorization` in Prometheus's scrape configuration).
pub fn operator_access(state: &AppState, req: &HttpRequest) -> Result<(), super::ApiError> {
    let authorization = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if state.admin_auth.metrics_allowed(authorization) {
        Ok(())
    } else {
        Err(super::ApiError::Unauthorized)
    }
}

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(e) = operator_access(&state, &req) {
        return actix_web::ResponseError::error_response(&e);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
