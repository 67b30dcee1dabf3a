//! The accounts service: every operation on institutions, users, certificates and sessions.

use crate::password::{Hasher, check_strength};
use crate::refusals::{Kind, Refusals};
use crate::session::{Session, SessionEnd, SessionState};
use crate::totp;
use crate::{AccountsError, Policy, Role, Transition, UserState};
use hmac::{Hmac, Mac};
use kura_crypto::SecretKey;
use kura_db::Db;
use kura_ledger::entry::{Actor, AuditEvent, ENTRY_VERSION, Entry};
use kura_ledger::log::Log;
use kura_ledger::store::{SqlStore, append_in};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

mod certificates;
mod sessions;
mod signin;
mod users;

type Result<T> = std::result::Result<T, AccountsError>;

/// The time accounts run on: the system clock plus an offset that tests can advance (to
/// expire sessions and locks without waiting). Unix seconds.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        let sys = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        sys + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone) forward. Test builds only (the `testing` feature).
    #[cfg(any(test, feature = "testing"))]
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// A user as the store holds them (no secrets).
#[derive(Clone, Debug, Serialize)]
pub struct User {
    /// Login ID.
    pub login: String,
    /// Institution code.
    pub institution: String,
    /// Role.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// Lifecycle state.
    pub state: UserState,
    /// Whether the account is locked now.
    pub locked: bool,
    /// Failed logins since the last success.
    pub failed_logins: i64,
    /// Whether a second factor is enrolled.
    pub totp: bool,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last complete sign-in (Unix seconds).
    pub last_login_at: Option<i64>,
}

/// A new user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Login ID: 2–64 of a–z, 0–9, `.`, `_`, `-`, starting with a letter or digit.
    pub login: String,
    /// Institution code (must exist).
    pub institution: String,
    /// Role.
    pub role: Role,
    /// Display name.
    pub name: String,
}

/// A certificate revoked by [`Accounts::revoke_certificates`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCert {
    /// `sha256:…` of its DER encoding.
    pub fingerprint: String,
    /// Its serial number (hex), which the TLS layer's revocation set goes by.
    pub serial: String,
}

/// A certificate Kura's CA issued.
#[derive(Clone, Debug, Serialize)]
pub struct CertRecord {
    /// `sha256:…` of the DER.
    pub fingerprint: String,
    /// Serial, hex.
    pub serial: String,
    /// `user` or `institution`.
    pub kind: String,
    /// The user, for user certificates.
    pub login: Option<String>,
    /// The institution.
    pub institution: String,
    /// Issued (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds).
    pub not_after: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// The password was right; what comes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordOk {
    /// The user has a second factor (else they must enrol one now).
    pub enrolled: bool,
    /// The password was set by someone else (a reset): the user must choose a new one once the
    /// second factor is done.
    pub must_change: bool,
}

/// Who asks for a password reset (HX-6). The rule of who may reset whom is
/// [`Resetter::may_reset`], and only there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resetter {
    /// An operator at the server's console (`kura user reset-password`): anyone.
    Console,
    /// A signed-in user of the portal or the operators' listener.
    User {
        /// Their login.
        login: String,
        /// Their role.
        role: Role,
        /// Their institution.
        institution: String,
    },
}

impl Resetter {
    /// Whether this resetter may set `target`'s password: an operator anyone but themselves (on
    /// the operators' listener, which the route table enforces); a custodian only the data
    /// roles of their own institution — researchers, reviewers and providers — never
    /// operators, auditors, custodians or themselves; nobody else anyone.
    pub fn may_reset(&self, target: &User) -> bool {
        match self {
            Resetter::Console => true,
            Resetter::User { login, .. } if *login == target.login => false,
            Resetter::User { role: Role::Operator, .. } => true,
            Resetter::User { role: Role::Custodian, institution, .. } => {
                *institution == target.institution && matches!(target.role, Role::Researcher | Role::Reviewer | Role::Provider)
            }
            Resetter::User { .. } => false,
        }
    }
}

