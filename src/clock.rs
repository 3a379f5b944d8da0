//! The clock, injected: everything that stamps a time (thisUpdate, nextUpdate, producedAt, CRL
//! schedules, event times) asks a [`Clock`], so tests can fix or move time without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::model::UnixTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, to the second.
    fn now(&self) -> UnixTime;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixTime(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A clock that stays where it is put: for tests and golden files.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock reading `t`.
    pub fn new(t: UnixTime) -> FixedClock {
        FixedClock(AtomicI64::new(t.0))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

/// The environment variable naming a [`FileOffsetClock`]'s file (`vigie serve` only). For
/// tests of the running binary under clock jumps; unset in service.
pub const TEST_CLOCK_OFFSET_FILE: &str = "VIGIE_TEST_CLOCK_OFFSET_FILE";

/// The wall clock moved by an offset read from a file: a signed number of seconds, re-read at
/// most every 50 ms (a missing or unreadable file counts as 0). Lets an integration test move
/// the time of a running `vigie serve` — an hour back, a day forward — the way an NTP step or
/// an operator would, without touching the machine's clock. Chosen by
/// [`TEST_CLOCK_OFFSET_FILE`]; never used otherwise.
#[derive(Debug)]
pub struct FileOffsetClock {
    path: std::path::PathBuf,
    cached: std::sync::Mutex<(Option<std::time::Instant>, i64)>,
}

impl FileOffsetClock {
    /// A clock offset by what `path` says.
    pub fn new(path: std::path::PathBuf) -> FileOffsetClock {
        FileOffsetClock {
            path,
            cached: std::sync::Mutex::new((None, 0)),
        }
    }

    fn offset(&self) -> i64 {
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let fresh =
            c.0.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(50));
        if !fresh {
            let read = std::fs::read_to_string(&self.path).unwrap_or_default();
            *c = (
                Some(std::time::Instant::now()),
                read.trim().parse().unwrap_or(0),
            );
        }
        c.1
    }
}

impl Clock for FileOffsetClock {
    fn now(&self) -> UnixTime {
        UnixTime(SystemClock.now().0.saturating_add(self.offset()))
    }
}

/// The clock `vigie serve` runs on: the system's, or a [`FileOffsetClock`] when
/// [`TEST_CLOCK_OFFSET_FILE`] is set.
pub fn service_clock() -> SharedClock {
    match std::env::var_os(TEST_CLOCK_OFFSET_FILE) {
        Some(path) => {
            tracing::warn!(
                file = %std::path::Path::new(&path).display(),
                "{TEST_CLOCK_OFFSET_FILE} is set: the clock is offset by that file (tests only)"
            );
            Arc::new(FileOffsetClock::new(path.into()))
        }
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_offset_clock_follows_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offset");
        let clock = FileOffsetClock::new(path.clone());
        let base = SystemClock.now().0;
        assert!((clock.now().0 - base).abs() <= 1, "no file: no offset");
        std::fs::write(&path, "-3600\n").expect("write");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!((clock.now().0 - (base - 3600)).abs() <= 2);
        std::fs::write(&path, "86400").expect("write");
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!((clock.now().0 - (base + 86400)).abs() <= 2);
    }
}
