//! The portal's handlers: sign-in step by step (password, second factor or enrolment, a new
//! password after a reset, the second-device confirmation), the account page and the
//! operators' user administration. Who may reach each is decided before they run, by the
//! route table ([`crate::routes`]); they answer with pages ([`crate::pages`]) and, when
//! refused, with a [`WebError`].

use crate::actions::{ActionForm, CreateForm, Portal, after_second_factor, apply_action, create, login_refused};
use crate::pages;
use crate::web::{Ctx, FormBody, LANG_COOKIE, Lang, PRE_COOKIE, Signed, WebError, WebResult, cookie, set_cookie};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kura_accounts::session::{Session, SessionEnd, SessionState};
use kura_accounts::{AccountsError, LoginRefused, Who};
use kura_gate::Failure;
use kura_ledger::entry::Actor;
use serde::Deserialize;

/// A random hex token of `n` bytes (empty if the system's randomness failed: such a token
/// matches nothing).
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if kura_crypto::random_bytes(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

/// The stylesheet.
pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], pages::CSS).into_response()
}

/// Browsers ask for it on their own; an empty answer (not a 404, which counts as scanning).
pub(crate) async fn favicon() -> Response {
    (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "public, max-age=86400")]).into_response()
}

/// Chooses the pages' language (`en`, anything else Japanese) and goes home.
pub(crate) async fn set_lang(Path(lang): Path<String>) -> Response {
    let v = if lang == "en" { "en" } else { "ja" };
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(LANG_COOKIE, v, Some(31_536_000)));
    res
}

/// Why the login page is shown (a session that ended, and when).
#[derive(Deserialize)]
pub(crate) struct EndQuery {
    end: Option<String>,
    at: Option<i64>,
}

/// The pre-sign-in double-submit token: the browser's, if it has a usable one, else a new one.
fn pre_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, PRE_COOKIE).filter(|c| c.len() >= 32)
}

pub(crate) async fn login_page(lang: Lang, headers: HeaderMap, Query(q): Query<EndQuery>) -> Response {
    let pre = pre_token(&headers).unwrap_or_else(|| random_hex(32));
    let notice = q.end.as_deref().map(|e| SessionEnd::parse(e, q.at.unwrap_or(0)).message());
    let mut res = pages::login(lang, &pre, notice.as_deref(), None, StatusCode::OK);
    res.headers_mut().append(header::SET_COOKIE, set_cookie(PRE_COOKIE, &pre, None));
    res
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    login: String,
    password: String,
}

/// The response that moves a session to its next step, with the session's new token.
pub(crate) fn step_response(portal: &Portal, token: &str, mut res: Response) -> Response {
    res.headers_mut().append(header::SET_COOKIE, set_cookie(portal.listener.cookie(), token, None));
    res
}

/// The redirect to a sign-in step, with the session's new token.
fn to_step(portal: &Portal, token: &str, state: SessionState) -> Response {
    step_response(portal, token, Redirect::to(pages::step_path(state)).into_response())
}

pub(crate) async fn login_submit(
    State(portal): State<Portal>,
    ctx: Ctx,
    headers: HeaderMap,
    FormBody(f): FormBody<LoginForm>,
) -> WebResult {
    let pre = pre_token(&headers).unwrap_or_default();
    let who = Who { actor: Actor { user: f.login.clone(), ..ctx.who.actor.clone() }, ..ctx.who.clone() };
    match portal.accounts.check_password(&who, &f.login, &f.password, &ctx.peer.fingerprint).await {
        Ok(ok) => {
            let state = if ok.enrolled { SessionState::SecondFactor } else { SessionState::Enrol };
            let (token, _) = portal
                .accounts
                .start_session(&who, &f.login, &ctx.peer.fingerprint, portal.listener.as_str(), state)
                .await
                .map_err(WebError::store)?;
            Ok(to_step(&portal, &token, state))
        }
        Err(refusal) => {
            let (status, msg) = login_refused(&portal, &ctx, refusal);
            Ok(pages::login(ctx.lang, &pre, None, Some(&msg), status))
        }
    }
}

