//! The `vigie` command: `serve`, `demo`, `check`; `import` (offline, an OpenSSL `index.txt`);
//! `crl build` (offline); `backup create`/`backup restore`; `revoke`, `release`, `status`,
//! `audit` (clients of the admin API, token from `VIGIE_TOKEN`); `probe` (the service checked
//! from outside, as a relying party sees it).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vigie::clock::SystemClock;
use vigie::config::Config;
use vigie::demo::{self, DemoSetup};

/// jemalloc serves every allocation of the process — RocksDB's C++ included, through the
/// unprefixed `malloc` symbols — with its background threads returning freed pages: glibc's
/// per-thread arenas kept what RocksDB's compactions and block-cache churn had freed (RSS 363
/// MB at the end of a 10⁶-answer pre-signing pass against ~170 MB of configured caches). Its
/// built-in options (how soon freed pages go back) are set in `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Certificate revocation service: OCSP responder, CRL publisher, CA ingest API.
#[derive(Parser, Debug)]
#[command(name = "vigie", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve OCSP (and CRLs) on the public listener, the admin API on the admin listener.
    Serve {
        /// Configuration file.
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
    },
    /// Create (once) a test PKI shaped like IGC-Santé, register sample certificates, and serve it.
    Demo {
        /// Directory for the PKI, configuration and data.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Public listener (also the URL written into the certificates).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Admin listener.
        #[arg(long, default_value = "127.0.0.1:8081")]
        admin_listen: String,
        /// RSA modulus size of the CA keys.
        #[arg(long, default_value_t = 4096)]
        ca_bits: u32,
        /// Prepare everything and print the commands, but do not serve.
        #[arg(long)]
        no_serve: bool,
        /// Keep the issuing CA and OCSP signer keys in a SoftHSM2 token made in the demo
        /// directory (keys generated inside it, not extractable), used through PKCS#11 URIs.
        #[arg(long)]
        hsm: bool,
        /// Also publish CRLs to this LDAP directory (ldap://host:port or ldaps://…); it needs a
        /// naming context holding c=FR (the demo CAs' DNs end with it).
        #[arg(long)]
        ldap: Option<String>,
        /// DN to bind to the LDAP directory as.
        #[arg(long, default_value = vigie::demo::DEMO_LDAP_BIND_DN, requires = "ldap")]
        ldap_bind_dn: String,
        /// File holding the bind password [default: {dir}/ldap-password].
        #[arg(long, requires = "ldap")]
        ldap_password_file: Option<PathBuf>,
    },
    /// Check a configuration file (certificates, keys, every key) and exit.
    Check {
        /// Configuration file.
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
    },
    /// Load an OpenSSL CA database (index.txt) into the store, offline (stop `vigie serve` first:
    /// it holds the store's lock).
    Import {
        /// The CA the database belongs to (its [[ca]] id).
        #[arg(long)]
        ca: String,
        /// Configuration file.
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
        /// Lines per transaction.
        #[arg(long, default_value_t = 10_000)]
        chunk: usize,
        /// Directory of the issued certificates, `<SERIAL>.pem` as `openssl ca` writes them
        /// (its new_certs_dir): lines with one are registered from the certificate (notBefore,
        /// CRL distribution points for the CRL scope).
        #[arg(long)]
        certs: Option<PathBuf>,
        /// The index.txt file.
        index: PathBuf,
    },
    /// Revoke a certificate through the admin API (bearer token from VIGIE_TOKEN).
    Revoke {
        #[command(flatten)]
        api: ApiArgs,
        /// The CA id.
        #[arg(long)]
        ca: String,
        /// The serial, hexadecimal.
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason name (keyCompromise, superseded, certificateHold …); none if omitted.
        #[arg(long)]
        reason: Option<String>,
        /// Revocation time, RFC 3339 (default: now).
        #[arg(long)]
        revoked_at: Option<String>,
        /// Invalidity date, RFC 3339.
        #[arg(long)]
        invalidity_date: Option<String>,
    },
    /// Release a certificateHold through the admin API.
    Release {
        #[command(flatten)]
        api: ApiArgs,
        /// The CA id.
        #[arg(long)]
        ca: String,
        /// The serial, hexadecimal.
        #[arg(long)]
        serial: String,
    },
    /// Show the service's readiness and CAs, or one certificate's record, through the admin API.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// The CA id (with --serial: show that record).
        #[arg(long, requires = "serial")]
        ca: Option<String>,
        /// The serial, hexadecimal.
        #[arg(long, requires = "ca")]
        serial: Option<String>,
    },
    /// Print the audit trail of the ingest API (who changed what, from where, with what
    /// outcome), oldest first, through the admin API.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only entries of this CA id.
        #[arg(long)]
        ca: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only entries after this entry id (to read the next page).
        #[arg(long)]
        after: Option<String>,
        /// Print the JSON array instead of one line per entry.
        #[arg(long)]
        json: bool,
    },
    /// Check the service from outside, as a relying party: CRLs (signature, issuer, number,
    /// scope, nextUpdate) and OCSP (GET and POST: signature, signer, times, agreement with the
    /// CRL). Prints a table; exits 1 on any problem.
    Probe {
        /// A vigie configuration: its CAs (certificates, expected CRL URLs) and public_url.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Base URL of the public listener (default: public_url of --config).
        #[arg(long)]
        url: Option<String>,
        /// A CA to probe, ID=CERT_FILE (repeatable; with or instead of --config).
        #[arg(long = "ca", value_name = "ID=CERT")]
        cas: Vec<String>,
        /// The base URL certificates name for CRLs, for checking IssuingDistributionPoint of
        /// CAs given with --ca (default: not compared).
        #[arg(long)]
        crl_url_base: Option<String>,
        /// OCSP URL (default: {url}/ocsp).
        #[arg(long)]
        ocsp_url: Option<String>,
        /// A serial to ask OCSP about, ID:HEX (repeatable).
        #[arg(long = "serial", value_name = "ID:HEX")]
        serials: Vec<String>,
        /// Revoked serials taken from each CA's CRLs to ask OCSP about.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// File keeping the last CRL numbers seen (JSON), to catch numbers going back.
        #[arg(long)]
        state: Option<PathBuf>,
        /// A CRL with less than this left before nextUpdate is a problem.
        #[arg(long, default_value = "30m")]
        crl_min_remaining: humantime::Duration,
        /// An OCSP signer with fewer days left is a problem.
        #[arg(long, default_value_t = 14)]
        signer_min_days: i64,
        /// HTTP timeout.
        #[arg(long, default_value = "30s")]
        timeout: humantime::Duration,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the figures in Prometheus textfile-collector format to FILE (atomically).
        #[arg(long, value_name = "FILE")]
        prometheus: Option<PathBuf>,
    },
    /// CRL operations.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
    },
    /// Backups of the store (online: `vigie serve` may keep running).
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Make a consistent copy of the store into DIR (new or empty) while the server runs,
    /// including the replication stream position its data corresponds to.
    Create {
        /// Configuration file (its [store] path is copied).
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
        /// Where to write the backup.
        dir: PathBuf,
    },
    /// Put the backup in DIR in place as the store of the configuration (which must not exist
    /// or be empty); a replica started on it resumes the stream from the backup's position.
    Restore {
        /// Configuration file (its [store] path receives the backup).
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
        /// The backup.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum CrlCommand {
    /// Build, sign and store a CRL now, offline: works on the data directory itself, so the
    /// server must be stopped (a running server builds on its own schedule and deadlines). The
    /// CRL gets the next number of the CA's sequence and is what the server serves when it
    /// starts. A complete CRL is followed by a delta on it when the CA has delta CRLs.
    Build {
        /// Configuration file.
        #[arg(long, short, default_value = "config/vigie.toml", env = "VIGIE_CONFIG")]
        config: PathBuf,
        /// The CA's id.
        #[arg(long)]
        ca: String,
        /// Build a delta CRL (on the latest complete CRL; a complete one first if needed).
        #[arg(long)]
        delta: bool,
        /// Also write the CRL (DER) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Where the admin API is.
#[derive(clap::Args, Debug)]
struct ApiArgs {
    /// Base URL of the admin listener (plain HTTP; use curl for an HTTPS/mTLS listener).
    #[arg(long, default_value = "http://127.0.0.1:8081", env = "VIGIE_ADMIN_URL")]
    url: String,
}

/// Calls the admin API; prints the JSON answer; fails on an error status with its problem detail.
fn call_api(
    api: &ApiArgs,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, &url);
    if let Ok(token) = std::env::var("VIGIE_TOKEN") {
        req = req.set("Authorization", &format!("Bearer {}", token.trim()));
    }
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or(text);
            let hint = if code == 401 {
                " (set VIGIE_TOKEN to the bearer token)"
            } else {
                ""
            };
            anyhow::bail!("{method} {url}: HTTP {code}: {detail}{hint}");
        }
        Err(e) => anyhow::bail!("{method} {url}: {e}"),
    };
    Ok(response.into_json()?)
}

