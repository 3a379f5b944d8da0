//! Demo PKI generator: a self-contained *test* PKI shaped like France's IGC-Santé, written to disk.
//!
//! This module owns the creation (and the reloading) of the demo hierarchy used by `vigie demo`,
//! by the integration tests and by the load tests:
//!
//! - the IGC-Santé ELEMENTAIRE test range: the root `TEST AC RACINE IGC-SANTE ELEMENTAIRE` (file
//!   code `acr-el`) and its two issuing CAs `aci-el-org` (ORGANISATIONS) and `aci-el-pp`
//!   (PERSONNES);
//! - a small legacy hierarchy (`TEST GIP-CPS RACINE` → `TEST GIP-CPS CLASSE-4`, id `gip-cps-c4`),
//!   so that old/new PKI cohabitation can be shown by one responder;
//! - for each issuing CA, a delegated OCSP signer (RFC 6960 §4.2.2.2: id-kp-OCSPSigning, and
//!   id-pkix-ocsp-nocheck per §4.2.2.2.1), ECDSA P-256 for `aci-el-org` and RSA-2048 for the others;
//! - sample end-entity certificates, one or more per software certificate profile, each with the
//!   status the demo intends to give it (good, or revoked with an RFC 5280 §5.3.1 reason);
//! - `chain.pem`, `roots.pem` and `manifest.json`, the latter being what lets a second call load the
//!   PKI back instead of generating a new one.
//!
//! It only *makes* certificates and keys. Recording the intended revocations in the status store,
//! signing OCSP responses and CRLs are left to the ingest, `signer`, `ocsp` and `crl` modules, which
//! read the files listed in [`DemoPki`]. Keys are written unencrypted (PKCS#8 PEM, mode 0600): this
//! is test material only and must never be trusted in production.
//!
//! Extensions that the `openssl` crate has no builder for (CRL distribution points, freshestCRL,
//! authority information access, certificate policies, OCSP no-check) are encoded with the
//! `x509-cert` types and attached with `X509Extension::new_from_der`, which avoids the deprecated
//! configuration-string API.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rand::rand_bytes;
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Extension, X509Name, X509NameBuilder};
use serde::{Deserialize, Serialize};

/// Error of the demo PKI generator.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An openssl operation failed.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// A file could not be read or written (a malformed `manifest.json` is reported here too, with
    /// [`std::io::ErrorKind::InvalidData`]).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Options of the generator.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Base URL written into certificates: CRL distribution points are `{public_url}/crl/{ca_id}.crl`,
    /// freshestCRL `{public_url}/crl/{ca_id}-delta.crl`, AIA OCSP `{public_url}/ocsp`,
    /// AIA caIssuers `{public_url}/ca/{ca_id}.crt`. A trailing `/` is ignored.
    pub public_url: String,
    /// RSA modulus size for the root and issuing CA keys (4096 in the real demo; tests pass 2048 to go faster).
    pub ca_rsa_bits: u32,
}

/// The intended status of a sample end-entity certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleStatus {
    /// Not revoked.
    Good,
    /// To be revoked with this RFC 5280 reason name (e.g. "keyCompromise", "superseded",
    /// "certificateHold", "affiliationChanged", "cessationOfOperation"), `None` for no reason;
    /// `invalidity_days_before` (keyCompromise only) says how many days before the revocation the key is believed compromised.
    Revoked {
        /// RFC 5280 §5.3.1 CRLReason name, or `None` to omit the reason code.
        reason: Option<&'static str>,
        /// For keyCompromise: days between the invalidity date (RFC 5280 §5.3.2) and the revocation.
        invalidity_days_before: Option<u32>,
    },
}

/// One issuing CA of the demo PKI (files are absolute paths under the output dir).
#[derive(Debug, Clone)]
pub struct DemoCa {
    /// URL-safe id, e.g. "aci-el-org".
    pub id: String,
    /// Subject as a one-line string, for display.
    pub subject: String,
    /// CA certificate (PEM).
    pub cert: PathBuf,
    /// CA private key (PKCS#8 PEM, unencrypted).
    pub key: PathBuf,
    /// Delegated OCSP signer certificate (PEM), issued by this CA.
    pub ocsp_cert: PathBuf,
    /// Delegated OCSP signer private key (PKCS#8 PEM, unencrypted).
    pub ocsp_key: PathBuf,
}

/// One sample end-entity certificate.
#[derive(Debug, Clone)]
pub struct DemoCert {
    /// Id of the issuing CA ([`DemoCa::id`]).
    pub ca_id: String,
    /// Certificate profile name, e.g. "ORG_AUTH_CLI".
    pub profile: &'static str,
    /// PEM file path.
    pub path: PathBuf,
    /// Serial, lowercase hex without leading zeros ("0" never happens: serials are random, positive, 16 bytes, first bit clear).
    pub serial_hex: String,
    /// The status the demo intends this certificate to have.
    pub status: SampleStatus,
}

/// What the generator made.
#[derive(Debug, Clone)]
pub struct DemoPki {
    /// Root CA certificate (PEM path) — the trust anchor for `openssl ocsp -CAfile` / `openssl verify`.
    pub root_cert: PathBuf,
    /// Both roots (IGC-Santé test root and legacy GIP-CPS test root), PEM concatenated (`roots.pem`):
    /// the `-CAfile` to use when certificates of both hierarchies are checked.
    pub roots: PathBuf,
    /// Every file with the root and every issuing CA certificate, PEM concatenated (`chain.pem`):
    /// both roots, then the three issuing CAs.
    pub chain: PathBuf,
    /// The issuing CAs, in a fixed order: `aci-el-org`, `aci-el-pp`, `gip-cps-c4`.
    pub cas: Vec<DemoCa>,
    /// The sample end-entity certificates, in a fixed order.
    pub certs: Vec<DemoCert>,
}

/// Create the PKI under `dir` (creating `dir/pki/`), or load what an earlier call created there:
/// if `dir/pki/manifest.json` exists, read it back and return it without generating anything.
///
/// When loading, `opts` is ignored: the certificates keep the URLs they were made with. Delete
/// `dir/pki/` to start over. The manifest is written last (atomically), so an interrupted
/// generation leaves no manifest and the next call generates everything again.
///
/// # Errors
///
/// [`DemoError::Openssl`] if key generation or signing fails; [`DemoError::Io`] if a file cannot
/// be written or read, or if an existing `manifest.json` is malformed (kind `InvalidData`).
pub fn create_or_load(dir: &Path, opts: &DemoOptions) -> Result<DemoPki, DemoError> {
    let pki_dir = dir.join(PKI_DIR);
    let manifest_path = pki_dir.join(MANIFEST_FILE);
    let exists = manifest_path
        .try_exists()
        .map_err(|source| io_error(&manifest_path, source))?;
    if exists {
        return load_manifest(&pki_dir, &manifest_path);
    }
    Generator::new(pki_dir, opts).run()
}

