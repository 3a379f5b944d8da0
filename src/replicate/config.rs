//! The `[replication]` table: what the TOML says ([`RawReplication`]) and what the service runs
//! with ([`ReplicationConfig`]), checked by [`RawReplication::validate`]. Without the table vigie
//! runs alone, as a single node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `[replication]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    /// `writer` (ingest, CRLs, publishes to the stream) or `replica` (consumes, serves).
    pub role: String,
    /// This node's name: the durable consumer of a replica, the claim of a writer. Unique per
    /// node; letters, digits, `-` and `_`.
    pub node_id: String,
    /// NATS server URLs (any node of the cluster; the client learns the others).
    #[serde(default = "default_nats")]
    pub nats: Vec<String>,
    /// JetStream stream name.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Copies of the stream the JetStream cluster keeps (created with this; 1, 3 or 5).
    #[serde(default = "default_stream_replicas")]
    pub stream_replicas: usize,
    /// When an ingest call is answered: `stream` (once the events are stored on a quorum of
    /// the stream) or `local` (once they are durable in the local store).
    #[serde(default = "default_ack")]
    pub ack: String,
    /// A replica without contact with the stream for longer than this answers tryLater.
    #[serde(default = "default_max_staleness")]
    pub max_staleness: String,
    /// The writer refuses a stream whose retention (max_age) is shorter than this.
    #[serde(default = "default_min_retention")]
    pub min_retention: String,
    /// NATS credentials file (JWT and NKey seed), if the servers require one.
    pub creds_file: Option<String>,
    /// File holding a NATS token, if the servers require one.
    pub token_file: Option<String>,
    /// PEM CA certificates to verify the NATS servers' TLS certificates (`tls://` URLs).
    pub tls_ca: Option<String>,
}

fn default_nats() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".to_owned()]
}
fn default_stream() -> String {
    "VIGIE".to_owned()
}
fn default_stream_replicas() -> usize {
    3
}
fn default_ack() -> String {
    "stream".to_owned()
}
fn default_max_staleness() -> String {
    "10s".to_owned()
}
fn default_min_retention() -> String {
    "7d".to_owned()
}

/// This node's part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Ingest, CRL building, publication to the stream.
    Writer,
    /// Applies the stream, serves OCSP and CRLs, refuses writes.
    Replica,
}

impl Role {
    /// `writer` or `replica`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Replica => "replica",
        }
    }
}

/// When the writer answers an ingest call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// Once the events are stored on a quorum of the stream.
    Stream,
    /// Once they are durable locally (published as soon as possible afterwards).
    Local,
}

/// How to reach NATS.
#[derive(Clone, Debug)]
pub struct NatsAuth {
    /// Credentials file.
    pub creds_file: Option<PathBuf>,
    /// Token read from `token_file`.
    pub token: Option<String>,
    /// CA certificates for TLS.
    pub tls_ca: Option<PathBuf>,
}

/// The validated `[replication]` table.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// This node's part.
    pub role: Role,
    /// This node's name.
    pub node_id: String,
    /// NATS URLs.
    pub nats: Vec<String>,
    /// Stream name.
    pub stream: String,
    /// Copies of the stream.
    pub stream_replicas: usize,
    /// When ingest answers.
    pub ack: AckMode,
    /// Contact older than this makes a replica stale.
    pub max_staleness: Duration,
    /// Shortest stream retention the writer accepts.
    pub min_retention: Duration,
    /// Credentials.
    pub auth: NatsAuth,
}

