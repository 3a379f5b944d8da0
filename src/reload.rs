//! Live reload: `SIGHUP` or `POST /v1/admin/reload` re-reads the configuration file and every
//! CA's certificate and key files, and swaps what the service answers with — without a restart,
//! and without a gap.
//!
//! What a reload applies: the `[[ca]]` tables — CAs added, removed or changed (certificate,
//! keys, OCSP signer, `next_ocsp_cert`/`next_ocsp_key`/`rollover_at`, OCSP policy, CRL
//! settings). The OCSP responder gets the new registry in one atomic swap
//! ([`crate::ocsp::Responder::set_registry`]): a request in flight finishes with the registry it
//! started with, the next one uses the new one. Answers cached or stored under another signer or
//! policy become misses by their maker ([`crate::store::maker`]) and are signed again. The CRL
//! publisher takes the new CA set ([`crate::crl::Publisher::reconcile`]), the CRL schedule and
//! pre-signing are restarted for it.
//!
//! What it does not apply: the other tables (`[public]`, `[admin]`, `[store]`, `[ocsp]`,
//! `[crl]`, `[[publish]]`, `[pkcs11]`, `[replication]`). A change there is reported in the
//! answer (`restart_required`) and left for a restart. With `[replication]`, the set of CAs
//! cannot change by a reload (the stream's subjects follow it): such a reload is refused.
//!
//! When a reload is refused whole (the running configuration stays, `/readyz` is unchanged, the
//! failure is logged and counted in `vigie_config_reload_failures_total`):
//! - the file does not parse or does not validate;
//! - two CAs have the same issuer name hash and key hash ([`crate::pki::ambiguity`]);
//! - a CA would not load that serves now, or a new CA would not load: a reload never takes a
//!   serving CA down, nor adds a broken one. A CA that is already down may stay down (a reload
//!   fixing another CA must not wait for it).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crl::Publisher;
use crate::metrics as m;
use crate::ocsp::Responder;
use crate::ocsp::presign::Presigning;
use crate::pki::{Ca, CaProblem, CaRegistry};
use crate::store::Store;

