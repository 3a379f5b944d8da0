//! Recording what happened: per request kind, a latency histogram (HdrHistogram, microseconds,
//! 3 significant digits) and counts of answers that were right, wrong, errors or timeouts; per
//! second of the run, the same by kind for the timeline plots; and the revocation-to-visibility
//! histogram.
//!
//! Each connection records into its own [`Recorder`] (no shared writes on the hot path) and
//! merges its current second into the shared [`Shared`] timeline when the second changes, so the
//! live progress line and the plots see the whole load. [`Summary`] and friends are the JSON
//! result file's shape; [`crate::report`] renders them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded, microseconds (longer ones saturate).
const MAX_US: u64 = 120_000_000;

/// A request kind: what was asked, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// OCSP over POST, no nonce (cacheable).
    OcspPost,
    /// OCSP over GET, no nonce (cacheable).
    OcspGet,
    /// OCSP over POST with a nonce (signed afresh).
    OcspPostNonce,
    /// OCSP over GET with a nonce (signed afresh).
    OcspGetNonce,
    /// Full CRL download.
    CrlFull,
    /// Delta CRL download.
    CrlDelta,
    /// Full CRL, conditional GET (If-None-Match with the last ETag seen).
    CrlFullConditional,
    /// Delta CRL, conditional GET.
    CrlDeltaConditional,
    /// Issuance events (`POST /v1/certificates`).
    IngestIssue,
    /// Revocation events (`POST /v1/revocations`).
    IngestRevoke,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 10] = [
        Kind::OcspPost,
        Kind::OcspGet,
        Kind::OcspPostNonce,
        Kind::OcspGetNonce,
        Kind::CrlFull,
        Kind::CrlDelta,
        Kind::CrlFullConditional,
        Kind::CrlDeltaConditional,
        Kind::IngestIssue,
        Kind::IngestRevoke,
    ];

    /// Its name in scenario files and reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::OcspPost => "ocsp-post",
            Kind::OcspGet => "ocsp-get",
            Kind::OcspPostNonce => "ocsp-post-nonce",
            Kind::OcspGetNonce => "ocsp-get-nonce",
            Kind::CrlFull => "crl-full",
            Kind::CrlDelta => "crl-delta",
            Kind::CrlFullConditional => "crl-full-conditional",
            Kind::CrlDeltaConditional => "crl-delta-conditional",
            Kind::IngestIssue => "ingest-issue",
            Kind::IngestRevoke => "ingest-revoke",
        }
    }

    /// From its name.
    pub fn from_label(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.label() == s)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether it talks to the admin listener.
    pub fn is_ingest(self) -> bool {
        matches!(self, Kind::IngestIssue | Kind::IngestRevoke)
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Right answer.
    Ok,
    /// Wrong answer.
    Wrong,
    /// Error (no proper answer).
    Error,
    /// No answer within the timeout.
    Timeout,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("1 µs .. 120 s at 3 digits is a valid range")
}

/// Per-second histograms: 2 significant digits (1 %), 20 KiB instead of 150 KiB, so that
/// tens of connections can keep one per kind without the generator spending its time zeroing
/// memory.
fn small_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("1 µs .. 120 s at 2 digits is a valid range")
}

/// Counts and latencies of one kind.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// Latency from the intended send time (open loop) or the send time (closed loop), µs.
    pub latency: Histogram<u64>,
    /// Latency from the actual send time, µs (differs from `latency` in open loop only).
    pub service: Histogram<u64>,
    /// Right answers.
    pub ok: u64,
    /// Wrong answers.
    pub wrong: u64,
    /// Errors.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Response body bytes.
    pub bytes: u64,
}

impl KindStats {
    fn new() -> Self {
        KindStats {
            latency: histogram(),
            service: histogram(),
            ok: 0,
            wrong: 0,
            errors: 0,
            timeouts: 0,
            bytes: 0,
        }
    }

    fn requests(&self) -> u64 {
        self.ok + self.wrong + self.errors + self.timeouts
    }

    fn merge(&mut self, other: &KindStats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.ok += other.ok;
        self.wrong += other.wrong;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.bytes += other.bytes;
    }
}

/// One kind in one second: latency (µs, 2 digits) and counts.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Latency from the intended send time, µs.
    pub latency: Histogram<u64>,
    /// Right answers.
    pub ok: u64,
    /// Wrong answers.
    pub wrong: u64,
    /// Errors and timeouts.
    pub errors: u64,
}

impl Interval {
    fn new() -> Self {
        Interval {
            latency: small_histogram(),
            ok: 0,
            wrong: 0,
            errors: 0,
        }
    }

