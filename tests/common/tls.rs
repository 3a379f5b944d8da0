//! Helpers for the admin listener over TLS: certificates made on the spot, key files written
//! 0600 (as vigie requires of its own keys), and a raw HTTP/1.1 client with an optional client
//! certificate.
#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

use super::api::random_serial;

pub fn key() -> PKey<Private> {
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("key")
}

/// A certificate with subject `entries` (e.g. `[("O", "ACME"), ("CN", "op")]`), self-signed
/// or issued by `issuer`.
pub fn cert(
    entries: &[(&str, &str)],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    is_ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    for (k, v) in entries {
        name.append_entry_by_text(k, v).expect("entry");
    }
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_hex_str(&random_serial()).expect("serial");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("int"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    let now = super::now().0;
    b.set_not_before(&Asn1Time::from_unix(now - 3600).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(now + 86400).expect("t"))
        .expect("na");
    let mut bc = BasicConstraints::new();
    if is_ca {
        bc.critical().ca();
    }
    b.append_extension(bc.build().expect("bc")).expect("bc");
    if !is_ca {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .expect("san");
        b.append_extension(san).expect("san");
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .expect("sign");
    b.build()
}

/// Writes `bytes` to `dir/name` with mode `mode`.
pub fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

/// A certificate and key written as PEM files (key 0600).
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub x509: X509,
}

pub fn identity(dir: &Path, name: &str, x509: X509, key: &PKey<Private>) -> Identity {
    Identity {
        cert: write(
            dir,
            &format!("{name}.pem"),
            &x509.to_pem().expect("pem"),
            0o644,
        ),
        key: write(
            dir,
            &format!("{name}.key"),
            &key.private_key_to_pem_pkcs8().expect("pem"),
            0o600,
        ),
        x509,
    }
}

/// One HTTP/1.1 request over TLS to `admin` (`https://host:port`), trusting `ca_file` for the
/// server, with an optional client identity and bearer token. `None` when the handshake or the
/// exchange failed; otherwise (status, head+body text).
pub fn request(
    admin: &str,
    ca_file: &Path,
    client: Option<&Identity>,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let addr = admin.trim_start_matches("https://");
    let mut c = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    c.set_ca_file(ca_file).expect("ca");
    c.set_verify(SslVerifyMode::PEER);
    if let Some(id) = client {
        c.set_certificate_file(&id.cert, SslFiletype::PEM)
            .expect("cert");
        c.set_private_key_file(&id.key, SslFiletype::PEM)
            .expect("key");
    }
    let connector = c.build();
    let tcp = std::net::TcpStream::connect(addr).expect("tcp");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let mut config = connector.configure().expect("configure");
    config.set_verify_hostname(false);
    let mut tls = config.connect("localhost", tcp).ok()?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    tls.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .ok()?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) if !out.is_empty() => {
            let text = String::from_utf8_lossy(&out).into_owned();
            let status = text.get(9..12)?.parse().ok()?;
            Some((status, text))
        }
        _ => None,
    }
}

/// The body of a raw HTTP answer (after the blank line; actix sends no chunking for these).
pub fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}
