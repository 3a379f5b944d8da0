//! Background tasks of the service, started and stopped one way.
//!
//! Everything that runs beside the listeners — the CRL schedule and its watchdog, the OCSP
//! refresher, one publication worker per sink, and whatever comes next (pre-signing,
//! replication) — is a [`Tasks`] entry:
//!
//! ```ignore
//! tasks.spawn("ocsp-refresher", move |mut stop| async move {
//!     // `stop.sleep(d)` returns true when the service stops: finish the round, return.
//!     while !stop.sleep(every).await {
//!         let _ = tokio::task::spawn_blocking(/* one round of work */).await;
//!     }
//! });
//! ```
//!
//! Rules for a task: it is an `async` closure given a [`Stop`]; it waits only through
//! [`Stop::sleep`] or [`Stop::stopped`] (in a `select!` with its own wake-ups), so that a stop
//! is noticed at once; blocking or CPU-heavy work goes to `spawn_blocking` or a pool of its
//! own, never on the async workers; when stopped, it finishes what it was doing (a CRL build
//! in progress, one publication) and returns. [`Tasks::stop`] signals every task, then waits
//! for each, in the reverse order of their start, at most [`STOP_GRACE`] each (then it is
//! aborted and a warning names it). The service stops the tasks after the listeners have
//! drained and before it flushes the store.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long [`Tasks::stop`] waits for one task before aborting it.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The running background tasks.
#[derive(Debug)]
pub struct Tasks {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new()
    }
}

/// A task's view of the stop signal.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the service is stopping.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns when the service stops.
    pub async fn stopped(&mut self) {
        // An error means the sender is gone: the service is gone too.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps `d`, or less if the service stops; true when it stops.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_stopped(),
            _ = self.stopped() => true,
        }
    }
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Tasks {
        Tasks {
            stop: watch::channel(false).0,
            running: Vec::new(),
        }
    }

    /// Starts a task on the current tokio runtime; `name` appears in logs.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Stop(self.stop.subscribe());
        self.running.push((name, tokio::spawn(task(stop))));
        tracing::debug!(task = name, "background task started");
    }

    /// The names of the running tasks, in start order.
    pub fn names(&self) -> Vec<&'static str> {
        self.running.iter().map(|(n, _)| *n).collect()
    }

    /// Signals every task to stop, then waits for each (newest first).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while let Some((name, mut handle)) = self.running.pop() {
            match tokio::time::timeout(STOP_GRACE, &mut handle).await {
                Ok(Ok(())) => tracing::debug!(task = name, "background task stopped"),
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "background task failed"),
                Err(_) => {
                    tracing::warn!(task = name, "background task did not stop in time: aborted");
                    handle.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn tasks_stop_promptly_and_finish_their_round() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut tasks = Tasks::new();
        for name in ["a", "b"] {
            let rounds = Arc::clone(&rounds);
            let finished = Arc::clone(&finished);
            tasks.spawn(name, move |mut stop| async move {
                while !stop.sleep(Duration::from_millis(5)).await {
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(tasks.names(), vec!["a", "b"]);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = std::time::Instant::now();
        tasks.stop().await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(finished.load(Ordering::SeqCst), 2);
        assert!(rounds.load(Ordering::SeqCst) > 0);
    }
}
