//! The route table of the portal and the API, and the layers every request passes.
//!
//! Every route is listed once in [`ROUTES`] with who may use it, on which listener, and its
//! handler; the router is built from the table and a request for anything else is refused
//! (deny by default). The layers, outermost first:
//!
//! 1. security headers on every response (a CSP with no external source, HSTS, `no-store`,
//!    `nosniff`, no framing, no referrer), and the rendering of every [`WebError`] for the
//!    request (JSON under `/api/`, a page elsewhere);
//! 2. access: the route's rule, the session from the cookie checked against the client
//!    certificate of the connection (HX-5), idle and absolute timeouts (HIC-U2), the role
//!    (403 if it is not admitted);
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

use crate::actions::Portal;
use crate::pages;
use crate::portal::random_hex;
use crate::web::Peer;
use crate::web::{Ctx, Lang, Listener, PRE_COOKIE, SIGN_IN_API, Unrendered, WebError, cookie, is_api, set_cookie};
use crate::{airlock_api, airlock_pages, api, exchange_api, exchange_pages, portal, research_api, research_pages};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use kura_accounts::Role;
use kura_accounts::Who;
use kura_accounts::session::{SessionEnd, SessionState};
use kura_gate::Failure;
use kura_ledger::entry::Actor;
use serde_json::json;
use std::time::SystemTime;

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
const RESEARCHER: &[Role] = &[Role::Researcher];
const LIFECYCLE: &[Role] = &[Role::Researcher, Role::Custodian, Role::Reviewer, Role::Auditor];
const STEPS: &[Role] = &[Role::Researcher, Role::Custodian, Role::Reviewer];
const BRINGIN: &[Role] = &[Role::Researcher, Role::Custodian];
const SCANNER: &[Role] = &[Role::Custodian, Role::Operator];
const CERTIFICATE: &[Role] = &[Role::Researcher, Role::Custodian, Role::Auditor];
const PROJECT_STEPS: &[Role] = &[Role::Researcher, Role::Custodian];
const PROVIDER: &[Role] = &[Role::Provider];

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
    rule("GET", "/static/kura.css", Access::Open, true, true, |m| on(m, portal::css)),
    rule("GET", "/favicon.ico", Access::Open, true, true, |m| on(m, portal::favicon)),
    rule("GET", "/login", Access::Open, true, true, |m| on(m, portal::login_page)),
    rule("POST", "/login", Access::Open, true, true, |m| on(m, portal::login_submit)),
    rule("GET", "/lang/{lang}", Access::Open, true, true, |m| on(m, portal::set_lang)),
    rule("GET", "/login/second", Access::SigningIn(&[SessionState::SecondFactor]), true, true, |m| on(m, portal::second_page)),
    rule("POST", "/login/second", Access::SigningIn(&[SessionState::SecondFactor]), true, true, |m| on(m, portal::second_submit)),
    rule("GET", "/login/enrol", Access::SigningIn(&[SessionState::Enrol]), true, true, |m| on(m, portal::enrol_page)),
    rule("POST", "/login/enrol", Access::SigningIn(&[SessionState::Enrol]), true, true, |m| on(m, portal::enrol_submit)),
    rule("GET", "/login/password", Access::SigningIn(&[SessionState::NewPassword]), true, true, |m| on(m, portal::new_password_page)),
    rule("POST", "/login/password", Access::SigningIn(&[SessionState::NewPassword]), true, true, |m| on(m, portal::new_password_submit)),
    rule("GET", "/login/confirm", Access::SigningIn(&[SessionState::Confirm]), true, true, |m| on(m, portal::confirm_page)),
    rule("POST", "/login/confirm", Access::SigningIn(&[SessionState::Confirm]), true, true, |m| on(m, portal::confirm_submit)),
    rule("POST", "/logout", Access::AnySession, true, true, |m| on(m, portal::logout)),
    rule("GET", "/", Access::Roles(ALL), true, true, |m| on(m, portal::home)),
    rule("GET", "/account", Access::Roles(ALL), true, true, |m| on(m, portal::account_page)),
    rule("POST", "/account/password", Access::Roles(ALL), true, true, |m| on(m, portal::change_password)),
    rule("GET", "/admin/users", Access::Roles(ADMIN), false, true, |m| on(m, portal::admin_users)),
    rule("POST", "/admin/users", Access::Roles(ADMIN), false, true, |m| on(m, portal::admin_create)),
    rule("POST", "/admin/users/{login}/{action}", Access::Roles(ADMIN), false, true, |m| on(m, portal::admin_action)),
    rule("GET", "/api/v1/openapi.json", Access::Open, true, true, |m| on(m, openapi)),
    rule("POST", "/api/v1/session", Access::Open, true, true, |m| on(m, api::sign_in)),
    rule("GET", "/api/v1/me", Access::Roles(ALL), true, true, |m| on(m, api::me)),
    rule("GET", "/api/v1/datasets", Access::Roles(DATA), true, false, |m| on(m, api::datasets)),
    rule("GET", "/api/v1/users", Access::Roles(OVERSIGHT), true, true, |m| on(m, api::users)),
    rule("GET", "/api/v1/inventory", Access::Roles(OVERSIGHT), true, true, |m| on(m, api::inventory)),
    rule("POST", "/api/v1/users", Access::Roles(ADMIN), false, true, |m| on(m, api::create_user)),
    rule("POST", "/api/v1/users/{login}/{action}", Access::Roles(ADMIN), false, true, |m| on(m, api::user_action)),
    // Custodians reset the data roles of their own institution on the portal; operators reset
    // on their own listener only (the rule of who may reset whom: kura_accounts::Resetter).
    rule("POST", "/api/v1/users/{login}/reset-password", Access::Roles(CUSTODIAN), true, false, |m| on(m, api::reset_password)),
    rule("POST", "/api/v1/users/{login}/reset-password", Access::Roles(ADMIN), false, true, |m| on(m, api::reset_password)),
    // The research lifecycle's pages (portal listener only).
    rule("GET", "/applications", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_pages::list)),
    rule("GET", "/applications/new", Access::Roles(RESEARCHER), true, false, |m| on(m, research_pages::new_page)),
    rule("POST", "/applications", Access::Roles(RESEARCHER), true, false, |m| on(m, research_pages::create)),
    rule("GET", "/applications/{id}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_pages::show)),
    rule("POST", "/applications/{id}/attachments", Access::Roles(RESEARCHER), true, false, |m| on(m, research_pages::attach)),
    rule("GET", "/applications/{id}/attachments/{n}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::attachment)),
    rule("POST", "/applications/{id}/{step}", Access::Roles(STEPS), true, false, |m| on(m, research_pages::step)),
    rule("GET", "/projects", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_pages::projects)),
    rule("GET", "/projects/{id}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_pages::project)),
    rule("POST", "/projects/{id}/sql", Access::Roles(RESEARCHER), true, false, |m| on(m, research_pages::sql)),
    rule("POST", "/projects/{id}/{step}", Access::Roles(PROJECT_STEPS), true, false, |m| on(m, research_pages::project_step)),
    // The airlock's pages (issues 17 and 22): the request builder, the reviewers' and the
    // custodians' queues, bring-in.
    rule("POST", "/projects/{id}/outputs", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_pages::output_new)),
    rule("POST", "/projects/{id}/bringin", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_pages::bringin_upload)),
    rule("GET", "/outputs", Access::Roles(STEPS), true, false, |m| on(m, airlock_pages::outputs)),
    rule("GET", "/outputs/{id}", Access::Roles(STEPS), true, false, |m| on(m, airlock_pages::output)),
    rule("GET", "/outputs/{id}/files/{n}", Access::Roles(STEPS), true, false, |m| on(m, airlock_api::output_file_content)),
    rule("POST", "/outputs/{id}/tables", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_pages::output_table)),
    rule("POST", "/outputs/{id}/{step}", Access::Roles(STEPS), true, false, |m| on(m, airlock_pages::output_step)),
    rule("GET", "/exchange", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_pages::list)),
    rule("POST", "/exchange", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_pages::send)),
    rule("GET", "/exchange/{id}", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_pages::show)),
    rule("POST", "/exchange/{id}/delete", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_pages::delete)),
    rule("GET", "/bringin", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_pages::bringins)),
    rule("GET", "/bringin/{id}", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_pages::bringin)),
    rule("POST", "/bringin/{id}/{step}", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_pages::bringin_step)),
    // The research lifecycle (WG-6, HIC-P1, HIC-P3, HIC-IO3): which party may take a step is
    // the domain's rule (kura-workflows); the roles here only keep other roles out.
    rule("GET", "/api/v1/applications", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::list)),
    rule("POST", "/api/v1/applications", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::create)),
    rule("GET", "/api/v1/applications/{id}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::show)),
    rule("POST", "/api/v1/applications/{id}/edit", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::edit)),
    rule("POST", "/api/v1/applications/{id}/attachments", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::attach)),
    rule("GET", "/api/v1/applications/{id}/attachments/{n}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::attachment)),
    rule("POST", "/api/v1/applications/{id}/attachments/{n}/remove", Access::Roles(RESEARCHER), true, false, |m| {
        on(m, research_api::detach)
    }),
    rule("POST", "/api/v1/applications/{id}/{step}", Access::Roles(STEPS), true, false, |m| on(m, research_api::step)),
    rule("GET", "/api/v1/projects", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::projects)),
    rule("GET", "/api/v1/projects/{id}", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::project)),
    rule("POST", "/api/v1/projects/{id}/notice", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::notice)),
    rule("POST", "/api/v1/projects/{id}/end", Access::Roles(CUSTODIAN), true, false, |m| on(m, research_api::end)),
    rule("GET", "/api/v1/projects/{id}/certificate", Access::Roles(CERTIFICATE), true, false, |m| on(m, research_api::certificate)),
    rule("POST", "/api/v1/projects/{id}/sql", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::sql)),
    rule("GET", "/api/v1/projects/{id}/tables", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::tables)),
    rule("GET", "/api/v1/projects/{id}/workspace", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::status)),
    rule("POST", "/api/v1/projects/{id}/tables/{name}/drop", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::drop_table)),
    // The airlock (issues 17 and 22): who may take a step is the domain's rule; the roles
    // here only keep other roles out.
    rule("POST", "/api/v1/projects/{id}/outputs", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::output_new)),
    rule("GET", "/api/v1/outputs", Access::Roles(STEPS), true, false, |m| on(m, airlock_api::outputs)),
    rule("GET", "/api/v1/outputs/{id}", Access::Roles(STEPS), true, false, |m| on(m, airlock_api::output)),
    rule("POST", "/api/v1/outputs/{id}/tables", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::output_table)),
    rule("POST", "/api/v1/outputs/{id}/files", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::output_file)),
    rule("GET", "/api/v1/outputs/{id}/files/{n}", Access::Roles(STEPS), true, false, |m| on(m, airlock_api::output_file_content)),
    rule("GET", "/api/v1/outputs/{id}/package/{name}", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::output_package)),
    rule("POST", "/api/v1/outputs/{id}/{step}", Access::Roles(STEPS), true, false, |m| on(m, airlock_api::output_step)),
    rule("POST", "/api/v1/exchange", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_api::send)),
    rule("GET", "/api/v1/exchange", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_api::list)),
    rule("GET", "/api/v1/exchange/{id}", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_api::show)),
    rule("GET", "/api/v1/exchange/{id}/content", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_api::content)),
    rule("POST", "/api/v1/exchange/{id}/delete", Access::Roles(PROVIDER), true, false, |m| on(m, exchange_api::delete)),
    rule("POST", "/api/v1/projects/{id}/bringin", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::bringin_upload)),
    rule("GET", "/api/v1/bringin", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_api::bringins)),
    rule("GET", "/api/v1/bringin/{id}", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_api::bringin)),
    rule("GET", "/api/v1/bringin/{id}/content", Access::Roles(RESEARCHER), true, false, |m| on(m, airlock_api::bringin_content)),
    rule("POST", "/api/v1/bringin/{id}/{step}", Access::Roles(BRINGIN), true, false, |m| on(m, airlock_api::bringin_step)),
    rule("GET", "/api/v1/scanner", Access::Roles(SCANNER), true, true, |m| on(m, airlock_api::scanner)),
    // Sample datasets (HIC-P2).
    rule("GET", "/api/v1/samples", Access::Roles(LIFECYCLE), true, false, |m| on(m, research_api::samples)),
    rule("POST", "/api/v1/samples/{dataset}/sql", Access::Roles(RESEARCHER), true, false, |m| on(m, research_api::sample_sql)),
    rule("POST", "/api/v1/samples/{dataset}/{action}", Access::Roles(CUSTODIAN), true, false, |m| on(m, research_api::sample_action)),
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
    let exchange = portal.exchanges.as_ref().map_or(0, |x| x.config().max_bytes());
    let largest = usize::try_from(exchange.max(100 << 20)).unwrap_or(usize::MAX).saturating_add(MAX_BODY);
    r.route_layer(axum::middleware::from_fn_with_state(portal.clone(), access))
        .fallback(not_found)
        // A path this listener serves, with a method it does not: refused and counted like any
        // unknown route, never a bare 405 that the access middleware did not see.
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        // The access middleware bounds every body it admits (MAX_BODY, or an upload's limit);
        // this only keeps axum's own smaller default from refusing an admitted upload.
        .layer(axum::extract::DefaultBodyLimit::max(largest))
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
    if let Some(peer) = req.extensions().get::<Peer>() {
        let client = client_of(&portal, peer, req.headers());
        portal.door.failure(client, as_counted(req.headers(), Failure::Scanning));
    }
    WebError::refused(StatusCode::NOT_FOUND, "ページがありません", "not found").into_response()
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