// ---------------------------------------------------------------------------------------------
// Fixed shape of the demo PKI
// ---------------------------------------------------------------------------------------------

const PKI_DIR: &str = "pki";
const CERTS_DIR: &str = "certs";
const MANIFEST_FILE: &str = "manifest.json";
const MANIFEST_FORMAT: u32 = 1;

/// One day, in seconds.
const DAY: u64 = 86_400;
/// CA validity: 20 years, as observed on IGC-Santé CAs.
const CA_VALIDITY_DAYS: u64 = 20 * 365 + 5;
/// Delegated OCSP signer validity: 1 year.
const OCSP_VALIDITY_DAYS: u64 = 365;
/// Software certificate validity: 3 years.
const EE_VALIDITY_DAYS: u64 = 3 * 365 + 1;

/// The RFC 5280 §5.3.1 CRLReason names (value 7 is unused), used to map manifest strings back to
/// the `&'static str` of [`SampleStatus::Revoked`].
const REASON_NAMES: [&str; 10] = [
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "removeFromCRL",
    "privilegeWithdrawn",
    "aACompromise",
];

/// The 13 IGC-Santé software certificate profiles, then the legacy profiles of the demo.
const PROFILES: [&str; 15] = [
    "ORG_AUTH_CLI",
    "ORG_SIGN",
    "ORG_CONF",
    "SERV_SSL_SERV",
    "SERV_SIGN",
    "SERV_S/MIME",
    "SERV_CONF",
    "PS_AUTH",
    "PS_SIGN",
    "PS_CONF",
    "PRO_AUTH",
    "PRO_SIGN",
    "PRO_CONF",
    "CPS_AUTH",
    "CPS_SIGN",
];

/// Made-up certificate policy arc for the demo (test only: not an OID of the real IGC-Santé);
/// the profile's index in [`PROFILES`] is appended.
const DEMO_POLICY_ARC: [u64; 9] = [1, 2, 250, 1, 213, 1, 1, 99, 0];

// RFC 5280 §4.2.1.13 / §4.2.1.15 / RFC 5280 §4.2.1.4 / §4.2.2.1, RFC 6960 §4.2.2.2.1.
const OID_CRL_DISTRIBUTION_POINTS: &[u64] = &[2, 5, 29, 31];
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const OID_FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_PKIX_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// `C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST`: the prefix of every test CA name.
const IGC_SANTE_TEST_PREFIX: &[(Nid, &str)] = &[
    (Nid::COUNTRYNAME, "FR"),
    (Nid::ORGANIZATIONNAME, "ASIP-SANTE"),
    (Nid::ORGANIZATIONALUNITNAME, "0002 187512751"),
    (Nid::ORGANIZATIONALUNITNAME, "IGC-SANTE TEST"),
];

/// `C=FR, O=GIP-CPS, OU=GIP-CPS TEST`: the prefix of the legacy test CA names.
const GIP_CPS_TEST_PREFIX: &[(Nid, &str)] = &[
    (Nid::COUNTRYNAME, "FR"),
    (Nid::ORGANIZATIONNAME, "GIP-CPS"),
    (Nid::ORGANIZATIONALUNITNAME, "GIP-CPS TEST"),
];

/// Key type of a delegated OCSP signer.
#[derive(Debug, Clone, Copy)]
enum SignerKey {
    /// ECDSA on prime256v1.
    EcP256,
    /// RSA-2048.
    Rsa2048,
}

/// One issuing CA to make.
struct IssuingCaSpec {
    id: &'static str,
    /// CN of the CA; its OCSP signer is `TEST OCSP {cn without "TEST "}`.
    cn: &'static str,
    prefix: &'static [(Nid, &'static str)],
    /// `true` for the legacy hierarchy (issued by the GIP-CPS root).
    legacy: bool,
    signer_key: SignerKey,
}

const ISSUING_CAS: [IssuingCaSpec; 3] = [
    IssuingCaSpec {
        id: "aci-el-org",
        cn: "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS",
        prefix: IGC_SANTE_TEST_PREFIX,
        legacy: false,
        signer_key: SignerKey::EcP256,
    },
    IssuingCaSpec {
        id: "aci-el-pp",
        cn: "TEST AC IGC-SANTE ELEMENTAIRE PERSONNES",
        prefix: IGC_SANTE_TEST_PREFIX,
        legacy: false,
        signer_key: SignerKey::Rsa2048,
    },
    IssuingCaSpec {
        id: "gip-cps-c4",
        cn: "TEST GIP-CPS CLASSE-4",
        prefix: GIP_CPS_TEST_PREFIX,
        legacy: true,
        signer_key: SignerKey::Rsa2048,
    },
];

/// The cryptographic use of a profile, which fixes keyUsage / extendedKeyUsage.
#[derive(Debug, Clone, Copy)]
enum Usage {
    /// digitalSignature; clientAuth.
    Auth,
    /// digitalSignature + keyEncipherment; serverAuth + clientAuth.
    SslServer,
    /// nonRepudiation (contentCommitment).
    Sign,
    /// keyEncipherment + dataEncipherment.
    Conf,
    /// digitalSignature + keyEncipherment; emailProtection.
    Smime,
}

/// A subjectAltName entry.
#[derive(Debug, Clone, Copy)]
enum San {
    Dns(&'static str),
    Email(&'static str),
}

/// One sample end-entity certificate to make.
struct SampleSpec {
    ca_id: &'static str,
    profile: &'static str,
    usage: Usage,
    subject: &'static [(Nid, &'static str)],
    san: Option<San>,
    status: SampleStatus,
}

/// A structure of the ORGANISATIONS CA: a hospital identified by "1" + FINESS.
const fn org_subject(cn: &'static str) -> [(Nid, &'static str); 5] {
    [
        (Nid::COUNTRYNAME, "FR"),
        (Nid::ORGANIZATIONNAME, "CENTRE HOSPITALIER DE TEST"),
        (Nid::ORGANIZATIONALUNITNAME, "1750000001"),
        (Nid::STATEORPROVINCENAME, "Paris (75)"),
        (Nid::COMMONNAME, cn),
    ]
}

const ORG_AUTH_CLI_SUBJECT: [(Nid, &str); 5] = org_subject("LOGICIEL DPI CH TEST");
const ORG_SIGN_SUBJECT: [(Nid, &str); 5] = org_subject("SIGNATURE COMPTES RENDUS CH TEST");
const ORG_CONF_SUBJECT: [(Nid, &str); 5] = org_subject("CHIFFREMENT ARCHIVES CH TEST");
const SERV_SSL_DMP_SUBJECT: [(Nid, &str); 5] = org_subject("dmp-connecteur.ch-test.fr");
const SERV_SSL_PORTAIL_SUBJECT: [(Nid, &str); 5] = org_subject("portail.ch-test.fr");
const SERV_SMIME_SUBJECT: [(Nid, &str); 5] = org_subject("secretariat@ch-test.mssante.fr");