/// A refused sign-in step. Every failure before a correct password with a matching client
/// certificate is [`LoginRefused::BadCredentials`] — unknown login, another user's login,
/// wrong password, a locked, suspended or disabled account — so the answer tells nothing about
/// which logins exist; its message names the lock as a possible cause, so a locked-out user is
/// still told plainly (HIC-U3). After the password the steps say exactly what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoginRefused {
    /// Wrong login or password, or any other failure before the password was proven.
    #[error(
        "IDまたはパスワードが違います（ログインの失敗が続くとアカウントはロックされます。ロックの解除は運用管理者に依頼してください）/ wrong login or password (after repeated failures the account locks: ask the operator to unlock it)"
    )]
    BadCredentials,
    /// Wrong second-factor code.
    #[error("確認コードが違うか、既に使われています / the code is wrong or was already used")]
    BadCode,
    /// The account is locked.
    #[error(
        "アカウントはロックされています（ログイン失敗が続いたため）。運用管理者に解除を依頼してください / the account is locked after repeated failed sign-ins: ask the operator to unlock it{}",
        until.map(|t| format!(" (or wait until {})", kura_ledger::entry::format_seconds(t))).unwrap_or_default()
    )]
    Locked {
        /// When the lock ends by itself, if it does.
        until: Option<i64>,
    },
    /// The account is not active (told only after the right password with a matching
    /// certificate).
    #[error(
        "このアカウントは利用できません（{0}）。運用管理者に連絡してください / this account cannot sign in ({0}): contact the operator"
    )]
    NotActive(&'static str),
    /// Too many sign-ins at once.
    #[error("混み合っています。少し待って再度お試しください / too many sign-ins at once: try again in a moment")]
    Busy,
    /// This account signed in too often in a short time (told only after the right password).
    #[error(
        "短時間にログインが繰り返されています。数分待ってから再度お試しください / this account signed in too often in a short time: try again in a few minutes"
    )]
    TooFrequent,
    /// Something failed inside; nothing was changed.
    #[error(transparent)]
    Error(#[from] AccountsError),
}

impl From<kura_db::DbError> for LoginRefused {
    fn from(e: kura_db::DbError) -> LoginRefused {
        LoginRefused::Error(e.into())
    }
}

impl From<kura_crypto::CryptoError> for LoginRefused {
    fn from(e: kura_crypto::CryptoError) -> LoginRefused {
        LoginRefused::Error(e.into())
    }
}

impl From<sqlx::Error> for LoginRefused {
    fn from(e: sqlx::Error) -> LoginRefused {
        LoginRefused::Error(e.into())
    }
}

/// A TOTP enrolment in progress.
#[derive(Clone, Debug)]
pub struct Enrolment {
    /// The secret, base32, for typing in by hand.
    pub secret_base32: String,
    /// The `otpauth://` URI.
    pub uri: String,
    /// The URI as a QR code (SVG, rendered locally).
    pub qr_svg: String,
}

/// One line of the periodic account inventory (HX-9).
#[derive(Clone, Debug, Serialize)]
pub struct InventoryRow {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Unrevoked, unexpired certificates issued to the user.
    pub certificates: i64,
    /// Days since the last sign-in (or since creation, if never).
    pub idle_days: i64,
    /// What an operator should look at: `never_signed_in`, `idle_90_days`, `no_second_factor`,
    /// `locked`, `no_certificate`.
    pub flags: Vec<&'static str>,
}

/// The identity on whose behalf an operation runs, for the audit entry.
#[derive(Clone, Debug, Default)]
pub struct Who {
    /// User, institution, certificate.
    pub actor: Actor,
    /// Request identifier.
    pub request: String,
}

impl Who {
    /// An operator at the server's console (the `kura` command line).
    pub fn console() -> Who {
        let user = std::env::var("USER").unwrap_or_else(|_| "console".into());
        Who { actor: Actor { user: format!("console:{user}"), institution: String::new(), cert: String::new() }, request: String::new() }
    }
}

struct Inner {
    db: Db,
    log: Log<SqlStore>,
    key: SecretKey,
    policy: Policy,
    hasher: Hasher,
    clock: Clock,
    /// A hash to verify against when the login does not exist, so timing does not tell.
    dummy_hash: String,
    /// Sessions read recently: the hot path of every authenticated request.
    sessions: SessionCache,
    /// Refusals being counted rather than written one by one.
    refusals: std::sync::Mutex<Refusals>,
    /// When each user last passed the first factor (a rate limit).
    first_factors: std::sync::Mutex<std::collections::HashMap<String, std::collections::VecDeque<i64>>>,
}

