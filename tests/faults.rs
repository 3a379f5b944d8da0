//! Faults, through the real `vigie serve` and a real RocksDB: a full disk (a small tmpfs the
//! test mounts as the store), a store turned read-only under the running server (an ext4 loop
//! device the kernel remounts read-only after an error), the clock set back an hour, one corrupt
//! stored OCSP answer, and a delta CRL whose base expired. These tests run as root (they mount
//! file systems); they fail, not skip, when mounting is impossible.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::api::{Api, issue};
use common::{Options, Server, TOKEN};
use der::Decode;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use serde_json::{Value, json};
use vigie::ingest::{self, Change};
use vigie::model::{CaId, Issuance, Serial};

const CA: &str = "aci-el-org";
const OTHER_CA: &str = "aci-el-pp";

/// A file system mounted by the test; unmounted (lazily, so even with the server still holding
/// files after a panic) when dropped.
struct Mount {
    at: PathBuf,
}

impl Mount {
    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("the command runs");
        assert!(
            out.status.success(),
            "{cmd:?} failed (these tests mount file systems: run them as root): {}",
            common::text(&out)
        );
    }

    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).expect("mount point");
        Mount::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(at),
        );
        Mount { at: at.to_owned() }
    }

    /// An ext4 file system in `image`, on a loop device, that the kernel turns read-only at its
    /// first error (`errors=remount-ro`).
    fn ext4(image: &Path, at: &Path) -> Mount {
        std::fs::create_dir_all(at).expect("mount point");
        if !image.exists() {
            Mount::run(Command::new("truncate").args(["-s", "192M"]).arg(image));
            Mount::run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image));
        }
        Mount::run(
            Command::new("mount")
                .args(["-o", "loop,errors=remount-ro"])
                .arg(image)
                .arg(at),
        );
        Mount { at: at.to_owned() }
    }

    /// The block device behind the mount (`loop3`).
    fn device(&self) -> String {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.at)
            .output()
            .expect("findmnt");
        let source = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        source.rsplit('/').next().unwrap_or_default().to_owned()
    }
}

