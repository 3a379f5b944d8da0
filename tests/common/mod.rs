//! Shared test harness: a demo PKI made once per test binary, and the real `vigie` binary started
//! on ephemeral ports against a temporary RocksDB directory.
#![allow(dead_code, missing_docs)]

pub mod api;
pub mod slapd;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vigie::clock::{Clock, SystemClock};
use vigie::config::Config;
use vigie::ingest::{self, Change, RevocationRequest};
use vigie::model::{CaId, Issuance, RevocationReason, Serial, UnixTime};
use vigie::pki::demo::{DemoCert, DemoOptions, DemoPki, SampleStatus, create_or_load};

/// The `vigie` binary, with none of the caller's `VIGIE_*` variables: what a test starts runs
/// on the configuration the test wrote, whatever the environment of `cargo test` holds
/// (`VIGIE_<SECTION>_<KEY>` would override it, `VIGIE_PKCS11_PIN` replace a PIN file). A test
/// that wants one sets it on the command after this.
pub fn vigie() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigie"));
    without_vigie_variables(&mut c);
    c
}

/// Removes from `c`'s environment every `VIGIE_*` variable this process has.
pub fn without_vigie_variables(c: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VIGIE_") {
            c.env_remove(name);
        }
    }
}

/// Loads a configuration in this process as `vigie` would, without the `VIGIE_*` overrides of
/// this process's environment (see [`vigie`]).
pub fn load_config(path: &Path) -> Config {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).expect("config readable");
    let raw =
        vigie::config::RawConfig::parse(&text, &shown, std::iter::empty()).expect("config parses");
    raw.validate(&shown, path.parent().expect("config in a directory"))
        .expect("config loads")
}

/// The base URL the test PKI's certificates point to (CRL distribution points, freshestCRL),
/// also the servers' `public_url`, so that CRLs' IssuingDistributionPoint matches them.
pub const PKI_PUBLIC_URL: &str = "http://127.0.0.1:1";

/// The demo PKI, generated once into the cargo-provided temporary directory.
pub fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("test-pki-{}", std::process::id()));
        let opts = DemoOptions {
            public_url: PKI_PUBLIC_URL.into(),
            ca_rsa_bits: 2048,
        };
        create_or_load(&dir, &opts).expect("demo PKI generates")
    })
}

/// A sample certificate of `ca` with the given status test.
pub fn sample(ca: &str, want: impl Fn(&SampleStatus) -> bool) -> &'static DemoCert {
    pki()
        .certs
        .iter()
        .find(|c| c.ca_id == ca && want(&c.status))
        .expect("the demo PKI has such a certificate")
}

/// The first good sample of `ca`.
pub fn good(ca: &str) -> &'static DemoCert {
    sample(ca, |s| *s == SampleStatus::Good)
}

/// The sample of `ca` revoked for `reason`.
pub fn revoked(ca: &str, reason: &str) -> &'static DemoCert {
    sample(
        ca,
        |s| matches!(s, SampleStatus::Revoked { reason: Some(r), .. } if *r == reason),
    )
}

pub fn ca_cert(ca: &str) -> PathBuf {
    pki()
        .cas
        .iter()
        .find(|c| c.id == ca)
        .expect("known CA")
        .cert
        .clone()
}

/// Extra per-CA configuration lines (e.g. `unknown_serial = "revoked"`).
#[derive(Default, Clone)]
pub struct Options {
    pub ca_extra: Vec<(String, String)>,
    pub global_extra: String,
    /// Only these CAs (default: all three).
    pub only: Option<Vec<&'static str>>,
    /// Extra lines of the `[admin]` table (tokens, TLS).
    pub admin_extra: String,
    /// Extra lines of the `[public]` table (connection limits).
    pub public_extra: String,
    /// Start on an empty store (the demo's sample certificates not registered).
    pub no_seed: bool,
    /// Keep the default revocation rules. Otherwise every CA gets
    /// `accept_unregistered_revocations = true`: the suites written before that rule revoke
    /// serials they never registered, and test other things (the rule itself is tested in
    /// `tests/revocation_rules.rs`).
    pub strict_revocations: bool,
}

/// The bearer token of [`Options::ingest`].
pub const TOKEN: &str = "vigie-test-token-0123456789abcdef";

/// `token_sha256 = ["…"]` for `token`.
pub fn token_line(token: &str) -> String {
    format!(
        "token_sha256 = [\"{}\"]\n",
        hex::encode(openssl::sha::sha256(token.as_bytes()))
    )
}