/// A health professional on their own account ("3" + SIRET of the practice, RPPS "8" + 11 digits).
const PS_SUBJECT: &[(Nid, &str)] = &[
    (Nid::COUNTRYNAME, "FR"),
    (Nid::ORGANIZATIONNAME, "CABINET MEDICAL DUPONT"),
    (Nid::ORGANIZATIONALUNITNAME, "312345678900017"),
    (Nid::SURNAME, "DUPONT"),
    (Nid::GIVENNAME, "Jean"),
    (Nid::SERIALNUMBER, "810000012345"),
    (Nid::COMMONNAME, "810000012345/DUPONT Jean"),
];

/// Staff under the responsibility of a structure (the test hospital).
const PRO_SUBJECT: &[(Nid, &str)] = &[
    (Nid::COUNTRYNAME, "FR"),
    (Nid::ORGANIZATIONNAME, "CENTRE HOSPITALIER DE TEST"),
    (Nid::ORGANIZATIONALUNITNAME, "1750000001"),
    (Nid::SURNAME, "MARTIN"),
    (Nid::GIVENNAME, "Sophie"),
    (Nid::SERIALNUMBER, "810000054321"),
    (Nid::COMMONNAME, "810000054321/MARTIN Sophie"),
];

/// A CPS holder of the legacy PKI.
const CPS_SUBJECT: &[(Nid, &str)] = &[
    (Nid::COUNTRYNAME, "FR"),
    (Nid::STATEORPROVINCENAME, "Gironde (33)"),
    (Nid::ORGANIZATIONNAME, "CABINET MEDICAL BERNARD"),
    (Nid::ORGANIZATIONALUNITNAME, "398765432100013"),
    (Nid::SERIALNUMBER, "899700098765"),
    (Nid::COMMONNAME, "899700098765/BERNARD Paul"),
];

const fn revoked(reason: Option<&'static str>) -> SampleStatus {
    SampleStatus::Revoked {
        reason,
        invalidity_days_before: None,
    }
}

/// The sample end-entity certificates, in manifest order.
fn sample_specs() -> Vec<SampleSpec> {
    use SampleStatus::Good;
    let spec = |ca_id, profile, usage, subject, san, status| SampleSpec {
        ca_id,
        profile,
        usage,
        subject,
        san,
        status,
    };
    vec![
        spec(
            "aci-el-org",
            "ORG_AUTH_CLI",
            Usage::Auth,
            &ORG_AUTH_CLI_SUBJECT[..],
            None,
            Good,
        ),
        spec(
            "aci-el-org",
            "ORG_SIGN",
            Usage::Sign,
            &ORG_SIGN_SUBJECT[..],
            None,
            SampleStatus::Revoked {
                reason: Some("keyCompromise"),
                invalidity_days_before: Some(3),
            },
        ),
        spec(
            "aci-el-org",
            "ORG_CONF",
            Usage::Conf,
            &ORG_CONF_SUBJECT[..],
            None,
            Good,
        ),
        spec(
            "aci-el-org",
            "SERV_SSL_SERV",
            Usage::SslServer,
            &SERV_SSL_DMP_SUBJECT[..],
            Some(San::Dns("dmp-connecteur.ch-test.fr")),
            Good,
        ),
        spec(
            "aci-el-org",
            "SERV_SSL_SERV",
            Usage::SslServer,
            &SERV_SSL_PORTAIL_SUBJECT[..],
            Some(San::Dns("portail.ch-test.fr")),
            revoked(Some("superseded")),
        ),
        spec(
            "aci-el-org",
            "SERV_S/MIME",
            Usage::Smime,
            &SERV_SMIME_SUBJECT[..],
            Some(San::Email("secretariat@ch-test.mssante.fr")),
            revoked(Some("certificateHold")),
        ),
        spec("aci-el-pp", "PS_AUTH", Usage::Auth, PS_SUBJECT, None, Good),
        spec(
            "aci-el-pp",
            "PS_SIGN",
            Usage::Sign,
            PS_SUBJECT,
            None,
            revoked(Some("affiliationChanged")),
        ),
        spec("aci-el-pp", "PS_CONF", Usage::Conf, PS_SUBJECT, None, Good),
        spec(
            "aci-el-pp",
            "PRO_AUTH",
            Usage::Auth,
            PRO_SUBJECT,
            None,
            revoked(None),
        ),
        spec(
            "aci-el-pp",
            "PRO_SIGN",
            Usage::Sign,
            PRO_SUBJECT,
            None,
            Good,
        ),
        spec(
            "aci-el-pp",
            "PRO_CONF",
            Usage::Conf,
            PRO_SUBJECT,
            None,
            revoked(Some("cessationOfOperation")),
        ),
        spec(
            "gip-cps-c4",
            "CPS_AUTH",
            Usage::Auth,
            CPS_SUBJECT,
            None,
            Good,
        ),
        spec(
            "gip-cps-c4",
            "CPS_SIGN",
            Usage::Sign,
            CPS_SUBJECT,
            None,
            revoked(Some("privilegeWithdrawn")),
        ),
    ]
}

/// File-name form of a profile: lowercase, `/` dropped (`SERV_S/MIME` → `serv_smime`).
fn profile_file_stem(profile: &str) -> String {
    profile.to_lowercase().replace('/', "")
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/// A CA made by the generator: certificate, key, and where they were written.
struct Authority {
    /// File id (`acr-el`, `aci-el-org`, `gip-cps-root` …), also used in its CRL URL.
    file_id: String,
    /// Subject as ordered (attribute, value) pairs.
    dn: Vec<(Nid, String)>,
    cert: X509,
    key: PKey<Private>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// What to put in one certificate, besides the subject key identifier (always present) and the
/// authority key identifier (present when there is an issuer).
struct CertRequest<'a> {
    dn: &'a [(Nid, String)],
    public_key: &'a PKey<Private>,
    validity_days: u64,
    extensions: Vec<X509Extension>,
    /// subjectAltName (RFC 5280 §4.2.1.6), if any.
    san: Option<San>,
}

struct Generator<'a> {
    pki_dir: PathBuf,
    opts: &'a DemoOptions,
    /// `public_url` without a trailing `/`.
    base_url: String,
    /// Unix time at which every certificate's validity starts (one day ago, for clock skew).
    not_before: u64,
    serials: HashSet<[u8; 16]>,
}

