//! `[crl]`: publisher-wide CRL settings. Its raw table, its defaults, its validation into
//! [`CrlConfig`], and [`check_cron`] for the per-CA schedules of [`super::ca`].

use serde::Deserialize;

use super::{Ctx, Error};

/// `[crl]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCrl {
    /// How far thisUpdate is set before the build time, for relying parties whose clock is late.
    #[serde(default = "defaults::crl_backdate")]
    pub backdate: String,
    /// A CRL is rebuilt, whatever the schedule, when its nextUpdate is nearer than this.
    #[serde(default = "defaults::crl_safety_margin")]
    pub safety_margin: String,
    /// Threads encoding CRL entries; 0 = one per CPU.
    #[serde(default)]
    pub threads: usize,
    /// Upper bound of `Cache-Control: max-age` on CRL answers, so that HTTP caches fetch a newer
    /// CRL (or delta) within this delay; max-age is also never beyond nextUpdate.
    #[serde(default = "defaults::crl_max_age_cap")]
    pub max_age_cap: String,
    /// CRLs whose thisUpdate is older than this are deleted from the history at build time.
    #[serde(default = "defaults::keep_history")]
    pub keep_history: String,
}

mod defaults {
    pub fn crl_backdate() -> String {
        "5m".into()
    }
    pub fn crl_safety_margin() -> String {
        "1h".into()
    }
    pub fn crl_max_age_cap() -> String {
        "1h".into()
    }
    pub fn keep_history() -> String {
        "400d".into()
    }
}

impl Default for RawCrl {
    fn default() -> Self {
        RawCrl {
            backdate: defaults::crl_backdate(),
            safety_margin: defaults::crl_safety_margin(),
            threads: 0,
            max_age_cap: defaults::crl_max_age_cap(),
            keep_history: defaults::keep_history(),
        }
    }
}

/// `[crl]`, validated.
#[derive(Debug, Clone)]
pub struct CrlConfig {
    /// thisUpdate backdating, seconds.
    pub backdate: i64,
    /// Rebuild margin before nextUpdate, seconds.
    pub safety_margin: i64,
    /// Encoding threads (≥ 1).
    pub threads: usize,
    /// `Cache-Control: max-age` cap on CRL answers, seconds.
    pub max_age_cap: i64,
    /// History retention: CRLs with a thisUpdate older than this many seconds are pruned.
    pub keep_history: i64,
}

/// Checks `[crl]`.
pub fn validate(raw: &RawCrl, ctx: &Ctx<'_>) -> Result<CrlConfig, Error> {
    let crl = CrlConfig {
        backdate: ctx.secs("[crl]", "backdate", &raw.backdate)?,
        safety_margin: ctx.secs("[crl]", "safety_margin", &raw.safety_margin)?,
        threads: if raw.threads == 0 {
            super::cpus()
        } else {
            raw.threads
        },
        max_age_cap: ctx.secs("[crl]", "max_age_cap", &raw.max_age_cap)?,
        keep_history: ctx.secs("[crl]", "keep_history", &raw.keep_history)?,
    };
    if crl.keep_history < 86400 {
        return Err(ctx.invalid("[crl]", "keep_history", "at least 1d".into()));
    }
    if crl.backdate > 3600 {
        return Err(ctx.invalid("[crl]", "backdate", "at most 1h".into()));
    }
    Ok(crl)
}

/// Checks a cron expression the way the CRL scheduler (tokio-cron-scheduler, croner) reads it:
/// six or seven fields, the first being seconds.
pub fn check_cron(expr: &str) -> Result<(), String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{expr:?} is not a cron expression with a seconds field \
                 (sec min hour day-of-month month day-of-week, e.g. \"0 0 */6 * * *\"): {e}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_need_a_seconds_field() {
        assert!(check_cron("0 0 */6 * * *").is_ok());
        assert!(check_cron("*/2 * * * * *").is_ok());
        assert!(check_cron("0 */6 * * *").is_err(), "five fields");
        assert!(check_cron("every day").is_err());
    }
}
