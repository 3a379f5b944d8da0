//! A bounded pool of signing threads with three priority lanes. Signing (an RSA private-key
//! operation, ~1 ms) never runs on the HTTP workers.
//!
//! | lane | who | bound | order |
//! |---|---|---|---|
//! | [`Lane::Urgent`] | re-signing after a status change (ingest) | none (fed by the event log) | first |
//! | [`Lane::Live`] | a request that needs a signature now | `signing_queue` waiting; beyond, [`SigningPool::try_run`] refuses at once (`tryLater`) | second |
//! | [`Lane::Background`] | pre-signing and re-signing before half validity | a few waiting (the producer blocks); at most `background_threads` running at once | last |
//!
//! A free thread takes the oldest urgent job, else the oldest live one, else a background job if
//! fewer than `background_threads` are already running background jobs. So a request after a
//! revocation waits at most for the signatures already under way, never behind a backlog, and
//! live requests keep `threads − background_threads` threads for themselves
//! (`[ocsp] presign_share`) while they come. Idle capacity is not wasted: when no live job has
//! been queued for [`LIVE_QUIET`], every thread may take background jobs (a node that has just
//! started pre-signs 10⁶ answers on all its cores), and the next live job waits at most for the
//! background signatures under way before the share applies again.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// How long without a live job before background jobs may use every thread.
pub const LIVE_QUIET: Duration = Duration::from_millis(50);

/// The pool refused: all threads busy and the lane's queue full (or the pool is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing pool saturated")]
pub struct Busy;

/// A priority lane of the pool (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A status change: ahead of everything.
    Urgent,
    /// A request waiting for its answer.
    Live,
    /// Pre-signing: a bounded share of the threads, when nothing else waits.
    Background,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<Job>,
    live: VecDeque<Job>,
    background: VecDeque<Job>,
    running_background: usize,
    /// When the last live job was queued.
    last_live: Option<Instant>,
    closed: bool,
}

impl Queues {
    /// Whether a free thread may take a background job now.
    fn background_allowed(&self, share: usize, quiet: Duration, now: Instant) -> bool {
        self.running_background < share
            || (self.live.is_empty()
                && self
                    .last_live
                    .is_none_or(|t| now.saturating_duration_since(t) >= quiet))
    }
}

struct Shared {
    queues: Mutex<Queues>,
    /// Workers wait here for a job they may take.
    work: Condvar,
    /// Background producers wait here for room in their lane.
    room: Condvar,
    live_capacity: usize,
    background_capacity: usize,
    /// [`LIVE_QUIET`] (shorter or longer in tests).
    live_quiet: Duration,
    background_threads: usize,
    /// `vigie_ocsp_signing_queue`: live jobs waiting for a thread.
    queued: metrics::Gauge,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Jobs run outside the lock: a panic cannot leave the queues half-changed.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How many jobs wait in each lane, and how many background jobs run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    /// Urgent jobs waiting.
    pub urgent: usize,
    /// Live jobs waiting.
    pub live: usize,
    /// Background jobs waiting.
    pub background: usize,
    /// Background jobs being run.
    pub running_background: usize,
}

/// Signing threads fed by three priority lanes.
pub struct SigningPool {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.workers.len())
            .field("background_threads", &self.shared.background_threads)
            .finish()
    }
}

/// Threads allowed to run background jobs at once: `share` of `threads`, rounded, at least one
/// (a pool of one thread still pre-signs, between live jobs).
pub fn background_threads(threads: usize, share: f64) -> usize {
    let threads = threads.max(1);
    ((threads as f64 * share).round() as usize).clamp(1, threads)
}

impl SigningPool {
    /// `threads` threads, at most `queue` live jobs waiting, and half the threads for
    /// background work (see [`SigningPool::with_share`]).
    pub fn new(threads: usize, queue: usize) -> SigningPool {
        SigningPool::with_share(threads, queue, 0.5)
    }

    /// `threads` threads, at most `queue` live jobs waiting, at most
    /// [`background_threads`]`(threads, share)` threads on background jobs at once.
    pub fn with_share(threads: usize, queue: usize, share: f64) -> SigningPool {
        SigningPool::with_quiet(threads, queue, share, LIVE_QUIET)
    }

