//! Keys inside a PKCS#11 token (an HSM, or SoftHSM2 for tests), through the `cryptoki` crate.
//!
//! What this file owns:
//! - one [`Module`] per module path and process: `C_Initialize` once (SoftHSM allows one per
//!   process), `C_Finalize` + `C_Initialize` again only when the token has become unreachable and
//!   every session is closed (PKCS#11 v2.40 §5.4 allows it; SoftHSM 2.6 forgets a removed token
//!   until then);
//! - a pool of sessions per token, at most `[pkcs11] sessions` of them, each used by one thread at
//!   a time (PKCS#11 sessions are not shared by threads); a new session logs in
//!   (`CKR_USER_ALREADY_LOGGED_IN` is success: the login is per token, not per session);
//! - a session that fails is closed, not reused; when a new session cannot be opened or the
//!   token is not found, the module is re-initialised (at most once a second) and the signature
//!   fails with [`Error::Unavailable`], which the OCSP responder answers with `tryLater`;
//! - signing in one call, as SoftHSM 2.6 needs (multi-part RSA fails with `CKR_GENERAL_ERROR`,
//!   there is no `CKM_ECDSA_SHA256`): `CKM_SHA256_RSA_PKCS` / `CKM_SHA256_RSA_PKCS_PSS` over the
//!   TBS in one `C_Sign`, and for ECDSA the digest computed here, then `CKM_ECDSA`, whose raw
//!   r‖s is re-encoded as a DER ECDSA-Sig-Value (RFC 3279 §2.2.3);
//! - the public key read from the token (CKA_MODULUS/CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS and
//!   CKA_EC_POINT of the matching public key object) and written as a SubjectPublicKeyInfo, which
//!   the seam compares with the certificate's.
//!
//! The PIN is held as a `secrecy` string; no message, log line or `Debug` output contains it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use super::uri::Pkcs11Uri;
use super::{Error, KeyKind};

/// How long a signature waits for a free session before giving up (`tryLater`).
const CHECKOUT_WAIT: Duration = Duration::from_secs(5);
/// Re-initialisations of the module are at least this far apart.
const RESET_EVERY: Duration = Duration::from_secs(1);

/// DER of the namedCurve OIDs in CKA_EC_PARAMS (RFC 5480 §2.1.1.1).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// `CKR_PIN_INCORRECT` for `PinIncorrect`: the names operators find in their HSM's manual.
pub fn ckr_name(rv: &RvError) -> String {
    let camel = format!("{rv:?}");
    let mut s = String::from("CKR_");
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}

fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{} in {function:?}", ckr_name(rv)),
        other => other.to_string(),
    }
}

/// What `[pkcs11]` says, once the PIN is read.
#[derive(Clone)]
pub struct Pkcs11Settings {
    /// The module (shared library) path.
    pub module: PathBuf,
    /// The user PIN.
    pub pin: AuthPin,
    /// Sessions per token.
    pub sessions: usize,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("pin", &"(hidden)")
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// A loaded PKCS#11 module: the process's one context for this library.
pub struct Module {
    path: PathBuf,
    pin: AuthPin,
    sessions: usize,
    state: RwLock<State>,
    last_reset: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

struct State {
    ctx: Option<Pkcs11>,
    generation: u64,
    pools: Mutex<HashMap<String, Arc<TokenPool>>>,
}

/// The sessions of one token.
struct TokenPool {
    slot: Slot,
    inner: Mutex<PoolInner>,
    freed: Condvar,
}

struct PoolInner {
    idle: Vec<PooledSession>,
    open: usize,
}

/// A session and the key handles found through it (handles are valid per session's token).
struct PooledSession {
    session: Session,
    handles: HashMap<String, ObjectHandle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only follows a panic in a PKCS#11 call; the pool's counters stay consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn init(path: &Path) -> Result<Pkcs11, Error> {
    let module_err = |reason: String| Error::Module {
        module: path.display().to_string(),
        reason,
    };
    let ctx = Pkcs11::new(path).map_err(|e| module_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(e) => Err(module_err(describe(&e))),
    }
}

fn modules() -> &'static Mutex<Vec<Arc<Module>>> {
    static MODULES: OnceLock<Mutex<Vec<Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(Vec::new()))
}

