//! Helpers for ingest tests: an admin API client, and certificates issued on the spot by a demo
//! CA's key (or by a foreign key under the same name).
#![allow(dead_code, missing_docs)]

use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;

use super::{Server, pki};

/// An answer: status, content type, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem+json answer with this status; returns the problem.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.content_type,
            "application/problem+json",
            "{}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        p
    }
}

/// A client of the admin API.
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(server: &Server, token: Option<&str>) -> Api {
        Api {
            base: server.admin.clone(),
            token: token.map(str::to_owned),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        let sent = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match sent {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("Content-Type").unwrap_or("").to_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
        Answer {
            status,
            content_type,
            body,
        }
    }

    pub fn post_json(&self, path: &str, value: &Value) -> Answer {
        self.request(
            "POST",
            path,
            Some("application/json"),
            Some(value.to_string().as_bytes()),
        )
    }

    pub fn revoke(&self, value: &Value) -> Answer {
        self.post_json("/v1/revocations", value)
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None, None)
    }

    pub fn record(&self, ca: &str, serial: &str) -> Answer {
        self.get(&format!("/v1/certificates/{ca}/{serial}"))
    }

    pub fn release(&self, ca: &str, serial: &str) -> Answer {
        self.request(
            "DELETE",
            &format!("/v1/revocations/{ca}/{serial}"),
            None,
            None,
        )
    }
}

/// A random positive 16-byte serial, as hex.
pub fn random_serial() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("random");
    b[0] = (b[0] & 0x7f) | 0x10;
    hex::encode(b)
}

pub fn ca_key(ca: &str) -> PKey<Private> {
    let c = pki().cas.iter().find(|c| c.id == ca).expect("known CA");
    PKey::private_key_from_pem(&std::fs::read(&c.key).expect("key")).expect("pem key")
}

pub fn ca_x509(ca: &str) -> X509 {
    let c = pki().cas.iter().find(|c| c.id == ca).expect("known CA");
    X509::from_pem(&std::fs::read(&c.cert).expect("cert")).expect("pem cert")
}

/// A TLS-client end-entity certificate issued now by `ca`'s key (or by `signing_key`, a
/// foreign key, under `ca`'s name), with this serial (hex).
pub fn issue(ca: &str, serial_hex: &str, signing_key: Option<&PKey<Private>>) -> X509 {
    issue_with_key(ca, serial_hex, signing_key).0
}

/// [`issue`], also returning the certificate's private key.
pub fn issue_with_key(
    ca: &str,
    serial_hex: &str,
    signing_key: Option<&PKey<Private>>,
) -> (X509, PKey<Private>) {
    issue_with_crldp(ca, serial_hex, signing_key, &[])
}

/// A cRLDistributionPoints extension (RFC 5280 §4.2.1.13): one distribution point per item of
/// `points`, each with a fullName of these URIs.
pub fn crl_distribution_points(points: &[&[&str]]) -> openssl::x509::X509Extension {
    use der::Encode;
    use x509_cert::ext::pkix::crl::CrlDistributionPoints;
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let dps = CrlDistributionPoints(
        points
            .iter()
            .map(|uris| DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(
                    uris.iter()
                        .map(|u| {
                            GeneralName::UniformResourceIdentifier(
                                der::asn1::Ia5String::new(u).expect("IA5"),
                            )
                        })
                        .collect(),
                )),
                reasons: None,
                crl_issuer: None,
            })
            .collect(),
    );
    let oid = openssl::asn1::Asn1Object::from_str("2.5.29.31").expect("OID");
    let value = openssl::asn1::Asn1OctetString::new_from_bytes(&dps.to_der().expect("DER"))
        .expect("octets");
    openssl::x509::X509Extension::new_from_der(&oid, false, &value).expect("extension")
}

/// [`issue_with_key`], with a cRLDistributionPoints extension when `points` is not empty (see
/// [`crl_distribution_points`]).
pub fn issue_with_crldp(
    ca: &str,
    serial_hex: &str,
    signing_key: Option<&PKey<Private>>,
    points: &[&[&str]],
) -> (X509, PKey<Private>) {
    let issuer = ca_x509(ca);
    let ca_key = ca_key(ca);
    let key = signing_key.unwrap_or(&ca_key);
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256");
    let subject_key =
        PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("C", "FR").expect("C");
    name.append_entry_by_text("O", "TEST ORG").expect("O");
    name.append_entry_by_text("CN", &format!("ingest test {serial_hex}"))
        .expect("CN");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_hex_str(serial_hex).expect("hex");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("int"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.subject_name()).expect("issuer");
    b.set_pubkey(&subject_key).expect("pubkey");
    let now = super::now().0;
    b.set_not_before(&Asn1Time::from_unix(now - 3600).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(now + 3 * 365 * 86400).expect("time"))
        .expect("na");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
        .expect("eku");
    if !points.is_empty() {
        b.append_extension(crl_distribution_points(points))
            .expect("crldp");
    }
    b.sign(key, MessageDigest::sha256()).expect("sign");
    (b.build(), subject_key)
}

pub fn pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().expect("pem")).expect("utf-8")
}

/// Compares a problem body with `tests/golden/errors/{name}.json` ([`super::golden::check`]).
/// Names are kebab-case and start with the problem's `type` (`invalid-field-unknown-ca`), so a
/// file says which problem it holds; `tests/problems.rs` checks every one against `openapi.yaml`.
pub fn golden(name: &str, body: &[u8]) {
    super::golden::check(&format!("errors/{name}.json"), body);
}