impl Options {
    /// Options with the ingest API open to [`TOKEN`].
    pub fn ingest() -> Options {
        Options {
            admin_extra: token_line(TOKEN),
            ..Options::default()
        }
    }
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub public: String,
    pub admin: String,
    child: Option<Child>,
    pub stderr_log: PathBuf,
}

pub fn write_config(dir: &Path, opts: &Options) -> PathBuf {
    let mut text = format!(
        "[public]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PKI_PUBLIC_URL}\"\nworkers = 2\n{}\n[admin]\nlisten = \"127.0.0.1:0\"\n{}[store]\npath = \"{}\"\nblock_cache_mb = 16\n[ocsp]\nsigning_threads = 2\n{}\n",
        opts.public_extra,
        opts.admin_extra,
        dir.join("data").display(),
        opts.global_extra
    );
    for ca in &pki().cas {
        if opts
            .only
            .as_ref()
            .is_some_and(|o| !o.contains(&ca.id.as_str()))
        {
            continue;
        }
        text.push_str(&format!(
            "[[ca]]\nid = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\n",
            ca.id,
            ca.cert.display(),
            ca.key.display(),
            ca.ocsp_cert.display(),
            ca.ocsp_key.display()
        ));
        if !opts.strict_revocations {
            text.push_str("accept_unregistered_revocations = true\n");
        }
        for (id, line) in &opts.ca_extra {
            if *id == ca.id {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let path = dir.join("vigie.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// Registers every sample certificate (and its intended revocation) directly in the store, as
/// the demo does, before the server holds the database.
pub fn seed(config_path: &Path) {
    let config = load_config(config_path);
    let store = vigie::service::open_store(&config).expect("store opens");
    let now = SystemClock.now();
    for cert in &pki().certs {
        let Ok(ca) = CaId::new(&cert.ca_id) else {
            continue;
        };
        if !config.cas.iter().any(|c| c.id == ca) {
            continue;
        }
        let serial = Serial::from_hex(&cert.serial_hex).expect("hex serial");
        let x = vigie::pki::read_cert(&cert.path).expect("cert");
        // Registered from the certificate itself: its distribution points are learned.
        let dps = vigie::crl::scope::distribution_points(&x.to_der().expect("DER"));
        let mut changes = vec![Change::Issue(Issuance {
            not_before: vigie::pki::not_before(&x),
            not_after: vigie::pki::not_after(&x),
            subject: None,
            profile: Some(cert.profile.to_owned()),
        })];
        if let SampleStatus::Revoked {
            reason,
            invalidity_days_before,
        } = &cert.status
        {
            let at = now.minus(3600);
            changes.push(Change::Revoke(RevocationRequest {
                revoked_at: Some(at),
                reason: reason.map(|r| RevocationReason::from_name(r).expect("reason")),
                invalidity_date: invalidity_days_before.map(|d| at.minus(i64::from(d) * 86400)),
            }));
        }
        store
            .transact(
                std::slice::from_ref(&ca),
                now,
                |tx| -> Result<(), vigie::Error> {
                    for (i, c) in changes.iter().enumerate() {
                        ingest::register(
                            tx,
                            &ingest::request::CertChange {
                                ca: ca.clone(),
                                serial: serial.clone(),
                                change: c.clone(),
                                distribution_points: (i == 0).then(|| dps.clone()),
                            },
                        )?;
                    }
                    Ok(())
                },
            )
            .expect("seeded");
    }
    store.flush().expect("flushed");
}

impl Server {
    /// A seeded server with default options.
    pub fn start() -> Server {
        Server::start_with(&Options::default())
    }

    pub fn start_with(opts: &Options) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), opts);
        if !opts.no_seed {
            seed(&config);
        }
        let mut s = Server {
            stderr_log: dir.path().join("stderr.log"),
            dir,
            config,
            public: String::new(),
            admin: String::new(),
            child: None,
        };
        s.spawn();
        s
    }

    /// A server over a configuration already written (and seeded) in `dir`, not started yet:
    /// call [`Server::spawn`].
    pub fn adopt(dir: tempfile::TempDir, config: PathBuf) -> Server {
        Server {
            stderr_log: dir.path().join("stderr.log"),
            dir,
            config,
            public: String::new(),
            admin: String::new(),
            child: None,
        }
    }

    /// Starts `vigie serve` on a configuration already written (and a store already seeded, or
    /// not) in `dir`.
    pub fn start_on(dir: tempfile::TempDir, config: PathBuf) -> Server {
        let mut s = Server::adopt(dir, config);
        s.spawn();
        s
    }

    /// A server configured with `opts` over an empty store, not started: see [`Server::spawn`].
    pub fn configured(opts: &Options) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), opts);
        Server::adopt(dir, config)
    }

    /// Starts `vigie serve` on this server's configuration (after [`Server::stop`] or
    /// [`Server::kill`]).
    pub fn spawn(&mut self) {
        self.spawn_with_env(&[]);
    }

    /// [`Server::spawn`], with these environment variables (e.g. `VIGIE_<SECTION>_<KEY>`
    /// overrides) and none of the caller's `VIGIE_*` ones.
    pub fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_log)
            .expect("log file");
        let mut child = vigie()
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("VIGIE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("vigie starts");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.public.is_empty() || self.admin.is_empty() {
            assert!(
                Instant::now() < deadline,
                "vigie did not start: {}",
                self.stderr()
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening public ") {
                        self.public = a.trim().to_owned();
                    } else if let Some(a) = line.strip_prefix("listening admin ") {
                        self.admin = a.trim().to_owned();
                    }
                }
                _ => panic!("vigie exited before listening: {}", self.stderr()),
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "vigie exited with {status}: {}",
                        self.stderr()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("vigie did not stop on SIGTERM: {}", self.stderr());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.public.clear();
        self.admin.clear();
    }

    /// SIGKILL, no chance to flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.public.clear();
        self.admin.clear();
    }

    /// Stops and starts again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the openssl CLI.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI available")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn now() -> UnixTime {
    SystemClock.now()
}

