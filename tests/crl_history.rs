//! The CRL history through the real server: CRLs older than `[crl] keep_history` are pruned
//! when a CRL is built (numbers are never given again), an expired history CRL is served with
//! `Cache-Control: no-cache`, a valid one cacheable until its nextUpdate, and many parallel
//! history reads are all answered (200, or 503 with `Retry-After` beyond the read limit).
//!
//! The history is made beforehand with the library's own publisher on a fixed clock set back
//! 500, 450 and 10 days (as a server running then would have built it), on the same store.

mod common;

use std::sync::Arc;

use common::*;
use vigie::clock::FixedClock;
use vigie::crl::{CrlKind, Publisher};

const CA: &str = "aci-el-org";
const DAY: i64 = 86400;

fn get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let cc = resp.header("Cache-Control").map(str::to_owned);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    (status, cc, body)
}

#[test]
fn old_crls_are_pruned_numbers_go_on_and_expired_history_is_not_cached() {
    // Schedules that never fire during the test: only start-up and deadlines build.
    let opts = Options {
        only: Some(vec![CA]),
        ca_extra: vec![
            (CA.into(), "crl_schedule = \"0 0 0 1 1 *\"".into()),
            (CA.into(), "delta_schedule = \"0 0 0 1 1 *\"".into()),
        ],
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("tmp");
    // The history: built with a retention longer than its age.
    let config_path = write_config(
        dir.path(),
        &Options {
            global_extra: "[crl]\nkeep_history = \"1000d\"\n".into(),
            ..opts.clone()
        },
    );
    seed(&config_path);
    let now = now();
    {
        let config = common::load_config(&config_path);
        let store = Arc::new(vigie::service::open_store(&config).expect("store"));
        let clock = Arc::new(FixedClock::new(now.minus(500 * DAY)));
        let publisher = Publisher::new(
            &config,
            &vigie::pki::CaRegistry::from_config(&config),
            store,
            clock.clone(),
        )
        .expect("publisher");
        for days_ago in [500, 450, 10] {
            clock.set(now.minus(days_ago * DAY));
            let built = publisher.publish(CA, CrlKind::Full).expect("built");
            assert_eq!(built.len(), 2, "a full CRL and a delta on it");
        }
    }
    // CRLs 1–2 (500 days ago), 3–4 (450 days ago), 5–6 (10 days ago, expired since).

    // The server keeps 400 days: at start-up it builds (the current CRL expired), then prunes.
    let config_path = write_config(
        dir.path(),
        &Options {
            global_extra: "[crl]\nkeep_history = \"400d\"\n".into(),
            ..opts.clone()
        },
    );
    let mut s = Server::start_on(dir, config_path);
    let (status, _, body) = get(&s.url(&format!("/crl/{CA}.crl")));
    assert_eq!(status, 200);
    assert_eq!(number_of(&body), 7, "the next number after 6");
    for pruned in 1..=4 {
        let (status, _, body) = get(&s.url(&format!("/crl/{CA}/{pruned}.crl")));
        assert_eq!(
            status,
            404,
            "CRL {pruned}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Expired history: served as evidence, never as fresh.
    for kept in [5u64, 6] {
        let (status, cc, body) = get(&s.url(&format!("/crl/{CA}/{kept}.crl")));
        assert_eq!(status, 200);
        assert_eq!(cc.as_deref(), Some("no-cache"), "CRL {kept}");
        assert_eq!(number_of(&body), kept);
        let crl = openssl::x509::X509Crl::from_der(&body).expect("a CRL");
        let ca =
            openssl::x509::X509::from_pem(&std::fs::read(ca_cert(CA)).expect("ca")).expect("pem");
        assert!(
            crl.verify(&ca.public_key().expect("key"))
                .expect("verifies")
        );
        let (status, cc, _) = get(&s.url(&format!("/crl/{CA}/{kept}.pem")));
        assert_eq!((status, cc.as_deref()), (200, Some("no-cache")));
    }
    // The current CRL by number: cacheable, at most a day and never past its nextUpdate.
    let (status, cc, _) = get(&s.url(&format!("/crl/{CA}/7.crl")));
    assert_eq!(status, 200);
    let cc = cc.expect("Cache-Control");
    let max_age: i64 = cc
        .strip_prefix("max-age=")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cc}"));
    assert!(max_age > 0 && max_age <= DAY, "{cc}");

    // Many parallel reads of history CRLs (cache cold after a restart): every one answered,
    // beyond the read limit with 503 and Retry-After.
    s.restart();
    let url5 = s.url(&format!("/crl/{CA}/5.crl"));
    let url6 = s.url(&format!("/crl/{CA}/6.crl"));
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let url = if i % 2 == 0 {
                    url5.clone()
                } else {
                    url6.clone()
                };
                scope.spawn(move || {
                    let resp = match ureq::get(&url).call() {
                        Ok(r) => r,
                        Err(ureq::Error::Status(_, r)) => r,
                        Err(e) => panic!("{url}: {e}"),
                    };
                    (resp.status(), resp.header("Retry-After").map(str::to_owned))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for (status, retry) in &answers {
        assert!(
            *status == 200 || (*status == 503 && retry.as_deref() == Some("1")),
            "{answers:?}"
        );
    }
    assert!(answers.iter().any(|(s, _)| *s == 200), "{answers:?}");

    // Numbers never go back: a restart with the current CRL fresh builds nothing, pruned
    // numbers stay gone, and the next CRL built is 9 (after the delta 8).
    let (_, _, body) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
    assert_eq!(number_of(&body), 8);
    assert_eq!(get(&s.url(&format!("/crl/{CA}/3.crl"))).0, 404);
    s.stop();
    let config = common::load_config(&s.config);
    let store = Arc::new(vigie::service::open_store(&config).expect("store"));
    let publisher = Publisher::new(
        &config,
        &vigie::pki::CaRegistry::from_config(&config),
        store,
        Arc::new(vigie::clock::SystemClock),
    )
    .expect("publisher");
    let built = publisher.publish(CA, CrlKind::Full).expect("built");
    assert_eq!(built[0].record.number, 9);
}
