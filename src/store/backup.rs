//! Backups: a consistent copy of a store that a running vigie holds open (`vigie backup
//! create`), and putting one in place (`vigie backup restore`).
//!
//! The copy is made through a RocksDB *secondary instance* of the live store: it replays the
//! primary's manifest and write-ahead log up to one point, and reads from then on see exactly
//! the state at that point (every `WriteBatch` whole or absent), whatever the running server
//! writes meanwhile. Every column family is copied from it into a new store at the destination,
//! which is flushed and synced. Since a replica's stream position ([`crate::replicate`]) is
//! written in the same batches as the changes it applied, the copy holds the position its data
//! corresponds to: a node restored from it resumes the stream from there.
//!
//! A writer's own claim on the stream is not copied: a copy is data, not a writer's identity,
//! and may become a replica or a new writer.

use std::path::{Path, PathBuf};

use rocksdb::{DB, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use super::{Error, cf, keys};

/// File written beside the copied store, describing it.
pub const MANIFEST: &str = "vigie-backup.json";

/// Subdirectory of a backup holding the store itself.
pub const STORE_DIR: &str = "store";

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The store it was taken from.
    pub source: PathBuf,
    /// Unix time of the copy.
    pub created_at: i64,
    /// Entries copied, all column families together.
    pub entries: u64,
    /// The stream position (`[replication]`) the copy corresponds to, 0 without replication.
    pub applied_sequence: u64,
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(what.display().to_string(), e)
}

fn empty_or_absent(dir: &Path) -> Result<bool, Error> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Copies the store at `primary` (open in another process or not) into `dest`, which must not
/// exist or be empty. `skip_meta` names store-wide `meta` values left out of the copy.
pub fn create(
    primary: &Path,
    dest: &Path,
    skip_meta: &[&str],
    now: i64,
) -> Result<BackupInfo, Error> {
    if !empty_or_absent(dest)? {
        return Err(Error::Io(
            dest.display().to_string(),
            std::io::Error::other("the backup directory is not empty"),
        ));
    }
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let secondary = dest.join(".secondary");
    let mut opts = Options::default();
    // A secondary instance must keep every file it opened: the primary may delete them.
    opts.set_max_open_files(-1);
    let source = DB::open_cf_as_secondary(&opts, primary, secondary.as_path(), cf::ALL)?;
    source.try_catch_up_with_primary()?;

    let store_dir = dest.join(STORE_DIR);
    let mut out_opts = Options::default();
    out_opts.create_if_missing(true);
    out_opts.create_missing_column_families(true);
    let out = DB::open_cf(&out_opts, &store_dir, cf::ALL)?;
    let skipped: Vec<Vec<u8>> = skip_meta.iter().map(|n| keys::global_meta(n)).collect();
    let mut entries = 0u64;
    let mut applied = 0u64;
    let applied_key = keys::global_meta(crate::replicate::APPLIED);
    for name in cf::ALL {
        let from = source
            .cf_handle(name)
            .expect("the secondary opens every column family");
        let to = out.cf_handle(name).expect("created above");
        let mut batch = WriteBatch::default();
        for item in source.iterator_cf(from, IteratorMode::Start) {
            let (k, v) = item?;
            if name == cf::META {
                if skipped.iter().any(|s| s.as_slice() == &*k) {
                    continue;
                }
                if *k == *applied_key {
                    applied = v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                }
            }
            batch.put_cf(to, &k, &v);
            entries += 1;
            if batch.len() >= 10_000 {
                out.write(std::mem::take(&mut batch))?;
            }
        }
        out.write(batch)?;
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    out.write_opt(WriteBatch::default(), &wo)?;
    for name in cf::ALL {
        out.flush_cf(out.cf_handle(name).expect("created above"))?;
    }
    drop(out);
    drop(source);
    let _ = std::fs::remove_dir_all(&secondary);
    let info = BackupInfo {
        source: primary.to_path_buf(),
        created_at: now,
        entries,
        applied_sequence: applied,
    };
    let manifest = dest.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&info).map_err(|e| {
        Error::Io(
            manifest.display().to_string(),
            std::io::Error::other(e.to_string()),
        )
    })?;
    std::fs::write(&manifest, json).map_err(io(&manifest))?;
    Ok(info)
}

/// Puts the backup at `backup` in place as the store at `store` (which must not exist or be
/// empty: vigie never overwrites a store).
pub fn restore(backup: &Path, store: &Path) -> Result<BackupInfo, Error> {
    let manifest = backup.join(MANIFEST);
    let text = std::fs::read(&manifest).map_err(io(&manifest))?;
    let info: BackupInfo = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
        cf: "backup",
        message: format!("{}: {e}", manifest.display()),
    })?;
    if !empty_or_absent(store)? {
        return Err(Error::Io(
            store.display().to_string(),
            std::io::Error::other(
                "the store directory is not empty: move it away first (restore never overwrites a store)",
            ),
        ));
    }
    std::fs::create_dir_all(store).map_err(io(store))?;
    let from = backup.join(STORE_DIR);
    for entry in std::fs::read_dir(&from).map_err(io(&from))? {
        let entry = entry.map_err(io(&from))?;
        let path = entry.path();
        if path.is_file() {
            let to = store.join(entry.file_name());
            std::fs::copy(&path, &to).map_err(io(&to))?;
        }
    }
    // The copy is usable only whole: open it once to check it.
    let opts = Options::default();
    DB::open_cf_for_read_only(&opts, store, cf::ALL, false)?;
    Ok(info)
}
