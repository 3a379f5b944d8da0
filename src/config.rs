//! Configuration, in two stages: [`RawConfig`] is what the TOML file says (serde, with defaults);
//! [`Config`] is what the service runs with, after [`RawConfig::validate`] resolved paths against
//! the file's directory, parsed durations and loaded every CA's certificates and keys.
//!
//! Environment variables `VIGIE_<SECTION>_<KEY>` (e.g. `VIGIE_PUBLIC_LISTEN`,
//! `VIGIE_STORE_PATH`, `VIGIE_OCSP_MAX_AGE_CAP`) override keys of the single-table sections.
//! The sample `config/vigie.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::model::CaId;
use crate::pki::CaRegistry;

/// Why the configuration cannot be used. Each message names the table and the key.
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
    /// The TOML does not parse, or a key has the wrong type or is unknown.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A key has a value that cannot work.
    #[error("{path}: {table}, key {key:?}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The table, e.g. `[public]` or `[[ca]] #2 (id "aci-el-org")`.
        table: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// What the TOML file holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The public listener: OCSP and CRLs, no authentication.
    #[serde(default)]
    pub public: RawPublic,
    /// The admin listener: ingest API, metrics, health.
    #[serde(default)]
    pub admin: RawAdmin,
    /// The RocksDB store.
    #[serde(default)]
    pub store: RawStore,
    /// Responder-wide OCSP settings.
    #[serde(default)]
    pub ocsp: RawOcsp,
    /// Publisher-wide CRL settings.
    #[serde(default)]
    pub crl: RawCrl,
    /// The CAs served.
    #[serde(default, rename = "ca")]
    pub cas: Vec<RawCa>,
    /// Where CRLs are published besides HTTP (LDAP directories, file directories).
    #[serde(default, rename = "publish")]
    pub publish: Vec<crate::publish::config::RawPublish>,
}

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
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// RocksDB directory, relative to the configuration file's directory.
    #[serde(default = "defaults::store_path")]
    pub path: String,
    /// RocksDB block cache, in MiB.
    #[serde(default = "defaults::block_cache_mb")]
    pub block_cache_mb: usize,
    /// RocksDB memtables of all column families together, in MiB.
    #[serde(default = "defaults::write_buffer_mb")]
    pub write_buffer_mb: usize,
}

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
}

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
}

impl Default for RawCrl {
    fn default() -> Self {
        RawCrl {
            backdate: defaults::crl_backdate(),
            safety_margin: defaults::crl_safety_margin(),
            threads: 0,
            max_age_cap: defaults::crl_max_age_cap(),
        }
    }
}

/// One `[[ca]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    /// URL-safe identifier used in paths and store keys.
    pub id: String,
    /// The issuing CA certificate (PEM or DER).
    pub cert: String,
    /// The CA private key, which signs CRLs.
    pub key: String,
    /// The delegated OCSP signer certificate (id-kp-OCSPSigning, issued by this CA). May be
    /// the CA certificate itself, in which case the CA key signs responses.
    pub ocsp_cert: String,
    /// The delegated OCSP signer key.
    pub ocsp_key: String,
    /// thisUpdate → nextUpdate of a response (RFC 9919; CA/B BR §4.9.10: 8 hours to 10 days).
    #[serde(default = "defaults::ocsp_validity")]
    pub ocsp_validity: String,
    /// `echo` (sign a fresh response echoing the request's nonce) or `ignore` (serve the cached
    /// response, without nonce).
    #[serde(default = "defaults::nonce")]
    pub nonce: String,
    /// Answer for a serial this CA never registered: `unknown`, or `revoked` (RFC 6960 §2.2,
    /// certificateHold at 1970-01-01, with the extended-revoke extension of §4.4.8).
    #[serde(default = "defaults::unknown_serial")]
    pub unknown_serial: String,
    /// When full CRLs are built: a cron expression with a seconds field.
    #[serde(default = "defaults::crl_schedule")]
    pub crl_schedule: String,
    /// When delta CRLs are built: a cron expression with a seconds field; "" for no delta CRLs.
    #[serde(default = "defaults::delta_schedule")]
    pub delta_schedule: String,
    /// thisUpdate → nextUpdate of a full CRL (CA/B BR: at most 10 days).
    #[serde(default = "defaults::crl_validity")]
    pub crl_validity: String,
    /// thisUpdate → nextUpdate of a delta CRL.
    #[serde(default = "defaults::delta_validity")]
    pub delta_validity: String,
    /// How long a revoked certificate stays on CRLs after its notAfter; "forever" keeps them all
    /// (and says so with ExpiredCertsOnCRL). Default: one `crl_validity`.
    #[serde(default)]
    pub crl_keep_expired: Option<String>,
    /// Publish a delta CRL soon after a revocation is ingested.
    #[serde(default)]
    pub publish_delta_on_revoke: bool,
    /// How long to wait after a revocation for more of them before that delta is built.
    #[serde(default = "defaults::delta_debounce")]
    pub delta_debounce: String,
    /// The URL certificates of this CA give as CRL distribution point, written into the
    /// critical IssuingDistributionPoint of its CRLs (RFC 5280 §5.2.5). Default
    /// `{public_url}/crl/{id}.crl`; "" writes no IssuingDistributionPoint.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The URL of the delta CRLs, written into full CRLs' FreshestCRL (RFC 5280 §5.2.6) when
    /// `delta_schedule` is set. Default `{public_url}/crl/{id}-delta.crl`.
    #[serde(default)]
    pub delta_crl_url: Option<String>,
    /// DN of the CA's entry in the LDAP directories of `[[publish]] kind = "ldap"` sinks.
    /// Default: the CA certificate's subject as an RFC 4514 string.
    #[serde(default)]
    pub ldap_dn: Option<String>,
}

