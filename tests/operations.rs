//! The operator's files and views, checked by the tools operators use: the alerting rules by
//! `promtool check rules` and their unit tests by `promtool test rules` (each alert fires in one
//! test and stays silent in another); every metric name the rules and the Grafana dashboard use
//! is exported by a live server (demo PKI, after CRL builds, OCSP requests and an ingest call);
//! `/status` rendered by headless Chromium shows every CA with its CRL number (a screenshot is
//! saved under the target directory). promtool and chromium are required: a missing tool fails.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::Api;
use common::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what} could not run ({e}): is it installed? (.ci/run installs it)")
    });
    let text = text(&out);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_every_alert_fires_and_stays_silent() {
    let rules = repo("config/prometheus/vigie-alerts.yml");
    let out = run(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&rules),
        "promtool check rules",
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let tests_dir = repo("config/prometheus/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .expect("config/prometheus/tests")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = run(
        Command::new("promtool")
            .arg("test")
            .arg("rules")
            .args(&files),
        "promtool test rules",
    );
    assert!(!out.contains("FAILED"), "{out}");

    // Every alert has a test case where it fires and one where it does not.
    let text = std::fs::read_to_string(&rules).expect("rules");
    let names = alert_names(&text);
    for wanted in [
        "VigieCrlStale",
        "VigieCrlBuildFailing",
        "VigieOcspSignerExpiring",
        "VigieSigningPoolSaturated",
        "VigieIngestCommitSlow",
        "VigieDown",
    ] {
        assert!(names.iter().any(|n| n == wanted), "no alert {wanted}");
    }
    let tests: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("test file"))
        .collect::<Vec<_>>()
        .join("\n");
    for name in &names {
        let mut fires = false;
        let mut silent = false;
        let lines: Vec<&str> = tests.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() == format!("alertname: {name}") {
                match lines.get(i + 1).map(|n| n.trim()) {
                    Some("exp_alerts: []") => silent = true,
                    Some("exp_alerts:") => fires = true,
                    _ => {}
                }
            }
        }
        assert!(fires, "no promtool test where {name} fires");
        assert!(silent, "no promtool test where {name} stays silent");
    }
}

/// Metric names in a PromQL expression: identifiers starting with `vigie_`, and `up`.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            let before = expr[..start].chars().next_back();
            let label_or_var = matches!(before, Some('$' | '.'));
            if !label_or_var && (word.starts_with("vigie_") || word == "up") {
                into.insert(word.to_owned());
            }
        } else if c == b'"' {
            // Skip string literals (label values, legends).
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
}

fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "expr" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                } else {
                    dashboard_exprs(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// A seeded server with the ingest API open, after OCSP GET/POST requests (through `vigie
/// probe`) and one ingest call.
fn busy_server() -> Server {
    let server = Server::start_with(&Options::ingest());
    let out = common::vigie()
        .args(["probe", "--config"])
        .arg(&server.config)
        .args(["--url", &server.public])
        .output()
        .expect("vigie probe runs");
    assert!(
        out.status.success(),
        "probe of a healthy server: {}",
        text(&out)
    );
    let api = Api::new(&server, Some(TOKEN));
    let r = api.revoke(&serde_json::json!({
        "ca": "aci-el-org",
        "serial": common::api::random_serial(),
        "reason": "superseded"
    }));
    assert_eq!(r.status, 200, "{}", r.text());
    // And one refused call: the authentication failure counter the dashboard shows.
    let refused = Api::new(&server, Some("not-the-token")).get("/v1/cas");
    assert_eq!(refused.status, 401, "{}", refused.text());
    server
}

fn scrape(server: &Server) -> String {
    ureq::get(&server.admin_url("/metrics"))
        .call()
        .expect("/metrics")
        .into_string()
        .expect("text")
}

#[test]
fn every_metric_the_rules_and_dashboard_use_is_exported() {
    let server = busy_server();
    let exported: BTreeSet<String> = vigie::status::parse_exposition(&scrape(&server))
        .into_iter()
        .map(|s| s.name.to_owned())
        .collect();
    assert!(exported.contains("vigie_crl_number"), "{exported:?}");

    let mut used = BTreeSet::new();
    let rules = std::fs::read_to_string(repo("config/prometheus/vigie-alerts.yml")).expect("rules");
    let mut rule_exprs = 0;
    for line in rules.lines() {
        if let Some(expr) = line.trim().strip_prefix("expr:") {
            metric_names(expr, &mut used);
            rule_exprs += 1;
        }
    }
    assert!(rule_exprs >= 6);
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("config/grafana/vigie.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() > 8));
    assert_eq!(dashboard["title"], "vigie");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() > 10);
    for e in &exprs {
        metric_names(e, &mut used);
    }
    // The dashboard's variables query metrics too.
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["definition"].as_str() {
            metric_names(q, &mut used);
        }
    }
    for wanted in [
        "vigie_ocsp_responses_total",
        "vigie_ocsp_cache_total",
        "vigie_ocsp_signing_queue",
        "vigie_crl_next_update_timestamp_seconds",
        "vigie_ingest_commit_seconds_bucket",
        "vigie_store_wal_syncs_total",
        "up",
    ] {
        assert!(used.contains(wanted), "{wanted} is not used: {used:?}");
    }
    // `up` is Prometheus's own; histograms are exported with their _bucket/_sum/_count series.
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| *n != "up" && !exported.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "used by the rules or the dashboard but not exported: {missing:?}\nexported: {exported:?}"
    );
    // Labelled series the alerts join on exist for every CA.
    let text = scrape(&server);
    for ca in pki().cas.iter().map(|c| c.id.as_str()) {
        for name in [
            "vigie_crl_next_update_timestamp_seconds",
            "vigie_crl_safety_margin_seconds",
            "vigie_ocsp_signer_not_after_timestamp_seconds",
            "vigie_crl_build_failures_total",
        ] {
            assert!(
                vigie::status::parse_exposition(&text)
                    .iter()
                    .any(|s| s.name == name && s.label("ca") == Some(ca)),
                "{name}{{ca=\"{ca}\"}} missing"
            );
        }
    }
}