/// CRLNumber of a CRL (the `openssl` crate has no accessor: read with x509-cert).
pub fn number(crl: &openssl::x509::X509Crl) -> u64 {
    number_of(&crl.to_der().expect("DER"))
}

/// CRLNumber of a DER CRL.
pub fn number_of(der: &[u8]) -> u64 {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::from_der(der).expect("parses");
    ext_integer(&crl, const_oid::db::rfc5280::ID_CE_CRL_NUMBER).expect("CRLNumber")
}

/// DeltaCRLIndicator (the base's number) of a DER CRL, if it is a delta.
pub fn base_of(der: &[u8]) -> Option<u64> {
    use der::Decode;
    let crl = x509_cert::crl::CertificateList::from_der(der).expect("parses");
    ext_integer(&crl, const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR)
}

fn ext_integer(
    crl: &x509_cert::crl::CertificateList,
    oid: const_oid::ObjectIdentifier,
) -> Option<u64> {
    use der::Decode;
    let exts = crl.tbs_cert_list.crl_extensions.as_ref()?;
    let e = exts.iter().find(|e| e.extn_id == oid)?;
    let n = der::asn1::Uint::from_der(e.extn_value.as_bytes()).expect("INTEGER");
    Some(
        n.as_bytes()
            .iter()
            .fold(0u64, |v, b| (v << 8) | u64::from(*b)),
    )
}

/// Whether the CRL has an entry for this serial (hex, any case, leading zeros ignored).
/// The serial numbers a CRL lists, as lower-case hex without leading zeros (see [`serial_key`]):
/// for checking many serials against one CRL.
pub fn listed_serials(crl: &openssl::x509::X509Crl) -> std::collections::HashSet<String> {
    crl.get_revoked()
        .map(|revoked| {
            revoked
                .iter()
                .filter_map(|r| {
                    let bn = r.serial_number().to_bn().ok()?;
                    let hex = bn.to_hex_str().ok()?;
                    Some(serial_key(&hex))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A serial in hex, normalised for comparison: BN_bn2hex keeps a leading zero nibble ("0FF4…")
/// and upper case; compare numbers, not text.
pub fn serial_key(serial_hex: &str) -> String {
    serial_hex.trim_start_matches('0').to_ascii_lowercase()
}

pub fn lists(crl: &openssl::x509::X509Crl, serial_hex: &str) -> bool {
    let wanted = serial_key(serial_hex);
    crl.get_revoked().is_some_and(|revoked| {
        revoked.iter().any(|r| {
            r.serial_number()
                .to_bn()
                .and_then(|bn| bn.to_hex_str().map(|h| serial_key(&h)))
                .is_ok_and(|h| h == wanted)
        })
    })
}
