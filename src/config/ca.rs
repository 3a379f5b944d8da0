//! `[[ca]]`: one table per CA served. Its raw table (the policy keys deserialize straight into
//! the [`crate::model`] enums), its defaults, its validation into [`CaConfig`] (paths resolved,
//! durations parsed, key references parsed; no file opened but for permission checks). The
//! certificates and keys are loaded by the service ([`crate::pki::CaRegistry::load`]).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Ctx, Error};
use crate::model::{CaId, KeepExpired, NoncePolicy, OcspSignerPolicy, UnknownSerialPolicy};
use crate::signer::{KeyRef, Pkcs11Settings};

/// One `[[ca]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    /// URL-safe identifier used in paths and store keys.
    pub id: String,
    /// The issuing CA certificate (PEM or DER).
    pub cert: String,
    /// The CA private key, which signs CRLs: a file path or a `pkcs11:` URI (RFC 7512). Optional
    /// when `crl_schedule` is absent or empty: such a node builds no CRL for this CA.
    #[serde(default)]
    pub key: Option<String>,
    /// The delegated OCSP signer certificate (id-kp-OCSPSigning, issued by this CA). May be
    /// the CA certificate itself, in which case the CA key signs responses.
    pub ocsp_cert: String,
    /// The delegated OCSP signer key: a file path or a `pkcs11:` URI (RFC 7512).
    pub ocsp_key: String,
    /// thisUpdate → nextUpdate of a response (RFC 9919; CA/B BR §4.9.10: 8 hours to 10 days).
    #[serde(default = "defaults::ocsp_validity")]
    pub ocsp_validity: String,
    /// `echo` (sign a fresh response echoing the request's nonce) or `ignore` (serve the cached
    /// response, without nonce).
    #[serde(default = "defaults::nonce")]
    pub nonce: NoncePolicy,
    /// Answer for a serial this CA never registered: `unknown`, or `revoked` (RFC 6960 §2.2,
    /// certificateHold at 1970-01-01, with the extended-revoke extension of §4.4.8).
    #[serde(default = "defaults::unknown_serial")]
    pub unknown_serial: UnknownSerialPolicy,
    /// When full CRLs are built: a cron expression with a seconds field. Absent: the default
    /// schedule when `key` is given, no CRLs otherwise; "" builds no CRLs.
    #[serde(default)]
    pub crl_schedule: Option<String>,
    /// When delta CRLs are built: a cron expression with a seconds field; "" for no delta CRLs.
    #[serde(default = "defaults::delta_schedule")]
    pub delta_schedule: String,
    /// thisUpdate → nextUpdate of a full CRL (CA/B BR: at most 10 days).
    #[serde(default = "defaults::crl_validity")]
    pub crl_validity: String,
    /// thisUpdate → nextUpdate of a delta CRL.
    #[serde(default = "defaults::delta_validity")]
    pub delta_validity: String,
    /// How long a revoked certificate stays on CRLs after its notAfter; "forever" keeps them all
    /// (and says so with ExpiredCertsOnCRL). Default: one `crl_validity`.
    #[serde(default)]
    pub crl_keep_expired: Option<KeepExpired>,
    /// Publish a delta CRL soon after a revocation is ingested.
    #[serde(default)]
    pub publish_delta_on_revoke: bool,
    /// How long to wait after a revocation for more of them before that delta is built.
    #[serde(default = "defaults::delta_debounce")]
    pub delta_debounce: String,
    /// One URL certificates of this CA give as CRL distribution point, written into the
    /// critical IssuingDistributionPoint of its CRLs (RFC 5280 §5.2.5): shorthand for
    /// `crl_urls = ["…"]`; "" writes no IssuingDistributionPoint. Not with `crl_urls`.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The URLs the IssuingDistributionPoint names (one fullName, several URIs); `[]` writes
    /// none. Default (neither this nor `crl_url`): the distribution points learned from the
    /// registered certificates (`crate::crl::scope`).
    #[serde(default)]
    pub crl_urls: Option<Vec<String>>,
    /// The URL of the delta CRLs, written into full CRLs' FreshestCRL (RFC 5280 §5.2.6) when
    /// `delta_schedule` is set. Default `{public_url}/crl/{id}-delta.crl`.
    #[serde(default)]
    pub delta_crl_url: Option<String>,
    /// Who signs OCSP responses: `delegated` (the default: `ocsp_cert` is a delegated OCSP
    /// signer issued by the CA) or `ca` (`ocsp_cert` is the CA certificate itself).
    #[serde(default)]
    pub ocsp_signer: OcspSignerPolicy,
    /// Pre-sign an answer for every registered certificate in the background (on registration,
    /// on status change, and before half validity), so no request waits for a signature.
    #[serde(default = "defaults::presign")]
    pub presign: bool,
    /// DN of the CA's entry in the LDAP directories of `[[publish]] kind = "ldap"` sinks.
    /// Default: the CA certificate's subject as an RFC 4514 string.
    #[serde(default)]
    pub ldap_dn: Option<String>,
    /// The OCSP signer certificate that takes over at `rollover_at` (with `next_ocsp_key`).
    #[serde(default)]
    pub next_ocsp_cert: Option<String>,
    /// Its key: a file path or a `pkcs11:` URI (RFC 7512).
    #[serde(default)]
    pub next_ocsp_key: Option<String>,
    /// When the next signer takes over (RFC 3339, e.g. "2027-01-15T00:00:00Z").
    #[serde(default)]
    pub rollover_at: Option<String>,
    /// Record a revocation of a serial this CA never registered (answered with
    /// `"registered": false`) instead of refusing it with 404 `…/unknown-certificate`.
    #[serde(default)]
    pub accept_unregistered_revocations: bool,
}

