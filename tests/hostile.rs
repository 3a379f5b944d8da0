//! The public listener against hostile clients, through the real server: made-up serials cost no
//! disk, signatures only an anonymous request asks for are rationed per client network, and
//! connections that send nothing, send slowly or stay idle are cut by the configured deadlines.
//!
//! The connection tests share the machine's two cores and measure time and CPU: they run one at
//! a time ([`serial`]).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use vigie::model::CaId;
use vigie::pki::HashAlg;

/// Tests that measure time or CPU run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// No CRL build may wake up during a test that measures the server's idleness.
const QUIET_SCHEDULE: &str = "crl_schedule = \"0 0 0 1 1 *\"\ndelta_schedule = \"\"";

/// SHA-1 CertID hashes of a demo CA (RFC 6960 §4.1.1): of its name, and of its public key.
fn issuer_hashes(ca: &str) -> (Vec<u8>, Vec<u8>) {
    let cert = api::ca_x509(ca);
    let name = openssl::sha::sha1(&cert.subject_name().to_der().expect("name DER"));
    let key_bits = vigie::pki::subject_public_key_bits(&cert.to_der().expect("DER")).expect("SPKI");
    (name.to_vec(), openssl::sha::sha1(&key_bits).to_vec())
}

fn request_for(ca: &str, serial_hex: &str, nonce: Option<&[u8]>) -> Vec<u8> {
    let (name, key) = issuer_hashes(ca);
    let serial = vigie::model::Serial::from_hex(serial_hex).expect("hex serial");
    vigie::ocsp::request::build(HashAlg::Sha1, &name, &key, &serial.der_content(), nonce)
        .expect("request encodes")
}

fn post(server: &Server, der: &[u8], headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = ureq::post(&server.url("/ocsp")).set("Content-Type", "application/ocsp-request");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = req.send_bytes(der).expect("OCSP answer");
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).expect("body");
    body
}

/// `openssl ocsp -respin` on an answer about `serial_hex` of `ca`: its text.
fn cli_status(der: &[u8], ca: &str, serial_hex: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("resp.der");
    std::fs::write(&path, der).expect("write");
    let issuer = ca_cert(ca);
    let roots = pki().roots.clone();
    let serial = format!("0x{serial_hex}");
    text(&openssl(&[
        "ocsp",
        "-respin",
        path_str(&path),
        "-issuer",
        path_str(&issuer),
        "-CAfile",
        path_str(&roots),
        "-serial",
        &serial,
        "-no_nonce",
        "-resp_text",
    ]))
}

fn is_try_later(der: &[u8]) -> bool {
    der == [0x30, 0x03, 0x0a, 0x01, 0x03]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn random_nonce() -> Vec<u8> {
    let mut n = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut n).expect("random");
    n
}

fn stored_responses(server: &Server, ca: &str) -> usize {
    let config = common::load_config(&server.config);
    let store = vigie::service::open_store(&config).expect("store opens");
    store
        .ocsp_responses(&CaId::new(ca).expect("id"))
        .inspect(|r| assert!(r.is_ok(), "stored responses readable"))
        .count()
}

#[test]
fn made_up_serials_are_never_stored_nor_served_from_the_store_after_a_restart() {
    let mut s = Server::start_with(&Options {
        only: Some(vec!["aci-el-org"]),
        // Pre-signing off: the store then holds exactly the answers that were asked for.
        ca_extra: vec![
            ("aci-el-org".into(), "unknown_serial = \"revoked\"".into()),
            ("aci-el-org".into(), "presign = false".into()),
        ],
        ..Options::default()
    });
    let made_up = api::random_serial();
    let req = request_for("aci-el-org", &made_up, None);
    let first = post(&s, &req, &[]);
    let out = cli_status(&first, "aci-el-org", &made_up);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(out.contains("ecdsa-with-SHA256"), "ECDSA signer: {out}");
    assert_eq!(post(&s, &req, &[]), first, "kept in memory");
    // A registered serial, for contrast: its answer is stored and survives the restart.
    let registered = good("aci-el-org");
    let known_req = request_for("aci-el-org", &registered.serial_hex, None);
    let known = post(&s, &known_req, &[]);
    assert!(cli_status(&known, "aci-el-org", &registered.serial_hex).contains("Cert Status: good"));
    // Many more strangers, each signed once.
    for _ in 0..200 {
        let der = post(
            &s,
            &request_for("aci-el-org", &api::random_serial(), None),
            &[],
        );
        assert!(!is_try_later(&der), "within the default ration");
    }

    s.stop();
    assert_eq!(
        stored_responses(&s, "aci-el-org"),
        1,
        "only the registered serial's answer is in the store"
    );
    s.spawn();
    assert_eq!(
        post(&s, &known_req, &[]),
        known,
        "the registered answer comes back from the store"
    );
    let again = post(&s, &req, &[]);
    assert_ne!(
        again, first,
        "a stranger's answer is signed again after a restart"
    );
    let out = cli_status(&again, "aci-el-org", &made_up);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: revoked"), "{out}");
}

