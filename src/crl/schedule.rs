//! When CRLs are built, in the running service:
//!
//! - each CA's `crl_schedule` and `delta_schedule` (cron expressions with a seconds field, UTC)
//!   through tokio-cron-scheduler;
//! - a deadline watchdog, independent of the cron schedules: every few seconds it asks the
//!   [`Publisher`] what is due ([`Publisher::due`]: no CRL yet, or nextUpdate nearer than the
//!   safety margin) and builds it, so a stalled or misconfigured schedule never leaves an
//!   expired CRL published. Its first round runs at start-up and builds whatever is missing;
//! - with `publish_delta_on_revoke`, a delta CRL `delta_debounce` after a committed revocation
//!   (revocations arriving meanwhile are coalesced into the same delta);
//! - for CAs whose CRL scope is learned ([`super::scope`]), a complete CRL [`SCOPE_DEBOUNCE`]
//!   after a registration brought distribution points not named yet (a delta cannot change
//!   its base's scope, RFC 5280 §5.2.4).
//!
//! Builds run on blocking threads ([`tokio::task::spawn_blocking`]) and the publisher's own
//! rayon pool, never on the async workers. The cron timer reads the wall clock; CRL contents
//! (thisUpdate, nextUpdate, deadlines) read the publisher's injected clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{CrlKind, Error, Publisher};
use crate::model::CaId;

