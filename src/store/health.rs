//! Whether the store can write right now, and why not.
//!
//! A full disk or a file system turned read-only makes RocksDB refuse writes: the first failed
//! write puts the database in a background-error state where every write is refused while
//! reads go on. For a full disk (ENOSPC) RocksDB's own `SstFileManager` polls the free space and
//! resumes the database by itself once there is room again (a memtable's worth of it); a file
//! system turned read-only (EROFS, after the kernel found an I/O error) is fatal to the open
//! database: writes come back only with a restart, once the file system is repaired.
//!
//! This module does not decide anything: it remembers the last write failure ([`Health`]) so
//! that `/readyz` can say why ingest answers 503, and it forgets it at the next successful
//! write. When nothing else writes, [`crate::store::Store::writable`] tries a small synced probe
//! write at most once a second, so readiness comes back on its own when RocksDB has resumed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::model::UnixTime;

/// How often a store that failed a write is probed again.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why the store cannot write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritable {
    /// The error of the last failed write, as RocksDB or the system said it.
    pub reason: String,
    /// When writes started failing (the first failure of this run of failures).
    pub since: UnixTime,
}

#[derive(Debug, Default)]
struct State {
    problem: Option<Unwritable>,
    last_probe: Option<Instant>,
}

/// The store's write health: the last failure, until a write succeeds.
#[derive(Debug, Default)]
pub struct Health {
    failing: AtomicBool,
    state: Mutex<State>,
}

impl Health {
    /// A write failed with `reason` at `now`.
    pub fn failed(&self, reason: String, now: UnixTime) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let since = s.problem.as_ref().map_or(now, |p| p.since);
        if s.problem.is_none() {
            tracing::error!(%reason, "the store refuses writes: ingest answers 503 until it can write again");
        }
        s.problem = Some(Unwritable { reason, since });
        self.failing.store(true, Ordering::Release);
    }

    /// A write succeeded: the store writes again.
    pub fn succeeded(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = s.problem.take() {
            tracing::info!(since = %p.since, "the store writes again");
        }
        self.failing.store(false, Ordering::Release);
    }

    /// The current problem, if any.
    pub fn problem(&self) -> Option<Unwritable> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .problem
            .clone()
    }

    /// Whether a probe write is due: the store is failing and was not probed within
    /// [`PROBE_EVERY`]. Claims the probe (the caller makes it).
    pub fn probe_due(&self, at: Instant) -> bool {
        if !self.failing.load(Ordering::Acquire) {
            return false;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.last_probe
            .is_some_and(|t| at.duration_since(t) < PROBE_EVERY)
        {
            return false;
        }
        s.last_probe = Some(at);
        true
    }
}

/// `/readyz`'s `store` member: `{"writable": …, "problem": …, "since": …}`. Probes the store
/// when a write failed ([`crate::store::Store::writable`]).
pub fn readiness(store: &crate::store::Store) -> serde_json::Value {
    match store.writable() {
        Ok(()) => serde_json::json!({"writable": true, "problem": null, "since": null}),
        Err(p) => serde_json::json!({
            "writable": false,
            "problem": p.reason,
            "since": p.since.to_rfc3339(),
        }),
    }
}

/// Whether a RocksDB error means the store cannot write for a reason outside vigie (the
/// disk, the file system), rather than a bug or corruption: I/O errors (ENOSPC, EROFS, EIO…)
/// and the refusals of a database stopped by such an error.
pub fn is_io(e: &rocksdb::Error) -> bool {
    use rocksdb::ErrorKind as K;
    matches!(e.kind(), K::IOError | K::Busy | K::TryAgain)
        || e.as_ref().contains("No space left")
        || e.as_ref().contains("Read-only file system")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_remembered_until_a_write_succeeds() {
        let h = Health::default();
        assert_eq!(h.problem(), None);
        assert!(!h.probe_due(Instant::now()));
        h.failed("IO error: No space left on device".into(), UnixTime(100));
        h.failed(
            "IO error: No space left on device (again)".into(),
            UnixTime(105),
        );
        let p = h.problem().expect("failing");
        assert_eq!(p.since, UnixTime(100), "since the first failure");
        assert!(p.reason.contains("again"), "the last reason");
        let t = Instant::now();
        assert!(h.probe_due(t));
        assert!(!h.probe_due(t), "one probe per second");
        assert!(h.probe_due(t + PROBE_EVERY));
        h.succeeded();
        assert_eq!(h.problem(), None);
        assert!(!h.probe_due(t + 10 * PROBE_EVERY));
    }
}
