//! Server-side sessions: their states and why they end.
//!
//! A session begins when the password is right, and is usable only once the second factor is
//! done. Its token lives in a cookie (`Secure; HttpOnly; SameSite=Strict`); the store keeps only
//! the token's SHA-256, with the fingerprint of the client certificate the session began with.
//! A request is served only if the certificate it arrived with is that same one (HX-5).
//!
//! ```text
//!  password ok ──▶ SecondFactor ──code ok──┬──────────────────────────▶ Active ◀──confirm── Confirm
//!       │                                  └▶ NewPassword ──new set──┘ (or Confirm: another device
//!       └── no TOTP yet ──▶ Enrol ──code ok──┘   (after a reset)                is signed in, HX-11)
//!
//!  The token changes at every step, so a token seen before the second factor is worth nothing
//!  after it; a session is served only on the listener it began on (portal or operators').
//!  any state ──▶ ended: signed out · idle (HIC-U2) · absolute · replaced by another device ·
//!                certificate mismatch · account locked/suspended/disabled
//! ```

use serde::Serialize;

/// Where a live session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Password accepted; waiting for the TOTP or a recovery code.
    SecondFactor,
    /// Password accepted; the user has no second factor yet and must enrol one now.
    Enrol,
    /// Both factors done, but the password was set by someone else (a reset): the user must
    /// choose a new one before going on.
    NewPassword,
    /// Both factors done, but the ID is signed in elsewhere: waiting for the user to confirm.
    Confirm,
    /// Signed in.
    Active,
}

impl SessionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::SecondFactor => "second_factor",
            SessionState::Enrol => "enrol",
            SessionState::NewPassword => "new_password",
            SessionState::Confirm => "confirm",
            SessionState::Active => "active",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<SessionState> {
        [SessionState::SecondFactor, SessionState::Enrol, SessionState::NewPassword, SessionState::Confirm, SessionState::Active]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Why a session is over. Shown to the user, so each says what happened and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// No such session (never existed, or forgotten).
    Unknown,
    /// The user signed out.
    SignedOut,
    /// No request for longer than the idle timeout.
    Idle,
    /// Older than the absolute timeout.
    Absolute,
    /// The same ID signed in from another browser or device at this Unix time (HX-11).
    Replaced(i64),
    /// A request came with a different client certificate than the session began with.
    CertificateMismatch,
    /// The account was locked, suspended or disabled.
    AccountChanged,
    /// Left half-way through signing in, and a newer sign-in began.
    Superseded,
}

impl SessionEnd {
    /// The stored reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionEnd::Unknown => "unknown",
            SessionEnd::SignedOut => "signed_out",
            SessionEnd::Idle => "idle",
            SessionEnd::Absolute => "absolute",
            SessionEnd::Replaced(_) => "replaced",
            SessionEnd::CertificateMismatch => "certificate_mismatch",
            SessionEnd::AccountChanged => "account_changed",
            SessionEnd::Superseded => "superseded",
        }
    }

    /// The reason from its stored name (`ended_at` is when it ended).
    pub fn parse(s: &str, ended_at: i64) -> SessionEnd {
        match s {
            "signed_out" => SessionEnd::SignedOut,
            "idle" => SessionEnd::Idle,
            "absolute" => SessionEnd::Absolute,
            "replaced" => SessionEnd::Replaced(ended_at),
            "certificate_mismatch" => SessionEnd::CertificateMismatch,
            "account_changed" => SessionEnd::AccountChanged,
            "superseded" => SessionEnd::Superseded,
            _ => SessionEnd::Unknown,
        }
    }

    /// What the user is told, Japanese first.
    pub fn message(&self) -> String {
        match self {
            SessionEnd::Unknown => "ログインしてください / please sign in".into(),
            SessionEnd::SignedOut => "ログアウトしました / you have signed out".into(),
            SessionEnd::Idle => "一定時間操作がなかったためログアウトしました / signed out after a period without activity".into(),
            SessionEnd::Absolute => "ログインの有効期間が過ぎました。再度ログインしてください / your sign-in has expired: please sign in again".into(),
            SessionEnd::Replaced(at) => format!(
                "別のブラウザまたは端末から同じIDでログインがあったため、この画面はログアウトしました（{}）。心当たりがない場合は運用管理者に連絡してください / this ID signed in from another browser or device ({}), so this session ended: if that was not you, tell the operator",
                kura_ledger::entry::format_seconds(*at),
                kura_ledger::entry::format_seconds(*at)
            ),
            SessionEnd::CertificateMismatch => {
                "ログイン時と異なるクライアント証明書が使われたため、セッションを終了しました / a different client certificate was presented than at sign-in, so the session was ended".into()
            }
            SessionEnd::AccountChanged => "アカウントが利用できなくなりました。運用管理者に連絡してください / the account is no longer usable: contact the operator".into(),
            SessionEnd::Superseded => "別のログインが始まったため、途中のログインは終了しました / a newer sign-in began, so this unfinished one ended".into(),
        }
    }
}

/// A live session and its user.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    /// SHA-256 (hex) of the token: the session's identity in the store and the audit trail.
    pub id: String,
    /// The user.
    pub login: String,
    /// The user's institution.
    pub institution: String,
    /// The user's role.
    pub role: crate::Role,
    /// The user's name.
    pub name: String,
    /// Fingerprint of the certificate the session began with (`sha256:…`).
    pub fingerprint: String,
    /// The listener it began on (`portal` or `operator`); it is served there only.
    pub listener: String,
    /// Where the session stands.
    pub state: SessionState,
    /// The anti-CSRF token every state-changing request must carry.
    pub csrf: String,
    /// Sign-in time (Unix seconds).
    pub created_at: i64,
    /// Last request (Unix seconds).
    pub last_seen_at: i64,
    /// Absolute end (Unix seconds).
    pub expires_at: i64,
}
