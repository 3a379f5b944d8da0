//! `vigie demo`: a self-contained service on a test PKI shaped like IGC-Santé.
//!
//! Creates the PKI once ([`crate::pki::demo`]), writes a configuration beside it, registers the
//! sample certificates and their revocations in the store through the ingest rules, prints
//! commands a user can paste to check the answers, and serves.
//!
//! The ingest API is opened with a random bearer token made on the first run and kept in
//! `{dir}/admin-token` (mode 0600); the configuration holds only its SHA-256.
//!
//! CRLs are published to a directory sink, `{dir}/published` (`{id}.crl`, `{id}-delta.crl`
//! and `.pem`), and with `--ldap URL` also to an LDAP directory (entries named after the CA
//! subjects, so the server needs a naming context holding `c=FR`), bound as `--ldap-bind-dn`
//! (default `cn=admin,c=FR`) with the password in `--ldap-password-file` (default
//! `{dir}/ldap-password`). The configuration is rewritten on each run from these options.

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
    /// Issuing CA and OCSP signer keys in a SoftHSM2 token of the demo directory
    /// ([`crate::pki::demo_hsm`]); the process must run with its `SOFTHSM2_CONF`.
    pub hsm: bool,
    /// Also publish CRLs to this LDAP directory.
    pub ldap: Option<DemoLdap>,
}

/// `vigie demo --ldap`.
#[derive(Debug, Clone)]
pub struct DemoLdap {
    /// `ldap://host:port` or `ldaps://…`.
    pub url: String,
    /// DN to bind as.
    pub bind_dn: String,
    /// File with the bind password (default `{dir}/ldap-password`).
    pub password_file: Option<PathBuf>,
}

