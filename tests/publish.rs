//! CRL publication sinks through the real server: a private `slapd` (Debian's OpenLDAP, started
//! by the test, see `common/slapd.rs`) read with `ldapsearch`, CRLs checked with
//! `openssl crl -CAfile`; the LDAP directory through an outage of the directory server and a
//! `kill -9` of vigie; the directory sink's files read while they are being replaced.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::api::{Api, random_serial};
use common::slapd::{ROOT_DN, Slapd};
use common::*;
use openssl::x509::X509Crl;
use serde_json::json;

const CA: &str = "aci-el-org";
const FULL_ATTR: &str = "certificateRevocationList;binary";
const DELTA_ATTR: &str = "deltaRevocationList;binary";

fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    (status, body)
}

fn wait_until<T>(what: &str, limit: Duration, s: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} in vain for {what}: {}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The CA's entry DN: its certificate's subject as RFC 4514 (the default `ldap_dn`).
fn ca_dn() -> String {
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(ca_cert(CA)).expect("CA")).expect("PEM");
    vigie::publish::ldap::default_dn(&cert.subject_name().to_der().expect("DER")).expect("DN")
}

/// A value of the Prometheus text whose line starts with `name{` and contains `label`.
fn metric(s: &Server, name: &str, label: &str) -> Option<f64> {
    let (_, body) = get(&s.admin_url("/metrics"));
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::max)
}

fn publish_options(slapd: &Slapd, files: &Path) -> Options {
    Options {
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "publish_delta_on_revoke = true".into()),
            (CA.into(), "delta_debounce = \"0s\"".into()),
        ],
        only: Some(vec![CA]),
        admin_extra: token_line(TOKEN),
        global_extra: format!(
            "[[publish]]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ROOT_DN}\"\nbind_password_file = \"{}\"\n\
             [[publish]]\nkind = \"directory\"\npath = \"{}\"\n",
            slapd.url(),
            slapd.password_file().display(),
            files.display()
        ),
        ..Options::default()
    }
}

/// Revokes a fresh serial through the ingest API and waits for the delta listing it on HTTP;
/// returns (serial, that delta's DER).
fn revoke_and_wait_delta(s: &Server, limit: Duration) -> (String, Vec<u8>) {
    let serial = random_serial();
    let answer = Api::new(s, Some(TOKEN)).revoke(&json!({
        "ca": CA, "serial": serial, "reason": "keyCompromise"
    }));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let asked = Instant::now();
    let delta = wait_until("a delta listing the revocation on HTTP", limit, s, || {
        let (status, body) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
        (status == 200 && lists(&X509Crl::from_der(&body).ok()?, &serial)).then_some(body)
    });
    assert!(
        asked.elapsed() < limit,
        "delta served {:?} after the revocation",
        asked.elapsed()
    );
    (serial, delta)
}

/// `openssl crl -inform DER -CAfile` verifies the CRL's signature with the CA certificate.
fn openssl_verifies(der: &[u8], dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(&path, der).expect("written");
    let out = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&path),
        "-CAfile",
        path_str(&ca_cert(CA)),
        "-noout",
    ]);
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("verify OK"),
        "{name}: {t}"
    );
}

/// The single value of `attr` on the CA's entry, when there is exactly one.
fn ldap_value(slapd: &Slapd, dn: &str, attr: &str) -> Option<Vec<u8>> {
    let mut v = slapd.values(dn, attr)?;
    (v.len() == 1).then(|| v.remove(0))
}

