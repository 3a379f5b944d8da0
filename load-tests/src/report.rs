//! The result of a run and its three renderings: the JSON file (the record, [`RunResult`]),
//! the terminal summary table, and a self-contained HTML report with inline SVG plots
//! (throughput over time, latency percentiles over time, latency distribution) that reads
//! offline — no script, no external resource. The HTML is built from the JSON alone, so
//! `vigie-load report result.json` can redo it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::machine::{Machine, Usage};
use crate::scenario::Scenario;
use crate::stats::{KindSummary, SecondSummary, VisibilitySummary};

/// What the population was.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PopulationInfo {
    /// Where it came from.
    pub source: String,
    /// Certificates.
    pub entries: usize,
    /// Expected good at the start.
    pub good: usize,
    /// Expected revoked at the start.
    pub revoked: usize,
}

/// Ingest side effects of a run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct IngestInfo {
    /// Certificates registered.
    pub registered: u64,
    /// Certificates issued during the run (the pre-issued pool ran dry).
    pub issued_on_the_fly: u64,
    /// Revocations whose outcome is unknown (timeouts, 5xx): both answers were accepted.
    pub uncertain_revocations: u64,
}

/// A message seen during the run, with its count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `wrong`, `error` or `timeout`.
    pub class: String,
    /// `kind: text`.
    pub text: String,
    /// How many times.
    pub count: u64,
}

/// A run, as recorded in `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `vigie-load <version>`.
    pub tool: String,
    /// Label of the run.
    pub label: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// The command line.
    pub command: String,
    /// Load model in words.
    pub model: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Target URLs.
    pub targets: BTreeMap<String, String>,
    /// The population.
    pub population: PopulationInfo,
    /// The machine.
    pub machine: Machine,
    /// Commit of the source tree the tool was run from, if known.
    pub commit: Option<String>,
    /// Measured seconds (after warm-up).
    pub measured_seconds: f64,
    /// Warm-up seconds.
    pub warmup_seconds: f64,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// The generator's own cost.
    pub generator: Usage,
    /// The server's cost, when its process could be found.
    pub server: Option<Usage>,
    /// All kinds together.
    pub totals: KindSummary,
    /// Per kind.
    pub kinds: Vec<KindSummary>,
    /// Revocation-to-visibility.
    pub visibility: Option<VisibilitySummary>,
    /// OCSP signatures verified with openssl.
    pub signatures_verified: u64,
    /// Ingest side effects.
    pub ingest: Option<IngestInfo>,
    /// Wrong answers and errors, by message.
    pub messages: Vec<Message>,
    /// Per second.
    pub timeline: Vec<SecondSummary>,
    /// The server's own metrics once a second (pre-signing backlog, signatures for requests),
    /// when its admin listener answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_metrics: Vec<crate::server_metrics::ServerSample>,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The terminal summary.
