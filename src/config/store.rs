//! `[store]`: the RocksDB store. Its raw table, its defaults, and its validation into
//! [`StoreConfig`].

use std::path::PathBuf;

use serde::Deserialize;

use super::Ctx;

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// RocksDB directory, relative to the configuration file's directory.
    #[serde(default = "defaults::store_path")]
    pub path: String,
    /// RocksDB block cache, in MiB.
    #[serde(default = "defaults::block_cache_mb")]
    pub block_cache_mb: usize,
    /// RocksDB memtables of all column families together, in MiB.
    #[serde(default = "defaults::write_buffer_mb")]
    pub write_buffer_mb: usize,
}

mod defaults {
    pub fn store_path() -> String {
        "data".into()
    }
    pub fn block_cache_mb() -> usize {
        64
    }
    pub fn write_buffer_mb() -> usize {
        32
    }
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: defaults::store_path(),
            block_cache_mb: defaults::block_cache_mb(),
            write_buffer_mb: defaults::write_buffer_mb(),
        }
    }
}

/// `[store]`, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Absolute RocksDB directory.
    pub path: PathBuf,
    /// Block cache in bytes.
    pub block_cache_bytes: usize,
    /// All memtables together, in bytes.
    pub write_buffer_bytes: usize,
}

/// Checks `[store]`: the path is resolved, the sizes raised to their floors.
pub fn validate(raw: &RawStore, ctx: &Ctx<'_>) -> StoreConfig {
    StoreConfig {
        path: ctx.resolve(&raw.path),
        block_cache_bytes: raw.block_cache_mb.max(8) << 20,
        write_buffer_bytes: raw.write_buffer_mb.max(4) << 20,
    }
}
