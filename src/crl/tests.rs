//! Unit tests of the publisher over a real (temporary) store, with a fixed clock and the
//! committed golden test PKI of `tests/data/golden-pki/`: golden CRLs, numbering across reopenings, deadlines,
//! retention, and the delta property *base ⊕ delta = current complete CRL*.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use der::Decode;
use proptest::prelude::*;
use x509_cert::crl::CertificateList;

use super::*;
use crate::clock::{Clock, FixedClock};
use crate::ingest::{self, Change, RevocationRequest};
use crate::model::{Issuance, RevocationReason, Serial};

/// 2026-01-01T00:00:00Z.
const T0: UnixTime = UnixTime(1_767_225_600);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-pki")
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: Config,
    store: Arc<Store>,
    clock: Arc<FixedClock>,
    publisher: Arc<Publisher>,
    ca: CaId,
}

/// The committed golden keys are checked out 0644 (git keeps no modes): `[security]` allows it.
fn config_text(dir: &Path, extra: &str) -> String {
    let data = data_dir();
    format!(
        "[public]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://crl.test\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [store]\npath = \"{}\"\nblock_cache_mb = 8\n\
         [crl]\nthreads = 2\n\
         [security]\nallow_loose_key_permissions = true\n\
         [[ca]]\nid = \"test\"\ncert = \"{c}\"\nkey = \"{k}\"\nocsp_cert = \"{oc}\"\nocsp_key = \"{ok}\"\n{extra}\n",
        dir.join("data").display(),
        c = data.join("ca.pem").display(),
        k = data.join("ca.key").display(),
        oc = data.join("ocsp.pem").display(),
        ok = data.join("ocsp.key").display(),
    )
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigie.toml");
        std::fs::write(&path, config_text(dir.path(), extra)).expect("config written");
        let config = Config::load(&path).expect("config loads");
        let store = Arc::new(crate::service::open_store(&config).expect("store opens"));
        let clock = Arc::new(FixedClock::new(T0));
        let publisher = Arc::new(
            Publisher::new(
                &config,
                &crate::pki::CaRegistry::from_config(&config),
                Arc::clone(&store),
                clock.clone() as SharedClock,
            )
            .expect("publisher"),
        );
        Fixture {
            _dir: dir,
            config,
            store,
            clock,
            publisher,
            ca: CaId::new("test").expect("valid"),
        }
    }

    /// Drops the publisher and the store and opens them again on the same directory.
    fn reopen(self) -> Fixture {
        let Fixture {
            _dir,
            config,
            store,
            clock,
            publisher,
            ca,
        } = self;
        drop(publisher);
        drop(store);
        let store = Arc::new(crate::service::open_store(&config).expect("store reopens"));
        let publisher = Arc::new(
            Publisher::new(
                &config,
                &crate::pki::CaRegistry::from_config(&config),
                Arc::clone(&store),
                clock.clone() as SharedClock,
            )
            .expect("publisher"),
        );
        Fixture {
            _dir,
            config,
            store,
            clock,
            publisher,
            ca,
        }
    }

    /// Reopens with another configuration on the same data directory.
    fn reconfigure(self, extra: &str) -> Fixture {
        let Fixture {
            _dir,
            store,
            clock,
            publisher,
            ca,
            ..
        } = self;
        drop(publisher);
        drop(store);
        let path = _dir.path().join("vigie.toml");
        std::fs::write(&path, config_text(_dir.path(), extra)).expect("config written");
        let config = Config::load(&path).expect("config loads");
        let store = Arc::new(crate::service::open_store(&config).expect("store reopens"));
        let publisher = Arc::new(
            Publisher::new(
                &config,
                &crate::pki::CaRegistry::from_config(&config),
                Arc::clone(&store),
                clock.clone() as SharedClock,
            )
            .expect("publisher"),
        );
        Fixture {
            _dir,
            config,
            store,
            clock,
            publisher,
            ca,
        }
    }

    fn apply(&self, serial: &Serial, change: Change) -> Result<(), crate::Error> {
        self.store
            .transact(std::slice::from_ref(&self.ca), self.clock.now(), |tx| {
                ingest::apply(tx, &self.ca, serial, &change)?;
                Ok::<_, crate::Error>(())
            })
    }

    fn issue(&self, serial: &Serial, not_after: UnixTime) {
        self.apply(
            serial,
            Change::Issue(Issuance {
                not_before: not_after.minus(3 * 365 * 86400),
                not_after,
                subject: None,
                profile: None,
            }),
        )
        .expect("issued");
    }

    fn revoke(
        &self,
        serial: &Serial,
        at: UnixTime,
        reason: Option<RevocationReason>,
        invalidity: Option<UnixTime>,
    ) {
        self.apply(
            serial,
            Change::Revoke(RevocationRequest {
                revoked_at: Some(at),
                reason,
                invalidity_date: invalidity,
            }),
        )
        .expect("revoked");
    }

    fn publish(&self, kind: CrlKind) -> Vec<Arc<PublishedCrl>> {
        self.publisher.publish("test", kind).expect("publishes")
    }

    fn ca_public_key(&self) -> openssl::pkey::PKey<openssl::pkey::Public> {
        crate::pki::CaRegistry::from_config(&self.config)
            .by_id("test")
            .expect("CA")
            .cert
            .public_key()
            .expect("public key")
    }
}