impl Mount {
    /// Unmounts now (the file system must be idle).
    fn unmount(self) {
        Mount::run(Command::new("umount").arg(&self.at));
        std::mem::forget(self);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Registers `count` certificates of `ca` straight in the store (no signing: the test only
/// needs them registered), before the server holds the database. Serials: `prefix` ‖ index.
fn register_many(config: &Path, ca: &str, prefix: &str, count: usize) -> Vec<String> {
    let config = vigie::config::Config::load(config).expect("config loads");
    let store = vigie::service::open_store(&config).expect("store opens");
    let ca = CaId::new(ca).expect("CA id");
    let now = common::now();
    let serials: Vec<String> = (0..count).map(|i| format!("{prefix}{i:08x}")).collect();
    for chunk in serials.chunks(5000) {
        store
            .transact(
                std::slice::from_ref(&ca),
                now,
                |tx| -> Result<(), vigie::Error> {
                    for hex in chunk {
                        ingest::register(
                            tx,
                            &ingest::request::CertChange {
                                ca: ca.clone(),
                                serial: Serial::from_hex(hex).expect("hex"),
                                change: Change::Issue(Issuance {
                                    not_before: now.minus(86400),
                                    not_after: now.plus(365 * 86400),
                                    subject: None,
                                    profile: None,
                                }),
                                distribution_points: None,
                            },
                        )?;
                    }
                    Ok(())
                },
            )
            .expect("registered");
    }
    store.flush().expect("flushed");
    serials
}

fn revocations(serials: &[String]) -> Value {
    Value::Array(
        serials
            .iter()
            .map(|s| json!({"ca": CA, "serial": s, "reason": "keyCompromise"}))
            .collect(),
    )
}

/// Fills the file system holding `dir` until it refuses to write.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x5au8; 1 << 20];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // The last bytes the page cache held.
    let _ = f.sync_all();
    let small = [0u8; 4096];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

fn readyz(api: &Api) -> Value {
    let r = api.get("/readyz");
    assert!(r.status == 200 || r.status == 503, "{}", r.text());
    r.json()
}

/// GET of a public path: status and body.
fn get(url: &str) -> (u16, Vec<u8>) {
    match ureq::get(url).call() {
        Ok(r) => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut b).expect("body");
            (200, b)
        }
        Err(ureq::Error::Status(code, r)) => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut b).expect("body");
            (code, b)
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, s: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An OCSP answer for `cert`, verified with openssl against the demo PKI: status, and
/// thisUpdate in Unix seconds (read with x509-ocsp).
fn ocsp(s: &Server, cert: &X509, ca: &str) -> (OcspCertStatus, i64) {
    let issuer = common::api::ca_x509(ca);
    let id = || OcspCertId::from_cert(openssl::hash::MessageDigest::sha1(), cert, &issuer);
    let mut req = OcspRequest::new().expect("req");
    req.add_id(id().expect("id")).expect("add");
    let resp = ureq::post(&s.url("/ocsp"))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(&req.to_der().expect("der"))
        .expect("OCSP answer");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    let parsed = OcspResponse::from_der(&body).expect("OCSPResponse");
    let basic = parsed.basic().expect("a successful answer");
    let mut roots = X509StoreBuilder::new().expect("store");
    for root in
        X509::stack_from_pem(&std::fs::read(&common::pki().roots).expect("roots")).expect("pem")
    {
        roots.add_cert(root).expect("add");
    }
    for c in &common::pki().cas {
        roots
            .add_cert(X509::from_pem(&std::fs::read(&c.cert).expect("ca")).expect("pem"))
            .expect("add");
    }
    basic
        .verify(
            &Stack::new().expect("stack"),
            &roots.build(),
            OcspFlag::empty(),
        )
        .expect("the answer verifies");
    let status = basic
        .find_status(&id().expect("id"))
        .expect("our CertID")
        .status;
    let r = x509_ocsp::OcspResponse::from_der(&body).expect("x509-ocsp parses");
    let b = x509_ocsp::BasicOcspResponse::from_der(
        r.response_bytes.expect("bytes").response.as_bytes(),
    )
    .expect("basic");
    let this_update = b.tbs_response_data.responses[0]
        .this_update
        .0
        .to_unix_duration()
        .as_secs() as i64;
    (status, this_update)
}

/// (CRLNumber, base number, thisUpdate, nextUpdate) of a DER CRL, verified by openssl with the
/// CA's key.
fn crl_facts(der: &[u8], ca: &str) -> (u64, Option<u64>, i64, i64) {
    let crl = openssl::x509::X509Crl::from_der(der).expect("CRL");
    let key = common::api::ca_x509(ca).public_key().expect("key");
    assert!(crl.verify(&key).expect("verify"), "the CRL verifies");
    let parsed = x509_cert::crl::CertificateList::from_der(der).expect("parses");
    let tbs = &parsed.tbs_cert_list;
    (
        common::number_of(der),
        common::base_of(der),
        tbs.this_update.to_unix_duration().as_secs() as i64,
        tbs.next_update
            .expect("nextUpdate")
            .to_unix_duration()
            .as_secs() as i64,
    )
}

fn set_offset(file: &Path, secs: i64) {
    std::fs::write(file, secs.to_string()).expect("offset written");
    // The server re-reads it every 50 ms.
    std::thread::sleep(Duration::from_millis(150));
}

/// The sum of the series of a metric whose line starts with `name_and_labels`.
fn metric(api: &Api, name_and_labels: &str) -> f64 {
    api.get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with(name_and_labels))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

/// The disk fills up under a running server, then room comes back: ingest answers 503
/// `store-unavailable` and writes nothing of a refused batch; OCSP keeps answering, `/readyz`
/// says why; a delta CRL whose base expired meanwhile is not served; once there is room again,
/// ingest resumes and the watchdog rebuilds both CRLs, without a restart; every acknowledged
/// revocation is there, also after a crash.
#[test]
fn a_full_disk_refuses_ingest_keeps_serving_and_recovers_without_a_restart() {
    let opts = Options {
        only: Some(vec![CA, OTHER_CA]),
        ca_extra: vec![(
            CA.into(),
            "crl_validity = \"4h\"\ndelta_validity = \"2h\"\ndelta_schedule = \"0 0 0 1 1 *\"\n"
                .into(),
        )],
        // A short margin: the watchdog looks every 5 s.
        global_extra: "\n[crl]\nsafety_margin = \"20s\"\n".into(),
        ..Options::ingest()
    };
    let mut s = Server::configured(&opts);
    let data = s.dir.path().join("data");
    let offset = s.dir.path().join("clock-offset");
    std::fs::write(&offset, "0").expect("offset");
    // 160 MiB: RocksDB resumes after ENOSPC once a memtable's worth (64 MiB) is free.
    let mount = Mount::tmpfs(&data, "160m");
    common::seed(&s.config);
    let bulk = register_many(&s.config, CA, "5a00000000000000000000", 40_000);
    s.env = vec![
        ("VIGIE_STORE_WRITE_BUFFER_MB".into(), "4".into()),
        (
            vigie::clock::TEST_CLOCK_OFFSET_FILE.into(),
            offset.display().to_string(),
        ),
    ];
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));

