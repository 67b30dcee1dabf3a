//! The portal and the JSON API behind the front door.
//!
//! Every route is listed once in [`ROUTES`] with who may use it and on which listener; a
//! request for anything else is refused (deny by default). The middleware stack, outermost
//! first:
//!
//! 1. security headers on every response (a CSP with no external source, HSTS, `no-store`,
//!    `nosniff`, no framing, no referrer) and a request ID;
//! 2. access: the route's rule from [`ROUTES`], the session from the cookie checked against
//!    the client certificate of the connection (HX-5), idle and absolute timeouts (HIC-U2),
//!    the role (403 if it is not admitted);
//! 3. CSRF: every request that is not GET/HEAD carries the session's token (form field `csrf`
//!    or header `X-CSRF-Token`), or before sign-in the login form's double-submit token; and a
//!    browser's `Sec-Fetch-Site` must be `same-origin` or `none`. Its body is read here, within
//!    the front door's body deadline and 64 KiB.
//!
//! Requests from a site on the domain blocklist (`Origin`, `Referer`) are refused; refusals a
//! client can cause at will (unknown paths, CSRF, roles) count toward the address's automatic
//! block and are recorded without flooding the ledger ([`kura_accounts::refusals`]).
//!
//! The two listeners are kept apart: each has its own session cookie, and a session is served
//! only on the listener it began on. The session token changes at every sign-in step.

use crate::front::{FrontDoor, Peer};
use crate::pages::{self, Lang};
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use kura_accounts::session::{Session, SessionEnd, SessionState};
use kura_accounts::{Accounts, AccountsError, LoginRefused, NewUser, Resetter, Role, Transition, Who};
use kura_gate::Failure;
use kura_ledger::entry::Actor;
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;

/// The portal's session cookie. `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-kura";
/// The operators' listener's session cookie: browsers send cookies to every port of a host, so
/// each listener has its own name (and the store binds each session to its listener).
pub const OPERATOR_SESSION_COOKIE: &str = "__Host-kura-op";
/// The login form's double-submit cookie (CSRF before there is a session).
pub const PRE_COOKIE: &str = "__Host-kura-pre";
/// The language cookie.
pub const LANG_COOKIE: &str = "kura-lang";

/// Which listener a router serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The portal and API for researchers, custodians, reviewers, providers and auditors.
    Portal,
    /// The operators' listener (closed unless configured): account administration.
    Operator,
}

impl Listener {
    /// Its name in the store of record (sessions are bound to it).
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Portal => "portal",
            Listener::Operator => "operator",
        }
    }

    /// Its session cookie.
    pub fn cookie(self) -> &'static str {
        match self {
            Listener::Portal => SESSION_COOKIE,
            Listener::Operator => OPERATOR_SESSION_COOKIE,
        }
    }
}

/// Who may use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No session needed (the client certificate still is): login pages, static files.
    Open,
    /// A session part-way through signing in, in one of these states.
    SigningIn(&'static [SessionState]),
    /// Any session, signed in or part-way (sign-out).
    AnySession,
    /// A signed-in session of one of these roles.
    Roles(&'static [Role]),
}

/// One route: method, path pattern, access, the listeners that serve it, and its handler. The
/// router is built from these rules and nothing else, so a route cannot be served without its
/// rule, nor with another method than its rule names.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern as routed (`{login}` for a parameter).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
    /// Served on the portal listener.
    pub portal: bool,
    /// Served on the operator listener.
    pub operator: bool,
    /// The handler, routed for the rule's method.
    handler: fn(MethodFilter) -> MethodRouter<Portal>,
}

const ALL: &[Role] = &Role::ALL;
const DATA: &[Role] = &[Role::Researcher, Role::Custodian, Role::Reviewer];
const ADMIN: &[Role] = &[Role::Operator];
const OVERSIGHT: &[Role] = &[Role::Operator, Role::Auditor];
const CUSTODIAN: &[Role] = &[Role::Custodian];

const fn rule(
    method: &'static str,
    path: &'static str,
    access: Access,
    portal: bool,
    operator: bool,
    handler: fn(MethodFilter) -> MethodRouter<Portal>,
) -> Rule {
    Rule { method, path, access, portal, operator, handler }
}

