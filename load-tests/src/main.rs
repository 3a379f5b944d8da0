//! The `vigie-load` command: `ocsp`, `crl`, `ingest`, `mixed` and `run` (scenarios), `compare`
//! (vigie against nginx), `seed` (a population through the ingest API), `report` (HTML from a
//! result file).
//!
//! Exit status: 0 when every answer was right, 2 when some were wrong, 1 on failure to run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use vigie_load::compare::{self, CompareOptions, Methods};
use vigie_load::report::{self, RunResult};
use vigie_load::runner::{self, PopulationChoice, RunOptions};
use vigie_load::scenario::Scenario;
use vigie_load::seed::{self, KeyType, SeedOptions};

/// Load generator for vigie: real OCSP, CRL and ingest traffic, every answer checked.
#[derive(Parser, Debug)]
#[command(name = "vigie-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every load command takes. Those left out keep the scenario's values.
#[derive(Args, Debug, Clone)]
struct Common {
    /// The demo directory (`vigie demo --dir`): CA certificates, configuration, population.
    #[arg(long, default_value = "demo")]
    demo_dir: PathBuf,
    /// Public listener URL (OCSP, CRLs); several, comma-separated, for replicas of one
    /// service: connections are spread over them, and a revocation is visible when every one
    /// of them says revoked.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin listener URL (ingest API).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    admin: String,
    /// Bearer token for the admin listener (default: DIR/admin-token, written by `vigie demo`).
    #[arg(long, env = "VIGIE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Population file (default: DIR/population.jsonl if present, else the demo's samples).
    #[arg(long)]
    population: Option<PathBuf>,
    /// Use the demo's 14 sample certificates even if a population file exists.
    #[arg(long, conflicts_with = "population")]
    samples: bool,
    /// Only certificates of these CAs (comma-separated ids), e.g. one signer key type.
    #[arg(long, value_delimiter = ',')]
    cas: Vec<String>,
    /// Start from this scenario file (the flags below override it).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Concurrent connections.
    #[arg(short = 'c', long)]
    connections: Option<usize>,
    /// Measured duration (e.g. 30s, 2m).
    #[arg(short = 'd', long)]
    duration: Option<String>,
    /// Warm-up before measuring (e.g. 2s).
    #[arg(long)]
    warmup: Option<String>,
    /// Open loop at this many requests/s (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Per-request timeout.
    #[arg(long)]
    timeout: Option<String>,
    /// Generator threads.
    #[arg(long)]
    threads: Option<usize>,
    /// RNG seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Status mix, e.g. good=0.9,revoked=0.09,unknown=0.01.
    #[arg(long)]
    statuses: Option<String>,
    /// Popularity: uniform, zipf:S, hot:FRACTION:SHARE.
    #[arg(long)]
    distribution: Option<String>,
    /// CertID hash: sha1, sha256, sha384, sha512, mixed.
    #[arg(long)]
    hash: Option<String>,
    /// Fraction of OCSP answers whose signature is verified (default 0.01).
    #[arg(long)]
    verify_rate: Option<f64>,
    /// Pool of never-issued serials (0: fresh each time).
    #[arg(long)]
    unknown_pool: Option<usize>,
    /// Nonce length, octets.
    #[arg(long)]
    nonce_bytes: Option<usize>,
    /// Results directory (default: load-tests/results/<date>-<label>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Label of the run (default: scenario and model).
    #[arg(long)]
    label: Option<String>,
    /// Do not write result.json / report.html.
    #[arg(long)]
    no_save: bool,
    /// Server process(es) to watch for CPU and memory (default: whoever listens on --url).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

/// OCSP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// POST /ocsp.
    Post,
    /// GET /ocsp/{base64}.
    Get,
    /// Half each.
    Both,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// OCSP load: POST and/or GET, with or without nonce, over the population.
    Ocsp {
        #[command(flatten)]
        common: Common,
        /// Which method.
        #[arg(long, value_enum, default_value = "both")]
        method: Method,
        /// Send a nonce (each answer then signed afresh).
        #[arg(long)]
        nonce: bool,
    },
    /// CRL downloads: full and delta, plain and conditional (If-None-Match).
    Crl {
        #[command(flatten)]
        common: Common,
        /// Share of delta CRLs.
        #[arg(long, default_value_t = 0.5)]
        delta_share: f64,
        /// Share of conditional GETs.
        #[arg(long, default_value_t = 0.5)]
        conditional_share: f64,
    },
    /// Ingest load: issuance and revocation events through the admin API.
    Ingest {
        #[command(flatten)]
        common: Common,
        /// Events per call (1: single; more: JSON arrays).
        #[arg(long)]
        batch: Option<usize>,
        /// Share of revocations (the rest are issuances).
        #[arg(long, default_value_t = 0.5)]
        revoke_share: f64,
        /// Do not probe OCSP after each revocation.
        #[arg(long)]
        no_visibility: bool,
    },
    /// The weighted mix of load-tests/scenarios/mixed.toml (or --scenario).
    Mixed {
        #[command(flatten)]
        common: Common,
    },
    /// Any scenario file.
    Run {
        /// The scenario file.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Same OCSP load against vigie and against nginx serving the same answers; prints ratios.
    Compare {
        #[command(flatten)]
        common: Common,
        /// Methods compared.
        #[arg(long, value_enum, default_value = "both")]
        method: Methods,
        /// Alternations vigie → nginx per method (the median ratio is reported).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// nginx binary (installed with apt-get if missing).
        #[arg(long, default_value = "/usr/sbin/nginx")]
        nginx: PathBuf,
        /// Most distinct certificates served (a random subset of a larger population).
        #[arg(long, default_value_t = 20_000)]
        max_entries: usize,
    },
    /// Issue N certificates with the demo CAs, register them through the ingest API, revoke a
    /// fraction, and write the population file.
    Seed {
        /// The demo directory (CA keys are read there).
        #[arg(long, default_value = "demo")]
        demo_dir: PathBuf,
        /// How many certificates.
        #[arg(long)]
        count: u64,
        /// Admin listener URL.
        #[arg(long, default_value = "http://127.0.0.1:8081")]
        admin: String,
        /// Bearer token (default: DIR/admin-token, written by `vigie demo`).
        #[arg(long, env = "VIGIE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Fraction revoked.
        #[arg(long, default_value_t = 0.1)]
        revoke_fraction: f64,
        /// Revocation reasons, used in turn.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "keyCompromise,superseded,affiliationChanged,cessationOfOperation"
        )]
        reasons: Vec<String>,
        /// Certificates per POST.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Signing threads (0: one per CPU).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Uploads in flight.
        #[arg(long, default_value_t = 4)]
        uploads: usize,
        /// Subject key type (one key for all certificates).
        #[arg(long, value_enum, default_value = "p256")]
        key: KeyType,
        /// Only these CAs (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        cas: Vec<String>,
        /// Population file to append to (default DIR/population.jsonl).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only measure the issuing rate (no upload), for this many certificates.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rebuild report.html from a result.json.
    Report {
        /// The result file.
        result: PathBuf,
        /// Output (default: report.html beside the result).
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

impl Common {
    fn scenario(&self, default: Scenario) -> anyhow::Result<Scenario> {
        let mut s = match &self.scenario {
            Some(p) => Scenario::read(p)?,
            None => default,
        };
        let l = &mut s.load;
        if let Some(v) = self.connections {
            l.connections = v;
        }
        if let Some(v) = &self.duration {
            l.duration = v.clone();
        }
        if let Some(v) = &self.warmup {
            l.warmup = v.clone();
        }
        if let Some(v) = self.rate {
            l.rate = v;
        }
        if let Some(v) = &self.timeout {
            l.timeout = v.clone();
        }
        if let Some(v) = self.threads {
            l.threads = v;
        }
        if let Some(v) = self.seed {
            l.seed = v;
        }
        let o = &mut s.ocsp;
        if let Some(v) = &self.statuses {
            o.statuses = v.clone();
        }
        if let Some(v) = &self.distribution {
            o.distribution = v.clone();
        }
        if let Some(v) = &self.hash {
            o.hash = v.clone();
        }
        if let Some(v) = self.verify_rate {
            o.verify_rate = v;
        }
        if let Some(v) = self.unknown_pool {
            o.unknown_pool = v;
        }
        if let Some(v) = self.nonce_bytes {
            o.nonce_bytes = v;
        }
        Ok(s)
    }

    fn run_options(&self, label: String) -> RunOptions {
        RunOptions {
            demo_dir: self.demo_dir.clone(),
            public_url: self.url.clone(),
            admin_url: Some(self.admin.clone()),
            token: self.token.clone().or_else(|| demo_token(&self.demo_dir)),
            population: match (&self.population, self.samples) {
                (Some(p), _) => PopulationChoice::File(p.clone()),
                (None, true) => PopulationChoice::Samples,
                (None, false) => PopulationChoice::Auto,
            },
            label,
            server_pids: self.server_pid.clone(),
            progress: !self.quiet,
            command: command_line(),
            post_to_file_path: false,
            only_cas: self.cas.clone(),
        }
    }
}

/// The bearer token `vigie demo` writes to `DIR/admin-token`, when there is one.
fn demo_token(demo_dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(demo_dir.join("admin-token"))
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn default_label(s: &Scenario) -> String {
    if s.load.rate > 0.0 {
        format!("{}-open-{}rps", s.name, s.load.rate.round())
    } else {
        format!("{}-closed-c{}", s.name, s.load.connections)
    }
}

/// Runs a scenario: prints the summary, writes the files, returns the exit code.
fn load(common: &Common, scenario: Scenario) -> anyhow::Result<ExitCode> {
    let plan = scenario.plan()?;
    let label = common
        .label
        .clone()
        .unwrap_or_else(|| default_label(&scenario));
    let opts = common.run_options(label.clone());
    let prep = runner::prepare(&opts, &plan)?;
    eprintln!(
        "{}: {} certificates from {} ({} good, {} revoked) against {}",
        label,
        prep.info.entries,
        prep.info.source,
        prep.info.good,
        prep.info.revoked,
        opts.public_url
    );
    let result = runner::execute(&opts, &plan, &prep)?;
    print!("{}", report::terminal(&result));
    if !common.no_save {
        let dir = match &common.out {
            Some(d) => d.clone(),
            None => runner::dated_dir(&runner::default_results_base(), &label)?,
        };
        runner::write_results(&result, &dir, true)?;
        println!("results: {}", dir.display());
    }
    Ok(if result.totals.wrong > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn ocsp_scenario(method: Method, nonce: bool) -> Scenario {
    let suffix = if nonce { "-nonce" } else { "" };
    let mut s = Scenario {
        name: match (method, nonce) {
            (Method::Post, false) => "ocsp-post",
            (Method::Get, false) => "ocsp-get",
            (Method::Both, false) => "ocsp",
            (Method::Post, true) => "ocsp-post-nonce",
            (Method::Get, true) => "ocsp-get-nonce",
            (Method::Both, true) => "ocsp-nonce",
        }
        .into(),
        ..Scenario::default()
    };
    s.mix.clear();
    if matches!(method, Method::Post | Method::Both) {
        s.mix.insert(format!("ocsp-post{suffix}"), 1.0);
    }
    if matches!(method, Method::Get | Method::Both) {
        s.mix.insert(format!("ocsp-get{suffix}"), 1.0);
    }
    s
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigie-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ocsp {
            common,
            method,
            nonce,
        } => {
            let s = common.scenario(ocsp_scenario(method, nonce))?;
            load(&common, s)
        }
        Command::Crl {
            common,
            delta_share,
            conditional_share,
        } => {
            let mut s = common.scenario(Scenario {
                name: "crl".into(),
                ..Scenario::default()
            })?;
            if common.scenario.is_none() {
                let (d, c) = (
                    delta_share.clamp(0.0, 1.0),
                    conditional_share.clamp(0.0, 1.0),
                );
                s.mix = [
                    ("crl-full", (1.0 - d) * (1.0 - c)),
                    ("crl-full-conditional", (1.0 - d) * c),
                    ("crl-delta", d * (1.0 - c)),
                    ("crl-delta-conditional", d * c),
                ]
                .into_iter()
                .map(|(k, w)| (k.to_owned(), w))
                .collect();
                if common.connections.is_none() {
                    s.load.connections = 8;
                }
            }
            load(&common, s)
        }
        Command::Ingest {
            common,
            batch,
            revoke_share,
            no_visibility,
        } => {
            let mut s = common.scenario(Scenario {
                name: "ingest".into(),
                ..Scenario::default()
            })?;
            if common.scenario.is_none() {
                let r = revoke_share.clamp(0.0, 1.0);
                s.mix = [("ingest-revoke", r), ("ingest-issue", 1.0 - r)]
                    .into_iter()
                    .map(|(k, w)| (k.to_owned(), w))
                    .collect();
                if common.connections.is_none() {
                    s.load.connections = 8;
                }
            }
            if let Some(b) = batch {
                s.ingest.batch = b;
            }
            if no_visibility {
                s.ingest.visibility = false;
            }
            load(&common, s)
        }
        Command::Mixed { common } => {
            let default = PathBuf::from("load-tests/scenarios/mixed.toml");
            let file = common.scenario.clone().unwrap_or(default);
            let s = Scenario::read(&file)
                .with_context(|| "the mixed scenario (give --scenario FILE)".to_string())?;
            let mut c = common.clone();
            c.scenario = None;
            let s = c.scenario(s)?;
            load(&common, s)
        }
        Command::Run { file, common } => {
            let s = Scenario::read(&file)?;
            let mut c = common.clone();
            c.scenario = None;
            let s = c.scenario(s)?;
            load(&common, s)
        }
        Command::Compare {
            common,
            method,
            rounds,
            nginx,
            max_entries,
        } => {
            let mut base = ocsp_scenario(Method::Get, false);
            base.name = "compare".into();
            base.load.duration = "20s".into();
            let s = common.scenario(base)?;
            let label = common
                .label
                .clone()
                .unwrap_or_else(|| format!("compare-c{}", s.load.connections));
            let out = if common.no_save {
                None
            } else {
                Some(match &common.out {
                    Some(d) => d.clone(),
                    None => runner::dated_dir(&runner::default_results_base(), &label)?,
                })
            };
            let mut run = common.run_options(label);
            run.progress = !common.quiet;
            let opts = CompareOptions {
                run,
                nginx,
                methods: method,
                rounds,
                max_entries,
                out: out.clone(),
            };
            let (cmp, text) = compare::run(&opts, &s)?;
            print!("{text}");
            if let Some(dir) = out {
                std::fs::write(dir.join("compare.txt"), &text)?;
                std::fs::write(dir.join("compare.json"), serde_json::to_vec_pretty(&cmp)?)?;
                println!("results: {}", dir.display());
            }
            let wrong: u64 = cmp.methods.iter().map(|m| m.wrong.0 + m.wrong.1).sum();
            Ok(if wrong > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Seed {
            demo_dir,
            count,
            admin,
            token,
            revoke_fraction,
            reasons,
            batch,
            threads,
            uploads,
            key,
            cas,
            out,
            dry_run,
        } => {
            if dry_run {
                let f = seed::CertFactory::from_demo(&demo_dir, &cas, key)?;
                let rate = seed::issue_only(&f, count, threads)?;
                println!("issued {count} certificates (not uploaded): {rate:.0} per second");
                return Ok(ExitCode::SUCCESS);
            }
            let out = out.unwrap_or_else(|| demo_dir.join("population.jsonl"));
            let token = token.or_else(|| demo_token(&demo_dir)).ok_or_else(|| {
                anyhow::anyhow!(
                    "no --token, no VIGIE_TOKEN, and no admin-token in the demo directory"
                )
            })?;
            let opts = SeedOptions {
                demo_dir,
                count,
                admin,
                token,
                revoke_fraction,
                reasons,
                batch,
                threads,
                uploads,
                key,
                cas,
                out,
                // A progress bar on a terminal; nothing in logs and pipes.
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let r = seed::run(&opts)?;
            println!(
                "registered {} certificates ({} revoked) in {:.1} s ({:.0}/s); population: {}",
                r.registered,
                r.revoked,
                r.seconds,
                r.registered as f64 / r.seconds.max(1e-9),
                r.population
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { result, html } => {
            let text =
                std::fs::read(&result).with_context(|| format!("reading {}", result.display()))?;
            let r: RunResult = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a vigie-load result", result.display()))?;
            let out = html.unwrap_or_else(|| result.with_file_name("report.html"));
            std::fs::write(&out, report::html(&r))?;
            print!("{}", report::terminal(&r));
            println!("report: {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
