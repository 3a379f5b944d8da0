//! Prometheus metrics through the `metrics` crate: names, descriptions and histogram buckets in
//! one place, and the recorder whose text `/metrics` serves.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// OCSP answers, by `status` (good, revoked, unknown, mixed, or the error status) and `method`.
pub const OCSP_RESPONSES: &str = "vigie_ocsp_responses_total";
/// OCSP response cache lookups, by `result` (hit, miss, store).
pub const OCSP_CACHE: &str = "vigie_ocsp_cache_total";
/// Time to answer one OCSP request (decoding, cache or signing; not the network), seconds, by
/// `status` and `method`.
pub const OCSP_REQUEST_SECONDS: &str = "vigie_ocsp_request_seconds";
/// Time to sign one OCSP response, seconds.
pub const OCSP_SIGNING_SECONDS: &str = "vigie_ocsp_signing_seconds";
/// Responses re-signed by the refresher.
pub const OCSP_REFRESHED: &str = "vigie_ocsp_refreshed_total";
/// Signatures only an anonymous request asked for (nonce, unregistered serial, several
/// CertIDs) that were refused, by `limit` (client, share) and `outcome` (without_nonce,
/// try_later).
pub const OCSP_RATIONED: &str = "vigie_ocsp_rationed_total";
/// Answers (certificate × pre-signed hash algorithm) that pre-signing has still to sign in its
/// current pass, by `ca`.
pub const OCSP_PRESIGN_PENDING: &str = "vigie_ocsp_presign_pending";
/// Answers signed by pre-signing, by `ca` and `lane` (urgent: after a status change;
/// background: registration, first pass, before half validity).
pub const OCSP_PRESIGNED: &str = "vigie_ocsp_presigned_total";
/// HTTP requests by `listener` and `endpoint`.
pub const HTTP_REQUESTS: &str = "vigie_http_requests_total";
/// Time to build, sign and store one CRL, seconds, by `ca` and `kind` (full, delta).
pub const CRL_BUILD_SECONDS: &str = "vigie_crl_build_seconds";
/// Entries of the latest CRL, by `ca` and `kind`.
pub const CRL_ENTRIES: &str = "vigie_crl_entries";
/// Size of the latest CRL's DER, octets, by `ca` and `kind`.
pub const CRL_BYTES: &str = "vigie_crl_bytes";
/// CRLNumber of the latest CRL, by `ca` and `kind`.
pub const CRL_NUMBER: &str = "vigie_crl_number";
/// When the latest CRL was published (Unix time), by `ca` and `kind`.
pub const CRL_LAST_PUBLISH: &str = "vigie_crl_last_publish_timestamp_seconds";
/// nextUpdate of the latest CRL (Unix time), by `ca` and `kind`.
pub const CRL_NEXT_UPDATE: &str = "vigie_crl_next_update_timestamp_seconds";
/// CRL builds that failed, by `ca` and `kind`.
pub const CRL_BUILD_FAILURES: &str = "vigie_crl_build_failures_total";
/// Counter: errors of the background refresh passes, by CA and task (`ocsp`: one stored answer
/// the OCSP refresher could not re-sign or drop; `crl`: one CA the CRL watchdog could not
/// bring up to date). The pass goes on with the other entries and CAs.
pub const REFRESH_ERRORS: &str = "vigie_refresh_errors_total";
/// The safety margin of a CA's CRLs, seconds, by `ca` and `kind`: the publisher rebuilds a CRL
/// whose nextUpdate comes nearer than this (`VigieCrlStale` fires when one stays within it).
pub const CRL_SAFETY_MARGIN: &str = "vigie_crl_safety_margin_seconds";
/// notAfter of a CA's delegated OCSP signer certificate (Unix time), by `ca`.
pub const OCSP_SIGNER_NOT_AFTER: &str = "vigie_ocsp_signer_not_after_timestamp_seconds";
/// Signing jobs waiting in the OCSP signing pool's queue.
pub const OCSP_SIGNING_QUEUE: &str = "vigie_ocsp_signing_queue";
/// Ingested events by `kind` (issued, revoked, released) and `result` (applied, unchanged).
pub const INGEST_EVENTS: &str = "vigie_ingest_events_total";
/// Time from the start of an ingest transaction to its durable commit, seconds.
pub const INGEST_COMMIT_SECONDS: &str = "vigie_ingest_commit_seconds";
/// WAL syncs made by the store's group commit: compare with the events ingested to see how many
/// transactions each sync covers.
pub const STORE_WAL_SYNCS: &str = "vigie_store_wal_syncs_total";
/// Ingest requests refused with 401, by `cause`.
pub const INGEST_AUTH_FAILURES: &str = "vigie_ingest_auth_failures_total";
/// Registered certificates outside the scope of their CA's CRLs (configured `crl_urls` that none
/// of their distribution points names), by `ca`.
pub const CRL_SCOPE_MISMATCH: &str = "vigie_crl_scope_mismatch_total";

