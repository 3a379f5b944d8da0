//! Who may use the ingest API (`/v1/…` on the admin listener): the [`Caller`] extractor.
//!
//! Two credentials, configured in `[admin]`:
//! - a **bearer token** (`Authorization: Bearer <token>`), accepted when its SHA-256 is one of
//!   `token_sha256` / `tokens` / `token_file`. The presented token is hashed and compared with
//!   *every* configured hash in constant time (`CRYPTO_memcmp`), so timing tells nothing about
//!   which hash came close. Tokens are never logged, nor their hashes: a caller is named by the
//!   token's label (`tokens = [{label = "ca-prod", sha256 = "…"}]`) or its position.
//! - a **client certificate** (mutual TLS): with `client_ca`, the TLS handshake itself refuses any
//!   client without a certificate that verifies up to that CA (see `crate::service`); the
//!   certificate must then match an entry of `client_allow` (subject or SPKI hash, see
//!   [`crate::security::client`]) — otherwise 403 with a problem body — and, when it was
//!   issued by one of vigie's own CAs, must not be revoked in vigie's store (403 too).
//!
//! The policy:
//!
//! | configured | what gets in |
//! |---|---|
//! | tokens only | a valid bearer token |
//! | `client_ca` (+ `client_allow`) only | an allowed client certificate |
//! | both | both: an allowed certificate **and** a valid token |
//! | neither | nobody: every ingest request is 401, and a warning is logged at start-up |
//!
//! Health and readiness on the same listener need no credentials (they change nothing), though
//! with `client_ca` the handshake still wants a client certificate. `/metrics` needs none either
//! (what Prometheus expects), unless `metrics_token_sha256` is set: then its bearer token.

use std::any::Any;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::{Extensions, Payload};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use super::{ApiError, AppState};
use crate::config::AdminConfig;
use crate::pki::{Ca, CaRegistry};
use crate::security::client::{ClientAllow, ClientCertificate, revoked_by_own_ca};

/// The credentials the admin listener accepts.
#[derive(Clone, Debug, Default)]
pub struct AdminAuth {
    token_sha256: Vec<[u8; 32]>,
    token_labels: Vec<String>,
    client_cert: bool,
    client_allow: ClientAllow,
    own_client_cas: Vec<Arc<Ca>>,
    metrics_token: Option<[u8; 32]>,
}

/// The verified client certificate of a TLS connection, put in the connection's data by
/// [`on_connect`].
pub type PeerCertificate = ClientCertificate;

/// An authenticated caller of the ingest API, for logs and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Position of the matching token hash in the configuration (never the token).
    pub token: Option<usize>,
    /// Label of that token (`[admin] tokens`), or where its hash is configured.
    pub label: Option<String>,
    /// Subject of the client certificate, as an escaped RFC 4514 string.
    pub client: Option<String>,
}

impl Caller {
    /// Who acted, as the audit trail records it: the token's label, the client certificate's
    /// subject, or both.
    pub fn actor(&self) -> String {
        match (&self.label, &self.client) {
            (Some(t), Some(c)) => format!("{t} + {c}"),
            (Some(t), None) => t.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => "nobody".to_owned(),
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.label, &self.client) {
            (Some(t), Some(c)) => write!(f, "token {t:?} + client \"{c}\""),
            (Some(t), None) => write!(f, "token {t:?}"),
            (None, Some(c)) => write!(f, "client \"{c}\""),
            (None, None) => f.write_str("nobody"),
        }
    }
}

/// Why a request was refused (logged; the client gets a 401, or a 403 with a problem body for
/// a client certificate that is not allowed).
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
    /// The client certificate chains to `client_ca` but matches no `client_allow` entry.
    NotAllowed,
    /// The client certificate was issued by one of vigie's CAs, which revoked it.
    ClientRevoked,
}

impl Refusal {
    /// For logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NothingConfigured => "no credentials configured",
            Refusal::NoToken => "no bearer token",
            Refusal::UnknownToken => "unknown token",
            Refusal::NoClientCertificate => "no client certificate",
            Refusal::NotAllowed => "client certificate not in client_allow",
            Refusal::ClientRevoked => "client certificate revoked",
        }
    }
}

impl AdminAuth {
    /// From hashes and whether mutual TLS is on (no allowlist: for tests of the token logic).
    pub fn new(token_sha256: Vec<[u8; 32]>, client_cert: bool) -> AdminAuth {
        let token_labels = (0..token_sha256.len())
            .map(|i| format!("token_sha256[{i}]"))
            .collect();
        AdminAuth {
            token_sha256,
            token_labels,
            client_cert,
            ..AdminAuth::default()
        }
    }

