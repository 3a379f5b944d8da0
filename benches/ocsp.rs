//! Criterion benches of the OCSP hot path, each step alone and the whole cached answer:
//! request parsing, CertID → CA lookup, a cache hit through `Responder::answer`, nonce requests
//! (a fresh signature each), and response signing with the demo's signer key types (RSA-2048,
//! ECDSA P-256). CRL encoding and delta computation are benched in `benches/crl.rs`.
//!
//! Run: `cargo bench --bench ocsp` (a demo PKI with RSA-2048 CA keys is generated in a temporary
//! directory first, a few seconds). Figures and the machine they came from: BENCHMARKS.md.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use vigie::clock::SystemClock;
use vigie::config::Config;
use vigie::demo::{DemoSetup, prepare};
use vigie::model::Serial;
use vigie::ocsp::{Answer, Responder, request};
use vigie::pki::HashAlg;
use vigie::pki::demo::SampleStatus;
use vigie::signer::Signer;

struct Fixture {
    _dir: tempfile::TempDir,
    responder: Arc<Responder>,
    rt: tokio::runtime::Runtime,
    /// (CA id, serial) of a good sample per CA, in registry order.
    good: Vec<(String, Serial)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = DemoSetup {
        hsm: false,
        dir: dir.path().join("demo"),
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        ca_rsa_bits: 2048,
        ldap: None,
    };
    let prepared = prepare(&setup).expect("demo prepares");
    let config = Config::load(&prepared.config_path).expect("config loads");
    let store = Arc::new(vigie::service::open_store(&config).expect("store opens"));
    let registry = Arc::new(vigie::pki::CaRegistry::from_config(&config));
    let responder = Arc::new(Responder::new(
        Arc::clone(&registry),
        store,
        Arc::new(SystemClock),
        &config.ocsp,
    ));
    let good = registry
        .iter()
        .filter_map(|ca| {
            let c = prepared
                .pki
                .certs
                .iter()
                .find(|c| c.ca_id == ca.id.as_str() && c.status == SampleStatus::Good)?;
            Some((c.ca_id.clone(), Serial::from_hex(&c.serial_hex).ok()?))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Fixture {
        _dir: dir,
        responder,
        rt,
        good,
    }
}

fn request_for(f: &Fixture, ca: &str, serial: &Serial, nonce: Option<&[u8]>) -> Vec<u8> {
    let registry = f.responder.registry();
    let ca = registry.by_id(ca).expect("CA");
    let h = &ca.hashes[HashAlg::Sha1.index()];
    request::build(HashAlg::Sha1, &h.name, &h.key, &serial.der_content(), nonce).expect("builds")
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let (last_ca, last_serial) = f.good.last().expect("a good sample").clone();
    let plain = request_for(&f, &last_ca, &last_serial, None);
    let with_nonce = request_for(&f, &last_ca, &last_serial, Some(&[7u8; 32]));

    let mut g = c.benchmark_group("ocsp");
    g.bench_function("parse_request", |b| {
        b.iter(|| {
            request::parse(black_box(&plain))
                .expect("parses")
                .queries
                .len()
        })
    });
    g.bench_function("parse_request_nonce", |b| {
        b.iter(|| {
            request::parse(black_box(&with_nonce))
                .expect("parses")
                .queries
                .len()
        })
    });
    g.bench_function("decode_get_path", |b| {
        let path = request::to_get_path(&plain);
        b.iter(|| {
            request::decode_get_path(black_box(&path))
                .expect("decodes")
                .len()
        })
    });
    // The last CA of the registry: the lookup's longest walk.
    let registry = f.responder.registry();
    let ca = registry.by_id(&last_ca).expect("CA");
    let h = ca.hashes[HashAlg::Sha1.index()].clone();
    g.bench_function("certid_to_ca", |b| {
        b.iter(|| {
            registry
                .find(HashAlg::Sha1, black_box(&h.name), black_box(&h.key))
                .map(|c| c.index)
        })
    });
    // Fill the cache, then time hits.
    let first = f.rt.block_on(f.responder.answer(&plain, "POST"));
    assert!(matches!(first, Answer::Cached(_)), "a cacheable answer");
    g.bench_function("answer_cache_hit", |b| {
        b.iter(|| {
            let a = f.rt.block_on(f.responder.answer(black_box(&plain), "POST"));
            a.der().len()
        })
    });
    // Nonce: a response signed for this request, per signer key type.
    for (ca_id, serial) in &f.good {
        let registry = f.responder.registry();
        let ca = registry.by_id(ca_id).expect("CA");
        let req = request_for(&f, ca_id, serial, Some(&[9u8; 32]));
        let name = format!("answer_nonce_{}_{}", ca_id, ca.ocsp.signer.kind())
            .replace([' ', '-'], "_")
            .to_lowercase();
        g.bench_function(name, |b| {
            b.iter(|| {
                let a = f.rt.block_on(f.responder.answer(black_box(&req), "POST"));
                a.der().len()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sign");
    // About the size of a one-certificate ResponseData.
    let tbs = vec![0x5au8; 260];
    let rsa = Signer::new(PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey"))
        .expect("signer");
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let ec = Signer::new(PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey"))
        .expect("signer");
    g.bench_function("rsa2048", |b| {
        b.iter(|| rsa.sign(black_box(&tbs)).expect("signs").len())
    });
    g.bench_function("ecdsa_p256", |b| {
        b.iter(|| ec.sign(black_box(&tbs)).expect("signs").len())
    });
    // A reference, not a vigie code path: the same signature without OpenSSL 3's per-call
    // EVP_DigestSignInit (digest computed apart, key used directly) — about what
    // `openssl speed ecdsap256` measures, the ceiling of a signer that keeps its contexts.
    let ec_key = EcKey::generate(&group).expect("ec");
    g.bench_function("reference_ecdsa_p256_do_sign", |b| {
        b.iter(|| {
            let digest = openssl::sha::sha256(black_box(&tbs));
            openssl::ecdsa::EcdsaSig::sign(&digest, &ec_key)
                .expect("signs")
                .to_der()
                .expect("der")
                .len()
        })
    });
    g.finish();
}

criterion_group! {
    name = ocsp;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(ocsp);
