//! `vigie-load compare`: the same OCSP request mix against vigie and against nginx serving the
//! very bytes vigie answered, as static files, in one run — the ceiling a responder of
//! pre-signed answers could reach on this machine with this generator.
//!
//! How: every certificate the mix can ask about (a random subset of at most `max_entries` when
//! the population is larger) is asked once of vigie over GET; each answer is written under
//! `root/ocsp/<URL-safe base64 of the request>`; nginx (installed with apt-get when missing)
//! serves that directory on a free loopback port, as many workers as CPUs, no access log, open
//! file cache, keep-alive without a request limit. Then, for each method, the same closed-loop
//! load (same connections, duration, generator, checks) runs against vigie and against nginx,
//! alternately, `rounds` times; the ratios vigie/nginx of requests/s and of p99 are printed.
//!
//! GET paths use the URL-safe base64 alphabet without padding for both servers (vigie accepts
//! it; it has no `/`, `+`, `=` or `%` that a static server would map to directories). nginx
//! cannot choose a file by POST body, so in the POST comparison vigie gets `POST /ocsp` with the
//! DER body, and nginx gets the same body posted to the path naming the file (`error_page 405
//! =200 $uri` makes its static module answer POST); the bodies and answers are the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use vigie::pki::HashAlg;

use crate::engine::{get_path, ocsp_request};
use crate::http::{self, Conn, Endpoint};
use crate::population::{Entry, Population};
use crate::report::RunResult;
use crate::runner::{self, Prepared, RunOptions};
use crate::scenario::{GetEncoding, HashChoice, Plan, Scenario};
use crate::select::Picker;

/// Why a comparison failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Preparing or running a load.
    #[error("{0}")]
    Run(#[from] runner::Error),
    /// nginx could not be installed or started.
    #[error("nginx: {0}")]
    Nginx(String),
    /// Fetching vigie's answers.
    #[error("fetching vigie's answer for {what}: {message}")]
    Fetch {
        /// Which request.
        what: String,
        /// Why.
        message: String,
    },
    /// Files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scenario.
    #[error("{0}")]
    Scenario(#[from] crate::scenario::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Which OCSP methods to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Methods {
    /// GET only.
    Get,
    /// POST only.
    Post,
    /// GET, then POST.
    Both,
}

/// Options of `compare`.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The vigie run options (targets, population …).
    pub run: RunOptions,
    /// The nginx binary.
    pub nginx: PathBuf,
    /// Methods compared.
    pub methods: Methods,
    /// Alternations vigie → nginx per method.
    pub rounds: usize,
    /// Most certificates served (files written).
    pub max_entries: usize,
    /// Where each run's report goes (None: not written).
    pub out: Option<PathBuf>,
}

/// One method's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodComparison {
    /// `GET` or `POST`.
    pub method: String,
    /// vigie requests/s, per round.
    pub vigie_rps: Vec<f64>,
    /// nginx requests/s, per round.
    pub nginx_rps: Vec<f64>,
    /// vigie p99 ms, per round.
    pub vigie_p99_ms: Vec<f64>,
    /// nginx p99 ms, per round.
    pub nginx_p99_ms: Vec<f64>,
    /// Wrong answers (vigie, nginx), all rounds.
    pub wrong: (u64, u64),
    /// Errors and timeouts (vigie, nginx), all rounds.
    pub errors: (u64, u64),
    /// Median vigie/nginx requests/s.
    pub rps_ratio: f64,
    /// Median vigie/nginx p99.
    pub p99_ratio: f64,
    /// Server CPU µs per request (vigie, nginx), median over rounds.
    pub server_cpu_us: (f64, f64),
    /// nginx/vigie server CPU per request: the throughput ratio a machine dedicated to the
    /// server would show, less sensitive than requests/s to other load on a shared machine.
    pub cpu_ratio: f64,
    /// Generator CPU µs per request (vigie run, nginx run), last round.
    pub generator_cpu_us: (f64, f64),
}

/// The comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// When.
    pub started_at: String,
    /// The command line.
    pub command: String,
    /// Machine.
    pub machine: crate::machine::Machine,
    /// Commit.
    pub commit: Option<String>,
    /// nginx version.
    pub nginx_version: String,
    /// Distinct certificates (files) served.
    pub files: usize,
    /// Connections, duration per run.
    pub connections: usize,
    /// Seconds measured per run.
    pub seconds: f64,
    /// Per method.
    pub methods: Vec<MethodComparison>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The nginx binary: `wanted` if it exists, else `nginx` on the PATH, else installed with