    fn requests(&self) -> u64 {
        self.ok + self.wrong + self.errors
    }

    fn merge(&mut self, other: &Interval) {
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.wrong += other.wrong;
        self.errors += other.errors;
    }

    fn reset(&mut self) {
        self.latency.reset();
        self.ok = 0;
        self.wrong = 0;
        self.errors = 0;
    }
}

/// One second of the timeline, all connections merged.
#[derive(Debug, Clone)]
pub struct Second {
    /// By kind index (`None` until something of that kind completes in this second).
    pub kinds: Vec<Option<Interval>>,
}

impl Second {
    fn new() -> Self {
        Second {
            kinds: vec![None; Kind::ALL.len()],
        }
    }
}

/// What all connections share: live counters and the timeline.
#[derive(Debug)]
pub struct Shared {
    /// When the run started.
    pub start: Instant,
    /// Completed requests (any outcome), for the progress line.
    pub done: AtomicU64,
    /// Wrong answers so far.
    pub wrong: AtomicU64,
    /// Errors and timeouts so far.
    pub errors: AtomicU64,
    /// OCSP signatures verified so far.
    pub verified: AtomicU64,
    /// Per second.
    pub timeline: Mutex<Vec<Second>>,
    /// Revocation-to-visibility, µs.
    pub visibility: Mutex<Visibility>,
}

/// Revocation-to-visibility measurements.
#[derive(Debug)]
pub struct Visibility {
    /// From the ingest acknowledgement to the first OCSP answer saying revoked, µs.
    pub latency: Histogram<u64>,
    /// OCSP answers still saying good after the acknowledgement.
    pub stale_answers: u64,
    /// Revocations never seen as revoked within the probe's time limit.
    pub not_visible: u64,
}

impl Shared {
    /// Starts the clock.
    pub fn new(start: Instant) -> Shared {
        Shared {
            start,
            done: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            timeline: Mutex::new(Vec::new()),
            visibility: Mutex::new(Visibility {
                latency: histogram(),
                stale_answers: 0,
                not_visible: 0,
            }),
        }
    }

    /// The merged stats of second `s` (all kinds), if any: (requests, p99 µs).
    pub fn second_summary(&self, s: usize) -> Option<(u64, u64)> {
        let t = self.timeline.lock().ok()?;
        let sec = t.get(s)?;
        let mut all = Interval::new();
        for k in sec.kinds.iter().flatten() {
            all.merge(k);
        }
        Some((all.requests(), all.latency.value_at_quantile(0.99)))
    }

    /// Records a visibility measurement (`None`: never became visible).
    pub fn record_visibility(&self, latency: Option<Duration>, stale: u64) {
        if let Ok(mut v) = self.visibility.lock() {
            v.stale_answers += stale;
            match latency {
                Some(d) => v.latency.saturating_record((d.as_micros() as u64).max(1)),
                None => v.not_visible += 1,
            }
        }
    }
}

/// One connection's recorder.
#[derive(Debug)]
pub struct Recorder {
    warmup_end: Instant,
    /// By kind, allocated on first use (a full histogram is ~150 KiB).
    totals: Vec<Option<KindStats>>,
    current_second: usize,
    /// This second's intervals, by kind; reused (reset) from second to second.
    current: Vec<Option<Interval>>,
    /// Error and wrong-answer messages with their counts.
    pub messages: BTreeMap<(String, String), u64>,
}

impl Recorder {
    /// A recorder that ignores (in its totals) what completes before `warmup_end`.
    pub fn new(warmup_end: Instant) -> Recorder {
        Recorder {
            warmup_end,
            totals: vec![None; Kind::ALL.len()],
            current_second: 0,
            current: vec![None; Kind::ALL.len()],
            messages: BTreeMap::new(),
        }
    }