/// Every route of the portal and the API. Anything not here is refused.
pub static ROUTES: &[Rule] = &[
    rule("GET", "/static/kura.css", Access::Open, true, true, |m| on(m, css)),
    rule("GET", "/favicon.ico", Access::Open, true, true, |m| on(m, favicon)),
    rule("GET", "/login", Access::Open, true, true, |m| on(m, login_page)),
    rule("POST", "/login", Access::Open, true, true, |m| on(m, login_submit)),
    rule("GET", "/lang/{lang}", Access::Open, true, true, |m| on(m, set_lang)),
    rule("GET", "/login/second", Access::SigningIn(&[SessionState::SecondFactor]), true, true, |m| on(m, second_page)),
    rule("POST", "/login/second", Access::SigningIn(&[SessionState::SecondFactor]), true, true, |m| on(m, second_submit)),
    rule("GET", "/login/enrol", Access::SigningIn(&[SessionState::Enrol]), true, true, |m| on(m, enrol_page)),
    rule("POST", "/login/enrol", Access::SigningIn(&[SessionState::Enrol]), true, true, |m| on(m, enrol_submit)),
    rule("GET", "/login/password", Access::SigningIn(&[SessionState::NewPassword]), true, true, |m| on(m, new_password_page)),
    rule("POST", "/login/password", Access::SigningIn(&[SessionState::NewPassword]), true, true, |m| on(m, new_password_submit)),
    rule("GET", "/login/confirm", Access::SigningIn(&[SessionState::Confirm]), true, true, |m| on(m, confirm_page)),
    rule("POST", "/login/confirm", Access::SigningIn(&[SessionState::Confirm]), true, true, |m| on(m, confirm_submit)),
    rule("POST", "/logout", Access::AnySession, true, true, |m| on(m, logout)),
    rule("GET", "/", Access::Roles(ALL), true, true, |m| on(m, home)),
    rule("GET", "/account", Access::Roles(ALL), true, true, |m| on(m, account_page)),
    rule("POST", "/account/password", Access::Roles(ALL), true, true, |m| on(m, change_password)),
    rule("GET", "/admin/users", Access::Roles(ADMIN), false, true, |m| on(m, admin_users)),
    rule("POST", "/admin/users", Access::Roles(ADMIN), false, true, |m| on(m, admin_create)),
    rule("POST", "/admin/users/{login}/{action}", Access::Roles(ADMIN), false, true, |m| on(m, admin_action)),
    rule("GET", "/api/v1/openapi.json", Access::Open, true, true, |m| on(m, crate::api::openapi)),
    rule("POST", "/api/v1/session", Access::Open, true, true, |m| on(m, crate::api::sign_in)),
    rule("GET", "/api/v1/me", Access::Roles(ALL), true, true, |m| on(m, crate::api::me)),
    rule("GET", "/api/v1/datasets", Access::Roles(DATA), true, false, |m| on(m, crate::api::datasets)),
    rule("GET", "/api/v1/users", Access::Roles(OVERSIGHT), true, true, |m| on(m, crate::api::users)),
    rule("GET", "/api/v1/inventory", Access::Roles(OVERSIGHT), true, true, |m| on(m, crate::api::inventory)),
    rule("POST", "/api/v1/users", Access::Roles(ADMIN), false, true, |m| on(m, crate::api::create_user)),
    rule("POST", "/api/v1/users/{login}/{action}", Access::Roles(ADMIN), false, true, |m| on(m, crate::api::user_action)),
    // Custodians reset the data roles of their own institution on the portal; operators reset
    // on their own listener only (the rule of who may reset whom: kura_accounts::Resetter).
    rule("POST", "/api/v1/users/{login}/reset-password", Access::Roles(CUSTODIAN), true, false, |m| on(m, crate::api::reset_password)),
    rule("POST", "/api/v1/users/{login}/reset-password", Access::Roles(ADMIN), false, true, |m| on(m, crate::api::reset_password)),
];

impl Rule {
    /// Whether `listener` serves this route.
    pub fn served_on(&self, listener: Listener) -> bool {
        match listener {
            Listener::Portal => self.portal,
            Listener::Operator => self.operator,
        }
    }
}

/// The rule for a routed request, if the listener serves it. HEAD is served like GET.
pub fn rule_for(listener: Listener, method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTES.iter().find(|r| r.method == method && r.path == path && r.served_on(listener))
}

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
}

