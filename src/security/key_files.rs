//! Private keys and token files must be readable by their owner only: a CA key (which signs
//! CRLs), a delegated OCSP key, the admin listener's TLS key, a token file. At start-up each is
//! checked and refused when the group or others may read it — unless
//! `[security] allow_loose_key_permissions = true`, for platforms that mount secrets 0644
//! (Kubernetes and Docker secrets without `defaultMode`).
//!
//! Keys referenced by RFC 7512 URI (`pkcs11:…`) are not files: nothing to check.

use std::path::Path;

use super::Error;

/// Checks that `path` (a file holding a secret) is not readable by group or others. Symbolic
/// links are followed: what counts is the file the service reads.
pub fn check(path: &Path) -> Result<(), Error> {
    if path.to_str().is_some_and(|p| p.starts_with("pkcs11:")) {
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    check_mode(path, mode(&meta))
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
}

#[cfg(not(unix))]
fn mode(_: &std::fs::Metadata) -> u32 {
    0o600
}

fn check_mode(path: &Path, mode: u32) -> Result<(), Error> {
    let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "group",
        (false, true) => "others",
        (true, true) => "group and others",
    };
    Err(Error::LooseMode {
        path: path.display().to_string(),
        who,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_only_modes_pass_others_are_named() {
        let p = Path::new("/etc/vigie/ca.key");
        assert!(check_mode(p, 0o600).is_ok());
        assert!(check_mode(p, 0o400).is_ok());
        assert!(check_mode(p, 0o700).is_ok());
        assert!(
            check_mode(p, 0o620).is_ok(),
            "group write alone reads nothing"
        );
        let e = check_mode(p, 0o644).expect_err("world-readable");
        let m = e.to_string();
        assert!(
            m.contains("/etc/vigie/ca.key") && m.contains("0644") && m.contains("group and others"),
            "{m}"
        );
        assert!(
            check_mode(p, 0o640)
                .expect_err("group")
                .to_string()
                .contains("by group")
        );
        assert!(
            check_mode(p, 0o604)
                .expect_err("others")
                .to_string()
                .contains("by others")
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_are_checked_on_disk() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("k.key");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(check(&f).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(check(&f).is_ok());
        assert!(check(&dir.path().join("missing")).is_err());
        assert!(check(Path::new("pkcs11:token=x;object=y")).is_ok());
    }
}
