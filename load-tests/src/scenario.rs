//! Scenarios: what to send, how much and how fast. A scenario is a TOML file (see
//! `load-tests/scenarios/*.toml`, every key there is commented) or is built from the command
//! line; both become a [`Scenario`], which [`Scenario::plan`] validates into the [`Plan`] the
//! engine runs (two stages, as vigie's own configuration).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigie::pki::HashAlg;

use crate::select::{Distribution, StatusMix};
use crate::stats::Kind;

/// Why a scenario is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or an unknown key.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value out of range.
    #[error("scenario {key}: {message}")]
    Invalid {
        /// The key at fault.
        key: &'static str,
        /// Why.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        key,
        message: message.into(),
    }
}

/// `[load]`: how much and how fast.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSettings {
    /// Concurrent connections (virtual clients).
    pub connections: usize,
    /// Measured duration (after the warm-up), e.g. `30s`.
    pub duration: String,
    /// Warm-up, not counted in the totals (shown on the timeline), e.g. `2s`.
    pub warmup: String,
    /// Requests per second for the open-loop model; 0 for closed loop (as fast as possible).
    pub rate: f64,
    /// Per-request timeout, e.g. `5s`.
    pub timeout: String,
    /// Generator threads (tokio workers).
    pub threads: usize,
    /// RNG seed (the same seed replays the same choices per connection).
    pub seed: u64,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            connections: 64,
            duration: "30s".into(),
            warmup: "2s".into(),
            rate: 0.0,
            timeout: "5s".into(),
            threads: 1,
            seed: 1,
        }
    }
}

/// `[ocsp]`: which certificates, how asked, how checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspSettings {
    /// Status mix, e.g. `good=0.9,revoked=0.09,unknown=0.01`.
    pub statuses: String,
    /// Popularity within a status: `uniform`, `zipf:S`, `hot:FRACTION:SHARE`.
    pub distribution: String,
    /// CertID hash: `sha1`, `sha256`, or `mixed` (half each).
    pub hash: String,
    /// Nonce length in octets, for the `*-nonce` kinds (RFC 9654: 1..=128, 32 typical).
    pub nonce_bytes: usize,
    /// Never-issued serials: size of the fixed pool (0: a fresh random serial every time).
    pub unknown_pool: usize,
    /// Fraction of OCSP answers whose signature is verified with openssl (0..=1).
    pub verify_rate: f64,
    /// GET path encoding: `percent` (standard base64, `+ / =` percent-encoded, RFC 6960 A.1)
    /// or `urlsafe` (URL-safe alphabet, no padding).
    pub get_encoding: String,
}

impl Default for OcspSettings {
    fn default() -> Self {
        OcspSettings {
            statuses: "good=0.9,revoked=0.1,unknown=0".into(),
            distribution: "uniform".into(),
            hash: "sha1".into(),
            nonce_bytes: 32,
            unknown_pool: 1000,
            verify_rate: 0.01,
            get_encoding: "percent".into(),
        }
    }
}

/// `[crl]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlSettings {
    /// Fraction of CRLs whose signature is verified (0..=1).
    pub verify_rate: f64,
}

impl Default for CrlSettings {
    fn default() -> Self {
        CrlSettings { verify_rate: 1.0 }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Events per call (1: single; more: a JSON array).
    pub batch: usize,
    /// Revocation reasons, used in turn.
    pub reasons: Vec<String>,
    /// Certificates issued before the run for `ingest-issue` (more are issued on the fly).
    pub issue_pool: usize,
    /// Measure revocation-to-visibility after each acknowledged revocation.
    pub visibility: bool,
    /// How long a visibility probe waits for the revoked answer, e.g. `10s`.
    pub probe_timeout: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            batch: 1,
            reasons: vec![
                "keyCompromise".into(),
                "superseded".into(),
                "affiliationChanged".into(),
                "cessationOfOperation".into(),
            ],
            issue_pool: 2000,
            visibility: true,
            probe_timeout: "10s".into(),
        }
    }
}

