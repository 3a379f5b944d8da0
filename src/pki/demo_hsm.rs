//! `vigie demo --hsm`: the demo PKI with its issuing CAs' keys and OCSP signers' keys inside a
//! SoftHSM2 token of the demo directory (`{dir}/softhsm/`, its own `SOFTHSM2_CONF`).
//!
//! The demo PKI is made as usual ([`super::demo`]); then, once, this module creates the token
//! (`softhsm2-util --init-token`, random user and SO PINs written to `{dir}/pkcs11-pin` and
//! `{dir}/pkcs11-so-pin`, mode 0600), generates each key *inside* it (`pkcs11-tool --keypairgen
//! --sensitive`, not extractable), and issues again every certificate those keys concern: each
//! issuing CA certificate with the token's public key (signed by its root, a key file), each
//! OCSP signer certificate and sample certificate under it signed by the CA key in the token,
//! through the signer seam ([`crate::signer::Signer::sign_certificate`]). The key files of the
//! issuing CAs and OCSP signers are then deleted: only the roots and the samples keep files.
//!
//! The module must be loaded with `SOFTHSM2_CONF` pointing at the demo's configuration; `vigie
//! demo --hsm` re-executes itself with it set ([`softhsm_conf`] makes the file).

use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Decode, Encode};
use openssl::pkey::Id;
use openssl::x509::X509;

use super::demo::{DemoError, DemoPki};
use crate::signer::{KeyRef, Pkcs11Settings, Pkcs11Uri, Signer};

/// The label of the demo token.
pub const TOKEN_LABEL: &str = "vigie-demo";
/// Debian's SoftHSM2 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN file, in the demo directory.
pub const PIN_FILE: &str = "pkcs11-pin";
/// Written once every key is in the token and every certificate re-issued.
const DONE_MARKER: &str = "hsm-keys-done";

