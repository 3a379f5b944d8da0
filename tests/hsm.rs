//! Keys in a PKCS#11 token (SoftHSM2), end to end: every test makes its own token (its own
//! `SOFTHSM2_CONF` and token directory under a temporary directory), generates the keys inside
//! it with `pkcs11-tool --keypairgen` (non-extractable), makes the certificates for them (the
//! issuing CA's by a test root with `openssl x509 -force_pubkey`, the OCSP signer's TBS signed by
//! the CA key *in the token* with `pkcs11-tool --sign`), and runs the real `vigie` binary with no
//! private key file at all. OCSP answers are checked with `openssl ocsp` (`-VAfile`, `-CAfile`),
//! CRLs with `openssl crl -verify`, nonce answers with the `openssl` crate.
//!
//! SoftHSM allows one `C_Initialize` per process, so the module is only ever loaded by the
//! server processes (and `vigie import`), never by this test process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use serde_json::json;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "8164-vigie-user";
const SO_PIN: &str = "5521-vigie-so";
const CA: &str = "hsm-ca";
const GOOD: &str = "1001";
const REVOKED: &str = "1002";
const UNKNOWN: &str = "1003";
const LATE: &str = "1004";

fn ok(what: &str, o: Output) -> Output {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A SoftHSM2 token of its own: configuration file and token directory under `dir`.
struct Token {
    dir: PathBuf,
    conf: PathBuf,
}

impl Token {
    fn new(dir: &Path) -> Token {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        let t = Token { dir: tokens, conf };
        t.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                "vigie",
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ],
        );
        t
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        common::without_vigie_variables(&mut c);
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let o = self
            .cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (softhsm2, opensc): {e}"));
        ok(program, o)
    }

    fn tool(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "--module",
            MODULE,
            "--token-label",
            "vigie",
            "--login",
            "--pin",
            PIN,
        ];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    /// Generates a key pair inside the token (sensitive, not extractable) and returns its public
    /// key as a PEM file.
    fn keygen(&self, label: &str, id: &str, key_type: &str, out: &Path) -> PathBuf {
        self.tool(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
            "--usage-sign",
            "--sensitive",
        ]);
        let der = out.join(format!("{label}.pub.der"));
        let pem = out.join(format!("{label}.pub.pem"));
        if key_type.starts_with("EC:") {
            // `pkcs11-tool --read-object --type pubkey` cannot make a P-384 EVP_PKEY (OpenSC
            // 0.23 with OpenSSL 3): the key is rebuilt from the CKA_EC_PARAMS and CKA_EC_POINT
            // that `--list-objects` shows.
            std::fs::write(&pem, self.ec_public_pem(id)).expect("pem");
            return pem;
        }
        self.tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            id,
            "-o",
            der.to_str().expect("utf-8 path"),
        ]);
        ok(
            "openssl pkey",
            common::openssl(&[
                "pkey",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                der.to_str().expect("utf-8"),
                "-out",
                pem.to_str().expect("utf-8"),
            ]),
        );
        pem
    }

    /// The public key `id` (an EC key) as PEM, from `pkcs11-tool --list-objects`.
    fn ec_public_pem(&self, id: &str) -> Vec<u8> {
        let listing = common::text(&self.tool(&["--list-objects", "--type", "pubkey"]));
        let mut point = None;
        let mut params = None;
        let mut found = None;
        for line in listing.lines() {
            let line = line.trim();
            if line.starts_with("Public Key Object") {
                point = None;
                params = None;
            } else if let Some(v) = line.strip_prefix("EC_POINT:") {
                point = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("EC_PARAMS:") {
                params = Some(v.trim().to_owned());
            } else if line.strip_prefix("ID:").is_some_and(|v| v.trim() == id) {
                found = point.clone().zip(params.clone());
            }
        }
        let (point, params) = found.unwrap_or_else(|| panic!("no EC public key {id}: {listing}"));
        let nid = match params.as_str() {
            "06082a8648ce3d030107" => openssl::nid::Nid::X9_62_PRIME256V1,
            "06052b81040022" => openssl::nid::Nid::SECP384R1,
            other => panic!("curve {other}"),
        };
        let point = hex::decode(point).expect("hex");
        // CKA_EC_POINT is a DER OCTET STRING around the point.
        let raw = &point[2..];
        let group = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
        let mut ctx = openssl::bn::BigNumContext::new().expect("ctx");
        let p = openssl::ec::EcPoint::from_bytes(&group, raw, &mut ctx).expect("point");
        let key = openssl::ec::EcKey::from_public_key(&group, &p).expect("key");
        openssl::pkey::PKey::from_ec_key(key)
            .expect("pkey")
            .public_key_to_pem()
            .expect("pem")
    }

    /// Signs `tbs` with the key `id`, inside the token: PKCS#1 v1.5 SHA-256 for RSA, or ECDSA over
    /// the digest (DER signature) for EC.
    fn sign(&self, id: &str, ec: Option<&str>, tbs: &[u8], work: &Path) -> Vec<u8> {
        let input = work.join("to-sign.bin");
        let output = work.join("signature.bin");
        match ec {
            None => {
                std::fs::write(&input, tbs).expect("tbs");
                self.tool(&[
                    "--sign",
                    "-m",
                    "SHA256-RSA-PKCS",
                    "--id",
                    id,
                    "-i",
                    input.to_str().expect("utf-8"),
                    "-o",
                    output.to_str().expect("utf-8"),
                ]);
            }
            Some(digest) => {
                let hash = match digest {
                    "sha384" => openssl::sha::sha384(tbs).to_vec(),
                    _ => openssl::sha::sha256(tbs).to_vec(),
                };
                std::fs::write(&input, hash).expect("hash");
                self.tool(&[
                    "--sign",
                    "-m",
                    "ECDSA",
                    "--signature-format",
                    "openssl",
                    "--id",
                    id,
                    "-i",
                    input.to_str().expect("utf-8"),
                    "-o",
                    output.to_str().expect("utf-8"),
                ]);
            }
        }
        std::fs::read(&output).expect("signature")
    }
}

