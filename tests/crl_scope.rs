//! CRL scope (issue 9): the complete CRL's IssuingDistributionPoint names what the CA's
//! registered certificates carry, so that relying parties apply it to every one of them.
//!
//! Three sets of certificates, each under its own CA of the test PKI — without CRL distribution
//! point, with vigie's own URL, with an HTTP + LDAP pair (two distribution points, as
//! IGC-Santé's certificates carry) — each with a good certificate, one revoked before the
//! complete CRL and one revoked after it (on the delta only). They are registered through the
//! real server's ingest API (PEM), the CRLs fetched over HTTP and checked by `openssl verify
//! -crl_check [-use_deltas]` and by Java's `PKIXRevocationChecker` (`tests/java/CrlCheck.java`,
//! compiled here with `javac`; the test fails when the JDK is missing). The learned scope
//! survives a restart and an offline `vigie crl build`. A second test sets `crl_urls` that
//! leave a registered certificate out: `vigie_crl_scope_mismatch_total` counts it, the log names
//! it, and both checkers indeed refuse that CRL for it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::api::{Api, issue_with_crldp, pem, random_serial};
use common::*;
use openssl::x509::{X509, X509Crl};
use serde_json::json;

const NONE_CA: &str = "aci-el-org";
const OWN_CA: &str = "aci-el-pp";
const PAIR_CA: &str = "gip-cps-c4";
const HTTP_DP: &str = "http://igc-sante.test/CRL/GIP-CPS-C4.crl";
const LDAP_DP: &str = "ldap://127.0.0.1:1/cn=TEST%20GIP-CPS%20C4,ou=IGC-SANTE%20TEST,o=ASIP-SANTE,c=FR?certificateRevocationList;binary";

fn own_dp() -> String {
    format!("{PKI_PUBLIC_URL}/crl/{OWN_CA}.crl")
}

/// One set: a CA, the distribution points its certificates carry, three certificates.
struct CertSet {
    ca: &'static str,
    points: Vec<Vec<String>>,
    /// The IssuingDistributionPoint names expected (sorted); `None`: no extension.
    idp: Option<Vec<String>>,
    good: (String, X509),
    revoked: (String, X509),
    late: (String, X509),
}

impl CertSet {
    fn new(ca: &'static str, points: Vec<Vec<String>>, idp: Option<Vec<String>>) -> CertSet {
        let make = || {
            let serial = random_serial();
            let p: Vec<Vec<&str>> = points
                .iter()
                .map(|v| v.iter().map(String::as_str).collect())
                .collect();
            let p: Vec<&[&str]> = p.iter().map(Vec::as_slice).collect();
            let cert = issue_with_crldp(ca, &serial, None, &p).0;
            (serial, cert)
        };
        CertSet {
            ca,
            idp,
            good: make(),
            revoked: make(),
            late: make(),
            points,
        }
    }
}

fn fetch(url: &str) -> (u16, Vec<u8>) {
    let resp = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    (status, body)
}

