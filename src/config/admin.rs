//! `[admin]`: the admin listener (ingest API, metrics, health) and who may use it. Its raw
//! table, its defaults, and its validation into [`AdminConfig`] (token hashes parsed, TLS files
//! checked).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Ctx, Error};

/// One `[admin] tokens` entry: a labelled bearer token hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Who holds the token, as the audit trail names it.
    pub label: String,
    /// SHA-256 (hex) of the token.
    pub sha256: String,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address and port of the admin listener.
    #[serde(default = "defaults::admin_listen")]
    pub listen: String,
    /// SHA-256 hashes (hex) of the bearer tokens allowed to use the ingest API.
    #[serde(default)]
    pub token_sha256: Vec<String>,
    /// A file with more token hashes, one hex SHA-256 per line (`#` comments allowed).
    #[serde(default)]
    pub token_file: Option<String>,
    /// TLS certificate chain (PEM) of the admin listener; with `tls_key`, the listener speaks HTTPS.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// TLS private key (PEM).
    #[serde(default)]
    pub tls_key: Option<String>,
    /// CA certificates (PEM) whose client certificates are let in (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<String>,
    /// Which client certificates may use the ingest API: `subject:<RFC 4514 DN>` or
    /// `spki-sha256:<hex>`. Required with `client_ca`.
    #[serde(default)]
    pub client_allow: Vec<String>,
    /// Allow plain HTTP on a `listen` address that is not loopback.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// SHA-256 (hex) of a bearer token `/metrics` then requires.
    #[serde(default)]
    pub metrics_token_sha256: Option<String>,
    /// Labelled token hashes (`{label = "ca-prod", sha256 = "…"}`).
    #[serde(default)]
    pub tokens: Vec<RawToken>,
}

mod defaults {
    pub fn admin_listen() -> String {
        "127.0.0.1:8081".into()
    }
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: defaults::admin_listen(),
            token_sha256: Vec::new(),
            token_file: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            client_allow: Vec::new(),
            allow_plaintext: false,
            metrics_token_sha256: None,
            tokens: Vec::new(),
        }
    }
}

/// `[admin]`, validated.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Accepted bearer token hashes (SHA-256), from `token_sha256` and `token_file`.
    pub token_sha256: Vec<[u8; 32]>,
    /// TLS certificate chain file.
    pub tls_cert: Option<PathBuf>,
    /// TLS key file.
    pub tls_key: Option<PathBuf>,
    /// Client CA file (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// Who holds each of `token_sha256`, for logs and the audit trail: the `tokens` label, or
    /// `token_sha256[i]` / `token_file line N` for unlabelled hashes.
    pub token_labels: Vec<String>,
    /// Client certificates allowed (with `client_ca`).
    pub client_allow: crate::security::client::ClientAllow,
    /// Plain HTTP accepted on a non-loopback address.
    pub allow_plaintext: bool,
    /// Bearer token hash `/metrics` requires, if any.
    pub metrics_token_sha256: Option<[u8; 32]>,
}

