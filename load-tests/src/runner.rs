//! One load run from start to finish: reads the target's CAs and the population, prepares the
//! chooser (and the certificate factory when issuing), runs the engine on a tokio runtime with
//! the plan's thread count while showing a live progress line, watches the server's and the
//! generator's CPU and memory, and assembles the [`RunResult`]; [`write_results`] stores it as
//! `result.json` + `report.html` in a dated directory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::engine::{self, Context, Targets};
use crate::http::Endpoint;
use crate::issuers::Issuers;
use crate::machine::{self, Machine, Watch};
use crate::population::{Appender, Line, Population};
use crate::report::{IngestInfo, Message, PopulationInfo, RunResult};
use crate::scenario::Plan;
use crate::seed::{CertFactory, KeyType};
use crate::select::Picker;
use crate::stats::{self, Kind, Shared};

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target's CAs.
    #[error("{0}")]
    Issuers(#[from] crate::issuers::Error),
    /// The population.
    #[error("{0}")]
    Population(#[from] crate::population::Error),
    /// The chooser.
    #[error("{0}")]
    Select(#[from] crate::select::Error),
    /// A URL.
    #[error("{0}")]
    Http(#[from] crate::http::Error),
    /// Issuing certificates for `ingest-issue`.
    #[error("{0}")]
    Seed(#[from] crate::seed::Error),
    /// Files and runtime.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Missing option.
    #[error("{0}")]
    Option(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Which population to aim at.
#[derive(Debug, Clone)]
pub enum PopulationChoice {
    /// `DIR/population.jsonl` when it exists, else the demo's sample certificates.
    Auto,
    /// This file.
    File(PathBuf),
    /// The demo's 14 sample certificates.
    Samples,
}

/// Options of a run that are not part of the scenario (where, who, what to write).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The demo directory (`vigie demo --dir`).
    pub demo_dir: PathBuf,
    /// Public listener URL.
    pub public_url: String,
    /// Admin listener URL.
    pub admin_url: Option<String>,
    /// Bearer token for the admin listener.
    pub token: Option<String>,
    /// The population.
    pub population: PopulationChoice,
    /// Label of the run.
    pub label: String,
    /// Server processes to watch (empty: the processes listening on the public port).
    pub server_pids: Vec<u32>,
    /// Show the live progress line.
    pub progress: bool,
    /// The command line, for the record.
    pub command: String,
    /// POST OCSP requests to `/ocsp/<URL-safe base64>` instead of `/ocsp` (for a static
    /// server that picks the answer by path: `compare`).
    pub post_to_file_path: bool,
    /// Only certificates of these CAs (empty: all), e.g. to measure one signer key type.
    pub only_cas: Vec<String>,
}

/// Everything a run aims at, prepared once (a `compare` runs twice on the same).
pub struct Prepared {
    /// The target's CAs.
    pub issuers: Arc<Issuers>,
    /// The population.
    pub population: Arc<Population>,
    /// Population file, when there is one (runs that revoke or issue append to it).
    pub population_file: Option<PathBuf>,
    /// The chooser.
    pub picker: Arc<Picker>,
    /// What the population was at the start.
    pub info: PopulationInfo,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Reads the CAs and the population and builds the chooser.
pub fn prepare(opts: &RunOptions, plan: &Plan) -> Result<Prepared, Error> {
    let issuers = Issuers::from_demo_dir(&opts.demo_dir)?;
    let ids = issuers.ids();
    let default_file = opts.demo_dir.join("population.jsonl");
    let (population, file) = match &opts.population {
        PopulationChoice::File(p) => (Population::read(p, &ids)?, Some(p.clone())),
        PopulationChoice::Auto if default_file.is_file() => {
            (Population::read(&default_file, &ids)?, Some(default_file))
        }
        PopulationChoice::Auto if plan.uses(Kind::is_ingest) => {
            // A run that revokes changes what later runs must expect: start the population
            // file from the demo's samples, so that it records the changes.
            let p = Population::from_demo(&issuers.pki)?;
            let mut a = Appender::open(&default_file)?;
            for e in &p.entries {
                a.push(&Line::new(&p.cas[e.ca as usize], &e.serial, e.expected()))?;
            }
            a.flush()?;
            eprintln!(
                "population: the demo's samples, written to {} to record this run's changes",
                default_file.display()
            );
            (Population::read(&default_file, &ids)?, Some(default_file))
        }
        PopulationChoice::Auto | PopulationChoice::Samples => {
            (Population::from_demo(&issuers.pki)?, None)
        }
    };
    let population = if opts.only_cas.is_empty() {
        population
    } else {
        for id in &opts.only_cas {
            if !ids.contains(id) {
                return Err(Error::Option(format!(
                    "--cas: {id} is not a CA of the demo"
                )));
            }
        }
        let keep: Vec<u16> = opts
            .only_cas
            .iter()
            .filter_map(|id| population.cas.iter().position(|c| c == id))
            .map(|i| i as u16)
            .collect();
        Population {
            source: format!("{} (CAs {})", population.source, opts.only_cas.join(", ")),
            entries: population
                .entries
                .into_iter()
                .filter(|e| keep.contains(&e.ca))
                .collect(),
            cas: population.cas,
        }
    };
    let (good, revoked) = population.counts();
    let info = PopulationInfo {
        source: population.source.clone(),
        entries: population.entries.len(),
        good,
        revoked,
    };
    let o = &plan.scenario.ocsp;
    let picker = Picker::new(
        &population,
        plan.statuses,
        plan.distribution,
        o.unknown_pool,
        plan.scenario.load.seed,
    )?;
    Ok(Prepared {
        issuers: Arc::new(issuers),
        population: Arc::new(population),
        population_file: file,
        picker: Arc::new(picker),
        info,
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn progress_line(shared: &Shared, elapsed: Duration, total: Duration, last: &mut u64) -> String {
    let done = shared.done.load(Ordering::Relaxed);
    let per_s = done - *last;
    *last = done;
    let secs = elapsed.as_secs() as usize;
    let p99 = secs
        .checked_sub(1)
        .and_then(|s| shared.second_summary(s))
        .map_or("-".to_owned(), |(_, p)| {
            format!("{:.2} ms", p as f64 / 1000.0)
        });
    format!(
        "[{:>3}/{} s] {:>7} req/s  p99(last s) {:>9}  total {:>9}  wrong {}  errors {}",
        elapsed.as_secs(),
        total.as_secs(),
        per_s,
        p99,
        done,
        shared.wrong.load(Ordering::Relaxed),
        shared.errors.load(Ordering::Relaxed)
    )
}

/// Runs a plan against `targets` with what `prep` prepared.
pub fn execute(opts: &RunOptions, plan: &Plan, prep: &Prepared) -> Result<RunResult, Error> {
    // One thread: a current-thread runtime (no work-stealing, no cross-thread wake-ups).
    let rt = if plan.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(plan.threads)
            .enable_all()
            .build()
    }
    .map_err(io("starting the runtime"))?;
    let (publics, admin) = rt.block_on(async {
        let mut publics = Vec::new();
        for url in opts
            .public_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            publics.push(Endpoint::parse(url).await?);
        }
        let admin = match &opts.admin_url {
            Some(a) => Some(Endpoint::parse(a).await?),
            None => None,
        };
        Ok::<_, Error>((publics, admin))
    })?;
    let public = publics
        .first()
        .cloned()
        .ok_or_else(|| Error::Option("--url: no URL given".into()))?;
    let uses_ingest = plan.uses(Kind::is_ingest);
    if uses_ingest && (admin.is_none() || opts.token.is_none()) {
        return Err(Error::Option(
            "this scenario sends ingest requests: give --admin URL and --token (or VIGIE_TOKEN)"
                .into(),
        ));
    }
    let factory = if plan.uses(|k| k == Kind::IngestIssue) {
        Some(Arc::new(CertFactory::from_demo(
            &opts.demo_dir,
            &[],
            KeyType::P256,
        )?))
    } else {
        None
    };
    let mut pool = Vec::new();
    if let Some(f) = &factory {
        use rayon::prelude::*;
        let n = plan.scenario.ingest.issue_pool;
        eprintln!("issuing {n} certificates for ingest-issue before the run…");
        pool = (0..n)
            .into_par_iter()
            .map(|i| f.issue(i))
            .collect::<Result<Vec<_>, _>>()?;
    }
    let appender = match (&prep.population_file, uses_ingest) {
        (Some(p), true) => Some(Mutex::new(Appender::open(p)?)),
        _ => None,
    };
    if uses_ingest && appender.is_none() {
        eprintln!(
            "note: the population is the demo's samples (no population file); revocations made by this run are not recorded for later runs"
        );
    }
    let ctx = Arc::new(Context {
        issuers: Arc::clone(&prep.issuers),
        population: Arc::clone(&prep.population),
        picker: Arc::clone(&prep.picker),
        factory,
        issued_pool: Mutex::new(pool),
        appender,
        uncertain_revocations: Default::default(),
        issued_on_the_fly: Default::default(),
        registered: Default::default(),
        verifier: crate::check::SignatureVerifier::new(),
        fresh: Mutex::new(Vec::new()),
    });
    let server_pids = if opts.server_pids.is_empty() {
        if publics.iter().all(|p| p.addr.ip().is_loopback()) {
            publics
                .iter()
                .flat_map(|p| machine::pids_listening_on(p.addr.port()))
                .collect()
        } else {
            Vec::new()
        }
    } else {
        opts.server_pids.clone()
    };
    let machine = Machine::probe();
    let started_at = now_rfc3339();
    let targets = Targets {
        public: public.clone(),
        publics: publics.clone(),
        admin: admin.clone(),
        token: opts.token.clone(),
        post_to_file_path: opts.post_to_file_path,
    };
    let interactive = opts.progress && std::io::stderr().is_terminal();
    let bar = if interactive {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    // CPU and memory are accounted from the end of the warm-up; memory is sampled every second.
    let mut watches: Option<(Watch, Option<Watch>)> = None;
    let mut last = 0u64;
    let warmup = plan.warmup;
    let show_plain = opts.progress && !interactive;
    let sampler = admin.as_ref().map(|a| {
        crate::server_metrics::Sampler::start(a.addr, a.host.clone(), std::time::Instant::now())
    });
    let out = rt.block_on(engine::run(
        plan,
        targets,
        ctx.clone(),
        |shared, elapsed, total| {
            let line = progress_line(shared, elapsed, total, &mut last);
            if interactive {
                bar.set_message(line);
                bar.tick();
            } else if show_plain && elapsed.as_secs() % 5 == 0 {
                eprintln!("{line}");
            }
            match &mut watches {
                None if elapsed >= warmup => {
                    watches = Some((
                        Watch::start(Vec::new()),
                        (!server_pids.is_empty()).then(|| Watch::start(server_pids.clone())),
                    ));
                }
                Some((own, server)) => {
                    own.sample();
                    if let Some(s) = server {
                        s.sample();
                    }
                }
                None => {}
            }
        },
    ));
    bar.finish_and_clear();
    let server_metrics = sampler.map(|s| s.finish()).unwrap_or_default();
    let requests = out.recorder.requests();
    let (mut own, server) = watches.unwrap_or_else(|| (Watch::start(Vec::new()), None));
    let generator = own.finish(out.measured_seconds, requests);
    let server = server.map(|mut w| w.finish(out.measured_seconds, requests));
    let (totals, kinds) = stats::summaries(&out.recorder, out.measured_seconds);
    let messages = out
        .recorder
        .messages
        .iter()
        .map(|((class, text), count)| Message {
            class: class.clone(),
            text: text.clone(),
            count: *count,
        })
        .collect();
    if let Some(a) = &ctx.appender {
        a.lock().unwrap_or_else(|p| p.into_inner()).flush()?;
    }
    let model = match plan.rate {
        Some(r) => format!(
            "open loop at {r:.0} requests/s over {} connections",
            plan.connections
        ),
        None => format!("closed loop, {} connections", plan.connections),
    };
    let mut targets = std::collections::BTreeMap::new();
    targets.insert("public".to_owned(), opts.public_url.clone());
    if let Some(a) = opts.admin_url.as_ref().filter(|_| uses_ingest) {
        targets.insert("admin".to_owned(), a.clone());
    }
    Ok(RunResult {
        tool: format!("vigie-load {}", env!("CARGO_PKG_VERSION")),
        label: opts.label.clone(),
        started_at,
        command: opts.command.clone(),
        model,
        scenario: plan.scenario.clone(),
        targets,
        population: prep.info.clone(),
        machine,
        commit: machine::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        measured_seconds: out.measured_seconds,
        warmup_seconds: plan.warmup.as_secs_f64(),
        interrupted: out.interrupted,
        generator,
        server,
        totals,
        kinds,
        visibility: stats::visibility(&out.shared),
        signatures_verified: out.shared.verified.load(Ordering::Relaxed),
        ingest: uses_ingest.then(|| IngestInfo {
            registered: ctx.registered.load(Ordering::Relaxed),
            issued_on_the_fly: ctx.issued_on_the_fly.load(Ordering::Relaxed),
            uncertain_revocations: ctx.uncertain_revocations.load(Ordering::Relaxed),
        }),
        messages,
        timeline: stats::timeline(&out.shared, plan.warmup),
        server_metrics,
    })
}

/// A fresh directory `base/<YYYY-MM-DD>-<label>` (suffixed `-2`, `-3` … if taken).
pub fn dated_dir(base: &Path, label: &str) -> Result<PathBuf, Error> {
    let date = now_rfc3339().chars().take(10).collect::<String>();
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut dir = base.join(format!("{date}-{clean}"));
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{date}-{clean}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// The default results directory: `load-tests/results` under the current directory when it is
/// the repository root, else `load-tests/results` next to this crate when run from its source
/// tree, else `./vigie-load-results`.
pub fn default_results_base() -> PathBuf {
    let here = Path::new("load-tests/results");
    if Path::new("load-tests").is_dir() {
        return here.to_owned();
    }
    if Path::new("scenarios").is_dir() && Path::new("Cargo.toml").is_file() {
        return PathBuf::from("results");
    }
    PathBuf::from("vigie-load-results")
}

/// Writes `result.json` and `report.html` (unless `html` is false) into `dir`.
pub fn write_results(r: &RunResult, dir: &Path, html: bool) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Io {
        what: "serialising the result".into(),
        source: std::io::Error::other(e),
    })?;
    let path = dir.join("result.json");
    std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    if html {
        let path = dir.join("report.html");
        std::fs::write(&path, crate::report::html(r))
            .map_err(io(format!("writing {}", path.display())))?;
    }
    Ok(())
}