pub(crate) async fn second_page(ctx: Signed) -> Response {
    pages::second_factor(ctx.lang, &ctx.session.csrf, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    code: String,
}

/// What a second factor step came to: refused, or accepted and the session moved on (or not,
/// if the store failed).
type FactorOutcome<T> = Result<(T, Result<(SessionState, String), AccountsError>), LoginRefused>;

/// Runs a second-factor step and the session's advance after it as one task that finishes even
/// if the client goes away: a code accepted (its time step used up) always moves the session
/// on, so entering the same code again is never counted as a failure.
async fn factor_then_advance<T, F>(portal: &Portal, ctx: &Signed, step: F) -> FactorOutcome<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, LoginRefused>> + Send + 'static,
{
    let (portal, ctx) = (portal.clone(), ctx.clone());
    let task = tokio::spawn(async move {
        let accepted = step.await?;
        Ok((accepted, after_second_factor(&portal, &ctx, &ctx.session).await))
    });
    task.await.unwrap_or_else(|e| Err(LoginRefused::Error(AccountsError::Task(e))))
}

/// A locked account's refusal: a page of its own (the form would only be refused again).
fn locked(refusal: &LoginRefused) -> Option<WebError> {
    matches!(refusal, LoginRefused::Locked { .. }).then(|| WebError::bilingual(StatusCode::FORBIDDEN, refusal.to_string()))
}

pub(crate) async fn second_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CodeForm>) -> WebResult {
    let (accounts, who, login) = (portal.accounts.clone(), ctx.who.clone(), ctx.session.login.clone());
    let step = async move { accounts.check_second_factor(&who, &login, &f.code).await };
    match factor_then_advance(&portal, &ctx, step).await {
        Ok(((), advanced)) => {
            let (next, token) = advanced.map_err(WebError::store)?;
            Ok(to_step(&portal, &token, next))
        }
        Err(refusal) => match locked(&refusal) {
            Some(e) => Err(e),
            None => {
                let (status, msg) = login_refused(&portal, &ctx, refusal);
                Ok(pages::second_factor(ctx.lang, &ctx.session.csrf, Some(&msg), status))
            }
        },
    }
}

pub(crate) async fn enrol_page(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let e = portal.accounts.begin_enrolment(&ctx.session.login).await.map_err(WebError::store)?;
    Ok(pages::enrol(ctx.lang, &ctx.session.csrf, &e, None, StatusCode::OK))
}

pub(crate) async fn enrol_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CodeForm>) -> WebResult {
    let (accounts, who, login) = (portal.accounts.clone(), ctx.who.clone(), ctx.session.login.clone());
    let step = async move { accounts.finish_enrolment(&who, &login, &f.code).await };
    match factor_then_advance(&portal, &ctx, step).await {
        Ok((codes, advanced)) => {
            let (next, token) = advanced.map_err(WebError::store)?;
            Ok(step_response(&portal, &token, pages::recovery_codes(ctx.lang, &codes, pages::step_path(next))))
        }
        Err(refusal) => match locked(&refusal) {
            Some(e) => Err(e),
            None => {
                // The same secret again (an enrolment in progress keeps it).
                let e = portal.accounts.begin_enrolment(&ctx.session.login).await.map_err(WebError::store)?;
                let (status, msg) = login_refused(&portal, &ctx, refusal);
                Ok(pages::enrol(ctx.lang, &ctx.session.csrf, &e, Some(&msg), status))
            }
        },
    }
}