fn other(path: &Path, message: impl Into<String>) -> DemoError {
    DemoError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(message.into()),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The URI of an issuing CA's key in the demo token.
pub fn ca_key_uri(ca_id: &str) -> String {
    format!("pkcs11:token={TOKEN_LABEL};object={ca_id};type=private")
}

/// The URI of an OCSP signer's key in the demo token.
pub fn ocsp_key_uri(ca_id: &str) -> String {
    format!("pkcs11:token={TOKEN_LABEL};object={ca_id}-ocsp;type=private")
}

/// Makes `{dir}/softhsm/softhsm2.conf` (token directory `{dir}/softhsm/tokens`) and returns its
/// absolute path: the `SOFTHSM2_CONF` of the demo.
pub fn softhsm_conf(dir: &Path) -> Result<PathBuf, DemoError> {
    let base = dir.join("softhsm");
    let tokens = base.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(io(&tokens))?;
    let tokens = tokens.canonicalize().map_err(io(&tokens))?;
    let conf = base
        .canonicalize()
        .map_err(io(&base))?
        .join("softhsm2.conf");
    let text = format!(
        "# SoftHSM2 configuration of the vigie demo (written by `vigie demo --hsm`).\n\
         directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    std::fs::write(&conf, text).map_err(io(&conf))?;
    Ok(conf)
}

fn run(program: &str, args: &[&str], conf: &Path) -> Result<(), DemoError> {
    let out = Command::new(program)
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .map_err(|e| {
            other(
                Path::new(program),
                format!("cannot run {program} (Debian packages softhsm2 and opensc): {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(other(
            Path::new(program),
            format!(
                "{program} {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

fn random_pin() -> Result<String, DemoError> {
    let mut b = [0u8; 12];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(hex::encode(b))
}

fn write_secret(path: &Path, text: &str) -> Result<(), DemoError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io(path))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io(path))
}

/// The `[pkcs11]` settings of the demo (PIN read from its file).
pub fn settings(dir: &Path) -> Result<Pkcs11Settings, DemoError> {
    let pin_path = dir.join(PIN_FILE);
    let pin = std::fs::read_to_string(&pin_path).map_err(io(&pin_path))?;
    Ok(Pkcs11Settings {
        module: PathBuf::from(SOFTHSM_MODULE),
        pin: pin.trim_end().to_owned().into(),
        sessions: 2,
    })
}

/// Puts the keys of `pki`'s issuing CAs and OCSP signers into the demo token and re-issues the
/// certificates concerned (see the module documentation). Does nothing when already done.
/// `conf` is the demo's `SOFTHSM2_CONF`, which this process must have been started with.
pub fn move_keys_into_token(
    dir: &Path,
    pki: &DemoPki,
    ca_rsa_bits: u32,
    conf: &Path,
) -> Result<(), DemoError> {
    let pki_dir = pki
        .chain
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("pki"));
    let marker = pki_dir.join(DONE_MARKER);
    if marker.exists() {
        return Ok(());
    }
    // A fresh token (an interrupted earlier attempt leaves one without the marker: start over).
    let tokens = conf
        .parent()
        .map(|p| p.join("tokens"))
        .unwrap_or_else(|| dir.join("softhsm/tokens"));
    if tokens.exists() {
        std::fs::remove_dir_all(&tokens).map_err(io(&tokens))?;
    }
    std::fs::create_dir_all(&tokens).map_err(io(&tokens))?;
    let pin = random_pin()?;
    let so_pin = random_pin()?;
    run(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--so-pin",
            &so_pin,
            "--pin",
            &pin,
        ],
        conf,
    )?;
    write_secret(&dir.join(PIN_FILE), &format!("{pin}\n"))?;
    write_secret(&dir.join("pkcs11-so-pin"), &format!("{so_pin}\n"))?;
    let keygen = |label: &str, id: usize, key_type: &str| {
        let id = format!("{id:02x}");
        run(
            "pkcs11-tool",
            &[
                "--module",
                SOFTHSM_MODULE,
                "--token-label",
                TOKEN_LABEL,
                "--login",
                "--pin",
                &pin,
                "--keypairgen",
                "--key-type",
                key_type,
                "--id",
                &id,
                "--label",
                label,
                "--usage-sign",
                "--sensitive",
            ],
            conf,
        )
    };
    let ca_type = format!("rsa:{ca_rsa_bits}");
    for (i, ca) in pki.cas.iter().enumerate() {
        let ocsp = read_x509(&ca.ocsp_cert)?;
        let ocsp_type = match ocsp.public_key()?.id() {
            Id::EC => "EC:prime256v1",
            _ => "rsa:2048",
        };
        keygen(&ca.id, 2 * i + 1, &ca_type)?;
        keygen(&format!("{}-ocsp", ca.id), 2 * i + 2, ocsp_type)?;
    }

    let settings = settings(dir)?;
    let open = |uri: String| -> Result<Signer, DemoError> {
        let uri = Pkcs11Uri::parse(&uri).map_err(|e| other(conf, e.to_string()))?;
        Signer::open(&KeyRef::Pkcs11(uri), Some(&settings)).map_err(|e| other(conf, e.to_string()))
    };
    let roots = root_signers(&pki_dir)?;
    let mut chain = std::fs::read(&pki.roots).map_err(io(&pki.roots))?;
    for ca in &pki.cas {
        let ca_signer = open(ca_key_uri(&ca.id))?;
        let ocsp_signer = open(ocsp_key_uri(&ca.id))?;
        let old = read_x509(&ca.cert)?;
        let root = roots
            .iter()
            .find(|(cert, _)| {
                old.issuer_name()
                    .try_cmp(cert.subject_name())
                    .is_ok_and(|o| o.is_eq())
            })
            .ok_or_else(|| other(&ca.cert, "no root key file for this CA's issuer"))?;
        let root_ski = ski_of(&root.0.to_der()?)?;
        // The CA certificate, with the token's key, signed by its root.
        let ca_der = reissue(
            &old.to_der()?,
            Some(ca_signer.public_key_der()),
            Some(&root_ski),
            &root.1,
        )?;
        let ca_pem = write_cert(&ca.cert, &ca_der)?;
        chain.extend_from_slice(&ca_pem);
        let ca_ski = ski_of(&ca_der)?;
        // The OCSP signer certificate, with the token's key, signed by the CA key in the token.
        let ocsp_der = reissue(
            &read_x509(&ca.ocsp_cert)?.to_der()?,
            Some(ocsp_signer.public_key_der()),
            Some(&ca_ski),
            &ca_signer,
        )?;
        write_cert(&ca.ocsp_cert, &ocsp_der)?;
        // The samples, signed by the CA key in the token.
        for cert in pki.certs.iter().filter(|c| c.ca_id == ca.id) {
            let der = reissue(
                &read_x509(&cert.path)?.to_der()?,
                None,
                Some(&ca_ski),
                &ca_signer,
            )?;
            write_cert(&cert.path, &der)?;
        }
        for key in [&ca.key, &ca.ocsp_key] {
            if key.exists() {
                std::fs::remove_file(key).map_err(io(key))?;
            }
        }
    }
    std::fs::write(&pki.chain, chain).map_err(io(&pki.chain))?;
    std::fs::write(&marker, "keys in the SoftHSM2 token of ../softhsm\n").map_err(io(&marker))?;
    Ok(())
}

fn read_x509(path: &Path) -> Result<X509, DemoError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(X509::from_pem(&bytes).or_else(|_| X509::from_der(&bytes))?)
}

fn write_cert(path: &Path, der: &[u8]) -> Result<Vec<u8>, DemoError> {
    let pem = X509::from_der(der)?.to_pem()?;
    std::fs::write(path, &pem).map_err(io(path))?;
    Ok(pem)
}

/// The roots of the demo (self-signed certificates beside their key files) and their signers.
fn root_signers(pki_dir: &Path) -> Result<Vec<(X509, Signer)>, DemoError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(pki_dir).map_err(io(pki_dir))? {
        let path = entry.map_err(io(pki_dir))?.path();
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        let key = path.with_extension("key");
        let Ok(cert) = read_x509(&path) else {
            continue;
        };
        let self_signed = cert
            .subject_name()
            .try_cmp(cert.issuer_name())
            .is_ok_and(|o| o.is_eq());
        if !self_signed || !key.exists() {
            continue;
        }
        let mut signer = Signer::from_file(&key).map_err(|e| other(&key, e.to_string()))?;
        if signer.bind_certificate(&cert.to_der()?) {
            out.push((cert, signer));
        }
    }
    Ok(out)
}

/// RFC 5280 §4.2.1.2 (1): the subjectKeyIdentifier, SHA-1 of the subjectPublicKey bits.
fn key_id(spki_der: &[u8]) -> Result<Vec<u8>, DemoError> {
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| other(Path::new("spki"), e.to_string()))?;
    Ok(openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec())
}