pub fn terminal(r: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} — {} — {:.1} s measured{}",
        r.label,
        r.model,
        r.measured_seconds,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>9} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "kind",
        "requests",
        "req/s",
        "wrong",
        "errors",
        "timeouts",
        "p50 ms",
        "p90",
        "p99",
        "p99.9",
        "max"
    );
    let mut rows: Vec<&KindSummary> = r.kinds.iter().collect();
    if r.kinds.len() > 1 {
        rows.push(&r.totals);
    }
    for k in rows {
        let l = &k.latency_ms;
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>9.0} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7}",
            k.kind,
            k.requests,
            k.throughput,
            k.wrong,
            k.errors,
            k.timeouts,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        );
    }
    if let Some(v) = &r.visibility {
        let _ = writeln!(
            out,
            "revocation→visibility: {} measured, p50 {} ms, p99 {} ms, max {} ms; {} not visible, {} stale answers",
            v.measured,
            ms(v.latency_ms.p50),
            ms(v.latency_ms.p99),
            ms(v.latency_ms.max),
            v.not_visible,
            v.stale_answers
        );
    }
    let _ = writeln!(
        out,
        "generator: {:.0}% of a core, {:.1} µs CPU/request; {} signatures verified",
        r.generator.cpu_percent, r.generator.cpu_us_per_request, r.signatures_verified
    );
    if let Some(s) = &r.server {
        let _ = writeln!(
            out,
            "server (pid {:?}): {:.0}% of a core, {:.1} µs CPU/request, max RSS {:.0} MiB",
            s.pids, s.cpu_percent, s.cpu_us_per_request, s.rss_max_mib
        );
    }
    if let Some(i) = &r.ingest {
        let _ = writeln!(
            out,
            "ingest: {} registered, {} issued during the run, {} revocations of unknown outcome",
            i.registered, i.issued_on_the_fly, i.uncertain_revocations
        );
    }
    for m in r.messages.iter().take(12) {
        let _ = writeln!(out, "  {:>8} × {}: {}", m.count, m.class, m.text);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line of a chart.
struct Series {
    name: String,
    color: &'static str,
    dash: bool,
    points: Vec<(f64, f64)>,
}

/// An axis: range and ticks (value, label).
struct Axis {
    min: f64,
    max: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
    label: String,
}

impl Axis {
    fn linear(min: f64, max: f64, label: &str, fmt: impl Fn(f64) -> String) -> Axis {
        let max = if max > min { max } else { min + 1.0 };
        let raw = (max - min) / 6.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(mag * 10.0);
        let mut ticks = Vec::new();
        let mut t = (min / step).ceil() * step;
        while t <= max + step * 1e-9 {
            ticks.push((t, fmt(t)));
            t += step;
        }
        let max = (max / step).ceil() * step;
        Axis {
            min,
            max,
            log: false,
            ticks,
            label: label.to_owned(),
        }
    }

    /// Latency axis in ms, log scale over decades.
    fn log_ms(min: f64, max: f64, label: &str) -> Axis {
        let lo = min.max(0.001).log10().floor();
        let hi = max.max(min.max(0.001) * 10.0).log10().ceil();
        let mut ticks = Vec::new();
        let mut d = lo;
        while d <= hi {
            let v = 10f64.powf(d);
            let text = if v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            };
            ticks.push((v, text));
            d += 1.0;
        }
        Axis {
            min: 10f64.powf(lo),
            max: 10f64.powf(hi),
            log: true,
            ticks,
            label: label.to_owned(),
        }
    }

    fn pos(&self, v: f64) -> f64 {
        let (a, b, v) = if self.log {
            (
                self.min.log10(),
                self.max.log10(),
                v.max(self.min * 1.0001).log10(),
            )
        } else {
            (self.min, self.max, v)
        };
        ((v - a) / (b - a)).clamp(0.0, 1.0)
    }
}

/// A line chart as inline SVG. `shade` is an x range drawn grey (the warm-up).
fn chart(title: &str, x: &Axis, y: &Axis, series: &[Series], shade: Option<(f64, f64)>) -> String {
    let (w, h) = (860.0, 320.0);
    let (l, r, t, b) = (70.0, 180.0, 30.0, 45.0);
    let pw = w - l - r;
    let ph = h - t - b;
    let px = |v: f64| l + x.pos(v) * pw;
    let py = |v: f64| t + (1.0 - y.pos(v)) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        l,
        esc(title)
    );
    if let Some((a, bnd)) = shade.filter(|(a, b)| b > a) {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{t}" width="{:.1}" height="{ph}" fill="#eeeeee"/><text x="{:.1}" y="{}" fill="#888">warm-up</text>"##,
            px(a),
            (px(bnd) - px(a)).max(0.0),
            px(a) + 3.0,
            t + 14.0
        );
    }
    for (v, label) in &y.ticks {
        let yy = py(*v);
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            l + pw,
            l - 6.0,
            yy + 4.0,
            esc(label)
        );
    }
    for (v, label) in &x.ticks {
        let xx = px(*v);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{t}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            t + ph,
            t + ph + 16.0,
            esc(label)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        l + pw / 2.0,
        h - 8.0,
        esc(&x.label),
        t + ph / 2.0,
        esc(&y.label)
    );
    for (i, se) in series.iter().enumerate() {
        if se.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|(a, bb)| format!("{:.1},{:.1}", px(*a), py(*bb)))
            .collect();
        let dash = if se.dash {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"/>"#,
            se.color,
            pts.join(" ")
        );
        let ly = t + 10.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            l + pw + 10.0,
            l + pw + 34.0,
            se.color,
            l + pw + 40.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// x position of a percentile on a "number of nines" scale: −log10(1 − p).