fn s(hex: &str) -> Serial {
    Serial::from_hex(hex).expect("valid serial")
}

/// (revocationDate, reasonCode, invalidityDate) of each entry, by serial magnitude, read with
/// `x509-cert` (a parser vigie did not write).
type Entries = BTreeMap<Vec<u8>, (i64, Option<u8>, Option<i64>)>;

fn entries_of(der: &[u8]) -> Entries {
    let crl = CertificateList::from_der(der).expect("x509-cert parses the CRL");
    let mut out = BTreeMap::new();
    for rc in crl.tbs_cert_list.revoked_certificates.unwrap_or_default() {
        let mut serial = rc.serial_number.as_bytes().to_vec();
        if serial.len() > 1 && serial[0] == 0 {
            serial.remove(0);
        }
        let mut reason = None;
        let mut invalidity = None;
        for e in rc.crl_entry_extensions.unwrap_or_default() {
            let v = e.extn_value.as_bytes();
            if e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS {
                reason = Some(v[2]);
            } else if e.extn_id == const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE {
                let t = der::asn1::GeneralizedTime::from_der(v).expect("GeneralizedTime");
                invalidity = Some(t.to_unix_duration().as_secs() as i64);
            }
        }
        let date = rc.revocation_date.to_unix_duration().as_secs() as i64;
        out.insert(serial, (date, reason, invalidity));
    }
    out
}

/// The project's one golden-file helper (and its one bless variable, `VIGIE_BLESS`), shared with
/// the integration tests.
#[path = "../../tests/common/golden.rs"]
mod golden_files;

fn golden(name: &str, der: &[u8]) {
    golden_files::check(name, der);
}