impl<'a> Generator<'a> {
    fn new(pki_dir: PathBuf, opts: &'a DemoOptions) -> Self {
        // A clock before 1970 only makes validity start in 1970: still a usable test PKI.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Generator {
            pki_dir,
            opts,
            base_url: opts.public_url.trim_end_matches('/').to_owned(),
            not_before: now.saturating_sub(DAY),
            serials: HashSet::new(),
        }
    }

    fn run(mut self) -> Result<DemoPki, DemoError> {
        let certs_dir = self.pki_dir.join(CERTS_DIR);
        fs::create_dir_all(&certs_dir).map_err(|source| io_error(&certs_dir, source))?;

        let igc_root = self.make_ca(
            "acr-el",
            &dn_with_cn(
                IGC_SANTE_TEST_PREFIX,
                "TEST AC RACINE IGC-SANTE ELEMENTAIRE",
            ),
            None,
        )?;
        let gip_root = self.make_ca(
            "gip-cps-root",
            &dn_with_cn(GIP_CPS_TEST_PREFIX, "TEST GIP-CPS RACINE"),
            None,
        )?;

        let mut issuing = Vec::with_capacity(ISSUING_CAS.len());
        let mut cas = Vec::with_capacity(ISSUING_CAS.len());
        for spec in &ISSUING_CAS {
            let root = if spec.legacy { &gip_root } else { &igc_root };
            let ca = self.make_ca(spec.id, &dn_with_cn(spec.prefix, spec.cn), Some(root))?;
            let signer_cn = format!("TEST OCSP {}", spec.cn.trim_start_matches("TEST "));
            let (ocsp_cert, ocsp_key) =
                self.make_ocsp_signer(&ca, &dn_with_cn(spec.prefix, &signer_cn), spec.signer_key)?;
            cas.push(DemoCa {
                id: spec.id.to_owned(),
                subject: dn_one_line(&ca.dn),
                cert: ca.cert_path.clone(),
                key: ca.key_path.clone(),
                ocsp_cert,
                ocsp_key,
            });
            issuing.push(ca);
        }

        let mut certs = Vec::new();
        let specs = sample_specs();
        for (i, spec) in specs.iter().enumerate() {
            let ca = issuing
                .iter()
                .find(|ca| ca.file_id == spec.ca_id)
                .expect("every sample spec names one of ISSUING_CAS (checked by a unit test)");
            // n counts the certificates of the same CA and profile, from 1.
            let n = 1 + specs[..i]
                .iter()
                .filter(|s| s.ca_id == spec.ca_id && s.profile == spec.profile)
                .count();
            certs.push(self.make_end_entity(ca, spec, n)?);
        }

        let roots_pem = [igc_root.cert.to_pem()?, gip_root.cert.to_pem()?].concat();
        let mut chain_pem = roots_pem.clone();
        for ca in &issuing {
            chain_pem.extend_from_slice(&ca.cert.to_pem()?);
        }
        let roots = self.pki_dir.join("roots.pem");
        write_file(&roots, &roots_pem, false)?;
        let chain = self.pki_dir.join("chain.pem");
        write_file(&chain, &chain_pem, false)?;

        let pki = DemoPki {
            root_cert: igc_root.cert_path.clone(),
            roots,
            chain,
            cas,
            certs,
        };
        write_manifest(&self.pki_dir, &self.base_url, &pki)?;
        Ok(pki)
    }

    /// Make a root (`issuer` `None`) or an issuing CA, and write `{file_id}.pem` / `{file_id}.key`.
    fn make_ca(
        &mut self,
        file_id: &str,
        dn: &[(Nid, String)],
        issuer: Option<&Authority>,
    ) -> Result<Authority, DemoError> {
        let key = rsa_key(self.opts.ca_rsa_bits)?;
        // RFC 5280 §4.2.1.9 / §4.2.1.3: CA:TRUE (pathlen 0 below a root), keyCertSign + cRLSign.
        let mut basic = BasicConstraints::new();
        basic.critical().ca();
        let mut usage = KeyUsage::new();
        usage.critical().key_cert_sign().crl_sign();
        if issuer.is_some() {
            basic.pathlen(0);
            // An issuing CA may sign OCSP responses itself when no delegated signer is used.
            usage.digital_signature();
        }
        let mut extensions = vec![basic.build()?, usage.build()?];
        if let Some(root) = issuer {
            extensions.push(crl_distribution_points(&format!(
                "{}/crl/{}.crl",
                self.base_url, root.file_id
            ))?);
        }
        let cert = self.issue(
            CertRequest {
                dn,
                public_key: &key,
                validity_days: CA_VALIDITY_DAYS,
                extensions,
                san: None,
            },
            issuer,
        )?;
        let cert_path = self.pki_dir.join(format!("{file_id}.pem"));
        let key_path = self.pki_dir.join(format!("{file_id}.key"));
        write_file(&cert_path, &cert.to_pem()?, false)?;
        write_file(&key_path, &key.private_key_to_pem_pkcs8()?, true)?;
        Ok(Authority {
            file_id: file_id.to_owned(),
            dn: dn.to_vec(),
            cert,
            key,
            cert_path,
            key_path,
        })
    }

    /// Make the delegated OCSP signer of `ca` (RFC 6960 §4.2.2.2) and write
    /// `{id}-ocsp.pem` / `{id}-ocsp.key`; returns their paths.
    fn make_ocsp_signer(
        &mut self,
        ca: &Authority,
        dn: &[(Nid, String)],
        key_type: SignerKey,
    ) -> Result<(PathBuf, PathBuf), DemoError> {
        let key = match key_type {
            SignerKey::EcP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            SignerKey::Rsa2048 => rsa_key(2048)?,
        };
        let extensions = vec![
            BasicConstraints::new().critical().build()?,
            KeyUsage::new().critical().digital_signature().build()?,
            ExtendedKeyUsage::new().other("OCSPSigning").build()?,
            // RFC 6960 §4.2.2.2.1: id-pkix-ocsp-nocheck, value NULL, non-critical.
            extension(OID_PKIX_OCSP_NOCHECK, false, &ext_der::null())?,
        ];
        let cert = self.issue(
            CertRequest {
                dn,
                public_key: &key,
                validity_days: OCSP_VALIDITY_DAYS,
                extensions,
                san: None,
            },
            Some(ca),
        )?;
        let cert_path = self.pki_dir.join(format!("{}-ocsp.pem", ca.file_id));
        let key_path = self.pki_dir.join(format!("{}-ocsp.key", ca.file_id));
        write_file(&cert_path, &cert.to_pem()?, false)?;
        write_file(&key_path, &key.private_key_to_pem_pkcs8()?, true)?;
        Ok((cert_path, key_path))
    }

    /// Make the `n`-th sample certificate of `spec.profile` under `ca`, and write
    /// `certs/{ca_id}-{profile}-{n}.pem` / `.key`.
    fn make_end_entity(
        &mut self,
        ca: &Authority,
        spec: &SampleSpec,
        n: usize,
    ) -> Result<DemoCert, DemoError> {
        let key = rsa_key(2048)?;
        let ca_id = &ca.file_id;
        let profile_index = PROFILES
            .iter()
            .position(|p| *p == spec.profile)
            .expect("every sample spec profile is in PROFILES (checked by a unit test)");

        let mut usage = KeyUsage::new();
        usage.critical();
        let mut eku = ExtendedKeyUsage::new();
        let has_eku = match spec.usage {
            Usage::Auth => {
                usage.digital_signature();
                eku.client_auth();
                true
            }
            Usage::SslServer => {
                usage.digital_signature().key_encipherment();
                eku.server_auth().client_auth();
                true
            }
            Usage::Sign => {
                usage.non_repudiation();
                false
            }
            Usage::Conf => {
                usage.key_encipherment().data_encipherment();
                false
            }
            Usage::Smime => {
                usage.digital_signature().key_encipherment();
                eku.email_protection();
                true
            }
        };

        let mut policy = DEMO_POLICY_ARC;
        policy[policy.len() - 1] = profile_index as u64;

        let mut extensions = vec![BasicConstraints::new().critical().build()?, usage.build()?];
        if has_eku {
            extensions.push(eku.build()?);
        }
        extensions.push(extension(
            OID_CERTIFICATE_POLICIES,
            false,
            &ext_der::certificate_policies(&policy).map_err(der_to_openssl)?,
        )?);
        extensions.push(crl_distribution_points(&format!(
            "{}/crl/{ca_id}.crl",
            self.base_url
        ))?);
        // RFC 5280 §4.2.1.15: freshestCRL has the syntax of cRLDistributionPoints.
        extensions.push(extension(
            OID_FRESHEST_CRL,
            false,
            &ext_der::distribution_points(&format!("{}/crl/{ca_id}-delta.crl", self.base_url))
                .map_err(der_to_openssl)?,
        )?);
        // RFC 5280 §4.2.2.1: OCSP responder and caIssuers.
        extensions.push(extension(
            OID_AUTHORITY_INFO_ACCESS,
            false,
            &ext_der::authority_info_access(
                &format!("{}/ocsp", self.base_url),
                &format!("{}/ca/{ca_id}.crt", self.base_url),
            )
            .map_err(der_to_openssl)?,
        )?);

        let dn: Vec<(Nid, String)> = spec
            .subject
            .iter()
            .map(|(nid, value)| (*nid, (*value).to_owned()))
            .collect();
        let cert = self.issue(
            CertRequest {
                dn: &dn,
                public_key: &key,
                validity_days: EE_VALIDITY_DAYS,
                extensions,
                san: spec.san,
            },
            Some(ca),
        )?;
        let serial_hex = serial_hex_of(&cert)?;

        let stem = format!("{ca_id}-{}-{n}", profile_file_stem(spec.profile));
        let certs_dir = self.pki_dir.join(CERTS_DIR);
        let path = certs_dir.join(format!("{stem}.pem"));
        write_file(&path, &cert.to_pem()?, false)?;
        write_file(
            &certs_dir.join(format!("{stem}.key")),
            &key.private_key_to_pem_pkcs8()?,
            true,
        )?;
        Ok(DemoCert {
            ca_id: ca_id.clone(),
            profile: spec.profile,
            path,
            serial_hex,
            status: spec.status.clone(),
        })
    }

    /// Build and sign one certificate: X.509 v3, fresh random serial, sha256WithRSAEncryption
    /// (every CA key is RSA), SKI, and AKI (key id) when `issuer` is given; self-signed otherwise.
    fn issue(
        &mut self,
        request: CertRequest<'_>,
        issuer: Option<&Authority>,
    ) -> Result<X509, DemoError> {
        let subject = build_name(request.dn)?;
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?; // v3
        let serial = self.fresh_serial()?;
        let serial = BigNum::from_slice(&serial)?.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&subject)?;
        match issuer {
            Some(ca) => builder.set_issuer_name(ca.cert.subject_name())?,
            None => builder.set_issuer_name(&subject)?,
        }
        builder.set_pubkey(request.public_key)?;
        let not_after = self
            .not_before
            .saturating_add(request.validity_days.saturating_mul(DAY));
        let not_before = unix_time(self.not_before)?;
        let not_after = unix_time(not_after)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        for ext in request.extensions {
            builder.append_extension(ext)?;
        }
        if let Some(san) = request.san {
            let mut alt = SubjectAlternativeName::new();
            match san {
                San::Dns(name) => alt.dns(name),
                San::Email(address) => alt.email(address),
            };
            let ext = {
                let ctx = builder.x509v3_context(issuer.map(|ca| ca.cert.as_ref()), None);
                alt.build(&ctx)?
            };
            builder.append_extension(ext)?;
        }
        // RFC 5280 §4.2.1.2: SKI = SHA-1 of the subject public key (openssl's "hash" method).
        let ski = {
            let ctx = builder.x509v3_context(issuer.map(|ca| ca.cert.as_ref()), None);
            SubjectKeyIdentifier::new().build(&ctx)?
        };
        builder.append_extension(ski)?;
        if let Some(ca) = issuer {
            // RFC 5280 §4.2.1.1: AKI keyIdentifier = the issuer's SKI.
            let aki = {
                let ctx = builder.x509v3_context(Some(ca.cert.as_ref()), None);
                AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?
            };
            builder.append_extension(aki)?;
        }
        let signing_key = issuer.map_or(request.public_key, |ca| &ca.key);
        builder.sign(signing_key, MessageDigest::sha256())?;
        Ok(builder.build())
    }

    /// A random serial never used in this PKI: 16 bytes, first bit clear (positive, RFC 5280
    /// §4.1.2.2), first byte non-zero (so the DER INTEGER is exactly 16 octets).
    fn fresh_serial(&mut self) -> Result<[u8; 16], ErrorStack> {
        loop {
            let mut serial = [0u8; 16];
            rand_bytes(&mut serial)?;
            serial[0] &= 0x7f;
            if serial[0] != 0 && self.serials.insert(serial) {
                return Ok(serial);
            }
        }
    }
}

