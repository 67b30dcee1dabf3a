//! What every handler of the portal and the API shares, and nothing that knows a route: the
//! listeners, the cookies, the language, the request context the access middleware leaves
//! ([`Ctx`], [`Signed`]), body extractors that answer malformed input plainly, and the one
//! error type, [`WebError`], which the outermost layer renders as JSON on the API and as a
//! page (or a redirect to sign in) on the portal ([`crate::routes::render`]).
//!
//! Modules of the web layer depend on this one and never the other way round:
//! `routes` → `portal`, `api` → `actions`, `pages` → `web`; `front` (the accept loop) → `pages`
//! → `web`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use kura_accounts::session::{Session, SessionEnd, SessionState};
use kura_accounts::{AccountsError, Who};
use std::borrow::Cow;

/// The portal's session cookie. `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-kura";
/// The operators' listener's session cookie: browsers send cookies to every port of a host, so
/// each listener has its own name (and the store binds each session to its listener).
pub const OPERATOR_SESSION_COOKIE: &str = "__Host-kura-op";
/// The login form's double-submit cookie (CSRF before there is a session).
pub const PRE_COOKIE: &str = "__Host-kura-pre";
/// The language cookie.
pub const LANG_COOKIE: &str = "kura-lang";
/// The JSON sign-in route for tools.
pub const SIGN_IN_API: &str = "/api/v1/session";

pub use kura_ledger::entry::format_seconds as time_text;

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

/// A cookie's value in a request: the first cookie of exactly that name, every `Cookie`
/// header line read. Names and values are taken as sent, never percent-decoded: a cookie named
/// `__Host%2Dkura` is not `__Host-kura` (a browser applies the `__Host-` rules to the name it
/// was given, so a decoded name would let a sibling site plant a session or pre-sign-in
/// cookie), and the first of two same-named cookies wins as browsers send the oldest first.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value for one of Kura's cookies: `Path=/`, `Secure`, `SameSite=Strict`,
/// and `HttpOnly` unless it is the language choice. `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .secure(true)
        .http_only(name != LANG_COOKIE)
        .same_site(SameSite::Strict)
        .build();
    if let Some(age) = max_age {
        c.set_max_age(time::Duration::seconds(age));
    }
    // The names and values Kura sets are its own (hex tokens, `ja`/`en`): they always form a
    // valid header value; an empty one would only fail to set the cookie.
    HeaderValue::from_str(&c.encoded().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Sets the security headers every answer of the portal and the API carries (HX-5, HIC-S12):
/// a CSP with no external source, HSTS, `nosniff`, no framing, no referrer, `no-store` unless
/// the answer chose its own caching.
pub fn protect(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // A response with a stricter policy of its own (a download: `sandbox`) keeps it.
    if !h.contains_key("content-security-policy") {
        set(
            h,
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        );
    }
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
}

/// Whether a path belongs to the JSON API (answered in JSON, errors included).
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The page language: Japanese unless the user chose English. An extractor (it never fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The language cookie's choice.
    pub fn of(headers: &HeaderMap) -> Lang {
        if cookie(headers, LANG_COOKIE).as_deref() == Some("en") { Lang::En } else { Lang::Ja }
    }

    /// The text in this language.
    pub fn t<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    /// The value of `<html lang>`.
    pub fn code(self) -> &'static str {
        self.t("ja", "en")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of(&parts.headers))
    }
}

/// Why a request was refused or could not be served. Handlers return it (`?` works on
/// [`AccountsError`]); the response it makes carries it to the outermost layer, which renders
/// it for the request: JSON (`{"error": English, "message_ja": 日本語}`) under `/api/`, a page
/// in the user's language (or a redirect) elsewhere. So no handler passes its own path around.
#[derive(Clone, Debug)]
pub enum WebError {
    /// The request was refused for a reason the client can act on.
    Refused {
        /// The status.
        status: StatusCode,
        /// 日本語の説明.
        ja: Cow<'static, str>,
        /// The explanation in English (the same text when it is already bilingual).
        en: Cow<'static, str>,
    },
    /// No session, or it ended: the portal sends the browser to the login page (saying why)
    /// and clears the listener's cookie; the API answers 401.
    SignIn {
        /// The session cookie to clear.
        cookie: &'static str,
        /// Why there is no session.
        end: SessionEnd,
    },
    /// A session part-way through signing in asked for a signed-in page: the portal sends it
    /// back to its step; the API answers 401.
    Unfinished(SessionState),
    /// Kura's own failure, already logged where it happened; the client learns nothing more
    /// than to try again.
    Internal(StatusCode),
}