#[test]
fn metric_name_extraction() {
    let mut names = BTreeSet::new();
    metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(vigie_x_bucket{instance=~\"$instance\",a=\"vigie_not\"}[5m]))) / up{job=\"vigie\"} - $vigie_var",
        &mut names,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["up".to_owned(), "vigie_x_bucket".to_owned()]
    );
}

/// Runs headless Chromium with `args` then `url`; returns stdout. Killed after 60 s.
fn chromium(profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/chromium runs (Debian package chromium, installed by .ci/run)");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 60 s");
            }
        }
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(out.status.success(), "chromium failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_page_in_a_real_browser_shows_every_ca_with_its_crl_number() {
    let server = busy_server();
    let samples_text = scrape(&server);
    let samples = vigie::status::parse_exposition(&samples_text);
    let url = server.admin_url("/status");

    // Plain HTTP first: the page, its type, no script, no external resource.
    let resp = ureq::get(&url).call().expect("/status");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_type(), "text/html");
    let html = resp.into_string().expect("html");
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("src=\"http"), "no external resource");
    assert!(html.contains("http-equiv=\"refresh\""), "refreshes itself");

    let profile = tempfile::tempdir().expect("profile dir");
    let dom = chromium(
        profile.path(),
        &["--dump-dom".into(), "--virtual-time-budget=3000".into()],
        &url,
    );
    assert!(dom.contains("vigie — status"), "{dom}");
    for ca in &pki().cas {
        let number = samples
            .iter()
            .find(|s| {
                s.name == "vigie_crl_number"
                    && s.label("ca") == Some(ca.id.as_str())
                    && s.label("kind") == Some("full")
            })
            .map(|s| s.value as u64)
            .unwrap_or_else(|| panic!("no CRL number for {}", ca.id));
        // The CA's row, with its full CRL number in the number cell.
        let row_start = dom
            .find(&format!("data-ca=\"{}\"", ca.id))
            .unwrap_or_else(|| panic!("CA {} not on the page: {dom}", ca.id));
        let row = &dom[row_start..];
        let row = &row[..row.find("</tr>").expect("row end")];
        assert!(
            row.contains(&format!("<td class=\"n crl-number\">{number}")),
            "CA {} row lacks CRL number {number}: {row}",
            ca.id
        );
    }
    assert!(dom.contains("id=\"ocsp-chart\""), "chart drawn");
    assert!(dom.contains("<polyline"), "chart has series");
    assert!(dom.contains("<td>revoked</td>"), "events listed");
    assert!(dom.contains("id=\"cache\""));
    assert!(dom.contains("id=\"signers\""));

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,1500".into(),
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 10_000, "a real picture, {} octets", png.len());
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn the_systemd_unit_is_hardened() {
    let unit = std::fs::read_to_string(repo("config/vigie.service")).expect("unit");
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=vigie",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/vigie serve --config /etc/vigie/vigie.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    // `systemctl reload vigie` sends SIGHUP: a live reload (tests/reload.rs).
    assert!(
        unit.lines()
            .any(|l| l == "ExecReload=/bin/kill -HUP $MAINPID")
    );
}
