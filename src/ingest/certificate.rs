//! Which configured CA issued a certificate, and what vigie records of it.
//!
//! A CA issued a certificate when the certificate's issuer Name is the CA's subject Name (the
//! same DER, RFC 5280 §4.1.2.4) *and* the CA's public key verifies its signature — the name alone
//! is not proof (a CA re-keyed under the same name, or anyone writing that name). A certificate
//! no configured CA signed is refused.
//!
//! Recorded: serial (RFC 5280 §4.1.2.2: positive, at most 20 octets), notBefore, notAfter, the
//! subject in one line, and profile hints from keyUsage and extendedKeyUsage; and the CRL
//! distribution points, which the CA's learned CRL scope counts ([`crate::crl::scope`]).

use der::Decode;
use openssl::x509::X509;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};

use super::Error;
use crate::model::{CaId, Issuance, Serial};
use crate::pki::{self, CaRegistry};

/// A certificate whose issuer is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifiedCertificate {
    /// The configured CA that signed it.
    pub ca: CaId,
    /// Its serial number.
    pub serial: Serial,
    /// What is recorded of it.
    pub issuance: Issuance,
    /// The distribution point names of its cRLDistributionPoints (RFC 5280 §4.2.1.13) that
    /// a CRL of this CA can name (empty: none): see [`crate::crl::scope`].
    pub distribution_points: crate::crl::scope::DpSet,
}

/// Identifies the CA that signed `der` and extracts what is recorded. Errors name fields relative
/// to the certificate (`""` for the certificate itself, `serial`); the caller locates them.
pub fn identify(registry: &CaRegistry, der: &[u8]) -> Result<IdentifiedCertificate, Error> {
    let cert = X509::from_der(der)
        .map_err(|_| Error::invalid("", "is not a DER-encoded X.509 certificate"))?;
    let issuer = cert
        .issuer_name()
        .to_der()
        .map_err(|_| Error::invalid("", "its issuer name does not encode"))?;
    let mut same_name = registry
        .iter()
        .filter(|ca| ca.subject_der == issuer)
        .peekable();
    if same_name.peek().is_none() {
        return Err(Error::invalid(
            "",
            format!(
                "its issuer \"{}\" is not a configured CA",
                pki::one_line_name(cert.issuer_name())
            ),
        ));
    }
    let ca = same_name
        .find(|ca| {
            ca.cert
                .public_key()
                .and_then(|key| cert.verify(&key))
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            Error::invalid(
                "",
                format!(
                    "its signature does not verify with the key of the CA named \"{}\": no configured CA signed it",
                    pki::one_line_name(cert.issuer_name())
                ),
            )
        })?;
    let bn = cert
        .serial_number()
        .to_bn()
        .map_err(|_| Error::invalid("serial", "does not decode"))?;
    if bn.is_negative() {
        return Err(Error::invalid(
            "serial",
            "is negative (RFC 5280 §4.1.2.2 requires a positive integer)",
        ));
    }
    let serial = Serial::from_magnitude(&bn.to_vec()).map_err(|e| {
        Error::invalid(
            "serial",
            match e {
                crate::model::ModelError::BadSerial(_, why) => why.to_owned(),
                other => other.to_string(),
            },
        )
    })?;
    Ok(IdentifiedCertificate {
        ca: ca.id.clone(),
        serial,
        issuance: Issuance {
            not_before: pki::not_before(&cert),
            not_after: pki::not_after(&cert),
            subject: Some(pki::one_line_name(cert.subject_name())),
            profile: profile_hints(der),
        },
        distribution_points: crate::crl::scope::distribution_points(der),
    })
}

/// `keyUsage=digitalSignature,keyEncipherment; extKeyUsage=clientAuth`, from the certificate's
/// extensions (RFC 5280 §4.2.1.3, §4.2.1.12); `None` when it has neither.
pub fn profile_hints(der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let mut parts = Vec::new();
    if let Ok(Some((_, ku))) = tbs.get::<KeyUsage>() {
        let names: Vec<&str> = [
            (ku.digital_signature(), "digitalSignature"),
            (ku.non_repudiation(), "nonRepudiation"),
            (ku.key_encipherment(), "keyEncipherment"),
            (ku.data_encipherment(), "dataEncipherment"),
            (ku.key_agreement(), "keyAgreement"),
            (ku.key_cert_sign(), "keyCertSign"),
            (ku.crl_sign(), "cRLSign"),
            (ku.encipher_only(), "encipherOnly"),
            (ku.decipher_only(), "decipherOnly"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !names.is_empty() {
            parts.push(format!("keyUsage={}", names.join(",")));
        }
    }
    if let Ok(Some((_, eku))) = tbs.get::<ExtendedKeyUsage>() {
        use const_oid::db::rfc5280 as oids;
        let names: Vec<String> = eku
            .0
            .iter()
            .map(|oid| {
                match *oid {
                    oids::ID_KP_SERVER_AUTH => "serverAuth",
                    oids::ID_KP_CLIENT_AUTH => "clientAuth",
                    oids::ID_KP_CODE_SIGNING => "codeSigning",
                    oids::ID_KP_EMAIL_PROTECTION => "emailProtection",
                    oids::ID_KP_TIME_STAMPING => "timeStamping",
                    oids::ID_KP_OCSP_SIGNING => "OCSPSigning",
                    _ => return oid.to_string(),
                }
                .to_owned()
            })
            .collect();
        if !names.is_empty() {
            parts.push(format!("extKeyUsage={}", names.join(",")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