mod defaults {
    use crate::model::{NoncePolicy, UnknownSerialPolicy};

    pub fn presign() -> bool {
        true
    }
    pub fn ocsp_validity() -> String {
        "1d".into()
    }
    pub fn nonce() -> NoncePolicy {
        NoncePolicy::Echo
    }
    pub fn unknown_serial() -> UnknownSerialPolicy {
        UnknownSerialPolicy::Unknown
    }
    pub fn crl_schedule() -> String {
        "0 0 */6 * * *".into()
    }
    pub fn delta_schedule() -> String {
        "0 */15 * * * *".into()
    }
    pub fn crl_validity() -> String {
        "7d".into()
    }
    pub fn delta_validity() -> String {
        "1d".into()
    }
    pub fn delta_debounce() -> String {
        "5s".into()
    }
}

/// The CRL settings of one CA.
#[derive(Debug, Clone)]
pub struct CaCrlConfig {
    /// Cron expression (with seconds) for full CRLs.
    pub schedule: String,
    /// Cron expression for delta CRLs; `None`: no delta CRLs.
    pub delta_schedule: Option<String>,
    /// Full CRL validity, seconds.
    pub validity: i64,
    /// Delta CRL validity, seconds.
    pub delta_validity: i64,
    /// Retention of expired certificates.
    pub keep_expired: KeepExpired,
    /// Publish a delta soon after a revocation.
    pub publish_delta_on_revoke: bool,
    /// Debounce before that delta, seconds.
    pub delta_debounce: std::time::Duration,
    /// IssuingDistributionPoint names (`crl_urls`, `crl_url`; empty: no
    /// IssuingDistributionPoint); `None`: learned from the registered certificates.
    pub idp_urls: Option<Vec<String>>,
    /// FreshestCRL URL of full CRLs (used when `delta_schedule` is set).
    pub delta_url: String,
}

