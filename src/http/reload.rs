//! `POST /v1/admin/reload` on the admin listener, authenticated as every write of the admin API
//! ([`super::auth::Caller`]): re-reads the configuration ([`crate::reload`]) and answers what
//! changed (200, JSON), or why the new configuration was refused (422 problem, the running one
//! kept). `SIGHUP` does the same without an answer ([`crate::service`]).

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use super::auth::Caller;
use super::{ApiError, AppState};

/// `POST /v1/admin/reload`.
pub async fn post_reload(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    super::count("admin", "reload");
    tracing::info!(actor = %caller.actor(), "configuration reload asked for");
    let reloader = Arc::clone(&state.reloader);
    let outcome = web::block(move || reloader.reload())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match outcome {
        Ok(o) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "reloaded": true, "cas": o }))),
        Err(e) => Err(ApiError::Unprocessable {
            field: e.field(),
            message: format!("configuration refused, the running one is kept: {e}"),
        }),
    }
}