#[test]
fn the_directory_holds_what_http_serves_through_an_outage_and_a_kill_9() {
    let mut slapd = Slapd::start();
    let files = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_with(&publish_options(&slapd, files.path()));
    let dn = ca_dn();
    let sink = format!("sink=\"ldap:{}\"", slapd.url());
    let work = tempfile::tempdir().expect("tempdir");

    // 1. A revocation and its delta: the directory holds the bytes HTTP serves.
    let (_, delta) = revoke_and_wait_delta(&s, Duration::from_secs(15));
    let (_, full) = get(&s.url(&format!("/crl/{CA}.crl")));
    wait_until(
        "LDAP to hold the CRLs HTTP serves",
        Duration::from_secs(20),
        &s,
        || {
            (ldap_value(&slapd, &dn, FULL_ATTR)? == full
                && ldap_value(&slapd, &dn, DELTA_ATTR)? == delta)
                .then_some(())
        },
    );
    openssl_verifies(
        &ldap_value(&slapd, &dn, FULL_ATTR).expect("full"),
        work.path(),
        "ldap-full.der",
    );
    openssl_verifies(
        &ldap_value(&slapd, &dn, DELTA_ATTR).expect("delta"),
        work.path(),
        "ldap-delta.der",
    );
    let classes = slapd.object_classes(&dn);
    for class in ["applicationProcess", "pkiCA", "deltaCRL"] {
        assert!(classes.iter().any(|c| c == class), "{dn}: {classes:?}");
    }
    let ca_certs = slapd.values(&dn, "cACertificate;binary").expect("entry");
    assert_eq!(ca_certs.len(), 1, "the CA certificate is on the entry");
    wait_until("queue depth 0", Duration::from_secs(10), &s, || {
        (metric(&s, "vigie_publish_queue_depth", &sink)? == 0.0).then_some(())
    });
    assert!(
        metric(&s, "vigie_publish_last_success_timestamp_seconds", &sink).is_some_and(|t| t > 0.0)
    );

    // 2. The directory server goes away: CRLs are still built and served on time, the queue grows,
    //    /readyz stays ready and says the sink lags.
    slapd.stop();
    let (_, delta_during) = revoke_and_wait_delta(&s, Duration::from_secs(10));
    let (_, delta_during_2) = revoke_and_wait_delta(&s, Duration::from_secs(10));
    assert!(number_of(&delta_during_2) > number_of(&delta_during));
    wait_until(
        "the queue to grow and failures to be counted",
        Duration::from_secs(20),
        &s,
        || {
            (metric(&s, "vigie_publish_queue_depth", &sink)? >= 1.0
                && metric(&s, "vigie_publish_failures_total", &sink)? >= 1.0)
                .then_some(())
        },
    );
    let (status, body) = get(&s.admin_url("/readyz"));
    assert_eq!(
        status,
        200,
        "ready while a sink lags: {}",
        String::from_utf8_lossy(&body)
    );
    let ready: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(ready["ready"], true);
    assert!(ready["cas"].is_array(), "today's shape is kept: {ready}");
    let ldap_status = ready["publish"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["kind"] == "ldap"))
        .cloned()
        .expect("the LDAP sink in /readyz");
    assert_eq!(ldap_status["lagging"], true, "{ldap_status}");
    assert!(
        ldap_status["queue_depth"].as_u64().is_some_and(|d| d >= 1),
        "{ldap_status}"
    );
    assert!(ldap_status["last_error"].is_string(), "{ldap_status}");
    let dir_status = ready["publish"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["kind"] == "directory"))
        .cloned()
        .expect("the directory sink in /readyz");
    assert_eq!(dir_status["lagging"], false, "{dir_status}");

    // 3. Back: the queue drains, the directory ends with the newest CRLs and never goes back.
    slapd.spawn();
    let mut seen: Vec<u64> = Vec::new();
    wait_until(
        "LDAP to catch up with HTTP",
        Duration::from_secs(40),
        &s,
        || {
            let value = ldap_value(&slapd, &dn, DELTA_ATTR)?;
            let n = number_of(&value);
            if seen.last() != Some(&n) {
                seen.push(n);
            }
            let (_, http) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
            (value == http).then_some(())
        },
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "numbers seen in LDAP: {seen:?}"
    );
    assert_eq!(seen.last().copied(), Some(number_of(&delta_during_2)));
    let (_, full) = get(&s.url(&format!("/crl/{CA}.crl")));
    assert_eq!(ldap_value(&slapd, &dn, FULL_ATTR), Some(full));
    wait_until(
        "queue depth 0 after the outage",
        Duration::from_secs(10),
        &s,
        || (metric(&s, "vigie_publish_queue_depth", &sink)? == 0.0).then_some(()),
    );

    // 4. kill -9 of vigie with a CRL queued: published after the restart.
    slapd.stop();
    let (serial, queued) = revoke_and_wait_delta(&s, Duration::from_secs(10));
    wait_until("the CRL to be queued", Duration::from_secs(10), &s, || {
        (metric(&s, "vigie_publish_queue_depth", &sink)? >= 1.0).then_some(())
    });
    s.kill();
    slapd.spawn();
    s.spawn();
    let published = wait_until(
        "the queued delta in LDAP after the restart",
        Duration::from_secs(40),
        &s,
        || {
            let value = ldap_value(&slapd, &dn, DELTA_ATTR)?;
            (number_of(&value) >= number_of(&queued)).then_some(value)
        },
    );
    assert!(lists(&X509Crl::from_der(&published).expect("DER"), &serial));
    openssl_verifies(&published, work.path(), "after-kill.der");
    assert!(
        !slapd.log().contains("segfault"),
        "slapd log: {}",
        slapd.log()
    );
}

