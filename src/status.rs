//! The operator's view, gathered: what `/status` shows, as plain data. Per CA, the published
//! CRLs (numbers, times, time left before nextUpdate against the safety margin, entries, build
//! time), the OCSP signer and the last events of the store's log; for the whole service, OCSP
//! answers per second by status over the last hour, the response cache's hit ratio and the
//! ingest rate.
//!
//! Rates come from [`History`]: a ring of per-minute snapshots of the service's own Prometheus
//! counters (read from the recorder's text, so nothing is added to the OCSP hot path), sampled
//! by a background thread. Rendering is [`crate::http::status`]'s business; this module knows
//! nothing of HTTP or HTML.
//!
//! Replication lag and publication sink queues have their place in [`Overview`]
//! ([`Overview::replication`], [`Overview::sinks`]): empty until those subsystems exist and
//! report here.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::crl::{CrlKind, PublishedCrl, Publisher};
use crate::model::{EventKind, UnixTime};
use crate::ocsp::Responder;
use crate::store::Store;

/// Events shown per CA.
pub const LAST_EVENTS: usize = 8;
/// Snapshots kept: one an hour of minutes, plus the one the first minute is measured from.
pub const HISTORY_MINUTES: usize = 61;

/// Why the overview could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed while reading events.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// The CRL publisher does not know a CA the registry has.
    #[error(transparent)]
    Crl(#[from] crate::crl::Error),
}

/// Everything `/status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// When it was gathered.
    pub generated_at: UnixTime,
    /// One entry per configured CA, in configuration order.
    pub cas: Vec<CaOverview>,
    /// OCSP answers and cache.
    pub ocsp: OcspOverview,
    /// Ingest rate.
    pub ingest: IngestOverview,
    /// Replication (writer position, replica lag), when configured: `None` until replication
    /// reports here.
    pub replication: Option<Vec<(String, String)>>,
    /// Publication sinks and their queue lengths, when configured: empty until sinks report here.
    pub sinks: Vec<SinkOverview>,
}

/// A publication sink's queue, as a sink would report it.
#[derive(Debug, Clone, Serialize)]
pub struct SinkOverview {
    /// Sink name (e.g. `ldap`).
    pub name: String,
    /// Items waiting.
    pub queued: u64,
    /// Last error, if any.
    pub last_error: Option<String>,
}

/// One CA.
#[derive(Debug, Clone, Serialize)]
pub struct CaOverview {
    /// The CA id.
    pub id: String,
    /// The CA's subject, one line.
    pub subject: String,
    /// The current complete CRL.
    pub full: Option<CrlOverview>,
    /// The current delta CRL.
    pub delta: Option<CrlOverview>,
    /// Whether the CA publishes delta CRLs.
    pub has_deltas: bool,
    /// The delegated OCSP signer's subject.
    pub ocsp_signer_subject: String,
    /// Its notAfter.
    pub ocsp_signer_not_after: UnixTime,
    /// Whole days left before it expires (negative once expired).
    pub ocsp_signer_days_left: i64,
    /// The latest events of the CA's log, newest first.
    pub last_events: Vec<EventLine>,
    /// Sequence number of the last event.
    pub last_seq: u64,
}

/// One published CRL.
#[derive(Debug, Clone, Serialize)]
pub struct CrlOverview {
    /// CRLNumber.
    pub number: u64,
    /// BaseCRLNumber of a delta.
    pub base: Option<u64>,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// Seconds left before nextUpdate (negative once past).
    pub seconds_left: i64,
    /// The safety margin that applies to it, seconds: the publisher rebuilds within it.
    pub safety_margin: i64,
    /// Freshness: `ok`, `margin` (within the safety margin: a rebuild is due) or `expired`.
    pub freshness: Freshness,
    /// Entries listed.
    pub entries: u64,
    /// Size, octets.
    pub bytes: u64,
    /// Seconds the last build took (read, encode, sign, store); unknown for a CRL loaded from
    /// the store at start-up.
    pub build_seconds: Option<f64>,
}

