//! `[[publish]]` tables: what the TOML says ([`RawPublish`]) and what the service runs with
//! ([`SinkConfig`]). Keys: `kind` (`"ldap"` or `"directory"`); for LDAP `url`, `starttls`,
//! `bind_dn`, `bind_password_file`; for a directory `path`.

use std::path::PathBuf;

use serde::Deserialize;

/// One `[[publish]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    /// `ldap` or `directory`.
    pub kind: String,
    /// LDAP: `ldap://host[:port]` or `ldaps://host[:port]`.
    #[serde(default)]
    pub url: Option<String>,
    /// LDAP: the DN to bind as (simple bind); none: anonymous.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// LDAP: a file holding the bind password (one line; read at each connection).
    #[serde(default)]
    pub bind_password_file: Option<String>,
    /// LDAP: upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before binding.
    #[serde(default)]
    pub starttls: bool,
    /// Directory: where the files are written.
    #[serde(default)]
    pub path: Option<String>,
}

/// An LDAP sink's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapConfig {
    /// `ldap://…` or `ldaps://…`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// Bind DN; `None`: anonymous.
    pub bind_dn: Option<String>,
    /// Password file (absolute).
    pub bind_password_file: Option<PathBuf>,
}

/// A directory sink's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Absolute directory.
    pub path: PathBuf,
}

/// One validated `[[publish]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// `kind = "ldap"`.
    Ldap(LdapConfig),
    /// `kind = "directory"`.
    Directory(DirectoryConfig),
}

impl SinkConfig {
    /// The sink's identity: its `sink` metric label and the key of its queue in the store
    /// (`ldap:{url}` or `directory:{path}`). Changing the URL or path starts a new queue.
    pub fn id(&self) -> String {
        match self {
            SinkConfig::Ldap(l) => format!("ldap:{}", l.url),
            SinkConfig::Directory(d) => format!("directory:{}", d.path.display()),
        }
    }

    /// `ldap` or `directory`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Ldap(_) => "ldap",
            SinkConfig::Directory(_) => "directory",
        }
    }
}

/// Validates the tables; an error is (table index, key, message). `resolve` makes a path of
/// the file absolute.
pub fn validate(
    raw: &[RawPublish],
    resolve: impl Fn(&str) -> PathBuf,
) -> Result<Vec<SinkConfig>, (usize, &'static str, String)> {
    let mut out: Vec<SinkConfig> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let refuse = |key: &'static str, message: String| Err((i, key, message));
        let sink = match r.kind.as_str() {
            "ldap" => {
                if r.path.is_some() {
                    return refuse(
                        "path",
                        "an LDAP sink has no path (that is for kind = \"directory\")".into(),
                    );
                }
                let Some(url) = r.url.as_deref().map(str::trim) else {
                    return refuse(
                        "url",
                        "an LDAP sink needs url = \"ldap://host:389\" (or ldaps://)".into(),
                    );
                };
                let tls = if url.starts_with("ldaps://") {
                    true
                } else if url.starts_with("ldap://") {
                    false
                } else {
                    return refuse(
                        "url",
                        format!("{url:?} must start with ldap:// or ldaps://"),
                    );
                };
                if tls && r.starttls {
                    return refuse(
                        "starttls",
                        "StartTLS is for ldap:// URLs; ldaps:// is TLS from the start".into(),
                    );
                }
                if r.bind_dn.is_some() != r.bind_password_file.is_some() {
                    return refuse(
                        "bind_password_file",
                        "bind_dn and bind_password_file go together (neither: anonymous bind)"
                            .into(),
                    );
                }
                let bind_password_file = r.bind_password_file.as_deref().map(&resolve);
                if let Some(p) = bind_password_file.as_ref().filter(|p| !p.is_file()) {
                    return refuse(
                        "bind_password_file",
                        format!("{} is not a readable file", p.display()),
                    );
                }
                SinkConfig::Ldap(LdapConfig {
                    url: url.trim_end_matches('/').to_owned(),
                    starttls: r.starttls,
                    bind_dn: r.bind_dn.clone(),
                    bind_password_file,
                })
            }
            "directory" => {
                for (key, set) in [
                    ("url", r.url.is_some()),
                    ("bind_dn", r.bind_dn.is_some()),
                    ("bind_password_file", r.bind_password_file.is_some()),
                    ("starttls", r.starttls),
                ] {
                    if set {
                        return refuse(key, "a directory sink only has path".into());
                    }
                }
                let Some(path) = r.path.as_deref() else {
                    return refuse("path", "a directory sink needs path = \"/srv/crl\"".into());
                };
                SinkConfig::Directory(DirectoryConfig {
                    path: resolve(path),
                })
            }
            other => {
                return refuse(
                    "kind",
                    format!("{other:?}: expected \"ldap\" or \"directory\""),
                );
            }
        };
        if sink.id().len() > 255 {
            return refuse("url", "too long (at most 255 octets)".into());
        }
        if out.iter().any(|o| o.id() == sink.id()) {
            return refuse("url", format!("a sink {} is already configured", sink.id()));
        }
        out.push(sink);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml: &str) -> Vec<RawPublish> {
        #[derive(Deserialize)]
        struct T {
            publish: Vec<RawPublish>,
        }
        toml::from_str::<T>(toml).expect("parses").publish
    }

    #[test]
    fn tables_validate_or_name_the_key() {
        let resolve = |p: &str| PathBuf::from("/etc/vigie").join(p);
        let ok = validate(
            &raw("[[publish]]\nkind = \"ldap\"\nurl = \"ldap://dir:389/\"\nstarttls = true\n[[publish]]\nkind = \"directory\"\npath = \"out\"\n"),
            resolve,
        )
        .expect("valid");
        assert_eq!(ok[0].id(), "ldap:ldap://dir:389");
        assert_eq!(ok[1].id(), "directory:/etc/vigie/out");
        for (text, key) in [
            ("kind = \"s3\"", "kind"),
            ("kind = \"ldap\"", "url"),
            ("kind = \"ldap\"\nurl = \"http://x\"", "url"),
            (
                "kind = \"ldap\"\nurl = \"ldaps://x\"\nstarttls = true",
                "starttls",
            ),
            (
                "kind = \"ldap\"\nurl = \"ldap://x\"\nbind_dn = \"cn=a\"",
                "bind_password_file",
            ),
            ("kind = \"directory\"", "path"),
            (
                "kind = \"directory\"\npath = \"p\"\nurl = \"ldap://x\"",
                "url",
            ),
        ] {
            let err = validate(&raw(&format!("[[publish]]\n{text}\n")), resolve).expect_err(text);
            assert_eq!(err.1, key, "{text}: {}", err.2);
        }
    }
}
