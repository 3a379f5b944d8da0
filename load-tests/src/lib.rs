//! vigie-load: a load generator for vigie that speaks real OCSP, CRL and ingest traffic and
//! checks every answer.
//!
//! Map of the crate:
//! - [`population`]: the certificates aimed at and the status each should have (file format).
//! - [`issuers`]: the target's CAs (CertID hashes, policies, verification certificates).
//! - [`select`]: which certificate each request asks about (status mix, Zipf / hot set).
//! - [`scenario`]: scenario files and their validation into a plan.
//! - [`http`]: the minimal keep-alive HTTP/1.1 client.
//! - [`check`]: checking OCSP responses and CRLs (and verifying signatures on a sample).
//! - [`engine`]: closed- and open-loop load, request kinds, revocation-to-visibility probes.
//! - [`stats`]: histograms, per-second timeline, summaries.
//! - [`runner`]: one run end to end, and where its results are written.
//! - [`report`]: the result file, the terminal table and the HTML report.
//! - [`seed`]: issuing and registering a population through the ingest API.
//! - [`compare`]: vigie against nginx serving the same bytes.
//! - [`machine`]: machine description and process CPU / memory.
//! - [`server_metrics`]: the server's own metrics (pre-signing backlog, signatures) during a run.

#![forbid(unsafe_code)]

pub mod check;
pub mod compare;
pub mod engine;
pub mod http;
pub mod issuers;
pub mod machine;
pub mod population;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod seed;
pub mod select;
pub mod server_metrics;
pub mod stats;
