//! What guards the admin door and the secrets on disk, apart from HTTP:
//!
//! - [`dn`]: distinguished names compared as names (RFC 4514 strings and certificate subjects
//!   brought to one canonical form), and subjects written as escaped RFC 4514 strings for logs;
//! - [`client`]: the `[admin] client_allow` allowlist of client certificates (by subject or by
//!   SHA-256 of the SubjectPublicKeyInfo) and the revocation check of a client certificate
//!   issued by one of vigie's own CAs;
//! - [`key_files`]: refusing private keys and token files that the group or others can read.
//!
//! `crate::config` calls these at start-up; `crate::http::auth` per request.

pub mod client;
pub mod dn;
pub mod key_files;

/// Why a security setting or check failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An RFC 4514 string that does not parse.
    #[error("{0:?} is not an RFC 4514 distinguished name: {1}")]
    BadName(String, String),
    /// A certificate subject that cannot be read.
    #[error("certificate subject does not parse: {0}")]
    BadSubject(String),
    /// An allowlist entry of an unknown form.
    #[error("{0}")]
    BadRule(String),
    /// A secret file readable by others than its owner.
    #[error(
        "{path} is readable by {who} (mode {mode:04o}): `chmod 600` it, or set \
         [security] allow_loose_key_permissions = true if the platform cannot (secrets mounted 0644)"
    )]
    LooseMode {
        /// The file.
        path: String,
        /// "group", "others" or "group and others".
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret file whose mode cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed while checking a client certificate's status.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}
