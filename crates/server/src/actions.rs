//! What the portal's pages and the JSON API both do: the steps of signing in after the
//! password, creating users and the operators' actions on them. Each is written once here and
//! answered in the caller's form (a page or JSON).

use crate::front::FrontDoor;
use crate::web::{Ctx, Listener, Signed};
use axum::http::StatusCode;
use kura_accounts::session::{Session, SessionState};
use kura_accounts::{Accounts, AccountsError, LoginRefused, NewUser, Resetter, Role, Transition, Who};
use kura_gate::Failure;
use serde::Deserialize;
use std::sync::Arc;

/// Shared state of a listener's router.
#[derive(Clone)]
pub struct Portal {
    /// Accounts, sessions, the audit trail.
    pub accounts: Accounts,
    /// The front door (the gate, revocations, deadlines; failures count toward blocks).
    pub door: Arc<FrontDoor>,
    /// Which listener.
    pub listener: Listener,
    /// Names of the datasets in the catalogue (the data route's answer).
    pub datasets: Arc<Vec<String>>,
    /// The research lifecycle, if this server handles applications.
    pub research: Option<kura_workflows::Research>,
    /// The projects' workspaces, if this server runs them.
    pub workspaces: Option<kura_workspace::Workspaces>,
    /// What applications may ask for.
    pub catalogue: Arc<kura_workflows::Catalogue>,
    /// Files between institutions, if this server handles them.
    pub exchanges: Option<kura_workflows::Exchanges>,
}

/// A refused sign-in step as the status and message to answer with; wrong secrets count
/// toward the address's automatic block (HIC-S9). Kura's own failures are logged and answered
/// generically.
pub fn login_refused(portal: &Portal, ctx: &Ctx, refusal: LoginRefused) -> (StatusCode, String) {
    let status = match &refusal {
        LoginRefused::BadCredentials | LoginRefused::BadCode => {
            portal.door.failure(ctx.client, Failure::FailedLogin);
            StatusCode::UNAUTHORIZED
        }
        LoginRefused::Locked { .. } | LoginRefused::NotActive(_) => StatusCode::FORBIDDEN,
        LoginRefused::TooFrequent => StatusCode::TOO_MANY_REQUESTS,
        LoginRefused::Busy => StatusCode::SERVICE_UNAVAILABLE,
        LoginRefused::Error(e) => {
            tracing::error!("{e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let msg = match &refusal {
        LoginRefused::Error(_) => "処理できませんでした / the request could not be completed".to_string(),
        other => other.to_string(),
    };
    (status, msg)
}

/// After the second factor: a new password if the old one was reset, then the confirmation
/// step if the ID is signed in elsewhere (HX-11), else signed in. Returns the state and the
/// session's new token.
pub async fn after_second_factor(portal: &Portal, ctx: &Ctx, s: &Session) -> Result<(SessionState, String), AccountsError> {
    let next = if portal.accounts.must_change_password(&s.login).await? {
        SessionState::NewPassword
    } else if portal.accounts.other_sessions(s).await?.is_empty() {
        SessionState::Active
    } else {
        SessionState::Confirm
    };
    let token = portal.accounts.advance_session(&ctx.who, s, next).await?;
    Ok((next, token))
}

/// A new user, from the operators' form or the API.
#[derive(Deserialize)]
pub struct CreateForm {
    /// Login ID.
    pub login: String,
    /// Role name.
    pub role: String,
    /// Institution code.
    pub institution: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Initial password; empty: the user is created pending.
    #[serde(default)]
    pub password: String,
}

/// Creates a user; the message says what happened.
pub async fn create(portal: &Portal, who: &Who, f: &CreateForm) -> Result<String, AccountsError> {
    let role: Role = f.role.parse()?;
    let new = NewUser { login: f.login.clone(), institution: f.institution.clone(), role, name: f.name.clone() };
    let pw = (!f.password.is_empty()).then_some(f.password.as_str());
    let u = portal.accounts.add_user(who, &new, pw).await?;
    Ok(format!("利用者 {} を作成しました（{}）/ user {} created ({})", u.login, u.state.as_str(), u.login, u.state.as_str()))
}

/// The body of an administrative action (a reset's new password; empty otherwise).
#[derive(Deserialize, Default)]
pub struct ActionForm {
    /// The new password of a reset.
    #[serde(default)]
    pub password: String,
}

/// The resetter a signed-in session stands for.
fn resetter_of(ctx: &Signed) -> Resetter {
    let s = &ctx.session;
    Resetter::User { login: s.login.clone(), role: s.role, institution: s.institution.clone() }
}

/// Applies an administrative action to a user; the message says what happened. Certificates
/// revoked here are refused by this server at once, open connections included.
pub async fn apply_action(portal: &Portal, ctx: &Signed, login: &str, action: &str, f: &ActionForm) -> Result<String, AccountsError> {
    let (a, who) = (&portal.accounts, &ctx.who);
    match action {
        "lock" => a.lock(who, login).await?,
        "unlock" => a.unlock(who, login).await?,
        "activate" => drop(a.transition(who, login, Transition::Activate).await?),
        "suspend" => drop(a.transition(who, login, Transition::Suspend).await?),
        "disable" => drop(a.transition(who, login, Transition::Disable).await?),
        "reset-password" => a.reset_password(who, &resetter_of(ctx), login, &f.password).await?,
        "reset-second-factor" => a.reset_second_factor(who, login).await?,
        "revoke-certificates" => {
            let revoked = a.revoke_certificates(who, Some(login), None).await?;
            portal.door.revoke(&revoked.iter().map(|r| r.serial.clone()).collect::<Vec<_>>());
            return Ok(format!("{login}: 証明書 {} 件を失効させました / {} certificate(s) revoked", revoked.len(), revoked.len()));
        }
        other => {
            return Err(AccountsError::Invalid {
                field: "action",
                detail: format!(
                    "'{}' (use lock, unlock, activate, suspend, disable, reset-password, reset-second-factor, revoke-certificates)",
                    other.escape_debug()
                ),
            });
        }
    }
    Ok(format!("{login}: {action} — 完了しました / done"))
}