/// Checks `[admin]`; `public_listen` is `[public] listen`, which the admin listener must not share.
pub fn validate(
    raw: &RawAdmin,
    ctx: &Ctx<'_>,
    public_listen: SocketAddr,
) -> Result<AdminConfig, Error> {
    let mut token_sha256 = Vec::new();
    let mut token_labels = Vec::new();
    // A malformed hash is reported by its position, never by its value: a token pasted
    // where its hash belongs must not end up in logs.
    let parse_hash = |h: &str, key: &str, position: &str| -> Result<[u8; 32], Error> {
        let bytes = hex::decode(h.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                ctx.invalid(
                    "[admin]",
                    key,
                    format!(
                        "{position} is not a hex SHA-256 (64 hex digits); its value is not shown"
                    ),
                )
            })?;
        let mut a = [0u8; 32];
        a.copy_from_slice(&bytes);
        Ok(a)
    };
    for (i, h) in raw.token_sha256.iter().enumerate() {
        token_sha256.push(parse_hash(h, "token_sha256", &format!("entry #{}", i + 1))?);
        token_labels.push(format!("token_sha256[{i}]"));
    }
    for (i, t) in raw.tokens.iter().enumerate() {
        let label = t.label.trim();
        if label.is_empty() || label.chars().any(char::is_control) {
            return Err(ctx.invalid(
                "[admin]",
                "tokens",
                format!(
                    "entry #{}: label must be non-empty, without control characters",
                    i + 1
                ),
            ));
        }
        if token_labels.iter().any(|l| l == label) {
            return Err(ctx.invalid(
                "[admin]",
                "tokens",
                format!("entry #{}: label {label:?} is used twice", i + 1),
            ));
        }
        token_sha256.push(parse_hash(
            &t.sha256,
            "tokens",
            &format!("entry #{} ({label:?})", i + 1),
        )?);
        token_labels.push(label.to_owned());
    }
    if let Some(f) = &raw.token_file {
        let path = ctx.resolve(f);
        ctx.secret_file("[admin]", "token_file", &path)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ctx.invalid(
                "[admin]",
                "token_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            token_sha256.push(parse_hash(line, "token_file", &format!("line {}", n + 1))?);
            token_labels.push(format!("token_file line {}", n + 1));
        }
    }
    if token_sha256
        .iter()
        .enumerate()
        .any(|(i, h)| token_sha256[..i].contains(h))
    {
        return Err(ctx.invalid(
            "[admin]",
            "tokens",
            "the same token hash is configured twice (the audit trail could not tell its holders apart)".into(),
        ));
    }
    let metrics_token_sha256 = raw
        .metrics_token_sha256
        .as_deref()
        .map(|h| parse_hash(h, "metrics_token_sha256", "the value"))
        .transpose()?;
    let client_allow =
        crate::security::client::ClientAllow::parse(&raw.client_allow).map_err(|(i, e)| {
            ctx.invalid("[admin]", "client_allow", format!("entry #{}: {e}", i + 1))
        })?;
    let existing = |key: &str, v: &Option<String>| -> Result<Option<PathBuf>, Error> {
        match v {
            Some(p) => {
                let path = ctx.resolve(p);
                if !path.exists() {
                    return Err(ctx.invalid(
                        "[admin]",
                        key,
                        format!("{} does not exist", path.display()),
                    ));
                }
                Ok(Some(path))
            }
            None => Ok(None),
        }
    };
    let admin = AdminConfig {
        listen: ctx.addr("[admin]", &raw.listen)?,
        token_sha256,
        tls_cert: existing("tls_cert", &raw.tls_cert)?,
        tls_key: existing("tls_key", &raw.tls_key)?,
        client_ca: existing("client_ca", &raw.client_ca)?,
        token_labels,
        client_allow,
        allow_plaintext: raw.allow_plaintext,
        metrics_token_sha256,
    };
    if admin.tls_cert.is_some() != admin.tls_key.is_some() {
        return Err(ctx.invalid(
            "[admin]",
            "tls_key",
            "tls_cert and tls_key go together".into(),
        ));
    }
    if let Some(key) = &admin.tls_key {
        ctx.secret_file("[admin]", "tls_key", key)?;
    }
    if admin.client_ca.is_some() && admin.tls_cert.is_none() {
        return Err(ctx.invalid(
            "[admin]",
            "client_ca",
            "mutual TLS needs tls_cert and tls_key".into(),
        ));
    }
    if admin.client_ca.is_some() && admin.client_allow.is_empty() {
        return Err(ctx.invalid(
            "[admin]",
            "client_allow",
            "client_ca is set but client_allow is empty: every certificate the client CA \
             issued would get in. List the operators' certificates \
             (\"subject:CN=…,O=…\" or \"spki-sha256:<hex>\")"
                .into(),
        ));
    }
    if !admin.client_allow.is_empty() && admin.client_ca.is_none() {
        return Err(ctx.invalid(
            "[admin]",
            "client_allow",
            "needs client_ca (mutual TLS): without it no client certificate is asked for".into(),
        ));
    }
    if admin.tls_cert.is_none() && !admin.listen.ip().is_loopback() && !admin.allow_plaintext {
        return Err(ctx.invalid(
            "[admin]",
            "listen",
            format!(
                "{} is not a loopback address and the admin listener has no tls_cert: \
                 tokens and revocations would cross the network in clear. Set tls_cert and \
                 tls_key (and client_ca), listen on 127.0.0.1, or set allow_plaintext = true \
                 behind a TLS-terminating proxy",
                admin.listen
            ),
        ));
    }
    if admin.listen == public_listen && admin.listen.port() != 0 {
        return Err(ctx.invalid(
            "[admin]",
            "listen",
            "must differ from [public] listen: the admin API is never public".into(),
        ));
    }
    Ok(admin)
}