/// Security headers on every response (HX-5, HIC-S12), and every [`WebError`] rendered for
/// the request (JSON under `/api/`, a page in the user's language elsewhere). A request the
/// framework itself refused (a malformed path, query or body) is answered the same way, never
/// with the parser's own words.
async fn security_headers(req: Request, next: Next) -> Response {
    let (lang, path) = (Lang::of(req.headers()), req.uri().path().to_string());
    let mut res = next.run(req).await;
    let plain_text = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/plain"));
    if let Some(Unrendered(e)) = res.extensions_mut().remove::<Unrendered>() {
        let request_id = res.headers().get("x-request-id").cloned();
        res = render(&e, lang, &path);
        if let Some(id) = request_id {
            res.headers_mut().insert("x-request-id", id);
        }
    } else if res.status().is_client_error() && plain_text {
        let malformed = WebError::refused(
            res.status(),
            "要求の形式が正しくありません",
            "the request is malformed: check its address, parameters and body",
        );
        res = render(&malformed, lang, &path);
    }
    crate::web::protect(res.headers_mut());
    res
}

/// The answer a [`WebError`] gives a request to `path` from a user reading `lang`: JSON under
/// `/api/` (`{"error": English, "message_ja": 日本語}`); elsewhere a page, or a redirect — to
/// the login page saying why (the session cookie cleared), or back to the sign-in step a
/// session is at.
pub fn render(e: &WebError, lang: Lang, path: &str) -> Response {
    let (ja, en) = e.texts();
    if is_api(path) {
        return (e.status(), Json(json!({"error": en, "message_ja": ja}))).into_response();
    }
    match e {
        WebError::SignIn { cookie, end } => {
            let at = match end {
                SessionEnd::Replaced(t) => format!("&at={t}"),
                _ => String::new(),
            };
            let mut res = Redirect::to(&format!("/login?end={}{at}", end.as_str())).into_response();
            res.headers_mut().insert(header::SET_COOKIE, set_cookie(cookie, "", Some(0)));
            res
        }
        WebError::Unfinished(state) => Redirect::to(pages::step_path(*state)).into_response(),
        _ => pages::error(lang, e.status(), &ja, &en),
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

/// Largest body of an upload: an application's attachment (the configured attachment size), an
/// output's file (the airlock's file limit) or a bring-in file (the policy's limit), plus room
/// for a form around it (the domains check the sizes exactly).
fn upload_limit(portal: &Portal, method: &Method, path: &str) -> Option<usize> {
    if method != Method::POST {
        return None;
    }
    let attachment = path.ends_with("/attachments") && (path.starts_with("/applications/") || path.starts_with("/api/v1/applications/"));
    if attachment {
        let mb = portal.research.as_ref()?.config().attachment_max_mb;
        return Some(((mb as usize) << 20) + MAX_BODY);
    }
    if path.starts_with("/api/v1/outputs/") && path.ends_with("/files") {
        return Some(kura_workspace::airlock::MAX_OUTPUT_BYTES as usize + MAX_BODY);
    }
    if path == "/api/v1/exchange" || path == "/exchange" {
        let max = portal.exchanges.as_ref()?.config().max_bytes();
        return Some(usize::try_from(max).unwrap_or(usize::MAX).saturating_add(MAX_BODY));
    }
    if (path.starts_with("/api/v1/projects/") || path.starts_with("/projects/")) && path.ends_with("/bringin") {
        let max = portal.workspaces.as_ref()?.policy().policy.limits.bringin_max_bytes;
        return Some(usize::try_from(max).unwrap_or(usize::MAX).saturating_add(MAX_BODY));
    }
    None
}

/// The `csrf` field of a multipart form (the portal's upload form), read from its body. The
/// body is already whole and within the route's upload limit ([`upload_limit`]): read with
/// `multer` directly, without axum's own 2 MiB default for extractors.
async fn multipart_field(headers: &HeaderMap, body: &axum::body::Bytes, name: &str) -> Option<String> {
    let boundary = multer::parse_boundary(headers.get(header::CONTENT_TYPE)?.to_str().ok()?).ok()?;
    let body = body.clone();
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

/// Whether the request's body is a multipart form.
fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data")))
}

/// Access control and CSRF (deny by default): the request, with its [`Ctx`], if admitted.
async fn access(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let request_id = random_hex(8);
    // A refusal carries the request ID too: the audit trail records refusals under it.
    let mut res = match admit(&portal, req, &request_id).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The checks of [`access`], in order; a refusal that a client can cause at will counts toward
/// its address's block.
async fn admit(portal: &Portal, mut req: Request, request_id: &str) -> Result<Request, WebError> {
    let lang = Lang::of(req.headers());
    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return Err(WebError::refused(StatusCode::FORBIDDEN, "クライアント証明書が必要です", "a client certificate is required"));
    };
    let client = client_of(portal, &peer, req.headers());
    if client != peer.addr.ip() && !portal.door.gate.check(client, SystemTime::now()).allowed() {
        return Err(WebError::refused(StatusCode::FORBIDDEN, "接続元が許可されていません", "your address may not connect"));
    }
    if from_listed_site(portal, req.headers()) {
        portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
        return Err(WebError::refused(StatusCode::FORBIDDEN, "遮断対象のサイトからの要求です", "request from a blocked site"));
    }
    let Some(rule) = rule_for(portal.listener, req.method(), &path) else {
        portal.door.failure(client, as_counted(req.headers(), Failure::Scanning));
        return Err(WebError::refused(StatusCode::NOT_FOUND, "ページがありません", "not found"));
    };
    let mut who = Who {
        actor: Actor { user: String::new(), institution: String::new(), cert: peer.fingerprint.clone() },
        request: request_id.to_string(),
    };

    // The session, where the rule needs one.
    let cookie_name = portal.listener.cookie();
    let session = match rule.access {
        Access::Open => None,
        _ => {
            let sign_in_first = |end: &SessionEnd| Err(WebError::SignIn { cookie: cookie_name, end: end.clone() });
            let Some(token) = cookie(req.headers(), cookie_name).filter(|t| !t.is_empty()) else {
                return sign_in_first(&SessionEnd::Unknown);
            };
            match portal.accounts.session(&who, &token, &peer.fingerprint, portal.listener.as_str(), true).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(end)) => return sign_in_first(&end),
                Err(e) => return Err(WebError::store(e)),
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
                return Err(WebError::Unfinished(s.state));
            }
            portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
            let object = format!("{} {path}", req.method());
            if let Err(e) = portal.accounts.record_refusal(&who, "access.denied", &object, &format!("role {}", s.role)).await {
                return Err(WebError::store(e));
            }
            return Err(WebError::refused(StatusCode::FORBIDDEN, "この操作の権限がありません", "your role may not do this"));
        }
    }

    // CSRF on everything that changes state.
    if req.method() != Method::GET && req.method() != Method::HEAD {
        // A browser's word on where the request comes from. (`Origin: null` is not refused:
        // under `Referrer-Policy: no-referrer` browsers send it on their own forms' posts.)
        if from_another_site(req.headers()) {
            portal.door.failure(client, Failure::CrossSite);
            if let Err(e) = portal.accounts.record_refusal(&who, "access.cross_site", &path, "sent by another site").await {
                return Err(WebError::store(e));
            }
            return Err(WebError::refused(StatusCode::FORBIDDEN, "不正な送信元です", "cross-site request refused"));
        }
        // The body, within the deadline and the size limit, before anything looks at it.
        let (parts, body) = req.into_parts();
        let limit = upload_limit(portal, &parts.method, &path).unwrap_or(MAX_BODY);
        let bytes = match tokio::time::timeout(portal.door.limits.body, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return Err(WebError::refused(StatusCode::PAYLOAD_TOO_LARGE, "送信内容が大きすぎます", "request too large")),
            Err(_) => {
                portal.door.stats.deadlines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(WebError::refused(
                    StatusCode::REQUEST_TIMEOUT,
                    "送信が時間内に終わりませんでした",
                    "the request body did not arrive in time",
                ));
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
                return Err(WebError::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON で送信してください", "send JSON"));
            }
            req.extensions_mut().insert(Ctx { who, session, lang, peer, client });
            return Ok(req);
        }
        let expected = match &session {
            Some(s) => Some(s.csrf.clone()),
            None => cookie(req.headers(), PRE_COOKIE).filter(|c| c.len() >= 32),
        };
        let header_token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        // A multipart body is read as multipart only: a file inside it may hold `&csrf=`.
        let form_token =
            if is_multipart(req.headers()) { multipart_field(req.headers(), &bytes, "csrf").await } else { form_field(&bytes, "csrf") };
        let given = header_token.or(form_token);
        let ok = matches!((&expected, &given), (Some(e), Some(g)) if constant_eq(e.as_bytes(), g.as_bytes()));
        if !ok {
            portal.door.failure(client, as_counted(req.headers(), Failure::Refused));
            if let Err(e) = portal.accounts.record_refusal(&who, "access.csrf", &path, "missing or wrong CSRF token").await {
                return Err(WebError::store(e));
            }
            return Err(WebError::refused(
                StatusCode::FORBIDDEN,
                "フォームの有効期限が切れたか、不正な送信です。もう一度お試しください",
                "invalid or missing CSRF token: reload the page and try again",
            ));
        }
    }
    req.extensions_mut().insert(Ctx { who, session, lang, peer, client });
    Ok(req)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// A field of a form body (none if the body is not a form).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `GET /api/v1/openapi.json`: this API described in OpenAPI 3.1, generated from the route
/// table so it cannot drift from what is served.
pub(crate) async fn openapi(State(portal): State<Portal>) -> Response {
    let mut paths = serde_json::Map::new();
    for r in ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        if !r.served_on(portal.listener) {
            continue;
        }
        let roles = match r.access {
            Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
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
            "session": {"type": "apiKey", "in": "cookie", "name": crate::web::SESSION_COOKIE},
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
        ("GET", "/api/v1/applications") => "利用申請の一覧（未完了・期限超過を先に）/ applications, open and overdue first",
        ("POST", "/api/v1/applications") => "利用申請の作成（下書き）/ file a draft application",
        ("GET", "/api/v1/applications/{id}") => "利用申請の詳細（経過日数・履歴）/ an application with its clock and history",
        ("POST", "/api/v1/applications/{id}/edit") => "下書き・差し戻しの申請の編集 / change a draft or returned application",
        ("POST", "/api/v1/applications/{id}/attachments") => {
            "PDF の添付（本文は PDF そのもの、?name=ファイル名）/ attach a PDF: the body is the file, ?name= its file name"
        }
        ("GET", "/api/v1/applications/{id}/attachments/{n}") => "添付の取り出し（PDF）/ an attachment (the PDF)",
        ("POST", "/api/v1/applications/{id}/attachments/{n}/remove") => "添付を外す / remove an attachment",
        ("POST", "/api/v1/applications/{id}/{step}") => {
            "申請の手続き：submit・join・withdraw・check・vote・decide・accept / a step: submit, join, withdraw, check, vote, decide, accept"
        }
        ("GET", "/api/v1/outputs/{id}/files/{n}") => {
            "出力依頼のファイル n（プロジェクトのメンバー、提出後は審査者・管理者）/ file n of an output request, for its members and, once submitted, reviewers and custodians"
        }
        ("GET", "/api/v1/projects") => "プロジェクトの一覧 / projects",
        ("GET", "/api/v1/projects/{id}") => "プロジェクトの詳細 / a project",
        ("POST", "/api/v1/projects/{id}/notice") => "利用終了の届出（申請者）/ notice of the end of use (the applicant)",
        ("POST", "/api/v1/projects/{id}/end") => "利用終了と削除証明書（データ管理者）/ end of use and deletion certificate (a custodian)",
        ("GET", "/api/v1/projects/{id}/certificate") => "削除証明書と .tlog-proof / the deletion certificate and its .tlog-proof",
        ("POST", "/api/v1/projects/{id}/sql") => "作業環境で SQL を実行（メンバーのみ）/ run SQL in the workspace (members only)",
        ("GET", "/api/v1/projects/{id}/tables") => "作業環境に保存した表 / the workspace's saved tables",
        ("POST", "/api/v1/projects/{id}/tables/{name}/drop") => "保存した表の削除（メンバー）/ remove a saved table (members)",
        ("GET", "/api/v1/projects/{id}/workspace") => "作業環境のプロセスの隔離状態 / the workspace worker's confinement",
        ("POST", "/api/v1/projects/{id}/outputs") => {
            "出力依頼の作成（作業環境の SELECT から表、セルごとに自動検査）/ start an output request with a table made by a SELECT in the workspace, checked cell by cell"
        }
        ("GET", "/api/v1/outputs") => "出力依頼の一覧 / output requests",
        ("GET", "/api/v1/outputs/{id}") => {
            "出力依頼とセルごとの判定（票は両者の投票まで非表示）/ an output request with its verdicts (votes blind until both voted)"
        }
        ("POST", "/api/v1/outputs/{id}/tables") => "問い合わせの表を追加 / add a query's table",
        ("POST", "/api/v1/outputs/{id}/files") => {
            "ファイルを追加（本文がファイル、?name=、ウイルス検査）/ add a file: the body is the file, ?name=, scanned"
        }
        ("GET", "/api/v1/outputs/{id}/package/{name}") => {
            "持ち出したパッケージのファイル（メンバー）/ a file of the released package (members)"
        }
        ("POST", "/api/v1/outputs/{id}/{step}") => {
            "出力依頼の手続き：submit・withdraw・exception・review・confirm・release / a step: submit, withdraw, exception, review, confirm, release"
        }
        ("POST", "/api/v1/projects/{id}/bringin") => {
            "ファイルの持ち込み（本文がファイル、?name=、ウイルス検査）/ bring a file in: the body is the file, ?name=, scanned"
        }
        ("GET", "/api/v1/bringin") => "持込み依頼の一覧 / bring-in requests",
        ("GET", "/api/v1/bringin/{id}") => "持込み依頼 / a bring-in request",
        ("GET", "/api/v1/bringin/{id}/content") => "承認済みの持込みファイル（メンバー）/ an approved bring-in file (members)",
        ("POST", "/api/v1/bringin/{id}/{step}") => "持込みの承認・却下（データ管理者）、取り下げ / review (a custodian) or withdraw",
        ("GET", "/api/v1/scanner") => "ウイルス検査エンジンの状態と検出記録 / the malware scanner: state and detections",
        ("POST", "/api/v1/exchange") => {
            "機関へファイルを送る（本文がファイル、?name=、?to=機関コード または ?group=、ウイルス検査）/ send a file to an institution: the body is the file, ?name=, ?to=CODE or ?group=G, scanned"
        }
        ("GET", "/api/v1/exchange") => "自機関が送受信したファイル / the files your institution sent or received",
        ("GET", "/api/v1/exchange/{id}") => {
            "送受信ファイルと証跡（送信側・受信側で同じ）/ a transfer and its trail (the same for sender and receivers)"
        }
        ("GET", "/api/v1/exchange/{id}/content") => "ファイルの受信（証跡に残る）/ download the file (recorded in its trail)",
        ("POST", "/api/v1/exchange/{id}/delete") => {
            "保存期間前の削除（送信した機関）/ delete before the retention period ends (the sender)"
        }
        ("GET", "/api/v1/samples") => "見本データの一覧（申請なしで試せる合成データ）/ sample datasets, to try without an application",
        ("POST", "/api/v1/samples/{dataset}/sql") => "見本データに SQL（研究者）/ SQL on a sample dataset (researchers)",
        ("POST", "/api/v1/samples/{dataset}/{action}") => {
            "見本データの公開・取り下げ（データ管理者）/ publish or withdraw a sample (custodians)"
        }
        ("POST", "/api/v1/users/{login}/{action}") => {
            "ロック・解除・有効化・停止・廃止・証明書失効 / lock, unlock, activate, suspend, disable, revoke certificates"
        }
        _ => "",
    }
}
