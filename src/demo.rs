//! `vigie demo`: a self-contained service on a test PKI shaped like IGC-Santé.
//!
//! Creates the PKI once ([`crate::pki::demo`]), writes a configuration beside it, registers the
//! sample certificates and their revocations in the store through the ingest rules, prints
//! commands a user can paste to check the answers, and serves.
//!
//! The ingest API is opened with a random bearer token made on the first run and kept in
//! `{dir}/admin-token` (mode 0600); the configuration holds only its SHA-256.

use std::path::{Path, PathBuf};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::ingest::request::CertChange;
use crate::ingest::{self, Change, RevocationRequest};
use crate::model::{CaId, Issuance, RevocationReason, Serial};
use crate::pki::demo::{DemoOptions, DemoPki, SampleStatus, create_or_load};
use crate::pki::{self, HashAlg};

/// Options of `vigie demo`.
#[derive(Debug, Clone)]
pub struct DemoSetup {
    /// Directory holding the PKI, the configuration and the data.
    pub dir: PathBuf,
    /// Public listener address (also what the certificates point to).
    pub listen: String,
    /// Admin listener address.
    pub admin_listen: String,
    /// RSA size of the CA keys.
    pub ca_rsa_bits: u32,
}

/// What [`prepare`] made.
#[derive(Debug)]
pub struct Prepared {
    /// The configuration file.
    pub config_path: PathBuf,
    /// The PKI.
    pub pki: DemoPki,
    /// Certificates registered by this run (0 on a second run).
    pub registered: usize,
}

/// File holding the demo's ingest bearer token.
pub const TOKEN_FILE: &str = "admin-token";

fn config_text(setup: &DemoSetup, pki: &DemoPki, dir: &Path, token_sha256: &str) -> String {
    let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    let mut s = format!(
        "# vigie demo configuration, written by `vigie demo`. Paths are relative to this file.\n\
         # See config/vigie.toml in the source tree for every key.\n\n\
         [public]\nlisten = \"{}\"\npublic_url = \"http://{}\"\n\n\
         [admin]\nlisten = \"{}\"\n\
         # SHA-256 of the bearer token in {TOKEN_FILE} (ingest API).\n\
         token_sha256 = [\"{token_sha256}\"]\n\n\
         [store]\npath = \"data\"\n\n",
        setup.listen, setup.listen, setup.admin_listen
    );
    for ca in &pki.cas {
        s.push_str(&format!(
            "[[ca]]\nid = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\nocsp_validity = \"1d\"\n\n",
            ca.id,
            rel(&ca.cert),
            rel(&ca.key),
            rel(&ca.ocsp_cert),
            rel(&ca.ocsp_key)
        ));
    }
    s
}

/// Creates (or loads) the demo PKI, its configuration and its store content.
pub fn prepare(setup: &DemoSetup) -> Result<Prepared, Error> {
    std::fs::create_dir_all(&setup.dir)
        .map_err(|e| Error::io(format!("creating {}", setup.dir.display()), e))?;
    let dir = setup
        .dir
        .canonicalize()
        .map_err(|e| Error::io(format!("resolving {}", setup.dir.display()), e))?;
    let pki = create_or_load(
        &dir,
        &DemoOptions {
            public_url: format!("http://{}", setup.listen),
            ca_rsa_bits: setup.ca_rsa_bits,
        },
    )?;
    let config_path = dir.join("vigie.toml");
    if !config_path.exists() {
        let token = new_token()?;
        let token_path = dir.join(TOKEN_FILE);
        write_secret(&token_path, token.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", token_path.display()), e))?;
        let hash = hex::encode(openssl::sha::sha256(token.as_bytes()));
        std::fs::write(&config_path, config_text(setup, &pki, &dir, &hash))
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
    }
    let config = Config::load(&config_path)?;
    let store = crate::service::open_store(&config)?;
    let now = SystemClock.now();
    let mut registered = 0;
    for cert in &pki.certs {
        let ca = CaId::new(&cert.ca_id)
            .map_err(|e| Error::io("demo manifest", std::io::Error::other(e)))?;
        let serial = Serial::from_hex(&cert.serial_hex)
            .map_err(|e| Error::io("demo manifest", std::io::Error::other(e)))?;
        if store.cert(&ca, &serial)?.is_some() {
            continue;
        }
        let x509 = pki::read_cert(&cert.path)
            .map_err(|e| Error::io("demo certificate", std::io::Error::other(e)))?;
        let issuance = Issuance {
            not_before: pki::not_before(&x509),
            not_after: pki::not_after(&x509),
            subject: Some(pki::one_line_name(x509.subject_name())),
            profile: Some(cert.profile.to_owned()),
        };
        // The certificate's distribution points go into the CA's learned CRL scope.
        let der = x509
            .to_der()
            .map_err(|e| Error::io("demo certificate", std::io::Error::other(e)))?;
        let mut changes = vec![CertChange {
            ca: ca.clone(),
            serial: serial.clone(),
            change: Change::Issue(issuance),
            distribution_points: Some(crate::crl::scope::distribution_points(&der)),
        }];
        if let SampleStatus::Revoked {
            reason,
            invalidity_days_before,
        } = &cert.status
        {
            let revoked_at = now.minus(3600);
            changes.push(CertChange {
                ca: ca.clone(),
                serial: serial.clone(),
                change: Change::Revoke(RevocationRequest {
                    revoked_at: Some(revoked_at),
                    reason: reason
                        .map(RevocationReason::from_name)
                        .transpose()
                        .map_err(|e| Error::io("demo manifest", std::io::Error::other(e)))?,
                    invalidity_date: invalidity_days_before
                        .map(|d| revoked_at.minus(i64::from(d) * 86400)),
                }),
                distribution_points: None,
            });
        }
        store.transact(std::slice::from_ref(&ca), now, |tx| -> Result<(), Error> {
            for change in &changes {
                ingest::register(tx, change)?;
            }
            Ok(())
        })?;
        registered += 1;
    }
    store.flush()?;
    Ok(Prepared {
        config_path,
        pki,
        registered,
    })
}

fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)
        .map_err(|e| Error::io("making the demo token", std::io::Error::other(e)))?;
    Ok(hex::encode(bytes))
}

fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, bytes)
}

/// The text `vigie demo` prints: commands to paste.
pub fn instructions(setup: &DemoSetup, prepared: &Prepared, config: &Config) -> String {
    let shown = |p: &Path| -> String {
        let cwd = std::env::current_dir().ok();
        match cwd.as_deref().and_then(|c| p.strip_prefix(c).ok()) {
            Some(rel) => rel.display().to_string(),
            None => p.display().to_string(),
        }
    };
    let url = format!("http://{}", setup.listen);
    let pick = |good: bool| {
        prepared.pki.certs.iter().find(|c| {
            c.ca_id == "aci-el-org"
                && (c.status == SampleStatus::Good) == good
                && c.profile != "SERV_S/MIME"
        })
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\nvigie demo: {} CAs, {} sample certificates ({} registered now)\n  config: {}\n  trust anchors: {}\n\n",
        prepared.pki.cas.len(),
        prepared.pki.certs.len(),
        prepared.registered,
        shown(&prepared.config_path),
        shown(&prepared.pki.roots)
    ));
    for cert in [pick(true), pick(false)].into_iter().flatten() {
        let Some(ca) = prepared.pki.cas.iter().find(|c| c.id == cert.ca_id) else {
            continue;
        };
        let label = match &cert.status {
            SampleStatus::Good => "a good certificate".to_owned(),
            SampleStatus::Revoked { reason, .. } => {
                format!("a revoked certificate ({})", reason.unwrap_or("no reason"))
            }
        };
        out.push_str(&format!(
            "# OCSP for {label} ({}), signature checked against the roots:\n\
             openssl ocsp -issuer {} -cert {} -url {url}/ocsp -CAfile {} -resp_text\n\n",
            cert.profile,
            shown(&ca.cert),
            shown(&cert.path),
            shown(&prepared.pki.roots)
        ));
    }
    if let Some(cert) = pick(true) {
        let ca = config.registry.by_id(&cert.ca_id);
        let serial = Serial::from_hex(&cert.serial_hex).ok();
        if let (Some(ca), Some(serial)) = (ca, serial) {
            let h = &ca.hashes[HashAlg::Sha1.index()];
            if let Ok(der) = crate::ocsp::request::build(
                HashAlg::Sha1,
                &h.name,
                &h.key,
                &serial.der_content(),
                None,
            ) {
                out.push_str(&format!(
                    "# The same over GET (RFC 9919), with its caching headers:\n\
                     curl -si {url}/ocsp/{} -o /dev/null -D -\n\n",
                    crate::ocsp::request::to_get_path(&der)
                ));
            }
        }
    }
    if let (Some(cert), Some(ca)) = (
        pick(false),
        prepared.pki.cas.iter().find(|c| c.id == "aci-el-org"),
    ) {
        out.push_str(&format!(
            "# CRLs: the list, then the revoked certificate checked against the full and delta CRLs:\n\
             curl -s {url}/crl/\n\
             curl -s {url}/crl/aci-el-org.pem -o full.pem; curl -s {url}/crl/aci-el-org-delta.pem -o delta.pem\n\
             openssl verify -crl_check -use_deltas -CRLfile full.pem -CRLfile delta.pem -CAfile {} -untrusted {} {}\n\n",
            shown(&prepared.pki.roots),
            shown(&ca.cert),
            shown(&cert.path)
        ));
    }
    let token_path = prepared
        .config_path
        .parent()
        .map(|d| d.join(TOKEN_FILE))
        .filter(|p| p.exists());
    if let (Some(token_path), Some(cert)) = (token_path, pick(true)) {
        let admin = format!("http://{}", setup.admin_listen);
        out.push_str(&format!(
            "# Ingest API (bearer token in {token}): revoke the good certificate above, then ask\n\
             # OCSP again: the very next answer says revoked.\n\
             export VIGIE_TOKEN=$(cat {token})\n\
             curl -s -H \"Authorization: Bearer $VIGIE_TOKEN\" -H 'Content-Type: application/json' \\\n  \
             -d '{{\"ca\": \"{ca}\", \"serial\": \"{serial}\", \"reason\": \"certificateHold\"}}' {admin}/v1/revocations\n\
             vigie status --url {admin} --ca {ca} --serial {serial}\n\
             vigie release --url {admin} --ca {ca} --serial {serial}\n\n",
            token = shown(&token_path),
            ca = cert.ca_id,
            serial = cert.serial_hex,
        ));
    }
    out.push_str(&format!(
        "# Health, readiness and metrics on the admin listener:\ncurl -s http://{}/readyz\ncurl -s http://{}/metrics | grep -E 'vigie_(ocsp|crl)'\n",
        setup.admin_listen, setup.admin_listen
    ));
    out
}