mod defaults {
    pub fn public_listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn admin_listen() -> String {
        "127.0.0.1:8081".into()
    }
    pub fn max_request_bytes() -> usize {
        4096
    }
    pub fn store_path() -> String {
        "data".into()
    }
    pub fn block_cache_mb() -> usize {
        64
    }
    pub fn write_buffer_mb() -> usize {
        32
    }
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
    pub fn ocsp_validity() -> String {
        "1d".into()
    }
    pub fn nonce() -> String {
        "echo".into()
    }
    pub fn unknown_serial() -> String {
        "unknown".into()
    }
    pub fn crl_schedule() -> String {
        "0 0 */6 * * *".into()
    }
    pub fn delta_schedule() -> String {
        "0 */15 * * * *".into()
    }
    pub fn crl_validity() -> String {
        "7d".into()
    }
    pub fn delta_validity() -> String {
        "1d".into()
    }
    pub fn delta_debounce() -> String {
        "5s".into()
    }
    pub fn crl_backdate() -> String {
        "5m".into()
    }
    pub fn crl_safety_margin() -> String {
        "1h".into()
    }
    pub fn crl_max_age_cap() -> String {
        "1h".into()
    }
}

impl Default for RawPublic {
    fn default() -> Self {
        RawPublic {
            listen: defaults::public_listen(),
            public_url: None,
            workers: 0,
            max_request_bytes: defaults::max_request_bytes(),
        }
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
        }
    }
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: defaults::store_path(),
            block_cache_mb: defaults::block_cache_mb(),
            write_buffer_mb: defaults::write_buffer_mb(),
        }
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
}

/// How long revoked certificates stay on CRLs after they expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepExpired {
    /// This many seconds after notAfter.
    For(i64),
    /// Forever (ExpiredCertsOnCRL says since when: RFC 5280 §5.2.7 (X.509 2019)).
    Forever,
}

/// The CRL settings of one CA.
#[derive(Debug, Clone)]
pub struct CaCrlConfig {
    /// Cron expression (with seconds) for full CRLs.
    pub schedule: String,
    /// Cron expression for delta CRLs; `None`: no delta CRLs.
    pub delta_schedule: Option<String>,
    /// Full CRL validity, seconds.
    pub validity: i64,
    /// Delta CRL validity, seconds.
    pub delta_validity: i64,
    /// Retention of expired certificates.
    pub keep_expired: KeepExpired,
    /// Publish a delta soon after a revocation.
    pub publish_delta_on_revoke: bool,
    /// Debounce before that delta, seconds.
    pub delta_debounce: std::time::Duration,
    /// IssuingDistributionPoint fullName; `None`: no IssuingDistributionPoint.
    pub idp_url: Option<String>,
    /// FreshestCRL URL of full CRLs (used when `delta_schedule` is set).
    pub delta_url: String,
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Absolute RocksDB directory.
    pub path: PathBuf,
    /// Block cache in bytes.
    pub block_cache_bytes: usize,
    /// All memtables together, in bytes.
    pub write_buffer_bytes: usize,
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
}

