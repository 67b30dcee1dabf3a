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
        Err(e) => Err(LoginRefused::Error(AccountsError::Internal(format!("sign-in step: {e}")))),
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

const USER_COLUMNS: &str = "login, institution, role, name, state, locked_until, failed_logins, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END, created_at, last_login_at";

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

    // ---- institutions and users -------------------------------------------------------

    /// Adds an institution (or renames it, if the code exists).
    pub async fn add_institution(&self, who: &Who, code: &str, name: &str) -> Result<()> {
        valid_code(code)?;
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO institutions (code, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET name = excluded.name",
        )
        .bind(code)
        .bind(name)
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        self.record(&mut tx, who, "institution.add", code, "ok", None).await?;
        self.committed(tx).await
    }

    /// Whether an institution exists.
    pub async fn institution_exists(&self, code: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM institutions WHERE code = $1").bind(code).fetch_optional(self.inner.db.pool()).await?.is_some())
    }

    /// Creates a user. With a password (checked against the rules) the account is active at
    /// once; without one it is pending until a password is set and it is activated.
    pub async fn add_user(&self, who: &Who, new: &NewUser, password: Option<&str>) -> Result<User> {
        valid_login(&new.login)?;
        if !self.institution_exists(&new.institution).await? {
            return Err(AccountsError::NoInstitution(new.institution.clone()));
        }
        let hash = match password {
            Some(p) => {
                check_strength(p, self.inner.policy.min_password_len, &[&new.login, &new.name, &new.institution])
                    .map_err(AccountsError::WeakPassword)?;
                Some(self.inner.hasher.hash(p).await?)
            }
            None => None,
        };
        let state = if hash.is_some() { UserState::Active } else { UserState::Pending };
        let now = self.now();
        let mut tx = self.inner.db.begin_write().await?;
        if sqlx::query("SELECT 1 FROM users WHERE login = $1").bind(&new.login).fetch_optional(&mut *tx).await?.is_some() {
            return Err(AccountsError::Exists(new.login.clone()));
        }
        sqlx::query(
            "INSERT INTO users (login, institution, role, name, state, password_hash, password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&new.login)
        .bind(&new.institution)
        .bind(new.role.as_str())
        .bind(&new.name)
        .bind(state.as_str())
        .bind(hash.clone())
        .bind(hash.as_ref().map(|_| now))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(h) = &hash {
            sqlx::query("INSERT INTO password_history (login, hash, set_at) VALUES ($1, $2, $3)")
                .bind(&new.login)
                .bind(h)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        self.record(
            &mut tx,
            who,
            "user.create",
            &new.login,
            "ok",
            Some(format!("role={} institution={} state={}", new.role, new.institution, state.as_str())),
        )
        .await?;
        self.committed(tx).await?;
        self.user(&new.login).await
    }

    fn user_from_row(&self, r: &sqlx::any::AnyRow) -> Result<User> {
        let locked_until: Option<i64> = r.get(5);
        Ok(User {
            login: r.get(0),
            institution: r.get(1),
            role: r.get::<String, _>(2).parse()?,
            name: r.get(3),
            state: UserState::parse(&r.get::<String, _>(4))?,
            locked: locked_until.is_some_and(|t| t > self.now()),
            failed_logins: r.get(6),
            totp: r.get::<i64, _>(7) != 0,
            created_at: r.get(8),
            last_login_at: r.get(9),
        })
    }

    /// One user.
    pub async fn user(&self, login: &str) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(login).fetch_optional(self.inner.db.pool()).await?;
        match row {
            Some(r) => self.user_from_row(&r),
            None => Err(AccountsError::NoUser(login.into())),
        }
    }

    /// Every user, by login.
    pub async fn users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.inner.db.pool()).await?;
        rows.iter().map(|r| self.user_from_row(r)).collect()
    }

    /// Moves a user through the lifecycle ([`UserState::after`]). Suspending or disabling ends
    /// the user's sessions.
    pub async fn transition(&self, who: &Who, login: &str, t: Transition) -> Result<User> {
        let mut tx = self.inner.db.begin_write().await?;
        let row = sqlx::query("SELECT state, CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(AccountsError::NoUser(login.into())) };
        let from = UserState::parse(&row.get::<String, _>(0))?;
        let has_password = row.get::<i64, _>(1) != 0;
        let bad = || AccountsError::BadTransition { login: login.into(), from: from.as_str(), action: t.as_str() };
        let to = from.after(t).ok_or_else(bad)?;
        if to == UserState::Active && !has_password {
            return Err(AccountsError::BadTransition { login: login.into(), from: "pending (no password)", action: t.as_str() });
        }
        sqlx::query("UPDATE users SET state = $1, updated_at = $2 WHERE login = $3")
            .bind(to.as_str())
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if to != UserState::Active {
            self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        }
        self.record(&mut tx, who, &format!("user.{}", t.as_str()), login, "ok", Some(format!("{} -> {}", from.as_str(), to.as_str())))
            .await?;
        self.committed(tx).await?;
        self.user(login).await
    }

    /// Locks an account now (until unlocked), ending its sessions.
    pub async fn lock(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET locked_until = $1, updated_at = $2 WHERE login = $3")
            .bind(i64::MAX)
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.lock", login, "ok", Some("by operator".into())).await?;
        self.committed(tx).await
    }

    /// Unlocks an account and clears its failed-login count.
    pub async fn unlock(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET locked_until = NULL, failed_logins = 0, updated_at = $1 WHERE login = $2")
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        self.record(&mut tx, who, "user.unlock", login, "ok", None).await?;
        self.committed(tx).await
    }

    async fn check_new_password(&self, login: &str, password: &str) -> Result<()> {
        let u = self.user(login).await?;
        let inst: Option<String> = sqlx::query_scalar("SELECT name FROM institutions WHERE code = $1")
            .bind(&u.institution)
            .fetch_optional(self.inner.db.pool())
            .await?;
        let inst = inst.unwrap_or_default();
        check_strength(password, self.inner.policy.min_password_len, &[login, &u.name, &u.institution, &inst])
            .map_err(AccountsError::WeakPassword)?;
        let recent: Vec<String> = sqlx::query_scalar("SELECT hash FROM password_history WHERE login = $1 ORDER BY set_at DESC LIMIT $2")
            .bind(login)
            .bind(self.inner.policy.password_history as i64)
            .fetch_all(self.inner.db.pool())
            .await?;
        if self.inner.hasher.matches_any(password, &recent).await? {
            return Err(AccountsError::WeakPassword(crate::Weakness::Reused(self.inner.policy.password_history)));
        }
        Ok(())
    }

    async fn store_password(&self, tx: &mut AnyConnection, login: &str, hash: &str) -> Result<()> {
        let now = self.now();
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE login = $3")
            .bind(hash)
            .bind(now)
            .bind(login)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO password_history (login, hash, set_at) VALUES ($1, $2, $3)")
            .bind(login)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Sets a new password on a formal request (HX-6), if `by` may reset this user's password
    /// ([`Resetter::may_reset`]); recorded either way. The user must choose a new password at
    /// the next sign-in, after the second factor; their sessions end; the lock and failure
    /// count are cleared.
    ///
    /// A custodian is told the same for a user they may not reset as for a user that does not
    /// exist (nothing about logins or roles beyond their own institution's data roles), and
    /// their reset leaves a lock and the failure count as they are: only an operator lifts a
    /// lock (HIC-U4).
    pub async fn reset_password(&self, who: &Who, by: &Resetter, login: &str, password: &str) -> Result<()> {
        let custodian = matches!(by, Resetter::User { role: Role::Custodian, .. });
        let target = match self.user(login).await {
            Ok(t) => t,
            Err(AccountsError::NoUser(l)) => {
                self.record_refusal(who, "user.password_reset", "", "no such user").await?;
                return Err(AccountsError::NoUser(l));
            }
            Err(e) => return Err(e),
        };
        if !by.may_reset(&target) {
            self.record_refusal(who, "user.password_reset", login, "not permitted for this role").await?;
            let own = matches!(by, Resetter::User { login: l, .. } if *l == target.login);
            if custodian && !own {
                return Err(AccountsError::NoUser(login.into()));
            }
            return Err(AccountsError::NotPermitted(format!(
                "'{login}' のパスワードは再設定できません（自分自身のものは「アカウント」で変更）/ you may not reset the password of '{login}' (change your own under Account)"
            )));
        }
        self.check_new_password(login, password).await?;
        let hash = self.inner.hasher.hash(password).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, login, &hash).await?;
        let clear = if custodian { "" } else { ", failed_logins = 0, locked_until = NULL" };
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE users SET must_change_password = 1{clear} WHERE login = $1")))
            .bind(login)
            .execute(&mut *tx)
            .await?;
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.password_reset", login, "ok", Some("must change at next sign-in".into())).await?;
        self.committed(tx).await
    }

    /// Whether the user's password was set by someone else and must be changed now.
    pub async fn must_change_password(&self, login: &str) -> Result<bool> {
        let v: Option<i64> = sqlx::query_scalar("SELECT must_change_password FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// The user changes their own password (the old one must be right). A wrong old password
    /// is a failed sign-in: it counts toward the lock like one, and the lock ends the session.
    pub async fn change_password(&self, who: &Who, login: &str, old: &str, new: &str) -> Result<()> {
        let (this, who, login) = (self.clone(), who.clone(), login.to_string());
        let (old, new) = (zeroize::Zeroizing::new(old.to_string()), zeroize::Zeroizing::new(new.to_string()));
        match tokio::spawn(async move { this.change_password_step(&who, &login, &old, &new).await }).await {
            Ok(r) => r,
            Err(e) => Err(AccountsError::Internal(format!("password change: {e}"))),
        }
    }

    async fn change_password_step(&self, who: &Who, login: &str, old: &str, new: &str) -> Result<()> {
        let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let locked = || AccountsError::Locked(login.to_string());
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(_) => return Err(locked()),
        };
        let ok = match &hash {
            Some(h) => self.inner.hasher.verify(old, h).await?,
            None => false,
        };
        if !ok {
            if self.fail_attempt(who, login, "user.password_change", n, "wrong current password").await? {
                return Err(locked());
            }
            return Err(AccountsError::Invalid {
                field: "current password",
                detail: "現在のパスワードが違います / the current password is wrong".into(),
            });
        }
        self.give_back_attempt(login).await?;
        self.check_new_password(login, new).await?;
        let hash = self.inner.hasher.hash(new).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, login, &hash).await?;
        self.record(&mut tx, who, "user.password_change", login, "ok", None).await?;
        self.committed(tx).await
    }

    /// The new password a user must choose after a reset, during sign-in (the session is at
    /// [`SessionState::NewPassword`], both factors done). The reset password itself is among
    /// the recent ones and cannot be kept.
    pub async fn set_new_password(&self, who: &Who, session: &Session, new: &str) -> Result<()> {
        if session.state != SessionState::NewPassword {
            return Err(AccountsError::Invalid { field: "session", detail: "no new password is due".into() });
        }
        self.check_new_password(&session.login, new).await?;
        let hash = self.inner.hasher.hash(new).await?;
        let mut tx = self.inner.db.begin_write().await?;
        self.store_password(&mut tx, &session.login, &hash).await?;
        sqlx::query("UPDATE users SET must_change_password = 0 WHERE login = $1").bind(&session.login).execute(&mut *tx).await?;
        self.record(&mut tx, who, "user.password_change", &session.login, "ok", Some("after a reset".into())).await?;
        self.committed(tx).await
    }

    /// Clears a user's second factor (lost device) so they enrol again at their next sign-in.
    pub async fn reset_second_factor(&self, who: &Who, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE users SET totp_secret = NULL, totp_pending = NULL, updated_at = $1 WHERE login = $2")
            .bind(self.now())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 0 {
            return Err(AccountsError::NoUser(login.into()));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE login = $1").bind(login).execute(&mut *tx).await?;
        self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
        self.record(&mut tx, who, "user.second_factor_reset", login, "ok", None).await?;
        self.committed(tx).await
    }

    /// The periodic account inventory (HX-9): every user with what needs a look.
    pub async fn inventory(&self) -> Result<Vec<InventoryRow>> {
        let now = self.now();
        let certs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT login, count(*) FROM certificates WHERE login IS NOT NULL AND revoked_at IS NULL AND not_after > $1 GROUP BY login",
        )
        .bind(now)
        .fetch_all(self.inner.db.pool())
        .await?;
        let certs: std::collections::HashMap<String, i64> = certs.into_iter().collect();
        let mut out = Vec::new();
        for user in self.users().await? {
            let since = user.last_login_at.unwrap_or(user.created_at);
            let idle_days = (now - since).max(0) / 86_400;
            let n = certs.get(&user.login).copied().unwrap_or(0);
            let mut flags = Vec::new();
            if user.last_login_at.is_none() {
                flags.push("never_signed_in");
            }
            if idle_days >= 90 && user.state == UserState::Active {
                flags.push("idle_90_days");
            }
            if !user.totp && user.state == UserState::Active {
                flags.push("no_second_factor");
            }
            if user.locked {
                flags.push("locked");
            }
            if n == 0 && user.state == UserState::Active {
                flags.push("no_certificate");
            }
            out.push(InventoryRow { user, certificates: n, idle_days, flags });
        }
        Ok(out)
    }

    // ---- certificates -------------------------------------------------------------------

    /// Records a certificate the CA issued.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_certificate(
        &self,
        who: &Who,
        fingerprint: &str,
        serial: &str,
        login: Option<&str>,
        institution: &str,
        not_after: i64,
    ) -> Result<()> {
        let kind = if login.is_some() { "user" } else { "institution" };
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO certificates (fingerprint, serial, kind, login, institution, issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(fingerprint)
        .bind(serial)
        .bind(kind)
        .bind(login)
        .bind(institution)
        .bind(self.now())
        .bind(not_after)
        .execute(&mut *tx)
        .await?;
        self.record(
            &mut tx,
            who,
            "cert.issue",
            login.unwrap_or(institution),
            "ok",
            Some(format!("{kind} certificate {fingerprint} serial {serial}")),
        )
        .await?;
        self.committed(tx).await
    }

    /// Revokes every unrevoked certificate of a user (or, with `login` = `None`, of an
    /// institution's machine certificates); returns them.
    pub async fn revoke_certificates(&self, who: &Who, login: Option<&str>, institution: Option<&str>) -> Result<Vec<RevokedCert>> {
        let mut tx = self.inner.db.begin_write().await?;
        let rows: Vec<(String, String)> =
            match (login, institution) {
                (Some(l), _) => {
                    sqlx::query_as("SELECT fingerprint, serial FROM certificates WHERE login = $1 AND revoked_at IS NULL")
                        .bind(l)
                        .fetch_all(&mut *tx)
                        .await?
                }
                (None, Some(i)) => sqlx::query_as(
                    "SELECT fingerprint, serial FROM certificates WHERE kind = 'institution' AND institution = $1 AND revoked_at IS NULL",
                )
                .bind(i)
                .fetch_all(&mut *tx)
                .await?,
                (None, None) => return Err(AccountsError::Invalid { field: "revoke", detail: "name a user or an institution".into() }),
            };
        let revoked: Vec<RevokedCert> = rows.into_iter().map(|(fingerprint, serial)| RevokedCert { fingerprint, serial }).collect();
        let fps: Vec<&String> = revoked.iter().map(|r| &r.fingerprint).collect();
        for fp in &fps {
            sqlx::query("UPDATE certificates SET revoked_at = $1 WHERE fingerprint = $2")
                .bind(self.now())
                .bind(fp)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = 'account_changed' WHERE fingerprint = $2 AND ended_at IS NULL")
                .bind(self.now())
                .bind(fp)
                .execute(&mut *tx)
                .await?;
            self.record(&mut tx, who, "cert.revoke", login.or(institution).unwrap_or(""), "ok", Some(fp.to_string())).await?;
        }
        self.committed(tx).await?;
        Ok(revoked)
    }

    /// Serials of every revoked certificate (loaded into the TLS layer's revocation set, which
    /// goes by serial: see `kura_pki::Serial`).
    pub async fn revoked_serials(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT serial FROM certificates WHERE revoked_at IS NOT NULL").fetch_all(self.inner.db.pool()).await?)
    }

    /// A certificate's record.
    pub async fn certificate(&self, fingerprint: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query("SELECT fingerprint, serial, kind, login, institution, issued_at, not_after, revoked_at FROM certificates WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(self.inner.db.pool())
            .await?;
        Ok(row.map(|r| CertRecord {
            fingerprint: r.get(0),
            serial: r.get(1),
            kind: r.get(2),
            login: r.get(3),
            institution: r.get(4),
            issued_at: r.get(5),
            not_after: r.get(6),
            revoked_at: r.get(7),
        }))
    }

    // ---- signing in ---------------------------------------------------------------------

    fn lock_until(&self) -> i64 {
        match self.inner.policy.lock_for {
            Some(d) => self.now() + d.as_secs() as i64,
            None => i64::MAX,
        }
    }

    /// Takes one attempt from the account's budget, atomically and before any secret is
    /// checked (HIC-U3): however many guesses arrive at once, at most the threshold of them
    /// are ever checked before the lock lands. A timed lock that has run out starts the count
    /// again. An attempt beyond the threshold locks the account at once.
    async fn take_attempt(&self, who: &Who, login: &str) -> Result<Attempt> {
        let now = self.now();
        let mut tx = self.inner.db.begin_write().await?;
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET \
               failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN 1 ELSE failed_logins + 1 END, \
               locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN NULL ELSE locked_until END \
             WHERE login = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_logins",
        )
        .bind(login)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        match n {
            None => {
                let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten();
                tx.commit().await?;
                Ok(Attempt::Locked(until.filter(|t| *t != i64::MAX)))
            }
            Some(n) if n > i64::from(self.inner.policy.lockout_threshold) => {
                let until = self.lock_until();
                sqlx::query("UPDATE users SET locked_until = $1 WHERE login = $2").bind(until).bind(login).execute(&mut *tx).await?;
                self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
                self.record(&mut tx, who, "user.lock", login, "ok", Some(format!("{} attempts at once", n - 1))).await?;
                self.committed(tx).await?;
                Ok(Attempt::Locked((until != i64::MAX).then_some(until)))
            }
            Some(n) => {
                tx.commit().await?;
                Ok(Attempt::Counted(n))
            }
        }
    }

    /// The attempt's secret was wrong: records failure `n` and locks the account when `n`
    /// reaches the threshold. Returns whether the account is now locked.
    async fn fail_attempt(&self, who: &Who, login: &str, step: &str, n: i64, why: &str) -> Result<bool> {
        let threshold = i64::from(self.inner.policy.lockout_threshold);
        let mut tx = self.inner.db.begin_write().await?;
        self.record(&mut tx, who, step, login, "denied", Some(format!("failure {n} of {threshold}: {why}"))).await?;
        let locked = n >= threshold;
        if locked {
            let now = self.now();
            let changed =
                sqlx::query("UPDATE users SET locked_until = $1 WHERE login = $2 AND (locked_until IS NULL OR locked_until <= $3)")
                    .bind(self.lock_until())
                    .bind(login)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            if changed.rows_affected() == 1 {
                self.end_sessions_in(&mut tx, login, None, &SessionEnd::AccountChanged).await?;
                self.record(&mut tx, who, "user.lock", login, "ok", Some(format!("{n} failed sign-ins"))).await?;
            }
        }
        self.committed(tx).await?;
        Ok(locked)
    }

    /// The attempt's secret was right: gives the attempt back (a full sign-in clears the count).
    async fn give_back_attempt(&self, login: &str) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END WHERE login = $1")
            .bind(login)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the user may pass the first factor again now: at most
    /// [`FIRST_FACTORS_PER_WINDOW`] times per [`FIRST_FACTOR_WINDOW`] seconds, so that even the
    /// right password cannot be used to fill the ledger and the sessions table.
    fn first_factor_allowed(&self, login: &str) -> bool {
        let now = self.now();
        let mut seen = self.inner.first_factors.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SESSION_CACHE_MAX {
            seen.retain(|_, t| t.back().is_some_and(|last| now - last < FIRST_FACTOR_WINDOW));
        }
        let times = seen.entry(login.to_string()).or_default();
        while times.front().is_some_and(|t| now - t >= FIRST_FACTOR_WINDOW) {
            times.pop_front();
        }
        if times.len() >= FIRST_FACTORS_PER_WINDOW {
            return false;
        }
        times.push_back(now);
        true
    }

    fn lock_refusal(until: Option<i64>) -> LoginRefused {
        LoginRefused::Locked { until }
    }

    /// A `Who` whose user is a well-formed login (an attacker's text never reaches the ledger).
    fn checked_who(who: &Who) -> Who {
        let mut w = who.clone();
        if valid_login(&w.actor.user).is_err() {
            w.actor.user.clear();
        }
        w
    }

    /// First factor: the password, with the client certificate the request came with.
    ///
    /// Every failure before a correct password with a matching certificate — malformed or
    /// unknown login, another user's login, wrong password, locked account — is the same
    /// [`LoginRefused::BadCredentials`], after one Argon2 verification, answered no sooner than
    /// [`Policy::failure_floor`](crate::Policy::failure_floor) after the request (status, body
    /// and timing alike). Only the right password with a matching certificate learns that the
    /// account is suspended or disabled.
    ///
    /// A certificate matches when it is the user's own, or — for users with the provider role
    /// only — a machine certificate of the user's institution (machine-to-machine uploads). An
    /// institution's machine certificate never signs in a researcher, custodian, reviewer,
    /// operator or auditor.
    pub async fn check_password(
        &self,
        who: &Who,
        login: &str,
        password: &str,
        fingerprint: &str,
    ) -> std::result::Result<PasswordOk, LoginRefused> {
        let started = tokio::time::Instant::now();
        let (this, who) = (self.clone(), Self::checked_who(who));
        let (login, password, fingerprint) = (login.to_string(), zeroize::Zeroizing::new(password.to_string()), fingerprint.to_string());
        let out = detached(async move { this.password_step(&who, &login, &password, &fingerprint).await }).await;
        if matches!(out, Err(LoginRefused::BadCredentials)) {
            tokio::time::sleep_until(started + self.inner.policy.failure_floor).await;
        }
        out
    }

    async fn dummy_verify(&self, password: &str) -> std::result::Result<(), LoginRefused> {
        match self.inner.hasher.verify(password, &self.inner.dummy_hash).await {
            Ok(_) => Ok(()),
            Err(AccountsError::Busy) => Err(LoginRefused::Busy),
            Err(e) => Err(e.into()),
        }
    }

    async fn password_step(
        &self,
        who: &Who,
        login: &str,
        password: &str,
        fingerprint: &str,
    ) -> std::result::Result<PasswordOk, LoginRefused> {
        let anonymous = Who { actor: Actor { user: String::new(), ..who.actor.clone() }, request: who.request.clone() };
        if valid_login(login).is_err() {
            self.dummy_verify(password).await?;
            self.record_refusal(&anonymous, "auth.password", "", "malformed login").await?;
            return Err(LoginRefused::BadCredentials);
        }
        let row = sqlx::query(
            "SELECT state, password_hash, institution, role, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END, must_change_password \
             FROM users WHERE login = $1",
        )
        .bind(login)
        .fetch_optional(self.inner.db.pool())
        .await?;
        let Some(row) = row else {
            // Same work as for a real user, so timing does not reveal which logins exist.
            self.dummy_verify(password).await?;
            self.record_refusal(&anonymous, "auth.password", "", "unknown login").await?;
            return Err(LoginRefused::BadCredentials);
        };
        let state = UserState::parse(&row.get::<String, _>(0))?;
        let hash: Option<String> = row.get(1);
        let institution: String = row.get(2);
        let role: Role = row.get::<String, _>(3).parse()?;
        let enrolled = row.get::<i64, _>(4) != 0;
        let must_change = row.get::<i64, _>(5) != 0;
        // Only a certificate that could sign this user in counts against their account: with
        // anyone else's the attempt can never succeed, and counting it would let any holder of a
        // certificate lock any account. The answer is the same either way.
        let now = self.now();
        let cert_ok = self.certificate(fingerprint).await?.is_some_and(|c| {
            c.revoked_at.is_none()
                && c.not_after > now
                && match c.login {
                    Some(l) => l == login,
                    None => c.institution == institution && role == Role::Provider,
                }
        });
        if !cert_ok {
            self.dummy_verify(password).await?;
            self.record_refusal(who, "auth.password", login, "certificate not issued to this user").await?;
            return Err(LoginRefused::BadCredentials);
        }
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(_) => {
                self.dummy_verify(password).await?;
                self.record_refusal(who, "auth.password", login, "account locked").await?;
                return Err(LoginRefused::BadCredentials);
            }
        };
        let ok = match &hash {
            Some(h) => match self.inner.hasher.verify(password, h).await {
                Ok(ok) => ok,
                Err(AccountsError::Busy) => {
                    self.give_back_attempt(login).await?;
                    return Err(LoginRefused::Busy);
                }
                Err(e) => return Err(e.into()),
            },
            None => {
                self.dummy_verify(password).await?;
                false
            }
        };
        if !ok {
            self.fail_attempt(who, login, "auth.password", n, "wrong password").await?;
            return Err(LoginRefused::BadCredentials);
        }
        self.give_back_attempt(login).await?;
        if state != UserState::Active {
            self.record_refusal(who, "auth.password", login, &format!("account {}", state.as_str())).await?;
            return Err(LoginRefused::NotActive(state.as_str()));
        }
        if !self.first_factor_allowed(login) {
            self.record_refusal(who, "auth.password", login, "too many sign-ins").await?;
            return Err(LoginRefused::TooFrequent);
        }
        self.record_event(who, "auth.password", login, "ok", None).await?;
        Ok(PasswordOk { enrolled, must_change })
    }

    fn totp_aad(login: &str) -> Vec<u8> {
        format!("kura/totp/v1\0{login}").into_bytes()
    }

    fn recovery_mac(&self, login: &str, code: &str) -> String {
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length (RFC 2104): new_from_slice cannot fail")]
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.inner.key.expose()).expect("HMAC takes keys of any length");
        mac.update(b"kura/recovery/v1\0");
        mac.update(login.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn normalise_recovery(code: &str) -> String {
        code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
    }

    /// Second factor: a TOTP code, or one of the user's unused recovery codes (used up by this).
    /// The attempt is counted before the code is checked, like a password; a locked account is
    /// told it is locked whatever the code (the password was right, so telling is safe).
    pub async fn check_second_factor(&self, who: &Who, login: &str, code: &str) -> std::result::Result<(), LoginRefused> {
        let (this, who, login, code) = (self.clone(), who.clone(), login.to_string(), code.to_string());
        detached(async move { this.second_factor_step(&who, &login, &code).await }).await
    }

    async fn second_factor_step(&self, who: &Who, login: &str, code: &str) -> std::result::Result<(), LoginRefused> {
        let row = sqlx::query("SELECT totp_secret, totp_last_step FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?;
        let Some(row) = row else { return Err(LoginRefused::BadCredentials) };
        let sealed: Option<Vec<u8>> = row.get(0);
        let last_step: i64 = row.get(1);
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(until) => {
                self.record_refusal(who, "auth.second_factor", login, "account locked").await?;
                return Err(Self::lock_refusal(until));
            }
        };
        let accepted = match sealed {
            None => false,
            Some(sealed) => self.second_factor_accepted(who, login, &sealed, last_step, code).await?,
        };
        if !accepted {
            if self.fail_attempt(who, login, "auth.second_factor", n, "wrong or used code").await? {
                let until = self.lock_until();
                return Err(Self::lock_refusal((until != i64::MAX).then_some(until)));
            }
            return Err(LoginRefused::BadCode);
        }
        self.give_back_attempt(login).await?;
        Ok(())
    }

    async fn second_factor_accepted(&self, who: &Who, login: &str, sealed: &[u8], last_step: i64, code: &str) -> Result<bool> {
        let secret = kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), sealed)?;
        let digits = code.trim();
        if digits.len() == totp::DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match totp::verify(&secret, digits, self.now().max(0) as u64, last_step.max(0) as u64) {
                // The step is taken only if no one took it in between (replay across requests).
                Some(step) => {
                    let mut tx = self.inner.db.begin_write().await?;
                    let n = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE login = $2 AND totp_last_step < $1")
                        .bind(step as i64)
                        .bind(login)
                        .execute(&mut *tx)
                        .await?;
                    if n.rows_affected() == 1 {
                        self.record(&mut tx, who, "auth.second_factor", login, "ok", Some("totp".into())).await?;
                    }
                    self.committed(tx).await?;
                    Ok(n.rows_affected() == 1)
                }
                None => Ok(false),
            };
        }
        let mac = self.recovery_mac(login, &Self::normalise_recovery(code));
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE login = $2 AND code_mac = $3 AND used_at IS NULL")
            .bind(self.now())
            .bind(login)
            .bind(&mac)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() == 1 {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE login = $1 AND used_at IS NULL")
                .bind(login)
                .fetch_one(&mut *tx)
                .await?;
            self.record(&mut tx, who, "auth.second_factor", login, "ok", Some(format!("recovery code ({left} left)"))).await?;
        }
        self.committed(tx).await?;
        Ok(n.rows_affected() == 1)
    }

    /// Starts TOTP enrolment: a new secret, kept sealed as pending until a code from it is
    /// confirmed. While one is pending it is shown again (after a mistyped code or a reload the
    /// user's authenticator app already holds it); a reset of the second factor discards it.
    pub async fn begin_enrolment(&self, login: &str) -> Result<Enrolment> {
        let u = self.user(login).await?;
        let pending: Option<Vec<u8>> = sqlx::query_scalar("SELECT totp_pending FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let secret = match pending {
            Some(sealed) => kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), &sealed)?,
            None => {
                let mut secret = zeroize::Zeroizing::new(vec![0u8; totp::SECRET_LEN]);
                kura_crypto::random_bytes(&mut secret[..])?;
                let sealed = kura_crypto::seal(&self.inner.key, &Self::totp_aad(login), &secret[..])?;
                let mut tx = self.inner.db.begin_write().await?;
                sqlx::query("UPDATE users SET totp_pending = $1 WHERE login = $2").bind(sealed).bind(login).execute(&mut *tx).await?;
                tx.commit().await?;
                secret
            }
        };
        let uri = totp::provisioning_uri(&self.inner.policy.issuer, &format!("{}@{}", u.login, u.institution), &secret[..]);
        let qr_svg = totp::qr_svg(&uri).map_err(|e| AccountsError::Internal(format!("QR code: {e}")))?;
        Ok(Enrolment { secret_base32: totp::base32(&secret[..]), uri, qr_svg })
    }

    /// Confirms enrolment with a code from the pending secret; returns the recovery codes, shown
    /// once (only their MACs are kept).
    pub async fn finish_enrolment(&self, who: &Who, login: &str, code: &str) -> std::result::Result<Vec<String>, LoginRefused> {
        let (this, who, login, code) = (self.clone(), who.clone(), login.to_string(), code.to_string());
        detached(async move { this.enrolment_step(&who, &login, &code).await }).await
    }

    async fn enrolment_step(&self, who: &Who, login: &str, code: &str) -> std::result::Result<Vec<String>, LoginRefused> {
        let pending: Option<Vec<u8>> = sqlx::query_scalar("SELECT totp_pending FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(self.inner.db.pool())
            .await?
            .flatten();
        let Some(sealed) = pending else { return Err(LoginRefused::BadCode) };
        let secret = kura_crypto::open_sealed(&self.inner.key, &Self::totp_aad(login), &sealed)?;
        let n = match self.take_attempt(who, login).await? {
            Attempt::Counted(n) => n,
            Attempt::Locked(until) => {
                self.record_refusal(who, "auth.totp_enrol", login, "account locked").await?;
                return Err(Self::lock_refusal(until));
            }
        };
        let Some(step) = totp::verify(&secret, code, self.now().max(0) as u64, 0) else {
            if self.fail_attempt(who, login, "auth.totp_enrol", n, "wrong code").await? {
                let until = self.lock_until();
                return Err(Self::lock_refusal((until != i64::MAX).then_some(until)));
            }
            return Err(LoginRefused::BadCode);
        };
        self.give_back_attempt(login).await?;
        let mut codes = Vec::new();
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1, updated_at = $2 WHERE login = $3",
        )
        .bind(step as i64)
        .bind(self.now())
        .bind(login)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE login = $1").bind(login).execute(&mut *tx).await?;
        for _ in 0..self.inner.policy.recovery_codes {
            // 10 characters of base32: 50 bits, written xxxxx-xxxxx.
            let mut b = [0u8; 7];
            kura_crypto::random_bytes(&mut b)?;
            let raw = totp::base32(&b)[..10].to_ascii_lowercase();
            sqlx::query("INSERT INTO recovery_codes (login, code_mac) VALUES ($1, $2)")
                .bind(login)
                .bind(self.recovery_mac(login, &raw))
                .execute(&mut *tx)
                .await?;
            codes.push(format!("{}-{}", &raw[..5], &raw[5..]));
        }
        self.record(&mut tx, who, "auth.totp_enrol", login, "ok", Some(format!("{} recovery codes issued", codes.len()))).await?;
        self.committed(tx).await?;
        Ok(codes)
    }

    // ---- sessions -----------------------------------------------------------------------

    /// Starts a session after the password on `listener` (`portal` or `operator`, where alone
    /// it will be served); returns the token for the cookie.
    pub async fn start_session(
        &self,
        who: &Who,
        login: &str,
        fingerprint: &str,
        listener: &str,
        state: SessionState,
    ) -> Result<(String, Session)> {
        let token = random_token(32)?;
        let id = sha256_hex(token.as_bytes());
        let csrf = random_token(32)?;
        let now = self.now();
        let expires = now + self.inner.policy.absolute_timeout.as_secs() as i64;
        let mut tx = self.inner.db.begin_write().await?;
        // A new sign-in supersedes the user's sign-ins left half-way: the table holds at most
        // one unfinished session per user.
        sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE login = $3 AND state <> 'active' AND ended_at IS NULL")
            .bind(now)
            .bind(SessionEnd::Superseded.as_str())
            .bind(login)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, login, fingerprint, state, csrf, created_at, last_seen_at, expires_at, listener) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        )
        .bind(&id)
        .bind(login)
        .bind(fingerprint)
        .bind(state.as_str())
        .bind(&csrf)
        .bind(now)
        .bind(expires)
        .bind(listener)
        .execute(&mut *tx)
        .await?;
        self.record(&mut tx, who, "session.start", login, "ok", Some(format!("session {} state {}", &id[..16], state.as_str()))).await?;
        self.committed(tx).await?;
        let (session, _) = self.load_session(&id).await?.map_err(|_| AccountsError::Internal("new session not found".into()))?;
        Ok((token, session))
    }

    /// A session with whether its account may still be used (active and not locked), in one
    /// query: this runs on every request.
    async fn load_session(&self, id: &str) -> Result<std::result::Result<(Session, bool), SessionEnd>> {
        let row = sqlx::query(
            "SELECT s.login, u.institution, u.role, u.name, s.fingerprint, s.state, s.csrf, s.created_at, s.last_seen_at, s.expires_at, \
             s.ended_at, s.ended_reason, u.state, u.locked_until, s.listener FROM sessions s JOIN users u ON u.login = s.login \
             WHERE s.token_hash = $1",
        )
        .bind(id)
        .fetch_optional(self.inner.db.pool())
        .await?;
        let Some(r) = row else { return Ok(Err(SessionEnd::Unknown)) };
        if let Some(at) = r.get::<Option<i64>, _>(10) {
            return Ok(Err(SessionEnd::parse(&r.get::<Option<String>, _>(11).unwrap_or_default(), at)));
        }
        let state = SessionState::parse(&r.get::<String, _>(5)).ok_or_else(|| AccountsError::Internal("stored session state".into()))?;
        let usable = UserState::parse(&r.get::<String, _>(12))? == UserState::Active
            && r.get::<Option<i64>, _>(13).is_none_or(|until| until <= self.now());
        let session = Session {
            id: id.into(),
            login: r.get(0),
            institution: r.get(1),
            role: r.get::<String, _>(2).parse()?,
            name: r.get(3),
            fingerprint: r.get(4),
            listener: r.get(14),
            state,
            csrf: r.get(6),
            created_at: r.get(7),
            last_seen_at: r.get(8),
            expires_at: r.get(9),
        };
        Ok(Ok((session, usable)))
    }

    /// The live session of a cookie token presented with the certificate `fingerprint` on
    /// `listener`, or why there is none. A session of the other listener is no session here
    /// (and is left alone). A session presented with another certificate, idle too long, past
    /// its absolute end or whose account is no longer usable is ended here (and recorded).
    /// `touch` records activity (resets the idle timer).
    pub async fn session(
        &self,
        who: &Who,
        token: &str,
        fingerprint: &str,
        listener: &str,
        touch: bool,
    ) -> Result<std::result::Result<Session, SessionEnd>> {
        let id = sha256_hex(token.as_bytes());
        let now = self.now();
        let cache = &self.inner.sessions;
        let (mut s, usable) = match cache.fresh(&id, now) {
            Some(c) => (c.session, c.usable),
            None => {
                let generation = cache.generation.load(Ordering::Acquire);
                match self.load_session(&id).await? {
                    Ok((s, usable)) => {
                        cache.put(CachedSession { session: s.clone(), usable, read_at: now, generation });
                        (s, usable)
                    }
                    Err(end) => return Ok(Err(end)),
                }
            }
        };
        if s.listener != listener {
            return Ok(Err(SessionEnd::Unknown));
        }
        let end = if s.fingerprint != fingerprint {
            Some(SessionEnd::CertificateMismatch)
        } else if now - s.last_seen_at > self.inner.policy.idle_timeout.as_secs() as i64 {
            Some(SessionEnd::Idle)
        } else if now >= s.expires_at {
            Some(SessionEnd::Absolute)
        } else {
            (!usable).then_some(SessionEnd::AccountChanged)
        };
        if let Some(end) = end {
            self.end_session(who, &s, end.clone()).await?;
            return Ok(Err(end));
        }
        if touch && now - s.last_seen_at >= TOUCH_EVERY {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND ended_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(self.inner.db.pool())
                .await?;
            s.last_seen_at = now;
            if let Some(mut c) = cache.fresh(&id, now) {
                c.session.last_seen_at = now;
                cache.put(c);
            }
        }
        Ok(Ok(Session { last_seen_at: if touch { now } else { s.last_seen_at }, ..s }))
    }

    /// Moves a session to `state` (after a second factor, an enrolment, a new password or a
    /// confirmation) under a new token, returned for the cookie: the token the session had
    /// before the step no longer works.
    pub async fn advance_session(&self, who: &Who, session: &Session, state: SessionState) -> Result<String> {
        let token = random_token(32)?;
        let id = sha256_hex(token.as_bytes());
        let mut tx = self.inner.db.begin_write().await?;
        let n = sqlx::query("UPDATE sessions SET token_hash = $1, state = $2 WHERE token_hash = $3 AND ended_at IS NULL")
            .bind(&id)
            .bind(state.as_str())
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        if n.rows_affected() != 1 {
            return Err(AccountsError::Invalid { field: "session", detail: "the session has ended: sign in again".into() });
        }
        if state == SessionState::Active {
            sqlx::query("UPDATE users SET failed_logins = 0, last_login_at = $1 WHERE login = $2")
                .bind(self.now())
                .bind(&session.login)
                .execute(&mut *tx)
                .await?;
        }
        self.record(
            &mut tx,
            who,
            "session.state",
            &session.login,
            "ok",
            Some(format!("session {} -> {} {}", &session.id[..16], &id[..16], state.as_str())),
        )
        .await?;
        self.committed(tx).await?;
        Ok(token)
    }

    /// The user's other signed-in sessions: (started at, certificate fingerprint).
    pub async fn other_sessions(&self, session: &Session) -> Result<Vec<(i64, String)>> {
        let now = self.now();
        let idle = self.inner.policy.idle_timeout.as_secs() as i64;
        Ok(sqlx::query_as(
            "SELECT created_at, fingerprint FROM sessions WHERE login = $1 AND token_hash <> $2 AND ended_at IS NULL AND state = 'active' \
             AND expires_at > $3 AND last_seen_at >= $4 ORDER BY created_at",
        )
        .bind(&session.login)
        .bind(&session.id)
        .bind(now)
        .bind(now - idle)
        .fetch_all(self.inner.db.pool())
        .await?)
    }

    /// The user confirmed signing in here although signed in elsewhere (HX-11): the other
    /// sessions end as "replaced" — they are told so at their next request — and this one is
    /// active.
    /// Returns how many other sessions ended, and the session's new token.
    pub async fn confirm_session(&self, who: &Who, session: &Session) -> Result<(usize, String)> {
        let mut tx = self.inner.db.begin_write().await?;
        let n = self.end_sessions_in(&mut tx, &session.login, Some(&session.id), &SessionEnd::Replaced(self.now())).await?;
        self.record(&mut tx, who, "session.confirm", &session.login, "ok", Some(format!("{n} other session(s) ended"))).await?;
        self.committed(tx).await?;
        let token = self.advance_session(who, session, SessionState::Active).await?;
        Ok((n, token))
    }

    /// Ends one session.
    pub async fn end_session(&self, who: &Who, session: &Session, why: SessionEnd) -> Result<()> {
        let mut tx = self.inner.db.begin_write().await?;
        sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE token_hash = $3 AND ended_at IS NULL")
            .bind(self.now())
            .bind(why.as_str())
            .bind(&session.id)
            .execute(&mut *tx)
            .await?;
        let outcome = if why == SessionEnd::CertificateMismatch { "denied" } else { "ok" };
        self.record(&mut tx, who, "session.end", &session.login, outcome, Some(format!("session {} {}", &session.id[..16], why.as_str())))
            .await?;
        self.committed(tx).await
    }

    async fn end_sessions_in(&self, conn: &mut AnyConnection, login: &str, except: Option<&str>, why: &SessionEnd) -> Result<usize> {
        let n =
            sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE login = $3 AND ended_at IS NULL AND token_hash <> $4")
                .bind(self.now())
                .bind(why.as_str())
                .bind(login)
                .bind(except.unwrap_or(""))
                .execute(&mut *conn)
                .await?;
        Ok(n.rows_affected() as usize)
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
