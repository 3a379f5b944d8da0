//! Configuration, in two stages: [`RawConfig`] is what the TOML file says (serde, with defaults);
//! [`Config`] is what the service runs with, after [`RawConfig::validate`] resolved paths against
//! the file's directory and parsed durations. The CAs' certificates and keys are loaded by the
//! service, from [`Config::cas`] ([`crate::pki::CaRegistry`]): a CA that does not load is left
//! out there, and a reload loads them again.
//!
//! Validation is a pipeline: one file per section, each with its raw table and a function that
//! checks it and returns its runtime part (`public`, `admin`, `security`, `store`, `ocsp`, `crl`,
//! `pkcs11`, `ca`; `[[publish]]` and `[replication]` live with their modules). This file reads the
//! file, applies the environment overrides and runs the sections in order.
//!
//! Environment variables `VIGIE_<SECTION>_<KEY>` (e.g. `VIGIE_PUBLIC_LISTEN`,
//! `VIGIE_STORE_PATH`, `VIGIE_OCSP_MAX_AGE_CAP`) override keys of the single-table sections.
//! The sample `config/vigie.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::signer::Pkcs11Settings;

pub mod admin;
pub mod ca;
pub mod crl;
pub mod ingest;
pub mod ocsp;
pub mod pkcs11;
pub mod public;
pub mod security;
pub mod store;

pub use self::admin::{AdminConfig, RawAdmin, RawToken};
pub use self::ca::{CaConfig, CaCrlConfig, NextOcspConfig, RawCa};
pub use self::crl::{CrlConfig, RawCrl, check_cron};
pub use self::ingest::{IngestConfig, RawIngest};
pub use self::ocsp::{OcspConfig, RawOcsp};
pub use self::pkcs11::RawPkcs11;
pub use self::public::{PublicConfig, RawPublic};
pub use self::security::{RawSecurity, SecurityConfig};
pub use self::store::{RawStore, StoreConfig};

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
    /// The rules of the ingest API.
    #[serde(default)]
    pub ingest: RawIngest,
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
    /// `[ingest]`.
    pub ingest: IngestConfig,
    /// The `[[ca]]` tables.
    pub cas: Vec<CaConfig>,
    /// `[security]`.
    pub security: SecurityConfig,
    /// The `[[publish]]` tables.
    pub publish: Vec<crate::publish::SinkConfig>,
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

/// The sections `VIGIE_<SECTION>_<KEY>` variables may override: the single tables.
const OVERRIDABLE: [&str; 7] = [
    "public", "admin", "store", "ocsp", "crl", "ingest", "security",
];

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
        apply_env(&mut doc, env);
        // The [[ca]] tables one by one, so that an error names its table.
        let cas = match doc.remove("ca") {
            Some(toml::Value::Array(cas)) => cas,
            Some(other) => {
                doc.insert("ca".into(), other);
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut raw: RawConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| syntax(e.to_string()))?;
        raw.cas = cas
            .into_iter()
            .enumerate()
            .map(|(i, value)| ca::parse(i, value, shown))
            .collect::<Result<_, _>>()?;
        Ok(raw)
    }

    /// Checks every section in turn; `dir` is where relative paths start. Opens no key: the
    /// service loads the CAs ([`crate::pki::CaRegistry::load`]).
    pub fn validate(self, shown: &str, dir: &Path) -> Result<Config, Error> {
        let security = security::validate(&self.security);
        let ctx = Ctx {
            shown,
            dir,
            loose_key_permissions: security.allow_loose_key_permissions,
        };
        let public = public::validate(&self.public, &ctx)?;
        let admin = admin::validate(&self.admin, &ctx, public.listen)?;
        let crl = crl::validate(&self.crl, &ctx)?;
        let ingest = ingest::validate(&self.ingest, &ctx)?;
        let store = store::validate(&self.store, &ctx);
        let mut ocsp = ocsp::validate(&self.ocsp, &ctx)?;
        let pkcs11 = self
            .pkcs11
            .as_ref()
            .map(|p| pkcs11::validate(p, &ctx, ocsp.signing_threads))
            .transpose()?;
        pkcs11::size_signing_pool(&mut ocsp, pkcs11.as_ref());
        let cas = ca::validate_all(
            &self.cas,
            &ctx,
            &public.public_url,
            crl.backdate,
            pkcs11.as_ref(),
        )?;
        let publish = crate::publish::config::validate(&self.publish, |p| ctx.resolve(p)).map_err(
            |(i, key, message)| ctx.invalid(&format!("[[publish]] #{}", i + 1), key, message),
        )?;
        let replication = match &self.replication {
            Some(r) => Some(
                r.validate(dir)
                    .map_err(|(key, message)| ctx.invalid("[replication]", key, message))?,
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
            ingest,
            cas,
            security,
            publish,
            pkcs11,
        })
    }
}

/// Applies `VIGIE_<SECTION>_<KEY>` variables of `env` to the single-table sections of `doc`.
/// A value is read as TOML (`7`, `true`, `["a"]`) and, failing that, as a string.
fn apply_env(doc: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("VIGIE_") else {
            continue;
        };
        let Some((section, key)) = rest.split_once('_') else {
            continue;
        };
        let section = section.to_ascii_lowercase();
        if !OVERRIDABLE.contains(&section.as_str()) {
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
}

/// What every section's validation needs: where the file is (for messages and relative paths)
/// and how strict secret files are checked.
pub struct Ctx<'a> {
    /// The file, as messages show it.
    shown: &'a str,
    /// Where relative paths start.
    dir: &'a Path,
    /// `[security] allow_loose_key_permissions`.
    loose_key_permissions: bool,
}

impl Ctx<'_> {
    /// An [`Error::Invalid`] for `key` of `table`.
    fn invalid(&self, table: &str, key: &str, message: String) -> Error {
        Error::Invalid {
            path: self.shown.to_owned(),
            table: table.to_owned(),
            key: key.to_owned(),
            message,
        }
    }

    /// The `listen` key of `table`, an address:port.
    fn addr(&self, table: &str, v: &str) -> Result<SocketAddr, Error> {
        v.parse().map_err(|e| {
            self.invalid(
                table,
                "listen",
                format!("{v:?} is not an address:port ({e})"),
            )
        })
    }

    /// A duration in whole seconds.
    fn secs(&self, table: &str, key: &str, v: &str) -> Result<i64, Error> {
        let d = humantime::parse_duration(v).map_err(|e| {
            self.invalid(
                table,
                key,
                format!("{v:?} is not a duration like \"1d\", \"6h\", \"30s\" ({e})"),
            )
        })?;
        i64::try_from(d.as_secs())
            .map_err(|_| self.invalid(table, key, format!("{v:?} is too long")))
    }

    /// A duration with sub-second precision.
    fn millis(&self, table: &str, key: &str, v: &str) -> Result<std::time::Duration, Error> {
        humantime::parse_duration(v).map_err(|e| {
            self.invalid(
                table,
                key,
                format!("{v:?} is not a duration like \"5s\", \"500ms\" ({e})"),
            )
        })
    }

    /// `p` made absolute against the configuration file's directory.
    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// A secret file must be readable by its owner only (see `security::key_files`).
    fn secret_file(&self, table: &str, key: &str, path: &Path) -> Result<(), Error> {
        if self.loose_key_permissions {
            return Ok(());
        }
        crate::security::key_files::check(path).map_err(|e| self.invalid(table, key, e.to_string()))
    }
}

/// The CPUs, for the "0 = one per CPU" settings.
fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses() {
        let text = include_str!("../../config/vigie.toml");
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
}
