//! # kura-accounts — who may act in Kura, and how they prove it
//!
//! 利用者・機関・役割、パスワード（Argon2id）、ワンタイムパスワード（TOTP）と回復コード、
//! ロックアウト、クライアント証明書との結び付け、サーバー側セッション。安全に関わる出来事は
//! すべて、状態の変更と同じトランザクションで監査台帳に記録する（HIC-S5）。
//!
//! - Institutions and users (HX-9, HX-11); every user belongs to one institution and has one
//!   [`Role`]; the lifecycle is an explicit state machine ([`UserState::after`]).
//! - Passwords ([`password`]): Argon2id in a bounded pool; guessable, common, personal and
//!   recently used passwords refused (HX-6, HIC-U3); reset only by a custodian or operator,
//!   recorded.
//! - Second factor ([`totp`]): RFC 6238 with HMAC-SHA-256, enrolment with a locally rendered
//!   QR code, replay protection, one-time recovery codes.
//! - Lockout: after [`Policy::lockout_threshold`] failed logins (password or second factor) the
//!   account locks — until an operator unlocks it, or for [`Policy::lock_for`] (HIC-U3, HIC-U4).
//! - Certificates: the fingerprint of every certificate Kura's CA issued, whom it identifies,
//!   and whether it is revoked (NET-1, NET-2).
//! - Sessions ([`session`]): server-side, bound to the client certificate they began with, with
//!   idle and absolute timeouts (HIC-U2) and a confirmation when the same ID signs in from a
//!   second browser or device (HX-11).
//!
//! Every change is one transaction that also appends its audit entry ([`kura_ledger::store::append_in`]):
//! a lock without its record, or a record without its lock, cannot exist.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

mod accounts;
pub mod password;
pub mod refusals;
pub mod session;
pub mod totp;

pub use accounts::{
    Accounts, CertRecord, Clock, Enrolment, InventoryRow, LoginRefused, NewUser, PasswordOk, Resetter, RevokedCert, User, Who,
};
pub use password::{HashCost, Hasher, Weakness};
pub use session::{Session, SessionEnd, SessionState};

use std::time::Duration;

/// Everything that can go wrong in accounts. Messages name the account and say what to do;
/// none contains a password, a code or a secret.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// No such user.
    #[error("利用者 '{0}' は存在しません / no user '{0}': check the login (`kura user list`)")]
    NoUser(String),
    /// No such institution.
    #[error(
        "機関 '{0}' は登録されていません / no institution '{0}': add it first (`kura user add … --institution CODE --institution-name NAME`)"
    )]
    NoInstitution(String),
    /// The login is taken.
    #[error("利用者 '{0}' は既に存在します / user '{0}' already exists")]
    Exists(String),
    /// A login, code or name that is not acceptable.
    #[error("{field} が不正です / invalid {field}: {detail}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A password that does not pass the rules.
    #[error("パスワードを受け付けられません / password refused: {0}")]
    WeakPassword(Weakness),
    /// A lifecycle step that the current state does not allow.
    #[error("利用者 '{login}' は {from} の状態なので {action} できません / user '{login}' is {from}: cannot {action}")]
    BadTransition {
        /// The user.
        login: String,
        /// Current state.
        from: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// The hashing pool is full: too many logins at once.
    #[error("混み合っています。少し待って再度お試しください / too many sign-ins at once: try again in a moment")]
    Busy,
    /// The store of record failed.
    #[error(transparent)]
    Db(#[from] kura_db::DbError),
    /// The account is locked.
    #[error(
        "アカウント '{0}' はロックされています。運用管理者に解除を依頼してください / the account '{0}' is locked: ask the operator to unlock it"
    )]
    Locked(String),
    /// The acting user may not do this to that account.
    #[error("この操作は許可されていません / not permitted: {0}")]
    NotPermitted(String),
    /// A statement failed.
    #[error("データベース / database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The audit ledger failed: nothing was changed.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// A sealed secret did not open (wrong accounts key, or the row was altered).
    #[error(transparent)]
    Crypto(#[from] kura_crypto::CryptoError),
    /// Password hashing failed (a salt or a stored hash that argon2 refuses).
    #[error("パスワードハッシュ / password hash: {0}")]
    Hash(#[from] argon2::password_hash::Error),
    /// The configured argon2 cost is outside what argon2 accepts.
    #[error("パスワードハッシュの設定 / password hash parameters: {0}")]
    HashParams(#[from] argon2::Error),
    /// A background step (hashing, a detached sign-in step) did not finish: it panicked or was
    /// cancelled at shutdown.
    #[error("内部タスク / background task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A bug or an impossible state; the message is for the operator's log.
    #[error("内部エラー / internal error: {0}")]
    Internal(String),
}

impl AccountsError {
    /// Whether the failure is Kura's (store, ledger, a bug, overload) rather than the request's:
    /// such errors are logged and answered with a generic message.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            AccountsError::Db(_)
                | AccountsError::Sql(_)
                | AccountsError::Ledger(_)
                | AccountsError::Crypto(_)
                | AccountsError::Hash(_)
                | AccountsError::HashParams(_)
                | AccountsError::Task(_)
                | AccountsError::Internal(_)
                | AccountsError::Busy
        )
    }
}