fn rsa_key(bits: u32) -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(bits)?)
}

/// An [`Asn1Time`] at `secs` since the Unix epoch (openssl picks UTCTime up to 2049, RFC 5280 §4.1.2.5).
fn unix_time(secs: u64) -> Result<Asn1Time, ErrorStack> {
    // Only a platform with a 32-bit time_t after 2038 fails the conversion; the epoch is then a
    // harmless (earlier) notBefore, and notAfter would be wrong on such a platform anyway.
    Asn1Time::from_unix(secs.try_into().unwrap_or(0))
}

/// Lowercase hex serial without leading zeros, as in [`DemoCert::serial_hex`].
fn serial_hex_of(cert: &X509) -> Result<String, ErrorStack> {
    let bytes = cert.serial_number().to_bn()?.to_vec();
    let hex = hex::encode(bytes);
    let trimmed = hex.trim_start_matches('0');
    Ok(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// `prefix` followed by `CN=cn`.
fn dn_with_cn(prefix: &[(Nid, &str)], cn: &str) -> Vec<(Nid, String)> {
    prefix
        .iter()
        .map(|(nid, value)| (*nid, (*value).to_owned()))
        .chain(std::iter::once((Nid::COMMONNAME, cn.to_owned())))
        .collect()
}

fn build_name(dn: &[(Nid, String)]) -> Result<X509Name, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    for (nid, value) in dn {
        name.append_entry_by_nid(*nid, value)?;
    }
    Ok(name.build())
}

/// `C=FR, O=…, CN=…`, in DER order.
fn dn_one_line(dn: &[(Nid, String)]) -> String {
    dn.iter()
        .map(|(nid, value)| {
            let attribute = nid.short_name().unwrap_or("?");
            format!("{attribute}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cRLDistributionPoints extension with one URI (RFC 5280 §4.2.1.13).
fn crl_distribution_points(url: &str) -> Result<X509Extension, ErrorStack> {
    extension(
        OID_CRL_DISTRIBUTION_POINTS,
        false,
        &ext_der::distribution_points(url).map_err(der_to_openssl)?,
    )
}

/// A `der` encoding failure (only on impossible inputs such as a non-ASCII URL) as openssl's error
/// type, so extension builders keep one error type.
fn der_to_openssl(_: ::der::Error) -> ErrorStack {
    ErrorStack::get()
}

/// An extension from its OID arcs and the DER of its value.
fn extension(oid: &[u64], critical: bool, value: &[u8]) -> Result<X509Extension, ErrorStack> {
    let dotted = oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
    let object = Asn1Object::from_str(&dotted)?;
    let octets = Asn1OctetString::new_from_bytes(value)?;
    X509Extension::new_from_der(&object, critical, &octets)
}

/// Extension values, encoded with the `x509-cert` types (RFC 5280 §4.2.1.4, §4.2.1.13, §4.2.1.15,
/// §4.2.2.1) and RFC 6960 §4.2.2.2.1's NULL.
mod ext_der {
    use ::der::Encode;
    use ::der::asn1::{Ia5String, ObjectIdentifier};
    use x509_cert::ext::pkix::certpolicy::PolicyInformation;
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies};

    fn uri(url: &str) -> Result<GeneralName, ::der::Error> {
        Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
    }

    /// DER NULL.
    pub(super) fn null() -> Vec<u8> {
        vec![0x05, 0x00]
    }

    /// CRLDistributionPoints (also FreshestCRL) with one `fullName` URI.
    pub(super) fn distribution_points(url: &str) -> Result<Vec<u8>, ::der::Error> {
        let dp = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        };
        vec![dp].to_der()
    }

    /// AuthorityInfoAccessSyntax with an OCSP and a caIssuers AccessDescription.
    pub(super) fn authority_info_access(
        ocsp_url: &str,
        ca_issuers_url: &str,
    ) -> Result<Vec<u8>, ::der::Error> {
        AuthorityInfoAccessSyntax(vec![
            AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_OCSP,
                access_location: uri(ocsp_url)?,
            },
            AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
                access_location: uri(ca_issuers_url)?,
            },
        ])
        .to_der()
    }

    /// certificatePolicies with one PolicyInformation, no qualifier.
    pub(super) fn certificate_policies(policy: &[u64]) -> Result<Vec<u8>, ::der::Error> {
        let dotted = policy
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        let oid = ObjectIdentifier::new(&dotted)
            .map_err(|_| ::der::Tag::ObjectIdentifier.value_error())?;
        CertificatePolicies(vec![PolicyInformation {
            policy_identifier: oid,
            policy_qualifiers: None,
        }])
        .to_der()
    }
}

// ---------------------------------------------------------------------------------------------
// Files and manifest
// ---------------------------------------------------------------------------------------------

fn io_error(path: &Path, source: std::io::Error) -> DemoError {
    DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid_manifest(path: &Path, message: impl Into<String>) -> DemoError {
    io_error(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message.into()),
    )
}

/// Write `bytes` to `path` (truncating); `secret` files get mode 0600 on Unix.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), DemoError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|source| io_error(path, source))?;
    // The mode above only applies to a new file: tighten one left by an interrupted run too.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|source| io_error(path, source))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    file.write_all(bytes)
        .map_err(|source| io_error(path, source))?;
    file.sync_all().map_err(|source| io_error(path, source))
}

