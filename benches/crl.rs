//! Building and signing complete CRLs from entries in memory (`vigie::crl::build`), with an
//! RSA-4096 key as IGC-Santé's CAs use: 10⁴, 10⁵ and 10⁶ entries, encoded in parallel on the
//! global rayon pool (one thread per CPU). Also, for 10⁵ entries, the same CRL through the
//! `x509-cert` types (`TbsCertList` with a `RevokedCert` per entry, encoded single-threaded):
//! the reason why entries are written by `build::encode_entry` instead.
//!
//! Reading the entries from the store, and the comparison with `openssl ca -gencrl`, are
//! measured by `benches/crl_vs_openssl.sh`.
//!
//!     cargo bench --bench crl

use criterion::{BenchmarkId, Criterion, Throughput};
use der::Encode;
use vigie::crl::CrlNumber;
use vigie::crl::build::{self, CrlEntry, CrlTemplate, EntryReason, Scope};
use vigie::model::{RevocationReason, UnixTime};
use vigie::signer::Signer;

const NOW: UnixTime = UnixTime(1_767_225_600);

fn entries(n: usize) -> Vec<CrlEntry> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v: Vec<CrlEntry> = (0..n)
        .map(|_| {
            let mut serial = [0u8; 16];
            serial[..8].copy_from_slice(&next().to_be_bytes());
            serial[8..].copy_from_slice(&next().to_be_bytes());
            serial[0] = (serial[0] & 0x7f).max(1);
            let r = next();
            let revoked_at = NOW.minus((r % (2 * 365 * 86400)) as i64);
            let (reason, invalidity_date) = match r >> 40 & 0xff {
                x if x < 102 => (None, None),
                x if x < 140 => (
                    Some(RevocationReason::KeyCompromise),
                    Some(revoked_at.minus(3 * 86400)),
                ),
                x if x < 178 => (Some(RevocationReason::Superseded), None),
                x if x < 216 => (Some(RevocationReason::CessationOfOperation), None),
                x if x < 242 => (Some(RevocationReason::AffiliationChanged), None),
                _ => (Some(RevocationReason::CertificateHold), None),
            };
            CrlEntry {
                serial: serial.to_vec(),
                revoked_at,
                reason: EntryReason::Revoked(reason),
                invalidity_date,
            }
        })
        .collect();
    v.sort_by(|a, b| a.serial.cmp(&b.serial));
    v
}

fn signer() -> Signer {
    let rsa = openssl::rsa::Rsa::generate(4096).expect("RSA-4096");
    Signer::new(openssl::pkey::PKey::from_rsa(rsa).expect("key")).expect("signer")
}

fn template(name: &[u8]) -> CrlTemplate<'_> {
    CrlTemplate::new(
        name,
        &[7; 20],
        NOW,
        NOW.plus(7 * 86400),
        Some(Box::leak(Box::new(
            std::iter::once(
                vigie::crl::scope::DpName::uri("http://crl.bench.test/crl/bench.crl").expect("URI"),
            )
            .collect(),
        ))),
        Scope::Full {
            number: CrlNumber::new(42),
            freshest_url: Some("http://crl.bench.test/crl/bench-delta.crl".into()),
            expired_certs_on_crl: None,
        },
    )
    .expect("valid template")
}

/// The same CRL through `x509-cert`'s types, unsigned: the TBS only.
fn x509_cert_tbs(name_der: &[u8], entries: &[CrlEntry]) -> Vec<u8> {
    use der::Decode;
    use der::asn1::{OctetString, UtcTime};
    use x509_cert::crl::{RevokedCert, TbsCertList};
    use x509_cert::ext::Extension;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::Time;
    let time = |t: UnixTime| {
        Time::UtcTime(
            UtcTime::from_unix_duration(std::time::Duration::from_secs(t.0 as u64))
                .expect("UTCTime"),
        )
    };
    let revoked: Vec<RevokedCert> = entries
        .iter()
        .map(|e| {
            let mut exts = Vec::new();
            if let Some(code) = e.reason.code() {
                exts.push(Extension {
                    extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                    critical: false,
                    extn_value: OctetString::new(vec![0x0a, 0x01, code]).expect("octets"),
                });
            }
            RevokedCert {
                serial_number: SerialNumber::new(&e.serial).expect("serial"),
                revocation_date: time(e.revoked_at),
                crl_entry_extensions: (!exts.is_empty()).then_some(exts),
            }
        })
        .collect();
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: None,
        },
        issuer: x509_cert::name::Name::from_der(name_der).expect("name"),
        this_update: time(NOW),
        next_update: Some(time(NOW.plus(7 * 86400))),
        revoked_certificates: Some(revoked),
        crl_extensions: None,
    };
    tbs.to_der().expect("encodes")
}

fn bench(c: &mut Criterion) {
    let signer = signer();
    let name = x509_cert::name::Name::default().to_der().expect("name");
    let mut group = c.benchmark_group("crl_build_sign");
    group.sample_size(10);
    for n in [10_000usize, 100_000, 1_000_000] {
        let e = entries(n);
        let t = template(&name);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("vigie", n), &e, |b, e| {
            b.iter(|| build::build(&t, &signer, e).expect("builds"))
        });
        if n == 100_000 {
            group.bench_with_input(
                BenchmarkId::new("x509_cert_types_tbs_only", n),
                &e,
                |b, e| b.iter(|| x509_cert_tbs(&name, e)),
            );
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
