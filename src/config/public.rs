//! `[public]`: the public listener (OCSP and CRLs, no authentication). Its raw table, its
//! defaults, and its validation into [`PublicConfig`].

use std::net::SocketAddr;

use serde::Deserialize;

use super::{Ctx, Error};

/// `[public]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublic {
    /// Address and port to listen on (port 0: any free port, printed at start-up).
    #[serde(default = "defaults::public_listen")]
    pub listen: String,
    /// Base URL under which clients reach this listener (written into CRLs' FreshestCRL and the
    /// demo's certificates). Defaults to `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// HTTP worker threads; 0 means one per CPU.
    #[serde(default)]
    pub workers: usize,
    /// Largest OCSP request accepted, in bytes.
    #[serde(default = "defaults::max_request_bytes")]
    pub max_request_bytes: usize,
    /// Open connections accepted at once (all workers together); more wait in the backlog.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// How long an idle keep-alive connection is kept open.
    #[serde(default = "defaults::keep_alive")]
    pub keep_alive: String,
    /// How long a client has to send a request's headers once connected (or between requests'
    /// first bytes and their end of headers); beyond, the connection is closed.
    #[serde(default = "defaults::header_timeout")]
    pub header_timeout: String,
    /// How long a client has to send a request's body; beyond, `malformedRequest` and the
    /// connection is closed.
    #[serde(default = "defaults::body_timeout")]
    pub body_timeout: String,
}

mod defaults {
    pub fn public_listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn max_request_bytes() -> usize {
        4096
    }
    pub fn max_connections() -> usize {
        25_000
    }
    pub fn keep_alive() -> String {
        "5s".into()
    }
    pub fn header_timeout() -> String {
        "5s".into()
    }
    pub fn body_timeout() -> String {
        "5s".into()
    }
}

impl Default for RawPublic {
    fn default() -> Self {
        RawPublic {
            listen: defaults::public_listen(),
            public_url: None,
            workers: 0,
            max_request_bytes: defaults::max_request_bytes(),
            max_connections: defaults::max_connections(),
            keep_alive: defaults::keep_alive(),
            header_timeout: defaults::header_timeout(),
            body_timeout: defaults::body_timeout(),
        }
    }
}

/// `[public]`, validated.
#[derive(Debug, Clone)]
pub struct PublicConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Base URL, without trailing slash.
    pub public_url: String,
    /// Worker threads (≥ 1).
    pub workers: usize,
    /// Largest OCSP request body.
    pub max_request_bytes: usize,
    /// Open connections at once, all workers together (≥ 1).
    pub max_connections: usize,
    /// Idle keep-alive connections are closed after this.
    pub keep_alive: std::time::Duration,
    /// Deadline for a request's headers.
    pub header_timeout: std::time::Duration,
    /// Deadline for a request's body.
    pub body_timeout: std::time::Duration,
}

/// Checks `[public]`.
pub fn validate(raw: &RawPublic, ctx: &Ctx<'_>) -> Result<PublicConfig, Error> {
    let listen = ctx.addr("[public]", &raw.listen)?;
    let public_url = match &raw.public_url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_owned()
        }
        Some(u) => {
            return Err(ctx.invalid(
                "[public]",
                "public_url",
                format!("{u:?} must start with http:// or https://"),
            ));
        }
        None => format!("http://{listen}"),
    };
    if !(512..=65536).contains(&raw.max_request_bytes) {
        return Err(ctx.invalid(
            "[public]",
            "max_request_bytes",
            "must be between 512 and 65536".into(),
        ));
    }
    let public = PublicConfig {
        listen,
        public_url,
        workers: if raw.workers == 0 {
            super::cpus()
        } else {
            raw.workers
        },
        max_request_bytes: raw.max_request_bytes,
        max_connections: raw.max_connections.max(1),
        keep_alive: ctx.millis("[public]", "keep_alive", &raw.keep_alive)?,
        header_timeout: ctx.millis("[public]", "header_timeout", &raw.header_timeout)?,
        body_timeout: ctx.millis("[public]", "body_timeout", &raw.body_timeout)?,
    };
    if public.body_timeout.is_zero() || public.header_timeout.is_zero() {
        return Err(ctx.invalid(
            "[public]",
            "body_timeout",
            "header_timeout and body_timeout must be above zero: a client would hold its connection for ever".into(),
        ));
    }
    Ok(public)
}