/// A scenario as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Short name, used in result directory names.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// How much and how fast.
    pub load: LoadSettings,
    /// Request kinds and their weights (`ocsp-post = 45`, `crl-delta-conditional = 1` …).
    pub mix: BTreeMap<String, f64>,
    /// OCSP settings.
    pub ocsp: OcspSettings,
    /// CRL settings.
    pub crl: CrlSettings,
    /// Ingest settings.
    pub ingest: IngestSettings,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "ocsp".into(),
            description: String::new(),
            load: LoadSettings::default(),
            mix: BTreeMap::from([("ocsp-post".to_owned(), 1.0)]),
            ocsp: OcspSettings::default(),
            crl: CrlSettings::default(),
            ingest: IngestSettings::default(),
        }
    }
}

/// Which CertID hash algorithm each request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashChoice {
    /// Always this one.
    One(HashAlg),
    /// SHA-1 or SHA-256, half each.
    Mixed,
}

/// How GET paths are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetEncoding {
    /// RFC 6960 Appendix A.1: standard base64, percent-encoded.
    Percent,
    /// URL-safe base64 without padding (no `/`, `+`, `=`, `%`).
    UrlSafe,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario as given (for the result file).
    pub scenario: Scenario,
    /// Connections.
    pub connections: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up.
    pub warmup: Duration,
    /// Open-loop rate, requests/s.
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Generator threads.
    pub threads: usize,
    /// Kinds and cumulative weights (ending at 1.0).
    pub kinds: Vec<(Kind, f64)>,
    /// Status mix.
    pub statuses: StatusMix,
    /// Popularity.
    pub distribution: Distribution,
    /// CertID hash.
    pub hash: HashChoice,
    /// GET encoding.
    pub get_encoding: GetEncoding,
    /// Visibility probe limit.
    pub probe_timeout: Duration,
}

fn duration(key: &'static str, s: &str) -> Result<Duration, Error> {
    humantime::parse_duration(s.trim()).map_err(|e| invalid(key, format!("{s:?}: {e}")))
}

