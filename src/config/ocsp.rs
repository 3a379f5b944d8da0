//! `[ocsp]`: responder-wide OCSP settings (caches, signing pool, rationing, pre-signing). Its
//! raw table, its defaults, and its validation into [`OcspConfig`]. The per-CA OCSP policy is in
//! [`super::ca`].

use serde::Deserialize;

use super::{Ctx, Error};
use crate::pki::HashAlg;

/// `[ocsp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOcsp {
    /// In-memory cache of signed responses, in MiB (responses also persist in the store).
    #[serde(default = "defaults::cache_mb")]
    pub cache_mb: usize,
    /// Signing threads; 0 means one per CPU.
    #[serde(default)]
    pub signing_threads: usize,
    /// Signing jobs allowed to wait; beyond that, requests that need a signature get `tryLater`.
    #[serde(default = "defaults::signing_queue")]
    pub signing_queue: usize,
    /// Upper bound of `Cache-Control: max-age` on GET answers, so a revocation reaches HTTP
    /// caches within this delay.
    #[serde(default = "defaults::max_age_cap")]
    pub max_age_cap: String,
    /// How far thisUpdate is set before the signing time, for relying parties whose clock is late.
    #[serde(default = "defaults::this_update_backdate")]
    pub this_update_backdate: String,
    /// How often the refresher looks for stored responses to re-sign.
    #[serde(default = "defaults::refresh_interval")]
    pub refresh_interval: String,
    /// Signatures per second that only an anonymous request asks for (nonce echo, unregistered
    /// serial, several CertIDs), per client network (/24 IPv4, /56 IPv6).
    #[serde(default = "defaults::sign_rate_per_client")]
    pub sign_rate_per_client: f64,
    /// How many such signatures a client network may ask for at once after a quiet time.
    #[serde(default = "defaults::sign_burst_per_client")]
    pub sign_burst_per_client: f64,
    /// Share of the signing pool (threads + queue) such signatures may hold at once, all
    /// clients together (0 < share ≤ 1).
    #[serde(default = "defaults::anonymous_sign_share")]
    pub anonymous_sign_share: f64,
    /// Share of the signing threads that pre-signing may use at once (0 < share ≤ 1).
    #[serde(default = "defaults::presign_share")]
    pub presign_share: f64,
    /// CertID hash algorithms pre-signed for every registered certificate (the others are
    /// signed on their first request, then kept fresh like pre-signed ones).
    #[serde(default = "defaults::presign_hashes")]
    pub presign_hashes: Vec<String>,
}

mod defaults {
    pub fn cache_mb() -> usize {
        64
    }
    pub fn signing_queue() -> usize {
        256
    }
    pub fn max_age_cap() -> String {
        "1h".into()
    }
    pub fn this_update_backdate() -> String {
        "5m".into()
    }
    pub fn refresh_interval() -> String {
        "1m".into()
    }
    pub fn sign_rate_per_client() -> f64 {
        50.0
    }
    pub fn sign_burst_per_client() -> f64 {
        200.0
    }
    pub fn anonymous_sign_share() -> f64 {
        0.5
    }
    pub fn presign_share() -> f64 {
        0.5
    }
    pub fn presign_hashes() -> Vec<String> {
        vec!["sha1".into(), "sha256".into()]
    }
}

impl Default for RawOcsp {
    fn default() -> Self {
        RawOcsp {
            cache_mb: defaults::cache_mb(),
            signing_threads: 0,
            signing_queue: defaults::signing_queue(),
            max_age_cap: defaults::max_age_cap(),
            this_update_backdate: defaults::this_update_backdate(),
            refresh_interval: defaults::refresh_interval(),
            sign_rate_per_client: defaults::sign_rate_per_client(),
            sign_burst_per_client: defaults::sign_burst_per_client(),
            anonymous_sign_share: defaults::anonymous_sign_share(),
            presign_share: defaults::presign_share(),
            presign_hashes: defaults::presign_hashes(),
        }
    }
}