/// The running schedule.
pub struct Schedule {
    scheduler: JobScheduler,
    tasks: Vec<JoinHandle<()>>,
    publisher: Arc<Publisher>,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

fn schedule_error(e: impl std::fmt::Display) -> Error {
    Error::Schedule(e.to_string())
}

/// How long after a change of scope the new complete CRL is built (registrations arriving
/// meanwhile are coalesced).
pub const SCOPE_DEBOUNCE: Duration = Duration::from_millis(500);

/// How often the watchdog looks: a quarter of the smallest margin in use, between 1 s and 30 s.
pub fn watchdog_period(publisher: &Publisher) -> Duration {
    let mut smallest = publisher.settings().safety_margin;
    for ca in publisher.ca_ids() {
        if let Ok(p) = publisher.policy(ca.as_str()) {
            smallest = smallest.min(p.validity / 2);
            if p.delta_schedule.is_some() {
                smallest = smallest.min(p.delta_validity / 2);
            }
        }
    }
    Duration::from_secs((smallest / 4).clamp(1, 30) as u64)
}

async fn build(publisher: Arc<Publisher>, ca: CaId, kind: CrlKind, wait: bool) {
    let outcome = tokio::task::spawn_blocking(move || {
        if wait {
            publisher.publish(ca.as_str(), kind).map(Some)
        } else {
            publisher.try_publish(ca.as_str(), kind)
        }
    })
    .await;
    match outcome {
        // Successes and failures are logged and counted by the publisher.
        Ok(Ok(Some(_))) | Ok(Err(_)) => {}
        Ok(Ok(None)) => tracing::debug!(kind = kind.label(), "CRL build skipped: one is running"),
        Err(e) => tracing::error!(error = %e, "CRL build task panicked"),
    }
}

impl Schedule {
    /// Starts the cron jobs, the watchdog and the delta-on-revoke listener. Must run inside a
    /// tokio runtime.
    pub async fn start(publisher: Arc<Publisher>) -> Result<Schedule, Error> {
        let scheduler = JobScheduler::new().await.map_err(schedule_error)?;
        let ids: Vec<CaId> = publisher.ca_ids();
        for ca in &ids {
            let policy = publisher
                .policy(ca.as_str())
                .map_err(|e| Error::Schedule(e.to_string()))?;
            let jobs = [
                (CrlKind::Full, Some(policy.schedule.clone()), true),
                (CrlKind::Delta, policy.delta_schedule.clone(), false),
            ];
            for (kind, expr, wait) in jobs {
                let Some(expr) = expr else { continue };
                let p = Arc::clone(&publisher);
                let id = ca.clone();
                let job = Job::new_async(expr.as_str(), move |_uuid, _scheduler| {
                    let p = Arc::clone(&p);
                    let id = id.clone();
                    Box::pin(build(p, id, kind, wait))
                })
                .map_err(|e| {
                    Error::Schedule(format!("CA {ca}: {} schedule {expr:?}: {e}", kind.label()))
                })?;
                scheduler.add(job).await.map_err(schedule_error)?;
            }
        }
        scheduler.start().await.map_err(schedule_error)?;

        let mut tasks = Vec::new();
        let period = watchdog_period(&publisher);
        let p = Arc::clone(&publisher);
        let watch_ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                for ca in &watch_ids {
                    let p = Arc::clone(&p);
                    let id = ca.clone();
                    // One CA that fails does not hold up the others: its build failures are
                    // logged and counted by the publisher, the round's error here, and the next
                    // round retries.
                    let outcome = tokio::task::spawn_blocking(move || p.catch_up(id.as_str())).await;
                    let error = match outcome {
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => format!("watchdog task panicked: {e}"),
                    };
                    metrics::counter!(crate::metrics::REFRESH_ERRORS, "ca" => ca.to_string(), "task" => "crl")
                        .increment(1);
                    tracing::warn!(ca = %ca, %error, "CRL watchdog could not bring this CA up to date; going on with the others");
                }
            }
        }));

        let learning: Vec<CaId> = ids
            .iter()
            .filter(|ca| publisher.learns_scope(ca.as_str()))
            .cloned()
            .collect();
        if !learning.is_empty() {
            let mut rx = publisher.store().subscribe();
            let p = Arc::clone(&publisher);
            tasks.push(tokio::spawn(async move {
                loop {
                    let changed: Vec<CaId> = match rx.recv().await {
                        Ok(c) if c.scope_changed => vec![c.ca],
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            learning.clone()
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    for ca in changed {
                        if !learning.contains(&ca) || !p.claim_scope_pending(ca.as_str()) {
                            continue;
                        }
                        let p = Arc::clone(&p);
                        tokio::spawn(async move {
                            tokio::time::sleep(SCOPE_DEBOUNCE).await;
                            p.release_scope_pending(ca.as_str());
                            let outcome = tokio::task::spawn_blocking(move || {
                                p.publish_full_if_due(ca.as_str())
                            })
                            .await;
                            if let Err(e) = outcome {
                                tracing::error!(error = %e, "CRL build task panicked");
                            }
                        });
                    }
                }
            }));
        }

        let on_revoke: Vec<CaId> = ids
            .iter()
            .filter(|ca| {
                publisher
                    .policy(ca.as_str())
                    .is_ok_and(|p| p.publish_delta_on_revoke && p.delta_schedule.is_some())
            })
            .cloned()
            .collect();
        if !on_revoke.is_empty() {
            let mut rx = publisher.store().subscribe();
            let p = Arc::clone(&publisher);
            tasks.push(tokio::spawn(async move {
                loop {
                    let changed: Vec<CaId> = match rx.recv().await {
                        Ok(c) if c.revocation_changed => vec![c.ca],
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            on_revoke.clone()
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    for ca in changed {
                        if !on_revoke.contains(&ca) || !p.claim_delta_pending(ca.as_str()) {
                            continue;
                        }
                        let debounce = p
                            .policy(ca.as_str())
                            .map(|pol| pol.delta_debounce)
                            .unwrap_or_default();
                        let p = Arc::clone(&p);
                        tokio::spawn(async move {
                            tokio::time::sleep(debounce).await;
                            p.release_delta_pending(ca.as_str());
                            build(p, ca, CrlKind::Delta, true).await;
                        });
                    }
                }
            }));
        }
        tracing::info!(
            cas = ids.len(),
            watchdog_seconds = period.as_secs(),
            "CRL schedule started"
        );
        Ok(Schedule {
            scheduler,
            tasks,
            publisher,
        })
    }

    /// Stops the jobs and the watchdog, then waits for a build in progress to finish.
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "CRL scheduler did not shut down cleanly");
        }
        for t in &self.tasks {
            t.abort();
        }
        let p = Arc::clone(&self.publisher);
        let _ = tokio::task::spawn_blocking(move || p.wait_idle()).await;
    }
}