    /// Records one request: `intended` is when it should have been sent, `sent` when it was,
    /// `done` when its answer was complete.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        shared: &Shared,
        kind: Kind,
        intended: Instant,
        sent: Instant,
        done: Instant,
        outcome: Outcome,
        bytes: usize,
    ) {
        let second = done.saturating_duration_since(shared.start).as_secs() as usize;
        if second != self.current_second {
            self.flush(shared);
            self.current_second = second;
        }
        let latency = (done.saturating_duration_since(intended).as_micros() as u64).max(1);
        let service = (done.saturating_duration_since(sent).as_micros() as u64).max(1);
        let i = self.current[kind.index()].get_or_insert_with(Interval::new);
        i.latency.saturating_record(latency);
        match outcome {
            Outcome::Ok => i.ok += 1,
            Outcome::Wrong => i.wrong += 1,
            Outcome::Error | Outcome::Timeout => i.errors += 1,
        }
        if done >= self.warmup_end {
            let s = self.totals[kind.index()].get_or_insert_with(KindStats::new);
            s.latency.saturating_record(latency);
            s.service.saturating_record(service);
            s.bytes += bytes as u64;
            match outcome {
                Outcome::Ok => s.ok += 1,
                Outcome::Wrong => s.wrong += 1,
                Outcome::Error => s.errors += 1,
                Outcome::Timeout => s.timeouts += 1,
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Wrong => {
                shared.wrong.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Error | Outcome::Timeout => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Ok => {}
        }
    }

    /// Remembers a message (the first 100 distinct ones are kept, all are counted).
    pub fn message(&mut self, class: &str, kind: Kind, text: &str) {
        let key = (class.to_owned(), format!("{}: {text}", kind.label()));
        if let Some(n) = self.messages.get_mut(&key) {
            *n += 1;
        } else if self.messages.len() < 100 {
            self.messages.insert(key, 1);
        }
    }

    /// Merges the current second into the shared timeline.
    pub fn flush(&mut self, shared: &Shared) {
        if self.current.iter().flatten().all(|c| c.requests() == 0) {
            return;
        }
        if let Ok(mut t) = shared.timeline.lock() {
            while t.len() <= self.current_second {
                t.push(Second::new());
            }
            let sec = &mut t[self.current_second];
            for (i, c) in self.current.iter_mut().enumerate() {
                if let Some(c) = c.as_mut().filter(|c| c.requests() > 0) {
                    sec.kinds[i].get_or_insert_with(Interval::new).merge(c);
                    c.reset();
                }
            }
        }
    }

    /// Adds another recorder's totals and messages into this one.
    pub fn absorb(&mut self, other: Recorder) {
        for (a, b) in self.totals.iter_mut().zip(other.totals) {
            match (a, b) {
                (Some(a), Some(b)) => a.merge(&b),
                (a @ None, b) => *a = b,
                (Some(_), None) => {}
            }
        }
        for (k, n) in other.messages {
            *self.messages.entry(k).or_insert(0) += n;
        }
    }

    /// The totals of the kinds that were used, with their kind.
    pub fn totals(&self) -> impl Iterator<Item = (Kind, &KindStats)> {
        self.totals
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (Kind::ALL[i], s)))
    }

    /// Requests completed after the warm-up, all kinds.
    pub fn requests(&self) -> u64 {
        self.totals().map(|(_, s)| s.requests()).sum()
    }
}

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// From a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The totals of one kind, for the result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindSummary {
    /// Kind label, or `all`.
    pub kind: String,
    /// Requests completed (any outcome) after the warm-up.
    pub requests: u64,
    /// Right answers.
    pub ok: u64,
    /// Wrong answers.
    pub wrong: u64,
    /// Errors.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Requests per second over the measured period.
    pub throughput: f64,
    /// Response body bytes per second.
    pub bytes_per_second: f64,
    /// Latency from the intended send time (this is the one to read).
    pub latency_ms: Latency,
    /// Latency from the actual send time (open loop: without the queueing delay).
    pub service_ms: Latency,
    /// (percentile, ms) points of the latency distribution, for plots.
    pub distribution: Vec<(f64, f64)>,
}

/// Percentiles at which the distribution is sampled: 0, 10 … 90, then 9s up to 99.999, and max.
fn distribution_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut ps: Vec<f64> = (0..10).map(|i| f64::from(i) * 10.0).collect();
    for k in 1..=25 {
        // 1 - 10^(-k/5): 36.9 %, 60.2 %, … 99.999 %; keep those above 90.
        let p = 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 5.0));
        if p > 90.0 {
            ps.push(p);
        }
    }
    for p in ps {
        out.push((p, h.value_at_quantile(p / 100.0) as f64 / 1000.0));
    }
    out.push((100.0, h.max() as f64 / 1000.0));
    out
}

impl KindSummary {
    /// From merged stats over `seconds` of measurement.
    pub fn of(label: &str, s: &KindStats, seconds: f64) -> KindSummary {
        let seconds = seconds.max(1e-9);
        KindSummary {
            kind: label.to_owned(),
            requests: s.requests(),
            ok: s.ok,
            wrong: s.wrong,
            errors: s.errors,
            timeouts: s.timeouts,
            throughput: s.requests() as f64 / seconds,
            bytes_per_second: s.bytes as f64 / seconds,
            latency_ms: Latency::of(&s.latency),
            service_ms: Latency::of(&s.service),
            distribution: distribution_points(&s.latency),
        }
    }
}