/// `[ocsp]`, validated.
#[derive(Debug, Clone)]
pub struct OcspConfig {
    /// Memory cache budget in bytes.
    pub cache_bytes: u64,
    /// Signing threads (≥ 1).
    pub signing_threads: usize,
    /// Signing queue depth (≥ 1).
    pub signing_queue: usize,
    /// max-age cap, seconds.
    pub max_age_cap: i64,
    /// thisUpdate backdating, seconds.
    pub this_update_backdate: i64,
    /// Refresher period.
    pub refresh_interval: std::time::Duration,
    /// Rationed signatures per second per client network.
    pub sign_rate_per_client: f64,
    /// Rationed signatures a client network may burst.
    pub sign_burst_per_client: f64,
    /// Share of the signing pool rationed signatures may hold at once.
    pub anonymous_sign_share: f64,
    /// Share of the signing threads pre-signing may use at once, in (0, 1].
    pub presign_share: f64,
    /// CertID hash algorithms pre-signed (with NULL parameters, as OpenSSL, Go and Java send
    /// them), in order of priority.
    pub presign_hashes: Vec<HashAlg>,
}

/// Checks `[ocsp]`. The signing pool is sized here from `signing_threads`; a `[pkcs11]` table
/// resizes it to its sessions afterwards ([`super::pkcs11::size_signing_pool`]).
pub fn validate(o: &RawOcsp, ctx: &Ctx<'_>) -> Result<OcspConfig, Error> {
    let ocsp = OcspConfig {
        cache_bytes: (o.cache_mb as u64) << 20,
        signing_threads: if o.signing_threads == 0 {
            super::cpus()
        } else {
            o.signing_threads
        },
        signing_queue: o.signing_queue.max(1),
        max_age_cap: ctx.secs("[ocsp]", "max_age_cap", &o.max_age_cap)?,
        this_update_backdate: ctx.secs(
            "[ocsp]",
            "this_update_backdate",
            &o.this_update_backdate,
        )?,
        refresh_interval: std::time::Duration::from_secs(
            ctx.secs("[ocsp]", "refresh_interval", &o.refresh_interval)?
                .max(1) as u64,
        ),
        sign_rate_per_client: o.sign_rate_per_client,
        sign_burst_per_client: o.sign_burst_per_client,
        anonymous_sign_share: o.anonymous_sign_share,
        presign_share: o.presign_share,
        presign_hashes: presign_hashes(&o.presign_hashes, ctx)?,
    };
    if !(o.presign_share > 0.0 && o.presign_share <= 1.0) {
        return Err(ctx.invalid(
            "[ocsp]",
            "presign_share",
            format!("{} must be above 0 and at most 1", o.presign_share),
        ));
    }
    if !(ocsp.sign_rate_per_client.is_finite() && ocsp.sign_rate_per_client >= 0.0) {
        return Err(ctx.invalid(
            "[ocsp]",
            "sign_rate_per_client",
            "must be a number of signatures per second, 0 or more".into(),
        ));
    }
    if !(ocsp.sign_burst_per_client.is_finite() && ocsp.sign_burst_per_client >= 1.0) {
        return Err(ctx.invalid(
            "[ocsp]",
            "sign_burst_per_client",
            "must be 1 or more".into(),
        ));
    }
    if !(ocsp.anonymous_sign_share > 0.0 && ocsp.anonymous_sign_share <= 1.0) {
        return Err(ctx.invalid(
            "[ocsp]",
            "anonymous_sign_share",
            "must be above 0 and at most 1".into(),
        ));
    }
    if ocsp.this_update_backdate > 3600 {
        return Err(ctx.invalid("[ocsp]", "this_update_backdate", "at most 1h".into()));
    }
    Ok(ocsp)
}

/// `presign_hashes`: names to algorithms, duplicates dropped, order kept.
fn presign_hashes(names: &[String], ctx: &Ctx<'_>) -> Result<Vec<HashAlg>, Error> {
    let mut algs = Vec::new();
    for name in names {
        let alg = match name.to_ascii_lowercase().as_str() {
            "sha1" => HashAlg::Sha1,
            "sha256" => HashAlg::Sha256,
            "sha384" => HashAlg::Sha384,
            "sha512" => HashAlg::Sha512,
            _ => {
                return Err(ctx.invalid(
                    "[ocsp]",
                    "presign_hashes",
                    format!("{name:?}: expected \"sha1\", \"sha256\", \"sha384\" or \"sha512\""),
                ));
            }
        };
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}