/// One `[[ca]]`, validated (paths absolute, durations parsed). Keys are loaded by [`crate::pki`].
#[derive(Debug, Clone)]
pub struct CaConfig {
    /// Identifier.
    pub id: CaId,
    /// CA certificate file.
    pub cert: PathBuf,
    /// CA key (file or PKCS#11 URI); `None`: this node builds no CRL for the CA.
    pub key: Option<KeyRef>,
    /// OCSP signer certificate file.
    pub ocsp_cert: PathBuf,
    /// OCSP signer key (file or PKCS#11 URI).
    pub ocsp_key: KeyRef,
    /// Response validity in seconds.
    pub ocsp_validity: i64,
    /// Nonce handling.
    pub nonce: NoncePolicy,
    /// Never-registered serials.
    pub unknown_serial: UnknownSerialPolicy,
    /// CRL publication (not used when `key` is `None`).
    pub crl: CaCrlConfig,
    /// `ocsp_signer = "ca"`: the CA certificate itself signs responses.
    pub ocsp_signer_is_ca: bool,
    /// Pre-sign answers for every registered certificate.
    pub presign: bool,
    /// `ldap_dn` as configured (`None`: from the CA certificate's subject).
    pub ldap_dn: Option<String>,
    /// The signer that takes over at a set instant (`next_ocsp_cert`, `next_ocsp_key`,
    /// `rollover_at`).
    pub next_ocsp: Option<NextOcspConfig>,
    /// Record revocations of serials never registered (else refuse them).
    pub accept_unregistered_revocations: bool,
}

/// `next_ocsp_cert`, `next_ocsp_key` and `rollover_at` of a `[[ca]]`, validated.
#[derive(Debug, Clone)]
pub struct NextOcspConfig {
    /// The next OCSP signer certificate file.
    pub cert: PathBuf,
    /// Its key (file or PKCS#11 URI).
    pub key: KeyRef,
    /// From this instant, new answers are signed by it.
    pub rollover_at: crate::model::UnixTime,
}

/// `next_ocsp_cert`, `next_ocsp_key`, `rollover_at`: all three or none.
fn next_ocsp(
    c: &RawCa,
    table: &str,
    ctx: &Ctx<'_>,
    pkcs11: Option<&Pkcs11Settings>,
) -> Result<Option<NextOcspConfig>, Error> {
    match (&c.next_ocsp_cert, &c.next_ocsp_key, &c.rollover_at) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(at)) => {
            let key = KeyRef::parse(key, ctx.dir)
                .map_err(|e| ctx.invalid(table, "next_ocsp_key", e.to_string()))?;
            if key.is_pkcs11() && pkcs11.is_none() {
                return Err(ctx.invalid(
                    table,
                    "next_ocsp_key",
                    "a pkcs11: URI needs a [pkcs11] table (module, pin_file)".into(),
                ));
            }
            let rollover_at =
                crate::model::UnixTime::parse_rfc3339(at.trim()).ok_or_else(|| {
                    ctx.invalid(
                        table,
                        "rollover_at",
                        format!("{at:?} is not an RFC 3339 time like \"2027-01-15T00:00:00Z\""),
                    )
                })?;
            Ok(Some(NextOcspConfig {
                cert: ctx.resolve(cert),
                key,
                rollover_at,
            }))
        }
        _ => Err(ctx.invalid(
            table,
            if c.next_ocsp_cert.is_none() {
                "next_ocsp_cert"
            } else if c.next_ocsp_key.is_none() {
                "next_ocsp_key"
            } else {
                "rollover_at"
            },
            "next_ocsp_cert, next_ocsp_key and rollover_at go together".into(),
        )),
    }
}

/// Checks a policy value, saying what is wrong in the enum's own words.
type PolicyCheck = fn(String) -> Result<(), String>;

/// The keys of a `[[ca]]` whose values deserialize into a policy enum, with their check.
const POLICY_KEYS: [(&str, PolicyCheck); 4] = [
    ("nonce", |v| NoncePolicy::try_from(v).map(drop)),
    ("unknown_serial", |v| {
        UnknownSerialPolicy::try_from(v).map(drop)
    }),
    ("crl_keep_expired", |v| KeepExpired::try_from(v).map(drop)),
    ("ocsp_signer", |v| OcspSignerPolicy::try_from(v).map(drop)),
];

/// The table name errors give for the `index`th (from 0) `[[ca]]` whose id is `id`.
fn table_name(index: usize, id: &str) -> String {
    format!("[[ca]] #{} (id {:?})", index + 1, id)
}