fn ski_of(cert_der: &[u8]) -> Result<Vec<u8>, DemoError> {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| other(Path::new("certificate"), e.to_string()))?;
    match cert.tbs_certificate.get::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => Ok(ski.0.as_bytes().to_vec()),
        _ => key_id(
            &cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| other(Path::new("certificate"), e.to_string()))?,
        ),
    }
}

/// The same certificate with, optionally, a new subject public key (and its SKI) and a new
/// authorityKeyIdentifier (RFC 5280 §4.2.1.1), signed by `signer`.
fn reissue(
    cert_der: &[u8],
    new_spki: Option<&[u8]>,
    issuer_key_id: Option<&[u8]>,
    signer: &Signer,
) -> Result<Vec<u8>, DemoError> {
    use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_SUBJECT_KEY_IDENTIFIER};
    use der::asn1::OctetString;
    let bad = |e: der::Error| other(Path::new("certificate"), e.to_string());
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(bad)?;
    let mut tbs = cert.tbs_certificate;
    if let Some(spki_der) = new_spki {
        tbs.subject_public_key_info =
            spki::SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(bad)?;
    }
    let ski = key_id(&tbs.subject_public_key_info.to_der().map_err(bad)?)?;
    if let Some(exts) = tbs.extensions.as_mut() {
        for ext in exts.iter_mut() {
            if ext.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER && new_spki.is_some() {
                let v = OctetString::new(ski.clone())
                    .map_err(bad)?
                    .to_der()
                    .map_err(bad)?;
                ext.extn_value = OctetString::new(v).map_err(bad)?;
            }
            if let (true, Some(kid)) =
                (ext.extn_id == ID_CE_AUTHORITY_KEY_IDENTIFIER, issuer_key_id)
            {
                let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(kid.to_vec()).map_err(bad)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                };
                ext.extn_value = OctetString::new(aki.to_der().map_err(bad)?).map_err(bad)?;
            }
        }
    }
    let tbs_der = tbs.to_der().map_err(bad)?;
    signer
        .sign_certificate(&tbs_der)
        .map_err(|e| other(Path::new("certificate"), e.to_string()))
}
