//! vigie: certificate revocation for multi-CA PKIs — an OCSP responder (RFC 6960, RFC 9919),
//! CRL publication, and an ingest API for the CA, over one RocksDB status store.
//!
//! Map of the crate:
//! - [`model`]: serials, CA ids, reasons, records and events — the domain's words.
//! - [`config`]: the TOML configuration, validated into what the service runs with.
//! - [`clock`]: the injected clock.
//! - [`pki`]: the served CAs (certificates, keys, CertID hashes) and the demo PKI generator.
//! - [`signer`]: the only place that signs.
//! - [`security`]: client-certificate allowlist, names compared as names, key-file modes.
//! - [`store`]: the RocksDB status store, atomic and durable transactions.
//! - [`ingest`]: the rules for issuance, revocation and release events; parsing what the CA
//!   sends (JSON, PEM, DER), finding which CA signed a certificate, `index.txt` import.
//! - [`ocsp`]: request parsing, response building, the response cache and signing pool.
//! - [`crl`]: full and delta CRLs: numbering, parallel encoding, schedule, publication.
//! - [`publish`]: CRL publication sinks (LDAP directory, file directory) fed by a durable queue.
//! - [`http`]: actix-web handlers for the public and admin listeners (OCSP, CRLs; health,
//!   metrics, and the authenticated ingest API described by `openapi.yaml`).
//! - [`fuzzing`]: one entry point per parser of untrusted bytes, for `fuzz/` and its corpus test.
//! - [`service`]: starting and stopping the whole, its background work through [`tasks`];
//!   [`demo`]: `vigie demo`.
//! - [`metrics`]: metric names and the Prometheus recorder; [`limits`]: the open-files limit.
//! - [`status`]: the operator's overview behind `/status` (CRL freshness, signers, rates).
//! - [`probe`]: `vigie probe`, the service checked from outside as a relying party sees it.
//! - [`replicate`]: one writer and responder replicas over NATS JetStream.
//! - [`reload`]: live reload of the configuration (`SIGHUP`, `POST /v1/admin/reload`).

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod crl;
pub mod demo;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod ocsp;
pub mod pki;
pub mod probe;
pub mod publish;
pub mod reload;
pub mod replicate;
pub mod security;
pub mod service;
pub mod signer;
pub mod status;
pub mod store;
pub mod tasks;

pub use error::Error;