/// Deserializes the `index`th `[[ca]]` table. A refused policy value is reported with its table
/// and key, as every other invalid value.
pub(super) fn parse(index: usize, value: toml::Value, shown: &str) -> Result<RawCa, Error> {
    let id = value
        .get("id")
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let table = table_name(index, &id);
    let named = |key: &str, message: String| Error::Invalid {
        path: shown.to_owned(),
        table: table.clone(),
        key: key.to_owned(),
        message,
    };
    for (key, check) in POLICY_KEYS {
        if let Some(v) = value.get(key).and_then(toml::Value::as_str) {
            check(v.to_owned()).map_err(|m| named(key, m))?;
        }
    }
    value
        .try_into()
        .map_err(|e: toml::de::Error| Error::Syntax {
            path: shown.to_owned(),
            message: format!("{table}: {}", e.message().trim_end()),
        })
}

/// Checks every `[[ca]]` (at least one, ids unique). `public_url` is `[public]`'s (default
/// delta CRL URLs), `crl_backdate` `[crl] backdate`.
pub fn validate_all(
    raws: &[RawCa],
    ctx: &Ctx<'_>,
    public_url: &str,
    crl_backdate: i64,
    pkcs11: Option<&Pkcs11Settings>,
) -> Result<Vec<CaConfig>, Error> {
    let mut cas: Vec<CaConfig> = Vec::with_capacity(raws.len());
    for (i, c) in raws.iter().enumerate() {
        let table = table_name(i, &c.id);
        let id = CaId::new(&c.id).map_err(|e| ctx.invalid(&table, "id", e.to_string()))?;
        if cas.iter().any(|other| other.id == id) {
            return Err(ctx.invalid(&table, "id", format!("duplicate id {:?}", c.id)));
        }
        cas.push(validate(
            c,
            id,
            &table,
            ctx,
            public_url,
            crl_backdate,
            pkcs11,
        )?);
    }
    if cas.is_empty() {
        return Err(ctx.invalid(
            "[[ca]]",
            "id",
            "no CA configured: add at least one [[ca]] table".into(),
        ));
    }
    Ok(cas)
}