/// Key types of a test PKI.
#[derive(Clone, Copy)]
struct Kinds {
    /// `pkcs11-tool --key-type` of the CA key.
    ca: &'static str,
    /// Of the OCSP signer key.
    ocsp: &'static str,
}

fn openssl_key_args(key_type: &str) -> Vec<&'static str> {
    match key_type {
        "EC:prime256v1" => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "EC:secp384r1" => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        _ => vec!["-newkey", "rsa:2048"],
    }
}

fn ec_digest(key_type: &str) -> Option<&'static str> {
    match key_type {
        "EC:prime256v1" => Some("sha256"),
        "EC:secp384r1" => Some("sha384"),
        _ => None,
    }
}

/// A test PKI whose issuing CA key and OCSP signer key are in `token`.
struct Pki {
    dir: PathBuf,
    root: PathBuf,
    ca: PathBuf,
    ocsp: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn make_pki(token: &Token, dir: &Path, kinds: Kinds) -> Pki {
    let p = |n: &str| dir.join(n);
    let o = |what: &str, args: &[&str]| ok(what, common::openssl(args));
    // A root with a key file: the test's trust anchor, never given to the server.
    o(
        "root",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            s(&p("root.key")),
            "-out",
            s(&p("root.pem")),
            "-subj",
            "/C=FR/O=VIGIE TEST/CN=TEST HSM ROOT",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let ca_pub = token.keygen("ca", "01", kinds.ca, dir);
    let ocsp_pub = token.keygen("ocsp", "02", kinds.ocsp, dir);
    std::fs::write(
        p("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("ext");
    std::fs::write(
        p("ocsp.ext"),
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n\
         subjectKeyIdentifier=hash\n",
    )
    .expect("ext");
    let ca_subject = "/C=FR/O=VIGIE TEST/CN=TEST HSM CA";
    // The issuing CA: its public key from the token, signed by the root.
    o(
        "ca csr",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            s(&p("throwaway.key")),
            "-subj",
            ca_subject,
            "-out",
            s(&p("ca.csr")),
        ],
    );
    o(
        "ca cert",
        &[
            "x509",
            "-req",
            "-in",
            s(&p("ca.csr")),
            "-force_pubkey",
            s(&ca_pub),
            "-CA",
            s(&p("root.pem")),
            "-CAkey",
            s(&p("root.key")),
            "-set_serial",
            "0x0a01",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            s(&p("ca.ext")),
            "-out",
            s(&p("ca.pem")),
        ],
    );
    // The OCSP signer: a TBSCertificate made by openssl with a stand-in issuer key of the CA's
    // type (same issuer name), then signed by the CA key inside the token.
    let mut standin = vec!["req", "-x509", "-nodes", "-keyout"];
    let standin_key = p("standin.key");
    let standin_cert = p("standin.pem");
    standin.push(s(&standin_key));
    standin.extend(openssl_key_args(kinds.ca));
    standin.extend(["-subj", ca_subject, "-days", "30", "-out", s(&standin_cert)]);
    o("stand-in CA", &standin);
    o(
        "ocsp csr",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            s(&p("throwaway2.key")),
            "-subj",
            "/C=FR/O=VIGIE TEST/CN=TEST HSM OCSP",
            "-out",
            s(&p("ocsp.csr")),
        ],
    );
    let digest = if kinds.ca == "EC:secp384r1" {
        "-sha384"
    } else {
        "-sha256"
    };
    o(
        "ocsp template",
        &[
            "x509",
            "-req",
            "-in",
            s(&p("ocsp.csr")),
            "-force_pubkey",
            s(&ocsp_pub),
            "-CA",
            s(&standin_cert),
            "-CAkey",
            s(&standin_key),
            "-set_serial",
            "0x0b01",
            "-days",
            "30",
            digest,
            "-extfile",
            s(&p("ocsp.ext")),
            "-outform",
            "DER",
            "-out",
            s(&p("ocsp.tmpl.der")),
        ],
    );
    let template =
        x509_cert::Certificate::from_der(&std::fs::read(p("ocsp.tmpl.der")).expect("template"))
            .expect("template parses");
    // openssl wrote the stand-in's key identifier as authorityKeyIdentifier: the CA's instead
    // (RFC 5280 §4.2.1.1).
    let ca_cert = x509_cert::Certificate::from_der(
        &openssl::x509::X509::from_pem(&std::fs::read(p("ca.pem")).expect("ca"))
            .expect("ca pem")
            .to_der()
            .expect("der"),
    )
    .expect("ca parses");
    let (_, ca_ski) = ca_cert
        .tbs_certificate
        .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
        .expect("extensions")
        .expect("the CA has a subjectKeyIdentifier");
    let mut tbs_certificate = template.tbs_certificate.clone();
    for ext in tbs_certificate.extensions.iter_mut().flatten() {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER {
            let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier {
                key_identifier: Some(ca_ski.0.clone()),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            };
            ext.extn_value =
                der::asn1::OctetString::new(aki.to_der().expect("aki")).expect("octets");
        }
    }
    let tbs = tbs_certificate.to_der().expect("tbs");
    let signature = token.sign("01", ec_digest(kinds.ca), &tbs, dir);
    let cert = x509_cert::Certificate {
        tbs_certificate,
        signature_algorithm: template.signature_algorithm.clone(),
        signature: der::asn1::BitString::from_bytes(&signature).expect("bits"),
    };
    std::fs::write(p("ocsp.der"), cert.to_der().expect("cert")).expect("ocsp.der");
    o(
        "ocsp pem",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            s(&p("ocsp.der")),
            "-out",
            s(&p("ocsp.pem")),
        ],
    );
    // The token signed it: the CA certificate verifies it (an implementation we did not write).
    let v = o(
        "verify ocsp cert",
        &[
            "verify",
            "-CAfile",
            s(&p("root.pem")),
            "-untrusted",
            s(&p("ca.pem")),
            s(&p("ocsp.pem")),
        ],
    );
    assert!(common::text(&v).contains("OK"));
    for f in ["throwaway.key", "throwaway2.key", "standin.key"] {
        std::fs::remove_file(p(f)).expect("stand-in keys removed");
    }
    Pki {
        dir: dir.to_path_buf(),
        root: p("root.pem"),
        ca: p("ca.pem"),
        ocsp: p("ocsp.pem"),
    }
}

/// The configuration: both keys named by URIs, no key file anywhere.
fn write_config(pki: &Pki, pin_file: bool, extra_ca: &str) -> PathBuf {
    let pin_line = if pin_file {
        std::fs::write(pki.dir.join("pin"), format!("{PIN}\n")).expect("pin file");
        "pin_file = \"pin\"\n"
    } else {
        ""
    };
    let text = format!(
        "[public]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n{}\
         [store]\npath = \"data\"\nblock_cache_mb = 16\n\
         [ocsp]\nsigning_queue = 64\nsign_rate_per_client = 1000000\nsign_burst_per_client = 1000000\n\
         [pkcs11]\nmodule = \"{MODULE}\"\n{pin_line}sessions = 4\n\
         [[ca]]\nid = \"{CA}\"\ncert = \"{}\"\nkey = \"pkcs11:token=vigie;object=ca;type=private\"\n\
         ocsp_cert = \"{}\"\nocsp_key = \"pkcs11:token=vigie;id=%02;type=private\"\n\
         crl_schedule = \"0 0 0 1 1 *\"\ndelta_schedule = \"*/2 * * * * *\"\n\
         accept_unregistered_revocations = true\n{extra_ca}\n",
        common::token_line(common::TOKEN),
        pki.ca.display(),
        pki.ocsp.display(),
    );
    let path = pki.dir.join("vigie.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// `vigie import` of a good and a revoked serial (offline; loads the token in its own process).
fn import(token: &Token, config: &Path) {
    let index = config.with_file_name("index.txt");
    std::fs::write(
        &index,
        format!(
            "V\t301231235959Z\t\t{GOOD}\tunknown\t/CN=good\n\
             R\t301231235959Z\t250101000000Z,keyCompromise\t{REVOKED}\tunknown\t/CN=revoked\n"
        ),
    )
    .expect("index.txt");
    let o = token
        .cmd(env!("CARGO_BIN_EXE_vigie"))
        .args(["import", "--ca", CA, "--config", s(config), s(&index)])
        .env("VIGIE_PKCS11_PIN", PIN)
        .output()
        .expect("vigie import runs");
    ok("vigie import", o);
}

/// The real server, killed on drop (also on panic).
struct Server {
    child: Option<Child>,
    public: String,
    admin: String,
    log: PathBuf,
}

impl Server {
    fn start(token: &Token, config: &Path, pin_env: Option<&str>) -> Server {
        let log = config.with_file_name("stderr.log");
        let mut cmd = token.cmd(env!("CARGO_BIN_EXE_vigie"));
        cmd.args(["serve", "--config", s(config)])
            .env("VIGIE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")));
        match pin_env {
            Some(pin) => cmd.env("VIGIE_PKCS11_PIN", pin),
            None => cmd.env_remove("VIGIE_PKCS11_PIN"),
        };
        let mut child = cmd.spawn().expect("vigie starts");
        let stdout = child.stdout.take().expect("piped");
        let mut server = Server {
            child: Some(child),
            public: String::new(),
            admin: String::new(),
            log,
        };
        let mut lines = BufReader::new(stdout).lines();
        while server.public.is_empty() || server.admin.is_empty() {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening public ") {
                        server.public = a.trim().to_owned();
                    } else if let Some(a) = line.strip_prefix("listening admin ") {
                        server.admin = a.trim().to_owned();
                    }
                }
                _ => panic!("vigie exited before listening: {}", server.stderr()),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        server
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `openssl ocsp` for `serial`, trusting the responder certificate (`-VAfile`) or the root
/// (`-CAfile`, the chain through the CA). Returns stdout + stderr.
fn openssl_ocsp(server: &Server, pki: &Pki, serial: &str, va: bool) -> String {
    let serial = format!("0x{serial}");
    let url = server.url("/ocsp");
    let mut args = vec![
        "ocsp",
        "-issuer",
        s(&pki.ca),
        "-serial",
        &serial,
        "-url",
        &url,
        "-no_nonce",
    ];
    if va {
        args.extend(["-VAfile", s(&pki.ocsp)]);
    } else {
        args.extend(["-CAfile", s(&pki.root), "-verify_other", s(&pki.ca)]);
    }
    common::text(&common::openssl(&args))
}

fn fetch(url: &str) -> Vec<u8> {
    let resp = ureq::get(url).call().expect("GET");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    body
}

/// `openssl crl -verify` against the CA certificate; returns the text of the CRL.
fn verify_crl(pki: &Pki, der: &[u8], name: &str) -> String {
    let path = pki.dir.join(name);
    std::fs::write(&path, der).expect("crl");
    let o = common::openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(&path),
        "-CAfile",
        s(&pki.ca),
        "-noout",
        "-text",
    ]);
    let t = common::text(&o);
    assert!(o.status.success() && t.contains("verify OK"), "{name}: {t}");
    t
}

