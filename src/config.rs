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
use crate::pki::{CaRegistry, HashAlg};
use crate::signer::{KeyRef, Pkcs11Settings};

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
    /// The PKCS#11 module holding keys named by `pkcs11:` URIs.
    #[serde(default)]
    pub pkcs11: Option<RawPkcs11>,
    /// Start-up checks on secrets.
    #[serde(default)]
    pub security: RawSecurity,
    /// Where CRLs are published besides HTTP (LDAP directories, file directories).
    #[serde(default, rename = "publish")]
    pub publish: Vec<crate::publish::config::RawPublish>,
    /// Several nodes fed by NATS JetStream ([`crate::replicate`]); absent: a single node.
    #[serde(default)]
    pub replication: Option<crate::replicate::config::RawReplication>,
}

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

/// `[security]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    /// Accept key and token files that the group or others can read.
    #[serde(default)]
    pub allow_loose_key_permissions: bool,
}

/// One `[admin] tokens` entry: a labelled bearer token hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Who holds the token, as the audit trail names it.
    pub label: String,
    /// SHA-256 (hex) of the token.
    pub sha256: String,
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

/// One `[[ca]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    /// URL-safe identifier used in paths and store keys.
    pub id: String,
    /// The issuing CA certificate (PEM or DER).
    pub cert: String,
    /// The CA private key, which signs CRLs: a file path or a `pkcs11:` URI (RFC 7512). Optional
    /// when `crl_schedule` is absent or empty: such a node builds no CRL for this CA.
    #[serde(default)]
    pub key: Option<String>,
    /// The delegated OCSP signer certificate (id-kp-OCSPSigning, issued by this CA). May be
    /// the CA certificate itself, in which case the CA key signs responses.
    pub ocsp_cert: String,
    /// The delegated OCSP signer key: a file path or a `pkcs11:` URI (RFC 7512).
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
    /// When full CRLs are built: a cron expression with a seconds field. Absent: the default
    /// schedule when `key` is given, no CRLs otherwise; "" builds no CRLs.
    #[serde(default)]
    pub crl_schedule: Option<String>,
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
    /// One URL certificates of this CA give as CRL distribution point, written into the
    /// critical IssuingDistributionPoint of its CRLs (RFC 5280 §5.2.5): shorthand for
    /// `crl_urls = ["…"]`; "" writes no IssuingDistributionPoint. Not with `crl_urls`.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The URLs the IssuingDistributionPoint names (one fullName, several URIs); `[]` writes
    /// none. Default (neither this nor `crl_url`): the distribution points learned from the
    /// registered certificates (`crate::crl::scope`).
    #[serde(default)]
    pub crl_urls: Option<Vec<String>>,
    /// The URL of the delta CRLs, written into full CRLs' FreshestCRL (RFC 5280 §5.2.6) when
    /// `delta_schedule` is set. Default `{public_url}/crl/{id}-delta.crl`.
    #[serde(default)]
    pub delta_crl_url: Option<String>,
    /// Who signs OCSP responses: `delegated` (the default: `ocsp_cert` is a delegated OCSP
    /// signer issued by the CA) or `ca` (`ocsp_cert` is the CA certificate itself).
    #[serde(default)]
    pub ocsp_signer: Option<String>,
    /// Pre-sign an answer for every registered certificate in the background (on registration,
    /// on status change, and before half validity), so no request waits for a signature.
    #[serde(default = "defaults::presign")]
    pub presign: bool,
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
    pub fn sign_rate_per_client() -> f64 {
        50.0
    }
    pub fn sign_burst_per_client() -> f64 {
        200.0
    }
    pub fn anonymous_sign_share() -> f64 {
        0.5
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
    pub fn presign_share() -> f64 {
        0.5
    }
    pub fn presign_hashes() -> Vec<String> {
        vec!["sha1".into(), "sha256".into()]
    }
    pub fn presign() -> bool {
        true
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
    pub fn keep_history() -> String {
        "400d".into()
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
            sign_rate_per_client: defaults::sign_rate_per_client(),
            sign_burst_per_client: defaults::sign_burst_per_client(),
            anonymous_sign_share: defaults::anonymous_sign_share(),
            presign_share: defaults::presign_share(),
            presign_hashes: defaults::presign_hashes(),
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

/// `[security]`, validated.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Key and token files readable by group or others are accepted.
    pub allow_loose_key_permissions: bool,
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
    /// IssuingDistributionPoint names (`crl_urls`, `crl_url`; empty: no
    /// IssuingDistributionPoint); `None`: learned from the registered certificates.
    pub idp_urls: Option<Vec<String>>,
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
    /// CA key (file or PKCS#11 URI); `None`: this node builds no CRL for the CA.
    pub key: Option<KeyRef>,
    /// OCSP signer certificate file.
    pub ocsp_cert: PathBuf,
    /// OCSP signer key (file or PKCS#11 URI).
    pub ocsp_key: KeyRef,
    /// Response validity in seconds.
    pub ocsp_validity: i64,
    /// Nonce handling.
    pub nonce: NoncePolicy,
    /// Never-registered serials.
    pub unknown_serial: UnknownSerialPolicy,
    /// CRL publication (not used when `key` is `None`).
    pub crl: CaCrlConfig,
    /// `ocsp_signer = "ca"`: the CA certificate itself signs responses.
    pub ocsp_signer_is_ca: bool,
    /// Pre-sign answers for every registered certificate.
    pub presign: bool,
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
    /// `[security]`.
    pub security: SecurityConfig,
    /// The `[[publish]]` tables.
    pub publish: Vec<crate::publish::SinkConfig>,
    /// The CAs with their certificates and keys loaded and checked.
    pub registry: Arc<CaRegistry>,
    /// `[pkcs11]`, with the PIN read (never shown by `Debug`).
    pub pkcs11: Option<Pkcs11Settings>,
    /// `[replication]`, when this node is one of several.
    pub replication: Option<crate::replicate::config::ReplicationConfig>,
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
            if !["public", "admin", "store", "ocsp", "crl", "security"].contains(&section.as_str())
            {
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
        let millis = |table: &str, key: &str, v: &str| -> Result<std::time::Duration, Error> {
            humantime::parse_duration(v).map_err(|e| {
                invalid(
                    table,
                    key,
                    format!("{v:?} is not a duration like \"5s\", \"500ms\" ({e})"),
                )
            })
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
            max_connections: self.public.max_connections.max(1),
            keep_alive: millis("[public]", "keep_alive", &self.public.keep_alive)?,
            header_timeout: millis("[public]", "header_timeout", &self.public.header_timeout)?,
            body_timeout: millis("[public]", "body_timeout", &self.public.body_timeout)?,
        };
        let security = SecurityConfig {
            allow_loose_key_permissions: self.security.allow_loose_key_permissions,
        };
        // A secret file must be readable by its owner only (see `security::key_files`).
        let secret_file = |table: &str, key: &str, path: &Path| -> Result<(), Error> {
            if security.allow_loose_key_permissions {
                return Ok(());
            }
            crate::security::key_files::check(path).map_err(|e| invalid(table, key, e.to_string()))
        };
        if public.body_timeout.is_zero() || public.header_timeout.is_zero() {
            return Err(invalid(
                "[public]",
                "body_timeout",
                "header_timeout and body_timeout must be above zero: a client would hold its connection for ever".into(),
            ));
        }
        let mut token_sha256 = Vec::new();
        let mut token_labels = Vec::new();
        // A malformed hash is reported by its position, never by its value: a token pasted
        // where its hash belongs must not end up in logs.
        let parse_hash = |h: &str, key: &str, position: &str| -> Result<[u8; 32], Error> {
            let bytes = hex::decode(h.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    invalid(
                        "[admin]",
                        key,
                        format!("{position} is not a hex SHA-256 (64 hex digits); its value is not shown"),
                    )
                })?;
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes);
            Ok(a)
        };
        for (i, h) in self.admin.token_sha256.iter().enumerate() {
            token_sha256.push(parse_hash(h, "token_sha256", &format!("entry #{}", i + 1))?);
            token_labels.push(format!("token_sha256[{i}]"));
        }
        for (i, t) in self.admin.tokens.iter().enumerate() {
            let label = t.label.trim();
            if label.is_empty() || label.chars().any(char::is_control) {
                return Err(invalid(
                    "[admin]",
                    "tokens",
                    format!(
                        "entry #{}: label must be non-empty, without control characters",
                        i + 1
                    ),
                ));
            }
            if token_labels.iter().any(|l| l == label) {
                return Err(invalid(
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
        if let Some(f) = &self.admin.token_file {
            let path = resolve(f);
            secret_file("[admin]", "token_file", &path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
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
            return Err(invalid(
                "[admin]",
                "tokens",
                "the same token hash is configured twice (the audit trail could not tell its holders apart)".into(),
            ));
        }
        let metrics_token_sha256 = self
            .admin
            .metrics_token_sha256
            .as_deref()
            .map(|h| parse_hash(h, "metrics_token_sha256", "the value"))
            .transpose()?;
        let client_allow = crate::security::client::ClientAllow::parse(&self.admin.client_allow)
            .map_err(|(i, e)| {
                invalid("[admin]", "client_allow", format!("entry #{}: {e}", i + 1))
            })?;
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
            token_labels,
            client_allow,
            allow_plaintext: self.admin.allow_plaintext,
            metrics_token_sha256,
        };
        if admin.tls_cert.is_some() != admin.tls_key.is_some() {
            return Err(invalid(
                "[admin]",
                "tls_key",
                "tls_cert and tls_key go together".into(),
            ));
        }
        if let Some(key) = &admin.tls_key {
            secret_file("[admin]", "tls_key", key)?;
        }
        if admin.client_ca.is_some() && admin.tls_cert.is_none() {
            return Err(invalid(
                "[admin]",
                "client_ca",
                "mutual TLS needs tls_cert and tls_key".into(),
            ));
        }
        if admin.client_ca.is_some() && admin.client_allow.is_empty() {
            return Err(invalid(
                "[admin]",
                "client_allow",
                "client_ca is set but client_allow is empty: every certificate the client CA \
                 issued would get in. List the operators' certificates \
                 (\"subject:CN=…,O=…\" or \"spki-sha256:<hex>\")"
                    .into(),
            ));
        }
        if !admin.client_allow.is_empty() && admin.client_ca.is_none() {
            return Err(invalid(
                "[admin]",
                "client_allow",
                "needs client_ca (mutual TLS): without it no client certificate is asked for"
                    .into(),
            ));
        }
        if admin.tls_cert.is_none() && !admin.listen.ip().is_loopback() && !admin.allow_plaintext {
            return Err(invalid(
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
        let crl = CrlConfig {
            backdate: secs("[crl]", "backdate", &self.crl.backdate)?,
            safety_margin: secs("[crl]", "safety_margin", &self.crl.safety_margin)?,
            threads: if self.crl.threads == 0 {
                cpus
            } else {
                self.crl.threads
            },
            max_age_cap: secs("[crl]", "max_age_cap", &self.crl.max_age_cap)?,
            keep_history: secs("[crl]", "keep_history", &self.crl.keep_history)?,
        };
        if crl.keep_history < 86400 {
            return Err(invalid("[crl]", "keep_history", "at least 1d".into()));
        }
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
            sign_rate_per_client: o.sign_rate_per_client,
            sign_burst_per_client: o.sign_burst_per_client,
            anonymous_sign_share: o.anonymous_sign_share,
            presign_share: o.presign_share,
            presign_hashes: {
                let mut algs = Vec::new();
                for name in &o.presign_hashes {
                    let alg = match name.to_ascii_lowercase().as_str() {
                        "sha1" => HashAlg::Sha1,
                        "sha256" => HashAlg::Sha256,
                        "sha384" => HashAlg::Sha384,
                        "sha512" => HashAlg::Sha512,
                        _ => {
                            return Err(invalid(
                                "[ocsp]",
                                "presign_hashes",
                                format!(
                                    "{name:?}: expected \"sha1\", \"sha256\", \"sha384\" or \"sha512\""
                                ),
                            ));
                        }
                    };
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                algs
            },
        };
        if !(o.presign_share > 0.0 && o.presign_share <= 1.0) {
            return Err(invalid(
                "[ocsp]",
                "presign_share",
                format!("{} must be above 0 and at most 1", o.presign_share),
            ));
        }
        let pkcs11 = match &self.pkcs11 {
            None => None,
            Some(p) => {
                let pin = match (std::env::var("VIGIE_PKCS11_PIN").ok(), &p.pin_file) {
                    (Some(pin), _) => pin,
                    (None, Some(f)) => {
                        let path = resolve(f);
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            invalid(
                                "[pkcs11]",
                                "pin_file",
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        text.lines().next().unwrap_or_default().to_owned()
                    }
                    (None, None) => {
                        return Err(invalid(
                            "[pkcs11]",
                            "pin_file",
                            "no user PIN: set pin_file or the VIGIE_PKCS11_PIN environment variable"
                                .into(),
                        ));
                    }
                };
                if p.module.trim().is_empty() {
                    return Err(invalid("[pkcs11]", "module", "must not be empty".into()));
                }
                Some(Pkcs11Settings {
                    module: resolve(&p.module),
                    pin: pin.into(),
                    sessions: if p.sessions == 0 {
                        ocsp.signing_threads
                    } else {
                        p.sessions
                    },
                })
            }
        };
        // The signing pool is sized to the sessions, not to the cores: a signing thread
        // without a session would only wait for one.
        let mut ocsp = ocsp;
        if let Some(p) = &pkcs11 {
            ocsp.signing_threads = p.sessions;
        }
        if !(ocsp.sign_rate_per_client.is_finite() && ocsp.sign_rate_per_client >= 0.0) {
            return Err(invalid(
                "[ocsp]",
                "sign_rate_per_client",
                "must be a number of signatures per second, 0 or more".into(),
            ));
        }
        if !(ocsp.sign_burst_per_client.is_finite() && ocsp.sign_burst_per_client >= 1.0) {
            return Err(invalid(
                "[ocsp]",
                "sign_burst_per_client",
                "must be 1 or more".into(),
            ));
        }
        if !(ocsp.anonymous_sign_share > 0.0 && ocsp.anonymous_sign_share <= 1.0) {
            return Err(invalid(
                "[ocsp]",
                "anonymous_sign_share",
                "must be above 0 and at most 1".into(),
            ));
        }
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
            let idp_urls = match (&c.crl_url, &c.crl_urls) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &table,
                        "crl_urls",
                        "give crl_urls or crl_url (its one-URL shorthand), not both".into(),
                    ));
                }
                (Some(one), None) => Some(
                    url("crl_url", &Some(one.clone()), String::new())?
                        .into_iter()
                        .collect(),
                ),
                (None, Some(list)) => Some(
                    list.iter()
                        .map(|u| {
                            url("crl_urls", &Some(u.clone()), String::new())?.ok_or_else(|| {
                                invalid(&table, "crl_urls", "an empty URL (use [] for none)".into())
                            })
                        })
                        .collect::<Result<Vec<String>, _>>()?,
                ),
                (None, None) => None,
            };
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
            let key = match &c.key {
                Some(k) => {
                    Some(KeyRef::parse(k, dir).map_err(|e| invalid(&table, "key", e.to_string()))?)
                }
                None => None,
            };
            let schedule = match (c.crl_schedule.as_deref().map(str::trim), &key) {
                (Some(""), _) | (None, None) => None,
                (None, Some(_)) => Some(defaults::crl_schedule()),
                (Some(s), Some(_)) => Some(s.to_owned()),
                (Some(_), None) => {
                    return Err(invalid(
                        &table,
                        "key",
                        "the CA key is needed to build CRLs (crl_schedule is set); a responder \
                         that builds no CRL leaves out crl_schedule"
                            .into(),
                    ));
                }
            };
            // No CRL schedule: this node builds no CRL, and needs no CA key.
            let key = schedule.as_ref().and(key);
            let ocsp_key = KeyRef::parse(&c.ocsp_key, dir)
                .map_err(|e| invalid(&table, "ocsp_key", e.to_string()))?;
            if (key.as_ref().is_some_and(KeyRef::is_pkcs11) || ocsp_key.is_pkcs11())
                && pkcs11.is_none()
            {
                return Err(invalid(
                    &table,
                    if ocsp_key.is_pkcs11() {
                        "ocsp_key"
                    } else {
                        "key"
                    },
                    "a pkcs11: URI needs a [pkcs11] table (module, pin_file)".into(),
                ));
            }
            let crl_cfg = CaCrlConfig {
                schedule: schedule.clone().unwrap_or_default(),
                delta_schedule: Some(c.delta_schedule.trim().to_owned()).filter(|s| !s.is_empty()),
                validity,
                delta_validity,
                keep_expired,
                publish_delta_on_revoke: c.publish_delta_on_revoke,
                delta_debounce: std::time::Duration::from_secs(
                    secs(&table, "delta_debounce", &c.delta_debounce)?.max(0) as u64,
                ),
                idp_urls,
                delta_url,
            };
            for (key, expr) in [
                ("crl_schedule", schedule.as_ref()),
                ("delta_schedule", crl_cfg.delta_schedule.as_ref()),
            ] {
                if let Some(expr) = expr {
                    check_cron(expr).map_err(|m| invalid(&table, key, m))?;
                }
            }
            let ocsp_signer_is_ca = match c.ocsp_signer.as_deref() {
                None | Some("delegated") => false,
                Some("ca") => true,
                Some(other) => {
                    return Err(invalid(
                        &table,
                        "ocsp_signer",
                        format!("{other:?}: expected \"delegated\" or \"ca\""),
                    ));
                }
            };
            for (key, path) in [("key", c.key.as_deref()), ("ocsp_key", Some(&*c.ocsp_key))] {
                // A pkcs11: URI names no file.
                let Some(path) = path.filter(|p| !p.starts_with("pkcs11:")) else {
                    continue;
                };
                let path = resolve(path);
                if path.exists() {
                    secret_file(&table, key, &path)?;
                }
            }
            cas.push(CaConfig {
                id,
                cert: resolve(&c.cert),
                key,
                ocsp_cert: resolve(&c.ocsp_cert),
                ocsp_key,
                ocsp_validity,
                nonce,
                unknown_serial,
                crl: crl_cfg,
                ocsp_signer_is_ca,
                presign: c.presign,
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
        let registry = CaRegistry::load(&cas, pkcs11.as_ref()).map_err(|e| {
            let (index, key, message) = e.parts();
            invalid(
                &format!("[[ca]] #{} (id {:?})", index + 1, cas[index].id.as_str()),
                key,
                message,
            )
        })?;
        let replication = match &self.replication {
            Some(r) => Some(
                r.validate(dir)
                    .map_err(|(key, message)| invalid("[replication]", key, message))?,
            ),
            None => None,
        };
        Ok(Config {
            replication,
            source: PathBuf::from(shown),
            public,
            admin,
            store,
            ocsp,
            crl,
            cas,
            security,
            publish,
            registry: Arc::new(registry),
            pkcs11,
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
            .take_while(|l| !l.trim().is_empty())
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