pub(crate) async fn new_password_page(ctx: Signed) -> Response {
    pages::new_password(ctx.lang, &ctx.session.csrf, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct NewPasswordForm {
    new: String,
}

pub(crate) async fn new_password_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<NewPasswordForm>) -> WebResult {
    let s = &ctx.session;
    match portal.accounts.set_new_password(&ctx.who, s, &f.new).await {
        Ok(()) => {}
        Err(e) if e.is_internal() => return Err(e.into()),
        Err(e) => return Ok(pages::new_password(ctx.lang, &s.csrf, Some(&e.to_string()), StatusCode::UNPROCESSABLE_ENTITY)),
    }
    let others = portal.accounts.other_sessions(s).await.map_err(WebError::store)?;
    let next = if others.is_empty() { SessionState::Active } else { SessionState::Confirm };
    let token = portal.accounts.advance_session(&ctx.who, s, next).await.map_err(WebError::store)?;
    Ok(to_step(&portal, &token, next))
}

pub(crate) async fn confirm_page(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let others = portal.accounts.other_sessions(&ctx.session).await.map_err(WebError::store)?;
    Ok(pages::confirm(ctx.lang, &ctx.session.csrf, &others))
}

pub(crate) async fn confirm_submit(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    let (_, token) = portal.accounts.confirm_session(&ctx.who, &ctx.session).await.map_err(WebError::store)?;
    Ok(step_response(&portal, &token, Redirect::to("/").into_response()))
}

/// The answer that ends a browser's session: to the login page saying why, cookie cleared.
fn signed_out(portal: &Portal, end: &str) -> Response {
    let mut res = Redirect::to(&format!("/login?end={end}")).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(portal.listener.cookie(), "", Some(0)));
    res
}

pub(crate) async fn logout(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    portal.accounts.end_session(&ctx.who, &ctx.session, SessionEnd::SignedOut).await.map_err(WebError::store)?;
    Ok(signed_out(&portal, SessionEnd::SignedOut.as_str()))
}

pub(crate) async fn home(State(portal): State<Portal>, ctx: Signed) -> Response {
    pages::home(ctx.lang, &ctx.session, portal.listener == crate::web::Listener::Operator)
}

/// The account page, with a message and its status.
async fn account(portal: &Portal, lang: Lang, s: &Session, msg: Option<&str>, status: StatusCode) -> WebResult {
    let u = portal.accounts.user(&s.login).await.map_err(WebError::store)?;
    Ok(pages::account(lang, s, &u, msg, status))
}

pub(crate) async fn account_page(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    account(&portal, ctx.lang, &ctx.session, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    new: String,
}

/// The user's own password change. A wrong current password is a failed sign-in: it counts
/// toward the account's lock (which ends the session) and the address's block.
pub(crate) async fn change_password(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<PasswordForm>) -> WebResult {
    let s = &ctx.session;
    let (msg, status) = match portal.accounts.change_password(&ctx.who, &s.login, &f.current, &f.new).await {
        Ok(()) => ("パスワードを変更しました / password changed".to_string(), StatusCode::OK),
        Err(AccountsError::Locked(_)) => {
            portal.door.failure(ctx.client, Failure::FailedLogin);
            return Ok(signed_out(&portal, SessionEnd::AccountChanged.as_str()));
        }
        Err(e @ AccountsError::Invalid { field: "current password", .. }) => {
            portal.door.failure(ctx.client, Failure::FailedLogin);
            (e.to_string(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e @ (AccountsError::WeakPassword(_) | AccountsError::Invalid { .. })) => (e.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        Err(e) => return Err(WebError::store(e)),
    };
    account(&portal, ctx.lang, s, Some(&msg), status).await
}

/// The user list with a message at the top.
async fn admin_page(portal: &Portal, ctx: &Signed, msg: Option<&str>) -> WebResult {
    let rows = portal.accounts.inventory().await.map_err(WebError::store)?;
    Ok(pages::admin_users(ctx.lang, &ctx.session, &rows, msg))
}

pub(crate) async fn admin_users(State(portal): State<Portal>, ctx: Signed) -> WebResult {
    admin_page(&portal, &ctx, None).await
}

/// An operator's form result: the request's mistakes are shown on the page, Kura's own
/// failures answered as errors.
fn shown(outcome: Result<String, AccountsError>) -> Result<String, WebError> {
    match outcome {
        Ok(m) => Ok(m),
        Err(e) if e.is_internal() => Err(e.into()),
        Err(e) => Ok(e.to_string()),
    }
}

pub(crate) async fn admin_create(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CreateForm>) -> WebResult {
    let msg = shown(create(&portal, &ctx.who, &f).await)?;
    admin_page(&portal, &ctx, Some(&msg)).await
}

pub(crate) async fn admin_action(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((login, action)): Path<(String, String)>,
    FormBody(f): FormBody<ActionForm>,
) -> WebResult {
    let msg = shown(apply_action(&portal, &ctx, &login, &action, &f).await)?;
    admin_page(&portal, &ctx, Some(&msg)).await
}
