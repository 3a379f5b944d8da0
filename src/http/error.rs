//! Errors become HTTP answers here, and only here: one `status_code` match, one JSON
//! problem body (RFC 9457, `application/problem+json`). OCSP endpoints never use this: they
//! answer with OCSP error statuses.
//!
//! Domain errors are mapped here too: [`crate::ingest::Error`] by its `From` impl. A field error
//! names the field in `detail` and in a `field` member of the problem (RFC 9457 §3.2 extension).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered with a JSON problem body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route or resource here.
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body is larger than allowed.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not in a format this endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body does not parse.
    #[error("{0}")]
    BadRequest(String),
    /// A field has an impossible value.
    #[error("{field}: {message}")]
    Unprocessable {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// A revocation of a certificate the CA never registered (its rules refuse it).
    #[error("{0}")]
    UnknownCertificate(String),
    /// The request contradicts what is recorded.
    #[error("{0}")]
    Conflict(String),
    /// Credentials missing or wrong.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but not allowed: a client certificate outside the allowlist, or revoked;
    /// or this node may not do that (a replica refuses writes).
    #[error("{0}")]
    Forbidden(String),
    /// The service is not ready (e.g. a CA has no valid CRL yet).
    #[error("{0}")]
    Unavailable(String),
    /// The store cannot write (a full disk, a file system turned read-only): nothing was
    /// written; the same request succeeds once the store writes again (a replay is idempotent).
    #[error("the store cannot write at the moment, nothing was recorded; retry later: {0}")]
    StoreUnavailable(String),
    /// Anything else; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

/// RFC 9457 problem details.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// The problem type (the `type` member of the body).
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::TooLarge(_) => "too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unprocessable { .. } => "invalid-field",
            ApiError::Conflict(_) => "conflict",
            ApiError::UnknownCertificate(_) => "unknown-certificate",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::StoreUnavailable(_) => "store-unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Unprocessable { field, .. } => Some(field),
            _ => None,
        }
    }

    fn problem(&self) -> Vec<u8> {
        let status = self.status_code();
        serde_json::to_vec(&Problem {
            kind: self.kind(),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail: self.to_string(),
            field: self.field(),
        })
        .unwrap_or_default()
    }
}

impl From<crate::ingest::Error> for ApiError {
    fn from(e: crate::ingest::Error) -> Self {
        use crate::ingest::Error as E;
        match e {
            E::Conflict(m) => ApiError::Conflict(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::UnknownCertificate(m) => ApiError::UnknownCertificate(m),
            E::Invalid { field, message } => ApiError::Unprocessable { field, message },
            E::Malformed(m) => ApiError::BadRequest(m),
            E::UnsupportedFormat(m) => ApiError::UnsupportedMediaType(m),
            E::Store(e) if e.is_unavailable() => ApiError::StoreUnavailable(e.to_string()),
            e @ (E::Io { .. } | E::Store(_) | E::Scope(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnknownCertificate(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) | ApiError::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::StoreUnavailable(detail) => {
                tracing::warn!(%detail, "write refused: the store cannot write")
            }
            _ => {}
        }
        let status = self.status_code();
        let mut builder = HttpResponse::build(status);
        builder
            .content_type("application/problem+json")
            .insert_header(("Cache-Control", "no-store"));
        if matches!(self, ApiError::Unauthorized) {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::StoreUnavailable(_)) {
            // RFC 9110 §10.2.3: RocksDB looks for room again every few seconds.
            builder.insert_header(("Retry-After", "5"));
        }
        builder.body(self.problem())
    }
}

/// The JSON body of a problem, for golden tests.
pub fn problem_body(e: &ApiError) -> Vec<u8> {
    e.problem()
}