fn wait_ready(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while fetch(&s.admin_url("/readyz")).0 != 200 {
        assert!(Instant::now() < deadline, "never ready: {}", s.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `path` until `test` accepts the DER CRL there.
fn wait_for_crl(s: &Server, path: &str, what: &str, test: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = fetch(&s.url(path));
        if status == 200 && test(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "waited in vain for {what}: {}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The IssuingDistributionPoint of a DER CRL, read with x509-cert: `None` when absent,
/// otherwise its fullName URIs, sorted. Panics if it is not critical or names anything else.
fn idp_of(der: &[u8]) -> Option<Vec<String>> {
    use der::Decode;
    use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let crl = x509_cert::crl::CertificateList::from_der(der).expect("CRL parses");
    let e = crl
        .tbs_cert_list
        .crl_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT)?;
    assert!(e.critical, "IssuingDistributionPoint must be critical");
    let idp = IssuingDistributionPoint::from_der(e.extn_value.as_bytes()).expect("IDP parses");
    let mut names: Vec<String> = match idp.distribution_point {
        Some(DistributionPointName::FullName(names)) => names
            .into_iter()
            .map(|n| match n {
                GeneralName::UniformResourceIdentifier(u) => u.to_string(),
                other => panic!("unexpected name {other:?}"),
            })
            .collect(),
        other => panic!("unexpected distributionPoint {other:?}"),
    };
    names.sort();
    Some(names)
}

fn lists(der: &[u8], serial_hex: &str) -> bool {
    let crl = X509Crl::from_der(der).expect("DER CRL");
    listed_serials(&crl).contains(&serial_key(serial_hex))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("written");
    p
}

fn pem_crl(der: &[u8]) -> Vec<u8> {
    X509Crl::from_der(der)
        .expect("DER CRL")
        .to_pem()
        .expect("PEM")
}

/// `openssl verify -crl_check [-use_deltas]`: (accepted, output).
fn openssl_verify(leaf: &Path, issuer: &Path, crls: &[&Path], deltas: bool) -> (bool, String) {
    let mut args = vec![
        "verify",
        "-crl_check",
        "-CAfile",
        path_str(&pki().roots),
        "-untrusted",
        path_str(issuer),
    ];
    if deltas {
        args.push("-use_deltas");
    }
    for c in crls {
        args.push("-CRLfile");
        args.push(path_str(c));
    }
    args.push(path_str(leaf));
    let out = openssl(&args);
    (out.status.success(), text(&out))
}

/// `javac` once per test binary: the directory holding `CrlCheck.class`. Fails the test when
/// the JDK is missing (`.ci/run` installs default-jdk-headless).
fn java_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("java-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/CrlCheck.java");
        let out = Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| {
                panic!("javac is required (apt-get install default-jdk-headless): {e}")
            });
        assert!(out.status.success(), "javac failed: {}", text(&out));
        dir
    })
}

/// Java's verdict: 0 good, 2 revoked, 3 undetermined (see CrlCheck.java); and its output.
fn java_check(leaf: &Path, issuer: &Path, crls: &[&Path]) -> (i32, String) {
    let out = Command::new("java")
        .arg("-cp")
        .arg(java_classes())
        .arg("CrlCheck")
        .arg(&pki().roots)
        .arg(issuer)
        .arg(leaf)
        .args(crls)
        .output()
        .unwrap_or_else(|e| panic!("java is required (apt-get install default-jdk-headless): {e}"));
    (out.status.code().unwrap_or(-1), text(&out))
}

fn options(extra: &[(&str, &str)]) -> Options {
    let mut ca_extra = Vec::new();
    for ca in [NONE_CA, OWN_CA, PAIR_CA] {
        for line in [
            "crl_schedule = \"0 0 0 1 1 *\"",
            "delta_schedule = \"0 0 0 1 1 *\"",
            "publish_delta_on_revoke = true",
            "delta_debounce = \"0s\"",
        ] {
            ca_extra.push((ca.to_owned(), line.to_owned()));
        }
    }
    for (ca, line) in extra {
        ca_extra.push(((*ca).to_owned(), (*line).to_owned()));
    }
    Options {
        ca_extra,
        no_seed: true,
        ..Options::ingest()
    }
}

fn register(api: &Api, certs: &[&X509]) {
    let body: String = certs.iter().map(|c| pem(c)).collect();
    let a = api.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(body.as_bytes()),
    );
    assert_eq!(a.status, 200, "{}", a.text());
}

fn revoke(api: &Api, ca: &str, serial: &str) {
    let a = api.revoke(&json!({"ca": ca, "serial": serial, "reason": "keyCompromise"}));
    assert_eq!(a.status, 200, "{}", a.text());
}

fn vigie_crl_build(config: &Path, ca: &str) {
    let out = common::vigie()
        .args(["crl", "build", "--config"])
        .arg(config)
        .args(["--ca", ca])
        .output()
        .expect("vigie runs");
    assert!(out.status.success(), "vigie crl build: {}", text(&out));
}