impl Scenario {
    /// Reads a scenario file.
    pub fn read(path: &Path) -> Result<Scenario, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| Error::Syntax {
            path: shown,
            message: e.to_string(),
        })
    }

    /// Validates into a plan.
    pub fn plan(&self) -> Result<Plan, Error> {
        let l = &self.load;
        if l.connections == 0 {
            return Err(invalid("load.connections", "must be at least 1"));
        }
        if l.threads == 0 {
            return Err(invalid("load.threads", "must be at least 1"));
        }
        if !(l.rate >= 0.0 && l.rate.is_finite()) {
            return Err(invalid("load.rate", "must be 0 (closed loop) or positive"));
        }
        let mut total = 0.0;
        let mut kinds = Vec::new();
        for (label, &w) in &self.mix {
            let kind = Kind::from_label(label).ok_or_else(|| {
                invalid(
                    "mix",
                    format!(
                        "unknown request kind {label:?}; known: {}",
                        Kind::ALL.map(Kind::label).join(", ")
                    ),
                )
            })?;
            if !(w >= 0.0 && w.is_finite()) {
                return Err(invalid("mix", format!("{label}: weight must be ≥ 0")));
            }
            if w > 0.0 {
                total += w;
                kinds.push((kind, total));
            }
        }
        if kinds.is_empty() {
            return Err(invalid("mix", "no request kind with a positive weight"));
        }
        for k in &mut kinds {
            k.1 /= total;
        }
        let o = &self.ocsp;
        let statuses: StatusMix = o
            .statuses
            .parse()
            .map_err(|e: crate::select::Error| invalid("ocsp.statuses", e.to_string()))?;
        let distribution: Distribution = o
            .distribution
            .parse()
            .map_err(|e: crate::select::Error| invalid("ocsp.distribution", e.to_string()))?;
        let hash = match o.hash.as_str() {
            "sha1" => HashChoice::One(HashAlg::Sha1),
            "sha256" => HashChoice::One(HashAlg::Sha256),
            "sha384" => HashChoice::One(HashAlg::Sha384),
            "sha512" => HashChoice::One(HashAlg::Sha512),
            "mixed" => HashChoice::Mixed,
            other => {
                return Err(invalid(
                    "ocsp.hash",
                    format!("{other:?}: sha1, sha256, sha384, sha512 or mixed"),
                ));
            }
        };
        let get_encoding = match o.get_encoding.as_str() {
            "percent" => GetEncoding::Percent,
            "urlsafe" => GetEncoding::UrlSafe,
            other => {
                return Err(invalid(
                    "ocsp.get_encoding",
                    format!("{other:?}: percent or urlsafe"),
                ));
            }
        };
        if !vigie::ocsp::request::NONCE_LEN.contains(&o.nonce_bytes) {
            return Err(invalid("ocsp.nonce_bytes", "RFC 9654 allows 1 to 128"));
        }
        for (key, rate) in [
            ("ocsp.verify_rate", o.verify_rate),
            ("crl.verify_rate", self.crl.verify_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(invalid(key, "must be within 0..=1"));
            }
        }
        if self.ingest.batch == 0 {
            return Err(invalid("ingest.batch", "must be at least 1"));
        }
        for r in &self.ingest.reasons {
            vigie::model::RevocationReason::from_name(r)
                .map_err(|e| invalid("ingest.reasons", e.to_string()))?;
        }
        let needs_reasons = kinds.iter().any(|(k, _)| *k == Kind::IngestRevoke);
        if needs_reasons && self.ingest.reasons.is_empty() {
            return Err(invalid("ingest.reasons", "at least one reason"));
        }
        Ok(Plan {
            scenario: self.clone(),
            connections: l.connections,
            duration: duration("load.duration", &l.duration)?,
            warmup: duration("load.warmup", &l.warmup)?,
            rate: (l.rate > 0.0).then_some(l.rate),
            timeout: duration("load.timeout", &l.timeout)?,
            threads: l.threads,
            kinds,
            statuses,
            distribution,
            hash,
            get_encoding,
            probe_timeout: duration("ingest.probe_timeout", &self.ingest.probe_timeout)?,
        })
    }
}

impl Plan {
    /// Whether any kind of this plan is one of `kinds`.
    pub fn uses(&self, pred: impl Fn(Kind) -> bool) -> bool {
        self.kinds.iter().any(|(k, _)| pred(*k))
    }

    /// Whether the plan sends OCSP requests.
    pub fn uses_ocsp(&self) -> bool {
        self.uses(|k| {
            matches!(
                k,
                Kind::OcspPost | Kind::OcspGet | Kind::OcspPostNonce | Kind::OcspGetNonce
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse_and_plan() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::read(&path).expect("parses");
                s.plan()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 4, "expected the shipped scenarios, found {n}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = Scenario::default();
        s.mix.insert("ocsp-teleport".into(), 1.0);
        assert!(matches!(s.plan(), Err(Error::Invalid { key: "mix", .. })));
        let mut s = Scenario::default();
        s.ocsp.nonce_bytes = 0;
        assert!(matches!(
            s.plan(),
            Err(Error::Invalid {
                key: "ocsp.nonce_bytes",
                ..
            })
        ));
        let mut s = Scenario::default();
        s.load.duration = "soon".into();
        assert!(s.plan().is_err());
        let err = toml::from_str::<Scenario>("[load]\nconections = 3\n").expect_err("typo");
        assert!(err.to_string().contains("conections"));
    }

    #[test]
    fn weights_become_cumulative() {
        let s = Scenario {
            mix: BTreeMap::from([("ocsp-get".into(), 3.0), ("ocsp-post".into(), 1.0)]),
            ..Scenario::default()
        };
        let p = s.plan().expect("plan");
        assert_eq!(p.kinds, vec![(Kind::OcspGet, 0.75), (Kind::OcspPost, 1.0)]);
        assert!(p.rate.is_none());
    }
}
