//! actix-web wiring: the public listener (OCSP, CRLs; no authentication, no writes) and the admin
//! listener (health, readiness, metrics, and the CA's ingest API). Handlers translate between
//! HTTP and the domain modules and hold no domain logic.

pub mod admin;
pub mod cache;
pub mod crl;
pub mod error;
pub mod ocsp;

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
    /// The store.
    pub store: Arc<Store>,
    /// The clock.
    pub clock: SharedClock,
    /// Largest OCSP request accepted.
    pub max_request_bytes: usize,
    /// Cap of `max-age` on OCSP GET answers, seconds.
    pub max_age_cap: i64,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
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
                .default_service(web::to(not_found)),
        )
        .route("/ocsp", web::post().to(ocsp::post))
        .route("/", web::post().to(ocsp::post))
        .default_service(web::to(public_fallback));
}

/// Everything the public routes did not match: OCSP GET (`/ocsp/{base64}` or `/{base64}`), or a
/// JSON 404/405.
async fn public_fallback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET {
        count("public", "ocsp_get");
        let prefix = if req.uri().path().starts_with("/ocsp/") {
            "/ocsp/"
        } else {
            "/"
        };
        return ocsp::get(state, req, prefix).await;
    }
    let e = if req.path() == "/ocsp" || req.path() == "/" {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NotFound(format!("no such resource: {} {}", req.method(), req.path()))
    };
    actix_web::ResponseError::error_response(&e)
}

/// Routes of the admin listener.
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(admin::healthz))
        .route("/readyz", web::get().to(admin::readyz))
        .route("/metrics", web::get().to(admin::metrics))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such resource: {} {}",
        req.method(),
        req.path()
    )))
}