#[test]
fn every_relying_party_finds_every_registered_certificate_in_scope() {
    let sets = [
        CertSet::new(NONE_CA, vec![], None),
        CertSet::new(OWN_CA, vec![vec![own_dp()]], Some(vec![own_dp()])),
        CertSet::new(
            PAIR_CA,
            vec![vec![HTTP_DP.to_owned()], vec![LDAP_DP.to_owned()]],
            Some({
                let mut v = vec![HTTP_DP.to_owned(), LDAP_DP.to_owned()];
                v.sort();
                v
            }),
        ),
    ];
    let mut s = Server::start_with(&options(&[]));
    wait_ready(&s);
    let api = Api::new(&s, Some(TOKEN));
    for set in &sets {
        let (_, before) = fetch(&s.url(&format!("/crl/{}.crl", set.ca)));
        assert_eq!(
            idp_of(&before),
            None,
            "{}: nothing known yet: no IDP",
            set.ca
        );
        register(&api, &[&set.good.1, &set.revoked.1, &set.late.1]);
    }
    // A registration that brings new names makes a new complete CRL (and a delta on it) at once.
    for set in &sets {
        let full = wait_for_crl(
            &s,
            &format!("/crl/{}.crl", set.ca),
            "the learned IDP",
            |d| idp_of(d) == set.idp,
        );
        let number = number_of(&full);
        let delta = wait_for_crl(
            &s,
            &format!("/crl/{}-delta.crl", set.ca),
            "its delta",
            |d| base_of(d) == Some(number),
        );
        assert_eq!(
            idp_of(&delta),
            set.idp,
            "{}: the delta has its base's scope",
            set.ca
        );
        revoke(&api, set.ca, &set.revoked.0);
    }

    // The learned scope is stored: an offline build after a stop uses it, and so does the server
    // started again.
    s.stop();
    for set in &sets {
        vigie_crl_build(&s.config, set.ca);
    }
    s.spawn();
    wait_ready(&s);
    let api = Api::new(&s, Some(TOKEN));
    let dir = tempfile::tempdir().expect("tempdir");
    for set in &sets {
        let (_, full) = fetch(&s.url(&format!("/crl/{}.crl", set.ca)));
        assert!(
            lists(&full, &set.revoked.0),
            "{}: the full CRL lists the revoked one",
            set.ca
        );
        assert_eq!(idp_of(&full), set.idp, "{}: scope after restart", set.ca);
        let full_number = number_of(&full);
        revoke(&api, set.ca, &set.late.0);
        let delta = wait_for_crl(
            &s,
            &format!("/crl/{}-delta.crl", set.ca),
            "a delta listing the late revocation",
            |d| lists(d, &set.late.0),
        );
        assert_eq!(
            base_of(&delta),
            Some(full_number),
            "{}: delta on the same base",
            set.ca
        );
        assert!(!lists(&full, &set.late.0));
        assert_eq!(idp_of(&delta), set.idp);

        let issuer = ca_cert(set.ca);
        let full_pem = write(dir.path(), &format!("{}-full.pem", set.ca), &pem_crl(&full));
        let delta_pem = write(
            dir.path(),
            &format!("{}-delta.pem", set.ca),
            &pem_crl(&delta),
        );
        let full_der = write(dir.path(), &format!("{}-full.der", set.ca), &full);
        let delta_der = write(dir.path(), &format!("{}-delta.der", set.ca), &delta);
        let leaf = |name: &str, c: &X509| {
            write(
                dir.path(),
                &format!("{}-{name}.pem", set.ca),
                &c.to_pem().expect("PEM"),
            )
        };
        let good = leaf("good", &set.good.1);
        let revoked = leaf("revoked", &set.revoked.1);
        let late = leaf("late", &set.late.1);
        let what = format!("{} ({:?})", set.ca, set.points);

        // openssl, complete CRL alone.
        let (ok, out) = openssl_verify(&good, &issuer, &[&full_pem], false);
        assert!(ok, "{what}: openssl on the good certificate: {out}");
        let (ok, out) = openssl_verify(&revoked, &issuer, &[&full_pem], false);
        assert!(!ok && out.contains("certificate revoked"), "{what}: {out}");
        let (ok, out) = openssl_verify(&late, &issuer, &[&full_pem], false);
        assert!(ok, "{what}: not on the complete CRL yet: {out}");
        // openssl, complete + delta.
        for (cert, revoked_expected) in [(&good, false), (&revoked, true), (&late, true)] {
            let (ok, out) = openssl_verify(cert, &issuer, &[&full_pem, &delta_pem], true);
            if revoked_expected {
                assert!(
                    !ok && out.contains("certificate revoked"),
                    "{what} -use_deltas: {out}"
                );
            } else {
                assert!(ok, "{what} -use_deltas: {out}");
            }
        }

        // Java's PKIX, CRLs only: the complete CRL, then complete + delta (Java sets delta
        // CRLs aside — critical DeltaCRLIndicator — and must still decide on the complete one).
        for crls in [vec![full_der.as_path()], vec![&full_der, &delta_der]] {
            let (code, out) = java_check(&good, &issuer, &crls);
            assert_eq!(
                code, 0,
                "{what}: Java on the good certificate with {crls:?}: {out}"
            );
            let (code, out) = java_check(&revoked, &issuer, &crls);
            assert_eq!(
                code, 2,
                "{what}: Java on the revoked certificate with {crls:?}: {out}"
            );
        }
    }
    let (_, metrics) = fetch(&s.admin_url("/metrics"));
    let metrics = String::from_utf8_lossy(&metrics);
    for set in &sets {
        let line = format!("vigie_crl_scope_mismatch_total{{ca=\"{}\"}} 0", set.ca);
        assert!(
            metrics.contains(&line),
            "a learned scope leaves nobody out: {metrics}"
        );
    }
}