/// `vigie audit`: one line per entry, tab-separated (time, actor, address, action, CA, serial,
/// reason, outcome), the problem of a refusal after it.
fn audit(
    api: &ApiArgs,
    params: &[(&str, Option<String>)],
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut query = format!("limit={limit}");
    for (k, v) in params {
        if let Some(v) = v {
            query.push_str(&format!(
                "&{k}={}",
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            ));
        }
    }
    let entries = call_api(api, "GET", &format!("/v1/audit?{query}"), None)?;
    if json {
        return print_json(&entries);
    }
    let list = entries.as_array().cloned().unwrap_or_default();
    let field = |e: &serde_json::Value, k: &str| match &e[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    for e in &list {
        let mut line = [
            "at", "actor", "address", "action", "ca", "serial", "reason", "outcome",
        ]
        .iter()
        .map(|k| field(e, k))
        .collect::<Vec<_>>()
        .join("\t");
        if let Some(p) = e["problem"].as_object() {
            line.push_str(&format!(
                "\t{} {}: {}",
                p.get("status").map_or_else(String::new, |s| s.to_string()),
                p.get("kind").and_then(|k| k.as_str()).unwrap_or(""),
                p.get("detail").and_then(|k| k.as_str()).unwrap_or("")
            ));
        }
        println!("{line}");
    }
    if list.len() == limit
        && let Some(last) = list.last()
    {
        eprintln!("(limit reached: --after {} for more)", field(last, "id"));
    }
    Ok(())
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn import(
    config: &Config,
    ca: &str,
    index: &std::path::Path,
    chunk: usize,
    certs: Option<PathBuf>,
) -> anyhow::Result<()> {
    use vigie::ingest::import::{CertificateDir, ImportOptions, import};
    let ca_id = config
        .cas
        .iter()
        .find(|c| c.id.as_str() == ca)
        .map(|c| c.id.clone())
        .with_context(|| format!("no [[ca]] with id {ca:?} in {}", config.source.display()))?;
    let file =
        std::fs::File::open(index).with_context(|| format!("opening {}", index.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let store = vigie::service::open_store(config).map_err(|e| {
        let text = e.to_string();
        if text.contains("lock") {
            anyhow::anyhow!(
                "the store at {} is in use ({text}): is `vigie serve` running on it? Stop it, import, start it again",
                config.store.path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("opening the store at {}", config.store.path.display()))
        }
    })?;
    let bar = progress_bar(
        size,
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}, eta {eta} {msg}",
    );
    let started = std::time::Instant::now();
    let now = vigie::clock::Clock::now(&SystemClock);
    let options = ImportOptions {
        chunk,
        certificates: certs.map(|dir| CertificateDir {
            dir,
            registry: Arc::new(vigie::pki::CaRegistry::from_config(config)),
        }),
        ..ImportOptions::default()
    };
    let summary = import(
        &store,
        &ca_id,
        std::io::BufReader::with_capacity(1 << 20, file),
        now,
        &options,
        |bytes, s| {
            bar.set_position(bytes);
            bar.set_message(format!("{} lines", s.lines));
        },
    )?;
    bar.finish_and_clear();
    store.flush()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} into CA {ca_id} in {secs:.1} s ({:.0} lines/s)",
        index.display(),
        summary.lines as f64 / secs.max(1e-9)
    );
    println!("  lines read   {}", summary.lines);
    for (status, n) in &summary.by_status {
        let name = match status {
            'V' => "valid",
            'R' => "revoked",
            _ => "expired",
        };
        println!("    {status} ({name:7}) {n}");
    }
    println!("  events applied   {}", summary.applied);
    if summary.from_certificates > 0 {
        println!(
            "  from certificates {} (notBefore and CRL distribution points read)",
            summary.from_certificates
        );
    }
    println!(
        "  events unchanged {} (already recorded)",
        summary.unchanged
    );
    println!("  lines skipped    {}", summary.skipped_total());
    for (cause, n) in &summary.skipped_by_cause {
        println!("    {cause}: {n}");
    }
    for (line, why) in &summary.skipped {
        println!("    line {line}: {why}");
    }
    if summary.skipped.len() as u64 > 0 && summary.skipped_total() > summary.skipped.len() as u64 {
        println!(
            "    … and {} more",
            summary.skipped_total() - summary.skipped.len() as u64
        );
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal; a hidden one otherwise (logs, pipes, cron).
fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald gets plain `key=value` text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// `vigie demo --hsm`: SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised, so this
/// process must start with the demo's. When it did not, it makes the file and starts itself
/// again with it (exec: same process id, same arguments).
fn demo_hsm_environment(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let conf = vigie::pki::demo_hsm::softhsm_conf(dir)?;
    if std::env::var_os("SOFTHSM2_CONF").is_some_and(|c| std::path::Path::new(&c) == conf) {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().context("finding the vigie executable")?;
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .exec();
        Err(anyhow::anyhow!("re-executing with SOFTHSM2_CONF: {err}"))
    }
    #[cfg(not(unix))]
    {
        anyhow::bail!("set SOFTHSM2_CONF={} and run again", conf.display())
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        vigie::service::run(config, vigie::clock::service_clock(), |bound| {
            println!("listening public http://{}", bound.public);
            let scheme = if bound.admin_tls { "https" } else { "http" };
            println!("listening admin {scheme}://{}", bound.admin);
        })
        .await
    })?;
    Ok(())
}

fn crl_build(
    config: &Config,
    ca: &str,
    delta: bool,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use vigie::crl::{CrlKind, Publisher};
    let registry = vigie::pki::CaRegistry::from_config(config);
    if let Some(problem) = registry.problem(ca) {
        anyhow::bail!("{problem}");
    }
    if registry.by_id(ca).is_none() {
        let ids: Vec<&str> = config.cas.iter().map(|c| c.id.as_str()).collect();
        anyhow::bail!(
            "no CA {ca:?} in {}; configured: {}",
            config.source.display(),
            ids.join(", ")
        );
    }
    let store = vigie::service::open_store(config).map_err(|e| {
        let text = e.to_string();
        if text.contains("LOCK") || text.contains("lock") {
            anyhow::anyhow!(
                "{} is in use, most likely by a running `vigie serve`: `vigie crl build` works \
                 offline. Either let the server build (its crl_schedule, and the deadline \
                 watchdog) or stop it, run this command, and start it again.\n({text})",
                config.store.path.display()
            )
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let bar = progress_bar(
        0,
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} partitions, {msg} ({per_sec}, eta {eta})",
    );
    let progress_bar = bar.clone();
    let publisher = Publisher::new(config, &registry, Arc::new(store), Arc::new(SystemClock))?
        .with_progress(Arc::new(move |step| match step {
            Some((done, all, entries)) => {
                progress_bar.set_length(all as u64);
                progress_bar.set_position(done as u64);
                progress_bar.set_message(format!("{entries} entries"));
            }
            None => progress_bar.set_message("signing and storing"),
        }));
    let kind = if delta { CrlKind::Delta } else { CrlKind::Full };
    let published = publisher.publish(ca, kind);
    bar.finish_and_clear();
    let published = published?;
    for p in &published {
        let t = p.timings.unwrap_or_default();
        println!(
            "CA {}: {} CRL number {}{} — {} entries, {} octets, thisUpdate {}, nextUpdate {}",
            p.ca,
            p.kind().label(),
            p.record.number,
            p.record
                .base
                .map(|b| format!(" (base {b})"))
                .unwrap_or_default(),
            p.record.entries,
            p.record.bytes,
            p.record.this_update,
            p.record.next_update,
        );
        println!(
            "  read+encode {:.3} s, sign {:.3} s, store {:.3} s; stored in {} (served as /crl/{}/{}.crl)",
            t.encode.as_secs_f64(),
            t.sign.as_secs_f64(),
            t.store.as_secs_f64(),
            config.store.path.display(),
            p.ca,
            p.record.number
        );
    }
    if let Some(path) = out {
        let wanted = published
            .iter()
            .rev()
            .find(|p| p.kind() == kind)
            .context("nothing of the requested kind was built")?;
        std::fs::write(path, &wanted.der).with_context(|| format!("writing {}", path.display()))?;
        println!("written to {}", path.display());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn probe(
    config: Option<PathBuf>,
    url: Option<String>,
    cas: Vec<String>,
    crl_url_base: Option<String>,
    ocsp_url: Option<String>,
    serials: Vec<String>,
    options: (usize, Option<PathBuf>, i64, i64, std::time::Duration),
    json: bool,
    prometheus: Option<PathBuf>,
) -> anyhow::Result<bool> {
    use vigie::probe;
    let (samples, state_file, crl_min_remaining, signer_min_days, timeout) = options;
    let config = config.map(|c| Config::load(&c)).transpose()?;
    let url = match (url, &config) {
        (Some(u), _) => u,
        (None, Some(c)) => c.public.public_url.clone(),
        (None, None) => anyhow::bail!("give --url (the public listener) or --config"),
    };
    if url.starts_with("ldap://") || url.starts_with("ldaps://") {
        anyhow::bail!("{url}: probing CRLs over LDAP is not supported yet; give the HTTP URL");
    }
    let mut probe_cas = match &config {
        Some(c) => probe::cas_from_config(c, &url),
        None => Vec::new(),
    };
    for spec in &cas {
        let (id, path) = spec
            .split_once('=')
            .with_context(|| format!("--ca {spec}: expected ID=CERT_FILE"))?;
        let cert = probe::read_ca(std::path::Path::new(path))?;
        probe_cas.retain(|c| c.id != id);
        probe_cas.push(probe::ca_from_cert(id, cert, &url, crl_url_base.as_deref()));
    }
    if probe_cas.is_empty() {
        anyhow::bail!("no CA to probe: give --config or --ca ID=CERT_FILE");
    }
    for spec in &serials {
        let (id, hex) = spec
            .split_once(':')
            .with_context(|| format!("--serial {spec}: expected ID:HEX"))?;
        let ca = probe_cas
            .iter_mut()
            .find(|c| c.id == id)
            .with_context(|| format!("--serial {spec}: no CA {id} to probe"))?;
        ca.serials.push(hex.to_owned());
    }
    let opts = probe::ProbeOptions {
        cas: probe_cas,
        ocsp_url: ocsp_url.unwrap_or_else(|| format!("{}/ocsp", url.trim_end_matches('/'))),
        samples,
        state_file,
        crl_min_remaining,
        signer_min_days,
        timeout,
    };
    let report = probe::run(&opts, vigie::clock::Clock::now(&SystemClock))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if let Some(path) = prometheus {
        probe::write_atomically(&path, report.prometheus().as_bytes())?;
    }
    Ok(report.ok)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            serve(config)
        }
        Command::Check { config } => {
            let config = Config::load(&config)?;
            let registry = vigie::pki::CaRegistry::from_config(&config);
            println!(
                "{}: {} CA(s) ready",
                config.source.display(),
                registry.len()
            );
            let now = vigie::clock::Clock::now(&SystemClock);
            for ca in registry.iter() {
                let signer = ca.signer_at(now);
                println!(
                    "  {}  {}  (OCSP signer {}, valid until {})",
                    ca.id,
                    ca.subject,
                    signer.signer.kind(),
                    signer.not_after
                );
                if let Some(next) = &ca.next_ocsp {
                    println!(
                        "      next OCSP signer {} from {}, valid until {}",
                        next.signer.signer.kind(),
                        next.at,
                        next.signer.not_after
                    );
                }
            }
            // Two CAs an OCSP request cannot tell apart: `serve` refuses to start.
            if let Err(e) = registry.refuse_ambiguous() {
                eprintln!("{}: {}", config.source.display(), e.message);
                std::process::exit(1);
            }
            // Every CA that would be left out, then a failure: `serve` would run without them.
            if !registry.problems().is_empty() {
                eprintln!(
                    "{}: {} CA(s) do not load:",
                    config.source.display(),
                    registry.problems().len()
                );
                for p in registry.problems() {
                    eprintln!("  {p}");
                }
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Import {
            ca,
            config,
            chunk,
            certs,
            index,
        } => {
            let config = Config::load(&config)?;
            import(&config, &ca, &index, chunk, certs)
        }
        Command::Revoke {
            api,
            ca,
            serial,
            reason,
            revoked_at,
            invalidity_date,
        } => {
            let mut body = serde_json::json!({ "ca": ca, "serial": serial });
            for (key, value) in [
                ("reason", reason),
                ("revoked_at", revoked_at),
                ("invalidity_date", invalidity_date),
            ] {
                if let Some(v) = value {
                    body[key] = serde_json::Value::String(v);
                }
            }
            print_json(&call_api(&api, "POST", "/v1/revocations", Some(body))?)
        }
        Command::Release { api, ca, serial } => print_json(&call_api(
            &api,
            "DELETE",
            &format!("/v1/revocations/{ca}/{serial}"),
            None,
        )?),
        Command::Status { api, ca, serial } => match (ca, serial) {
            (Some(ca), Some(serial)) => print_json(&call_api(
                &api,
                "GET",
                &format!("/v1/certificates/{ca}/{serial}"),
                None,
            )?),
            _ => {
                let ready = call_api(&api, "GET", "/readyz", None);
                let cas = call_api(&api, "GET", "/v1/cas", None)?;
                print_json(&serde_json::json!({
                    "ready": ready.map_or_else(|e| serde_json::Value::String(e.to_string()), |r| r["ready"].clone()),
                    "cas": cas["cas"],
                }))
            }
        },
        Command::Audit {
            api,
            since,
            ca,
            limit,
            after,
            json,
        } => audit(
            &api,
            &[("since", since), ("ca", ca), ("after", after)],
            limit,
            json,
        ),
        Command::Probe {
            config,
            url,
            cas,
            crl_url_base,
            ocsp_url,
            serials,
            samples,
            state,
            crl_min_remaining,
            signer_min_days,
            timeout,
            json,
            prometheus,
        } => {
            let remaining = i64::try_from(crl_min_remaining.as_secs()).unwrap_or(i64::MAX);
            let ok = probe(
                config,
                url,
                cas,
                crl_url_base,
                ocsp_url,
                serials,
                (samples, state, remaining, signer_min_days, *timeout),
                json,
                prometheus,
            )?;
            if !ok {
                use std::io::Write;
                let _ = std::io::stdout().flush();
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Crl {
            command:
                CrlCommand::Build {
                    config,
                    ca,
                    delta,
                    out,
                },
        } => {
            let config = Config::load(&config)?;
            crl_build(&config, &ca, delta, out.as_deref())
        }
        Command::Backup {
            command: BackupCommand::Create { config, dir },
        } => {
            let config = Config::load(&config)?;
            let now = vigie::clock::Clock::now(&SystemClock).0;
            let info = vigie::store::backup::create(
                &config.store.path,
                &dir,
                &[vigie::replicate::SELF_CLAIM],
                now,
            )
            .with_context(|| format!("backing up {}", config.store.path.display()))?;
            println!(
                "backup of {} in {}: {} entries, stream position {}",
                info.source.display(),
                dir.display(),
                info.entries,
                info.applied_sequence
            );
            Ok(())
        }
        Command::Backup {
            command: BackupCommand::Restore { config, dir },
        } => {
            let config = Config::load(&config)?;
            let info =
                vigie::store::backup::restore(&dir, &config.store.path).with_context(|| {
                    format!(
                        "restoring {} into {}",
                        dir.display(),
                        config.store.path.display()
                    )
                })?;
            println!(
                "restored {} ({} entries, stream position {}) into {}",
                dir.display(),
                info.entries,
                info.applied_sequence,
                config.store.path.display()
            );
            Ok(())
        }
        Command::Demo {
            dir,
            listen,
            admin_listen,
            ca_bits,
            no_serve,
            hsm,
            ldap,
            ldap_bind_dn,
            ldap_password_file,
        } => {
            if hsm {
                demo_hsm_environment(&dir)?;
            }
            let setup = DemoSetup {
                dir,
                listen,
                admin_listen,
                ca_rsa_bits: ca_bits,
                hsm,
                ldap: ldap.map(|url| demo::DemoLdap {
                    url,
                    bind_dn: ldap_bind_dn,
                    password_file: ldap_password_file,
                }),
            };
            eprintln!(
                "preparing the demo PKI in {} (first run: a few seconds of key generation)…",
                setup.dir.display()
            );
            let prepared = demo::prepare(&setup).context("preparing the demo")?;
            let config = Config::load(&prepared.config_path)?;
            println!("{}", demo::instructions(&setup, &prepared, &config));
            if no_serve {
                return Ok(());
            }
            serve(config)
        }
    }
}