/// What a user may do. Routes name the roles they admit; everything else is refused
/// (deny by default). An operator administers accounts but reads no data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Analyses approved data in a project.
    Researcher,
    /// Holds a dataset on behalf of its owner; approves access to it.
    Custodian,
    /// Reviews outputs before they leave (disclosure control).
    Reviewer,
    /// An institution that submits data.
    Provider,
    /// Runs the platform: accounts, certificates, blocklists. No data.
    Operator,
    /// Reads the audit trail and inventories. No data.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [Role::Researcher, Role::Custodian, Role::Reviewer, Role::Provider, Role::Operator, Role::Auditor];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Researcher => "researcher",
            Role::Custodian => "custodian",
            Role::Reviewer => "reviewer",
            Role::Provider => "provider",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    /// The Japanese name shown in the portal.
    pub fn label_ja(self) -> &'static str {
        match self {
            Role::Researcher => "研究者",
            Role::Custodian => "データ管理者",
            Role::Reviewer => "審査者",
            Role::Provider => "データ提供機関",
            Role::Operator => "運用管理者",
            Role::Auditor => "監査者",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AccountsError;
    fn from_str(s: &str) -> Result<Role, AccountsError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| AccountsError::Invalid {
            field: "role",
            detail: format!("'{s}' (use one of researcher, custodian, reviewer, provider, operator, auditor)"),
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an account is in its life (HX-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Created, not yet usable (no password, or waiting for activation).
    Pending,
    /// May sign in.
    Active,
    /// Temporarily barred (abnormal logons, HIC-U4, or an administrative hold).
    Suspended,
    /// Closed for good, on request or at the end of a project; the record is kept.
    Disabled,
}

/// A lifecycle step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Pending or Suspended → Active.
    Activate,
    /// Active → Suspended.
    Suspend,
    /// Any but Disabled → Disabled.
    Disable,
}

impl Transition {
    /// The verb, for messages and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Suspend => "suspend",
            Transition::Disable => "disable",
        }
    }
}

impl UserState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Pending => "pending",
            UserState::Active => "active",
            UserState::Suspended => "suspended",
            UserState::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Result<UserState, AccountsError> {
        [UserState::Pending, UserState::Active, UserState::Suspended, UserState::Disabled]
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| AccountsError::Internal(format!("stored user state '{s}'")))
    }

    /// The state after `t`, or `None` if `t` is not allowed from here. This table is the whole
    /// lifecycle: pending → active ⇄ suspended, and anything → disabled, which is final.
    pub fn after(self, t: Transition) -> Option<UserState> {
        use {Transition as T, UserState as S};
        match (self, t) {
            (S::Pending | S::Suspended, T::Activate) => Some(S::Active),
            (S::Active, T::Suspend) => Some(S::Suspended),
            (S::Pending | S::Active | S::Suspended, T::Disable) => Some(S::Disabled),
            _ => None,
        }
    }
}

/// The account rules. Defaults follow the requirements; tests shorten the times.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Minimum password length in characters.
    pub min_password_len: usize,
    /// How many previous passwords may not be reused.
    pub password_history: usize,
    /// Failed logins (password or second factor) that lock the account (HIC-U3): 5.
    pub lockout_threshold: u32,
    /// How long a lock lasts; `None`: until an operator unlocks it (the default, HIC-U4).
    pub lock_for: Option<Duration>,
    /// A session ends after this long without a request (HIC-U2): 15 minutes.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever its activity: 12 hours.
    pub absolute_timeout: Duration,
    /// Recovery codes issued at TOTP enrolment.
    pub recovery_codes: usize,
    /// The issuer shown in authenticator apps.
    pub issuer: String,
    /// A failed sign-in is answered no sooner than this after it arrived, whichever way it
    /// failed (unknown login, wrong password, locked account…), so that timing tells nothing.
    pub failure_floor: Duration,
    /// Repeated refusals of one kind (see [`refusals`]) are summarised per this window.
    pub refusal_window: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_password_len: 12,
            password_history: 5,
            lockout_threshold: 5,
            lock_for: None,
            idle_timeout: Duration::from_secs(15 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            recovery_codes: 10,
            issuer: "Kura".into(),
            failure_floor: Duration::from_millis(250),
            refusal_window: Duration::from_secs(60),
        }
    }
}