/// What a CA answers for a serial it never registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSerialPolicy {
    /// `unknown` (the default).
    Unknown,
    /// `revoked`, certificateHold, 1970-01-01, extended-revoke (RFC 6960 §2.2, §4.4.8).
    Revoked,
}

/// What a CA does with a request nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoncePolicy {
    /// Sign a fresh response that echoes it (RFC 9654).
    Echo,
    /// Serve the cached response without the nonce.
    Ignore,
}

/// One `[[ca]]`, validated (paths absolute, durations parsed). Keys are loaded by [`crate::pki`].
#[derive(Debug, Clone)]
pub struct CaConfig {
    /// Identifier.
    pub id: CaId,
    /// CA certificate file.
    pub cert: PathBuf,
    /// CA key file.
    pub key: PathBuf,
    /// OCSP signer certificate file.
    pub ocsp_cert: PathBuf,
    /// OCSP signer key file.
    pub ocsp_key: PathBuf,
    /// Response validity in seconds.
    pub ocsp_validity: i64,
    /// Nonce handling.
    pub nonce: NoncePolicy,
    /// Never-registered serials.
    pub unknown_serial: UnknownSerialPolicy,
    /// CRL publication.
    pub crl: CaCrlConfig,
    /// `ldap_dn` as configured (`None`: from the CA certificate's subject).
    pub ldap_dn: Option<String>,
}

/// The configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// `[public]`.
    pub public: PublicConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[ocsp]`.
    pub ocsp: OcspConfig,
    /// `[crl]`.
    pub crl: CrlConfig,
    /// The `[[ca]]` tables.
    pub cas: Vec<CaConfig>,
    /// The `[[publish]]` tables.
    pub publish: Vec<crate::publish::SinkConfig>,
    /// The CAs with their certificates and keys loaded and checked.
    pub registry: Arc<CaRegistry>,
}

impl Config {
    /// Reads, overrides from the environment, and validates `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        let raw = RawConfig::parse(&text, &shown, std::env::vars())?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        raw.validate(&shown, &dir)
    }
}