    /// [`SigningPool::with_share`], background jobs taking every thread after `quiet` without a
    /// live job.
    fn with_quiet(threads: usize, queue: usize, share: f64, quiet: Duration) -> SigningPool {
        let threads = threads.max(1);
        let background = background_threads(threads, share);
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            live_capacity: queue.max(1),
            queued: {
                let g = metrics::gauge!(crate::metrics::OCSP_SIGNING_QUEUE);
                g.set(0.0);
                g
            },
            // Enough to feed every thread when they all pre-sign (see LIVE_QUIET).
            background_capacity: 2 * threads,
            background_threads: background,
            live_quiet: quiet,
        });
        let workers = (0..threads)
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("vigie-sign-{i}"))
                    .spawn(move || work(&shared))
                    .expect("the OS can start a handful of threads at start-up")
            })
            .collect();
        SigningPool { shared, workers }
    }

    /// Threads that may run background jobs at once.
    pub fn background_threads(&self) -> usize {
        self.shared.background_threads
    }

    /// Queues `f` in the live lane, or refuses at once if that lane is full.
    pub fn try_run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let (job, rx) = job(f);
        let mut q = self.shared.lock();
        if q.closed || q.live.len() >= self.shared.live_capacity {
            return Err(Busy);
        }
        q.live.push_back(job);
        q.last_live = Some(Instant::now());
        self.shared.queued.set(q.live.len() as f64);
        drop(q);
        self.shared.work.notify_one();
        Ok(rx)
    }

    /// Queues `f` in the urgent lane, ahead of every live and background job. Never refuses
    /// (unless the pool is shutting down): status changes are few, and each must be signed.
    pub fn run_urgent<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let (job, rx) = job(f);
        let mut q = self.shared.lock();
        if q.closed {
            return Err(Busy);
        }
        q.urgent.push_back(job);
        drop(q);
        self.shared.work.notify_one();
        Ok(rx)
    }

    /// Queues `f` in the background lane, waiting for room there while `keep_waiting` says so
    /// (it is asked every 100 ms). The lane holds only a few jobs: the producer is paced by the
    /// threads, and its backlog stays in the store, not in memory.
    pub fn run_background<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
        keep_waiting: impl Fn() -> bool,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        let mut q = self.shared.lock();
        loop {
            if q.closed {
                return Err(Busy);
            }
            if q.background.len() < self.shared.background_capacity {
                break;
            }
            if !keep_waiting() {
                return Err(Busy);
            }
            q = self
                .shared
                .room
                .wait_timeout(q, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let (job, rx) = job(f);
        q.background.push_back(job);
        drop(q);
        self.shared.work.notify_one();
        Ok(rx)
    }

    /// Jobs waiting in each lane now.
    pub fn depths(&self) -> Depths {
        let q = self.shared.lock();
        Depths {
            urgent: q.urgent.len(),
            live: q.live.len(),
            background: q.background.len(),
            running_background: q.running_background,
        }
    }

    /// Runs `f` in `lane` (the background lane waits up to a second for room).
    pub fn run<R: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, Busy> {
        match lane {
            Lane::Urgent => self.run_urgent(f),
            Lane::Live => self.try_run(f),
            Lane::Background => {
                let deadline = Instant::now() + Duration::from_secs(1);
                self.run_background(f, move || Instant::now() < deadline)
            }
        }
    }
}

fn job<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> (Job, oneshot::Receiver<R>) {
    let (reply, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // The requester may have gone away (client disconnected); nothing to do then.
        let _ = reply.send(f());
    });
    (job, rx)
}

/// A worker: the oldest urgent job, else the oldest live one, else a background one while the
/// background share is not used up or no live job came for [`LIVE_QUIET`].
fn work(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        let (job, background) = if let Some(j) = q.urgent.pop_front() {
            (j, false)
        } else if let Some(j) = q.live.pop_front() {
            shared.queued.set(q.live.len() as f64);
            (j, false)
        } else if q.background_allowed(shared.background_threads, shared.live_quiet, Instant::now())
            && let Some(j) = q.background.pop_front()
        {
            q.running_background += 1;
            shared.room.notify_one();
            (j, true)
        } else if q.closed {
            return;
        } else if !q.background.is_empty() {
            // Background work waits for the share or for the live lane to go quiet.
            q = shared
                .work
                .wait_timeout(q, shared.live_quiet)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        } else {
            q = shared.work.wait(q).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        drop(q);
        // A job that panics must not take its thread with it: the pool would shrink until
        // requests hang. Its requester sees the reply dropped (an internal error).
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %why, "a signing job panicked; the signing thread goes on");
        }
        q = shared.lock();
        if background {
            q.running_background -= 1;
            // A worker may be idle only because the share was used up.
            if !q.background.is_empty() {
                shared.work.notify_one();
            }
        }
    }
}