/// One sign-in attempt taken from an account's budget before any secret is checked.
enum Attempt {
    /// Counted: this is failure number `n` if the secret turns out wrong.
    Counted(i64),
    /// The account is locked (until then; `None` if it has no end, or the login is gone).
    Locked(Option<i64>),
}

/// Sessions recently read from the store, so that a request does not read them again. An
/// entry serves only while fresh: read within the same second of the accounts clock, and no
/// change committed through this service since (every commit bumps `generation`). Changes
/// made by other processes sharing the store (the CLI, other nodes) so take effect within a
/// second; changes made here, at once.
#[derive(Default)]
struct SessionCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedSession>>,
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
struct CachedSession {
    session: Session,
    usable: bool,
    read_at: i64,
    generation: u64,
}

/// Times one user may pass the first factor within [`FIRST_FACTOR_WINDOW`].
pub const FIRST_FACTORS_PER_WINDOW: usize = 10;
/// Seconds of the first-factor window.
pub const FIRST_FACTOR_WINDOW: i64 = 300;

/// At most this many sessions are cached; beyond, the cache starts again empty.
const SESSION_CACHE_MAX: usize = 65_536;

/// The idle timer is written to the store at most this often per session (seconds): an idle
/// timeout of minutes is checked to within this.
const TOUCH_EVERY: i64 = 10;

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CachedSession>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, id: &str, now: i64) -> Option<CachedSession> {
        let generation = self.generation.load(Ordering::Acquire);
        self.lock().get(id).filter(|c| c.read_at == now && c.generation == generation).cloned()
    }

    fn put(&self, entry: CachedSession) {
        let mut map = self.lock();
        if map.len() >= SESSION_CACHE_MAX {
            map.clear();
        }
        map.insert(entry.session.id.clone(), entry);
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The accounts service. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

fn valid_login(login: &str) -> Result<()> {
    let ok = (2..=64).contains(&login.len())
        && login.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && login.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(AccountsError::Invalid {
            field: "login",
            detail: format!("'{}': use 2-64 of a-z 0-9 . _ - starting with a letter or digit", login.escape_debug()),
        })
    }
}

fn valid_code(code: &str) -> Result<()> {
    if (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(AccountsError::Invalid { field: "institution", detail: format!("'{}': use 1-32 of A-Z a-z 0-9 . _ -", code.escape_debug()) })
    }
}