#[test]
fn nonce_signatures_are_rationed_per_client_network() {
    let s = Server::start_with(&Options {
        only: Some(vec!["aci-el-org"]),
        global_extra: "sign_rate_per_client = 0.01\nsign_burst_per_client = 3\n".into(),
        ..Options::default()
    });
    let cert = good("aci-el-org");
    for i in 0..3 {
        let nonce = random_nonce();
        let der = post(
            &s,
            &request_for("aci-el-org", &cert.serial_hex, Some(&nonce)),
            &[],
        );
        assert!(contains(&der, &nonce), "nonce #{i} echoed within the burst");
    }
    // Beyond the burst: the shared answer, without the nonce (RFC 9654 §2.1). A forged
    // X-Forwarded-For changes nothing: the client is its connection's peer.
    let nonce = random_nonce();
    let der = post(
        &s,
        &request_for("aci-el-org", &cert.serial_hex, Some(&nonce)),
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("Forwarded", "for=198.51.100.1"),
        ],
    );
    assert!(!contains(&der, &nonce), "nonce ignored beyond the ration");
    let out = cli_status(&der, "aci-el-org", &cert.serial_hex);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
    // A made-up serial needs a signature of its own: tryLater.
    let der = post(
        &s,
        &request_for("aci-el-org", &api::random_serial(), None),
        &[],
    );
    assert!(is_try_later(&der), "stranger beyond the ration: {der:02x?}");
    // The shared answer of a registered serial is never rationed.
    let plain = post(&s, &request_for("aci-el-org", &cert.serial_hex, None), &[]);
    assert!(cli_status(&plain, "aci-el-org", &cert.serial_hex).contains("Cert Status: good"));
    let metrics = ureq::get(&s.admin_url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("vigie_ocsp_rationed_total{limit=\"client\",outcome=\"without_nonce\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_ocsp_rationed_total{limit=\"client\",outcome=\"try_later\"} 1"),
        "{metrics}"
    );
}

/// Process CPU time (user + system) of `pid`, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    ticks as f64 / hz as f64
}

fn addr(server: &Server) -> String {
    server.public.trim_start_matches("http://").to_owned()
}

/// A normal request, timed.
fn timed_ocsp(server: &Server) -> Duration {
    let cert = good("aci-el-org");
    let req = request_for("aci-el-org", &cert.serial_hex, None);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let start = Instant::now();
    let resp = agent
        .post(&server.url("/ocsp"))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(&req)
        .expect("a normal request is answered");
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).expect("body");
    let took = start.elapsed();
    assert!(cli_status(&body, "aci-el-org", &cert.serial_hex).contains("Cert Status: good"));
    took
}

/// Whether the server closed this connection: EOF or reset on a non-blocking read.
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut stream = stream;
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before the close: read on.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

fn raise_open_files() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= 12_000,
        "the test needs 12,000 open files, the hard limit is {limit}"
    );
}

/// One CA whose CRL schedule stays quiet, with these `[public]` lines.
fn connection_options(public_lines: &str) -> Options {
    Options {
        only: Some(vec!["aci-el-org"]),
        ca_extra: vec![("aci-el-org".into(), QUIET_SCHEDULE.into())],
        public_extra: public_lines.into(),
        ..Options::default()
    }
}