impl Drop for SigningPool {
    fn drop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.closed = true;
            // Queued jobs are dropped: their receivers see the sender gone.
            q.urgent.clear();
            q.live.clear();
            q.background.clear();
        }
        self.shared.work.notify_all();
        self.shared.room.notify_all();
        // The last owner may be a job of this pool (a pre-signing job holds the responder that
        // holds the pool): that worker ends by itself once its job returns.
        let me = std::thread::current().id();
        for w in self.workers.drain(..) {
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Occupies every thread of `pool` until the returned sender is dropped or sent to.
    fn hold_all(pool: &SigningPool, threads: usize) -> Vec<mpsc::Sender<()>> {
        hold(pool, Lane::Urgent, threads).0
    }

    /// Starts `n` jobs in `lane` that each hold a thread until their sender is dropped or sent
    /// to, and waits until all are running; with their reply receivers.
    fn hold(
        pool: &SigningPool,
        lane: Lane,
        n: usize,
    ) -> (Vec<mpsc::Sender<()>>, Vec<oneshot::Receiver<()>>) {
        let mut holds = Vec::new();
        let mut replies = Vec::new();
        let (started_tx, started) = mpsc::channel::<()>();
        for _ in 0..n {
            let (hold, wait) = mpsc::channel::<()>();
            let started_tx = started_tx.clone();
            replies.push(
                pool.run(lane, move || {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .expect("open"),
            );
            holds.push(hold);
        }
        for _ in 0..n {
            started
                .recv_timeout(Duration::from_secs(5))
                .expect("a worker started its held job");
        }
        (holds, replies)
    }

    #[test]
    fn refuses_when_saturated_and_recovers() {
        let pool = SigningPool::new(1, 1);
        let holds = hold_all(&pool, 1);
        let queued = pool.try_run(|| true).expect("one may wait");
        assert_eq!(
            pool.try_run(|| true).err(),
            Some(Busy),
            "a full queue refuses"
        );
        drop(holds);
        assert!(queued.blocking_recv().expect("ran"));
        assert!(pool.try_run(|| true).is_ok());
    }

    #[test]
    fn urgent_then_live_then_background() {
        let pool = SigningPool::with_share(1, 16, 1.0);
        let holds = hold_all(&pool, 1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let push = |tag: &'static str| {
            let order = Arc::clone(&order);
            move || order.lock().expect("not poisoned").push(tag)
        };
        let b = pool
            .run_background(push("background"), || false)
            .expect("room");
        let l = pool.try_run(push("live")).expect("room");
        let u = pool.run_urgent(push("urgent")).expect("open");
        drop(holds);
        for rx in [b, l, u] {
            rx.blocking_recv().expect("ran");
        }
        assert_eq!(
            *order.lock().expect("not poisoned"),
            ["urgent", "live", "background"]
        );
    }

    #[test]
    fn background_never_takes_more_than_its_share() {
        assert_eq!(background_threads(2, 0.5), 1);
        assert_eq!(background_threads(1, 0.5), 1);
        assert_eq!(background_threads(4, 0.25), 1);
        assert_eq!(background_threads(4, 1.0), 4);
        let pool = SigningPool::with_quiet(2, 16, 0.5, Duration::from_secs(3600));
        // Live work came (and will for the next hour, as far as the pool knows).
        assert_eq!(pool.try_run(|| 1).expect("room").blocking_recv(), Ok(1));
        // A background job that waits: the share (one thread) is used up.
        let (hold, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let first = pool
            .run_background(
                move || {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                },
                || false,
            )
            .expect("room");
        started.recv().expect("started");
        // A second background job waits although a thread is free…
        let second = pool.run_background(|| (), || false).expect("room");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            pool.depths().background,
            1,
            "the free thread is kept for live work"
        );
        assert_eq!(pool.depths().running_background, 1);
        // …which a live job gets at once.
        let live = pool.try_run(|| 7).expect("room");
        assert_eq!(live.blocking_recv().expect("ran"), 7);
        hold.send(()).expect("listening");
        first.blocking_recv().expect("ran");
        second.blocking_recv().expect("ran");
    }

    #[test]
    fn idle_threads_presign_until_live_work_comes() {
        let quiet = Duration::from_millis(500);
        let pool = SigningPool::with_quiet(2, 16, 0.5, quiet);
        // No live job yet: both threads take background jobs.
        let (mut releases, running) = hold(&pool, Lane::Background, 2);
        assert_eq!(pool.depths().running_background, 2);
        // A live job waits only for a background job to end, then the share applies again.
        let live = pool.try_run(|| 7).expect("room");
        let queued = pool.run_background(|| (), || false).expect("room");
        releases.remove(0).send(()).expect("listening");
        assert_eq!(live.blocking_recv(), Ok(7));
        assert_eq!(
            pool.depths().running_background,
            1,
            "right after a live job, the share holds"
        );
        // Quiet again: the queued job runs beside the one still held.
        queued
            .blocking_recv()
            .expect("ran once the live lane went quiet");
        drop(releases);
        for rx in running {
            rx.blocking_recv().expect("ran");
        }
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool = SigningPool::with_share(1, 4, 1.0);
        let panicked = pool
            .try_run(|| -> u8 { panic!("a job that fails badly") })
            .expect("room");
        assert!(panicked.blocking_recv().is_err(), "its reply is dropped");
        let after = pool.try_run(|| 7).expect("room");
        assert_eq!(after.blocking_recv(), Ok(7), "the only thread still works");
    }

    #[test]
    fn background_producer_waits_for_room() {
        let pool = SigningPool::with_share(1, 4, 1.0);
        let holds = hold_all(&pool, 1);
        let mut queued = Vec::new();
        for _ in 0..2 {
            queued.push(pool.run_background(|| (), || false).expect("room"));
        }
        assert_eq!(
            pool.run(Lane::Background, || ()).err(),
            Some(Busy),
            "the lane is full while the threads are busy"
        );
        drop(holds);
        for rx in queued {
            rx.blocking_recv().expect("ran");
        }
    }
}
