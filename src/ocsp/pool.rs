//! A bounded pool of signing threads. Signing (an RSA private-key operation, ~1 ms) never runs
//! on the HTTP workers; when every thread is busy and the queue is full, [`SigningPool::try_run`]
//! refuses at once, and the responder answers `tryLater` instead of letting a queue grow.

use crossbeam_channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The pool refused: all threads busy and the queue full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing pool saturated")]
pub struct Busy;

/// Signing threads fed by a bounded queue.
pub struct SigningPool {
    tx: Option<Sender<Job>>,
    /// `vigie_ocsp_signing_queue`: jobs waiting.
    queued: metrics::Gauge,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.workers.len())
            .finish()
    }
}

impl SigningPool {
    /// `threads` threads, at most `queue` jobs waiting.
    pub fn new(threads: usize, queue: usize) -> SigningPool {
        let (tx, rx) = bounded::<Job>(queue.max(1));
        let queued = metrics::gauge!(crate::metrics::OCSP_SIGNING_QUEUE);
        queued.set(0.0);
        let workers = (0..threads.max(1))
            .map(|i| {
                let rx = rx.clone();
                let queued = queued.clone();
                std::thread::Builder::new()
                    .name(format!("vigie-sign-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            queued.set(rx.len() as f64);
                            job();
                        }
                    })
                    .expect("the OS can start a handful of threads at start-up")
            })
            .collect();
        SigningPool {
            tx: Some(tx),
            queued,
            workers,
        }
    }

    /// Queues `f`, or refuses at once if the queue is full.
    pub fn try_run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The requester may have gone away (client disconnected); nothing to do then.
            let _ = reply.send(f());
        });
        match self.tx.as_ref().map(|tx| (tx.try_send(job), tx.len())) {
            Some((Ok(()), waiting)) => {
                self.queued.set(waiting as f64);
                Ok(rx)
            }
            Some((Err(TrySendError::Full(_) | TrySendError::Disconnected(_)), _)) | None => {
                Err(Busy)
            }
        }
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_when_saturated_and_recovers() {
        let pool = SigningPool::new(1, 1);
        let (hold, wait) = std::sync::mpsc::channel::<()>();
        let first = pool
            .try_run(move || wait.recv().is_ok())
            .expect("a thread is free");
        // The thread may or may not have picked up the first job yet; fill what remains.
        let mut queued = Vec::new();
        let mut refused = false;
        for _ in 0..3 {
            match pool.try_run(|| true) {
                Ok(rx) => queued.push(rx),
                Err(Busy) => refused = true,
            }
        }
        assert!(refused, "a full queue refuses");
        hold.send(()).expect("worker listening");
        assert!(first.blocking_recv().expect("ran"));
        for rx in queued {
            assert!(rx.blocking_recv().expect("ran"));
        }
        assert!(pool.try_run(|| true).is_ok());
    }
}