/// Why a reload was refused. The running configuration is kept.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not parse or does not validate.
    #[error("{0}")]
    Config(#[from] crate::config::Error),
    /// A CA that serves now, or a new one, would not load.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    CaDoesNotLoad(Vec<CaProblem>),
    /// Two CAs an OCSP request cannot tell apart (same issuer name and key hashes).
    #[error("{0}")]
    Ambiguous(crate::pki::Error),
    /// A change a reload cannot make.
    #[error("{0}")]
    Unsupported(String),
    /// The store refused to make a new CA known.
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    /// The CRL publisher could not take the new CA set.
    #[error("CRL publisher: {0}")]
    Crl(#[from] crate::crl::Error),
}

impl Error {
    /// What the problem names: the configuration key at fault, as `[table] key`.
    pub fn field(&self) -> String {
        match self {
            Error::Config(crate::config::Error::Invalid { table, key, .. }) => {
                format!("{table} {key}")
            }
            Error::Config(_) => "config".into(),
            Error::CaDoesNotLoad(problems) => problems
                .first()
                .map_or("[[ca]]".into(), |p| format!("[[ca]] {} {}", p.id, p.key)),
            Error::Unsupported(_) | Error::Ambiguous(_) => "[[ca]]".into(),
            Error::Store(_) | Error::Crl(_) => "config".into(),
        }
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// CAs served now that were not.
    pub added: Vec<String>,
    /// CAs no longer served.
    pub removed: Vec<String>,
    /// CAs whose configuration, certificates or keys changed.
    pub changed: Vec<String>,
    /// CAs as they were.
    pub unchanged: Vec<String>,
    /// Configured CAs that do not load (already down before this reload), with why.
    pub down: Vec<String>,
    /// Tables whose change was not applied: they take effect at the next restart.
    pub restart_required: Vec<String>,
}

/// Background work that follows the CA set: restarted by each reload.
#[derive(Default)]
struct Followers {
    presigning: Option<Presigning>,
}

/// Reloads the configuration of a running service. One reload at a time.
pub struct Reloader {
    path: PathBuf,
    running: Mutex<Config>,
    responder: Arc<Responder>,
    publisher: Arc<Publisher>,
    store: Arc<Store>,
    clock: SharedClock,
    followers: Mutex<Followers>,
    /// Whether this node builds CRLs (not a replica): CAs added or changed are caught up.
    builds_crls: bool,
    /// Told after each applied reload (the CRL schedule restarts on it).
    applied: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A reload that panicked left the previous state in place: still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ids of the CAs pre-signing covers in `config` (those with `presign`) that loaded.
fn presign_cas(config: &Config, registry: &CaRegistry) -> Vec<crate::model::CaId> {
    config
        .cas
        .iter()
        .filter(|c| c.presign && registry.by_id(c.id.as_str()).is_some())
        .map(|c| c.id.clone())
        .collect()
}

/// Whether two loaded CAs answer the same way: same certificate, signers and policy.
fn same_ca(a: &Ca, b: &Ca) -> bool {
    let next = |c: &Ca| {
        c.next_ocsp
            .as_ref()
            .map(|n| (n.at, n.signer.cert_der.clone()))
    };
    a.cert_der == b.cert_der
        && a.ocsp.cert_der == b.ocsp.cert_der
        && a.policy_digest == b.policy_digest
        && next(a) == next(b)
        && a.crl_signer.as_ref().map(|s| s.public_key_der().to_vec())
            == b.crl_signer.as_ref().map(|s| s.public_key_der().to_vec())
}

impl Reloader {
    /// A reloader for the service started from `config` (read from `config.source`), serving
    /// through `responder` and `publisher`. Starts pre-signing for the CAs that have it.
    pub fn new(
        config: Config,
        responder: Arc<Responder>,
        publisher: Arc<Publisher>,
        store: Arc<Store>,
        clock: SharedClock,
        builds_crls: bool,
    ) -> Reloader {
        let (applied, _) = tokio::sync::watch::channel(0);
        // Both counters exist from the start, at zero.
        metrics::counter!(m::CONFIG_RELOADS).increment(0);
        metrics::counter!(m::CONFIG_RELOAD_FAILURES).increment(0);
        let reloader = Reloader {
            path: config.source.clone(),
            running: Mutex::new(config),
            responder,
            publisher,
            store,
            clock,
            followers: Mutex::new(Followers::default()),
            builds_crls,
            applied,
        };
        reloader.start_followers();
        reloader
    }

    /// Notified (with a count) after each applied reload.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn start_followers(&self) {
        let config = lock(&self.running);
        let registry = self.responder.registry();
        let mut followers = lock(&self.followers);
        if let Some(p) = followers.presigning.take() {
            p.stop();
        }
        followers.presigning = Presigning::start(
            Arc::clone(&self.responder),
            &presign_cas(&config, &registry),
            &config.ocsp.presign_hashes,
            config.ocsp.refresh_interval,
        );
    }

    /// Stops the background work that follows the CA set (at shutdown).
    pub fn stop(&self) {
        if let Some(p) = lock(&self.followers).presigning.take() {
            p.stop();
        }
    }

    /// Re-reads the configuration file and applies it; blocking (keys are opened, perhaps in
    /// an HSM). Counted and logged either way.
    pub fn reload(&self) -> Result<Outcome, Error> {
        let result = self.try_reload();
        match &result {
            Ok(outcome) => {
                metrics::counter!(m::CONFIG_RELOADS).increment(1);
                tracing::info!(
                    added = ?outcome.added,
                    removed = ?outcome.removed,
                    changed = ?outcome.changed,
                    down = ?outcome.down,
                    restart_required = ?outcome.restart_required,
                    "configuration reloaded"
                );
            }
            Err(e) => {
                metrics::counter!(m::CONFIG_RELOAD_FAILURES).increment(1);
                tracing::error!(error = %e, "configuration reload refused: the running configuration is kept");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<Outcome, Error> {
        let mut running = lock(&self.running);
        let new = Config::load(&self.path)?;
        let now = self.clock.now();
        let old_registry = self.responder.registry();
        let registry = CaRegistry::load(&new.cas, new.pkcs11.as_ref(), now);
        registry.refuse_ambiguous().map_err(Error::Ambiguous)?;

        // A reload never takes a serving CA down, nor adds a broken one.
        let breaking: Vec<CaProblem> = registry
            .problems()
            .iter()
            .filter(|p| old_registry.problem(p.id.as_str()).is_none())
            .cloned()
            .collect();
        if !breaking.is_empty() {
            return Err(Error::CaDoesNotLoad(breaking));
        }
        let old_ids: BTreeSet<&str> = running.cas.iter().map(|c| c.id.as_str()).collect();
        let new_ids: BTreeSet<&str> = new.cas.iter().map(|c| c.id.as_str()).collect();
        if running.replication.is_some() && old_ids != new_ids {
            return Err(Error::Unsupported(
                "with [replication], the set of CAs changes only with a restart of every node"
                    .into(),
            ));
        }

        let mut restart_required = Vec::new();
        let differs =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        for (table, changed) in [
            ("[public]", differs(&running.public, &new.public)),
            ("[admin]", differs(&running.admin, &new.admin)),
            ("[store]", differs(&running.store, &new.store)),
            ("[ocsp]", differs(&running.ocsp, &new.ocsp)),
            ("[crl]", differs(&running.crl, &new.crl)),
            ("[security]", differs(&running.security, &new.security)),
            ("[[publish]]", differs(&running.publish, &new.publish)),
            ("[pkcs11]", differs(&running.pkcs11, &new.pkcs11)),
            (
                "[replication]",
                differs(&running.replication, &new.replication),
            ),
        ] {
            if changed {
                restart_required.push(table.to_owned());
            }
        }

        let mut outcome = Outcome {
            restart_required,
            ..Outcome::default()
        };
        for c in &new.cas {
            let id = c.id.as_str();
            if let Some(p) = registry.problem(id) {
                outcome.down.push(p.to_string());
                continue;
            }
            if !old_ids.contains(id) {
                outcome.added.push(id.to_owned());
                continue;
            }
            let old_config = running.cas.iter().find(|o| o.id.as_str() == id);
            let same = match (old_registry.by_id(id), registry.by_id(id), old_config) {
                (Some(a), Some(b), Some(oc)) => same_ca(a, b) && !differs(&oc.crl, &c.crl),
                _ => false,
            };
            if same {
                outcome.unchanged.push(id.to_owned());
            } else {
                outcome.changed.push(id.to_owned());
            }
        }
        outcome.removed = old_ids
            .iter()
            .filter(|id| !new_ids.contains(*id))
            .map(|id| (*id).to_owned())
            .collect();

        // Apply: the store learns new CAs first (ingest for them may follow at once), then the
        // responder swaps registries, then the CRL side and the background work follow.
        for c in &new.cas {
            self.store.add_ca(&c.id)?;
        }
        let registry = Arc::new(registry);
        self.publisher.reconcile(&new, &registry)?;
        self.responder.set_registry(Arc::clone(&registry));
        crate::status::export_static_gauges(&self.responder, &self.publisher);
        // The tables a reload does not apply stay as they run.
        let mut kept = running.clone();
        kept.cas = new.cas;
        *running = kept;
        drop(running);
        self.start_followers();
        self.applied.send_modify(|n| *n += 1);
        if self.builds_crls {
            // CRLs of the CAs added or changed (a new key, a new scope) are built at once, off
            // the caller's thread; a failure is logged and the watchdog retries.
            let publisher = Arc::clone(&self.publisher);
            let ids: Vec<String> = outcome
                .added
                .iter()
                .chain(&outcome.changed)
                .cloned()
                .collect();
            std::thread::spawn(move || {
                for id in ids {
                    if let Err(e) = publisher.catch_up(&id) {
                        tracing::warn!(ca = %id, error = %e, "CRL catch-up after a reload failed");
                    }
                }
            });
        }
        Ok(outcome)
    }
}