#[test]
fn configured_urls_that_leave_a_certificate_out_are_counted_and_logged() {
    // aci-el-org names only vigie's URL, and a certificate without distribution point is
    // registered: outside the scope, for openssl and Java alike.
    let url = format!("{PKI_PUBLIC_URL}/crl/{NONE_CA}.crl");
    let line = format!("crl_urls = [\"{url}\"]");
    let mut s = Server::start_with(&Options {
        only: Some(vec![NONE_CA]),
        ..options(&[(NONE_CA, &line)])
    });
    wait_ready(&s);
    let api = Api::new(&s, Some(TOKEN));
    let serial = random_serial();
    let cert = issue_with_crldp(NONE_CA, &serial, None, &[]).0;
    let covered_serial = random_serial();
    let covered = issue_with_crldp(NONE_CA, &covered_serial, None, &[&[url.as_str()]]).0;
    register(&api, &[&cert, &covered]);
    let metric = |s: &Server| {
        let (_, m) = fetch(&s.admin_url("/metrics"));
        String::from_utf8_lossy(&m)
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "vigie_crl_scope_mismatch_total{{ca=\"{NONE_CA}\"}}"
                ))
            })
            .map(str::to_owned)
    };
    assert_eq!(
        metric(&s).as_deref(),
        Some(format!("vigie_crl_scope_mismatch_total{{ca=\"{NONE_CA}\"}} 1").as_str()),
        "one certificate left out"
    );
    let log = s.stderr();
    assert!(
        log.contains("outside the scope") && log.contains(&serial) && log.contains(NONE_CA),
        "the log names the CA and the certificate: {log}"
    );
    assert!(
        !log.contains(&covered_serial),
        "the covered one is not reported"
    );

    let (_, full) = fetch(&s.url(&format!("/crl/{NONE_CA}.crl")));
    assert_eq!(idp_of(&full), Some(vec![url.clone()]));
    let dir = tempfile::tempdir().expect("tempdir");
    let full_pem = write(dir.path(), "full.pem", &pem_crl(&full));
    let full_der = write(dir.path(), "full.der", &full);
    let leaf = write(dir.path(), "leaf.pem", &cert.to_pem().expect("PEM"));
    let issuer = ca_cert(NONE_CA);
    // The checkers really check the scope: this is what relying parties met before.
    let (ok, out) = openssl_verify(&leaf, &issuer, &[&full_pem], false);
    assert!(!ok, "openssl must refuse a CRL of another scope: {out}");
    let (code, out) = java_check(&leaf, &issuer, &[&full_der]);
    assert_eq!(code, 3, "Java cannot determine the status: {out}");
    let covered_leaf = write(dir.path(), "covered.pem", &covered.to_pem().expect("PEM"));
    let (ok, out) = openssl_verify(&covered_leaf, &issuer, &[&full_pem], false);
    assert!(ok, "{out}");

    // After a restart, the certificates already outside the scope are counted again, once.
    s.restart();
    wait_ready(&s);
    assert_eq!(
        metric(&s).as_deref(),
        Some(format!("vigie_crl_scope_mismatch_total{{ca=\"{NONE_CA}\"}} 1").as_str())
    );
}
