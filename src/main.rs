//! The `vigie` command: `serve`, `demo`, `check`; `import` (offline, an OpenSSL `index.txt`);
//! `crl build` (offline); `revoke`, `release`, `status` (clients of the admin API, token from
//! `VIGIE_TOKEN`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use vigie::clock::SystemClock;
use vigie::config::Config;
use vigie::demo::{self, DemoSetup};

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
    /// CRL operations.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
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
        .registry
        .by_id(ca)
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
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let now = vigie::clock::Clock::now(&SystemClock);
    let options = ImportOptions {
        chunk,
        certificates: certs.map(|dir| CertificateDir {
            dir,
            registry: Arc::clone(&config.registry),
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        vigie::service::run(config, Arc::new(SystemClock), |bound| {
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
    if config.registry.by_id(ca).is_none() {
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
    let publisher = Publisher::new(config, Arc::new(store), Arc::new(SystemClock))?;
    let kind = if delta { CrlKind::Delta } else { CrlKind::Full };
    let published = publisher.publish(ca, kind)?;
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
            println!(
                "{}: {} CA(s) ready",
                config.source.display(),
                config.registry.len()
            );
            for ca in config.registry.iter() {
                println!(
                    "  {}  {}  (OCSP signer {}, valid until {})",
                    ca.id,
                    ca.subject,
                    ca.ocsp_signer.kind(),
                    ca.ocsp_cert_not_after
                );
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
        Command::Demo {
            dir,
            listen,
            admin_listen,
            ca_bits,
            no_serve,
        } => {
            let setup = DemoSetup {
                dir,
                listen,
                admin_listen,
                ca_rsa_bits: ca_bits,
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
