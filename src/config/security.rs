//! `[security]`: start-up checks on secrets. Its raw table and its validation into
//! [`SecurityConfig`]; the check itself is [`crate::security::key_files`].

use serde::Deserialize;

/// `[security]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    /// Accept key and token files that the group or others can read.
    #[serde(default)]
    pub allow_loose_key_permissions: bool,
}

/// `[security]`, validated.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Key and token files readable by group or others are accepted.
    pub allow_loose_key_permissions: bool,
}

/// Checks `[security]` (every value of it can work).
pub fn validate(raw: &RawSecurity) -> SecurityConfig {
    SecurityConfig {
        allow_loose_key_permissions: raw.allow_loose_key_permissions,
    }
}
