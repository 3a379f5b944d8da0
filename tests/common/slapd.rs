//! A private OpenLDAP `slapd` for tests: a temporary `cn=config` made with `slapadd -n0` from an
//! LDIF (core, cosine and inetorgperson schemas; one mdb database with suffix `c=FR`), listening
//! on a loopback port, run as the current user in the foreground (`-d 0`), never a system
//! service, killed on drop. Fails (never skips) when slapd or the LDAP tools are missing.
#![allow(dead_code, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Suffix of the test directory's database.
pub const SUFFIX: &str = "c=FR";
/// Its root DN (full write access) and password.
pub const ROOT_DN: &str = "cn=admin,c=FR";
pub const ROOT_PW: &str = "vigie-test-secret";

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

fn find(binary: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    panic!("{binary} not found: install Debian's slapd and ldap-utils (see README prerequisites)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("slapd.d");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&conf).expect("conf dir");
        std::fs::create_dir_all(&db).expect("db dir");
        let ldif = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {pid}\n\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
             include: file:///etc/ldap/schema/core.ldif\n\n\
             include: file:///etc/ldap/schema/cosine.ldif\n\n\
             include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
             dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
             olcDatabase: {{1}}mdb\nolcDbDirectory: {db}\nolcSuffix: {SUFFIX}\nolcRootDN: {ROOT_DN}\n\
             olcRootPW: {ROOT_PW}\nolcDbMaxSize: 268435456\nolcAccess: {{0}}to * by * read\n",
            pid = dir.path().join("slapd.pid").display(),
            db = db.display(),
        );
        let ldif_path = dir.path().join("config.ldif");
        std::fs::write(&ldif_path, ldif).expect("ldif");
        let out = Command::new(find("slapadd"))
            .args(["-n0", "-F"])
            .arg(&conf)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .expect("slapadd runs");
        assert!(
            out.status.success(),
            "slapadd -n0: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            dir,
            port: free_port(),
            child: None,
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts slapd (again) on the same port and database.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("slapd.log"))
            .expect("log");
        let child = Command::new(find("slapd"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .arg("-F")
            .arg(self.dir.path().join("slapd.d"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("slapd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new(find("ldapsearch"))
                .args([
                    "-x",
                    "-H",
                    &self.url(),
                    "-s",
                    "base",
                    "-b",
                    "",
                    "-LLL",
                    "namingContexts",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("slapd exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Kills slapd (SIGKILL: the directory goes away at once).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Writes the root password into a file (mode 0600) for vigie's `bind_password_file`.
    pub fn password_file(&self) -> PathBuf {
        let p = self.dir.path().join("bind-password");
        std::fs::write(&p, format!("{ROOT_PW}\n")).expect("password file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        p
    }

    /// The values of `attr` (e.g. `certificateRevocationList;binary`) on entry `dn`, through
    /// `ldapsearch -t` (each value written to its own file by the tool). `None` when the entry
    /// does not exist or the server is down.
    pub fn values(&self, dn: &str, attr: &str) -> Option<Vec<Vec<u8>>> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = Command::new(find("ldapsearch"))
            .args([
                "-x",
                "-H",
                &self.url(),
                "-s",
                "base",
                "-b",
                dn,
                "-LLL",
                "-tt",
            ])
            .arg("-T")
            .arg(tmp.path())
            .args(["-o", "ldif-wrap=no", "(objectClass=*)", attr])
            .output()
            .expect("ldapsearch runs");
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let base = attr.split(';').next().unwrap_or(attr).to_ascii_lowercase();
        let mut values = Vec::new();
        for line in text.lines() {
            let Some((name, rest)) = line.split_once(":<") else {
                continue;
            };
            if !name.to_ascii_lowercase().starts_with(&base) {
                continue;
            }
            let url = rest.trim();
            let path = url
                .strip_prefix("file://")
                .expect("ldapsearch -t writes file:// URLs");
            values.push(std::fs::read(path).expect("value file"));
        }
        Some(values)
    }

    /// Object classes of `dn`.
    pub fn object_classes(&self, dn: &str) -> Vec<String> {
        let out = Command::new(find("ldapsearch"))
            .args([
                "-x",
                "-H",
                &self.url(),
                "-s",
                "base",
                "-b",
                dn,
                "-LLL",
                "-o",
                "ldif-wrap=no",
            ])
            .args(["(objectClass=*)", "objectClass"])
            .output()
            .expect("ldapsearch runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("objectClass: "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
