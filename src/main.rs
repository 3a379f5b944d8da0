//! The `vigie` command: `serve`, `demo`, `check`, `crl build`.

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
            println!("listening admin http://{}", bound.admin);
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