#[test]
fn golden_full_and_delta_crls() {
    // The URL earlier versions wrote by default: the same bytes as before the scope was learned.
    let f =
        Fixture::new("crl_keep_expired = \"30d\"\ncrl_url = \"http://crl.test/crl/test.crl\"\n");
    let later = T0.plus(365 * 86400);
    let kc = s("01");
    f.issue(&kc, later);
    f.revoke(
        &kc,
        T0.minus(7200),
        Some(RevocationReason::KeyCompromise),
        Some(T0.minus(10 * 86400)),
    );
    let top_bit = s("80");
    f.issue(&top_bit, later);
    f.revoke(
        &top_bit,
        T0.minus(3600),
        Some(RevocationReason::Superseded),
        None,
    );
    let held = s("1234");
    f.issue(&held, later);
    f.revoke(
        &held,
        T0.minus(600),
        Some(RevocationReason::CertificateHold),
        None,
    );
    let long = s(&"ab".repeat(20));
    f.revoke(&long, T0.minus(60), None, None); // issuance never registered
    let unspecified = s("0abc");
    f.issue(&unspecified, later);
    f.revoke(
        &unspecified,
        T0.minus(60),
        Some(RevocationReason::Unspecified),
        None,
    );
    let expired_long_ago = s("0dead0");
    f.issue(&expired_long_ago, T0.minus(60 * 86400));
    f.revoke(
        &expired_long_ago,
        T0.minus(90 * 86400),
        Some(RevocationReason::CessationOfOperation),
        None,
    );
    let expired_recently = s("0beef0");
    f.issue(&expired_recently, T0.minus(86400));
    f.revoke(
        &expired_recently,
        T0.minus(30 * 86400),
        Some(RevocationReason::AffiliationChanged),
        None,
    );

    let published = f.publish(CrlKind::Full);
    assert_eq!(published.len(), 2, "a complete CRL, then a delta on it");
    let full = &published[0];
    assert_eq!(full.record.number, 1);
    assert_eq!(published[1].record.base, Some(1));
    golden("crl/full.der", &full.der);
    let x = openssl::x509::X509Crl::from_der(&full.der).expect("openssl parses");
    assert!(x.verify(&f.ca_public_key()).expect("verifies"));

    let entries = entries_of(&full.der);
    let listed: Vec<&Vec<u8>> = entries.keys().collect();
    assert!(
        !entries.contains_key(expired_long_ago.magnitude()),
        "retention ended"
    );
    assert!(
        entries.contains_key(expired_recently.magnitude()),
        "within retention"
    );
    assert_eq!(entries[kc.magnitude()].1, Some(1));
    assert_eq!(
        entries[kc.magnitude()].2,
        Some(T0.minus(10 * 86400).0),
        "invalidity date"
    );
    assert_eq!(
        entries[unspecified.magnitude()].1,
        None,
        "unspecified is omitted"
    );
    assert_eq!(entries[long.magnitude()].1, None);
    assert_eq!(listed.len(), 6);
    // Serial order on the wire (numeric order): 01, 80, 0abc, 1234, 0beef0, ab…ab.
    let raw: Vec<Vec<u8>> = build::raw_entries(&full.der)
        .expect("reads")
        .iter()
        .map(|e| e.serial.to_vec())
        .collect();
    let mut sorted = raw.clone();
    sorted.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    assert_eq!(raw, sorted);

    // After the base: the hold is released, a new revocation, a reason upgraded.
    f.clock.advance(3600);
    f.apply(&held, Change::Release).expect("released");
    let new = s("05");
    f.issue(&new, later);
    f.revoke(
        &new,
        f.clock.now().minus(10),
        Some(RevocationReason::CessationOfOperation),
        None,
    );
    f.revoke(
        &top_bit,
        T0.minus(3600),
        Some(RevocationReason::KeyCompromise),
        None,
    );
    let delta = f.publish(CrlKind::Delta);
    assert_eq!(delta.len(), 1);
    let delta = &delta[0];
    assert_eq!((delta.record.number, delta.record.base), (3, Some(1)));
    golden("crl/delta.der", &delta.der);
    let d = entries_of(&delta.der);
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[held.magnitude()].1, Some(build::REMOVE_FROM_CRL));
    assert_eq!(
        d[held.magnitude()].0,
        T0.minus(600).0,
        "dated as on the base"
    );
    assert_eq!(d[new.magnitude()].1, Some(5));
    assert_eq!(d[top_bit.magnitude()].1, Some(1));
    let x = openssl::x509::X509Crl::from_der(&delta.der).expect("openssl parses");
    assert!(x.verify(&f.ca_public_key()).expect("verifies"));
}