fn serial_listed(crl_text: &str, serial: &str) -> bool {
    crl_text.contains(&format!("Serial Number: {serial}"))
}

/// Everything the server signs, with both keys in the token: OCSP good/revoked/unknown verified
/// both ways, a full CRL and a delta CRL listing a revocation made through the API.
fn answers_and_crls_from_the_token(kinds: Kinds, pin_file: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = Token::new(tmp.path());
    let pki = make_pki(&token, tmp.path(), kinds);
    let config = write_config(&pki, pin_file, "");
    import(&token, &config);
    // No private key file anywhere in the server's directory.
    for entry in std::fs::read_dir(tmp.path()).expect("dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            name == "root.key" || !name.ends_with(".key"),
            "a key file is left: {name}"
        );
    }
    let pin_env = if pin_file { None } else { Some(PIN) };
    let server = Server::start(&token, &config, pin_env);
    for va in [true, false] {
        let good = openssl_ocsp(&server, &pki, GOOD, va);
        assert!(good.contains("Response verify OK"), "{good}");
        assert!(good.contains(&format!("0x{GOOD}: good")), "{good}");
        let revoked = openssl_ocsp(&server, &pki, REVOKED, va);
        assert!(revoked.contains("Response verify OK"), "{revoked}");
        assert!(
            revoked.contains(&format!("0x{REVOKED}: revoked")),
            "{revoked}"
        );
        assert!(revoked.contains("Reason: keyCompromise"), "{revoked}");
        let unknown = openssl_ocsp(&server, &pki, UNKNOWN, va);
        assert!(unknown.contains("Response verify OK"), "{unknown}");
        assert!(
            unknown.contains(&format!("0x{UNKNOWN}: unknown")),
            "{unknown}"
        );
    }
    // The full CRL, signed in the token.
    let full = fetch(&server.url(&format!("/crl/{CA}.crl")));
    let full_text = verify_crl(&pki, &full, "full.crl");
    assert!(serial_listed(&full_text, REVOKED), "{full_text}");
    // A revocation through the API reaches a delta CRL, signed in the token too.
    let api = ureq::post(&format!("{}/v1/revocations", server.admin))
        .set("Authorization", &format!("Bearer {}", common::TOKEN))
        .send_json(json!({"ca": CA, "serial": LATE, "reason": "superseded"}))
        .expect("revocation accepted");
    assert_eq!(api.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delta = fetch(&server.url(&format!("/crl/{CA}-delta.crl")));
        let text = verify_crl(&pki, &delta, "delta.crl");
        if serial_listed(&text, LATE) {
            assert!(text.contains("Delta CRL Indicator"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no delta lists {LATE}: {text}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = server.stderr();
    assert!(!log.contains(PIN), "the PIN reached the log");
    assert!(!log.contains("CKR_"), "PKCS#11 errors: {log}");
}

#[test]
fn rsa_keys_in_the_token_sign_ocsp_and_crls() {
    answers_and_crls_from_the_token(
        Kinds {
            ca: "rsa:2048",
            ocsp: "rsa:2048",
        },
        true,
    );
}

#[test]
fn ecdsa_p384_ca_and_p256_responder_in_the_token() {
    answers_and_crls_from_the_token(
        Kinds {
            ca: "EC:secp384r1",
            ocsp: "EC:prime256v1",
        },
        false,
    );
}

/// An OCSP request for `serial` with a 16-octet nonce, and where its nonce value sits.
fn nonce_request(pki: &Pki, serial: &str) -> (Vec<u8>, usize) {
    let out = pki.dir.join(format!("req-{serial}.der"));
    ok(
        "openssl ocsp -reqout",
        common::openssl(&[
            "ocsp",
            "-issuer",
            s(&pki.ca),
            "-serial",
            &format!("0x{serial}"),
            "-nonce",
            "-reqout",
            s(&out),
        ]),
    );
    let der = std::fs::read(&out).expect("request");
    // RFC 9654 / RFC 6960 §4.4.1: id-pkix-ocsp-nonce, extnValue OCTET STRING { OCTET STRING (16) }.
    let oid = [
        0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
    ];
    let at = der
        .windows(oid.len())
        .position(|w| w == oid)
        .expect("a nonce extension");
    let value = at + oid.len() + 4;
    assert_eq!(&der[at + oid.len()..value], &[0x04, 0x12, 0x04, 0x10]);
    (der, value)
}

fn post_ocsp(agent: &ureq::Agent, url: &str, body: &[u8]) -> Vec<u8> {
    let resp = agent
        .post(url)
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(body)
        .expect("POST /ocsp");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut out).expect("body");
    out
}

/// The OCSPResponseStatus of a response (RFC 6960 §4.2.1).
fn response_status(der: &[u8]) -> openssl::ocsp::OcspResponseStatus {
    openssl::ocsp::OcspResponse::from_der(der)
        .expect("an OCSP response")
        .status()
}

#[test]
fn eight_threads_of_nonce_answers_and_a_token_that_goes_away() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = Token::new(tmp.path());
    let pki = make_pki(
        &token,
        tmp.path(),
        Kinds {
            ca: "rsa:2048",
            ocsp: "EC:prime256v1",
        },
    );
    let config = write_config(&pki, true, "");
    import(&token, &config);
    let server = Server::start(&token, &config, None);
    let url = server.url("/ocsp");
    let (template, at) = nonce_request(&pki, GOOD);
    let ocsp_cert =
        openssl::x509::X509::from_pem(&std::fs::read(&pki.ocsp).expect("pem")).expect("cert");
    let verifier = Arc::new(ocsp_cert.public_key().expect("key"));

    // 8 threads × 1,000 nonce answers, each echoing its nonce and verifying.
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let (url, template, answered, verifier) = (
                url.clone(),
                template.clone(),
                Arc::clone(&answered),
                Arc::clone(&verifier),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                for i in 0..1000u32 {
                    let mut req = template.clone();
                    let mut nonce = [0u8; 16];
                    openssl::rand::rand_bytes(&mut nonce).expect("rand");
                    nonce[0] = t;
                    nonce[1..5].copy_from_slice(&i.to_be_bytes());
                    req[at..at + 16].copy_from_slice(&nonce);
                    let der = post_ocsp(&agent, &url, &req);
                    assert_eq!(
                        response_status(&der),
                        openssl::ocsp::OcspResponseStatus::SUCCESSFUL,
                        "thread {t} request {i}"
                    );
                    assert!(
                        der.windows(16).any(|w| w == nonce),
                        "thread {t} request {i}: nonce not echoed"
                    );
                    if i % 50 == 0 {
                        check_signature(&der, &verifier);
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("a thread failed");
    }
    assert_eq!(answered.load(Ordering::Relaxed), 8000);
    let log = server.stderr();
    assert!(!log.contains("CKR_"), "PKCS#11 errors under load: {log}");

    // A cached answer (no nonce) is made while the token is there.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let cached_req = {
        let out = pki.dir.join("req-cached.der");
        ok(
            "reqout",
            common::openssl(&[
                "ocsp",
                "-issuer",
                s(&pki.ca),
                "-serial",
                &format!("0x{REVOKED}"),
                "-no_nonce",
                "-reqout",
                s(&out),
            ]),
        );
        std::fs::read(out).expect("req")
    };
    let cached = post_ocsp(&agent, &url, &cached_req);
    assert_eq!(
        response_status(&cached),
        openssl::ocsp::OcspResponseStatus::SUCCESSFUL
    );

    // The token goes away (a copy is kept to bring it back).
    let backup = tmp.path().join("tokens-backup");
    ok(
        "cp",
        Command::new("cp")
            .args(["-a", s(&token.dir), s(&backup)])
            .output()
            .expect("cp"),
    );
    token.run("softhsm2-util", &["--delete-token", "--token", "vigie"]);
    let fresh = |n: u32| {
        let mut req = template.clone();
        req[at..at + 4].copy_from_slice(&n.to_be_bytes());
        post_ocsp(&agent, &url, &req)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let status = response_status(&fresh(n));
        if status == openssl::ocsp::OcspResponseStatus::TRY_LATER {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never tryLater without the token"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Again, and cached answers are still served, byte for byte.
    assert_eq!(
        response_status(&fresh(n + 1)),
        openssl::ocsp::OcspResponseStatus::TRY_LATER
    );
    assert_eq!(post_ocsp(&agent, &url, &cached_req), cached);

    // The token comes back: signatures resume.
    ok(
        "restore",
        Command::new("cp")
            .args(["-a", &format!("{}/.", s(&backup)), s(&token.dir)])
            .output()
            .expect("cp"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        n += 1;
        let der = fresh(n);
        if response_status(&der) == openssl::ocsp::OcspResponseStatus::SUCCESSFUL {
            check_signature(&der, &verifier);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "signatures did not resume: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!server.stderr().contains(PIN), "the PIN reached the log");
}

/// Verifies the BasicOCSPResponse signature (RFC 6960 §4.2.1) with the responder's key.
fn check_signature(der: &[u8], key: &openssl::pkey::PKey<openssl::pkey::Public>) {
    let resp = x509_ocsp::OcspResponse::from_der(der).expect("parses");
    let bytes = resp.response_bytes.expect("response bytes");
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
    let tbs = basic.tbs_response_data.to_der().expect("tbs");
    let digest = match key.ec_key().ok().and_then(|k| k.group().curve_name()) {
        Some(openssl::nid::Nid::SECP384R1) => openssl::hash::MessageDigest::sha384(),
        _ => openssl::hash::MessageDigest::sha256(),
    };
    let mut v = openssl::sign::Verifier::new(digest, key).expect("verifier");
    v.update(&tbs).expect("update");
    assert!(
        v.verify(basic.signature.raw_bytes()).expect("verify"),
        "signature does not verify"
    );
}

#[test]
fn a_wrong_pin_is_refused_at_start_without_showing_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = Token::new(tmp.path());
    let pki = make_pki(
        &token,
        tmp.path(),
        Kinds {
            ca: "rsa:2048",
            ocsp: "rsa:2048",
        },
    );
    let config = write_config(&pki, false, "");
    let wrong = "9999-not-the-pin";
    let out = token
        .cmd(env!("CARGO_BIN_EXE_vigie"))
        .args(["serve", "--config", s(&config)])
        .env("VIGIE_PKCS11_PIN", wrong)
        .output()
        .expect("vigie runs");
    assert!(!out.status.success(), "started with a wrong PIN");
    let text = common::text(&out);
    assert!(text.contains("CKR_PIN_INCORRECT"), "{text}");
    assert!(text.contains("VIGIE_PKCS11_PIN"), "{text}");
    assert!(!text.contains(wrong), "the PIN is shown: {text}");
    // No PIN at all: refused, naming where it comes from.
    let out = token
        .cmd(env!("CARGO_BIN_EXE_vigie"))
        .args(["check", "--config", s(&config)])
        .env_remove("VIGIE_PKCS11_PIN")
        .output()
        .expect("vigie runs");
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("pin_file"),
        "{}",
        common::text(&out)
    );
}

#[test]
fn a_responder_needs_no_ca_key_without_crl_schedule() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = Token::new(tmp.path());
    let pki = make_pki(
        &token,
        tmp.path(),
        Kinds {
            ca: "rsa:2048",
            ocsp: "EC:secp384r1",
        },
    );
    let config = write_config(&pki, true, "");
    // Without `key` and without `crl_schedule`: only the OCSP key is needed.
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("key = \"pkcs11:token=vigie;object=ca;type=private\"\n", "")
        .replace("crl_schedule = \"0 0 0 1 1 *\"\n", "");
    std::fs::write(&config, &text).expect("config");
    import(&token, &config);
    let server = Server::start(&token, &config, None);
    let good = openssl_ocsp(&server, &pki, GOOD, true);
    assert!(good.contains("Response verify OK"), "{good}");
    assert!(good.contains(&format!("0x{GOOD}: good")), "{good}");
    // No CRL is built here.
    let resp = ureq::get(&server.url(&format!("/crl/{CA}.crl"))).call();
    assert!(
        matches!(resp, Err(ureq::Error::Status(404, _))),
        "a CRL without a CA key"
    );
    // With crl_schedule but no key, the configuration is refused, naming the key.
    std::fs::write(
        &config,
        text.replace(
            "delta_schedule",
            "crl_schedule = \"0 0 * * * *\"\ndelta_schedule",
        ),
    )
    .expect("config");
    let out = token
        .cmd(env!("CARGO_BIN_EXE_vigie"))
        .args(["check", "--config", s(&config)])
        .output()
        .expect("vigie runs");
    assert!(!out.status.success());
    assert!(common::text(&out).contains("key"), "{}", common::text(&out));
}