impl Module {
    /// The process's module for `settings.module`, loaded and initialised on first use.
    pub fn open(settings: &Pkcs11Settings) -> Result<Arc<Module>, Error> {
        let path = settings
            .module
            .canonicalize()
            .unwrap_or_else(|_| settings.module.clone());
        let mut all = lock(modules());
        if let Some(m) = all.iter().find(|m| m.path == path) {
            return Ok(Arc::clone(m));
        }
        let ctx = init(&path)?;
        let module = Arc::new(Module {
            path,
            pin: settings.pin.clone(),
            sessions: settings.sessions.max(1),
            state: RwLock::new(State {
                ctx: Some(ctx),
                generation: 0,
                pools: Mutex::new(HashMap::new()),
            }),
            last_reset: Mutex::new(None),
        });
        all.push(Arc::clone(&module));
        Ok(module)
    }

    /// Sessions per token.
    pub fn sessions(&self) -> usize {
        self.sessions
    }

    fn find_slot(&self, ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, Error> {
        let slots = ctx.get_slots_with_token().map_err(|e| Error::Token {
            uri: uri.to_string(),
            reason: describe(&e),
        })?;
        let mut reasons = Vec::new();
        for slot in slots {
            if uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            let info = match ctx.get_token_info(slot) {
                Ok(i) => i,
                Err(e) => {
                    reasons.push(format!("slot {}: {}", slot.id(), describe(&e)));
                    continue;
                }
            };
            let fits = |want: &Option<String>, have: &str| {
                want.as_deref()
                    .is_none_or(|w| w.trim_end() == have.trim_end())
            };
            if fits(&uri.token, info.label())
                && fits(&uri.manufacturer, info.manufacturer_id())
                && fits(&uri.serial, info.serial_number())
                && fits(&uri.model, info.model())
            {
                return Ok(slot);
            }
        }
        Err(Error::Token {
            uri: uri.to_string(),
            reason: if reasons.is_empty() {
                "no token with these attributes".into()
            } else {
                reasons.join("; ")
            },
        })
    }

    fn pool(&self, state: &State, ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Arc<TokenPool>, Error> {
        let key = token_key(uri);
        if let Some(p) = lock(&state.pools).get(&key) {
            return Ok(Arc::clone(p));
        }
        let slot = self.find_slot(ctx, uri)?;
        let pool = Arc::new(TokenPool {
            slot,
            inner: Mutex::new(PoolInner {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        });
        Ok(Arc::clone(lock(&state.pools).entry(key).or_insert(pool)))
    }

    fn login(&self, session: &Session, uri: &Pkcs11Uri) -> Result<(), Error> {
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(Error::Login {
                token: uri.token.clone().unwrap_or_else(|| uri.to_string()),
                reason: describe(&e),
            }),
        }
    }

    fn checkout(
        &self,
        ctx: &Pkcs11,
        pool: &TokenPool,
        uri: &Pkcs11Uri,
    ) -> Result<PooledSession, Error> {
        let deadline = Instant::now() + CHECKOUT_WAIT;
        let mut inner = lock(&pool.inner);
        loop {
            if let Some(s) = inner.idle.pop() {
                return Ok(s);
            }
            if inner.open < self.sessions {
                inner.open += 1;
                drop(inner);
                let opened = ctx
                    .open_ro_session(pool.slot)
                    .map_err(|e| Error::Token {
                        uri: uri.to_string(),
                        reason: describe(&e),
                    })
                    .and_then(|session| {
                        self.login(&session, uri)?;
                        Ok(PooledSession {
                            session,
                            handles: HashMap::new(),
                        })
                    });
                if opened.is_err() {
                    pool.discard();
                }
                return opened;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Unavailable(format!(
                    "no free PKCS#11 session on {uri} after {CHECKOUT_WAIT:?} ({} in use)",
                    self.sessions
                )));
            }
            inner = pool
                .freed
                .wait_timeout(inner, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Runs `f` on a session of the token `uri` names. A failure closes that session; a token
    /// that cannot be reached re-initialises the module (rate-limited).
    fn with_session<T>(
        &self,
        uri: &Pkcs11Uri,
        mut f: impl FnMut(&mut PooledSession) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let failed_generation;
        let error;
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let Some(ctx) = state.ctx.as_ref() else {
                let generation = state.generation;
                drop(state);
                self.reset(generation);
                return Err(Error::Unavailable(format!(
                    "PKCS#11 module {} is being re-initialised",
                    self.path.display()
                )));
            };
            let attempt = self.pool(&state, ctx, uri).and_then(|pool| {
                let mut session = self.checkout(ctx, &pool, uri)?;
                match f(&mut session) {
                    Ok(v) => {
                        pool.checkin(session);
                        Ok(v)
                    }
                    Err(e) => {
                        // This session may be dead; so may its idle siblings (same token).
                        drop(session);
                        pool.discard();
                        pool.drop_idle();
                        Err(e)
                    }
                }
            });
            match attempt {
                Ok(v) => return Ok(v),
                Err(e @ (Error::Login { .. } | Error::Unavailable(_))) => return Err(e),
                Err(e) => {
                    failed_generation = state.generation;
                    error = e;
                }
            }
        }
        // The read lock is released: a token error leads to a fresh start of the module.
        self.reset(failed_generation);
        Err(error)
    }

    /// Closes every session, `C_Finalize`, `C_Initialize` — unless another thread already did
    /// it for this generation or the last attempt is less than [`RESET_EVERY`] old.
    fn reset(&self, generation: u64) {
        {
            let mut last = lock(&self.last_reset);
            if last.is_some_and(|t| t.elapsed() < RESET_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.generation != generation {
            return;
        }
        // Every session is idle (users hold the read lock): close them before C_Finalize, so
        // that no stale handle is closed later against the new context.
        lock(&state.pools).clear();
        if let Some(Err(e)) = state.ctx.take().map(Pkcs11::finalize) {
            tracing::warn!(module = %self.path.display(), error = %describe(&e), "C_Finalize failed");
        }
        state.generation += 1;
        match init(&self.path) {
            Ok(ctx) => {
                state.ctx = Some(ctx);
                tracing::warn!(module = %self.path.display(), "PKCS#11 module re-initialised after a token error");
            }
            Err(e) => tracing::error!(error = %e, "PKCS#11 module cannot be re-initialised"),
        }
    }
}

impl TokenPool {
    fn checkin(&self, s: PooledSession) {
        lock(&self.inner).idle.push(s);
        self.freed.notify_one();
    }

    /// One checked-out session is gone (closed on drop).
    fn discard(&self) {
        let mut inner = lock(&self.inner);
        inner.open = inner.open.saturating_sub(1);
        drop(inner);
        self.freed.notify_one();
    }

    fn drop_idle(&self) {
        let mut inner = lock(&self.inner);
        let n = inner.idle.len();
        inner.idle.clear();
        inner.open = inner.open.saturating_sub(n);
        drop(inner);
        self.freed.notify_all();
    }
}

fn token_key(uri: &Pkcs11Uri) -> String {
    let token_only = Pkcs11Uri {
        object: None,
        id: None,
        ..uri.clone()
    };
    token_only.to_string()
}

/// A private key in a token.
pub struct Pkcs11Signer {
    module: Arc<Module>,
    uri: Pkcs11Uri,
    object_key: String,
    kind: KeyKind,
    public_key_der: Vec<u8>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("uri", &self.uri)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn find_key(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, CkError> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    Ok(session.find_objects(&template)?.into_iter().next())
}

fn pkcs11_err(uri: &Pkcs11Uri, what: &str) -> impl Fn(CkError) -> Error {
    let uri = uri.to_string();
    let what = what.to_owned();
    move |e| Error::Token {
        uri: uri.clone(),
        reason: format!("{what}: {}", describe(&e)),
    }
}

/// Strips the DER OCTET STRING around CKA_EC_POINT when there is one (PKCS#11 v2.40 §2.3.3
/// says DER; some modules give the raw point).
fn ec_point_octets(v: &[u8]) -> &[u8] {
    match v {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => v,
    }
}

impl Pkcs11Signer {
    /// Finds the private key `uri` names, logging in if needed, and reads its public key.
    pub fn open(settings: &Pkcs11Settings, uri: Pkcs11Uri) -> Result<Pkcs11Signer, Error> {
        let module = Module::open(settings)?;
        let object_key = uri.to_string();
        let (kind, public_key_der) = module.with_session(&uri, |s| {
            let session = &s.session;
            let key = find_key(session, &uri, ObjectClass::PRIVATE_KEY)
                .map_err(pkcs11_err(&uri, "C_FindObjects"))?
                .ok_or_else(|| Error::KeyNotFound(uri.to_string()))?;
            let attrs = session
                .get_attributes(key, &[AttributeType::KeyType, AttributeType::Id])
                .map_err(pkcs11_err(&uri, "C_GetAttributeValue"))?;
            let mut key_type = None;
            let mut id = None;
            for a in attrs {
                match a {
                    Attribute::KeyType(t) => key_type = Some(t),
                    Attribute::Id(i) if !i.is_empty() => id = Some(i),
                    _ => {}
                }
            }
            let public = match key_type {
                Some(t) if t == KeyType::RSA => rsa_public(session, key, &uri)?,
                Some(t) if t == KeyType::EC => {
                    // CKA_EC_POINT lives on the public key object: same CKA_ID, else same label.
                    let pub_uri = Pkcs11Uri {
                        id: id.or_else(|| uri.id.clone()),
                        object: if uri.id.is_none() {
                            uri.object.clone()
                        } else {
                            None
                        },
                        ..uri.clone()
                    };
                    let pub_key = find_key(session, &pub_uri, ObjectClass::PUBLIC_KEY)
                        .map_err(pkcs11_err(&uri, "C_FindObjects"))?
                        .ok_or_else(|| {
                            Error::Unsupported(format!(
                                "{uri}: no public key object beside the EC private key \
                                 (CKA_EC_POINT is needed to check the certificate)"
                            ))
                        })?;
                    ec_public(session, pub_key, &uri)?
                }
                other => {
                    return Err(Error::Unsupported(format!(
                        "{uri}: key type {other:?} (RSA and EC P-256/P-384 are supported)"
                    )));
                }
            };
            s.handles.insert(object_key.clone(), key);
            Ok(public)
        })?;
        Ok(Pkcs11Signer {
            module,
            uri,
            object_key,
            kind,
            public_key_der,
        })
    }

    /// Signs in one `C_Sign` call (see the module documentation). Any PKCS#11 failure here is
    /// [`Error::Unavailable`]: the token cannot sign now.
    pub fn sign(&self, tbs: &[u8], pss: bool) -> Result<Vec<u8>, Error> {
        let (mechanism, data) = match self.kind {
            KeyKind::Rsa(_) if pss => (
                Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32u64.into(),
                }),
                tbs.to_vec(),
            ),
            KeyKind::Rsa(_) => (Mechanism::Sha256RsaPkcs, tbs.to_vec()),
            KeyKind::EcP256 => (Mechanism::Ecdsa, openssl::sha::sha256(tbs).to_vec()),
            KeyKind::EcP384 => (Mechanism::Ecdsa, openssl::sha::sha384(tbs).to_vec()),
        };
        let raw = self
            .module
            .with_session(&self.uri, |s| {
                let key = match s.handles.get(&self.object_key) {
                    Some(k) => *k,
                    None => {
                        let k = find_key(&s.session, &self.uri, ObjectClass::PRIVATE_KEY)
                            .map_err(pkcs11_err(&self.uri, "C_FindObjects"))?
                            .ok_or_else(|| Error::KeyNotFound(self.uri.to_string()))?;
                        s.handles.insert(self.object_key.clone(), k);
                        k
                    }
                };
                s.session
                    .sign(&mechanism, key, &data)
                    .map_err(pkcs11_err(&self.uri, "C_Sign"))
            })
            .map_err(|e| match e {
                Error::Unavailable(m) => Error::Unavailable(m),
                other => Error::Unavailable(other.to_string()),
            })?;
        match self.kind {
            KeyKind::Rsa(_) => Ok(raw),
            KeyKind::EcP256 | KeyKind::EcP384 => {
                // PKCS#11 v2.40 §2.3.1: the signature is r ‖ s, each half the length.
                if raw.is_empty() || raw.len() % 2 != 0 {
                    return Err(Error::Unavailable(format!(
                        "{}: CKM_ECDSA returned {} octets",
                        self.uri,
                        raw.len()
                    )));
                }
                let (r, s) = raw.split_at(raw.len() / 2);
                let sig = EcdsaSig::from_private_components(
                    BigNum::from_slice(r)?,
                    BigNum::from_slice(s)?,
                )?;
                Ok(sig.to_der()?)
            }
        }
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// Key type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The URI of the key.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }
}

fn rsa_public(
    session: &Session,
    key: ObjectHandle,
    uri: &Pkcs11Uri,
) -> Result<(KeyKind, Vec<u8>), Error> {
    let attrs = session
        .get_attributes(
            key,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(pkcs11_err(uri, "C_GetAttributeValue(CKA_MODULUS)"))?;
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    let (Some(n), Some(e)) = (n, e) else {
        return Err(Error::Unsupported(format!(
            "{uri}: the RSA key shows no CKA_MODULUS/CKA_PUBLIC_EXPONENT"
        )));
    };
    let rsa = Rsa::from_public_components(BigNum::from_slice(&n)?, BigNum::from_slice(&e)?)?;
    let bits = rsa.size() * 8;
    // RFC 3279 §2.3.1: rsaEncryption SubjectPublicKeyInfo.
    let spki = PKey::from_rsa(rsa)?.public_key_to_der()?;
    Ok((KeyKind::Rsa(bits), spki))
}

fn ec_public(
    session: &Session,
    key: ObjectHandle,
    uri: &Pkcs11Uri,
) -> Result<(KeyKind, Vec<u8>), Error> {
    let attrs = session
        .get_attributes(key, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(pkcs11_err(uri, "C_GetAttributeValue(CKA_EC_POINT)"))?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let (Some(params), Some(point)) = (params, point) else {
        return Err(Error::Unsupported(format!(
            "{uri}: the EC public key shows no CKA_EC_PARAMS/CKA_EC_POINT"
        )));
    };
    let (kind, nid) = match params.as_slice() {
        P256_OID => (KeyKind::EcP256, Nid::X9_62_PRIME256V1),
        P384_OID => (KeyKind::EcP384, Nid::SECP384R1),
        _ => {
            return Err(Error::Unsupported(format!(
                "{uri}: EC curve {} (P-256 and P-384 are supported)",
                hex::encode(&params)
            )));
        }
    };
    let group = EcGroup::from_curve_name(nid)?;
    let mut ctx = openssl::bn::BigNumContext::new()?;
    let point = EcPoint::from_bytes(&group, ec_point_octets(&point), &mut ctx)?;
    // RFC 5480 §2: id-ecPublicKey with the namedCurve.
    let spki = PKey::from_ec_key(EcKey::from_public_key(&group, &point)?)?.public_key_to_der()?;
    Ok((kind, spki))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names_are_the_manuals() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(&RvError::UserAlreadyLoggedIn),
            "CKR_USER_ALREADY_LOGGED_IN"
        );
    }

    #[test]
    fn ec_point_is_unwrapped_from_its_octet_string() {
        let raw = [0x04u8; 65];
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&raw);
        assert_eq!(ec_point_octets(&der), &raw[..]);
        assert_eq!(ec_point_octets(&raw), &raw[..]);
    }
}