/// CRLs waiting in a publication sink's queue, by `sink`.
pub const PUBLISH_QUEUE_DEPTH: &str = "vigie_publish_queue_depth";
/// When a publication sink last confirmed a CRL (Unix time), by `sink` and `ca`.
pub const PUBLISH_LAST_SUCCESS: &str = "vigie_publish_last_success_timestamp_seconds";
/// Failed publication attempts, by `sink` and `ca`.
pub const PUBLISH_FAILURES: &str = "vigie_publish_failures_total";
/// Time from a CRL becoming current to a sink confirming it, seconds, by `sink` and `ca`.
pub const PUBLISH_LATENCY_SECONDS: &str = "vigie_publish_latency_seconds";
/// Replication: events (stream messages) the writer has published that this replica has not
/// applied yet, as of the last heartbeat.
pub const REPLICATION_LAG_EVENTS: &str = "vigie_replication_lag_events";
/// Replication: seconds since this node last had contact with the stream (a heartbeat or a
/// message on a replica, an acknowledged publication on the writer).
pub const REPLICATION_LAST_CONTACT_SECONDS: &str = "vigie_replication_last_contact_seconds";
/// Replication: stream sequence of the last message applied (replica) or acknowledged (writer).
pub const REPLICATION_APPLIED_SEQUENCE: &str = "vigie_replication_applied_sequence";
/// Configuration reloads applied (`SIGHUP`, `POST /v1/admin/reload`).
pub const CONFIG_RELOADS: &str = "vigie_config_reloads_total";
/// Configuration reloads refused (the running configuration was kept).
pub const CONFIG_RELOAD_FAILURES: &str = "vigie_config_reload_failures_total";