impl RawConfig {
    /// Parses TOML text, applying `VIGIE_<SECTION>_<KEY>` overrides taken from `env`.
    pub fn parse(
        text: &str,
        shown: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RawConfig, Error> {
        let syntax = |message: String| Error::Syntax {
            path: shown.to_owned(),
            message,
        };
        let mut doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax(e.to_string()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("VIGIE_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            let section = section.to_ascii_lowercase();
            if !["public", "admin", "store", "ocsp", "crl"].contains(&section.as_str()) {
                continue;
            }
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let table = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = table {
                t.insert(key.to_ascii_lowercase(), parsed);
            }
        }
        toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| syntax(e.to_string()))
    }

    /// Checks every value and loads every CA; `dir` is where relative paths start.
    pub fn validate(self, shown: &str, dir: &Path) -> Result<Config, Error> {
        let invalid = |table: &str, key: &str, message: String| Error::Invalid {
            path: shown.to_owned(),
            table: table.to_owned(),
            key: key.to_owned(),
            message,
        };
        let addr = |table: &str, v: &str| -> Result<SocketAddr, Error> {
            v.parse().map_err(|e| {
                invalid(
                    table,
                    "listen",
                    format!("{v:?} is not an address:port ({e})"),
                )
            })
        };
        let secs = |table: &str, key: &str, v: &str| -> Result<i64, Error> {
            let d = humantime::parse_duration(v).map_err(|e| {
                invalid(
                    table,
                    key,
                    format!("{v:?} is not a duration like \"1d\", \"6h\", \"30s\" ({e})"),
                )
            })?;
            i64::try_from(d.as_secs())
                .map_err(|_| invalid(table, key, format!("{v:?} is too long")))
        };
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);

        let listen = addr("[public]", &self.public.listen)?;
        let public_url = match &self.public.public_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                u.trim_end_matches('/').to_owned()
            }
            Some(u) => {
                return Err(invalid(
                    "[public]",
                    "public_url",
                    format!("{u:?} must start with http:// or https://"),
                ));
            }
            None => format!("http://{listen}"),
        };
        if !(512..=65536).contains(&self.public.max_request_bytes) {
            return Err(invalid(
                "[public]",
                "max_request_bytes",
                "must be between 512 and 65536".into(),
            ));
        }
        let public = PublicConfig {
            listen,
            public_url,
            workers: if self.public.workers == 0 {
                cpus
            } else {
                self.public.workers
            },
            max_request_bytes: self.public.max_request_bytes,
        };
        let mut token_sha256 = Vec::new();
        let parse_hash = |h: &str, key: &str| -> Result<[u8; 32], Error> {
            let bytes = hex::decode(h.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    invalid(
                        "[admin]",
                        key,
                        format!("{h:?} is not a hex SHA-256 (64 hex digits)"),
                    )
                })?;
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes);
            Ok(a)
        };
        for h in &self.admin.token_sha256 {
            token_sha256.push(parse_hash(h, "token_sha256")?);
        }
        if let Some(f) = &self.admin.token_file {
            let path = resolve(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "[admin]",
                    "token_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                token_sha256.push(parse_hash(line, "token_file")?);
            }
        }
        let existing = |key: &str, v: &Option<String>| -> Result<Option<PathBuf>, Error> {
            match v {
                Some(p) => {
                    let path = resolve(p);
                    if !path.exists() {
                        return Err(invalid(
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
            listen: addr("[admin]", &self.admin.listen)?,
            token_sha256,
            tls_cert: existing("tls_cert", &self.admin.tls_cert)?,
            tls_key: existing("tls_key", &self.admin.tls_key)?,
            client_ca: existing("client_ca", &self.admin.client_ca)?,
        };
        if admin.tls_cert.is_some() != admin.tls_key.is_some() {
            return Err(invalid(
                "[admin]",
                "tls_key",
                "tls_cert and tls_key go together".into(),
            ));
        }
        if admin.client_ca.is_some() && admin.tls_cert.is_none() {
            return Err(invalid(
                "[admin]",
                "client_ca",
                "mutual TLS needs tls_cert and tls_key".into(),
            ));
        }
        let crl = CrlConfig {
            backdate: secs("[crl]", "backdate", &self.crl.backdate)?,
            safety_margin: secs("[crl]", "safety_margin", &self.crl.safety_margin)?,
            threads: if self.crl.threads == 0 {
                cpus
            } else {
                self.crl.threads
            },
            max_age_cap: secs("[crl]", "max_age_cap", &self.crl.max_age_cap)?,
        };
        if crl.backdate > 3600 {
            return Err(invalid("[crl]", "backdate", "at most 1h".into()));
        }
        if admin.listen == public.listen && admin.listen.port() != 0 {
            return Err(invalid(
                "[admin]",
                "listen",
                "must differ from [public] listen: the admin API is never public".into(),
            ));
        }
        let store = StoreConfig {
            path: resolve(&self.store.path),
            block_cache_bytes: self.store.block_cache_mb.max(8) << 20,
            write_buffer_bytes: self.store.write_buffer_mb.max(4) << 20,
        };
        let o = &self.ocsp;
        let ocsp = OcspConfig {
            cache_bytes: (o.cache_mb as u64) << 20,
            signing_threads: if o.signing_threads == 0 {
                cpus
            } else {
                o.signing_threads
            },
            signing_queue: o.signing_queue.max(1),
            max_age_cap: secs("[ocsp]", "max_age_cap", &o.max_age_cap)?,
            this_update_backdate: secs("[ocsp]", "this_update_backdate", &o.this_update_backdate)?,
            refresh_interval: std::time::Duration::from_secs(
                secs("[ocsp]", "refresh_interval", &o.refresh_interval)?.max(1) as u64,
            ),
        };
        if ocsp.this_update_backdate > 3600 {
            return Err(invalid(
                "[ocsp]",
                "this_update_backdate",
                "at most 1h".into(),
            ));
        }

        let mut cas: Vec<CaConfig> = Vec::with_capacity(self.cas.len());
        for (i, c) in self.cas.iter().enumerate() {
            let table = format!("[[ca]] #{} (id {:?})", i + 1, c.id);
            let id = CaId::new(&c.id).map_err(|e| invalid(&table, "id", e.to_string()))?;
            if cas.iter().any(|other| other.id == id) {
                return Err(invalid(&table, "id", format!("duplicate id {:?}", c.id)));
            }
            let ocsp_validity = secs(&table, "ocsp_validity", &c.ocsp_validity)?;
            if !(60..=366 * 86400).contains(&ocsp_validity) {
                return Err(invalid(
                    &table,
                    "ocsp_validity",
                    "must be between 1m and 366d (RFC 9919 suggests 8h to 10d)".into(),
                ));
            }
            let nonce = match c.nonce.as_str() {
                "echo" => NoncePolicy::Echo,
                "ignore" => NoncePolicy::Ignore,
                other => {
                    return Err(invalid(
                        &table,
                        "nonce",
                        format!("{other:?}: expected \"echo\" or \"ignore\""),
                    ));
                }
            };
            let unknown_serial = match c.unknown_serial.as_str() {
                "unknown" => UnknownSerialPolicy::Unknown,
                "revoked" => UnknownSerialPolicy::Revoked,
                other => {
                    return Err(invalid(
                        &table,
                        "unknown_serial",
                        format!("{other:?}: expected \"unknown\" or \"revoked\""),
                    ));
                }
            };
            let validity = secs(&table, "crl_validity", &c.crl_validity)?;
            if !(60..=366 * 86400).contains(&validity) {
                return Err(invalid(
                    &table,
                    "crl_validity",
                    "must be between 1m and 366d (CA/B BR: at most 10d)".into(),
                ));
            }
            let delta_validity = secs(&table, "delta_validity", &c.delta_validity)?;
            if !(60..=validity).contains(&delta_validity) {
                return Err(invalid(
                    &table,
                    "delta_validity",
                    "must be between 1m and crl_validity".into(),
                ));
            }
            let keep_expired = match c.crl_keep_expired.as_deref() {
                None => KeepExpired::For(validity),
                Some("forever") => KeepExpired::Forever,
                Some(d) => KeepExpired::For(secs(&table, "crl_keep_expired", d)?),
            };
            if crl.backdate >= delta_validity / 2 {
                return Err(invalid(
                    &table,
                    "delta_validity",
                    "must be more than twice [crl] backdate".into(),
                ));
            }
            let url = |key: &str, given: &Option<String>, default: String| match given
                .as_deref()
                .map(str::trim)
            {
                None => Ok(Some(default)),
                Some("") => Ok(None),
                Some(u) if u.is_ascii() && u.contains(':') && !u.contains(char::is_whitespace) => {
                    Ok(Some(u.to_owned()))
                }
                Some(u) => Err(invalid(
                    &table,
                    key,
                    format!("{u:?} is not a URI (ASCII, with a scheme, no spaces)"),
                )),
            };
            let idp_url = url(
                "crl_url",
                &c.crl_url,
                format!("{}/crl/{}.crl", public.public_url, c.id),
            )?;
            let delta_url = url(
                "delta_crl_url",
                &c.delta_crl_url,
                format!("{}/crl/{}-delta.crl", public.public_url, c.id),
            )?
            .ok_or_else(|| {
                invalid(
                    &table,
                    "delta_crl_url",
                    "must not be empty (use delta_schedule = \"\" for no delta CRLs)".into(),
                )
            })?;
            let crl_cfg = CaCrlConfig {
                schedule: c.crl_schedule.trim().to_owned(),
                delta_schedule: Some(c.delta_schedule.trim().to_owned()).filter(|s| !s.is_empty()),
                validity,
                delta_validity,
                keep_expired,
                publish_delta_on_revoke: c.publish_delta_on_revoke,
                delta_debounce: std::time::Duration::from_secs(
                    secs(&table, "delta_debounce", &c.delta_debounce)?.max(0) as u64,
                ),
                idp_url,
                delta_url,
            };
            if crl_cfg.schedule.is_empty() {
                return Err(invalid(
                    &table,
                    "crl_schedule",
                    "a full CRL schedule is required".into(),
                ));
            }
            for (key, expr) in [
                ("crl_schedule", Some(&crl_cfg.schedule)),
                ("delta_schedule", crl_cfg.delta_schedule.as_ref()),
            ] {
                if let Some(expr) = expr {
                    check_cron(expr).map_err(|m| invalid(&table, key, m))?;
                }
            }
            cas.push(CaConfig {
                id,
                cert: resolve(&c.cert),
                key: resolve(&c.key),
                ocsp_cert: resolve(&c.ocsp_cert),
                ocsp_key: resolve(&c.ocsp_key),
                ocsp_validity,
                nonce,
                unknown_serial,
                crl: crl_cfg,
                ldap_dn: match c.ldap_dn.as_deref().map(str::trim) {
                    Some(dn) if !dn.contains('=') => {
                        return Err(invalid(
                            &table,
                            "ldap_dn",
                            format!("{dn:?} is not a DN (RFC 4514, e.g. \"cn=AC X,o=Y,c=FR\")"),
                        ));
                    }
                    dn => dn.map(str::to_owned),
                },
            });
        }
        if cas.is_empty() {
            return Err(invalid(
                "[[ca]]",
                "id",
                "no CA configured: add at least one [[ca]] table".into(),
            ));
        }
        let publish = crate::publish::config::validate(&self.publish, resolve).map_err(
            |(i, key, message)| invalid(&format!("[[publish]] #{}", i + 1), key, message),
        )?;
        let registry = CaRegistry::load(&cas).map_err(|e| {
            let (index, key, message) = e.parts();
            invalid(
                &format!("[[ca]] #{} (id {:?})", index + 1, cas[index].id.as_str()),
                key,
                message,
            )
        })?;
        Ok(Config {
            source: PathBuf::from(shown),
            public,
            admin,
            store,
            ocsp,
            crl,
            cas,
            publish,
            registry: Arc::new(registry),
        })
    }
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
    fn sample_config_parses() {
        let text = include_str!("../config/vigie.toml");
        let raw =
            RawConfig::parse(text, "config/vigie.toml", std::iter::empty()).expect("sample parses");
        assert_eq!(raw.public.listen, "127.0.0.1:8080");
        assert_eq!(raw.admin.listen, "127.0.0.1:8081");
        assert_eq!(raw.store.path, "data");
        assert!(!raw.cas.is_empty());
        assert_eq!(raw.cas[0].id, "aci-el-org");
        assert_eq!(raw.cas[0].ocsp_validity, "1d");
        assert_eq!(raw.publish.len(), 1);
        assert_eq!(raw.publish[0].kind, "directory");
        // The commented-out LDAP table parses once uncommented.
        let ldap: String = text
            .split_once("# [[publish]]\n")
            .map(|(_, rest)| rest)
            .expect("an LDAP example")
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let raw = RawConfig::parse(
            &format!("[[publish]]\n{ldap}"),
            "sample LDAP sink",
            std::iter::empty(),
        )
        .expect("the LDAP example parses");
        let sinks = crate::publish::config::validate(&raw.publish, |p| {
            if p == "ldap-password" {
                std::path::PathBuf::from("/dev/null")
            } else {
                p.into()
            }
        });
        let message = format!("{sinks:?}");
        assert!(
            message.contains("not a readable file") || sinks.is_ok(),
            "{message}"
        );
        assert_eq!(raw.publish[0].kind, "ldap");
        assert!(raw.publish[0].starttls);
    }

    #[test]
    fn env_overrides_single_tables() {
        let env = vec![
            ("VIGIE_PUBLIC_LISTEN".to_owned(), "0.0.0.0:9000".to_owned()),
            ("VIGIE_OCSP_CACHE_MB".to_owned(), "7".to_owned()),
            ("VIGIE_CA_ID".to_owned(), "ignored".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let raw =
            RawConfig::parse("[public]\nlisten = \"127.0.0.1:1\"\n", "t", env).expect("parses");
        assert_eq!(raw.public.listen, "0.0.0.0:9000");
        assert_eq!(raw.ocsp.cache_mb, 7);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = RawConfig::parse("[public]\nlisen = \"x\"\n", "t.toml", std::iter::empty())
            .expect_err("typo");
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn invalid_values_name_table_and_key() {
        let text = "[[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\nocsp_validity = \"soon\"\n";
        let raw = RawConfig::parse(text, "t.toml", std::iter::empty()).expect("parses");
        let err = raw
            .validate("t.toml", Path::new("/nonexistent"))
            .expect_err("bad duration");
        let msg = err.to_string();
        assert!(
            msg.contains("[[ca]] #1") && msg.contains("ocsp_validity"),
            "{msg}"
        );

        let text = "[[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n\
                    [[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n";
        let raw = RawConfig::parse(text, "t.toml", std::iter::empty()).expect("parses");
        let msg = raw
            .validate("t.toml", Path::new("/nonexistent"))
            .expect_err("dup")
            .to_string();
        assert!(msg.contains("#2") && msg.contains("duplicate"), "{msg}");
    }

    #[test]
    fn cron_expressions_need_a_seconds_field() {
        assert!(check_cron("0 0 */6 * * *").is_ok());
        assert!(check_cron("*/2 * * * * *").is_ok());
        assert!(check_cron("0 */6 * * *").is_err(), "five fields");
        assert!(check_cron("every day").is_err());
    }
}