/// What the access middleware found, for the handlers.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// For audit entries.
    pub who: Who,
    /// The session, if the route needs one.
    pub session: Option<Session>,
    /// Language of the pages.
    pub lang: Lang,
    /// The connection's peer.
    pub peer: Peer,
    /// The client's address (the socket's, or from a trusted proxy).
    pub client: std::net::IpAddr,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = Response;

    /// What the access middleware put on the request; every routed request has it.
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Response> {
        parts.extensions.get::<Ctx>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler ran without the access middleware");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}

/// A request on a route whose rule requires a session, with that session: handlers of such
/// routes take this instead of looking the session up (and so cannot find it missing). Reads
/// as its [`Ctx`] otherwise.
#[derive(Clone, Debug)]
pub struct Signed {
    /// What the access middleware found.
    pub ctx: Ctx,
    /// The session the route's rule required.
    pub session: Session,
}

impl std::ops::Deref for Signed {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        match ctx.session.clone() {
            Some(session) => Ok(Signed { ctx, session }),
            None => {
                tracing::error!(path = %parts.uri.path(), "a route that needs a session has a rule that does not require one");
                Err(pages::error(ctx.lang, StatusCode::INTERNAL_SERVER_ERROR, "内部エラー", "internal error"))
            }
        }
    }
}

/// Builds the router of one listener.
pub fn router(portal: Portal) -> Router {
    let mut r = Router::new();
    for rule in ROUTES.iter().filter(|rule| rule.served_on(portal.listener)) {
        let filter = match rule.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            other => unreachable!("route table: method {other} of {} is neither GET nor POST", rule.path),
        };
        r = r.route(rule.path, (rule.handler)(filter));
    }
    r.route_layer(axum::middleware::from_fn_with_state(portal.clone(), access))
        .fallback(not_found)
        // A path this listener serves, with a method it does not: refused and counted like any
        // unknown route, never a bare 405 that the access middleware did not see.
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(portal)
}

/// Whether a browser marked the request as sent by another site (`Sec-Fetch-Site:
/// cross-site` or `same-site`): what any page can make a visitor's browser send, certificate
/// and all.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|site| site != "same-origin" && site != "none")
}

/// What a refused request counts as toward the address's block: [`Failure::CrossSite`], which
/// counts toward none, when a browser says another site sent it — a page with a hundred
/// `<img>` tags must not block the institution of everyone who opens it — else `failure`. (A
/// client may claim the header falsely to probe unknown paths unblocked; it gets 404s, and its
/// refusals by role and CSRF are still in the audit trail under its certificate.)
fn as_counted(headers: &HeaderMap, failure: Failure) -> Failure {
    if from_another_site(headers) { Failure::CrossSite } else { failure }
}

/// A path no client of Kura asks for: counted toward the address's automatic block, so a burst
/// of them (scanning) blocks it (HIC-S9).
async fn not_found(State(portal): State<Portal>, req: Request) -> Response {
    let lang = Lang::of(req.headers());
    if let Some(peer) = req.extensions().get::<Peer>() {
        let client = client_of(&portal, peer, req.headers());
        portal.door.failure(client, as_counted(req.headers(), Failure::Scanning));
    }
    pages::error(lang, StatusCode::NOT_FOUND, "ページがありません", "not found")
}

/// The client's address: the socket's, or behind a trusted proxy the one `X-Forwarded-For`
/// gives. Every header line is read (a proxy may append its own line after the client's).
fn client_of(portal: &Portal, peer: &Peer, headers: &HeaderMap) -> std::net::IpAddr {
    // Bytes that are not text are kept as replacement characters (they make that entry
    // unreadable, not the whole line: the address a proxy appended after them still counts).
    let lines: Vec<String> =
        headers.get_all("x-forwarded-for").iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let joined = lines.join(",");
    portal.door.gate.client_addr(peer.addr.ip(), (!lines.is_empty()).then_some(joined.as_str()))
}

/// Security headers on every response (HX-5, HIC-S12); a request the framework itself
/// refused (a malformed path, query or body) is answered plainly, never with the parser's
/// own words.
async fn security_headers(req: Request, next: Next) -> Response {
    let (lang, path) = (Lang::of(req.headers()), req.uri().path().to_string());
    let mut res = next.run(req).await;
    let plain_text = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/plain"));
    if res.status().is_client_error() && plain_text {
        res = refuse(
            lang,
            &path,
            res.status(),
            "要求の形式が正しくありません",
            "the request is malformed: check its address, parameters and body",
            None,
        );
    }
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "strict-transport-security", "max-age=63072000; includeSubDomains");
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=(), usb=()");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The JSON sign-in route for tools.
pub(crate) const SIGN_IN_API: &str = "/api/v1/session";

pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}"))
        .unwrap_or(HeaderValue::from_static(""))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if kura_crypto::random_bytes(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// A refusal in the form the client expects: JSON for the API, a page (or a redirect to the
/// login page, clearing the named session cookie) for the portal.
fn refuse(lang: Lang, path: &str, status: StatusCode, ja: &str, en: &str, login_with: Option<(&str, &SessionEnd)>) -> Response {
    if is_api(path) {
        return (status, Json(serde_json::json!({"error": en, "message_ja": ja}))).into_response();
    }
    match login_with {
        Some((cookie_name, end)) => {
            let at = match end {
                SessionEnd::Replaced(t) => format!("&at={t}"),
                _ => String::new(),
            };
            let mut res = Redirect::to(&format!("/login?end={}{at}", end.as_str())).into_response();
            res.headers_mut().insert(header::SET_COOKIE, set_cookie(cookie_name, "", Some(0)));
            res
        }
        None => pages::error(lang, status, ja, en),
    }
}

/// Whether a URL in a request header (`Origin`, `Referer`) names a site on the domain
/// blocklist.
fn from_listed_site(portal: &Portal, headers: &HeaderMap) -> bool {
    [header::ORIGIN, header::REFERER]
        .iter()
        .flat_map(|h| headers.get_all(h).iter())
        .filter_map(|v| v.to_str().ok())
        .any(|url| portal.door.gate.blocks_url(url))
}

/// Largest request body accepted (forms and JSON).
const MAX_BODY: usize = 64 * 1024;

/// Access control and CSRF (deny by default).
async fn access(State(portal): State<Portal>, mut req: Request, next: Next) -> Response {
    let lang = Lang::of(req.headers());
    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return pages::error(lang, StatusCode::FORBIDDEN, "クライアント証明書が必要です", "a client certificate is required");
    };
    let client = client_of(&portal, &peer, req.headers());
    if client != peer.addr.ip() && !portal.door.gate.check(client, SystemTime::now()).allowed() {
        return refuse(lang, &path, StatusCode::FORBIDDEN, "接続元が許可されていません", "your address may not connect", None);
    }
    if from_listed_site(&portal, req.headers()) {
        portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
        return refuse(lang, &path, StatusCode::FORBIDDEN, "遮断対象のサイトからの要求です", "request from a blocked site", None);
    }
    let Some(rule) = rule_for(portal.listener, req.method(), &path) else {
        portal.door.failure(client, as_counted(req.headers(), Failure::Scanning));
        return refuse(lang, &path, StatusCode::NOT_FOUND, "ページがありません", "not found", None);
    };
    let request_id = random_hex(8);
    let mut who = Who {
        actor: Actor { user: String::new(), institution: String::new(), cert: peer.fingerprint.clone() },
        request: request_id.clone(),
    };

    // The session, where the rule needs one.
    let cookie_name = portal.listener.cookie();
    let session = match rule.access {
        Access::Open => None,
        _ => {
            let sign_in_first = |end: &SessionEnd| {
                refuse(lang, &path, StatusCode::UNAUTHORIZED, "ログインしてください", "sign in first", Some((cookie_name, end)))
            };
            let Some(token) = cookie(req.headers(), cookie_name).filter(|t| !t.is_empty()).map(str::to_string) else {
                return sign_in_first(&SessionEnd::Unknown);
            };
            match portal.accounts.session(&who, &token, &peer.fingerprint, portal.listener.as_str(), true).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(end)) => return sign_in_first(&end),
                Err(e) => return internal(lang, &path, e),
            }
        }
    };
    if let Some(s) = &session {
        who.actor.user = s.login.clone();
        who.actor.institution = s.institution.clone();
        let admitted = match rule.access {
            Access::Open | Access::AnySession => true,
            Access::SigningIn(states) => states.contains(&s.state),
            Access::Roles(roles) => s.state == SessionState::Active && roles.contains(&s.role),
        };
        if !admitted {
            if s.state != SessionState::Active {
                // Part-way through signing in: back to the step the session is at.
                if is_api(&path) {
                    return refuse(lang, &path, StatusCode::UNAUTHORIZED, "ログインを完了してください", "finish signing in first", None);
                }
                return Redirect::to(pages::step_path(s.state)).into_response();
            }
            portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
            let object = format!("{} {path}", req.method());
            if let Err(e) = portal.accounts.record_refusal(&who, "access.denied", &object, &format!("role {}", s.role)).await {
                return internal(lang, &path, e);
            }
            return refuse(lang, &path, StatusCode::FORBIDDEN, "この操作の権限がありません", "your role may not do this", None);
        }
    }

    // CSRF on everything that changes state.
    if req.method() != Method::GET && req.method() != Method::HEAD {
        // A browser's word on where the request comes from. (`Origin: null` is not refused:
        // under `Referrer-Policy: no-referrer` browsers send it on their own forms' posts.)
        if from_another_site(req.headers()) {
            portal.door.failure(client, Failure::CrossSite);
            if let Err(e) = portal.accounts.record_refusal(&who, "access.cross_site", &path, "sent by another site").await {
                return internal(lang, &path, e);
            }
            return refuse(lang, &path, StatusCode::FORBIDDEN, "不正な送信元です", "cross-site request refused", None);
        }
        // The body, within the deadline and the size limit, before anything looks at it.
        let (parts, body) = req.into_parts();
        let bytes = match tokio::time::timeout(portal.door.limits.body, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return refuse(lang, &path, StatusCode::PAYLOAD_TOO_LARGE, "送信内容が大きすぎます", "request too large", None),
            Err(_) => {
                portal.door.stats.deadlines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return refuse(
                    lang,
                    &path,
                    StatusCode::REQUEST_TIMEOUT,
                    "送信が時間内に終わりませんでした",
                    "the request body did not arrive in time",
                    None,
                );
            }
        };
        req = Request::from_parts(parts, Body::from(bytes.clone()));
        // Tools sign in with JSON and no cookie yet: a JSON body cannot be sent cross-site by
        // a form, nor by a script without a CORS preflight (which Kura never grants), so the
        // content type stands in for the token on that one route.
        if path == SIGN_IN_API && session.is_none() {
            let json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
            if !json {
                return refuse(lang, &path, StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON で送信してください", "send JSON", None);
            }
            req.extensions_mut().insert(Ctx { who, session, lang, peer, client });
            return next.run(req).await;
        }
        let expected = match &session {
            Some(s) => Some(s.csrf.clone()),
            None => cookie(req.headers(), PRE_COOKIE).filter(|c| c.len() >= 32).map(str::to_string),
        };
        let header_token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let form_token = form_field(&bytes, "csrf");
        let given = header_token.or(form_token);
        let ok = matches!((&expected, &given), (Some(e), Some(g)) if constant_eq(e.as_bytes(), g.as_bytes()));
        if !ok {
            portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
            if let Err(e) = portal.accounts.record_refusal(&who, "access.csrf", &path, "missing or wrong CSRF token").await {
                return internal(lang, &path, e);
            }
            return refuse(
                lang,
                &path,
                StatusCode::FORBIDDEN,
                "フォームの有効期限が切れたか、不正な送信です。もう一度お試しください",
                "invalid or missing CSRF token: reload the page and try again",
                None,
            );
        }
    }
    req.extensions_mut().insert(Ctx { who, session, lang, peer, client });
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub(crate) fn internal(lang: Lang, path: &str, e: AccountsError) -> Response {
    tracing::error!("{e}");
    let status = if matches!(e, AccountsError::Busy) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
    refuse(
        lang,
        path,
        status,
        "処理できませんでした。時間をおいて再度お試しください",
        "the request could not be completed: try again later",
        None,
    )
}

// ---- pages ----------------------------------------------------------------------------

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], pages::CSS).into_response()
}

