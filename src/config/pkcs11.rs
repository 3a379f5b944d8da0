//! `[pkcs11]`: the module that `pkcs11:` key URIs (RFC 7512) go through. Its raw table and its
//! validation into [`Pkcs11Settings`] (the PIN read from `VIGIE_PKCS11_PIN` or `pin_file`).

use serde::Deserialize;

use super::{Ctx, Error, OcspConfig};
use crate::signer::Pkcs11Settings;

/// `[pkcs11]`: the module that `pkcs11:` key URIs (RFC 7512) go through. The user PIN comes from
/// `pin_file` or the `VIGIE_PKCS11_PIN` environment variable, never from this file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkcs11 {
    /// Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: String,
    /// File holding the user PIN (first line); `VIGIE_PKCS11_PIN` takes precedence.
    #[serde(default)]
    pub pin_file: Option<String>,
    /// Sessions per token; 0 = the signing threads. The OCSP signing pool then has as many
    /// threads as sessions.
    #[serde(default)]
    pub sessions: usize,
}

/// Checks `[pkcs11]` and reads the PIN; `signing_threads` is `[ocsp]`'s, the default number of
/// sessions.
pub fn validate(
    p: &RawPkcs11,
    ctx: &Ctx<'_>,
    signing_threads: usize,
) -> Result<Pkcs11Settings, Error> {
    let pin = match (std::env::var("VIGIE_PKCS11_PIN").ok(), &p.pin_file) {
        (Some(pin), _) => pin,
        (None, Some(f)) => {
            let path = ctx.resolve(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ctx.invalid(
                    "[pkcs11]",
                    "pin_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        (None, None) => {
            return Err(ctx.invalid(
                "[pkcs11]",
                "pin_file",
                "no user PIN: set pin_file or the VIGIE_PKCS11_PIN environment variable".into(),
            ));
        }
    };
    if p.module.trim().is_empty() {
        return Err(ctx.invalid("[pkcs11]", "module", "must not be empty".into()));
    }
    Ok(Pkcs11Settings {
        module: ctx.resolve(&p.module),
        pin: pin.into(),
        sessions: if p.sessions == 0 {
            signing_threads
        } else {
            p.sessions
        },
    })
}

/// The signing pool is sized to the sessions, not to the cores: a signing thread without a
/// session would only wait for one.
pub fn size_signing_pool(ocsp: &mut OcspConfig, pkcs11: Option<&Pkcs11Settings>) {
    if let Some(p) = pkcs11 {
        ocsp.signing_threads = p.sessions;
    }
}