#[test]
fn numbers_strictly_increase_across_reopening() {
    let f = Fixture::new("");
    let a = f.publish(CrlKind::Full);
    let b = f.publish(CrlKind::Delta);
    let numbers: Vec<u64> = a.iter().chain(&b).map(|p| p.record.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let f = f.reopen();
    let current = f.publisher.current("test").expect("CA");
    assert_eq!(current.full.as_ref().map(|p| p.record.number), Some(1));
    assert_eq!(current.delta.as_ref().map(|p| p.record.number), Some(3));
    assert_eq!(
        f.publisher.due("test", f.clock.now()).expect("CA"),
        Due::default()
    );
    let c = f.publish(CrlKind::Full);
    let numbers: Vec<u64> = c.iter().map(|p| p.record.number).collect();
    assert_eq!(numbers, vec![4, 5]);
    // The history stays retrievable.
    let old = f
        .publisher
        .by_number("test", 2)
        .expect("reads")
        .expect("kept");
    assert_eq!(old.der, a[1].der);
    assert_eq!(old.record.base, Some(1));
    assert!(f.publisher.by_number("test", 99).expect("reads").is_none());
}

#[test]
fn deadlines_make_crls_due_before_next_update() {
    let f = Fixture::new("crl_validity = \"7d\"\ndelta_validity = \"1d\"\n");
    let now = f.clock.now();
    assert_eq!(
        f.publisher.due("test", now).expect("CA"),
        Due {
            full: true,
            delta: true
        }
    );
    f.publish(CrlKind::Full);
    assert_eq!(f.publisher.due("test", now).expect("CA"), Due::default());
    let current = f.publisher.current("test").expect("CA");
    let delta_next = current.delta.as_ref().expect("delta").record.next_update;
    let full_next = current.full.as_ref().expect("full").record.next_update;
    // [crl] safety_margin defaults to 1h.
    assert_eq!(
        f.publisher.due("test", delta_next.minus(3601)).expect("CA"),
        Due::default()
    );
    assert_eq!(
        f.publisher.due("test", delta_next.minus(3599)).expect("CA"),
        Due {
            full: false,
            delta: true
        }
    );
    assert!(
        f.publisher
            .due("test", full_next.minus(3599))
            .expect("CA")
            .full
    );
    f.clock.set(delta_next.minus(3599));
    let built = f.publisher.catch_up("test").expect("builds");
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].kind(), CrlKind::Delta);
    f.clock.set(full_next.minus(60));
    let built = f.publisher.catch_up("test").expect("builds");
    let kinds: Vec<CrlKind> = built.iter().map(|p| p.kind()).collect();
    assert_eq!(kinds, vec![CrlKind::Full, CrlKind::Delta]);
    assert!(
        f.publisher
            .catch_up("test")
            .expect("nothing due")
            .is_empty()
    );
}

#[test]
fn a_new_scope_or_retention_needs_a_new_complete_crl_before_any_delta() {
    let f = Fixture::new("");
    f.publish(CrlKind::Full);
    let f = f.reconfigure("crl_keep_expired = \"forever\"\n");
    assert!(f.publisher.due("test", f.clock.now()).expect("CA").full);
    let p = f.publish(CrlKind::Delta);
    let kinds: Vec<CrlKind> = p.iter().map(|c| c.kind()).collect();
    assert_eq!(
        kinds,
        vec![CrlKind::Full, CrlKind::Delta],
        "no delta on the old base"
    );
    assert_eq!(p[1].record.base, Some(p[0].record.number));
    let f = f
        .reconfigure("crl_keep_expired = \"forever\"\ncrl_url = \"http://elsewhere.test/a.crl\"\n");
    assert!(f.publisher.due("test", f.clock.now()).expect("CA").full);
    let p = f.publish(CrlKind::Delta);
    assert_eq!(p.len(), 2);
    let t = CertificateList::from_der(&p[1].der).expect("parses");
    let idp = t
        .tbs_cert_list
        .crl_extensions
        .expect("extensions")
        .into_iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT)
        .expect("the delta names its base's scope");
    assert!(String::from_utf8_lossy(idp.extn_value.as_bytes()).contains("elsewhere.test"));
}