fn nines(p: f64) -> f64 {
    let q = (1.0 - p / 100.0).max(1e-6);
    -q.log10()
}

/// The timeline's complete seconds (the last one, cut by the end of the run, would plot as a
/// drop that did not happen).
fn complete_seconds(r: &RunResult) -> impl Iterator<Item = &SecondSummary> {
    let end = r.warmup_seconds + r.measured_seconds;
    r.timeline
        .iter()
        .filter(move |s| s.t as f64 + 1.0 <= end + 0.05)
}

fn kinds_in_timeline(r: &RunResult) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for s in &r.timeline {
        for k in &s.kinds {
            if !kinds.contains(&k.kind) {
                kinds.push(k.kind.clone());
            }
        }
    }
    kinds
}

fn throughput_chart(r: &RunResult) -> String {
    let kinds = kinds_in_timeline(r);
    let mut series = Vec::new();
    let mut ymax: f64 = 1.0;
    let mut totals: Vec<(f64, f64)> = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let pts: Vec<(f64, f64)> = r
            .timeline
            .iter()
            .take(complete_seconds(r).count())
            .map(|s| {
                let n = s
                    .kinds
                    .iter()
                    .find(|k| &k.kind == kind)
                    .map_or(0, |k| k.requests);
                (s.t as f64 + 0.5, n as f64)
            })
            .collect();
        for p in &pts {
            ymax = ymax.max(p.1);
        }
        series.push(Series {
            name: kind.clone(),
            color: COLORS[i % COLORS.len()],
            dash: false,
            points: pts,
        });
    }
    if kinds.len() > 1 {
        for s in complete_seconds(r) {
            let n: u64 = s.kinds.iter().map(|k| k.requests).sum();
            ymax = ymax.max(n as f64);
            totals.push((s.t as f64 + 0.5, n as f64));
        }
        series.push(Series {
            name: "all".into(),
            color: "#000000",
            dash: true,
            points: totals,
        });
    }
    let tmax = complete_seconds(r).count().max(1) as f64;
    let x = Axis::linear(0.0, tmax, "seconds since start", |v| format!("{v:.0}"));
    let y = Axis::linear(0.0, ymax * 1.05, "requests / s", |v| format!("{v:.0}"));
    chart(
        "Throughput over time",
        &x,
        &y,
        &series,
        Some((0.0, r.warmup_seconds)),
    )
}

/// The server's pre-signing backlog and the signatures it made for requests, per second, when
/// the run sampled its metrics.
fn server_charts(r: &RunResult) -> String {
    let samples = &r.server_metrics;
    let mut out = String::new();
    let tmax = complete_seconds(r).count().max(1) as f64;
    let x = Axis::linear(0.0, tmax, "seconds since start", |v| format!("{v:.0}"));
    let pending: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.t.min(tmax), s.presign_pending?)))
        .collect();
    if !pending.is_empty() {
        let ymax = pending.iter().map(|p| p.1).fold(1.0, f64::max);
        let y = Axis::linear(0.0, ymax * 1.05, "answers", |v| format!("{v:.0}"));
        out.push_str("<h2>Server: pre-signing</h2>");
        out.push_str(&chart(
            "Answers still to pre-sign (vigie_ocsp_presign_pending, all CAs)",
            &x,
            &y,
            &[Series {
                name: "pending".into(),
                color: COLORS[0],
                dash: false,
                points: pending,
            }],
            Some((0.0, r.warmup_seconds)),
        ));
    }
    let signed: Vec<(f64, f64)> = samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0].signatures?, w[1].signatures?);
            let dt = (w[1].t - w[0].t).max(1e-3);
            Some(((w[0].t + w[1].t) / 2.0, ((b - a) / dt).max(0.0)))
        })
        .filter(|p| p.0 <= tmax)
        .collect();
    if !signed.is_empty() {
        let ymax = signed.iter().map(|p| p.1).fold(1.0, f64::max);
        let y = Axis::linear(0.0, ymax * 1.05, "signatures / s", |v| format!("{v:.0}"));
        out.push_str(&chart(
            "Signatures made for requests (vigie_ocsp_signing_seconds_count, per second)",
            &x,
            &y,
            &[Series {
                name: "on request".into(),
                color: COLORS[1],
                dash: false,
                points: signed,
            }],
            Some((0.0, r.warmup_seconds)),
        ));
        out.push_str("<p>A request for an answer not yet pre-signed is signed on the spot; once pre-signing has reached every certificate, none is.</p>");
    }
    out
}

