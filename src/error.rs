//! The crate's top-level error: what can stop a command. Each domain module has its own error
//! enum; they convert into this one.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// A CRL could not be built or published.
    #[error(transparent)]
    Crl(#[from] crate::crl::Error),
    /// The publication sinks could not be set up.
    #[error(transparent)]
    Publish(#[from] crate::publish::Error),
    /// An ingest rule refused an event.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::Error),
    /// Replication could not start (NATS, the stream, fencing).
    #[error("replication: {0}")]
    Replication(#[from] crate::replicate::Error),
    /// The demo PKI could not be made.
    #[error(transparent)]
    Demo(#[from] crate::pki::demo::DemoError),
    /// A listener could not bind, or another I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