#[test]
fn directory_files_are_always_whole_while_being_replaced() {
    let files = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"*/3 * * * * *\"".into()),
            (CA.into(), "delta_schedule = \"* * * * * *\"".into()),
        ],
        only: Some(vec![CA]),
        global_extra: format!(
            "[[publish]]\nkind = \"directory\"\npath = \"{}\"\n",
            files.path().display()
        ),
        ..Options::default()
    };
    let s = Server::start_with(&opts);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let dir = files.path().to_path_buf();
        let stop = Arc::clone(&stop);
        let reads = Arc::clone(&reads);
        std::thread::spawn(move || {
            let mut numbers = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                for stem in [CA.to_owned(), format!("{CA}-delta")] {
                    let Ok(der) = std::fs::read(dir.join(format!("{stem}.crl"))) else {
                        continue;
                    };
                    let crl = X509Crl::from_der(&der).unwrap_or_else(|e| {
                        panic!("{stem}.crl is not a whole CRL ({} octets): {e}", der.len())
                    });
                    numbers.insert((stem.clone(), number(&crl)));
                    if let Ok(pem) = std::fs::read(dir.join(format!("{stem}.pem"))) {
                        X509Crl::from_pem(&pem)
                            .unwrap_or_else(|e| panic!("{stem}.pem is not a whole CRL: {e}"));
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            numbers
        })
    };
    std::thread::sleep(Duration::from_secs(7));
    stop.store(true, Ordering::Relaxed);
    let numbers = reader.join().expect("every read was a whole CRL");
    let deltas = numbers
        .iter()
        .filter(|(stem, _)| stem.ends_with("-delta"))
        .count();
    assert!(
        deltas >= 4,
        "the delta file was replaced several times while read: {numbers:?}"
    );
    assert!(
        reads.load(Ordering::Relaxed) > 100,
        "{} reads",
        reads.load(Ordering::Relaxed)
    );
    // And the files are what HTTP serves (once the schedule pauses between two builds).
    wait_until(
        "files equal to the HTTP CRLs",
        Duration::from_secs(10),
        &s,
        || {
            let (_, http) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
            let file = std::fs::read(files.path().join(format!("{CA}-delta.crl"))).ok()?;
            (file == http).then_some(())
        },
    );
    let leftovers: Vec<_> = std::fs::read_dir(files.path())
        .expect("lists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Publish latency on the demo (`vigie demo --ldap`): for each new delta CRL (one every 2 s),
/// the time from its first appearance over HTTP (the reference: the moment it is current, give
/// or take the 10 ms polling step) to its appearance in the LDAP directory (`ldapsearch`) and
/// in the directory sink's file. Run with `cargo test --release --test publish -- --ignored
/// --nocapture`; `VIGIE_BENCH_OUT=file` also writes the raw samples there.
#[test]
#[ignore = "a measurement (about 40 s), not a check: see BENCHMARKS.md"]
fn publish_latency_on_the_demo() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (public, admin) = (
        format!("127.0.0.1:{}", free()),
        format!("127.0.0.1:{}", free()),
    );
    let out = common::vigie()
        .args([
            "demo",
            "--dir",
            path_str(&demo),
            "--listen",
            &public,
            "--admin-listen",
            &admin,
        ])
        .args(["--ca-bits", "2048", "--no-serve", "--ldap", &slapd.url()])
        .args(["--ldap-password-file", path_str(&slapd.password_file())])
        .output()
        .expect("vigie demo runs");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("ldapsearch") && printed.contains(FULL_ATTR),
        "{printed}"
    );
    let config = demo.join("vigie.toml");
    let text = std::fs::read_to_string(&config).expect("demo config");
    let text = text.replacen(
        &format!("id = \"{CA}\"\n"),
        &format!("id = \"{CA}\"\ndelta_schedule = \"*/2 * * * * *\"\n"),
        1,
    );
    std::fs::write(&config, text).expect("config");
    let mut child = common::vigie()
        .args(["serve", "--config", path_str(&config)])
        .env("VIGIE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigie serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("piped");
    let _guard = Kill(child);
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("a line").expect("text");
        if let Some(a) = line.strip_prefix("listening public ") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let dn = ca_dn();
    let file = demo.join("published").join(format!("{CA}-delta.crl"));
    let http_number = || -> Option<u64> {
        let (status, body) = get(&format!("{base}/crl/{CA}-delta.crl"));
        (status == 200).then(|| number_of(&body))
    };
    let mut samples: Vec<(u64, f64, f64)> = Vec::new();
    let mut last = http_number();
    let started = Instant::now();
    while samples.len() < 15 && started.elapsed() < Duration::from_secs(60) {
        let n = http_number();
        if n == last || n.is_none() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let seen = Instant::now();
        last = n;
        let n = n.expect("some");
        let (mut ldap, mut directory) = (None, None);
        while (ldap.is_none() || directory.is_none()) && seen.elapsed() < Duration::from_secs(10) {
            if directory.is_none()
                && std::fs::read(&file)
                    .is_ok_and(|d| X509Crl::from_der(&d).is_ok() && number_of(&d) >= n)
            {
                directory = Some(seen.elapsed().as_secs_f64());
            }
            if ldap.is_none()
                && ldap_value(&slapd, &dn, DELTA_ATTR).is_some_and(|v| number_of(&v) >= n)
            {
                ldap = Some(seen.elapsed().as_secs_f64());
            }
        }
        samples.push((
            n,
            ldap.expect("LDAP within 10 s"),
            directory.expect("file within 10 s"),
        ));
    }
    let stats = |f: fn(&(u64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[(v.len() * 9) / 10], v[v.len() - 1])
    };
    let (lm, l9, lx) = stats(|s| s.1);
    let (dm, d9, dx) = stats(|s| s.2);
    let mut report =
        String::from("# delta_number ldap_seconds_after_http directory_seconds_after_http\n");
    for (n, l, d) in &samples {
        report.push_str(&format!("{n} {l:.4} {d:.4}\n"));
    }
    report.push_str(&format!(
        "# samples {}\n# ldap: median {lm:.4} s, p90 {l9:.4} s, max {lx:.4} s\n# directory: median {dm:.4} s, p90 {d9:.4} s, max {dx:.4} s\n",
        samples.len()
    ));
    println!("{report}");
    if let Ok(path) = std::env::var("VIGIE_BENCH_OUT") {
        std::fs::write(path, &report).expect("bench output");
    }
    assert!(samples.len() >= 10, "{report}");
}