/// Browsers ask for it on their own; an empty answer (not a 404, which counts as scanning).
async fn favicon() -> Response {
    (StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "public, max-age=86400")]).into_response()
}

async fn set_lang(Path(lang): Path<String>) -> Response {
    let v = if lang == "en" { "en" } else { "ja" };
    let mut res = Redirect::to("/").into_response();
    if let Ok(c) = HeaderValue::from_str(&format!("{LANG_COOKIE}={v}; Path=/; Secure; SameSite=Strict; Max-Age=31536000")) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

#[derive(Deserialize)]
struct EndQuery {
    end: Option<String>,
    at: Option<i64>,
}

async fn login_page(ctx: Ctx, headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<EndQuery>) -> Response {
    let pre = cookie(&headers, PRE_COOKIE).filter(|c| c.len() >= 32).map(str::to_string).unwrap_or_else(|| random_hex(32));
    let notice = q.end.as_deref().map(|e| SessionEnd::parse(e, q.at.unwrap_or(0)).message());
    let mut res = pages::login(ctx.lang, &pre, notice.as_deref(), None, StatusCode::OK);
    res.headers_mut().append(header::SET_COOKIE, set_cookie(PRE_COOKIE, &pre, None));
    res
}

#[derive(Deserialize)]
struct LoginForm {
    login: String,
    password: String,
}

/// A form body. A malformed one is answered plainly, never with the parser's own words.
pub(crate) struct FormBody<T>(pub(crate) T);

/// A JSON body, answered like [`FormBody`] when malformed.
pub(crate) struct JsonBody<T>(pub(crate) T);

fn malformed(lang: Lang, path: &str) -> Response {
    refuse(
        lang,
        path,
        StatusCode::UNPROCESSABLE_ENTITY,
        "送信内容の形式が正しくありません。項目と型を確かめてください（API は /api/v1/openapi.json）",
        "the request body is not in the expected form: check its fields and their types (the API: /api/v1/openapi.json)",
        None,
    )
}

/// A request's body decoded by `decode`, or the plain answer to a malformed one.
async fn decoded<S: Send + Sync, T>(req: Request, state: &S, decode: impl FnOnce(&[u8]) -> Option<T>) -> Result<T, Response> {
    let (lang, path) = (Lang::of(req.headers()), req.uri().path().to_string());
    let bytes = <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(req, state).await.map_err(|_| malformed(lang, &path))?;
    decode(&bytes).ok_or_else(|| malformed(lang, &path))
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for FormBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        decoded(req, state, |b| serde_urlencoded::from_bytes(b).ok()).await.map(FormBody)
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        decoded(req, state, |b| serde_json::from_slice(b).ok()).await.map(JsonBody)
    }
}