/// A problem with a key of `[replication]`: (key, message).
pub type Invalid = (&'static str, String);

fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RawReplication {
    /// Checks every key; `dir` is where relative paths start.
    pub fn validate(&self, dir: &Path) -> Result<ReplicationConfig, Invalid> {
        let role = match self.role.as_str() {
            "writer" => Role::Writer,
            "replica" => Role::Replica,
            other => {
                return Err((
                    "role",
                    format!("{other:?} is neither \"writer\" nor \"replica\""),
                ));
            }
        };
        if !token_ok(&self.node_id) {
            return Err((
                "node_id",
                format!(
                    "{:?} must be 1-64 letters, digits, '-' or '_'",
                    self.node_id
                ),
            ));
        }
        if !token_ok(&self.stream) {
            return Err((
                "stream",
                format!("{:?} must be 1-64 letters, digits, '-' or '_'", self.stream),
            ));
        }
        if self.nats.is_empty() {
            return Err(("nats", "needs at least one URL".into()));
        }
        for u in &self.nats {
            if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                return Err(("nats", format!("{u:?} must start with nats:// or tls://")));
            }
        }
        if !matches!(self.stream_replicas, 1 | 3 | 5) {
            return Err(("stream_replicas", "must be 1, 3 or 5".into()));
        }
        let ack = match self.ack.as_str() {
            "stream" => AckMode::Stream,
            "local" => AckMode::Local,
            other => {
                return Err((
                    "ack",
                    format!("{other:?} is neither \"stream\" nor \"local\""),
                ));
            }
        };
        let duration = |key: &'static str, v: &str| {
            humantime::parse_duration(v)
                .map_err(|e| (key, format!("{v:?} is not a duration like \"10s\" ({e})")))
        };
        let max_staleness = duration("max_staleness", &self.max_staleness)?;
        if max_staleness < Duration::from_secs(2) {
            return Err((
                "max_staleness",
                "must be at least 2s (the writer's heartbeat is every second)".into(),
            ));
        }
        let min_retention = duration("min_retention", &self.min_retention)?;
        let resolve = |key: &'static str, p: &Option<String>| -> Result<Option<PathBuf>, Invalid> {
            match p {
                None => Ok(None),
                Some(p) => {
                    let p = Path::new(p);
                    let path = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        dir.join(p)
                    };
                    if !path.exists() {
                        return Err((key, format!("{} does not exist", path.display())));
                    }
                    Ok(Some(path))
                }
            }
        };
        let creds_file = resolve("creds_file", &self.creds_file)?;
        let token = match resolve("token_file", &self.token_file)? {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| ("token_file", format!("cannot read {}: {e}", path.display())))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        if creds_file.is_some() && token.is_some() {
            return Err((
                "token_file",
                "use creds_file or token_file, not both".into(),
            ));
        }
        Ok(ReplicationConfig {
            role,
            node_id: self.node_id.clone(),
            nats: self.nats.clone(),
            stream: self.stream.clone(),
            stream_replicas: self.stream_replicas,
            ack,
            max_staleness,
            min_retention,
            auth: NatsAuth {
                creds_file,
                token,
                tls_ca: resolve("tls_ca", &self.tls_ca)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[replication]` block of the sample configuration, commented out there, is valid.
    #[test]
    fn sample_block_validates() {
        let text = include_str!("../../config/vigie.toml");
        let start = text
            .find("# [replication]")
            .expect("the sample documents [replication]");
        let mut block = String::new();
        for line in text[start..].lines() {
            if !line.starts_with('#') {
                break;
            }
            // "# key = value" lines are the keys; "## …" lines document them.
            if let Some(rest) = line.strip_prefix("# ") {
                block.push_str(rest);
                block.push('\n');
            }
        }
        #[derive(Deserialize)]
        struct Doc {
            replication: RawReplication,
        }
        let doc: Doc = toml::from_str(&block).expect("the sample block parses");
        let mut raw = doc.replication;
        // The sample's credential files do not exist here.
        raw.creds_file = None;
        raw.token_file = None;
        raw.tls_ca = None;
        let c = raw
            .validate(Path::new("/"))
            .expect("the sample block validates");
        assert_eq!(c.role, Role::Replica);
        assert_eq!(c.ack, AckMode::Stream);
        assert_eq!(c.max_staleness, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_their_key() {
        let raw: RawReplication =
            toml::from_str("role = \"leader\"\nnode_id = \"a\"\n").expect("parses");
        assert_eq!(raw.validate(Path::new("/")).expect_err("role").0, "role");
        let raw: RawReplication =
            toml::from_str("role = \"replica\"\nnode_id = \"a.b\"\n").expect("parses");
        assert_eq!(raw.validate(Path::new("/")).expect_err("id").0, "node_id");
        let raw: RawReplication =
            toml::from_str("role = \"writer\"\nnode_id = \"a\"\nmax_staleness = \"1s\"\n")
                .expect("parses");
        assert_eq!(
            raw.validate(Path::new("/")).expect_err("short").0,
            "max_staleness"
        );
    }
}