/// Checks one `[[ca]]`, whose `id` is checked already, named `table` in errors.
fn validate(
    c: &RawCa,
    id: CaId,
    table: &str,
    ctx: &Ctx<'_>,
    public_url: &str,
    crl_backdate: i64,
    pkcs11: Option<&Pkcs11Settings>,
) -> Result<CaConfig, Error> {
    let ocsp_validity = ctx.secs(table, "ocsp_validity", &c.ocsp_validity)?;
    if !(60..=366 * 86400).contains(&ocsp_validity) {
        return Err(ctx.invalid(
            table,
            "ocsp_validity",
            "must be between 1m and 366d (RFC 9919 suggests 8h to 10d)".into(),
        ));
    }
    let validity = ctx.secs(table, "crl_validity", &c.crl_validity)?;
    if !(60..=366 * 86400).contains(&validity) {
        return Err(ctx.invalid(
            table,
            "crl_validity",
            "must be between 1m and 366d (CA/B BR: at most 10d)".into(),
        ));
    }
    let delta_validity = ctx.secs(table, "delta_validity", &c.delta_validity)?;
    if !(60..=validity).contains(&delta_validity) {
        return Err(ctx.invalid(
            table,
            "delta_validity",
            "must be between 1m and crl_validity".into(),
        ));
    }
    let keep_expired = c.crl_keep_expired.unwrap_or(KeepExpired::For(validity));
    if crl_backdate >= delta_validity / 2 {
        return Err(ctx.invalid(
            table,
            "delta_validity",
            "must be more than twice [crl] backdate".into(),
        ));
    }
    let url = |key: &str, given: &Option<String>, default: String| match given
        .as_deref()
        .map(str::trim)
    {
        None => Ok(Some(default)),
        Some("") => Ok(None),
        Some(u) if u.is_ascii() && u.contains(':') && !u.contains(char::is_whitespace) => {
            Ok(Some(u.to_owned()))
        }
        Some(u) => Err(ctx.invalid(
            table,
            key,
            format!("{u:?} is not a URI (ASCII, with a scheme, no spaces)"),
        )),
    };
    let idp_urls = match (&c.crl_url, &c.crl_urls) {
        (Some(_), Some(_)) => {
            return Err(ctx.invalid(
                table,
                "crl_urls",
                "give crl_urls or crl_url (its one-URL shorthand), not both".into(),
            ));
        }
        (Some(one), None) => Some(
            url("crl_url", &Some(one.clone()), String::new())?
                .into_iter()
                .collect(),
        ),
        (None, Some(list)) => Some(
            list.iter()
                .map(|u| {
                    url("crl_urls", &Some(u.clone()), String::new())?.ok_or_else(|| {
                        ctx.invalid(table, "crl_urls", "an empty URL (use [] for none)".into())
                    })
                })
                .collect::<Result<Vec<String>, _>>()?,
        ),
        (None, None) => None,
    };
    let delta_url = url(
        "delta_crl_url",
        &c.delta_crl_url,
        format!("{public_url}/crl/{}-delta.crl", c.id),
    )?
    .ok_or_else(|| {
        ctx.invalid(
            table,
            "delta_crl_url",
            "must not be empty (use delta_schedule = \"\" for no delta CRLs)".into(),
        )
    })?;
    let key = match &c.key {
        Some(k) => {
            Some(KeyRef::parse(k, ctx.dir).map_err(|e| ctx.invalid(table, "key", e.to_string()))?)
        }
        None => None,
    };
    let schedule = match (c.crl_schedule.as_deref().map(str::trim), &key) {
        (Some(""), _) | (None, None) => None,
        (None, Some(_)) => Some(defaults::crl_schedule()),
        (Some(s), Some(_)) => Some(s.to_owned()),
        (Some(_), None) => {
            return Err(ctx.invalid(
                table,
                "key",
                "the CA key is needed to build CRLs (crl_schedule is set); a responder \
                 that builds no CRL leaves out crl_schedule"
                    .into(),
            ));
        }
    };
    // No CRL schedule: this node builds no CRL, and needs no CA key.
    let key = schedule.as_ref().and(key);
    let ocsp_key = KeyRef::parse(&c.ocsp_key, ctx.dir)
        .map_err(|e| ctx.invalid(table, "ocsp_key", e.to_string()))?;
    if (key.as_ref().is_some_and(KeyRef::is_pkcs11) || ocsp_key.is_pkcs11()) && pkcs11.is_none() {
        return Err(ctx.invalid(
            table,
            if ocsp_key.is_pkcs11() {
                "ocsp_key"
            } else {
                "key"
            },
            "a pkcs11: URI needs a [pkcs11] table (module, pin_file)".into(),
        ));
    }
    let crl_cfg = CaCrlConfig {
        schedule: schedule.clone().unwrap_or_default(),
        delta_schedule: Some(c.delta_schedule.trim().to_owned()).filter(|s| !s.is_empty()),
        validity,
        delta_validity,
        keep_expired,
        publish_delta_on_revoke: c.publish_delta_on_revoke,
        delta_debounce: std::time::Duration::from_secs(
            ctx.secs(table, "delta_debounce", &c.delta_debounce)?.max(0) as u64,
        ),
        idp_urls,
        delta_url,
    };
    for (key, expr) in [
        ("crl_schedule", schedule.as_ref()),
        ("delta_schedule", crl_cfg.delta_schedule.as_ref()),
    ] {
        if let Some(expr) = expr {
            super::check_cron(expr).map_err(|m| ctx.invalid(table, key, m))?;
        }
    }
    let next_ocsp = next_ocsp(c, table, ctx, pkcs11)?;
    for (key, path) in [
        ("key", c.key.as_deref()),
        ("ocsp_key", Some(&*c.ocsp_key)),
        ("next_ocsp_key", c.next_ocsp_key.as_deref()),
    ] {
        // A pkcs11: URI names no file.
        let Some(path) = path.filter(|p| !p.starts_with("pkcs11:")) else {
            continue;
        };
        let path = ctx.resolve(path);
        if path.exists() {
            ctx.secret_file(table, key, &path)?;
        }
    }
    let ldap_dn = match c.ldap_dn.as_deref().map(str::trim) {
        Some(dn) if !dn.contains('=') => {
            return Err(ctx.invalid(
                table,
                "ldap_dn",
                format!("{dn:?} is not a DN (RFC 4514, e.g. \"cn=AC X,o=Y,c=FR\")"),
            ));
        }
        dn => dn.map(str::to_owned),
    };
    Ok(CaConfig {
        id,
        cert: ctx.resolve(&c.cert),
        key,
        ocsp_cert: ctx.resolve(&c.ocsp_cert),
        ocsp_key,
        ocsp_validity,
        nonce: c.nonce,
        unknown_serial: c.unknown_serial,
        crl: crl_cfg,
        ocsp_signer_is_ca: c.ocsp_signer == OcspSignerPolicy::Ca,
        presign: c.presign,
        ldap_dn,
        next_ocsp,
        accept_unregistered_revocations: c.accept_unregistered_revocations,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::RawConfig;

    #[test]
    fn invalid_values_name_table_and_key() {
        let text = "[[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\nocsp_validity = \"soon\"\n";
        let raw = RawConfig::parse(text, "t.toml", std::iter::empty()).expect("parses");
        let err = raw
            .validate("t.toml", Path::new("/nonexistent"))
            .expect_err("bad duration");
        let msg = err.to_string();
        assert!(
            msg.contains("[[ca]] #1") && msg.contains("ocsp_validity"),
            "{msg}"
        );

        let text = "[[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n\
                    [[ca]]\nid = \"a\"\ncert = \"c\"\nkey = \"k\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n";
        let raw = RawConfig::parse(text, "t.toml", std::iter::empty()).expect("parses");
        let msg = raw
            .validate("t.toml", Path::new("/nonexistent"))
            .expect_err("dup")
            .to_string();
        assert!(msg.contains("#2") && msg.contains("duplicate"), "{msg}");
    }

    #[test]
    fn policy_values_name_table_and_key() {
        for (line, key, expected) in [
            (
                "nonce = \"always\"",
                "nonce",
                "\"always\": expected \"echo\" or \"ignore\"",
            ),
            (
                "unknown_serial = \"good\"",
                "unknown_serial",
                "\"good\": expected \"unknown\" or \"revoked\"",
            ),
            (
                "ocsp_signer = \"self\"",
                "ocsp_signer",
                "\"self\": expected \"delegated\" or \"ca\"",
            ),
            (
                "crl_keep_expired = \"long\"",
                "crl_keep_expired",
                "\"long\" is not a duration like \"1d\", \"6h\", \"30s\"",
            ),
        ] {
            let text = format!(
                "[[ca]]\nid = \"a\"\ncert = \"c\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n{line}\n"
            );
            let msg = RawConfig::parse(&text, "t.toml", std::iter::empty())
                .expect_err(line)
                .to_string();
            assert!(
                msg.starts_with(&format!(
                    "t.toml: [[ca]] #1 (id \"a\"), key \"{key}\": {expected}"
                )),
                "{msg}"
            );
        }
        let text = "[[ca]]\nid = \"a\"\ncert = \"c\"\nocsp_cert = \"oc\"\nocsp_key = \"ok\"\n\
                    nonce = \"ignore\"\nunknown_serial = \"revoked\"\ncrl_keep_expired = \"forever\"\n";
        let raw = RawConfig::parse(text, "t.toml", std::iter::empty()).expect("parses");
        assert_eq!(raw.cas[0].nonce, crate::model::NoncePolicy::Ignore);
        assert_eq!(
            raw.cas[0].unknown_serial,
            crate::model::UnknownSerialPolicy::Revoked
        );
        assert_eq!(
            raw.cas[0].crl_keep_expired,
            Some(crate::model::KeepExpired::Forever)
        );
    }
}
