//! Operations endpoints: `/healthz` (the process answers), `/readyz` (every CA can answer:
//! signer certificates valid, a complete CRL published and not past its nextUpdate),
//! `/metrics` (Prometheus text).

use actix_web::{HttpResponse, web};
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
    ocsp_signer_not_after: String,
    problems: Vec<String>,
}

/// `GET /readyz`: 200 when every CA is ready, 503 with the reasons otherwise.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let crl = state.crl.readiness(now);
    let cas: Vec<CaReadiness> = state
        .responder
        .registry()
        .iter()
        .map(|ca| {
            let mut problems = Vec::new();
            if ca.ocsp_cert_not_after <= now {
                problems.push("OCSP signer certificate expired".to_owned());
            }
            if let Some((_, Some(problem))) = crl.iter().find(|(id, _)| *id == ca.id) {
                problems.push(problem.clone());
            }
            CaReadiness {
                id: ca.id.to_string(),
                ready: problems.is_empty(),
                ocsp_signer_not_after: ca.ocsp_cert_not_after.to_rfc3339(),
                problems,
            }
        })
        .collect();
    // A replica out of contact with its stream, or that stopped following it, is not ready.
    let replication_problem = state
        .replication
        .as_ref()
        .and_then(|r| r.readiness_problem());
    let ready = cas.iter().all(|c| c.ready) && replication_problem.is_none();
    let mut body = serde_json::json!({"ready": ready, "cas": cas});
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

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
