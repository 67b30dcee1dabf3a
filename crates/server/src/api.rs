//! The JSON API under `/api/v1`, and its OpenAPI document.
//!
//! The API uses the same sessions as the portal (cookie, client certificate, second factor);
//! state-changing calls carry the session's CSRF token in `X-CSRF-Token`.

use crate::portal::{ActionForm, CreateForm, Ctx, FormBody, JsonBody, Portal, Signed, apply_action, create, internal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kura_accounts::{AccountsError, LoginRefused};
use serde_json::json;

pub use kura_ledger::entry::format_seconds as time_text;

fn bad(e: AccountsError) -> Response {
    let status = match &e {
        AccountsError::NoUser(_) | AccountsError::NoInstitution(_) => StatusCode::NOT_FOUND,
        AccountsError::Exists(_) | AccountsError::BadTransition { .. } => StatusCode::CONFLICT,
        AccountsError::NotPermitted(_) | AccountsError::Locked(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

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
pub(crate) async fn sign_in(State(portal): State<Portal>, ctx: Ctx, JsonBody(f): JsonBody<SignIn>) -> Response {
    let who = kura_accounts::Who { actor: kura_ledger::entry::Actor { user: f.login.clone(), ..ctx.who.actor.clone() }, ..ctx.who.clone() };
    let refused =
        |refusal| crate::portal::login_refused(&portal, &ctx, refusal, |msg, status| (status, Json(json!({"error": msg}))).into_response());
    match portal.accounts.check_password(&who, &f.login, &f.password, &ctx.peer.fingerprint).await {
        Ok(ok) if !ok.enrolled => {
            let msg = "二要素認証が未登録です。ポータルで登録してください / no second factor yet: enrol one in the portal first";
            return (StatusCode::FORBIDDEN, Json(json!({"error": msg}))).into_response();
        }
        Ok(ok) if ok.must_change => {
            let msg = "パスワードが再設定されています。ポータルで新しいパスワードを決めてください / your password was reset: choose a new one in the portal first";
            return (StatusCode::FORBIDDEN, Json(json!({"error": msg}))).into_response();
        }
        Ok(_) => {}
        Err(refusal) => return refused(refusal),
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
            .start_session(&ctx.who, &f.login, &ctx.peer.fingerprint, portal.listener.as_str(), kura_accounts::SessionState::SecondFactor)
            .await;
        Ok(match started {
            Ok((_, s)) => crate::portal::after_second_factor(&portal, &ctx, &s).await.map(|(state, token)| (s, state, token)),
            Err(e) => Err(e),
        })
    });
    let outcome = task.await.unwrap_or_else(|e| Err(LoginRefused::Error(AccountsError::Internal(format!("sign-in: {e}")))));
    let (s, state, token) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return internal(ctx.lang, crate::portal::SIGN_IN_API, e),
        Err(refusal) => return refused(refusal),
    };
    let mut res = Json(json!({"state": state.as_str(), "csrf": s.csrf, "expires_at": time_text(s.expires_at)})).into_response();
    res.headers_mut().append(axum::http::header::SET_COOKIE, crate::portal::set_cookie(portal.listener.cookie(), &token, None));
    res
}

/// `GET /api/v1/me`: the signed-in user and session.
pub async fn me(ctx: Signed) -> Response {
    let s = &ctx.session;
    Json(json!({
        "login": s.login, "institution": s.institution, "role": s.role, "name": s.name,
        "certificate": s.fingerprint, "signed_in_at": time_text(s.created_at), "expires_at": time_text(s.expires_at),
    }))
    .into_response()
}

/// `GET /api/v1/datasets`: the catalogue's datasets (data roles only; an operator gets 403).
pub async fn datasets(State(portal): State<Portal>) -> Response {
    Json(json!({ "datasets": *portal.datasets })).into_response()
}

/// `GET /api/v1/users`: every user (operators and auditors).
pub async fn users(State(portal): State<Portal>, ctx: Signed) -> Response {
    match portal.accounts.users().await {
        Ok(u) => Json(json!({ "users": u })).into_response(),
        Err(e) => internal(ctx.lang, "/api/v1/users", e),
    }
}

/// `GET /api/v1/inventory`: the periodic account inventory (HX-9).
pub async fn inventory(State(portal): State<Portal>, ctx: Signed) -> Response {
    match portal.accounts.inventory().await {
        Ok(rows) => Json(json!({ "generated_at": time_text(portal.accounts.clock().now()), "users": rows })).into_response(),
        Err(e) => internal(ctx.lang, "/api/v1/inventory", e),
    }
}

/// `POST /api/v1/users` (JSON): creates a user.
pub(crate) async fn create_user(State(portal): State<Portal>, ctx: Signed, JsonBody(f): JsonBody<CreateForm>) -> Response {
    match create(&portal, &ctx.who, &f).await {
        Ok(msg) => (StatusCode::CREATED, Json(json!({ "message": msg }))).into_response(),
        Err(e) if e.is_internal() => internal(ctx.lang, "/api/v1/users", e),
        Err(e) => bad(e),
    }
}

/// `POST /api/v1/users/{login}/{action}`: lock, unlock, activate, suspend, disable,
/// reset-second-factor, revoke-certificates (refused by this server at once, open connections
/// included).
pub async fn user_action(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((login, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let f: ActionForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    match apply_action(&portal, &ctx, &login, &action, &f).await {
        Ok(msg) => Json(json!({ "message": msg })).into_response(),
        Err(e) if e.is_internal() => internal(ctx.lang, "/api/v1/users", e),
        Err(e) => bad(e),
    }
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
) -> Response {
    match apply_action(&portal, &ctx, &login, "reset-password", &f).await {
        Ok(msg) => Json(json!({ "message": msg })).into_response(),
        Err(e) if e.is_internal() => internal(ctx.lang, "/api/v1/users", e),
        Err(e) => {
            // Probing for users one may not reset counts toward the address's block on the
            // portal; an operator's typo on the operators' listener does not, as on its pages.
            if portal.listener == crate::portal::Listener::Portal && matches!(e, AccountsError::NoUser(_) | AccountsError::NotPermitted(_))
            {
                portal.door.failure(ctx.client, kura_gate::Failure::Refused);
            }
            bad(e)
        }
    }
}

/// `GET /api/v1/openapi.json`: this API described in OpenAPI 3.1, generated from the route
/// table so it cannot drift from what is served.
pub async fn openapi(State(portal): State<Portal>) -> Response {
    let mut paths = serde_json::Map::new();
    for r in crate::portal::ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        let served = match portal.listener {
            crate::portal::Listener::Portal => r.portal,
            crate::portal::Listener::Operator => r.operator,
        };
        if !served {
            continue;
        }
        let roles = match r.access {
            crate::portal::Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let params: Vec<_> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let op = json!({
            "summary": summary(r.method, r.path),
            "x-kura-roles": roles,
            "parameters": params,
            "security": if roles.is_empty() { json!([]) } else { json!([{"session": []}]) },
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "401": {"description": "not signed in / ログインしていない"},
                "403": {"description": "role not admitted, or CSRF token missing / 権限なし・CSRFトークンなし"}
            }
        });
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Kura API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Kura（蔵）の API。クライアント証明書、パスワード、二要素認証によるセッションが必要。/ Kura's API: requires a session begun with a client certificate, a password and a second factor."},
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": crate::portal::SESSION_COOKIE},
            "clientCertificate": {"type": "mutualTLS"}
        }},
        "security": [{"clientCertificate": []}],
        "paths": paths,
    }))
    .into_response()
}

fn summary(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("GET", "/api/v1/openapi.json") => "この文書 / this document",
        ("POST", "/api/v1/session") => "ログイン（パスワードと確認コード、JSON）/ sign in with password and code (JSON)",
        ("GET", "/api/v1/me") => "ログイン中の利用者 / the signed-in user",
        ("GET", "/api/v1/datasets") => "データセット一覧 / datasets in the catalogue",
        ("GET", "/api/v1/users") => "利用者一覧 / users",
        ("GET", "/api/v1/inventory") => "アカウント棚卸し / account inventory (HX-9)",
        ("POST", "/api/v1/users") => "利用者の作成 / create a user",
        ("POST", "/api/v1/users/{login}/reset-password") => "パスワード再設定 / reset a password",
        ("POST", "/api/v1/users/{login}/{action}") => {
            "ロック・解除・有効化・停止・廃止・証明書失効 / lock, unlock, activate, suspend, disable, revoke certificates"
        }
        _ => "",
    }
}