fn latency_time_chart(r: &RunResult, kind: &str) -> String {
    let mut p50 = Vec::new();
    let mut p90 = Vec::new();
    let mut p99 = Vec::new();
    let mut max = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for s in complete_seconds(r) {
        if let Some(k) = s.kinds.iter().find(|k| k.kind == kind) {
            let t = s.t as f64 + 0.5;
            p50.push((t, k.p50));
            p90.push((t, k.p90));
            p99.push((t, k.p99));
            max.push((t, k.max));
            lo = lo.min(k.p50.max(0.001));
            hi = hi.max(k.max);
        }
    }
    if p50.is_empty() {
        return String::new();
    }
    let tmax = complete_seconds(r).count().max(1) as f64;
    let x = Axis::linear(0.0, tmax, "seconds since start", |v| format!("{v:.0}"));
    let y = Axis::log_ms(lo, hi, "latency, ms (log)");
    let series = vec![
        Series {
            name: "p50".into(),
            color: COLORS[0],
            dash: false,
            points: p50,
        },
        Series {
            name: "p90".into(),
            color: COLORS[2],
            dash: false,
            points: p90,
        },
        Series {
            name: "p99".into(),
            color: COLORS[1],
            dash: false,
            points: p99,
        },
        Series {
            name: "max".into(),
            color: COLORS[7],
            dash: true,
            points: max,
        },
    ];
    chart(
        &format!("Latency percentiles over time — {kind}"),
        &x,
        &y,
        &series,
        Some((0.0, r.warmup_seconds)),
    )
}