/// Runs a sign-in step on its own task, so that it finishes — its attempt counted and given
/// back, its entries written — even if the request that asked for it goes away half-way (a
/// closed tab, a client time-out): a dropped request never leaves an attempt counted against a
/// user who typed the right password.
async fn detached<T: Send + 'static>(
    step: impl std::future::Future<Output = std::result::Result<T, LoginRefused>> + Send + 'static,
) -> std::result::Result<T, LoginRefused> {
    match tokio::spawn(step).await {
        Ok(r) => r,
        Err(e) => Err(LoginRefused::Error(AccountsError::Task(e))),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn random_token(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    kura_crypto::random_bytes(&mut b)?;
    Ok(hex::encode(b))
}

const USER_COLUMNS: &str = "login, institution, role, name, state, locked_until, failed_logins, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END AS totp, created_at, last_login_at";

impl Accounts {
    /// The service over the store of record (migrated), the audit log, the accounts key (seals
    /// TOTP secrets, keys recovery-code MACs) and a policy.
    pub async fn new(db: Db, log: Log<SqlStore>, key: SecretKey, policy: Policy, hasher: Hasher, clock: Clock) -> Result<Accounts> {
        let dummy_hash = hasher.hash("kura-dummy-password-for-timing").await?;
        Ok(Accounts {
            inner: Arc::new(Inner {
                db,
                log,
                key,
                policy,
                hasher,
                clock,
                dummy_hash,
                sessions: SessionCache::default(),
                refusals: std::sync::Mutex::new(Refusals::default()),
                first_factors: std::sync::Mutex::new(Default::default()),
            }),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The store of record.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The audit log.
    pub fn log(&self) -> &Log<SqlStore> {
        &self.inner.log
    }

    fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// Appends an audit entry inside `conn`'s transaction.
    async fn record(
        &self,
        conn: &mut AnyConnection,
        who: &Who,
        action: &str,
        object: &str,
        outcome: &str,
        detail: Option<String>,
    ) -> Result<()> {
        let e = Entry::Audit(AuditEvent {
            v: ENTRY_VERSION,
            time: self.inner.log.now(),
            actor: who.actor.clone(),
            action: action.into(),
            object: object.into(),
            object_hash: None,
            outcome: outcome.into(),
            request: who.request.clone(),
            detail,
        });
        append_in(conn, &e.encode()?).await?;
        Ok(())
    }

    /// Records an event that changes nothing else (a refused request, say), in its own
    /// transaction.
    pub async fn record_event(&self, who: &Who, action: &str, object: &str, outcome: &str, detail: Option<String>) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        self.record(&mut tx, who, action, object, outcome, detail).await?;
        tx.commit().await?;
        self.inner.log.sync().await?;
        Ok(())
    }

    /// Records a refusal that a client can cause at will (a failed CSRF check, a route the
    /// role may not use, a sign-in on a locked account…) without letting it flood the ledger:
    /// the first of its kind is written now, repeats are counted and summarised once per
    /// [`Policy::refusal_window`](crate::Policy::refusal_window) ([`crate::refusals`]).
    pub async fn record_refusal(&self, who: &Who, action: &str, object: &str, detail: &str) -> Result<()> {
        let kind = Kind { action: action.into(), object: object.into(), cert: who.actor.cert.clone(), user: who.actor.user.clone() };
        let window = (self.inner.policy.refusal_window.as_secs() as i64).max(1);
        let (write, closed) = self.inner.refusals.lock().unwrap_or_else(|e| e.into_inner()).note(kind, self.now(), window);
        if write.is_none() && closed.is_none() {
            return Ok(());
        }
        let mut tx = self.inner.db.begin_write().await?;
        if let Some(s) = closed {
            self.record_summary(&mut tx, who, &s).await?;
        }
        if let Some(k) = write {
            self.record(&mut tx, who, &k.action, &k.object, "denied", Some(detail.to_string())).await?;
        }
        tx.commit().await?;
        self.inner.log.sync().await?;
        Ok(())
    }

    async fn record_summary(&self, conn: &mut AnyConnection, who: &Who, s: &crate::refusals::Summary) -> Result<()> {
        let actor = Who {
            actor: Actor { user: s.kind.user.clone(), institution: String::new(), cert: s.kind.cert.clone() },
            request: who.request.clone(),
        };
        let detail = format!("{} more refused since {}", s.repeats, kura_ledger::entry::format_seconds(s.since));
        self.record(conn, &actor, &s.kind.action, &s.kind.object, "denied", Some(detail)).await
    }

    /// Writes the summaries of refusal windows that have closed (all of them with `all`, when
    /// the server stops); returns how many were written.
    pub async fn flush_refusals(&self, all: bool) -> Result<usize> {
        let window = if all { 0 } else { (self.inner.policy.refusal_window.as_secs() as i64).max(1) };
        let due = self.inner.refusals.lock().unwrap_or_else(|e| e.into_inner()).close_due(self.now(), window);
        if due.is_empty() {
            return Ok(0);
        }
        let mut tx = self.inner.db.begin_write().await?;
        for s in &due {
            self.record_summary(&mut tx, &Who::default(), s).await?;
        }
        tx.commit().await?;
        self.inner.log.sync().await?;
        Ok(due.len())
    }

    async fn committed(&self, tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
        tx.commit().await?;
        self.inner.sessions.changed();
        self.inner.log.sync().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_names() {
        assert_eq!(kura_ledger::entry::format_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(kura_ledger::entry::format_seconds(1_795_000_000), "2026-11-18T11:06:40Z");
        assert!(valid_login("tanaka.h").is_ok());
        for bad in ["", "a", "Tanaka", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(valid_login(bad).is_err(), "{bad}");
        }
        assert!(valid_code("1310000001").is_ok());
        assert!(valid_code("a'b").is_err());
    }
}