/// The response that moves a session to its next step, with the session's new token.
fn step_response(portal: &Portal, token: &str, to: Response) -> Response {
    let mut res = to;
    res.headers_mut().append(header::SET_COOKIE, set_cookie(portal.listener.cookie(), token, None));
    res
}

async fn login_submit(State(portal): State<Portal>, ctx: Ctx, headers: HeaderMap, FormBody(f): FormBody<LoginForm>) -> Response {
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or_default().to_string();
    let who = Who { actor: Actor { user: f.login.clone(), ..ctx.who.actor.clone() }, ..ctx.who.clone() };
    match portal.accounts.check_password(&who, &f.login, &f.password, &ctx.peer.fingerprint).await {
        Ok(ok) => {
            let state = if ok.enrolled { SessionState::SecondFactor } else { SessionState::Enrol };
            match portal.accounts.start_session(&who, &f.login, &ctx.peer.fingerprint, portal.listener.as_str(), state).await {
                Ok((token, _)) => step_response(&portal, &token, Redirect::to(pages::step_path(state)).into_response()),
                Err(e) => internal(ctx.lang, "/login", e),
            }
        }
        Err(refusal) => login_refused(&portal, &ctx, refusal, |msg, status| pages::login(ctx.lang, &pre, None, Some(msg), status)),
    }
}

/// Turns a refused sign-in step into a response; wrong secrets count toward the address's
/// automatic block (HIC-S9).
pub(crate) fn login_refused(portal: &Portal, ctx: &Ctx, refusal: LoginRefused, render: impl Fn(&str, StatusCode) -> Response) -> Response {
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
    render(&msg, status)
}

async fn second_page(ctx: Signed) -> Response {
    pages::second_factor(ctx.lang, &ctx.session.csrf, None, StatusCode::OK)
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

/// After the second factor: a new password if the old one was reset, then the confirmation
/// step if the ID is signed in elsewhere (HX-11), else signed in. Returns the state and the
/// session's new token.
pub(crate) async fn after_second_factor(portal: &Portal, ctx: &Ctx, s: &Session) -> Result<(SessionState, String), AccountsError> {
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
        let s = &ctx.session;
        Ok((accepted, after_second_factor(&portal, &ctx, s).await))
    });
    task.await.unwrap_or_else(|e| Err(LoginRefused::Error(AccountsError::Internal(format!("second factor: {e}")))))
}

async fn second_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CodeForm>) -> Response {
    let s = &ctx.session;
    let (accounts, who, login) = (portal.accounts.clone(), ctx.who.clone(), s.login.clone());
    let step = async move { accounts.check_second_factor(&who, &login, &f.code).await };
    match factor_then_advance(&portal, &ctx, step).await {
        Ok(((), advanced)) => match advanced {
            Ok((next, token)) => step_response(&portal, &token, Redirect::to(pages::step_path(next)).into_response()),
            Err(e) => internal(ctx.lang, "/login/second", e),
        },
        Err(LoginRefused::Locked { until }) => {
            let msg = LoginRefused::Locked { until }.to_string();
            pages::error(ctx.lang, StatusCode::FORBIDDEN, &msg, &msg)
        }
        Err(refusal) => login_refused(&portal, &ctx, refusal, |msg, status| pages::second_factor(ctx.lang, &s.csrf, Some(msg), status)),
    }
}