fn distribution_chart(r: &RunResult) -> String {
    let mut series = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    let mut add = |name: String, dist: &[(f64, f64)], i: usize, dash: bool| {
        let pts: Vec<(f64, f64)> = dist
            .iter()
            .filter(|(p, _)| *p < 100.0)
            .map(|(p, v)| (nines(*p), *v))
            .collect();
        for (_, v) in &pts {
            lo = lo.min(v.max(0.001));
            hi = hi.max(*v);
        }
        series.push(Series {
            name,
            color: COLORS[i % COLORS.len()],
            dash,
            points: pts,
        });
    };
    for (i, k) in r.kinds.iter().enumerate() {
        add(k.kind.clone(), &k.distribution, i, false);
    }
    if let Some(v) = &r.visibility {
        add("revocation→visibility".into(), &v.distribution, 9, true);
    }
    if series.is_empty() {
        return String::new();
    }
    let ticks = [0.0, 90.0, 99.0, 99.9, 99.99, 99.999]
        .iter()
        .map(|p| (nines(*p), format!("{p}%")))
        .collect();
    let x = Axis {
        min: 0.0,
        max: 5.0,
        log: false,
        ticks,
        label: "percentile".into(),
    };
    let y = Axis::log_ms(lo, hi, "latency, ms (log)");
    chart(
        "Latency distribution (measured period)",
        &x,
        &y,
        &series,
        None,
    )
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for row in rows {
        s.push_str("<tr>");
        for c in row {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// The HTML report.
pub fn html(r: &RunResult) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>vigie-load — {}</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}
.bad{{color:#b00;font-weight:bold}}.ok{{color:#070}}code{{background:#f4f4f4;padding:1px 4px}}
</style></head><body>"#,
        esc(&r.label)
    );
    let _ = write!(
        s,
        "<h1>vigie-load: {}</h1><p>{} — started {} — {:.1} s measured after {:.0} s of warm-up{}</p>",
        esc(&r.label),
        esc(&r.model),
        esc(&r.started_at),
        r.measured_seconds,
        r.warmup_seconds,
        if r.interrupted {
            " — <b>interrupted</b>"
        } else {
            ""
        }
    );
    let wrong: u64 = r.kinds.iter().map(|k| k.wrong).sum();
    let errors: u64 = r.kinds.iter().map(|k| k.errors + k.timeouts).sum();
    let _ = write!(
        s,
        "<p>Answers checked: <span class=\"{}\">{} wrong</span>, <span class=\"{}\">{} errors or timeouts</span>, out of {} requests; {} OCSP signatures verified with openssl.</p>",
        if wrong == 0 { "ok" } else { "bad" },
        wrong,
        if errors == 0 { "ok" } else { "bad" },
        errors,
        r.totals.requests,
        r.signatures_verified
    );
    s.push_str("<h2>Summary</h2>");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut kinds: Vec<&KindSummary> = r.kinds.iter().collect();
    if r.kinds.len() > 1 {
        kinds.push(&r.totals);
    }
    for k in kinds {
        let l = &k.latency_ms;
        rows.push(vec![
            k.kind.clone(),
            k.requests.to_string(),
            format!("{:.0}", k.throughput),
            k.wrong.to_string(),
            k.errors.to_string(),
            k.timeouts.to_string(),
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            format!("{:.1}", k.bytes_per_second / 1e6),
        ]);
    }
    s.push_str(&table(
        &[
            "kind", "requests", "req/s", "wrong", "errors", "timeouts", "p50 ms", "p90 ms",
            "p99 ms", "p99.9 ms", "max ms", "MB/s",
        ],
        &rows,
    ));
    if r.scenario.load.rate > 0.0 {
        s.push_str("<p>Open loop: latencies count from each request's intended send time (no coordinated omission). Service time (from the actual send) is in the JSON file.</p>");
    }
    if let Some(v) = &r.visibility {
        s.push_str("<h3>Revocation to visibility</h3>");
        s.push_str(&table(
            &[
                "measured",
                "not visible",
                "stale answers",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
            ],
            &[vec![
                v.measured.to_string(),
                v.not_visible.to_string(),
                v.stale_answers.to_string(),
                ms(v.latency_ms.p50),
                ms(v.latency_ms.p90),
                ms(v.latency_ms.p99),
                ms(v.latency_ms.max),
            ]],
        ));
        s.push_str("<p>From the ingest API's acknowledgement of a revocation to the first OCSP answer saying revoked (a probe asks as soon as the acknowledgement arrives, then every millisecond).</p>");
    }
    s.push_str("<h2>Throughput</h2>");
    s.push_str(&throughput_chart(r));
    s.push_str(&server_charts(r));
    s.push_str("<h2>Latency over time</h2>");
    for k in &r.kinds {
        s.push_str(&latency_time_chart(r, &k.kind));
    }
    s.push_str("<h2>Latency distribution</h2>");
    s.push_str(&distribution_chart(r));
    if !r.messages.is_empty() {
        s.push_str("<h2>Wrong answers and errors</h2>");
        let rows: Vec<Vec<String>> = r
            .messages
            .iter()
            .map(|m| vec![m.class.clone(), m.text.clone(), m.count.to_string()])
            .collect();
        s.push_str(&table(&["class", "message", "count"], &rows));
    }
    s.push_str("<h2>Cost</h2>");
    let mut rows = vec![vec![
        "generator (vigie-load)".to_owned(),
        format!("{:?}", r.generator.pids),
        format!("{:.0}", r.generator.cpu_percent),
        format!("{:.1}", r.generator.cpu_us_per_request),
        format!("{:.0}", r.generator.rss_max_mib),
    ]];
    if let Some(sv) = &r.server {
        rows.push(vec![
            "server".to_owned(),
            format!("{:?}", sv.pids),
            format!("{:.0}", sv.cpu_percent),
            format!("{:.1}", sv.cpu_us_per_request),
            format!("{:.0}", sv.rss_max_mib),
        ]);
    }
    s.push_str(&table(
        &[
            "process",
            "pids",
            "CPU % of one core",
            "CPU µs / request",
            "max RSS MiB",
        ],
        &rows,
    ));
    s.push_str("<h2>Set-up</h2>");
    let m = &r.machine;
    let mut rows = vec![
        vec!["command".to_owned(), r.command.clone()],
        vec!["tool".to_owned(), r.tool.clone()],
        vec!["commit".to_owned(), r.commit.clone().unwrap_or_default()],
        vec![
            "machine".to_owned(),
            format!(
                "{} — {} CPUs, {}, {} MiB, Linux {}",
                m.hostname, m.cpus, m.cpu_model, m.memory_mib, m.kernel
            ),
        ],
        vec!["load average at start".to_owned(), m.load_average.clone()],
        vec![
            "population".to_owned(),
            format!(
                "{} — {} certificates ({} good, {} revoked)",
                r.population.source, r.population.entries, r.population.good, r.population.revoked
            ),
        ],
    ];
    for (k, v) in &r.targets {
        rows.push(vec![format!("target {k}"), v.clone()]);
    }
    s.push_str(&table(&["", ""], &rows));
    let scenario = toml::to_string(&r.scenario).unwrap_or_default();
    let _ = write!(s, "<h3>Scenario</h3><pre>{}</pre>", esc(&scenario));
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Latency, SecondKind};

    fn sample() -> RunResult {
        let kind = KindSummary {
            kind: "ocsp-get".into(),
            requests: 1000,
            ok: 999,
            wrong: 1,
            errors: 0,
            timeouts: 0,
            throughput: 500.0,
            bytes_per_second: 1e6,
            latency_ms: Latency {
                p50: 0.5,
                p90: 0.9,
                p99: 2.0,
                p999: 4.0,
                max: 9.0,
                mean: 0.6,
            },
            service_ms: Latency::default(),
            distribution: vec![
                (0.0, 0.1),
                (50.0, 0.5),
                (99.0, 2.0),
                (99.9, 4.0),
                (100.0, 9.0),
            ],
        };
        RunResult {
            tool: "vigie-load test".into(),
            label: "test <run>".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            command: "vigie-load ocsp".into(),
            model: "closed loop, 2 connections".into(),
            scenario: Scenario::default(),
            targets: BTreeMap::from([("public".into(), "http://127.0.0.1:1".into())]),
            population: PopulationInfo::default(),
            machine: Machine::probe(),
            commit: None,
            measured_seconds: 2.0,
            warmup_seconds: 1.0,
            interrupted: false,
            generator: Usage::default(),
            server: None,
            totals: kind.clone(),
            kinds: vec![kind],
            visibility: None,
            signatures_verified: 3,
            ingest: None,
            messages: vec![Message {
                class: "wrong".into(),
                text: "ocsp-get: status good where revoked was expected".into(),
                count: 1,
            }],
            timeline: (0..3)
                .map(|t| SecondSummary {
                    t,
                    warmup: t == 0,
                    kinds: vec![SecondKind {
                        kind: "ocsp-get".into(),
                        requests: 500,
                        wrong: 0,
                        errors: 0,
                        p50: 0.5,
                        p90: 0.9,
                        p99: 2.0,
                        max: 9.0,
                    }],
                })
                .collect(),
            server_metrics: (0..4)
                .map(|t| crate::server_metrics::ServerSample {
                    t: f64::from(t),
                    presign_pending: Some(f64::from(3 - t) * 100.0),
                    signatures: Some(f64::from(t) * 10.0),
                })
                .collect(),
        }
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let r = sample();
        let h = html(&r);
        assert!(h.contains("<svg"));
        assert_eq!(
            h.matches("<svg").count(),
            5,
            "throughput, pre-signing backlog, signatures, latency, distribution"
        );
        assert!(h.contains("vigie_ocsp_presign_pending"));
        assert!(h.contains("test &lt;run&gt;"));
        assert!(!h.contains("<script"));
        assert!(!h.contains("src=\"http"));
        assert!(h.contains("1 wrong"));
        // Round trip through JSON, as `vigie-load report` does.
        let json = serde_json::to_string(&r).expect("serialises");
        let back: RunResult = serde_json::from_str(&json).expect("parses");
        assert_eq!(html(&back), h);
        let t = terminal(&r);
        assert!(t.contains("ocsp-get") && t.contains("status good where revoked"));
    }

    #[test]
    fn axes() {
        let a = Axis::linear(0.0, 97.0, "x", |v| format!("{v}"));
        assert!(a.ticks.len() >= 5 && a.max >= 97.0);
        let l = Axis::log_ms(0.03, 250.0, "ms");
        assert_eq!(l.min, 0.01);
        assert_eq!(l.max, 1000.0);
        assert!((l.pos(1.0) - 0.4).abs() < 1e-9);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
    }
}