/// How close a CRL is to its nextUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// More than the safety margin left.
    Ok,
    /// Within the safety margin: the publisher should already be rebuilding it.
    Margin,
    /// Past nextUpdate: not served.
    Expired,
}

/// One event of a CA's log.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    /// Sequence number.
    pub seq: u64,
    /// When vigie accepted it.
    pub recorded_at: UnixTime,
    /// Serial, hexadecimal.
    pub serial: String,
    /// `issued`, `revoked` or `released`.
    pub kind: &'static str,
    /// The reason of a revocation, if any.
    pub detail: String,
}

/// OCSP over the last hour.
#[derive(Debug, Clone, Serialize, Default)]
pub struct OcspOverview {
    /// Answer statuses seen, in a stable order (good, revoked, unknown first).
    pub statuses: Vec<String>,
    /// Points of the chart: (end of the interval, answers per second by status, same order as
    /// `statuses`), oldest first.
    pub rates: Vec<(UnixTime, Vec<f64>)>,
    /// Answers since start, by status.
    pub totals: BTreeMap<String, u64>,
    /// hit / (hit + miss) of the response cache since start, if anything was looked up.
    pub cache_hit_ratio: Option<f64>,
    /// The same over the window the chart covers.
    pub cache_hit_ratio_window: Option<f64>,
}

/// Ingest over the last minutes.
#[derive(Debug, Clone, Serialize, Default)]
pub struct IngestOverview {
    /// Events per minute over the last full minute (or what there is of it).
    pub events_per_minute: f64,
    /// Events per minute over the chart's window.
    pub events_per_minute_window: f64,
    /// Events since start (applied and unchanged).
    pub total: u64,
}

/// The counters `/status` follows, read from the metrics text at one time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// When it was taken.
    pub at: UnixTime,
    /// `vigie_ocsp_responses_total` summed over methods, by status.
    pub ocsp_by_status: BTreeMap<String, f64>,
    /// `vigie_ocsp_cache_total{result="hit"}`.
    pub cache_hit: f64,
    /// `vigie_ocsp_cache_total{result="miss"}`.
    pub cache_miss: f64,
    /// `vigie_ingest_events_total`, summed.
    pub ingest_events: f64,
}

impl Snapshot {
    /// Reads the counters from Prometheus text exposition.
    pub fn from_exposition(text: &str, at: UnixTime) -> Snapshot {
        let mut s = Snapshot {
            at,
            ..Snapshot::default()
        };
        for sample in parse_exposition(text) {
            match sample.name {
                crate::metrics::OCSP_RESPONSES => {
                    if let Some(status) = sample.label("status") {
                        *s.ocsp_by_status.entry(status.to_owned()).or_default() += sample.value;
                    }
                }
                crate::metrics::OCSP_CACHE => match sample.label("result") {
                    Some("hit") => s.cache_hit += sample.value,
                    Some("miss") => s.cache_miss += sample.value,
                    _ => {}
                },
                crate::metrics::INGEST_EVENTS => s.ingest_events += sample.value,
                _ => {}
            }
        }
        s
    }
}

/// One sample line of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name as exposed (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: &'a str,
    /// Labels, in order.
    pub labels: Vec<(&'a str, String)>,
    /// Value.
    pub value: f64,
}