async fn enrol_page(State(portal): State<Portal>, ctx: Signed) -> Response {
    let s = &ctx.session;
    match portal.accounts.begin_enrolment(&s.login).await {
        Ok(e) => pages::enrol(ctx.lang, &s.csrf, &e, None, StatusCode::OK),
        Err(e) => internal(ctx.lang, "/login/enrol", e),
    }
}

async fn enrol_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CodeForm>) -> Response {
    let s = &ctx.session;
    let (accounts, who, login) = (portal.accounts.clone(), ctx.who.clone(), s.login.clone());
    let step = async move { accounts.finish_enrolment(&who, &login, &f.code).await };
    match factor_then_advance(&portal, &ctx, step).await {
        Ok((codes, advanced)) => match advanced {
            Ok((next, token)) => step_response(&portal, &token, pages::recovery_codes(ctx.lang, &codes, pages::step_path(next))),
            Err(e) => internal(ctx.lang, "/login/enrol", e),
        },
        Err(LoginRefused::Locked { until }) => {
            let msg = LoginRefused::Locked { until }.to_string();
            pages::error(ctx.lang, StatusCode::FORBIDDEN, &msg, &msg)
        }
        Err(refusal) => {
            let lang = ctx.lang;
            match portal.accounts.begin_enrolment(&s.login).await {
                Ok(e) => login_refused(&portal, &ctx, refusal, |msg, status| pages::enrol(lang, &s.csrf, &e, Some(msg), status)),
                Err(e) => internal(lang, "/login/enrol", e),
            }
        }
    }
}

async fn new_password_page(ctx: Signed) -> Response {
    pages::new_password(ctx.lang, &ctx.session.csrf, None, StatusCode::OK)
}

#[derive(Deserialize)]
struct NewPasswordForm {
    new: String,
}

async fn new_password_submit(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<NewPasswordForm>) -> Response {
    let s = &ctx.session;
    match portal.accounts.set_new_password(&ctx.who, s, &f.new).await {
        Ok(()) => {}
        Err(e) if e.is_internal() => return internal(ctx.lang, "/login/password", e),
        Err(e) => return pages::new_password(ctx.lang, &s.csrf, Some(&e.to_string()), StatusCode::UNPROCESSABLE_ENTITY),
    }
    let next = match portal.accounts.other_sessions(s).await {
        Ok(others) if others.is_empty() => SessionState::Active,
        Ok(_) => SessionState::Confirm,
        Err(e) => return internal(ctx.lang, "/login/password", e),
    };
    match portal.accounts.advance_session(&ctx.who, s, next).await {
        Ok(token) => step_response(&portal, &token, Redirect::to(pages::step_path(next)).into_response()),
        Err(e) => internal(ctx.lang, "/login/password", e),
    }
}

async fn confirm_page(State(portal): State<Portal>, ctx: Signed) -> Response {
    let s = &ctx.session;
    match portal.accounts.other_sessions(s).await {
        Ok(others) => pages::confirm(ctx.lang, &s.csrf, &others),
        Err(e) => internal(ctx.lang, "/login/confirm", e),
    }
}

async fn confirm_submit(State(portal): State<Portal>, ctx: Signed) -> Response {
    match portal.accounts.confirm_session(&ctx.who, &ctx.session).await {
        Ok((_, token)) => step_response(&portal, &token, Redirect::to("/").into_response()),
        Err(e) => internal(ctx.lang, "/login/confirm", e),
    }
}

async fn logout(State(portal): State<Portal>, ctx: Signed) -> Response {
    if let Err(e) = portal.accounts.end_session(&ctx.who, &ctx.session, SessionEnd::SignedOut).await {
        return internal(ctx.lang, "/logout", e);
    }
    let mut res = Redirect::to("/login?end=signed_out").into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(portal.listener.cookie(), "", Some(0)));
    res
}

async fn home(State(portal): State<Portal>, ctx: Signed) -> Response {
    pages::home(ctx.lang, &ctx.session, portal.listener == Listener::Operator)
}