/// One kind in one second of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondKind {
    /// Kind label.
    pub kind: String,
    /// Requests completed in this second.
    pub requests: u64,
    /// Wrong answers.
    pub wrong: u64,
    /// Errors and timeouts.
    pub errors: u64,
    /// Latency, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Max, ms.
    pub max: f64,
}

/// One second of the timeline, for the result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondSummary {
    /// Seconds since the start of the run.
    pub t: u64,
    /// Whether this second is part of the warm-up.
    pub warmup: bool,
    /// By kind (only kinds that completed something).
    pub kinds: Vec<SecondKind>,
}

/// Summarises the shared timeline.
pub fn timeline(shared: &Shared, warmup: Duration) -> Vec<SecondSummary> {
    let Ok(t) = shared.timeline.lock() else {
        return Vec::new();
    };
    t.iter()
        .enumerate()
        .map(|(i, sec)| SecondSummary {
            t: i as u64,
            warmup: (i as u64) < warmup.as_secs(),
            kinds: sec
                .kinds
                .iter()
                .enumerate()
                .filter_map(|(k, s)| {
                    let s = s.as_ref()?;
                    let l = Latency::of(&s.latency);
                    Some(SecondKind {
                        kind: Kind::ALL[k].label().to_owned(),
                        requests: s.requests(),
                        wrong: s.wrong,
                        errors: s.errors,
                        p50: l.p50,
                        p90: l.p90,
                        p99: l.p99,
                        max: l.max,
                    })
                })
                .collect(),
        })
        .collect()
}

/// Summaries per kind (those used) and for all kinds together.
pub fn summaries(rec: &Recorder, seconds: f64) -> (KindSummary, Vec<KindSummary>) {
    let mut all = KindStats::new();
    let mut kinds = Vec::new();
    for (kind, s) in rec.totals() {
        if s.requests() == 0 {
            continue;
        }
        all.merge(s);
        kinds.push(KindSummary::of(kind.label(), s, seconds));
    }
    (KindSummary::of("all", &all, seconds), kinds)
}

/// The visibility histogram's summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisibilitySummary {
    /// Revocations measured.
    pub measured: u64,
    /// Revocations never seen as revoked within the probe limit.
    pub not_visible: u64,
    /// Answers still saying good after the acknowledgement.
    pub stale_answers: u64,
    /// From acknowledgement to the first answer saying revoked, ms.
    pub latency_ms: Latency,
    /// Distribution points.
    pub distribution: Vec<(f64, f64)>,
}

/// Summarises visibility, `None` when nothing was measured.
pub fn visibility(shared: &Shared) -> Option<VisibilitySummary> {
    let v = shared.visibility.lock().ok()?;
    if v.latency.is_empty() && v.not_visible == 0 {
        return None;
    }
    Some(VisibilitySummary {
        measured: v.latency.len(),
        not_visible: v.not_visible,
        stale_answers: v.stale_answers,
        latency_ms: Latency::of(&v.latency),
        distribution: distribution_points(&v.latency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_totals_after_warmup_and_timeline_always() {
        let start = Instant::now();
        let shared = Shared::new(start);
        let mut r = Recorder::new(start + Duration::from_millis(500));
        let t0 = start + Duration::from_millis(100);
        r.record(
            &shared,
            Kind::OcspGet,
            t0,
            t0,
            t0 + Duration::from_millis(2),
            Outcome::Ok,
            10,
        );
        let t1 = start + Duration::from_millis(1200);
        r.record(
            &shared,
            Kind::OcspGet,
            t1 - Duration::from_millis(5),
            t1,
            t1 + Duration::from_millis(3),
            Outcome::Wrong,
            10,
        );
        r.message(
            "wrong",
            Kind::OcspGet,
            "status good where revoked was expected",
        );
        r.flush(&shared);
        let (all, kinds) = summaries(&r, 1.0);
        assert_eq!(all.requests, 1);
        assert_eq!(kinds[0].wrong, 1);
        // Latency counts from the intended time: 8 ms, service 3 ms.
        assert!((kinds[0].latency_ms.max - 8.0).abs() < 0.1);
        assert!((kinds[0].service_ms.max - 3.0).abs() < 0.1);
        let tl = timeline(&shared, Duration::from_secs(1));
        assert_eq!(tl.len(), 2);
        assert!(tl[0].warmup && !tl[1].warmup);
        assert_eq!(tl[0].kinds[0].requests, 1);
        assert_eq!(shared.wrong.load(Ordering::Relaxed), 1);
        assert_eq!(r.messages.len(), 1);
        assert!(!kinds[0].distribution.is_empty());
    }
}