impl Sample<'_> {
    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the sample lines of Prometheus text exposition format 0.0.4 (comments skipped,
/// escaped label values `\\`, `\"`, `\n` decoded; lines that do not parse are skipped).
pub fn parse_exposition(text: &str) -> Vec<Sample<'_>> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            let (start, c) = *chars.peek()?;
            if c == '}' {
                end = start + 1;
                break;
            }
            let eq = inner[start..].find('=')? + start;
            let label = inner[start..eq].trim();
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, '"') => break,
                    (_, c) => value.push(c),
                }
            }
            labels.push((label, value));
        }
        rest = &inner[end..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Per-minute snapshots of the counters, the last [`HISTORY_MINUTES`]: fed by
/// [`History::sample`] (a background thread, [`History::start`]), read by [`gather`].
pub struct History {
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    clock: SharedClock,
    ring: Mutex<VecDeque<Snapshot>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

/// Stops the sampling thread when dropped.
#[derive(Debug)]
pub struct Sampler {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl History {
    /// An empty history over these metrics (takes its first snapshot now).
    pub fn new(
        metrics: metrics_exporter_prometheus::PrometheusHandle,
        clock: SharedClock,
    ) -> History {
        let h = History {
            metrics,
            clock,
            ring: Mutex::new(VecDeque::with_capacity(HISTORY_MINUTES + 1)),
        };
        h.sample();
        h
    }

    /// Starts a thread that calls [`History::sample`] every `every` until the [`Sampler`] is
    /// dropped.
    pub fn start(self: &Arc<Self>, every: Duration) -> Sampler {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let me = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("vigie-status".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = rx.recv_timeout(every)
                {
                    me.sample();
                }
            })
            .ok();
        Sampler {
            stop: Some(tx),
            thread,
        }
    }

    /// The counters now.
    pub fn now(&self) -> Snapshot {
        Snapshot::from_exposition(&self.metrics.render(), self.clock.now())
    }

    /// Keeps a snapshot when the last kept one is a minute old or more.
    pub fn sample(&self) {
        let s = self.now();
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.back().is_none_or(|last| s.at.0 - last.at.0 >= 60) {
            ring.push_back(s);
            while ring.len() > HISTORY_MINUTES {
                ring.pop_front();
            }
        }
    }

    /// The kept snapshots followed by one taken now.
    pub fn series(&self) -> Vec<Snapshot> {
        let mut out: Vec<Snapshot> = self
            .ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let now = self.now();
        if out.last().is_none_or(|l| now.at.0 > l.at.0 || now != *l) {
            out.push(now);
        }
        out
    }
}

/// Rates and ratios over a series of snapshots (oldest first).
pub fn rates(series: &[Snapshot]) -> (OcspOverview, IngestOverview) {
    let mut ocsp = OcspOverview::default();
    let mut ingest = IngestOverview::default();
    let Some(last) = series.last() else {
        return (ocsp, ingest);
    };
    let mut statuses: Vec<String> = ["good", "revoked", "unknown"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for s in series {
        for k in s.ocsp_by_status.keys() {
            if !statuses.contains(k) {
                statuses.push(k.clone());
            }
        }
    }
    for pair in series.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let secs = (b.at.0 - a.at.0).max(1) as f64;
        let by_status = statuses
            .iter()
            .map(|st| {
                let d = b.ocsp_by_status.get(st).copied().unwrap_or(0.0)
                    - a.ocsp_by_status.get(st).copied().unwrap_or(0.0);
                (d / secs).max(0.0)
            })
            .collect();
        ocsp.rates.push((b.at, by_status));
    }
    ocsp.statuses = statuses;
    ocsp.totals = last
        .ocsp_by_status
        .iter()
        .map(|(k, v)| (k.clone(), *v as u64))
        .collect();
    let ratio = |hit: f64, miss: f64| (hit + miss > 0.0).then(|| hit / (hit + miss));
    ocsp.cache_hit_ratio = ratio(last.cache_hit, last.cache_miss);
    if let Some(first) = series.first() {
        ocsp.cache_hit_ratio_window = ratio(
            last.cache_hit - first.cache_hit,
            last.cache_miss - first.cache_miss,
        );
        let secs = (last.at.0 - first.at.0).max(1) as f64;
        ingest.events_per_minute_window = (last.ingest_events - first.ingest_events) * 60.0 / secs;
    }
    // The last minute: from the newest snapshot at least a minute old (or the oldest there is).
    let base = series
        .iter()
        .rev()
        .find(|s| last.at.0 - s.at.0 >= 60)
        .or(series.first());
    if let Some(base) = base {
        let secs = (last.at.0 - base.at.0).max(60) as f64;
        ingest.events_per_minute = (last.ingest_events - base.ingest_events) * 60.0 / secs;
    }
    ingest.total = last.ingest_events as u64;
    (ocsp, ingest)
}

fn crl_overview(p: &PublishedCrl, now: UnixTime, margin: i64) -> CrlOverview {
    let r = &p.record;
    let seconds_left = r.next_update.0 - now.0;
    CrlOverview {
        number: r.number,
        base: r.base,
        this_update: r.this_update,
        next_update: r.next_update,
        seconds_left,
        safety_margin: margin,
        freshness: if seconds_left <= 0 {
            Freshness::Expired
        } else if seconds_left < margin {
            Freshness::Margin
        } else {
            Freshness::Ok
        },
        entries: r.entries,
        bytes: r.bytes,
        build_seconds: p
            .timings
            .map(|t| (t.encode + t.sign + t.store).as_secs_f64()),
    }
}

fn event_line(e: crate::model::Event) -> EventLine {
    let (kind, detail) = match &e.kind {
        EventKind::Issued(i) => ("issued", i.profile.clone().unwrap_or_default()),
        EventKind::Revoked(r) => (
            "revoked",
            r.reason.map(|r| r.name().to_owned()).unwrap_or_default(),
        ),
        EventKind::Released { .. } => ("released", String::new()),
    };
    EventLine {
        seq: e.seq,
        recorded_at: e.recorded_at,
        serial: e.serial.to_hex(),
        kind,
        detail,
    }
}

/// Gathers the overview.
pub fn gather(
    responder: &Responder,
    publisher: &Publisher,
    store: &Store,
    history: &History,
    now: UnixTime,
) -> Result<Overview, Error> {
    let mut cas = Vec::new();
    for ca in responder.registry().iter() {
        let current = publisher.current(ca.id.as_str())?;
        let policy = publisher.policy(ca.id.as_str())?;
        let last_seq = store.last_seq(&ca.id)?;
        let mut last_events: Vec<EventLine> = store
            .events_after(&ca.id, last_seq.saturating_sub(LAST_EVENTS as u64))
            .filter_map(Result::ok)
            .map(event_line)
            .collect();
        last_events.reverse();
        let signer = ca.signer_at(now);
        let signer_subject = openssl::x509::X509::from_der(&signer.cert_der)
            .map(|c| crate::pki::one_line_name(c.subject_name()))
            .unwrap_or_default();
        cas.push(CaOverview {
            id: ca.id.to_string(),
            subject: ca.subject.clone(),
            full: current
                .full
                .as_deref()
                .map(|p| crl_overview(p, now, publisher.safety_margin(policy.validity))),
            delta: current
                .delta
                .as_deref()
                .map(|p| crl_overview(p, now, publisher.safety_margin(policy.delta_validity))),
            has_deltas: policy.delta_schedule.is_some(),
            ocsp_signer_subject: signer_subject,
            ocsp_signer_not_after: signer.not_after,
            ocsp_signer_days_left: (signer.not_after.0 - now.0).div_euclid(86_400),
            last_events,
            last_seq,
        });
    }
    let (ocsp, ingest) = rates(&history.series());
    Ok(Overview {
        generated_at: now,
        cas,
        ocsp,
        ingest,
        replication: None,
        sinks: Vec::new(),
    })
}

/// Sets the gauges the alerts need that only change with the configuration: each CA's OCSP
/// signer notAfter, and each CA's safety margin by CRL kind (`VigieCrlStale` compares
/// nextUpdate with it). Also makes the CRL build failure counters exist at zero, so that a
/// `rate()` over them has a series before the first failure.
pub fn export_static_gauges(responder: &Responder, publisher: &Publisher) {
    for ca in responder.registry().iter() {
        let id = ca.id.to_string();
        // The signer that will be in charge last: the next one when a rollover is set.
        let last = ca.next_ocsp.as_ref().map_or(&ca.ocsp, |n| &n.signer);
        metrics::gauge!(crate::metrics::OCSP_SIGNER_NOT_AFTER, "ca" => id.clone())
            .set(last.not_after.0 as f64);
        let Ok(policy) = publisher.policy(ca.id.as_str()) else {
            continue;
        };
        let mut kinds = vec![(CrlKind::Full, policy.validity)];
        if policy.delta_schedule.is_some() {
            kinds.push((CrlKind::Delta, policy.delta_validity));
        }
        for (kind, validity) in kinds {
            let labels = [("ca", id.clone()), ("kind", kind.label().to_owned())];
            metrics::gauge!(crate::metrics::CRL_SAFETY_MARGIN, &labels)
                .set(publisher.safety_margin(validity) as f64);
            metrics::counter!(crate::metrics::CRL_BUILD_FAILURES, &labels).increment(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition_lines() {
        let text = "# HELP x y\n# TYPE vigie_a counter\nvigie_a{status=\"good\",method=\"GET\"} 12\nvigie_b 3.5\nvigie_c_bucket{le=\"+Inf\"} 7\nvigie_d{x=\"a\\\"b,c}\"} 1\n";
        let s = parse_exposition(text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].name, "vigie_a");
        assert_eq!(s[0].label("status"), Some("good"));
        assert_eq!(s[0].label("method"), Some("GET"));
        assert_eq!(s[0].value, 12.0);
        assert_eq!(s[1].name, "vigie_b");
        assert!(s[1].labels.is_empty());
        assert_eq!(s[2].value, 7.0);
        assert_eq!(s[3].label("x"), Some("a\"b,c}"));
    }

    fn snap(at: i64, good: f64, revoked: f64, hit: f64, miss: f64, ingest: f64) -> Snapshot {
        Snapshot {
            at: UnixTime(at),
            ocsp_by_status: [("good".to_owned(), good), ("revoked".to_owned(), revoked)]
                .into_iter()
                .collect(),
            cache_hit: hit,
            cache_miss: miss,
            ingest_events: ingest,
        }
    }

    #[test]
    fn rates_per_second_and_per_minute() {
        let series = [
            snap(0, 0.0, 0.0, 0.0, 0.0, 0.0),
            snap(60, 120.0, 60.0, 90.0, 30.0, 10.0),
            snap(90, 150.0, 60.0, 100.0, 40.0, 40.0),
        ];
        let (ocsp, ingest) = rates(&series);
        assert_eq!(
            ocsp.statuses[..2],
            ["good".to_owned(), "revoked".to_owned()]
        );
        assert_eq!(ocsp.rates.len(), 2);
        assert_eq!(ocsp.rates[0].0, UnixTime(60));
        assert_eq!(ocsp.rates[0].1[0], 2.0);
        assert_eq!(ocsp.rates[0].1[1], 1.0);
        assert_eq!(ocsp.rates[1].1[0], 1.0);
        assert_eq!(ocsp.totals["good"], 150);
        assert_eq!(ocsp.cache_hit_ratio, Some(100.0 / 140.0));
        // Last minute: from the snapshot at 0 (90 s before), 40 events → 26.7/min.
        assert!((ingest.events_per_minute - 40.0 * 60.0 / 90.0).abs() < 1e-9);
        assert_eq!(ingest.total, 40);
    }

    #[test]
    fn no_lookups_no_ratio() {
        let (ocsp, _) = rates(&[snap(0, 0.0, 0.0, 0.0, 0.0, 0.0)]);
        assert_eq!(ocsp.cache_hit_ratio, None);
        assert!(ocsp.rates.is_empty());
    }
}
