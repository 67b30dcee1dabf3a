//! The JSON API under `/api/v1`. Its OpenAPI document is generated from the route table
//! ([`crate::routes::openapi`]).
//!
//! The API uses the same sessions as the portal (cookie, client certificate, second factor);
//! state-changing calls carry the session's CSRF token in `X-CSRF-Token`. Refusals are
//! [`WebError`]s, which answer `{"error": …, "message_ja": …}` under `/api/`.

use crate::actions::{ActionForm, CreateForm, Portal, after_second_factor, apply_action, create, login_refused};
use crate::web::{Ctx, FormBody, JsonBody, Listener, Signed, WebError, WebResult, set_cookie, time_text};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kura_accounts::{AccountsError, LoginRefused, SessionState, Who};
use kura_ledger::entry::Actor;
use serde_json::json;

/// Body of `POST /api/v1/session`.
#[derive(serde::Deserialize)]
pub struct SignIn {
    /// Login.
    pub login: String,
    /// Password.
    pub password: String,
    /// TOTP code or a recovery code.
    pub code: String,
}

/// `POST /api/v1/session`: signs a tool in with password and second factor in one call, over
/// the same client certificate as always. Answers the session cookie and, in the body, the
/// CSRF token for later state-changing calls. A user without a second factor enrols in the
/// portal first; so does one whose password was reset (to choose a new one).
pub(crate) async fn sign_in(State(portal): State<Portal>, ctx: Ctx, JsonBody(f): JsonBody<SignIn>) -> WebResult {
    let who = Who { actor: Actor { user: f.login.clone(), ..ctx.who.actor.clone() }, ..ctx.who.clone() };
    let refused = |refusal| {
        let (status, msg) = login_refused(&portal, &ctx, refusal);
        WebError::bilingual(status, msg)
    };
    match portal.accounts.check_password(&who, &f.login, &f.password, &ctx.peer.fingerprint).await {
        Ok(ok) if !ok.enrolled => {
            return Err(WebError::refused(
                StatusCode::FORBIDDEN,
                "二要素認証が未登録です。ポータルで登録してください",
                "no second factor yet: enrol one in the portal first",
            ));
        }
        Ok(ok) if ok.must_change => {
            return Err(WebError::refused(
                StatusCode::FORBIDDEN,
                "パスワードが再設定されています。ポータルで新しいパスワードを決めてください",
                "your password was reset: choose a new one in the portal first",
            ));
        }
        Ok(_) => {}
        Err(refusal) => return Err(refused(refusal)),
    }
    // The code, the new session and its advance run as one task that finishes even if the
    // client goes away: an accepted code (its time step used up) always leaves a session, so
    // sending the same code again is never counted as a failure.
    let (task_portal, task_ctx) = (portal.clone(), Ctx { who: who.clone(), ..ctx.clone() });
    let task = tokio::spawn(async move {
        let (portal, ctx) = (task_portal, task_ctx);
        portal.accounts.check_second_factor(&ctx.who, &f.login, &f.code).await?;
        let started = portal
            .accounts
            .start_session(&ctx.who, &f.login, &ctx.peer.fingerprint, portal.listener.as_str(), SessionState::SecondFactor)
            .await;
        Ok(match started {
            Ok((_, s)) => after_second_factor(&portal, &ctx, &s).await.map(|(state, token)| (s, state, token)),
            Err(e) => Err(e),
        })
    });
    let outcome = task.await.unwrap_or_else(|e| Err(LoginRefused::Error(AccountsError::Task(e))));
    let (s, state, token) = outcome.map_err(refused)?.map_err(WebError::store)?;
    let mut res = Json(json!({"state": state.as_str(), "csrf": s.csrf, "expires_at": time_text(s.expires_at)})).into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(portal.listener.cookie(), &token, None));
    Ok(res)
}

/// `GET /api/v1/me`: the signed-in user and session.
pub(crate) async fn me(ctx: Signed) -> Response {
    let s = &ctx.session;
    Json(json!({
        "login": s.login, "institution": s.institution, "role": s.role, "name": s.name,
        "certificate": s.fingerprint, "signed_in_at": time_text(s.created_at), "expires_at": time_text(s.expires_at),
    }))
    .into_response()
}

/// `GET /api/v1/datasets`: the catalogue's datasets (data roles only; an operator gets 403).
pub(crate) async fn datasets(State(portal): State<Portal>) -> Response {
    Json(json!({ "datasets": *portal.datasets })).into_response()
}

/// `GET /api/v1/users`: every user (operators and auditors).
pub(crate) async fn users(State(portal): State<Portal>) -> WebResult {
    let u = portal.accounts.users().await.map_err(WebError::store)?;
    Ok(Json(json!({ "users": u })).into_response())
}

/// `GET /api/v1/inventory`: the periodic account inventory (HX-9).
pub(crate) async fn inventory(State(portal): State<Portal>) -> WebResult {
    let rows = portal.accounts.inventory().await.map_err(WebError::store)?;
    Ok(Json(json!({ "generated_at": time_text(portal.accounts.clock().now()), "users": rows })).into_response())
}

/// `POST /api/v1/users` (JSON): creates a user.
pub(crate) async fn create_user(State(portal): State<Portal>, ctx: Signed, JsonBody(f): JsonBody<CreateForm>) -> WebResult {
    let msg = create(&portal, &ctx.who, &f).await?;
    Ok((StatusCode::CREATED, Json(json!({ "message": msg }))).into_response())
}

/// `POST /api/v1/users/{login}/{action}`: lock, unlock, activate, suspend, disable,
/// reset-second-factor, revoke-certificates (refused by this server at once, open connections
/// included). The body, if any, is a form (none of these actions reads it).
pub(crate) async fn user_action(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((login, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> WebResult {
    let f: ActionForm =
        if body.is_empty() { ActionForm::default() } else { serde_urlencoded::from_bytes(&body).map_err(|_| crate::web::malformed())? };
    let msg = apply_action(&portal, &ctx, &login, &action, &f).await?;
    Ok(Json(json!({ "message": msg })).into_response())
}

/// `POST /api/v1/users/{login}/reset-password` (form field `password`): on the operators'
/// listener an operator; on the portal a custodian, for the researchers, reviewers and
/// providers of their own institution (HX-6: reset only on a formal request, recorded; the
/// user must choose a new password at the next sign-in).
pub(crate) async fn reset_password(
    State(portal): State<Portal>,
    ctx: Signed,
    Path(login): Path<String>,
    FormBody(f): FormBody<ActionForm>,
) -> WebResult {
    match apply_action(&portal, &ctx, &login, "reset-password", &f).await {
        Ok(msg) => Ok(Json(json!({ "message": msg })).into_response()),
        Err(e) => {
            // Probing for users one may not reset counts toward the address's block on the
            // portal; an operator's typo on the operators' listener does not, as on its pages.
            if portal.listener == Listener::Portal && matches!(e, AccountsError::NoUser(_) | AccountsError::NotPermitted(_)) {
                portal.door.failure(ctx.client, kura_gate::Failure::Refused);
            }
            Err(e.into())
        }
    }
}
