//! actix-web wiring: the public listener (OCSP, CRLs; no authentication, no writes) and the admin
//! listener (health, readiness, metrics, the operator's [`status`] page, and the CA's ingest API, [`ingest`], behind [`auth`]).
//! Handlers translate between HTTP and the domain modules and hold no domain logic.

pub mod admin;
pub mod auth;
pub mod cache;
pub mod crl;
pub mod error;
pub mod ingest;
pub mod ocsp;
pub mod reload;
pub mod status;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, guard, web};

use crate::clock::SharedClock;
use crate::crl::Publisher;
use crate::ocsp::Responder;
use crate::store::Store;

pub use error::ApiError;

/// What every handler can reach.
pub struct AppState {
    /// The OCSP responder.
    pub responder: Arc<Responder>,
    /// The CRL publisher.
    pub crl: Arc<Publisher>,
    /// The CRLs as HTTP serves them (a subscriber of the publication event).
    pub served: Arc<crl::Served>,
    /// The publication sinks and their queues (for `/readyz`).
    pub publication: Arc<crate::publish::Publication>,
    /// The store.
    pub store: Arc<Store>,
    /// The clock.
    pub clock: SharedClock,
    /// Largest OCSP request accepted.
    pub max_request_bytes: usize,
    /// Deadline for reading an OCSP POST body.
    pub body_timeout: std::time::Duration,
    /// Cap of `max-age` on OCSP GET answers, seconds.
    pub max_age_cap: i64,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Who may use the ingest API.
    pub admin_auth: auth::AdminAuth,
    /// `[ingest] max_clock_skew`, seconds.
    pub max_clock_skew: i64,
    /// Counter history for `/status`.
    pub history: Arc<crate::status::History>,
    /// This node's part when it is one of several (`[replication]`).
    pub replication: Option<Arc<crate::replicate::Replication>>,
    /// Re-reads the configuration (`POST /v1/admin/reload`, `SIGHUP`).
    pub reloader: Arc<crate::reload::Reloader>,
}

fn count(listener: &'static str, endpoint: &'static str) {
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "listener" => listener, "endpoint" => endpoint).increment(1);
}

fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Routes of the public listener.
///
/// OCSP GET requests carry the request in the path, so they cannot have a route pattern: a
/// `{request:.*}` pattern makes the router run a regex over every long path (a third of the CPU
/// of a cached answer, measured with perf). They are served by the default service instead,
/// after the static routes. The CRL routes live in a `/crl` scope, whose static prefix is all
/// an OCSP path is compared with.
pub fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(admin::healthz))
        .service(
            web::scope("/crl")
                .route("", get_or_head().to(crl::list))
                .route("/", get_or_head().to(crl::list))
                .route("/{file}", get_or_head().to(crl::current))
                .route("/{ca}/{file}", get_or_head().to(crl::by_number))
                .default_service(web::to(crl_fallback)),
        )
        .route("/ocsp", web::post().to(ocsp::post))
        .route("/", web::post().to(ocsp::post))
        .default_service(web::to(public_fallback));
}

/// Everything the public routes did not match: OCSP GET (`/ocsp/{base64}` or `/{base64}`), or a
/// JSON 404/405.
async fn public_fallback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET {
        static OCSP_GET: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
        OCSP_GET
            .get_or_init(|| {
                metrics::counter!(crate::metrics::HTTP_REQUESTS, "listener" => "public", "endpoint" => "ocsp_get")
            })
            .increment(1);
        let prefix = if req.uri().path().starts_with("/ocsp/") {
            "/ocsp/"
        } else {
            "/"
        };
        return ocsp::get(state, req, prefix).await;
    }
    match req.path() {
        // `GET /ocsp/{request}` and `GET /{request}` are other resources; `GET /ocsp` itself
        // (an empty request) is answered malformedRequest.
        "/ocsp" => method_not_allowed_allowing("GET, POST"),
        "/" => method_not_allowed_allowing("GET, POST"),
        "/healthz" => method_not_allowed_allowing("GET"),
        path => actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
            "no such resource: {} {path}",
            req.method()
        ))),
    }
}

/// Every route of the admin listener, (method, path pattern): what [`admin_routes`] registers and
/// what `openapi.yaml` must describe (a test compares them).
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/status"),
    ("GET", "/v1/cas"),
    ("POST", "/v1/certificates"),
    ("GET", "/v1/certificates/{ca}/{serial}"),
    ("POST", "/v1/revocations"),
    ("DELETE", "/v1/revocations/{ca}/{serial}"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/admin/reload"),
];

fn admin_route(method: &str, path: &str) -> actix_web::Route {
    match (method, path) {
        ("GET", "/healthz") => web::get().to(admin::healthz),
        ("GET", "/readyz") => web::get().to(admin::readyz),
        ("GET", "/metrics") => web::get().to(admin::metrics),
        ("GET", "/status") => web::get().to(status::status),
        ("GET", "/v1/cas") => web::get().to(ingest::get_cas),
        ("POST", "/v1/certificates") => web::post().to(ingest::post_certificates),
        ("GET", "/v1/certificates/{ca}/{serial}") => web::get().to(ingest::get_certificate),
        ("POST", "/v1/revocations") => web::post().to(ingest::post_revocations),
        ("DELETE", "/v1/revocations/{ca}/{serial}") => web::delete().to(ingest::delete_revocation),
        ("GET", "/v1/audit") => web::get().to(ingest::get_audit),
        ("POST", "/v1/admin/reload") => web::post().to(reload::post_reload),
        // ADMIN_ROUTES is a constant of this file; the test below registers every entry.
        _ => unreachable!("no handler for {method} {path} in ADMIN_ROUTES"),
    }
}

/// Routes of the admin listener: [`ADMIN_ROUTES`]; another method on a known path is 405.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = ADMIN_ROUTES.iter().map(|(_, p)| *p).collect();
    paths.dedup();
    for path in paths {
        let mut resource = web::resource(path);
        for (method, _) in ADMIN_ROUTES.iter().filter(|(_, p)| *p == path) {
            resource = resource.route(admin_route(method, path));
        }
        // RFC 9110 §15.5.6: a 405 names the methods the resource has.
        let allow: Vec<&str> = ADMIN_ROUTES
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .collect();
        let allow = allow.join(", ");
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed_allowing(&allow) }
        })));
    }
    cfg.default_service(web::to(not_found));
}

/// Under `/crl` everything is read-only: another method gets 405 with `Allow`, an unknown
/// path 404.
async fn crl_fallback(req: HttpRequest) -> HttpResponse {
    use actix_web::http::Method;
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
            "no such resource: {} {}",
            req.method(),
            req.path()
        )));
    }
    let mut resp = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    resp.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("GET, HEAD"),
    );
    resp
}

/// 405 with the `Allow` header RFC 9110 §15.5.6 requires.
fn method_not_allowed_allowing(allow: &str) -> HttpResponse {
    let mut resp = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(allow) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such resource: {} {}",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_route_has_a_handler() {
        let mut paths: Vec<&str> = ADMIN_ROUTES.iter().map(|(_, p)| *p).collect();
        let n = paths.len();
        paths.dedup();
        let mut sorted = paths.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            paths.len(),
            "routes of one path are listed together"
        );
        assert!(paths.len() <= n);
        for (method, path) in ADMIN_ROUTES {
            let _ = admin_route(method, path);
        }
    }
}