/// Installs the global recorder (once per process) and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .expect("the bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests that build several services in
            // one process); the handle still renders what this recorder would have seen.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        CRL_SCOPE_MISMATCH,
        "Registered certificates that the CA's CRL scope (IssuingDistributionPoint) does not cover"
    );
    metrics::describe_counter!(OCSP_RESPONSES, "OCSP answers by status and method");
    metrics::describe_counter!(
        OCSP_CACHE,
        "OCSP response cache lookups by result (hit, miss, store)"
    );
    metrics::describe_histogram!(
        OCSP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer one OCSP request (without the network), by status and method"
    );
    metrics::describe_histogram!(
        OCSP_SIGNING_SECONDS,
        metrics::Unit::Seconds,
        "Time to sign one OCSP response"
    );
    metrics::describe_counter!(
        OCSP_REFRESHED,
        "Stored OCSP responses re-signed by the refresher"
    );
    metrics::describe_counter!(
        OCSP_RATIONED,
        "Rationed OCSP signatures refused, by limit (client, share) and outcome (without_nonce, try_later)"
    );
    metrics::describe_gauge!(
        OCSP_PRESIGN_PENDING,
        "Answers (certificate x pre-signed hash algorithm) pre-signing has still to sign in its current pass, by CA"
    );
    metrics::describe_counter!(
        OCSP_PRESIGNED,
        "Answers signed by pre-signing, by CA and lane (urgent after a status change, background otherwise)"
    );
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by listener and endpoint");
    metrics::describe_histogram!(
        CRL_BUILD_SECONDS,
        metrics::Unit::Seconds,
        "Time to build, sign and store one CRL, by CA and kind"
    );
    metrics::describe_gauge!(CRL_ENTRIES, "Entries of the latest CRL, by CA and kind");
    metrics::describe_gauge!(
        CRL_BYTES,
        metrics::Unit::Bytes,
        "Size of the latest CRL, by CA and kind"
    );
    metrics::describe_gauge!(CRL_NUMBER, "CRLNumber of the latest CRL, by CA and kind");
    metrics::describe_gauge!(
        CRL_LAST_PUBLISH,
        metrics::Unit::Seconds,
        "When the latest CRL was published (Unix time), by CA and kind"
    );
    metrics::describe_gauge!(
        CRL_NEXT_UPDATE,
        metrics::Unit::Seconds,
        "nextUpdate of the latest CRL (Unix time), by CA and kind"
    );
    metrics::describe_counter!(CRL_BUILD_FAILURES, "CRL builds that failed, by CA and kind");
    metrics::describe_counter!(
        REFRESH_ERRORS,
        "Errors of the background refresh passes (one entry or CA; the pass goes on), by CA and task"
    );
    metrics::describe_gauge!(
        CRL_SAFETY_MARGIN,
        metrics::Unit::Seconds,
        "Safety margin before nextUpdate within which a CRL is rebuilt, by CA and kind"
    );
    metrics::describe_gauge!(
        OCSP_SIGNER_NOT_AFTER,
        metrics::Unit::Seconds,
        "notAfter of the CA's delegated OCSP signer certificate (Unix time), by CA"
    );
    metrics::describe_gauge!(
        OCSP_SIGNING_QUEUE,
        "Signing jobs waiting in the OCSP signing pool's queue"
    );
    metrics::describe_counter!(
        INGEST_EVENTS,
        "Ingested events by kind (issued, revoked, released) and result (applied, unchanged)"
    );
    metrics::describe_histogram!(
        INGEST_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time from the start of an ingest transaction to its durable commit"
    );
    metrics::describe_counter!(
        STORE_WAL_SYNCS,
        "WAL syncs made by the store's group commit (one covers every transaction written before it)"
    );
    metrics::describe_gauge!(
        PUBLISH_QUEUE_DEPTH,
        "CRLs waiting in a publication sink's queue, by sink"
    );
    metrics::describe_gauge!(
        PUBLISH_LAST_SUCCESS,
        metrics::Unit::Seconds,
        "When a publication sink last confirmed a CRL (Unix time), by sink and CA"
    );
    metrics::describe_counter!(
        PUBLISH_FAILURES,
        "Failed CRL publication attempts, by sink and CA"
    );
    metrics::describe_histogram!(
        PUBLISH_LATENCY_SECONDS,
        metrics::Unit::Seconds,
        "Time from a CRL becoming current to a sink confirming it, by sink and CA"
    );
    metrics::describe_counter!(
        INGEST_AUTH_FAILURES,
        "Ingest requests refused with 401, by cause"
    );
    metrics::describe_gauge!(
        REPLICATION_LAG_EVENTS,
        "Stream messages published by the writer and not yet applied here"
    );
    metrics::describe_gauge!(
        REPLICATION_LAST_CONTACT_SECONDS,
        metrics::Unit::Seconds,
        "Seconds since the last contact with the replication stream"
    );
    metrics::describe_counter!(CONFIG_RELOADS, "Configuration reloads applied");
    metrics::describe_counter!(
        CONFIG_RELOAD_FAILURES,
        "Configuration reloads refused; the running configuration was kept"
    );
    metrics::describe_gauge!(
        REPLICATION_APPLIED_SEQUENCE,
        "Stream sequence of the last message applied (replica) or acknowledged (writer)"
    );
}
