//! The `vigie` command: `serve`, `demo`, `check`.

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