/// Default bind DN of `vigie demo --ldap`.
pub const DEMO_LDAP_BIND_DN: &str = "cn=admin,c=FR";
/// Default password file of `vigie demo --ldap`, in the demo directory.
pub const DEMO_LDAP_PASSWORD_FILE: &str = "ldap-password";
/// The directory sink of the demo, in the demo directory.
pub const PUBLISHED_DIR: &str = "published";

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
         [store]\npath = \"data\"\n\n\
         # Load tests run from one address: the per-client ration of signatures that only an\n\
         # anonymous request asks for (nonces, unregistered serials) is raised here. Keep the\n\
         # defaults on a listener that faces the internet.\n\
         [ocsp]\nsign_rate_per_client = 100000\nsign_burst_per_client = 100000\n\n",
        setup.listen, setup.listen, setup.admin_listen
    );
    if setup.hsm {
        s.push_str(&format!(
            "# Keys of the issuing CAs and OCSP signers: in the SoftHSM2 token of softhsm/ (run with\n\
             # SOFTHSM2_CONF=softhsm/softhsm2.conf). The user PIN is in {}.\n\
             [pkcs11]\nmodule = \"{}\"\npin_file = \"{}\"\n\n",
            crate::pki::demo_hsm::PIN_FILE,
            crate::pki::demo_hsm::SOFTHSM_MODULE,
            crate::pki::demo_hsm::PIN_FILE
        ));
    }
    for ca in &pki.cas {
        let (key, ocsp_key) = if setup.hsm {
            (
                crate::pki::demo_hsm::ca_key_uri(&ca.id),
                crate::pki::demo_hsm::ocsp_key_uri(&ca.id),
            )
        } else {
            (rel(&ca.key), rel(&ca.ocsp_key))
        };
        s.push_str(&format!(
            "[[ca]]\nid = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nocsp_cert = \"{}\"\nocsp_key = \"{}\"\nocsp_validity = \"1d\"\n\n",
            ca.id,
            rel(&ca.cert),
            key,
            rel(&ca.ocsp_cert),
            ocsp_key
        ));
    }
    s.push_str(&format!(
        "# CRLs are also written to files here, for a static web origin.\n\
         [[publish]]\nkind = \"directory\"\npath = \"{PUBLISHED_DIR}\"\n\n"
    ));
    if let Some(l) = &setup.ldap {
        let password = l
            .password_file
            .clone()
            .unwrap_or_else(|| dir.join(DEMO_LDAP_PASSWORD_FILE));
        s.push_str(&format!(
            "# And to an LDAP directory (vigie demo --ldap).\n\
             [[publish]]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\n\n",
            l.url,
            l.bind_dn,
            password.display()
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
    if setup.hsm {
        let conf = crate::pki::demo_hsm::softhsm_conf(&dir)?;
        crate::pki::demo_hsm::move_keys_into_token(&dir, &pki, setup.ca_rsa_bits, &conf)?;
    }
    let config_path = dir.join("vigie.toml");
    let token_path = dir.join(TOKEN_FILE);
    let token = match std::fs::read_to_string(&token_path) {
        Ok(t) => t.trim().to_owned(),
        Err(_) => {
            let token = new_token()?;
            write_secret(&token_path, token.as_bytes())
                .map_err(|e| Error::io(format!("writing {}", token_path.display()), e))?;
            token
        }
    };
    if let Some(l) = &setup.ldap {
        let password = l
            .password_file
            .clone()
            .unwrap_or_else(|| dir.join(DEMO_LDAP_PASSWORD_FILE));
        if !password.is_file() {
            return Err(Error::io(
                format!(
                    "--ldap: the bind password of {} is read from {}: write it there, or pass --ldap-password-file",
                    l.bind_dn,
                    password.display()
                ),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    // Rewritten on each run: the options (--ldap) may have changed; the token stays.
    let hash = hex::encode(openssl::sha::sha256(token.as_bytes()));
    std::fs::write(&config_path, config_text(setup, &pki, &dir, &hash))
        .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
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
    let registry = crate::pki::CaRegistry::from_config(config);
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
    let org_ca = prepared.pki.cas.iter().find(|c| c.id == "aci-el-org");
    if let (true, Some(org_ca)) = (setup.hsm, org_ca) {
        out.push_str(&format!(
            "# Keys of the issuing CAs and OCSP signers are in the SoftHSM2 token of {}/softhsm\n\
             # (not extractable). Other vigie commands on this directory need:\n\
             export SOFTHSM2_CONF={}/softhsm/softhsm2.conf\n\
             # CRL signatures made in the token, checked by openssl:\n\
             curl -s {url}/crl/aci-el-org.crl | openssl crl -inform DER -CAfile {} -noout -verify\n\
             curl -s {url}/crl/aci-el-org-delta.crl | openssl crl -inform DER -CAfile {} -noout -verify\n\n",
            shown(&setup.dir),
            shown(&setup.dir),
            shown(&org_ca.cert),
            shown(&org_ca.cert),
        ));
    }
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
        let ca = registry.by_id(&cert.ca_id);
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
    if let Some(dir) = prepared.config_path.parent() {
        out.push_str(&format!(
            "# The same CRLs, written by the directory sink for a static web origin:\nls -l {}\n\n",
            shown(&dir.join(PUBLISHED_DIR))
        ));
    }
    if let (Some(l), Some(ca), Some(demo_ca)) = (
        &setup.ldap,
        registry.by_id("aci-el-org"),
        prepared.pki.cas.iter().find(|c| c.id == "aci-el-org"),
    ) {
        let dn = config
            .cas
            .iter()
            .find(|c| c.id == ca.id)
            .and_then(|c| c.ldap_dn.clone())
            .or_else(|| crate::publish::ldap::default_dn(&ca.subject_der).ok())
            .unwrap_or_default();
        out.push_str(&format!(
            "# The CA's CRL in the LDAP directory (pkiCA entry, RFC 4523), checked with openssl:\n\
             ldapsearch -x -LLL -o ldif-wrap=no -H {url} -s base -b '{dn}' 'certificateRevocationList;binary' \\\n  \
             | sed -n 's/^certificateRevocationList;binary:: //p' | base64 -d \\\n  \
             | openssl crl -inform DER -CAfile {cafile} -noout -crlnumber -lastupdate -nextupdate\n\
             # and its delta CRL: the same with 'deltaRevocationList;binary'.\n\n",
            url = l.url,
            cafile = shown(&demo_ca.cert),
        ));
    }
    out.push_str(&format!(
        "# Health, readiness (with the publication sinks) and metrics on the admin listener:\ncurl -s http://{}/readyz\ncurl -s http://{}/metrics | grep -E 'vigie_(ocsp|crl|publish)'\n",
        setup.admin_listen, setup.admin_listen
    ));
    out
}