/// The IssuingDistributionPoint's fullName names of a DER CRL (`None`: no extension).
fn idp_names(der: &[u8]) -> Option<Vec<String>> {
    use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let crl = CertificateList::from_der(der).expect("parses");
    let e = crl
        .tbs_cert_list
        .crl_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT)?;
    assert!(e.critical, "IssuingDistributionPoint is critical");
    let idp = IssuingDistributionPoint::from_der(e.extn_value.as_bytes()).expect("IDP");
    match idp.distribution_point {
        Some(DistributionPointName::FullName(names)) => {
            let mut v: Vec<String> = names
                .into_iter()
                .map(|n| match n {
                    GeneralName::UniformResourceIdentifier(u) => u.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            v.sort();
            Some(v)
        }
        other => panic!("unexpected distributionPoint {other:?}"),
    }
}

fn dps(urls: &[&str]) -> scope::DpSet {
    urls.iter()
        .map(|u| scope::DpName::uri(u).expect("URI"))
        .collect()
}

impl Fixture {
    /// Registers `serial` as from its certificate, carrying `set`.
    fn register(&self, serial: &Serial, set: scope::DpSet) {
        let change = ingest::request::CertChange {
            ca: self.ca.clone(),
            serial: serial.clone(),
            change: Change::Issue(Issuance {
                not_before: T0.minus(86400),
                not_after: T0.plus(365 * 86400),
                subject: None,
                profile: None,
            }),
            distribution_points: Some(set),
        };
        ingest::commit(&self.store, self.clock.now(), &[change], None).expect("registered");
    }
}

#[test]
fn the_learned_scope_names_every_distribution_point_and_follows_registrations() {
    let f = Fixture::new("");
    let p = f.publish(CrlKind::Delta);
    assert_eq!(idp_names(&p[0].der), None, "nothing known: no IDP");
    assert!(!f.publisher.due("test", f.clock.now()).expect("CA").full);

    let http = "http://pki.test/CRL/ACI.crl";
    let ldap = "ldap://annuaire.test/cn=ACI?certificateRevocationList;binary";
    f.register(&s("10"), dps(&[http, ldap]));
    assert!(
        f.publisher.due("test", f.clock.now()).expect("CA").full,
        "a new distribution point makes a new complete CRL due"
    );
    let d = f.publish(CrlKind::Delta);
    assert_eq!(
        d.len(),
        2,
        "no delta across a change of scope: a complete CRL first"
    );
    let mut want = vec![http.to_owned(), ldap.to_owned()];
    want.sort();
    assert_eq!(idp_names(&d[0].der), Some(want.clone()));
    assert_eq!(
        idp_names(&d[1].der),
        Some(want.clone()),
        "the delta follows its base"
    );

    // Same set again, then another set: the union.
    f.register(&s("11"), dps(&[ldap, http]));
    assert!(!f.publisher.due("test", f.clock.now()).expect("CA").full);
    f.register(&s("12"), dps(&["http://other.test/b.crl"]));
    let p = f.publish(CrlKind::Delta);
    assert_eq!(idp_names(&p[0].der).map(|v| v.len()), Some(3));

    // A certificate without distribution point: no IDP at all, and that survives a reopening.
    f.register(&s("13"), scope::DpSet::new());
    let f = f.reopen();
    assert!(f.publisher.due("test", f.clock.now()).expect("CA").full);
    let p = f.publish(CrlKind::Delta);
    assert_eq!(idp_names(&p[0].der), None);
    assert_eq!(idp_names(&p[1].der), None);
    let learned = scope::load(&f.store, &f.ca).expect("stored");
    assert_eq!(learned.without, 1);
    assert_eq!(learned.sets.iter().map(|(_, n)| n).sum::<u64>(), 3);

    // A replayed registration counts nothing.
    f.register(&s("13"), scope::DpSet::new());
    assert_eq!(scope::load(&f.store, &f.ca).expect("stored").without, 1);
}

#[test]
fn crl_urls_override_and_records_of_the_first_format_still_read() {
    let f = Fixture::new("crl_urls = [\"http://a.test/x.crl\", \"ldap://b.test/cn=X\"]\n");
    f.register(&s("10"), dps(&["http://elsewhere.test/y.crl"]));
    let p = f.publish(CrlKind::Full);
    assert_eq!(
        idp_names(&p[0].der),
        Some(vec![
            "http://a.test/x.crl".to_owned(),
            "ldap://b.test/cn=X".to_owned()
        ])
    );

    #[derive(Serialize)]
    struct V1<'a> {
        kind: CrlKind,
        number: u64,
        base: Option<u64>,
        this_update: UnixTime,
        next_update: UnixTime,
        built_at: UnixTime,
        watermark: u64,
        entries: u64,
        bytes: u64,
        pieces: u32,
        idp_url: Option<&'a str>,
        freshest_url: Option<String>,
        horizon: UnixTime,
        expiring: Vec<(Vec<u8>, UnixTime)>,
        keep_expired: Option<i64>,
    }
    let old = postcard::to_stdvec(&V1 {
        kind: CrlKind::Full,
        number: 7,
        base: None,
        this_update: T0,
        next_update: T0.plus(10),
        built_at: T0,
        watermark: 3,
        entries: 1,
        bytes: 100,
        pieces: 1,
        idp_url: Some("http://crl.test/crl/test.crl"),
        freshest_url: None,
        horizon: T0.plus(20),
        expiring: vec![(vec![1], T0.plus(5))],
        keep_expired: Some(60),
    })
    .expect("encodes");
    let r = decode_record(&old).expect("a record of the first format decodes");
    assert_eq!(r.idp, Some(dps(&["http://crl.test/crl/test.crl"])));
    assert_eq!((r.number, r.watermark, r.keep_expired), (7, 3, Some(60)));
    let again = decode_record(&encode_record(&r).expect("encodes")).expect("decodes");
    assert_eq!(again, r);
    assert!(matches!(
        decode_record(&[RECORD_MARK, 9]),
        Err(Error::Corrupt(_))
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vigie.toml");
    let text = config_text(dir.path(), "crl_url = \"http://a\"\ncrl_urls = []\n");
    std::fs::write(&path, text).expect("written");
    let err = Config::load(&path)
        .expect_err("both keys refused")
        .to_string();
    assert!(err.contains("crl_urls"), "{err}");
}

#[test]
fn readiness_needs_a_valid_complete_crl() {
    let f = Fixture::new("delta_schedule = \"\"\n");
    assert!(f.publisher.readiness(f.clock.now())[0].1.is_some());
    let p = f.publish(CrlKind::Full);
    assert_eq!(p.len(), 1, "no delta for a CA without delta schedule");
    assert!(f.publisher.readiness(f.clock.now())[0].1.is_none());
    f.clock.set(p[0].record.next_update);
    assert!(f.publisher.readiness(f.clock.now())[0].1.is_some());
    assert!(matches!(
        f.publisher.publish("test", CrlKind::Delta),
        Err(Error::NoDeltas(_))
    ));
    let full = CertificateList::from_der(&p[0].der).expect("parses");
    let exts = full.tbs_cert_list.crl_extensions.expect("extensions");
    assert!(
        !exts
            .iter()
            .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_FRESHEST_CRL),
        "no FreshestCRL without deltas"
    );
}

#[test]
fn expired_certificates_kept_forever_are_announced() {
    let f = Fixture::new("crl_keep_expired = \"forever\"\ncrl_url = \"\"\n");
    let old = s("42");
    f.issue(&old, T0.minus(5 * 365 * 86400));
    f.revoke(
        &old,
        T0.minus(6 * 365 * 86400),
        Some(RevocationReason::Superseded),
        None,
    );
    let p = f.publish(CrlKind::Full);
    let full = CertificateList::from_der(&p[0].der).expect("parses");
    assert_eq!(
        full.tbs_cert_list.revoked_certificates.map(|r| r.len()),
        Some(1)
    );
    let exts = full.tbs_cert_list.crl_extensions.expect("extensions");
    assert!(
        exts.iter()
            .any(|e| e.extn_id == build::ID_CE_EXPIRED_CERTS_ON_CRL)
    );
    assert!(
        !exts
            .iter()
            .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT),
        "crl_url = \"\" writes no IssuingDistributionPoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_triggers_a_delta_after_the_debounce() {
    let f = Fixture::new(
        "crl_schedule = \"0 0 0 1 1 *\"\ndelta_schedule = \"0 0 0 1 1 *\"\n\
         publish_delta_on_revoke = true\ndelta_debounce = \"1s\"\n",
    );
    let schedule = schedule::Schedule::start(Arc::clone(&f.publisher))
        .await
        .expect("schedule starts");
    let wait_for = |what: &str, test: &dyn Fn(&Current) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let current = f.publisher.current("test").expect("CA");
            if test(&current) {
                return current;
            }
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The watchdog's first round publishes what is missing.
    let first = wait_for("the first CRLs", &|c| c.delta.is_some());
    let first_delta = first.delta.as_ref().map(|d| d.record.number).unwrap_or(0);
    let serial = s("0bad");
    f.issue(&serial, T0.plus(86400 * 100));
    f.revoke(
        &serial,
        T0.minus(10),
        Some(RevocationReason::KeyCompromise),
        None,
    );
    let after = wait_for("a delta after the revocation", &|c| {
        c.delta
            .as_ref()
            .is_some_and(|d| d.record.number > first_delta && d.record.entries == 1)
    });
    let delta = after.delta.expect("delta");
    assert_eq!(
        delta.record.base,
        first.full.as_ref().map(|f| f.record.number)
    );
    assert!(entries_of(&delta.der).contains_key(serial.magnitude()));
    schedule.stop().await;
}

// -------------------------------------------------------------------------------------------
// base ⊕ delta = current
// -------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Issue(u8, i64),
    Revoke(u8, Option<RevocationReason>, bool),
    Hold(u8),
    Release(u8),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let serial = 1u8..12;
    // notAfter relative to the start: long expired, expiring within hours, far ahead.
    let not_after = prop_oneof![Just(-3 * 3600i64), 600i64..4 * 3600, Just(400 * 86400)];
    let reason = proptest::option::of(proptest::sample::select(vec![
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::AffiliationChanged,
        RevocationReason::PrivilegeWithdrawn,
    ]));
    prop_oneof![
        (serial.clone(), not_after).prop_map(|(s, t)| Op::Issue(s, t)),
        (serial.clone(), reason, any::<bool>()).prop_map(|(s, r, i)| Op::Revoke(s, r, i)),
        serial.clone().prop_map(Op::Hold),
        serial.prop_map(Op::Release),
        (60i64..2 * 3600).prop_map(Op::Advance),
    ]
}

