//! Crash safety of the ingest API: concurrent clients revoke (single events and small batches)
//! while the server is killed with SIGKILL at a random moment, several times; after each restart
//! on the same data directory, every acknowledged event is there.
//!
//! The seed of the random moments is printed; set `VIGIE_CRASH_SEED` to replay a run.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::api::*;
use common::*;
use serde_json::{Value, json};

/// xorshift64*: enough randomness for timings and choices, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const REASONS: [&str; 6] = [
    "keyCompromise",
    "superseded",
    "cessationOfOperation",
    "affiliationChanged",
    "certificateHold",
    "unspecified",
];
const CAS: [&str; 2] = ["aci-el-org", "aci-el-pp"];

/// An acknowledged revocation: (ca, serial, reason).
type Acked = (String, String, String);

fn client(base: String, seed: u64, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<Acked>>>) {
    let mut rng = Rng(seed | 1);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    while !stop.load(Ordering::Relaxed) {
        let n = if rng.below(3) == 0 {
            1 + rng.below(8) as usize
        } else {
            1
        };
        let items: Vec<Acked> = (0..n)
            .map(|_| {
                (
                    CAS[rng.below(2) as usize].to_owned(),
                    random_serial(),
                    REASONS[rng.below(REASONS.len() as u64) as usize].to_owned(),
                )
            })
            .collect();
        let json_items: Vec<Value> = items
            .iter()
            .map(|(ca, serial, reason)| json!({"ca": ca, "serial": serial, "reason": reason}))
            .collect();
        let body = if n == 1 {
            json_items[0].clone()
        } else {
            Value::Array(json_items)
        };
        match agent
            .post(&format!("{base}/v1/revocations"))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(r) if r.status() == 200 => {
                // Acknowledged only once the whole answer has arrived.
                if r.into_string().is_ok() {
                    acked.lock().expect("lock").extend(items);
                }
            }
            Ok(r) => panic!("unexpected answer {}", r.status()),
            Err(ureq::Error::Status(code, r)) => {
                panic!("HTTP {code}: {}", r.into_string().unwrap_or_default())
            }
            // The server is gone (killed): stop.
            Err(_) => return,
        }
    }
}

#[test]
fn every_acknowledged_revocation_survives_sigkill() {
    let seed = std::env::var("VIGIE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("VIGIE_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    // Deltas every second, so that CRLs are built all through the run and after each restart.
    let mut opts = Options::ingest();
    for ca in CAS {
        opts.ca_extra
            .push((ca.to_string(), "delta_schedule = \"* * * * * *\"".into()));
    }
    let mut s = Server::start_with(&opts);
    let mut all: Vec<Acked> = Vec::new();
    const ROUNDS: usize = 4;
    const CLIENTS: usize = 8;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (base, stop, acked, seed) =
                    (s.admin.clone(), stop.clone(), acked.clone(), rng.next());
                std::thread::spawn(move || client(base, seed, stop, acked))
            })
            .collect();
        let delay = 200 + rng.below(600);
        std::thread::sleep(Duration::from_millis(delay));
        let numbers_before: Vec<u64> = CAS.iter().map(|ca| highest_crl_number(&s, ca)).collect();
        s.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        println!(
            "round {round}: killed after {delay} ms, {} revocations acknowledged",
            acked.len()
        );
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        let round_acked = acked.len();
        all.extend(acked);

        s.spawn();
        let api = Api::new(&s, Some(TOKEN));
        // Every acknowledgement is checked once, right after the restart that follows it; later
        // rounds check a sample of the earlier ones again (the last round checks them all).
        let fresh = all.len() - round_acked;
        let mut to_check: Vec<&Acked> = all[fresh..].iter().collect();
        let earlier = &all[..fresh];
        if round + 1 == ROUNDS {
            to_check.extend(earlier.iter());
        } else {
            to_check.extend(earlier.iter().step_by((earlier.len() / 500).max(1)));
        }
        std::thread::scope(|scope| {
            for part in to_check.chunks(to_check.len().div_ceil(4).max(1)) {
                let api = Api::new(&s, Some(TOKEN));
                scope.spawn(move || {
                    for (ca, serial, reason) in part {
                        let r = api.record(ca, serial);
                        assert_eq!(
                            r.status,
                            200,
                            "round {round}: acknowledged {ca}/{serial} lost: {}",
                            r.text()
                        );
                        let rec = r.json();
                        assert_eq!(rec["status"], "revoked", "{ca}/{serial}: {rec}");
                        assert_eq!(
                            rec["revocation"]["reason"],
                            reason.as_str(),
                            "{ca}/{serial}"
                        );
                    }
                });
            }
        });
        // Event logs have no holes: each CA's last sequence number counts at least its
        // acknowledged revocations (plus the seeded samples).
        let cas = api.get("/v1/cas").json();
        for ca in CAS {
            let acked_here = all.iter().filter(|(c, _, _)| c == ca).count() as u64;
            let last = cas["cas"]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["id"] == ca))
                .and_then(|c| c["last_event_seq"].as_u64())
                .expect("CA listed");
            assert!(
                last >= acked_here,
                "{ca}: last_event_seq {last} < {acked_here}"
            );
        }
        // CRL numbers are never reused (RFC 5280 §5.2.3): the first CRL built after the restart
        // has a higher number than any published before the kill, and the CRLs list every
        // acknowledged revocation.
        for (ca, before) in CAS.iter().zip(&numbers_before) {
            // What is published right after the restart was built before the kill (a CRL built
            // between the sampling of `before` and the kill may be newer): never older than
            // `before`, and not necessarily listing the last acknowledgements. The next CRL,
            // built after the restart, must list them all.
            let at_restart = highest_crl_number(&s, ca);
            assert!(
                at_restart >= *before,
                "{ca}: CRL number went back from {before} to {at_restart}"
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while highest_crl_number(&s, ca) <= at_restart {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{ca}: no CRL numbered above {at_restart} after the restart"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            let mut listed = listed_serials(&fetch_crl(&s, &format!("/crl/{ca}.crl")));
            listed.extend(listed_serials(&fetch_crl(
                &s,
                &format!("/crl/{ca}-delta.crl"),
            )));
            for (_, serial, _) in all.iter().filter(|(c, _, _)| c == ca) {
                assert!(
                    listed.contains(&serial_key(serial)),
                    "{ca}/{serial} on no CRL"
                );
            }
        }
    }
}

fn fetch_crl(s: &Server, path: &str) -> openssl::x509::X509Crl {
    let mut body = Vec::new();
    let resp = ureq::get(&s.url(path)).call().expect("CRL served");
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    openssl::x509::X509Crl::from_der(&body).expect("DER CRL")
}

/// The higher of the current full and delta CRL numbers of a CA.
fn highest_crl_number(s: &Server, ca: &str) -> u64 {
    number(&fetch_crl(s, &format!("/crl/{ca}.crl")))
        .max(number(&fetch_crl(s, &format!("/crl/{ca}-delta.crl"))))
}
