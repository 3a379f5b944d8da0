//! Ingest throughput, measured end to end through the real `vigie serve` (durable: every answer
//! waits for the WAL sync), and the speed of `vigie import` on a generated `index.txt`.
//!
//! ```text
//! cargo bench --bench ingest_throughput                 # both HTTP scenarios, then import
//! cargo bench --bench ingest_throughput -- http         # only the HTTP scenarios
//! cargo bench --bench ingest_throughput -- import       # only the import
//! cargo bench --bench ingest_throughput -- http-stream  # vigie alone, then a writer with
//!                                                       # [replication] ack = "stream" (issue 12)
//! ```
//!
//! `http-stream` runs each HTTP scenario twice in a row: vigie alone (the reference), then a
//! writer publishing to a JetStream stream of three replicas on three `nats-server` nodes it
//! starts on loopback (Debian's `/usr/sbin/nats-server`), every answer waiting for the stream's
//! acknowledgement.
//!
//! Environment: `VIGIE_BENCH_SECS` (per scenario, default 10), `VIGIE_BENCH_CLIENTS` (default 32),
//! `VIGIE_BENCH_BATCH` (default 100), `VIGIE_BENCH_IMPORT_LINES` (default 1 000 000),
//! `VIGIE_BENCH_LOG` (the server's log filter, default `warn`; `info` logs one audit line per
//! ingest request, to a file).
//! Clients are blocking HTTP/1.1 keep-alive connections, one thread each, on the same machine
//! as the server: they compete with it for the CPUs. Results go to stdout; BENCHMARKS.md keeps
//! dated runs.

#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigie::pki::demo::{DemoOptions, DemoPki, create_or_load};

const TOKEN: &str = "bench-token";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(dir: &Path, pki: &DemoPki) -> PathBuf {
    config_with(dir, pki, "")
}

