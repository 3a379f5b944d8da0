//! Running the service: opens the store, loads the CAs ([`crate::pki::CaRegistry`]: a CA that
//! does not load is left out and reported, the others serve), builds the responder and the CRL
//! publisher, subscribes
//! HTTP serving and the publication sinks to the CRL publication event, starts the background
//! tasks ([`crate::tasks`]: the CRL schedule, the OCSP refresher, one publication worker per
//! sink) and both listeners, and shuts all of it down in order on SIGTERM/SIGINT (stop
//! accepting, finish in-flight requests, stop the background tasks — letting a build or a
//! publication in progress finish — then flush and close the store).
//!
//! `SIGHUP` reloads the configuration ([`crate::reload`]), as `POST /v1/admin/reload` does.
//!
//! The admin listener speaks HTTPS when `[admin] tls_cert`/`tls_key` are set (openssl), and
//! requires a client certificate that verifies up to `[admin] client_ca` when that is set: the
//! handshake fails for anyone else ([`admin_tls`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::verify::X509VerifyFlags;

use crate::clock::SharedClock;
use crate::config::AdminConfig;
use crate::config::Config;
use crate::crl::Publisher;
use crate::crl::schedule::Schedule;
use crate::error::Error;
use crate::http::{self, AppState, auth::AdminAuth};
use crate::ocsp::Responder;
use crate::publish::Publication;
use crate::store::{Store, StoreOptions};
use crate::tasks::Tasks;

/// Opens the store for the configured CAs.
pub fn open_store(config: &Config) -> Result<Store, Error> {
    let ids: Vec<_> = config.cas.iter().map(|c| c.id.clone()).collect();
    let options = StoreOptions {
        block_cache_bytes: config.store.block_cache_bytes,
        write_buffer_bytes: config.store.write_buffer_bytes,
        sync: true,
    };
    Ok(Store::open(&config.store.path, &ids, &options)?)
}

/// Addresses the listeners actually bound (port 0 in the configuration picks a free one).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Public listener.
    pub public: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// Whether the admin listener speaks HTTPS.
    pub admin_tls: bool,
}

