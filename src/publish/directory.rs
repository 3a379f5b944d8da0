//! The directory sink (`kind = "directory"`): `{path}/{ca}.crl` and `{ca}.pem` for complete
//! CRLs, `{ca}-delta.crl` and `{ca}-delta.pem` for deltas — the names of vigie's own HTTP
//! paths, for a static web origin or a CDN to serve.
//!
//! Each file is replaced atomically (write a temporary file in the same directory, fsync it,
//! rename it over the old one, fsync the directory): a reader sees the old CRL or the new one,
//! never a part, and after a crash the file is whole. A file holding the same CRL number or a
//! newer one is left alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::DirectoryConfig;
use super::{Error, Item, Outcome, crl_number, holds_same_or_newer};
use crate::crl::CrlKind;

/// A file directory.
#[derive(Debug)]
pub struct DirectorySink {
    config: DirectoryConfig,
}

impl DirectorySink {
    /// A sink writing into `config.path` (created when missing).
    pub fn new(config: DirectoryConfig) -> DirectorySink {
        DirectorySink { config }
    }

    /// Writes the DER and PEM files of `item`, unless the DER file holds a newer CRL. Blocking
    /// file I/O runs on a blocking thread.
    pub async fn put(&self, item: &Item<'_>) -> Result<Outcome, Error> {
        let dir = self.config.path.clone();
        let stem = match item.crl.kind() {
            CrlKind::Full => item.ca.to_string(),
            CrlKind::Delta => format!("{}-delta", item.ca),
        };
        let der = item.crl.der.clone();
        let number = item.crl.record.number;
        tokio::task::spawn_blocking(move || write_crl(&dir, &stem, &der, number))
            .await
            .map_err(|e| Error::Io("directory sink task".into(), std::io::Error::other(e)))?
    }
}

fn write_crl(dir: &Path, stem: &str, der: &[u8], number: u64) -> Result<Outcome, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    let der_path = dir.join(format!("{stem}.crl"));
    let held = match std::fs::read(&der_path) {
        Ok(bytes) => crl_number(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Io(der_path.display().to_string(), e)),
    };
    if holds_same_or_newer(held.as_deref(), number) {
        return Ok(Outcome::AlreadyHeld(held.unwrap_or_default()));
    }
    let pem = crate::crl::pem(der);
    // PEM first: when the DER file (which decides "already held") names this number, both are.
    replace_atomically(dir, &dir.join(format!("{stem}.pem")), &pem)?;
    replace_atomically(dir, &der_path, der)?;
    let back =
        std::fs::read(&der_path).map_err(|e| Error::Io(der_path.display().to_string(), e))?;
    if back != der {
        return Err(Error::ReadBack {
            target: der_path.display().to_string(),
            what: format!("{} octets read, {} written", back.len(), der.len()),
        });
    }
    Ok(Outcome::Written)
}

/// Write to a temporary file beside `path`, fsync, rename over `path`, fsync the directory.
fn replace_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |p: &Path| {
        let shown = p.display().to_string();
        move |e| Error::Io(shown, e)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot keeps the temporary file out of web servers' default listings and globs.
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_and_never_by_an_older_crl() {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/crl/full.der"
        ))
        .expect("golden CRL");
        let number = crl_number(&der).expect("has a number");
        let n = number.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            write_crl(dir.path(), "ca", &der, n).expect("writes"),
            Outcome::Written
        );
        assert_eq!(
            std::fs::read(dir.path().join("ca.crl")).expect("reads"),
            der
        );
        let pem = std::fs::read_to_string(dir.path().join("ca.pem")).expect("reads");
        assert!(pem.starts_with("-----BEGIN X509 CRL-----\n"));
        // The same number again, or an older one: left alone.
        assert!(matches!(
            write_crl(dir.path(), "ca", b"other", n),
            Ok(Outcome::AlreadyHeld(_))
        ));
        assert!(matches!(
            write_crl(dir.path(), "ca", b"other", n.saturating_sub(1)),
            Ok(Outcome::AlreadyHeld(_))
        ));
        assert_eq!(
            std::fs::read(dir.path().join("ca.crl")).expect("reads"),
            der
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("lists")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
