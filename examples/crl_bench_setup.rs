//! Prepares the CRL comparison of `benches/crl_vs_openssl.sh`: given a directory holding a CA
//! certificate and key (`ca.pem`, `ca.key`), registers N revoked certificates in a vigie store
//! (through the ingest rules, then compacted), and writes the same revocations as an OpenSSL CA
//! database (`index.txt`, `openssl.cnf`, `crlnumber`) so that `openssl ca -gencrl` builds the
//! same CRL.
//!
//! Usage: `crl_bench_setup DIR N`. Entries are deterministic (a fixed xorshift seed): 16-octet
//! positive serials; 40 % without reason, 15 % keyCompromise with an invalidity date, 15 %
//! superseded, 15 % cessationOfOperation, 10 % affiliationChanged, 5 % certificateHold.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use vigie::config::Config;
use vigie::ingest::{self, Change, RevocationRequest};
use vigie::model::{CaId, Issuance, RevocationReason, Serial, UnixTime};
use vigie::store::{Store, StoreOptions};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `YYMMDDHHMMSSZ` (OpenSSL's index.txt dates) or `YYYYMMDDHHMMSSZ`.
fn openssl_time(t: UnixTime, generalized: bool) -> String {
    let s = t.to_rfc3339(); // 2026-11-30T12:00:00Z
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if generalized {
        format!("{digits}Z")
    } else {
        format!("{}Z", &digits[2..])
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, n) = match args.as_slice() {
        [_, dir, n] => (Path::new(dir).to_path_buf(), n.parse::<usize>()?),
        _ => anyhow::bail!("usage: crl_bench_setup DIR ENTRIES"),
    };
    let dir = dir
        .canonicalize()
        .context("DIR must exist and hold ca.pem and ca.key")?;
    let url = "http://crl.bench.test";
    let config_path = dir.join("vigie.toml");
    std::fs::write(
        &config_path,
        format!(
            "# written by crl_bench_setup\n[public]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{url}\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"data\"\n\
             [[ca]]\nid = \"bench\"\ncert = \"ca.pem\"\nkey = \"ca.key\"\nocsp_cert = \"ca.pem\"\nocsp_key = \"ca.key\"\nocsp_signer = \"ca\"\n\
             crl_validity = \"7d\"\ndelta_schedule = \"\"\n"
        ),
    )?;
    let config = Config::load(&config_path)?;
    let ca = CaId::new("bench")?;
    let store = Store::open(
        &config.store.path,
        std::slice::from_ref(&ca),
        &StoreOptions {
            sync: false,
            ..StoreOptions::default()
        },
    )?;
    let now = UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64,
    );
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut index = std::io::BufWriter::new(std::fs::File::create(dir.join("index.txt"))?);
    let mut batch = Vec::with_capacity(10_000);
    let started = std::time::Instant::now();
    for i in 0..n {
        let mut serial = [0u8; 16];
        serial[..8].copy_from_slice(&rng.next().to_be_bytes());
        serial[8..].copy_from_slice(&rng.next().to_be_bytes());
        serial[0] = (serial[0] & 0x7f).max(1);
        let serial = Serial::from_magnitude(&serial)?;
        let r = rng.next();
        let revoked_at = now.minus(3600 + (r % (2 * 365 * 86400)) as i64);
        let not_after = now.plus(86400 * (30 + (r >> 20) as i64 % 1000));
        let (reason, invalidity) = match r >> 40 & 0xff {
            x if x < 102 => (None, None),
            x if x < 140 => (
                Some(RevocationReason::KeyCompromise),
                Some(revoked_at.minus(86400 * 3)),
            ),
            x if x < 178 => (Some(RevocationReason::Superseded), None),
            x if x < 216 => (Some(RevocationReason::CessationOfOperation), None),
            x if x < 242 => (Some(RevocationReason::AffiliationChanged), None),
            _ => (Some(RevocationReason::CertificateHold), None),
        };
        let revinfo = match (reason, invalidity) {
            (None, _) => openssl_time(revoked_at, false),
            // `openssl ca` spells "keyCompromise with an invalidity date" keyTime.
            (Some(_), Some(t)) => format!(
                "{},keyTime,{}",
                openssl_time(revoked_at, false),
                openssl_time(t, true)
            ),
            (Some(r), None) => format!("{},{}", openssl_time(revoked_at, false), r.name()),
        };
        writeln!(
            index,
            "R\t{}\t{}\t{}\tunknown\t/CN=bench {i}",
            openssl_time(not_after, false),
            revinfo,
            serial.to_hex().to_uppercase()
        )?;
        batch.push((
            serial,
            Issuance {
                not_before: not_after.minus(3 * 365 * 86400),
                not_after,
                subject: None,
                profile: None,
            },
            RevocationRequest {
                revoked_at: Some(revoked_at),
                reason,
                invalidity_date: invalidity,
            },
        ));
        if batch.len() == batch.capacity() || i + 1 == n {
            store.transact(
                std::slice::from_ref(&ca),
                now,
                |tx| -> Result<(), vigie::Error> {
                    for (serial, issuance, revocation) in batch.drain(..) {
                        ingest::apply(tx, &ca, &serial, &Change::Issue(issuance))?;
                        ingest::apply(tx, &ca, &serial, &Change::Revoke(revocation))?;
                    }
                    Ok(())
                },
            )?;
        }
    }
    index.flush()?;
    store.compact()?;
    eprintln!(
        "{n} revoked certificates registered and compacted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(dir.join("crlnumber"), "01\n")?;
    std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n")?;
    std::fs::write(
        dir.join("openssl.cnf"),
        format!(
            "# written by crl_bench_setup: the same CRL as vigie's, with `openssl ca -gencrl`\n\
             [ca]\ndefault_ca = bench\n\
             [bench]\ndir = {d}\ndatabase = $dir/index.txt\ncertificate = $dir/ca.pem\n\
             private_key = $dir/ca.key\ncrlnumber = $dir/crlnumber\nnew_certs_dir = $dir\n\
             serial = $dir/serial\ndefault_md = sha256\ndefault_crl_days = 7\n\
             crl_extensions = crl_ext\npolicy = policy_any\nunique_subject = no\n\
             [crl_ext]\nauthorityKeyIdentifier = keyid:always\n\
             issuingDistributionPoint = critical, @idp\n\
             [idp]\nfullname = URI:{url}/crl/bench.crl\n\
             [policy_any]\ncommonName = supplied\n",
            d = dir.display()
        ),
    )?;
    Ok(())
}