/// The TLS acceptor of the admin listener, or `None` when `[admin] tls_cert` is not set. With
/// `client_ca`, the handshake requires a client certificate that verifies up to one of its
/// certificates (RFC 8446 §4.3.2 CertificateRequest names them); they are trust anchors even
/// when they are not self-signed (partial chains allowed).
pub fn admin_tls(admin: &AdminConfig) -> Result<Option<SslAcceptorBuilder>, Error> {
    let (Some(cert), Some(key)) = (&admin.tls_cert, &admin.tls_key) else {
        return Ok(None);
    };
    let tls_err = |what: String| {
        move |e: openssl::error::ErrorStack| Error::io(what, std::io::Error::other(e))
    };
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(tls_err("[admin] TLS set-up".into()))?;
    b.set_certificate_chain_file(cert)
        .map_err(tls_err(format!("[admin] tls_cert {}", cert.display())))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(tls_err(format!("[admin] tls_key {}", key.display())))?;
    b.check_private_key().map_err(tls_err(format!(
        "[admin] tls_key {} does not match tls_cert",
        key.display()
    )))?;
    if let Some(client_ca) = &admin.client_ca {
        let what = format!("[admin] client_ca {}", client_ca.display());
        let pem = std::fs::read(client_ca).map_err(|e| Error::io(what.clone(), e))?;
        let cas = X509::stack_from_pem(&pem).map_err(tls_err(what.clone()))?;
        if cas.is_empty() {
            return Err(Error::io(
                what,
                std::io::Error::other("no PEM certificate in the file"),
            ));
        }
        for ca in cas {
            b.add_client_ca(&ca).map_err(tls_err(what.clone()))?;
            b.cert_store_mut()
                .add_cert(ca)
                .map_err(tls_err(what.clone()))?;
        }
        // The certificates of client_ca are trust anchors even when they are intermediate CAs
        // (an IGC-Santé issuing CA, say): a client chain ending at one of them is enough.
        b.cert_store_mut()
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(tls_err(what.clone()))?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(Some(b))
}

/// Runs until SIGTERM or SIGINT. `on_bound` is told where the listeners are once they listen.
pub async fn run(
    config: Config,
    clock: SharedClock,
    on_bound: impl FnOnce(Bound),
) -> Result<(), Error> {
    let signals = ShutdownSignals::install();
    crate::limits::raise_open_files(config.public.max_connections);
    let metrics = crate::metrics::install();
    let store = Arc::new(open_store(&config)?);
    let registry = Arc::new(crate::pki::CaRegistry::load(
        &config.cas,
        config.pkcs11.as_ref(),
        clock.now(),
    ));
    // Two CAs an OCSP request cannot tell apart: the configuration is refused.
    registry.refuse_ambiguous().map_err(|e| {
        Error::Config(crate::config::Error::Invalid {
            path: config.source.display().to_string(),
            table: "[[ca]]".into(),
            key: e.key.into(),
            message: e.message,
        })
    })?;
    // One CA that does not load is left out; none loading at all is a configuration to fix.
    if registry.is_empty() {
        let problems: Vec<String> = registry.problems().iter().map(|p| p.to_string()).collect();
        return Err(Error::Config(crate::config::Error::Invalid {
            path: config.source.display().to_string(),
            table: "[[ca]]".into(),
            key: registry.problems().first().map_or("id", |p| p.key).into(),
            message: format!("no CA loads: {}", problems.join("; ")),
        }));
    }
    for p in registry.problems() {
        tracing::error!(problem = %p, "CA left out: the others serve without it");
    }
    let responder = Arc::new(Responder::new(
        Arc::clone(&registry),
        Arc::clone(&store),
        Arc::clone(&clock),
        &config.ocsp,
    ));
    let publisher = Arc::new(Publisher::new(
        &config,
        &registry,
        Arc::clone(&store),
        Arc::clone(&clock),
    )?);
    // Subscribers of the CRL publication event: HTTP serving, and the sinks' workers.
    let served = http::crl::Served::subscribe(&publisher);
    let publication = Publication::new(
        &config,
        &registry,
        Arc::clone(&publisher),
        Arc::clone(&clock),
    )?;
    // With [replication], a writer catches up with the stream and claims it before anything
    // else; a replica starts following it (crate::replicate).
    let replication = match config.replication.clone() {
        Some(rc) => Some(
            crate::replicate::start(
                rc,
                config.cas.iter().map(|c| c.id.clone()).collect(),
                Arc::clone(&store),
                Arc::clone(&publisher),
                Arc::clone(&clock),
            )
            .await?,
        ),
        None => None,
    };
    // A replica never builds CRLs: it serves the writer's.
    let builds_crls = replication
        .as_ref()
        .is_none_or(|(r, _)| r.role() == crate::replicate::Role::Writer);
    // Whatever is missing or near its nextUpdate is built before the listeners open, so that a
    // started server is ready (the watchdog retries a failure).
    let initial = Arc::clone(&publisher);
    if builds_crls {
        let _ = tokio::task::spawn_blocking(move || initial.catch_up_all()).await;
    }
    crate::status::export_static_gauges(&responder, &publisher);
    let history = Arc::new(crate::status::History::new(
        metrics.clone(),
        Arc::clone(&clock),
    ));
    let status_sampler = history.start(Duration::from_secs(10));
    // Starts pre-signing, and restarts it with each reload.
    let reloader = Arc::new(crate::reload::Reloader::new(
        config.clone(),
        Arc::clone(&responder),
        Arc::clone(&publisher),
        Arc::clone(&store),
        Arc::clone(&clock),
        builds_crls,
    ));
    let state = web::Data::new(AppState {
        responder: Arc::clone(&responder),
        crl: Arc::clone(&publisher),
        served,
        publication: Arc::clone(&publication),
        store: Arc::clone(&store),
        clock: Arc::clone(&clock),
        max_request_bytes: config.public.max_request_bytes,
        body_timeout: config.public.body_timeout,
        max_age_cap: config.ocsp.max_age_cap,
        metrics,
        admin_auth: AdminAuth::from_config(&config.admin, &registry),
        max_clock_skew: config.ingest.max_clock_skew,
        history,
        replication: replication.as_ref().map(|(r, _)| Arc::clone(r)),
        reloader: Arc::clone(&reloader),
    });
    if state.admin_auth.refuses_everyone() {
        tracing::warn!(
            "[admin] has neither token_sha256/token_file nor client_ca: the ingest API refuses every request (401)"
        );
    } else {
        tracing::info!(
            requires = state.admin_auth.describe(),
            "ingest API authentication"
        );
    }

    let public_state = state.clone();
    let public = HttpServer::new(move || {
        App::new()
            .app_data(public_state.clone())
            .configure(http::public_routes)
    })
    .workers(config.public.workers)
    .max_connections(
        config
            .public
            .max_connections
            .div_ceil(config.public.workers.max(1)),
    )
    .keep_alive(config.public.keep_alive)
    .client_request_timeout(config.public.header_timeout)
    .disable_signals()
    .shutdown_timeout(10)
    .bind(config.public.listen)
    .map_err(|e| Error::io(format!("[public] listen {}", config.public.listen), e))?;
    let admin_state = state.clone();
    let admin_tls = admin_tls(&config.admin)?;
    let admin_is_tls = admin_tls.is_some();
    let admin = HttpServer::new(move || {
        App::new()
            .app_data(admin_state.clone())
            .configure(http::admin_routes)
    })
    .on_connect(http::auth::on_connect)
    .workers(2)
    .disable_signals()
    .shutdown_timeout(10);
    let admin = match admin_tls {
        Some(tls) => admin.bind_openssl(config.admin.listen, tls),
        None => admin.bind(config.admin.listen),
    }
    .map_err(|e| Error::io(format!("[admin] listen {}", config.admin.listen), e))?;
    let bound = Bound {
        public: public
            .addrs()
            .first()
            .copied()
            .unwrap_or(config.public.listen),
        admin: admin
            .addrs()
            .first()
            .copied()
            .unwrap_or(config.admin.listen),
        admin_tls: admin_is_tls,
    };
    let public = public.run();
    let admin = admin.run();
    let public_handle = public.handle();
    let admin_handle = admin.handle();
    let public_task = tokio::spawn(public);
    let admin_task = tokio::spawn(admin);

    // Background tasks: one start/stop pattern for all (see crate::tasks).
    let mut tasks = Tasks::new();
    {
        // Pre-signing runs on its own threads (started by the reloader, restarted by each
        // reload); the task only stops them at shutdown.
        let reloader = Arc::clone(&reloader);
        tasks.spawn("ocsp-presign", move |mut stop| async move {
            stop.stopped().await;
            let _ = tokio::task::spawn_blocking(move || reloader.stop()).await;
        });
    }
    if builds_crls {
        // The schedule follows the CA set: restarted after each reload.
        let mut schedule = Schedule::start(Arc::clone(&publisher)).await?;
        let mut reloads = reloader.subscribe();
        let publisher = Arc::clone(&publisher);
        tasks.spawn("crl-schedule", move |mut stop| async move {
            loop {
                tokio::select! {
                    _ = stop.stopped() => break,
                    changed = reloads.changed() => {
                        if changed.is_err() {
                            stop.stopped().await;
                            break;
                        }
                        schedule.stop().await;
                        match Schedule::start(Arc::clone(&publisher)).await {
                            Ok(s) => schedule = s,
                            Err(e) => {
                                tracing::error!(error = %e, "CRL schedule not restarted after a reload");
                                stop.stopped().await;
                                return;
                            }
                        }
                    }
                }
            }
            schedule.stop().await;
        });
    }
    spawn_sighup(&mut tasks, Arc::clone(&reloader));
    spawn_refresher(
        &mut tasks,
        Arc::clone(&responder),
        config.ocsp.refresh_interval,
    );
    for sink in 0..publication.len() {
        let p = Arc::clone(&publication);
        tasks.spawn("publish", move |stop| p.run(sink, stop));
    }
    tracing::info!(public = %bound.public, admin = %bound.admin, cas = config.cas.len(), "vigie serving");
    on_bound(bound);

    signals.wait().await;
    tracing::info!("shutting down: finishing in-flight requests");
    public_handle.stop(true).await;
    admin_handle.stop(true).await;
    let _ = public_task.await;
    let _ = admin_task.await;
    tasks.stop().await;
    drop(publication);
    drop(status_sampler);
    if let Some((_, running)) = replication {
        running.stop().await;
    }
    drop(publisher);
    drop(responder);
    drop(state);
    drop(reloader);
    store.close()?;
    tracing::info!("stopped");
    Ok(())
}

/// The OCSP refresher: every `every`, re-signs stored responses past half their validity.
fn spawn_refresher(tasks: &mut Tasks, responder: Arc<Responder>, every: Duration) {
    tasks.spawn("ocsp-refresher", move |mut stop| async move {
        while !stop.sleep(every).await {
            let responder = Arc::clone(&responder);
            let round = tokio::task::spawn_blocking(move || responder.refresh_stored()).await;
            match round {
                Ok(Ok(stats)) if stats.resigned + stats.dropped > 0 => {
                    tracing::info!(
                        seen = stats.seen,
                        resigned = stats.resigned,
                        dropped = stats.dropped,
                        "OCSP refresh"
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "OCSP refresh failed"),
                Err(e) => tracing::error!(error = %e, "OCSP refresh panicked"),
            }
        }
    });
}

/// `SIGHUP`: reload the configuration ([`crate::reload`]); the outcome is logged and counted.
fn spawn_sighup(tasks: &mut Tasks, reloader: Arc<crate::reload::Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be caught: reload through POST /v1/admin/reload");
            return;
        };
        tasks.spawn("sighup", move |mut stop| async move {
            loop {
                tokio::select! {
                    _ = stop.stopped() => break,
                    got = hangups.recv() => {
                        if got.is_none() {
                            break;
                        }
                        tracing::info!("SIGHUP: reloading the configuration");
                        let r = Arc::clone(&reloader);
                        // Logged and counted by the reloader.
                        let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (tasks, reloader);
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made: created before the listeners
/// announce themselves, so a signal sent right after start-up is a graceful stop, not a kill.
struct ShutdownSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn install() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            ShutdownSignals { streams }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignals {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.streams {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