#[test]
fn slowloris_connections_are_cut_and_others_still_served() {
    let _one = serial();
    raise_open_files();
    let s = Server::start_with(&connection_options("header_timeout = \"3s\""));
    let target = addr(&s);
    let mut slow: Vec<TcpStream> = (0..2000)
        .map(|i| {
            let mut c = TcpStream::connect(&target).expect("connect");
            c.write_all(format!("POST /ocsp HTTP/1.1\r\nHost: vigie\r\nX-Slow-{i}: ").as_bytes())
                .expect("first bytes");
            c
        })
        .collect();
    let started = Instant::now();
    let took = timed_ocsp(&s);
    assert!(
        took < Duration::from_secs(1),
        "answered in {took:?} beside 2,000 slowloris"
    );
    // Keep dripping a byte every half second: the deadline is for the whole header.
    while started.elapsed() < Duration::from_secs(5) {
        for c in &mut slow {
            let _ = c.write_all(b"a");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let open = slow.iter().filter(|c| !closed_by_server(c)).count();
    assert_eq!(
        open, 0,
        "every slowloris connection is closed after header_timeout"
    );
    let took = timed_ocsp(&s);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
}

#[test]
fn connect_and_close_without_a_request_leaves_the_server_idle() {
    let _one = serial();
    let s = Server::start_with(&connection_options(""));
    let pid = s.pid().expect("running");
    let target = addr(&s);
    for _ in 0..1000 {
        drop(TcpStream::connect(&target).expect("connect"));
    }
    // Let the server see the last closes, then watch it for 5 s.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.2,
        "server used {used:.3} s of CPU in 5 s after the connections went away"
    );
    let took = timed_ocsp(&s);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
}

#[test]
fn ten_thousand_idle_keep_alive_connections_are_closed_within_keep_alive() {
    let _one = serial();
    raise_open_files();
    let keep_alive = Duration::from_secs(2);
    let s = Server::start_with(&connection_options(
        "keep_alive = \"2s\"\nmax_connections = 12000",
    ));
    let target = addr(&s);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let mut c = TcpStream::connect(&target).expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: vigie\r\n\r\n")
            .expect("request");
        conns.push(c);
    }
    // Read every answer (the connection is then idle, kept alive by HTTP/1.1's default).
    let mut last_answer = Instant::now();
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !ends_an_answer(&got) {
            let n = c.read(&mut buf).expect("an answer before the close");
            assert!(n > 0, "closed before answering");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
        last_answer = Instant::now();
    }
    let answered_in = last_answer.elapsed();
    // Every connection was answered at least `answered_in` ago; give the timers a second.
    std::thread::sleep(keep_alive + Duration::from_secs(1));
    let open = conns.iter().filter(|c| !closed_by_server(c)).count();
    assert_eq!(
        open,
        0,
        "idle keep-alive connections still open {:?} after the last answer",
        keep_alive + Duration::from_secs(1) + answered_in
    );
    drop(conns);
    let took = timed_ocsp(&s);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
}

/// Whether `got` holds a whole answer to GET /healthz (headers and a Content-Length body).
fn ends_an_answer(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + length
}

#[test]
fn a_drip_fed_body_is_cut_at_body_timeout() {
    let _one = serial();
    let s = Server::start_with(&connection_options("body_timeout = \"2s\""));
    let mut c = TcpStream::connect(addr(&s)).expect("connect");
    c.write_all(
        b"POST /ocsp HTTP/1.1\r\nHost: vigie\r\nContent-Type: application/ocsp-request\r\nContent-Length: 200\r\n\r\n",
    )
    .expect("headers");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(6) && !closed {
        // One byte every 300 ms: the body would take a minute.
        let _ = c.write_all(b"\x30");
        match c.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => closed = true,
        }
    }
    let took = start.elapsed();
    assert!(closed, "the connection is closed (got {got:02x?})");
    assert!(
        took < Duration::from_millis(3500),
        "cut {took:?} after the headers, body_timeout is 2 s"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        got.ends_with(&[0x30, 0x03, 0x0a, 0x01, 0x01]),
        "malformedRequest: {got:02x?}"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "not before the deadline: {took:?}"
    );
}