fn config_with(dir: &Path, pki: &DemoPki, extra: &str) -> PathBuf {
    let mut text = format!(
        "[public]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = [\"{}\"]\n[store]\npath = \"{}\"\n",
        hex::encode(openssl::sha::sha256(TOKEN.as_bytes())),
        dir.join("data").display()
    );
    for ca in &pki.cas {
        text.push_str(&format!(
            // The benchmark revokes serials it never registers.
            "[[ca]]\nid = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\naccept_unregistered_revocations = true\n",
            ca.id,
            ca.cert.display(),
            ca.key.display(),
            ca.ocsp_cert.display(),
            ca.ocsp_key.display()
        ));
    }
    text.push_str(extra);
    let path = dir.join("vigie.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

struct Serve {
    child: Child,
    admin: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, log: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["serve", "--config"])
        .arg(config)
        .env(
            "VIGIE_LOG",
            std::env::var("VIGIE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).expect("log")))
        .spawn()
        .expect("vigie starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let admin = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.strip_prefix("listening admin ") {
                    break a.trim().to_owned();
                }
            }
            _ => panic!(
                "vigie exited: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Serve { child, admin }
}

/// `vigie_store_wal_syncs_total` from `/metrics`.
fn wal_syncs(admin: &str) -> u64 {
    let text = ureq::get(&format!("{admin}/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("vigie_store_wal_syncs_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Runs `clients` threads posting batches of `batch` revocations for `secs`; returns
/// (revocations acknowledged, requests, elapsed, p50/p99 request latency).
fn run(
    admin: &str,
    clients: u64,
    batch: u64,
    secs: u64,
) -> (u64, u64, Duration, Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (admin, stop, done) = (admin.to_owned(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                let url = format!("{admin}/v1/revocations");
                let mut latencies = Vec::new();
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let items: Vec<String> = (0..batch)
                        .map(|_| {
                            n += 1;
                            format!(
                                "{{\"ca\":\"aci-el-org\",\"serial\":\"{:x}{:012x}\",\"reason\":\"superseded\"}}",
                                t + 1,
                                n
                            )
                        })
                        .collect();
                    let body = if batch == 1 {
                        items[0].clone()
                    } else {
                        format!("[{}]", items.join(","))
                    };
                    let sent = Instant::now();
                    let r = agent
                        .post(&url)
                        .set("Authorization", &format!("Bearer {TOKEN}"))
                        .set("Content-Type", "application/json")
                        .send_string(&body)
                        .expect("200");
                    let _ = r.into_string().expect("body");
                    latencies.push(sent.elapsed());
                    done.fetch_add(batch, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (
        done.load(Ordering::Relaxed),
        latencies.len() as u64,
        elapsed,
        pct(0.5),
        pct(0.99),
    )
}

fn http(pki: &DemoPki, work: &Path) {
    let secs = env_or("VIGIE_BENCH_SECS", 10);
    let clients = env_or("VIGIE_BENCH_CLIENTS", 32);
    let batch = env_or("VIGIE_BENCH_BATCH", 100);
    for (name, clients, batch) in [("single-event", clients, 1), ("batched", clients, batch)] {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let cfg = config(&dir, pki);
        let server = serve(&cfg, &dir.join("stderr.log"));
        // Warm-up: connections, caches, first memtable.
        let _ = run(&server.admin, clients, batch, 1);
        let syncs_before = wal_syncs(&server.admin);
        let (n, requests, elapsed, p50, p99) = run(&server.admin, clients, batch, secs);
        let syncs = wal_syncs(&server.admin) - syncs_before;
        println!(
            "ingest {name:12}: {clients} clients x {batch}/request: {:>8.0} revocations/s durable ({requests} requests in {:.1} s, latency p50 {:.1} ms, p99 {:.1} ms; {syncs} WAL syncs, {:.1} requests per sync)",
            n as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            requests as f64 / syncs.max(1) as f64
        );
    }
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Three `nats-server` nodes with JetStream on loopback, killed on drop.
struct Nats {
    children: Vec<Child>,
    urls: Vec<String>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn nats_cluster(dir: &Path) -> Nats {
    assert!(
        Path::new(NATS_SERVER).exists(),
        "{NATS_SERVER} is missing: apt-get install nats-server"
    );
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes: Vec<String> = ports
        .iter()
        .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
        .collect();
    let mut nats = Nats {
        children: Vec::new(),
        urls: Vec::new(),
    };
    for (i, (port, cport)) in ports.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("nats-{i}.log"))).expect("log");
        let child = Command::new(NATS_SERVER)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-n",
                &format!("n{i}"),
            ])
            .args(["-js", "-sd"])
            .arg(dir.join(format!("nats-{i}")))
            .args(["--cluster_name", "vigie-bench", "--cluster"])
            .arg(format!("nats://127.0.0.1:{cport}"))
            .args(["--routes", &routes.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("nats-server starts");
        nats.children.push(child);
        nats.urls.push(format!("nats://127.0.0.1:{port}"));
    }
    nats
}

/// Each HTTP scenario against vigie alone, then against a writer with `ack = "stream"`.
fn http_stream(pki: &DemoPki, work: &Path) {
    let secs = env_or("VIGIE_BENCH_SECS", 10);
    let clients = env_or("VIGIE_BENCH_CLIENTS", 32);
    let batch = env_or("VIGIE_BENCH_BATCH", 100);
    for (name, clients, batch) in [("single-event", clients, 1), ("batched", clients, batch)] {
        let mut rates = Vec::new();
        for stream in [false, true] {
            let label = if stream {
                "writer, ack=stream"
            } else {
                "vigie alone"
            };
            let dir = work.join(format!(
                "{name}-{}",
                if stream { "stream" } else { "alone" }
            ));
            std::fs::create_dir_all(&dir).expect("dir");
            let nats = stream.then(|| nats_cluster(&dir));
            let extra = nats.as_ref().map_or(String::new(), |n| {
                format!(
                    "[replication]\nrole = \"writer\"\nnode_id = \"bench\"\nnats = [{}]\nstream_replicas = 3\nack = \"stream\"\n",
                    n.urls
                        .iter()
                        .map(|u| format!("\"{u}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            let cfg = config_with(&dir, pki, &extra);
            let server = serve(&cfg, &dir.join("stderr.log"));
            let _ = run(&server.admin, clients, batch, 1);
            let (n, requests, elapsed, p50, p99) = run(&server.admin, clients, batch, secs);
            let rate = n as f64 / elapsed.as_secs_f64();
            rates.push(rate);
            println!(
                "ingest {name:12} {label:18}: {clients} clients x {batch}/request: {rate:>8.0} revocations/s durable ({requests} requests in {:.1} s, latency p50 {:.1} ms, p99 {:.1} ms)",
                elapsed.as_secs_f64(),
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
            );
            drop(server);
            drop(nats);
        }
        println!(
            "ingest {name:12} writer/alone: {:.2}",
            rates[1] / rates[0].max(1.0)
        );
    }
}

/// Writes an index.txt of `lines` lines: 90 % V, 8 % R (every OpenSSL reason form), 2 % E.
pub fn generate_index(path: &Path, lines: u64) {
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let reasons = [
        "superseded",
        "keyTime,20250101000000Z",
        "cessationOfOperation",
        "holdInstruction,holdInstructionReject",
        "affiliationChanged",
        "CAkeyTime,20250101000000Z",
        "certificateHold",
        "unspecified",
    ];
    for i in 0..lines {
        let serial = format!(
            "{:032X}",
            0x1000_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(i) * 7919
        );
        let subject =
            format!("/C=FR/O=ASIP-SANTE/OU=0002 187512751/OU=IGC-SANTE TEST/CN=bench {i}");
        let line = match i % 50 {
            0..=3 => format!(
                "R\t290101000000Z\t260101120000Z,{}\t{serial}\tunknown\t{subject}\n",
                reasons[(i / 50 % reasons.len() as u64) as usize]
            ),
            4 => format!("E\t240101000000Z\t\t{serial}\tunknown\t{subject}\n"),
            _ => format!("V\t290101000000Z\t\t{serial}\tunknown\t{subject}\n"),
        };
        out.write_all(line.as_bytes()).expect("write");
    }
    out.flush().expect("flush");
}

fn import(pki: &DemoPki, work: &Path) {
    let lines = env_or("VIGIE_BENCH_IMPORT_LINES", 1_000_000);
    let dir = work.join("import");
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = config(&dir, pki);
    let index = dir.join("index.txt");
    let t = Instant::now();
    generate_index(&index, lines);
    println!(
        "generated {lines} lines in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["import", "--ca", "aci-el-org", "--config"])
        .arg(&cfg)
        .arg(&index)
        .env("VIGIE_LOG", "warn")
        .output()
        .expect("vigie import runs");
    let secs = t.elapsed().as_secs_f64();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "vigie import of {lines} lines: {secs:.1} s wall clock, process included ({:.0} lines/s)",
        lines as f64 / secs
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |what: &str| args.is_empty() || args.iter().any(|a| a == what);
    let work = tempfile::tempdir().expect("tempdir");
    let pki = create_or_load(
        work.path(),
        &DemoOptions {
            public_url: "http://127.0.0.1:1".into(),
            ca_rsa_bits: 2048,
        },
    )
    .expect("demo PKI");
    println!(
        "machine: {} CPUs, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default()
    );
    if want("http") {
        http(&pki, work.path());
    }
    if args.iter().any(|a| a == "http-stream") {
        http_stream(&pki, work.path());
    }
    if want("import") {
        import(&pki, work.path());
    }
}
