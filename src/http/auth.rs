//! Who may use the ingest API (`/v1/…` on the admin listener): the [`Caller`] extractor.
//!
//! Two credentials, configured in `[admin]`:
//! - a **bearer token** (`Authorization: Bearer <token>`), accepted when its SHA-256 is one of
//!   `token_sha256` / `token_file`. The presented token is hashed and compared with *every*
//!   configured hash in constant time (`CRYPTO_memcmp`), so timing tells nothing about which
//!   hash came close. Tokens are never logged, nor their hashes.
//! - a **client certificate** (mutual TLS): with `client_ca`, the TLS handshake itself refuses any
//!   client without a certificate that verifies up to that CA (see `crate::service`), so a
//!   request that arrives carries one.
//!
//! The policy:
//!
//! | configured | what gets in |
//! |---|---|
//! | tokens only | a valid bearer token |
//! | `client_ca` only | a valid client certificate (checked at the handshake) |
//! | both | both: the certificate at the handshake **and** a valid token |
//! | neither | nobody: every ingest request is 401, and a warning is logged at start-up |
//!
//! Health, readiness and metrics on the same listener need no credentials (they change nothing),
//! though with `client_ca` the handshake still wants a client certificate.

use std::any::Any;
use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::{Extensions, Payload};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::{ApiError, AppState};
use crate::config::AdminConfig;

/// The credentials the admin listener accepts.
#[derive(Clone, Debug, Default)]
pub struct AdminAuth {
    token_sha256: Vec<[u8; 32]>,
    client_cert: bool,
}

/// The verified client certificate of a TLS connection, put in the connection's data by
/// [`on_connect`].
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    /// Its subject, one line.
    pub subject: String,
}

/// An authenticated caller of the ingest API, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Position of the matching token hash in the configuration (never the token).
    pub token: Option<usize>,
    /// Subject of the client certificate.
    pub client: Option<String>,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.token, &self.client) {
            (Some(t), Some(c)) => write!(f, "token #{t} + client \"{c}\""),
            (Some(t), None) => write!(f, "token #{t}"),
            (None, Some(c)) => write!(f, "client \"{c}\""),
            (None, None) => f.write_str("nobody"),
        }
    }
}

/// Why a request was refused (logged; the client only gets a 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Neither tokens nor a client CA are configured.
    NothingConfigured,
    /// No `Authorization: Bearer` header.
    NoToken,
    /// A token whose hash is not configured.
    UnknownToken,
    /// mTLS is configured but the connection carries no client certificate.
    NoClientCertificate,
}

impl Refusal {
    /// For logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NothingConfigured => "no credentials configured",
            Refusal::NoToken => "no bearer token",
            Refusal::UnknownToken => "unknown token",
            Refusal::NoClientCertificate => "no client certificate",
        }
    }
}

impl AdminAuth {
    /// From hashes and whether mutual TLS is on.
    pub fn new(token_sha256: Vec<[u8; 32]>, client_cert: bool) -> AdminAuth {
        AdminAuth {
            token_sha256,
            client_cert,
        }
    }

    /// From the validated `[admin]` table.
    pub fn from_config(admin: &AdminConfig) -> AdminAuth {
        AdminAuth::new(admin.token_sha256.clone(), admin.client_ca.is_some())
    }

    /// Whether nobody can get in (nothing configured).
    pub fn refuses_everyone(&self) -> bool {
        self.token_sha256.is_empty() && !self.client_cert
    }