async fn account_page(State(portal): State<Portal>, ctx: Signed) -> Response {
    let s = &ctx.session;
    match portal.accounts.user(&s.login).await {
        Ok(u) => pages::account(ctx.lang, s, &u, None),
        Err(e) => internal(ctx.lang, "/account", e),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
}

/// The user's own password change. A wrong current password is a failed sign-in: it counts
/// toward the account's lock (which ends the session) and the address's block.
async fn change_password(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<PasswordForm>) -> Response {
    let s = &ctx.session;
    let outcome = portal.accounts.change_password(&ctx.who, &s.login, &f.current, &f.new).await;
    let msg = match &outcome {
        Ok(()) => "パスワードを変更しました / password changed".to_string(),
        Err(AccountsError::Locked(_)) => {
            portal.door.failure(ctx.client, Failure::FailedLogin);
            let mut res = Redirect::to("/login?end=account_changed").into_response();
            res.headers_mut().insert(header::SET_COOKIE, set_cookie(portal.listener.cookie(), "", Some(0)));
            return res;
        }
        Err(e @ AccountsError::Invalid { field: "current password", .. }) => {
            portal.door.failure(ctx.client, Failure::FailedLogin);
            e.to_string()
        }
        Err(e @ (AccountsError::WeakPassword(_) | AccountsError::Invalid { .. })) => e.to_string(),
        Err(_) => return internal(ctx.lang, "/account/password", outcome.err().unwrap_or(AccountsError::Internal(String::new()))),
    };
    match portal.accounts.user(&s.login).await {
        Ok(u) => {
            let mut res = pages::account(ctx.lang, s, &u, Some(&msg));
            if outcome.is_err() {
                *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            res
        }
        Err(e) => internal(ctx.lang, "/account", e),
    }
}

async fn admin_users(State(portal): State<Portal>, ctx: Signed) -> Response {
    match portal.accounts.inventory().await {
        Ok(rows) => pages::admin_users(ctx.lang, &ctx.session, &rows, None),
        Err(e) => internal(ctx.lang, "/admin/users", e),
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    pub(crate) login: String,
    pub(crate) role: String,
    pub(crate) institution: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) password: String,
}

pub(crate) async fn create(portal: &Portal, who: &Who, f: &CreateForm) -> Result<String, AccountsError> {
    let role: Role = f.role.parse()?;
    let new = NewUser { login: f.login.clone(), institution: f.institution.clone(), role, name: f.name.clone() };
    let pw = (!f.password.is_empty()).then_some(f.password.as_str());
    let u = portal.accounts.add_user(who, &new, pw).await?;
    Ok(format!("利用者 {} を作成しました（{}）/ user {} created ({})", u.login, u.state.as_str(), u.login, u.state.as_str()))
}

async fn admin_create(State(portal): State<Portal>, ctx: Signed, FormBody(f): FormBody<CreateForm>) -> Response {
    let msg = match create(&portal, &ctx.who, &f).await {
        Ok(m) => m,
        Err(e) if e.is_internal() => return internal(ctx.lang, "/admin/users", e),
        Err(e) => e.to_string(),
    };
    admin_after(&portal, &ctx, &msg).await
}

async fn admin_after(portal: &Portal, ctx: &Signed, msg: &str) -> Response {
    match portal.accounts.inventory().await {
        Ok(rows) => pages::admin_users(ctx.lang, &ctx.session, &rows, Some(msg)),
        Err(e) => internal(ctx.lang, "/admin/users", e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    #[serde(default)]
    pub(crate) password: String,
}

/// The resetter a signed-in session stands for.
pub(crate) fn resetter_of(ctx: &Signed) -> Resetter {
    let s = &ctx.session;
    Resetter::User { login: s.login.clone(), role: s.role, institution: s.institution.clone() }
}

/// Applies an administrative action to a user; the message says what happened. Certificates
/// revoked here are refused by this server at once, open connections included.
pub(crate) async fn apply_action(
    portal: &Portal,
    ctx: &Signed,
    login: &str,
    action: &str,
    f: &ActionForm,
) -> Result<String, AccountsError> {
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

async fn admin_action(
    State(portal): State<Portal>,
    ctx: Signed,
    Path((login, action)): Path<(String, String)>,
    FormBody(f): FormBody<ActionForm>,
) -> Response {
    let msg = match apply_action(&portal, &ctx, &login, &action, &f).await {
        Ok(m) => m,
        Err(e) if e.is_internal() => return internal(ctx.lang, "/admin/users", e),
        Err(e) => e.to_string(),
    };
    admin_after(&portal, &ctx, &msg).await
}
