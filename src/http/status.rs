//! `GET /status` on the admin listener: the operator's page. One HTML document, no script, no
//! external resource (the chart is SVG drawn here, the style is inline), refreshing itself every
//! [`REFRESH_SECONDS`] with a meta refresh. The data is [`crate::status::gather`]'s; this file
//! only renders it. Access is the same as `/metrics` ([`super::admin::operator_access`]).

use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::status::{CrlOverview, Freshness, Overview};

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECONDS: u32 = 15;

/// `GET /status`.
pub async fn status(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(e) = super::admin::operator_access(&state, &req) {
        return actix_web::ResponseError::error_response(&e);
    }
    let now = state.clock.now();
    let st = state.clone();
    let gathered = web::block(move || {
        crate::status::gather(&st.responder, &st.crl, &st.store, &st.history, now)
    })
    .await;
    match gathered {
        Ok(Ok(overview)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(render(&overview)),
        Ok(Err(e)) => actix_web::ResponseError::error_response(&super::ApiError::Internal(
            format!("status: {e}"),
        )),
        Err(e) => actix_web::ResponseError::error_response(&super::ApiError::Internal(format!(
            "status: {e}"
        ))),
    }
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `3d 4h`, `2h 05m`, `4m 10s`, `-12s`.
fn span(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{sign}{d}d {h}h")
    } else if h > 0 {
        format!("{sign}{h}h {m:02}m")
    } else if m > 0 {
        format!("{sign}{m}m {sec:02}s")
    } else {
        format!("{sign}{sec}s")
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#f6f7f9}\
h1{font-size:20px;margin:0 0 .2em}h2{font-size:16px;margin:1.4em 0 .4em}\
.sub{color:#5b6576;margin-bottom:1em}\
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002;margin-bottom:.6em}\
th,td{padding:.35em .7em;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}\
th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ok{color:#17663a;font-weight:600}.warn{background:#fff3cd;color:#7a5300;font-weight:600}\
.bad{background:#f8d7da;color:#842029;font-weight:600}.dim{color:#8a93a3}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;box-shadow:0 1px 2px #0002;padding:.6em 1em}\
.card b{font-size:20px;display:block}code{font-size:12px}";

/// Colours of the chart's series, by position in [`crate::status::OcspOverview::statuses`].
const COLOURS: [&str; 9] = [
    "#2e7d32", "#c62828", "#6d4c41", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#9e9d24",
    "#455a64",
];

/// The whole page.
pub fn render(o: &Overview) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>vigie status</title><style>{STYLE}</style></head><body>\
         <h1>vigie — status</h1><div class=\"sub\">{} · {} CA(s) · refreshes every {REFRESH_SECONDS} s</div>",
        esc(&o.generated_at.to_string()),
        o.cas.len()
    );
    render_crls(&mut h, o);
    render_signers(&mut h, o);
    render_ocsp(&mut h, o);
    render_ingest(&mut h, o);
    render_later(&mut h, o);
    h.push_str("</body></html>\n");
    h
}

fn crl_cells(h: &mut String, c: Option<&CrlOverview>, expected: bool) {
    let Some(c) = c else {
        let (class, text) = if expected {
            ("bad", "none published")
        } else {
            ("dim", "—")
        };
        let _ = write!(h, "<td colspan=\"6\" class=\"{class}\">{text}</td>");
        return;
    };
    let class = match c.freshness {
        Freshness::Ok => "ok",
        Freshness::Margin => "warn",
        Freshness::Expired => "bad",
    };
    let base = c
        .base
        .map(|b| format!(" <span class=\"dim\">(base {b})</span>"));
    let _ = write!(
        h,
        "<td class=\"n crl-number\">{}{}</td><td>{}</td>\
         <td class=\"{class}\" title=\"nextUpdate {} · safety margin {}\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        c.number,
        base.unwrap_or_default(),
        esc(&c.this_update.to_string()),
        esc(&c.next_update.to_string()),
        span(c.safety_margin),
        span(c.seconds_left),
        c.entries,
        c.bytes,
        c.build_seconds.map_or_else(
            || "<span class=\"dim\">—</span>".to_owned(),
            |s| format!("{s:.3} s")
        ),
    );
}

fn render_crls(h: &mut String, o: &Overview) {
    h.push_str(
        "<h2>CRLs</h2><table id=\"crls\"><thead><tr><th>CA</th><th>kind</th><th>number</th>\
         <th>thisUpdate</th><th>left to nextUpdate</th><th>entries</th><th>octets</th>\
         <th>last build</th></tr></thead><tbody>",
    );
    for ca in &o.cas {
        let rows = if ca.has_deltas { 2 } else { 1 };
        let _ = write!(
            h,
            "<tr data-ca=\"{id}\"><th rowspan=\"{rows}\" title=\"{subject}\">{id}</th><td>full</td>",
            id = esc(&ca.id),
            subject = esc(&ca.subject)
        );
        crl_cells(h, ca.full.as_ref(), true);
        h.push_str("</tr>");
        if ca.has_deltas {
            h.push_str("<tr><td>delta</td>");
            crl_cells(h, ca.delta.as_ref(), true);
            h.push_str("</tr>");
        }
    }
    h.push_str(
        "</tbody></table><div class=\"sub\">Yellow: within the safety margin of nextUpdate \
         (a rebuild is due); red: past nextUpdate or missing (not served).</div>",
    );
}

fn render_signers(h: &mut String, o: &Overview) {
    h.push_str(
        "<h2>OCSP signers</h2><table id=\"signers\"><thead><tr><th>CA</th><th>signer</th>\
         <th>notAfter</th><th>days left</th></tr></thead><tbody>",
    );
    for ca in &o.cas {
        let class = match ca.ocsp_signer_days_left {
            d if d < 0 => "bad",
            d if d < 30 => "warn",
            _ => "ok",
        };
        let _ = write!(
            h,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td class=\"n {class}\">{}</td></tr>",
            esc(&ca.id),
            esc(&ca.ocsp_signer_subject),
            esc(&ca.ocsp_signer_not_after.to_string()),
            ca.ocsp_signer_days_left
        );
    }
    h.push_str("</tbody></table>");
}

/// The answers-per-second chart: one polyline per status over the last hour, drawn as SVG.
fn chart(h: &mut String, o: &Overview) {
    const W: f64 = 640.0;
    const HT: f64 = 160.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 20.0;
    let rates = &o.ocsp.rates;
    let max = rates
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { nice_ceiling(max) };
    let end = o.generated_at.0 as f64;
    let start = end - 3600.0;
    let x = |t: f64| LEFT + (t - start).max(0.0) / 3600.0 * (W - LEFT - 8.0);
    let y = |v: f64| 8.0 + (HT - BOTTOM - 8.0) * (1.0 - v / top);
    let _ = write!(
        h,
        "<svg id=\"ocsp-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{HT}\" \
         viewBox=\"0 0 {W} {HT}\" role=\"img\" aria-label=\"OCSP answers per second over the last hour\" \
         style=\"background:#fff;box-shadow:0 1px 2px #0002\">"
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e6eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6576\">{}</text>",
            W - 8.0,
            LEFT - 4.0,
            y(v) + 3.0,
            short_number(v),
            y = y(v),
        );
    }
    for (i, label) in ["-60 min", "-45", "-30", "-15", "now"].iter().enumerate() {
        let t = start + 900.0 * i as f64;
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5b6576\">{label}</text>",
            x(t),
            HT - 5.0
        );
    }
    for (si, status) in o.ocsp.statuses.iter().enumerate() {
        let points: Vec<String> = rates
            .iter()
            .filter(|(t, _)| t.0 as f64 >= start)
            .map(|(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    x(t.0 as f64),
                    y(v.get(si).copied().unwrap_or(0.0))
                )
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let colour = COLOURS[si % COLOURS.len()];
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(status)
        );
        if points.len() == 1 {
            // A single interval so far: a dot, or nothing would show.
            let p = &points[0];
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                h,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
    }
    h.push_str("</svg>");
}

fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn short_number(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn render_ocsp(h: &mut String, o: &Overview) {
    h.push_str("<h2>OCSP answers per second (last hour)</h2>");
    chart(h, o);
    h.push_str("<table id=\"ocsp\"><thead><tr><th>status</th><th>now /s</th><th>since start</th></tr></thead><tbody>");
    let last = o.ocsp.rates.last();
    for (si, status) in o.ocsp.statuses.iter().enumerate() {
        let rate = last.and_then(|(_, v)| v.get(si).copied()).unwrap_or(0.0);
        let _ = write!(
            h,
            "<tr><td><span style=\"color:{}\">■</span> {}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
            COLOURS[si % COLOURS.len()],
            esc(status),
            rate,
            o.ocsp.totals.get(status).copied().unwrap_or(0)
        );
    }
    h.push_str("</tbody></table>");
    let pct = |r: Option<f64>| r.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let _ = write!(
        h,
        "<div class=\"cards\"><div class=\"card\" id=\"cache\">cache hit ratio<b>{}</b>\
         <span class=\"dim\">since start; {} over the chart's window</span></div></div>",
        pct(o.ocsp.cache_hit_ratio),
        pct(o.ocsp.cache_hit_ratio_window)
    );
}

fn render_ingest(h: &mut String, o: &Overview) {
    let _ = write!(
        h,
        "<h2>Ingest</h2><div class=\"cards\"><div class=\"card\" id=\"ingest-rate\">events per minute\
         <b>{:.1}</b><span class=\"dim\">last minute; {:.1} over the chart's window; {} since start</span></div></div>",
        o.ingest.events_per_minute, o.ingest.events_per_minute_window, o.ingest.total
    );
    h.push_str(
        "<h2>Last events</h2><table id=\"events\"><thead><tr><th>CA</th><th>seq</th><th>recorded</th>\
         <th>event</th><th>serial</th><th>detail</th></tr></thead><tbody>",
    );
    let mut any = false;
    for ca in &o.cas {
        for e in &ca.last_events {
            any = true;
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&ca.id),
                e.seq,
                esc(&e.recorded_at.to_string()),
                e.kind,
                esc(&e.serial),
                esc(&e.detail)
            );
        }
    }
    if !any {
        h.push_str("<tr><td colspan=\"6\" class=\"dim\">no events yet</td></tr>");
    }
    h.push_str("</tbody></table>");
}

fn render_later(h: &mut String, o: &Overview) {
    h.push_str("<h2>Replication and publication sinks</h2>");
    match &o.replication {
        Some(rows) => {
            h.push_str("<table id=\"replication\"><tbody>");
            for (k, v) in rows {
                let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
            }
            h.push_str("</tbody></table>");
        }
        None => {
            h.push_str("<div class=\"sub\" id=\"replication\">replication: not configured</div>")
        }
    }
    if o.sinks.is_empty() {
        h.push_str("<div class=\"sub\" id=\"sinks\">publication sinks: none configured (CRLs are served over HTTP only)</div>");
    } else {
        h.push_str("<table id=\"sinks\"><thead><tr><th>sink</th><th>queued</th><th>last error</th></tr></thead><tbody>");
        for s in &o.sinks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&s.name),
                s.queued,
                esc(s.last_error.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</tbody></table>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_well() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(75), "1m 15s");
        assert_eq!(span(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(span(2 * 86_400 + 3600), "2d 1h");
        assert_eq!(span(-12), "-12s");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(1200.0), 2000.0);
    }
}