/// `manifest.json`: paths are stored relative to `dir/pki/`, so the directory can be moved.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// The `public_url` the certificates were made with (informative).
    public_url: String,
    root_cert: String,
    roots: String,
    chain: String,
    cas: Vec<ManifestCa>,
    certs: Vec<ManifestCert>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestCa {
    id: String,
    subject: String,
    cert: String,
    key: String,
    ocsp_cert: String,
    ocsp_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestCert {
    ca_id: String,
    profile: String,
    path: String,
    serial_hex: String,
    status: ManifestStatus,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum ManifestStatus {
    Good,
    Revoked {
        reason: Option<String>,
        invalidity_days_before: Option<u32>,
    },
}

fn write_manifest(pki_dir: &Path, public_url: &str, pki: &DemoPki) -> Result<(), DemoError> {
    let relative = |path: &Path| -> Result<String, DemoError> {
        path.strip_prefix(pki_dir)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid_manifest(path, "generated file outside the pki directory"))
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        public_url: public_url.to_owned(),
        root_cert: relative(&pki.root_cert)?,
        roots: relative(&pki.roots)?,
        chain: relative(&pki.chain)?,
        cas: pki
            .cas
            .iter()
            .map(|ca| {
                Ok(ManifestCa {
                    id: ca.id.clone(),
                    subject: ca.subject.clone(),
                    cert: relative(&ca.cert)?,
                    key: relative(&ca.key)?,
                    ocsp_cert: relative(&ca.ocsp_cert)?,
                    ocsp_key: relative(&ca.ocsp_key)?,
                })
            })
            .collect::<Result<_, DemoError>>()?,
        certs: pki
            .certs
            .iter()
            .map(|cert| {
                Ok(ManifestCert {
                    ca_id: cert.ca_id.clone(),
                    profile: cert.profile.to_owned(),
                    path: relative(&cert.path)?,
                    serial_hex: cert.serial_hex.clone(),
                    status: match &cert.status {
                        SampleStatus::Good => ManifestStatus::Good,
                        SampleStatus::Revoked {
                            reason,
                            invalidity_days_before,
                        } => ManifestStatus::Revoked {
                            reason: reason.map(str::to_owned),
                            invalidity_days_before: *invalidity_days_before,
                        },
                    },
                })
            })
            .collect::<Result<_, DemoError>>()?,
    };
    let manifest_path = pki_dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| io_error(&manifest_path, std::io::Error::other(e)))?;
    // Write then rename, so that a manifest is either complete or absent.
    let tmp = pki_dir.join(format!("{MANIFEST_FILE}.tmp"));
    write_file(&tmp, &json, false)?;
    fs::rename(&tmp, &manifest_path).map_err(|source| io_error(&manifest_path, source))
}