impl WebError {
    /// A refusal with its explanation in both languages.
    pub fn refused(status: StatusCode, ja: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> WebError {
        WebError::Refused { status, ja: ja.into(), en: en.into() }
    }

    /// A refusal whose one text is already bilingual (`日本語 / English`).
    pub fn bilingual(status: StatusCode, text: impl Into<Cow<'static, str>>) -> WebError {
        let text = text.into();
        WebError::Refused { status, ja: text.clone(), en: text }
    }

    /// Kura's own failure: logs `cause` (never sent to the client).
    pub fn internal(cause: &dyn std::fmt::Display) -> WebError {
        tracing::error!("{cause}");
        WebError::Internal(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A failure reading or writing Kura's own records (sessions, users, the audit trail),
    /// which the request cannot have caused: logged and answered generically whatever its
    /// kind (503 when overloaded), never with the store's own words.
    pub fn store(e: AccountsError) -> WebError {
        tracing::error!("{e}");
        WebError::Internal(if matches!(e, AccountsError::Busy) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Refused { status, .. } | WebError::Internal(status) => *status,
            WebError::SignIn { .. } | WebError::Unfinished(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The explanation: (日本語, English).
    pub fn texts(&self) -> (Cow<'static, str>, Cow<'static, str>) {
        match self {
            WebError::Refused { ja, en, .. } => (ja.clone(), en.clone()),
            WebError::SignIn { .. } => ("ログインしてください".into(), "sign in first".into()),
            WebError::Unfinished(_) => ("ログインを完了してください".into(), "finish signing in first".into()),
            WebError::Internal(status) if *status == StatusCode::SERVICE_UNAVAILABLE => {
                ("混み合っています。時間をおいて再度お試しください".into(), "the service is busy: try again in a moment".into())
            }
            WebError::Internal(_) => (
                "処理できませんでした。時間をおいて再度お試しください".into(),
                "the request could not be completed: try again later".into(),
            ),
        }
    }
}

impl From<AccountsError> for WebError {
    /// Kura's failures are logged and answered generically (503 when overloaded); the
    /// request's own mistakes are answered with what was wrong.
    fn from(e: AccountsError) -> WebError {
        if e.is_internal() {
            return WebError::store(e);
        }
        let status = match &e {
            AccountsError::NoUser(_) | AccountsError::NoInstitution(_) => StatusCode::NOT_FOUND,
            AccountsError::Exists(_) | AccountsError::BadTransition { .. } => StatusCode::CONFLICT,
            AccountsError::NotPermitted(_) | AccountsError::Locked(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        WebError::bilingual(status, e.to_string())
    }
}

/// Marks a response as standing for a [`WebError`], for the outermost layer to render.
#[derive(Clone, Debug)]
pub struct Unrendered(pub WebError);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut res = self.status().into_response();
        res.extensions_mut().insert(Unrendered(self));
        res
    }
}

/// A handler's result.
pub type WebResult<T = Response> = Result<T, WebError>;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The socket's remote address.
    pub addr: std::net::SocketAddr,
    /// `sha256:…` of the client certificate (the TLS layer guarantees there is one).
    pub fingerprint: String,
    /// The certificate's serial, which revocation is keyed on.
    pub serial: kura_pki::Serial,
    /// The certificate's end of validity (Unix seconds).
    pub not_after: i64,
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

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = WebError;

    /// What the access middleware put on the request; every routed request has it.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, WebError> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| WebError::internal(&format_args!("{}: a handler ran without the access middleware", parts.uri.path())))
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

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        match ctx.session.clone() {
            Some(session) => Ok(Signed { ctx, session }),
            None => Err(WebError::internal(&format_args!(
                "{}: a route that needs a session has a rule that does not require one",
                parts.uri.path()
            ))),
        }
    }
}

/// A form body. A malformed one is answered plainly, never with the parser's own words.
pub struct FormBody<T>(pub T);

/// A JSON body, answered like [`FormBody`] when malformed.
pub struct JsonBody<T>(pub T);

/// The answer to a body that does not decode.
pub fn malformed() -> WebError {
    WebError::refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "送信内容の形式が正しくありません。項目と型を確かめてください（API は /api/v1/openapi.json）",
        "the request body is not in the expected form: check its fields and their types (the API: /api/v1/openapi.json)",
    )
}

/// A request's body decoded by `decode`, or the plain answer to a malformed one.
async fn decoded<S: Send + Sync, T>(req: Request, state: &S, decode: impl FnOnce(&[u8]) -> Option<T>) -> Result<T, WebError> {
    let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| malformed())?;
    decode(&bytes).ok_or_else(malformed)
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        decoded(req, state, |b| serde_urlencoded::from_bytes(b).ok()).await.map(FormBody)
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        decoded(req, state, |b| serde_json::from_slice(b).ok()).await.map(JsonBody)
    }
}
