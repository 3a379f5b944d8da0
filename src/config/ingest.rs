//! `[ingest]`: the rules of the ingest API that are not per CA. Its raw table, its defaults, and
//! its validation into [`IngestConfig`]. The per-CA rule (`accept_unregistered_revocations`) is
//! in [`super::ca`]; the rules themselves in [`crate::ingest::rules`].

use serde::Deserialize;

use super::{Ctx, Error};

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    /// How far in the future a revocation time may be (the CA's clock may run ahead).
    #[serde(default = "defaults::max_clock_skew")]
    pub max_clock_skew: String,
}

mod defaults {
    pub fn max_clock_skew() -> String {
        "5m".into()
    }
}

impl Default for RawIngest {
    fn default() -> Self {
        RawIngest {
            max_clock_skew: defaults::max_clock_skew(),
        }
    }
}

/// `[ingest]`, validated.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Largest revocation time accepted ahead of now, seconds.
    pub max_clock_skew: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_clock_skew: 300,
        }
    }
}

/// Checks `[ingest]`.
pub fn validate(raw: &RawIngest, ctx: &Ctx<'_>) -> Result<IngestConfig, Error> {
    let max_clock_skew = ctx.secs("[ingest]", "max_clock_skew", &raw.max_clock_skew)?;
    if max_clock_skew > 86400 {
        return Err(ctx.invalid("[ingest]", "max_clock_skew", "at most 1d".into()));
    }
    Ok(IngestConfig { max_clock_skew })
}