/// apt-get.
pub fn find_or_install_nginx(wanted: &Path) -> Result<PathBuf, Error> {
    if wanted.is_file() {
        return Ok(wanted.to_owned());
    }
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join("nginx");
        if p.is_file() {
            return Ok(p);
        }
    }
    eprintln!("nginx not found: installing it with apt-get (needs root)…");
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| Error::Nginx(format!("apt-get: {e}")))
    };
    let _ = run(&["update", "-qq"])?;
    let st = run(&["install", "-y", "-qq", "nginx-light"])
        .or_else(|_| run(&["install", "-y", "-qq", "nginx"]))?;
    if !st.success() {
        let st = run(&["install", "-y", "-qq", "nginx"])?;
        if !st.success() {
            return Err(Error::Nginx("apt-get install nginx failed".into()));
        }
    }
    let p = PathBuf::from("/usr/sbin/nginx");
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Nginx(
            "installed, but /usr/sbin/nginx is missing".into(),
        ))
    }
}

/// A running nginx, stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// Its URL.
    pub url: String,
    /// `nginx -v`.
    pub version: String,
}

impl Nginx {
    /// Writes a configuration serving `root` and starts nginx on a free loopback port.
    pub fn start(binary: &Path, dir: &Path, root: &Path, workers: usize) -> Result<Nginx, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        for sub in ["tmp", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io("nginx directories"))?;
        }
        let d = dir.display();
        let conf = format!(
            "# Written by vigie-load compare: static OCSP answers, tuned for throughput.\n\
             user root;\nworker_processes {workers};\ndaemon off;\npid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
             \x20 keepalive_timeout 300s;\n  keepalive_requests 100000000;\n\
             \x20 open_file_cache max=200000 inactive=300s;\n  open_file_cache_valid 300s;\n\
             \x20 types {{ }}\n  default_type application/ocsp-response;\n\
             \x20 client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
             \x20 fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
             \x20 scgi_temp_path {d}/tmp/scgi;\n\
             \x20 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
             \x20   location /ocsp/ {{ error_page 405 =200 $uri; }}\n  }}\n}}\n",
            root = root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(io("writing nginx.conf"))?;
        let version = Command::new(binary)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
            .unwrap_or_default();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::Nginx(format!("starting {}: {e}", binary.display())))?;
        let mut n = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(n);
            }
            if let Ok(Some(st)) = n.child.try_wait() {
                return Err(Error::Nginx(format!(
                    "exited with {st}; see {}",
                    dir.join("logs/error.log").display()
                )));
            }
            if Instant::now() > deadline {
                n.stop();
                return Err(Error::Nginx("did not listen within 10 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM to the master, which stops its workers).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A sub-population of at most `max` entries (random, same proportions), and a new picker.
fn restrict(prep: &Prepared, plan: &Plan, max: usize) -> Result<Prepared, Error> {
    if prep.population.entries.len() <= max {
        return Ok(Prepared {
            issuers: Arc::clone(&prep.issuers),
            population: Arc::clone(&prep.population),
            population_file: None,
            picker: Arc::clone(&prep.picker),
            info: prep.info.clone(),
        });
    }
    let mut idx: Vec<usize> = (0..prep.population.entries.len()).collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(plan.scenario.load.seed);
    idx.shuffle(&mut rng);
    idx.truncate(max);
    let pop = &prep.population;
    let sub = Population {
        cas: pop.cas.clone(),
        entries: idx
            .iter()
            .map(|&i| {
                let e = &pop.entries[i];
                Entry::new(e.ca, e.serial, e.expected())
            })
            .collect(),
        source: format!("{} (random subset of {max})", pop.source),
    };
    let picker = Picker::new(
        &sub,
        plan.statuses,
        plan.distribution,
        plan.scenario.ocsp.unknown_pool,
        plan.scenario.load.seed,
    )
    .map_err(runner::Error::from)?;
    let (good, revoked) = sub.counts();
    let info = crate::report::PopulationInfo {
        source: sub.source.clone(),
        entries: sub.entries.len(),
        good,
        revoked,
    };
    Ok(Prepared {
        issuers: Arc::clone(&prep.issuers),
        population: Arc::new(sub),
        population_file: None,
        picker: Arc::new(picker),
        info,
    })
}

/// Asks vigie once for every certificate of the mix and writes the answers as static files.
/// Returns how many files were written.
fn materialise(prep: &Prepared, alg: HashAlg, vigie: &str, root: &Path) -> Result<usize, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("runtime"))?;
    let dir = root.join("ocsp");
    std::fs::create_dir_all(&dir).map_err(io("static root"))?;
    let (entries, unknown) = prep.picker.universe();
    let mut asks: Vec<(u16, crate::population::SerialBytes)> = entries
        .iter()
        .map(|&i| {
            let e = &prep.population.entries[i];
            (e.ca, e.serial)
        })
        .collect();
    asks.extend_from_slice(unknown);
    rt.block_on(async {
        let ep = Endpoint::parse(vigie).await.map_err(runner::Error::from)?;
        let mut conn: Option<Conn> = None;
        let mut buf = Vec::new();
        for (ca, serial) in &asks {
            let what = || format!("serial {}", serial.to_hex());
            let issuer = prep
                .issuers
                .cas
                .get(*ca as usize)
                .ok_or_else(|| Error::Fetch {
                    what: what(),
                    message: "CA not served".into(),
                })?;
            let req = ocsp_request(issuer, alg, serial, None).map_err(|m| Error::Fetch {
                what: what(),
                message: m,
            })?;
            let path = get_path(&req.der, GetEncoding::UrlSafe);
            http::write_request(&mut buf, "GET", &ep, &path, &[], b"");
            if conn.is_none() {
                conn = Some(Conn::connect(&ep).await.map_err(runner::Error::from)?);
            }
            let c = conn.as_mut().ok_or_else(|| Error::Fetch {
                what: what(),
                message: "no connection".into(),
            })?;
            let resp = c.send(&buf).await.map_err(|e| Error::Fetch {
                what: what(),
                message: e.to_string(),
            })?;
            if resp.close {
                conn = None;
            }
            if resp.status != 200 {
                return Err(Error::Fetch {
                    what: what(),
                    message: format!("HTTP {}", resp.status),
                });
            }
            let file = root.join(path.trim_start_matches('/'));
            std::fs::write(&file, &resp.body).map_err(io(format!("writing {}", file.display())))?;
        }
        Ok::<(), Error>(())
    })?;
    Ok(asks.len())
}

/// Runs the comparison. `plan` must be an OCSP plan without nonces; its kinds are replaced by
/// one method at a time.
pub fn run(opts: &CompareOptions, base: &Scenario) -> Result<(Comparison, String), Error> {
    let plan = base.plan()?;
    let alg = match plan.hash {
        HashChoice::One(a) => a,
        HashChoice::Mixed => HashAlg::Sha1,
    };
    let mut scenario = base.clone();
    scenario.ocsp.hash = match alg {
        HashAlg::Sha1 => "sha1",
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
    .into();
    scenario.ocsp.get_encoding = "urlsafe".into();
    let plan = scenario.plan()?;
    let prep_full = runner::prepare(&opts.run, &plan)?;
    let prep = restrict(&prep_full, &plan, opts.max_entries)?;
    let nginx_bin = find_or_install_nginx(&opts.nginx)?;
    let work = tempfile::Builder::new()
        .prefix("vigie-compare-")
        .tempdir()
        .map_err(io("temporary directory"))?;
    let root = work.path().join("root");
    eprintln!("fetching vigie's answers for the mix…");
    let files = materialise(&prep, alg, &opts.run.public_url, &root)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut nginx = Nginx::start(&nginx_bin, work.path(), &root, workers)?;
    eprintln!("{} serving {files} files at {}", nginx.version, nginx.url);
    let methods: &[&str] = match opts.methods {
        Methods::Get => &["GET"],
        Methods::Post => &["POST"],
        Methods::Both => &["GET", "POST"],
    };
    let mut out = Vec::new();
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    for method in methods {
        let mut s = scenario.clone();
        s.mix = std::collections::BTreeMap::from([(
            if *method == "GET" {
                "ocsp-get"
            } else {
                "ocsp-post"
            }
            .to_owned(),
            1.0,
        )]);
        s.name = format!("compare-{}", method.to_lowercase());
        let p = s.plan()?;
        let mut m = MethodComparison {
            method: (*method).to_owned(),
            vigie_rps: Vec::new(),
            nginx_rps: Vec::new(),
            vigie_p99_ms: Vec::new(),
            nginx_p99_ms: Vec::new(),
            wrong: (0, 0),
            errors: (0, 0),
            rps_ratio: 0.0,
            p99_ratio: 0.0,
            server_cpu_us: (0.0, 0.0),
            cpu_ratio: 0.0,
            generator_cpu_us: (0.0, 0.0),
        };
        let mut cpu = (Vec::new(), Vec::new());
        for round in 0..opts.rounds.max(1) {
            for target in ["vigie", "nginx"] {
                let mut ro = opts.run.clone();
                ro.label = format!("compare-{}-{target}-r{}", method.to_lowercase(), round + 1);
                ro.server_pids = Vec::new();
                eprintln!("{}: {} {} round {}…", ro.label, target, method, round + 1);
                if target == "nginx" {
                    ro.public_url = nginx.url.clone();
                    ro.post_to_file_path = true;
                }
                let mut r: RunResult = runner::execute(&ro, &p, &prep)?;
                r.command = opts.run.command.clone();
                if let Some(dir) = &opts.out {
                    runner::write_results(&r, &dir.join(&ro.label), true)?;
                }
                let rps = r.totals.throughput;
                let p99 = r.totals.latency_ms.p99;
                let server_cpu = r.server.as_ref().map_or(0.0, |s| s.cpu_us_per_request);
                if target == "vigie" {
                    m.vigie_rps.push(rps);
                    m.vigie_p99_ms.push(p99);
                    m.wrong.0 += r.totals.wrong;
                    m.errors.0 += r.totals.errors + r.totals.timeouts;
                    cpu.0.push(server_cpu);
                    m.generator_cpu_us.0 = r.generator.cpu_us_per_request;
                } else {
                    m.nginx_rps.push(rps);
                    m.nginx_p99_ms.push(p99);
                    m.wrong.1 += r.totals.wrong;
                    m.errors.1 += r.totals.errors + r.totals.timeouts;
                    cpu.1.push(server_cpu);
                    m.generator_cpu_us.1 = r.generator.cpu_us_per_request;
                }
            }
        }
        let ratios: Vec<f64> = m
            .vigie_rps
            .iter()
            .zip(&m.nginx_rps)
            .map(|(v, n)| v / n.max(1e-9))
            .collect();
        m.rps_ratio = median(&ratios);
        let p99s: Vec<f64> = m
            .vigie_p99_ms
            .iter()
            .zip(&m.nginx_p99_ms)
            .map(|(v, n)| v / n.max(1e-9))
            .collect();
        m.p99_ratio = median(&p99s);
        m.server_cpu_us = (median(&cpu.0), median(&cpu.1));
        m.cpu_ratio = m.server_cpu_us.1 / m.server_cpu_us.0.max(1e-9);
        out.push(m);
    }
    nginx.stop();
    let cmp = Comparison {
        started_at,
        command: opts.run.command.clone(),
        machine: crate::machine::Machine::probe(),
        commit: crate::machine::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        nginx_version: nginx.version.clone(),
        files,
        connections: plan.connections,
        seconds: plan.duration.as_secs_f64(),
        methods: out,
    };
    let text = render(&cmp);
    Ok((cmp, text))
}

/// The printed comparison.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "vigie vs nginx (static files of the same answers) — {} — {} CPUs {} — {} connections, {:.0} s per run, {} distinct answers — {}",
        c.started_at,
        c.machine.cpus,
        c.machine.cpu_model,
        c.connections,
        c.seconds,
        c.files,
        c.nginx_version
    );
    let _ = writeln!(
        s,
        "{:<6} {:>12} {:>12} {:>8} {:>10} {:>10} {:>8} {:>14} {:>14}",
        "method",
        "vigie req/s",
        "nginx req/s",
        "ratio",
        "vigie p99",
        "nginx p99",
        "ratio",
        "wrong v/n",
        "errors v/n"
    );
    for m in &c.methods {
        let _ = writeln!(
            s,
            "{:<6} {:>12.0} {:>12.0} {:>7.2}× {:>8.2}ms {:>8.2}ms {:>7.2}× {:>14} {:>14}",
            m.method,
            median(&m.vigie_rps),
            median(&m.nginx_rps),
            m.rps_ratio,
            median(&m.vigie_p99_ms),
            median(&m.nginx_p99_ms),
            m.p99_ratio,
            format!("{}/{}", m.wrong.0, m.wrong.1),
            format!("{}/{}", m.errors.0, m.errors.1),
        );
        let _ = writeln!(
            s,
            "       server CPU µs/request (median): vigie {:.1}, nginx {:.1} → CPU-efficiency ratio nginx/vigie {:.2}×; generator CPU µs/request: {:.1} (vigie run), {:.1} (nginx run)",
            m.server_cpu_us.0,
            m.server_cpu_us.1,
            m.cpu_ratio,
            m.generator_cpu_us.0,
            m.generator_cpu_us.1
        );
        if !m.vigie_rps.is_empty() {
            let _ = writeln!(
                s,
                "       rounds: vigie {:?} req/s, nginx {:?} req/s",
                m.vigie_rps.iter().map(|v| v.round()).collect::<Vec<_>>(),
                m.nginx_rps.iter().map(|v| v.round()).collect::<Vec<_>>()
            );
        }
    }
    let _ = writeln!(
        s,
        "ratio = median over rounds of vigie/nginx (each round: vigie then nginx, same generator and load)\n\
         target: vigie ≥ 0.80× nginx requests/s for cached answers (issue 5); load average at the end: {}",
        crate::machine::Machine::probe().load_average
    );
    s
}