    /// From the validated `[admin]` table. The CAs of `registry` that are also client CAs
    /// are remembered: their client certificates are checked against the store.
    pub fn from_config(admin: &AdminConfig, registry: &CaRegistry) -> AdminAuth {
        let own_client_cas = admin
            .client_ca
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|pem| openssl::x509::X509::stack_from_pem(&pem).ok())
            .map(|client_cas| {
                registry
                    .iter()
                    .filter(|ca| {
                        client_cas
                            .iter()
                            .any(|c| c.to_der().is_ok_and(|der| der == ca.cert_der))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        AdminAuth {
            token_sha256: admin.token_sha256.clone(),
            token_labels: admin.token_labels.clone(),
            client_cert: admin.client_ca.is_some(),
            client_allow: admin.client_allow.clone(),
            own_client_cas,
            metrics_token: admin.metrics_token_sha256,
        }
    }

    /// Whether nobody can get in (nothing configured).
    pub fn refuses_everyone(&self) -> bool {
        self.token_sha256.is_empty() && !self.client_cert
    }

    /// What is required, for the start-up log.
    pub fn describe(&self) -> &'static str {
        match (self.token_sha256.is_empty(), self.client_cert) {
            (false, false) => "bearer token",
            (true, true) => "client certificate in client_allow",
            (false, true) => "client certificate in client_allow and bearer token",
            (true, false) => "nothing configured: ingest API closed",
        }
    }

    /// vigie's own CAs among the client CAs (their client certificates are checked for
    /// revocation).
    pub fn own_client_cas(&self) -> &[Arc<Ca>] {
        &self.own_client_cas
    }

    /// Whether `/metrics` may be read with this `Authorization` header value: always when no
    /// `metrics_token_sha256` is configured.
    pub fn metrics_allowed(&self, authorization: Option<&[u8]>) -> bool {
        let Some(wanted) = &self.metrics_token else {
            return true;
        };
        authorization
            .and_then(bearer_token)
            .is_some_and(|t| openssl::memcmp::eq(&openssl::sha::sha256(t), wanted))
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
            let peer = peer.ok_or(Refusal::NoClientCertificate)?;
            self.client_allow.allows(peer).ok_or(Refusal::NotAllowed)?;
            Some(peer.subject.clone())
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
        Ok(Caller {
            token,
            label: token.map(|i| {
                self.token_labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("token #{i}"))
            }),
            client,
        })
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

fn refuse(req: &HttpRequest, peer: Option<&PeerCertificate>, why: Refusal) -> ApiError {
    metrics::counter!(crate::metrics::INGEST_AUTH_FAILURES, "cause" => why.label()).increment(1);
    tracing::warn!(
        peer = %req.peer_addr().map_or_else(|| "?".to_owned(), |a| a.to_string()),
        path = req.path(),
        cause = why.label(),
        client = %peer.map_or("-", |p| p.subject.as_str()),
        "ingest request refused"
    );
    match why {
        Refusal::NotAllowed => ApiError::Forbidden(format!(
            "client certificate \"{}\" is not in [admin] client_allow",
            peer.map_or("?", |p| p.subject.as_str())
        )),
        Refusal::ClientRevoked => {
            ApiError::Forbidden("client certificate is revoked by its CA".into())
        }
        _ => ApiError::Unauthorized,
    }
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
        let auth = &state.admin_auth;
        let caller = match auth.authenticate(authorization, peer) {
            Ok(c) => c,
            Err(why) => return ready(Err(refuse(req, peer, why))),
        };
        if let Some(peer) = peer
            && !auth.own_client_cas().is_empty()
        {
            match revoked_by_own_ca(&peer.cert, auth.own_client_cas(), &state.store) {
                Ok(None) => {}
                Ok(Some(_)) => return ready(Err(refuse(req, Some(peer), Refusal::ClientRevoked))),
                Err(e) => return ready(Err(ApiError::Internal(e.to_string()))),
            }
        }
        ready(Ok(caller))
    }
}

/// Connection hook of the admin listener: records the verified client certificate of a TLS
/// connection (mutual TLS) for [`Caller`].
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>()
        && let Some(cert) = tls.ssl().peer_certificate()
    {
        data.insert(ClientCertificate::new(&cert));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> [u8; 32] {
        openssl::sha::sha256(token.as_bytes())
    }

    fn peer_named(cn: &str) -> PeerCertificate {
        use openssl::pkey::PKey;
        let key = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .expect("P-256"),
            )
            .expect("key"),
        )
        .expect("pkey");
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", cn).expect("CN");
        let name = name.build();
        let mut b = openssl::x509::X509::builder().expect("builder");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("key");
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        ClientCertificate::new(&b.build())
    }

    fn test_peer() -> PeerCertificate {
        peer_named("ca-operator")
    }

    #[test]
    fn client_certificates_outside_the_allowlist_are_refused() {
        let mut auth = AdminAuth::new(vec![], true);
        let stranger = peer_named("someone else");
        let pinned = peer_named("pinned by key");
        auth.client_allow = ClientAllow::parse(&[
            "subject:cn=CA-OPERATOR".to_owned(),
            format!(
                "spki-sha256:{}",
                hex::encode(pinned.spki_sha256.expect("an EC key"))
            ),
        ])
        .expect("parses");
        assert!(auth.authenticate(None, Some(&test_peer())).is_ok());
        assert!(auth.authenticate(None, Some(&pinned)).is_ok());
        assert_eq!(
            auth.authenticate(None, Some(&stranger)),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn metrics_token_is_optional() {
        let open = AdminAuth::default();
        assert!(open.metrics_allowed(None));
        let closed = AdminAuth {
            metrics_token: Some(hash("scrape")),
            ..AdminAuth::default()
        };
        assert!(!closed.metrics_allowed(None));
        assert!(!closed.metrics_allowed(Some(b"Bearer other")));
        assert!(closed.metrics_allowed(Some(b"Bearer scrape")));
    }

    #[test]
    fn tokens_by_hash() {
        let auth = AdminAuth::new(vec![hash("first"), hash("second")], false);
        assert_eq!(
            auth.authenticate(Some(b"Bearer second"), None),
            Ok(Caller {
                token: Some(1),
                label: Some("token_sha256[1]".into()),
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
        let peer = test_peer();
        let mut mtls = AdminAuth::new(vec![], true);
        mtls.client_allow = ClientAllow::parse(&["subject:CN=ca-operator"]).expect("parses");
        assert_eq!(
            mtls.authenticate(None, Some(&peer)).map(|c| c.client),
            Ok(Some("CN=ca-operator".into()))
        );
        assert_eq!(
            mtls.authenticate(Some(b"Bearer x"), None),
            Err(Refusal::NoClientCertificate)
        );
        let mut both = AdminAuth::new(vec![hash("t")], true);
        both.client_allow = mtls.client_allow.clone();
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