    // Healthy: acknowledged revocations, a complete CRL and its delta.
    let mut acknowledged: Vec<String> = Vec::new();
    let r = api.revoke(&revocations(&bulk[..100]));
    assert_eq!(r.status, 200, "{}", r.text());
    acknowledged.extend_from_slice(&bulk[..100]);
    let ready = readyz(&api);
    assert_eq!(ready["store"]["writable"], true, "{ready}");
    let (code, full) = get(&s.url(&format!("/crl/{CA}.crl")));
    assert_eq!(code, 200);
    let (base1, _, _, base1_next) = crl_facts(&full, CA);
    // Late in the base's life (20 min before its nextUpdate, outside the 20 s margin), the
    // watchdog builds a new delta on it (the first expired): that delta outlives its base.
    let t0 = common::now().0;
    let late = base1_next - t0 - 20 * 60;
    set_offset(&offset, late);
    let delta = wait_for(40, "a delta on the old base", &s, || {
        let (code, der) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
        (code == 200 && crl_facts(&der, CA).3 > base1_next).then_some(der)
    });
    let (_, delta_base, _, _) = crl_facts(&delta, CA);
    assert_eq!(delta_base, Some(base1));
    let revoked_sample = common::sample(CA, |st| {
        matches!(st, vigie::pki::demo::SampleStatus::Revoked { .. })
    });
    let revoked_cert =
        X509::from_pem(&std::fs::read(&revoked_sample.path).expect("pem")).expect("cert");
    let good_cert =
        X509::from_pem(&std::fs::read(&common::good(CA).path).expect("pem")).expect("cert");
    // An acknowledged revocation of a certificate OCSP has answered for before.
    let ack_cert = issue(CA, &bulk[0], None);
    assert_eq!(ocsp(&s, &ack_cert, CA).0, OcspCertStatus::REVOKED);