fn run(f: &Fixture, ops: &[Op]) {
    for op in ops {
        let now = f.clock.now();
        // Refused events (conflicts, releases of non-held serials) change nothing: that is
        // part of what the property covers.
        let _ = match op {
            Op::Issue(n, rel) => f.apply(
                &Serial::from_magnitude(&[*n]).expect("serial"),
                Change::Issue(Issuance {
                    not_before: T0.minus(86400 * 365),
                    not_after: T0.plus(*rel),
                    subject: None,
                    profile: None,
                }),
            ),
            Op::Revoke(n, reason, invalidity) => f.apply(
                &Serial::from_magnitude(&[*n]).expect("serial"),
                Change::Revoke(RevocationRequest {
                    revoked_at: Some(now.minus(30)),
                    reason: *reason,
                    invalidity_date: invalidity.then_some(now.minus(86400)),
                }),
            ),
            Op::Hold(n) => f.apply(
                &Serial::from_magnitude(&[*n]).expect("serial"),
                Change::Revoke(RevocationRequest {
                    revoked_at: Some(now.minus(30)),
                    reason: Some(RevocationReason::CertificateHold),
                    invalidity_date: None,
                }),
            ),
            Op::Release(n) => f.apply(
                &Serial::from_magnitude(&[*n]).expect("serial"),
                Change::Release,
            ),
            Op::Advance(secs) => {
                f.clock.advance(*secs);
                Ok(())
            }
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn base_plus_delta_is_the_current_complete_crl(
        before in proptest::collection::vec(op(), 0..30),
        after in proptest::collection::vec(op(), 0..30),
    ) {
        let f = Fixture::new("crl_keep_expired = \"1h\"\n");
        run(&f, &before);
        let base = f.publish(CrlKind::Full);
        let base_entries = entries_of(&base[0].der);
        run(&f, &after);
        let delta = f.publish(CrlKind::Delta);
        prop_assert_eq!(delta.len(), 1);
        prop_assert_eq!(delta[0].record.base, Some(base[0].record.number));
        let delta_entries = entries_of(&delta[0].der);
        let now_full = f.publish(CrlKind::Full);
        let expected = entries_of(&now_full[0].der);

        let mut merged = base_entries.clone();
        for (serial, entry) in &delta_entries {
            // Exactly what changed: nothing the base already says.
            prop_assert_ne!(base_entries.get(serial), Some(entry));
            if entry.1 == Some(build::REMOVE_FROM_CRL) {
                prop_assert!(base_entries.contains_key(serial), "removeFromCRL of a serial not on the base");
                merged.remove(serial);
            } else {
                merged.insert(serial.clone(), *entry);
            }
        }
        prop_assert_eq!(merged, expected);
    }
}

#[test]
fn a_clock_set_back_an_hour_never_publishes_from_the_future_backwards_or_on_a_reused_number() {
    let f = Fixture::new("");
    let first = f.publish(CrlKind::Full);
    assert_eq!(first.len(), 2, "a complete CRL and a delta");
    let last_this_update = first
        .iter()
        .map(|c| c.record.this_update)
        .max()
        .expect("two");
    let last_number = first.iter().map(|c| c.record.number).max().expect("two");
    // An hour back: further than the backdate, so nothing is built, of either kind.
    f.clock.set(T0.minus(3600));
    for kind in [CrlKind::Full, CrlKind::Delta] {
        match f.publisher.publish("test", kind) {
            Err(Error::ClockBehind { previous, .. }) => assert_eq!(previous, last_this_update),
            other => panic!("{kind:?}: {:?}", other.map(|built| built.len())),
        }
    }
    // The CRLs already published are still current.
    let current = f.publisher.current("test").expect("CA");
    assert_eq!(
        current.full.as_ref().map(|c| c.record.number),
        Some(first[0].record.number)
    );
    // Back within the backdate: the last thisUpdate is reused, never in the future.
    let now = last_this_update.plus(10);
    f.clock.set(now);
    let again = f.publish(CrlKind::Delta);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].record.this_update, last_this_update);
    assert!(again[0].record.this_update <= now);
    assert_eq!(
        again[0].record.number,
        last_number + 1,
        "no number reused or skipped back"
    );
    // Caught up: forward again.
    f.clock.set(T0.plus(3600));
    let later = f.publish(CrlKind::Full);
    assert!(
        later
            .iter()
            .all(|c| c.record.this_update > last_this_update)
    );
    assert!(later.iter().all(|c| c.record.number > last_number + 1));
}
