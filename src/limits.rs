//! Process limits a listener facing the internet needs: every open connection is a file
//! descriptor, so the soft limit on open files is raised to the hard limit at start (the hard
//! limit is the administrator's word; vigie never asks for more).

/// Descriptors kept aside for the store, logs and the admin listener.
const RESERVED_FILES: u64 = 512;

/// Raises the soft limit on open files to the hard limit, and says so; warns when
/// `max_connections` cannot fit under it.
pub fn raise_open_files(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(
                open_files = limit,
                "open-files soft limit raised to the hard limit"
            );
            if limit < max_connections as u64 + RESERVED_FILES {
                tracing::warn!(
                    open_files = limit,
                    max_connections,
                    "[public] max_connections does not fit under the open-files limit: raise the hard limit (LimitNOFILE=, ulimit -Hn) or lower max_connections"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}