    // The disk fills up.
    let filler = fill(&data);
    let mut refused: Option<(Vec<String>, common::api::Answer)> = None;
    for batch in bulk[100..].chunks(2000).take(19) {
        let r = api.revoke(&revocations(batch));
        match r.status {
            200 => acknowledged.extend_from_slice(batch),
            503 => {
                refused = Some((batch.to_vec(), r));
                break;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    let (refused, answer) = refused.expect("a full disk refuses writes");
    let problem = answer.problem(503);
    assert_eq!(problem["type"], "store-unavailable", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{problem}"
    );
    // Still refused, and nothing of the refused batch was written.
    let next = api.revoke(&revocations(&refused[..1]));
    assert_eq!(next.problem(503)["type"], "store-unavailable");
    for serial in refused.iter().step_by(97) {
        let r = api.record(CA, serial);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["status"],
            "good",
            "{serial}: half a refused batch written"
        );
    }
    // OCSP answers: from memory, and from what the store can still read.
    assert_eq!(ocsp(&s, &ack_cert, CA).0, OcspCertStatus::REVOKED);
    assert_eq!(ocsp(&s, &revoked_cert, CA).0, OcspCertStatus::REVOKED);
    assert_eq!(ocsp(&s, &good_cert, CA).0, OcspCertStatus::GOOD);
    let other =
        X509::from_pem(&std::fs::read(&common::good(OTHER_CA).path).expect("pem")).expect("cert");
    assert_eq!(ocsp(&s, &other, OTHER_CA).0, OcspCertStatus::GOOD);
    // /readyz says why, and stays ready for serving.
    let ready = readyz(&api);
    assert_eq!(ready["store"]["writable"], false, "{ready}");
    assert!(
        ready["store"]["problem"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{ready}"
    );
    assert!(ready["store"]["since"].is_string(), "{ready}");

    // The base passes its nextUpdate while nothing can be built: neither it nor its delta is
    // served (the delta is still within its own nextUpdate).
    set_offset(&offset, base1_next - t0 + 60);
    let (code, body) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
    assert_eq!(code, 503, "{}", String::from_utf8_lossy(&body));
    let problem: Value = serde_json::from_slice(&body).expect("problem JSON");
    assert_eq!(problem["type"], "unavailable", "{problem}");
    assert_eq!(get(&s.url(&format!("/crl/{CA}.crl"))).0, 503);

    // Room again: RocksDB resumes by itself, ingest works again without a restart.
    std::fs::remove_file(&filler).expect("filler removed");
    let started = Instant::now();
    let resumed = refused[..50].to_vec();
    wait_for(60, "ingest to resume", &s, || {
        let r = api.revoke(&revocations(&resumed));
        match r.status {
            200 => Some(()),
            503 => None,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    });
    acknowledged.extend_from_slice(&resumed);
    eprintln!(
        "ingest resumed {:?} after room came back",
        started.elapsed()
    );
    let ready = wait_for(10, "/readyz to see the store writable", &s, || {
        let r = readyz(&api);
        (r["store"]["writable"] == true).then_some(r)
    });
    assert_eq!(ready["store"]["problem"], Value::Null);
    // The watchdog rebuilds both: a new base, and a delta on it.
    let (full, delta) = wait_for(30, "the CRLs rebuilt", &s, || {
        let (c1, full) = get(&s.url(&format!("/crl/{CA}.crl")));
        let (c2, delta) = get(&s.url(&format!("/crl/{CA}-delta.crl")));
        (c1 == 200 && c2 == 200).then_some((full, delta))
    });
    let (base2, _, _, _) = crl_facts(&full, CA);
    let (delta2, on, _, _) = crl_facts(&delta, CA);
    assert!(base2 > base1 && delta2 > base2, "{base1} {base2} {delta2}");
    assert_eq!(on, Some(base2));
    // Every acknowledged revocation is on the new complete CRL.
    let listed = common::listed_serials(&openssl::x509::X509Crl::from_der(&full).expect("CRL"));
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|s| !listed.contains(&common::serial_key(s)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged revocations missing",
        missing.len()
    );

    // And after a crash (no flush), every acknowledged revocation is still recorded.
    s.kill();
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    for serial in acknowledged.iter().step_by(7) {
        let r = api.record(CA, serial);
        assert_eq!(r.json()["status"], "revoked", "{serial} lost");
    }
    s.kill();
    drop(mount);
}

/// The file system under the store turns read-only while the server runs (the kernel does so
/// after an I/O error: `errors=remount-ro`, forced here through ext4's `trigger_fs_error`):
/// ingest answers 503 and writes nothing; OCSP and CRLs keep being served; `/readyz` says why.
/// Once the file system is repaired and the server restarted, every acknowledged revocation
/// is there.
#[test]
fn a_store_turned_read_only_refuses_ingest_and_keeps_serving() {
    let opts = Options {
        only: Some(vec![CA]),
        ..Options::ingest()
    };
    let mut s = Server::configured(&opts);
    let data = s.dir.path().join("data");
    let image = s.dir.path().join("store.ext4");
    let mount = Mount::ext4(&image, &data);
    common::seed(&s.config);
    let bulk = register_many(&s.config, CA, "5b00000000000000000000", 200);
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    let r = api.revoke(&revocations(&bulk[..100]));
    assert_eq!(r.status, 200, "{}", r.text());
    let acknowledged = bulk[..100].to_vec();
    let good_cert =
        X509::from_pem(&std::fs::read(&common::good(CA).path).expect("pem")).expect("cert");
    let ack_cert = issue(CA, &bulk[0], None);
    assert_eq!(ocsp(&s, &ack_cert, CA).0, OcspCertStatus::REVOKED);

    // The kernel turns the file system read-only.
    let device = mount.device();
    std::fs::write(
        format!("/sys/fs/ext4/{device}/trigger_fs_error"),
        "vigie fault test",
    )
    .expect("ext4 error triggered");
    let r = api.revoke(&revocations(&bulk[100..150]));
    let problem = r.problem(503);
    assert_eq!(problem["type"], "store-unavailable", "{problem}");
    for serial in &bulk[100..150] {
        assert_eq!(api.record(CA, serial).json()["status"], "good");
    }
    // Serving goes on: OCSP (a fresh signature that cannot be stored is served anyway), CRLs.
    assert_eq!(ocsp(&s, &ack_cert, CA).0, OcspCertStatus::REVOKED);
    assert_eq!(ocsp(&s, &good_cert, CA).0, OcspCertStatus::GOOD);
    let fresh = issue(CA, &bulk[199], None);
    assert_eq!(ocsp(&s, &fresh, CA).0, OcspCertStatus::GOOD);
    assert_eq!(get(&s.url(&format!("/crl/{CA}.crl"))).0, 200);
    let ready = readyz(&api);
    assert_eq!(ready["store"]["writable"], false, "{ready}");
    assert!(
        ready["store"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("Read-only") || p.contains("IO error")),
        "{ready}"
    );
    assert_eq!(
        ready["ready"], true,
        "serving CAs keep the instance ready: {ready}"
    );

    // Repaired (unmounted, checked, mounted again) and restarted.
    s.kill();
    mount.unmount();
    let out = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(&image)
        .output()
        .expect("e2fsck");
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "{}",
        common::text(&out)
    );
    let mount = Mount::ext4(&image, &data);
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    for serial in &acknowledged {
        assert_eq!(
            api.record(CA, serial).json()["status"],
            "revoked",
            "{serial} lost"
        );
    }
    let r = api.revoke(&revocations(&bulk[100..150]));
    assert_eq!(r.status, 200, "{}", r.text());
    s.kill();
    drop(mount);
}

/// The wall clock moves back an hour under the running server: no thisUpdate in the future
/// (OCSP answers signed before are signed again), no CRL with a lower thisUpdate than the one
/// it replaces, no CRL number reused; once the clock has caught up, CRLs go on.
#[test]
fn the_clock_set_back_an_hour_never_publishes_from_the_future_nor_backwards() {
    let opts = Options {
        only: Some(vec![CA]),
        ca_extra: vec![(
            CA.into(),
            "delta_schedule = \"0 0 0 1 1 *\"\npublish_delta_on_revoke = true\ndelta_debounce = \"100ms\"\n"
                .into(),
        )],
        ..Options::ingest()
    };
    let mut s = Server::configured(&opts);
    let offset = s.dir.path().join("clock-offset");
    std::fs::write(&offset, "0").expect("offset");
    common::seed(&s.config);
    let bulk = register_many(&s.config, CA, "5c00000000000000000000", 10);
    s.env = vec![(
        vigie::clock::TEST_CLOCK_OFFSET_FILE.into(),
        offset.display().to_string(),
    )];
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    let good_cert =
        X509::from_pem(&std::fs::read(&common::good(CA).path).expect("pem")).expect("cert");
    let (status, before) = ocsp(&s, &good_cert, CA);
    assert_eq!(status, OcspCertStatus::GOOD);
    let delta_url = s.url(&format!("/crl/{CA}-delta.crl"));
    let first = crl_facts(&get(&delta_url).1, CA);

    // A revocation builds a delta (publish_delta_on_revoke).
    assert_eq!(api.revoke(&revocations(&bulk[..1])).status, 200);
    let second = wait_for(20, "a delta after the revocation", &s, || {
        let f = crl_facts(&get(&delta_url).1, CA);
        (f.0 > first.0).then_some(f)
    });

    // An hour back.
    set_offset(&offset, -3600);
    let now = common::now().0 - 3600;
    let (status, this_update) = ocsp(&s, &good_cert, CA);
    assert_eq!(status, OcspCertStatus::GOOD);
    assert!(
        this_update <= now + 1,
        "OCSP thisUpdate {this_update} is in the future of {now} (was {before})"
    );
    // A revocation now: its delta cannot be built without going backwards or into the future,
    // so the published delta stays (it is still valid by this clock); OCSP says revoked at once.
    assert_eq!(api.revoke(&revocations(&bulk[1..2])).status, 200);
    let revoked = issue(CA, &bulk[1], None);
    assert_eq!(ocsp(&s, &revoked, CA).0, OcspCertStatus::REVOKED);
    std::thread::sleep(Duration::from_secs(2));
    let (code, der) = get(&delta_url);
    assert_eq!(code, 200, "the published delta is still served");
    let during = crl_facts(&der, CA);
    // What was published before stays (its thisUpdate is ahead of this clock: it was made by
    // the clock as it was); nothing new is made, neither backwards nor from the future.
    assert_eq!(during, second, "no CRL built while the clock is behind");
    assert!(
        s.stderr().contains("clock") && s.stderr().contains("behind"),
        "the refusal is logged"
    );

    // The clock catches up: the next delta goes on from there, with a new number.
    set_offset(&offset, 0);
    assert_eq!(api.revoke(&revocations(&bulk[2..3])).status, 200);
    let after = wait_for(20, "a delta after the clock caught up", &s, || {
        let f = crl_facts(&get(&delta_url).1, CA);
        (f.0 > during.0).then_some(f)
    });
    assert!(after.2 >= during.2, "thisUpdate went backwards");
    let crl = openssl::x509::X509Crl::from_der(&get(&delta_url).1).expect("CRL");
    assert!(
        common::lists(&crl, &bulk[1]),
        "the revocation made while behind is published"
    );
    s.stop();
}

/// Stored OCSP answers that do not decode (a corrupt value, a key of another layout) are logged
/// and counted; the refresher re-signs every other answer, and so does pre-signing for a
/// pre-signed CA.
#[test]
fn the_refresher_and_presigning_go_on_past_corrupt_entries() {
    let opts = Options {
        only: Some(vec![CA, OTHER_CA]),
        // CA is the refresher's; OTHER_CA is pre-signed (the demo's default).
        ca_extra: vec![(CA.into(), "presign = false".into())],
        global_extra: "refresh_interval = \"1s\"\n".into(),
        ..Options::ingest()
    };
    let mut s = Server::configured(&opts);
    let offset = s.dir.path().join("clock-offset");
    std::fs::write(&offset, "0").expect("offset");
    common::seed(&s.config);
    s.env = vec![(
        vigie::clock::TEST_CLOCK_OFFSET_FILE.into(),
        offset.display().to_string(),
    )];
    // Stored answers for good certificates of both CAs, signed now.
    s.spawn();
    let certs: Vec<(X509, &str)> = [CA, OTHER_CA]
        .iter()
        .map(|ca| {
            let c =
                X509::from_pem(&std::fs::read(&common::good(ca).path).expect("pem")).expect("cert");
            (c, *ca)
        })
        .collect();
    for (c, ca) in &certs {
        assert_eq!(ocsp(&s, c, ca).0, OcspCertStatus::GOOD);
    }
    s.stop();
    // Corrupt entries in both CAs, sorted before their good ones.
    {
        let path = s.dir.path().join("data");
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, vigie::store::cf::ALL)
            .expect("store opens");
        let ocsp_cf = db.cf_handle(vigie::store::cf::OCSP).expect("ocsp CF");
        for ca in [CA, OTHER_CA] {
            let ca = CaId::new(ca).expect("id");
            let serial = Serial::from_hex("01").expect("serial");
            db.put_cf(
                ocsp_cf,
                vigie::store::keys::ocsp(&ca, &serial, 0),
                b"\xff\xfe not postcard",
            )
            .expect("put");
            let mut bad_key = vigie::store::keys::ca_prefix(&ca);
            bad_key.push(0);
            db.put_cf(ocsp_cf, bad_key, b"x").expect("put");
        }
        db.flush_wal(true).expect("sync");
    }
    // 13 h later, every stored answer (1 day validity) is past half-way (and past pre-signing's
    // 2/5): the refresher's and pre-signing's work.
    set_offset(&offset, 13 * 3600);
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    wait_for(30, "the refresher and pre-signing to re-sign", &s, || {
        (metric(&api, "vigie_ocsp_refreshed_total") >= 1.0
            && metric(
                &api,
                &format!("vigie_ocsp_presigned_total{{ca=\"{OTHER_CA}\""),
            ) >= 1.0)
            .then_some(())
    });
    let errors = |ca: &str, task: &str| {
        metric(
            &api,
            &format!("vigie_refresh_errors_total{{ca=\"{ca}\",task=\"{task}\"}}"),
        )
    };
    assert!(errors(CA, "ocsp") >= 1.0, "refresher errors counted");
    assert!(
        errors(OTHER_CA, "presign") >= 1.0,
        "pre-signing errors counted"
    );
    assert!(s.stderr().contains("going on with the others"));
    // The re-signed answers serve (thisUpdate after the jump).
    let now = common::now().0 + 13 * 3600;
    for (c, ca) in &certs {
        let (status, this_update) = ocsp(&s, c, ca);
        assert_eq!(status, OcspCertStatus::GOOD);
        assert!(
            this_update > now - 3600,
            "{ca}: not re-signed ({this_update})"
        );
    }
    s.stop();
}

/// One CA whose CRL cannot be built (a stored revocation time no ASN.1 time can hold) does not
/// hold up the others: the CRL watchdog logs and counts it (`vigie_refresh_errors_total{ca,
/// task="crl"}`) and builds the rest; that CA's OCSP answers go on.
#[test]
fn the_crl_watchdog_goes_on_past_a_ca_that_fails() {
    let opts = Options {
        only: Some(vec![CA, OTHER_CA]),
        ..Options::ingest()
    };
    let mut s = Server::configured(&opts);
    common::seed(&s.config);
    {
        let config = vigie::config::Config::load(&s.config).expect("config loads");
        let store = vigie::service::open_store(&config).expect("store opens");
        let ca = CaId::new(CA).expect("id");
        let serial = Serial::from_hex("7f000001").expect("hex");
        // Year 10000: beyond GeneralizedTime (RFC 5280 §4.1.2.5.2).
        let revocation = vigie::model::Revocation {
            revoked_at: vigie::model::UnixTime(253_402_300_800),
            reason: None,
            invalidity_date: None,
        };
        store
            .transact(
                std::slice::from_ref(&ca),
                common::now(),
                |tx| -> Result<(), vigie::Error> {
                    tx.put(
                        &ca,
                        &serial,
                        vigie::model::CertRecord {
                            issuance: None,
                            revocation: Some(revocation.clone()),
                            version: 0,
                        },
                        vigie::model::EventKind::Revoked(revocation.clone()),
                    )?;
                    Ok(())
                },
            )
            .expect("stored");
        store.flush().expect("flushed");
    }
    s.spawn();
    let api = Api::new(&s, Some(TOKEN));
    assert_eq!(get(&s.url(&format!("/crl/{OTHER_CA}.crl"))).0, 200);
    assert_eq!(get(&s.url(&format!("/crl/{CA}.crl"))).0, 503);
    wait_for(40, "the watchdog's error counted", &s, || {
        (metric(
            &api,
            &format!("vigie_refresh_errors_total{{ca=\"{CA}\",task=\"crl\"}}"),
        ) >= 1.0)
            .then_some(())
    });
    assert_eq!(
        metric(
            &api,
            &format!("vigie_refresh_errors_total{{ca=\"{OTHER_CA}\",task=\"crl\"}}"),
        ),
        0.0
    );
    assert!(s.stderr().contains("going on with the others"));
    let ready = readyz(&api);
    let entry = |id: &str| {
        ready["cas"]
            .as_array()
            .and_then(|cas| cas.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(entry(CA)["ready"], false, "{ready}");
    assert_eq!(entry(OTHER_CA)["ready"], true, "{ready}");
    let good = X509::from_pem(&std::fs::read(&common::good(CA).path).expect("pem")).expect("cert");
    assert_eq!(ocsp(&s, &good, CA).0, OcspCertStatus::GOOD);
    s.stop();
}