    /// What is required, for the start-up log.
    pub fn describe(&self) -> &'static str {
        match (self.token_sha256.is_empty(), self.client_cert) {
            (false, false) => "bearer token",
            (true, true) => "client certificate",
            (false, true) => "client certificate and bearer token",
            (true, false) => "nothing configured: ingest API closed",
        }
    }

    /// Decides on the `Authorization` header value and the connection's client certificate.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        peer: Option<&PeerCertificate>,
    ) -> Result<Caller, Refusal> {
        if self.refuses_everyone() {
            return Err(Refusal::NothingConfigured);
        }
        let client = if self.client_cert {
            Some(peer.ok_or(Refusal::NoClientCertificate)?.subject.clone())
        } else {
            None
        };
        let token = if self.token_sha256.is_empty() {
            None
        } else {
            let presented = authorization
                .and_then(bearer_token)
                .ok_or(Refusal::NoToken)?;
            let digest = openssl::sha::sha256(presented);
            // Compare with every hash, without stopping early.
            let mut found = None;
            for (i, h) in self.token_sha256.iter().enumerate() {
                if openssl::memcmp::eq(&digest, h) && found.is_none() {
                    found = Some(i);
                }
            }
            Some(found.ok_or(Refusal::UnknownToken)?)
        };
        Ok(Caller { token, client })
    }
}

/// The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1; scheme
/// case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || rest.first().is_none_or(|b| *b != b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal("no application state".into())));
        };
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let peer = req.conn_data::<PeerCertificate>();
        ready(
            state
                .admin_auth
                .authenticate(authorization, peer)
                .map_err(|why| {
                    metrics::counter!(crate::metrics::INGEST_AUTH_FAILURES, "cause" => why.label())
                        .increment(1);
                    tracing::warn!(
                        peer = %req.peer_addr().map_or_else(|| "?".to_owned(), |a| a.to_string()),
                        path = req.path(),
                        cause = why.label(),
                        "ingest request refused: 401"
                    );
                    ApiError::Unauthorized
                }),
        )
    }
}

/// Connection hook of the admin listener: records the verified client certificate of a TLS
/// connection (mutual TLS) for [`Caller`].
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>()
        && let Some(cert) = tls.ssl().peer_certificate()
    {
        data.insert(PeerCertificate {
            subject: crate::pki::one_line_name(cert.subject_name()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> [u8; 32] {
        openssl::sha::sha256(token.as_bytes())
    }

    #[test]
    fn tokens_by_hash() {
        let auth = AdminAuth::new(vec![hash("first"), hash("second")], false);
        assert_eq!(
            auth.authenticate(Some(b"Bearer second"), None),
            Ok(Caller {
                token: Some(1),
                client: None
            })
        );
        assert_eq!(
            auth.authenticate(Some(b"bearer  first "), None)
                .map(|c| c.token),
            Ok(Some(0))
        );
        assert_eq!(
            auth.authenticate(Some(b"Bearer third"), None),
            Err(Refusal::UnknownToken)
        );
        assert_eq!(auth.authenticate(None, None), Err(Refusal::NoToken));
        assert_eq!(
            auth.authenticate(Some(b"Basic Zmlyc3Q="), None),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            auth.authenticate(Some(b"Bearer"), None),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            auth.authenticate(Some(b"Bearerfirst"), None),
            Err(Refusal::NoToken)
        );
    }

    #[test]
    fn client_certificates_alone_or_with_a_token() {
        let peer = PeerCertificate {
            subject: "CN=ca-operator".into(),
        };
        let mtls = AdminAuth::new(vec![], true);
        assert_eq!(
            mtls.authenticate(None, Some(&peer)).map(|c| c.client),
            Ok(Some("CN=ca-operator".into()))
        );
        assert_eq!(
            mtls.authenticate(Some(b"Bearer x"), None),
            Err(Refusal::NoClientCertificate)
        );
        let both = AdminAuth::new(vec![hash("t")], true);
        assert_eq!(both.authenticate(None, Some(&peer)), Err(Refusal::NoToken));
        assert!(both.authenticate(Some(b"Bearer t"), Some(&peer)).is_ok());
        let none = AdminAuth::default();
        assert!(none.refuses_everyone());
        assert_eq!(
            none.authenticate(Some(b"Bearer t"), Some(&peer)),
            Err(Refusal::NothingConfigured)
        );
    }
}