fn load_manifest(pki_dir: &Path, manifest_path: &Path) -> Result<DemoPki, DemoError> {
    let bytes = fs::read(manifest_path).map_err(|source| io_error(manifest_path, source))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| io_error(manifest_path, std::io::Error::from(e)))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(invalid_manifest(
            manifest_path,
            format!("unsupported manifest format {}", manifest.format),
        ));
    }
    // Only plain relative names: a manifest must not point outside its own directory.
    let resolve = |relative: &str| -> Result<PathBuf, DemoError> {
        let path = Path::new(relative);
        if relative.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid_manifest(
                manifest_path,
                format!("file name {relative:?} is not relative to the pki directory"),
            ));
        }
        Ok(pki_dir.join(path))
    };
    let cas = manifest
        .cas
        .iter()
        .map(|ca| {
            Ok(DemoCa {
                id: ca.id.clone(),
                subject: ca.subject.clone(),
                cert: resolve(&ca.cert)?,
                key: resolve(&ca.key)?,
                ocsp_cert: resolve(&ca.ocsp_cert)?,
                ocsp_key: resolve(&ca.ocsp_key)?,
            })
        })
        .collect::<Result<Vec<_>, DemoError>>()?;
    let certs = manifest
        .certs
        .iter()
        .map(|cert| {
            let profile = PROFILES
                .iter()
                .copied()
                .find(|p| *p == cert.profile)
                .ok_or_else(|| {
                    invalid_manifest(manifest_path, format!("unknown profile {:?}", cert.profile))
                })?;
            let status = match &cert.status {
                ManifestStatus::Good => SampleStatus::Good,
                ManifestStatus::Revoked {
                    reason,
                    invalidity_days_before,
                } => SampleStatus::Revoked {
                    reason: reason
                        .as_deref()
                        .map(|name| {
                            REASON_NAMES
                                .iter()
                                .copied()
                                .find(|r| *r == name)
                                .ok_or_else(|| {
                                    invalid_manifest(
                                        manifest_path,
                                        format!("unknown revocation reason {name:?}"),
                                    )
                                })
                        })
                        .transpose()?,
                    invalidity_days_before: *invalidity_days_before,
                },
            };
            Ok(DemoCert {
                ca_id: cert.ca_id.clone(),
                profile,
                path: resolve(&cert.path)?,
                serial_hex: cert.serial_hex.clone(),
                status,
            })
        })
        .collect::<Result<Vec<_>, DemoError>>()?;
    Ok(DemoPki {
        root_cert: resolve(&manifest.root_cert)?,
        roots: resolve(&manifest.roots)?,
        chain: resolve(&manifest.chain)?,
        cas,
        certs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::error::Error;
    use std::process::Command;

    type TestResult = Result<(), Box<dyn Error>>;

    /// Run the `openssl` CLI; fail with its output unless it exits 0. Returns stdout.
    fn openssl(args: &[&std::ffi::OsStr]) -> Result<String, Box<dyn Error>> {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run the openssl CLI (is it installed?): {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "openssl {:?} failed: {}\n{}",
                args,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(stdout)
    }

    fn os(s: &str) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(s)
    }

    fn mtimes(dir: &Path) -> Result<BTreeMap<PathBuf, SystemTime>, Box<dyn Error>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    out.insert(entry.path(), meta.modified()?);
                }
            }
        }
        Ok(out)
    }

    fn verify(pki: &DemoPki, ca: &DemoCa, cert: &Path) -> Result<String, Box<dyn Error>> {
        openssl(&[
            os("verify"),
            os("-CAfile"),
            pki.roots.as_os_str(),
            os("-untrusted"),
            ca.cert.as_os_str(),
            cert.as_os_str(),
        ])
    }

    #[test]
    fn extension_values_are_the_expected_der() {
        use ::der::Decode;
        let dp = ext_der::distribution_points("http://x/crl/a.crl").expect("encodes");
        let parsed = x509_cert::ext::pkix::CrlDistributionPoints::from_der(&dp).expect("decodes");
        assert_eq!(parsed.0.len(), 1);
        let aia =
            ext_der::authority_info_access("http://x/ocsp", "http://x/ca.crt").expect("encodes");
        assert_eq!(
            x509_cert::ext::pkix::AuthorityInfoAccessSyntax::from_der(&aia)
                .expect("decodes")
                .0
                .len(),
            2
        );
        let cp = ext_der::certificate_policies(&[1, 2, 250, 1, 213]).expect("encodes");
        // 1.2.250.1.213: 250 needs two base-128 groups.
        assert!(
            cp.windows(8)
                .any(|w| w == [0x06, 0x06, 0x2a, 0x81, 0x7a, 0x01, 0x81, 0x55])
        );
    }

    #[test]
    fn sample_specs_name_known_cas_and_profiles() {
        for spec in sample_specs() {
            assert!(
                ISSUING_CAS.iter().any(|ca| ca.id == spec.ca_id),
                "{}",
                spec.ca_id
            );
            assert!(PROFILES.contains(&spec.profile), "{}", spec.profile);
            if let SampleStatus::Revoked {
                reason: Some(reason),
                ..
            } = spec.status
            {
                assert!(REASON_NAMES.contains(&reason), "{reason}");
            }
        }
        assert_eq!(profile_file_stem("SERV_S/MIME"), "serv_smime");
    }

    #[test]
    fn generated_pki_verifies_with_openssl_cli_and_reloads() -> TestResult {
        let dir = tempfile::tempdir()?;
        let opts = DemoOptions {
            public_url: "http://vigie.test:8080/".to_owned(),
            ca_rsa_bits: 2048,
        };
        let pki = create_or_load(dir.path(), &opts)?;
        let pki_dir = dir.path().join("pki");

        // Shape.
        let ids: Vec<&str> = pki.cas.iter().map(|ca| ca.id.as_str()).collect();
        assert_eq!(ids, ["aci-el-org", "aci-el-pp", "gip-cps-c4"]);
        assert_eq!(pki.root_cert, pki_dir.join("acr-el.pem"));
        assert!(pki_dir.join("gip-cps-root.pem").is_file());
        assert_eq!(pki.certs.len(), 14);
        let serials: HashSet<&str> = pki.certs.iter().map(|c| c.serial_hex.as_str()).collect();
        assert_eq!(serials.len(), pki.certs.len(), "serials must be unique");
        assert!(
            pki.certs
                .iter()
                .any(|c| c.path == pki_dir.join("certs/aci-el-org-serv_smime-1.pem"))
        );
        assert!(
            pki_dir
                .join("certs/aci-el-org-serv_ssl_serv-2.pem")
                .is_file()
        );
        assert_eq!(
            fs::read_to_string(&pki.chain)?
                .matches("BEGIN CERTIFICATE")
                .count(),
            5
        );
        assert_eq!(
            fs::read_to_string(&pki.roots)?
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(
            pki.cas[0].subject,
            "C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST, \
             CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"
        );

        // Issuing CAs chain to their root; the IGC-Santé root alone does not anchor the legacy CA.
        for ca in &pki.cas {
            openssl(&[
                os("verify"),
                os("-CAfile"),
                pki.roots.as_os_str(),
                ca.cert.as_os_str(),
            ])?;
        }
        assert!(
            openssl(&[
                os("verify"),
                os("-CAfile"),
                pki.root_cert.as_os_str(),
                pki.cas[2].cert.as_os_str(),
            ])
            .is_err()
        );

        // Delegated OCSP signers.
        for ca in &pki.cas {
            verify(&pki, ca, &ca.ocsp_cert)?;
            let eku = openssl(&[
                os("x509"),
                os("-in"),
                ca.ocsp_cert.as_os_str(),
                os("-noout"),
                os("-ext"),
                os("extendedKeyUsage"),
            ])?;
            assert!(eku.contains("OCSP Signing"), "{}: {eku}", ca.id);
            let text = openssl(&[
                os("x509"),
                os("-in"),
                ca.ocsp_cert.as_os_str(),
                os("-noout"),
                os("-text"),
            ])?;
            assert!(text.contains("OCSP No Check"), "{}: {text}", ca.id);
            assert!(text.contains("Digital Signature"), "{}: {text}", ca.id);
            let key = PKey::private_key_from_pem(&fs::read(&ca.ocsp_key)?)?;
            let expected = if ca.id == "aci-el-org" {
                openssl::pkey::Id::EC
            } else {
                openssl::pkey::Id::RSA
            };
            assert_eq!(key.id(), expected, "{}", ca.id);
        }
        let ec_text = openssl(&[
            os("pkey"),
            os("-in"),
            pki.cas[0].ocsp_key.as_os_str(),
            os("-noout"),
            os("-text"),
        ])?;
        assert!(ec_text.contains("prime256v1"), "{ec_text}");

        // End-entity certificates.
        for cert in &pki.certs {
            let ca = pki
                .cas
                .iter()
                .find(|ca| ca.id == cert.ca_id)
                .ok_or("sample certificate names an unknown CA")?;
            let out = verify(&pki, ca, &cert.path)?;
            assert!(out.contains("OK"), "{}: {out}", cert.path.display());

            let serial = openssl(&[
                os("x509"),
                os("-in"),
                cert.path.as_os_str(),
                os("-noout"),
                os("-serial"),
            ])?;
            let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
            assert_eq!(serial.trim_start_matches('0'), cert.serial_hex);
            // 16 bytes, first byte in 0x01..=0x7f: 31 or 32 hex digits, never a leading zero.
            assert!(
                matches!(cert.serial_hex.len(), 31 | 32),
                "{}",
                cert.serial_hex
            );
            assert!(!cert.serial_hex.starts_with('0'), "{}", cert.serial_hex);

            let text = openssl(&[
                os("x509"),
                os("-in"),
                cert.path.as_os_str(),
                os("-noout"),
                os("-text"),
            ])?;
            for needle in [
                format!("URI:http://vigie.test:8080/crl/{}.crl", ca.id),
                format!("URI:http://vigie.test:8080/crl/{}-delta.crl", ca.id),
                "X509v3 Freshest CRL".to_owned(),
                "OCSP - URI:http://vigie.test:8080/ocsp".to_owned(),
                format!("CA Issuers - URI:http://vigie.test:8080/ca/{}.crt", ca.id),
                "Policy: 1.2.250.1.213.1.1.99.".to_owned(),
                "sha256WithRSAEncryption".to_owned(),
                "CA:FALSE".to_owned(),
            ] {
                assert!(
                    text.contains(&needle),
                    "{}: missing {needle}",
                    cert.path.display()
                );
            }
            match cert.profile {
                "SERV_SSL_SERV" => assert!(text.contains("TLS Web Server Authentication")),
                "SERV_S/MIME" => assert!(text.contains("email:secretariat@ch-test.mssante.fr")),
                p if p.ends_with("_SIGN") => assert!(text.contains("Non Repudiation")),
                _ => {}
            }
        }

        // Keys are private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for ca in &pki.cas {
                for key in [&ca.key, &ca.ocsp_key] {
                    assert_eq!(fs::metadata(key)?.permissions().mode() & 0o777, 0o600);
                }
            }
            let ee_key = pki_dir.join("certs/aci-el-pp-ps_auth-1.key");
            assert_eq!(fs::metadata(ee_key)?.permissions().mode() & 0o777, 0o600);
        }

        // A second call loads the manifest and regenerates nothing.
        let before = mtimes(&pki_dir)?;
        let again = create_or_load(dir.path(), &opts)?;
        assert_eq!(mtimes(&pki_dir)?, before);
        assert_eq!(again.root_cert, pki.root_cert);
        assert_eq!(again.roots, pki.roots);
        assert_eq!(again.chain, pki.chain);
        assert_eq!(again.cas.len(), pki.cas.len());
        for (a, b) in again.cas.iter().zip(&pki.cas) {
            assert_eq!(
                (&a.id, &a.subject, &a.cert, &a.key),
                (&b.id, &b.subject, &b.cert, &b.key)
            );
            assert_eq!((&a.ocsp_cert, &a.ocsp_key), (&b.ocsp_cert, &b.ocsp_key));
        }
        assert_eq!(again.certs.len(), pki.certs.len());
        for (a, b) in again.certs.iter().zip(&pki.certs) {
            assert_eq!(
                (&a.ca_id, a.profile, &a.path),
                (&b.ca_id, b.profile, &b.path)
            );
            assert_eq!(a.serial_hex, b.serial_hex);
            assert_eq!(a.status, b.status);
        }
        assert!(again.certs.iter().any(|c| c.status
            == SampleStatus::Revoked {
                reason: Some("keyCompromise"),
                invalidity_days_before: Some(3)
            }));
        assert!(again.certs.iter().any(|c| c.status
            == SampleStatus::Revoked {
                reason: None,
                invalidity_days_before: None
            }));
        Ok(())
    }

    #[test]
    fn malformed_manifest_is_an_invalid_data_error() -> TestResult {
        let dir = tempfile::tempdir()?;
        let pki_dir = dir.path().join("pki");
        fs::create_dir_all(&pki_dir)?;
        fs::write(pki_dir.join("manifest.json"), b"{ not json")?;
        let opts = DemoOptions {
            public_url: "http://localhost".to_owned(),
            ca_rsa_bits: 2048,
        };
        match create_or_load(dir.path(), &opts) {
            Err(DemoError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
            }
            other => return Err(format!("expected an InvalidData error, got {other:?}").into()),
        }
        Ok(())
    }
}
