use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use hmac::{Hmac, Mac};
use maud::{html, Markup};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::layout::{notice, page};
use crate::{Clock, SecretString, SystemClock};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tk_admin";

/// How long a sign-in lasts unless configured: eight hours.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The largest form the admin pages accept (pasted migrations included).
pub const MAX_FORM_BODY: usize = 4 * 1024 * 1024;

/// The name of the hidden form field that carries the forgery token.
pub const CSRF_FIELD: &str = "csrf";

/// Sign-in to the admin pages with the admin token.
///
/// Signing in sets an HttpOnly, `SameSite=Strict` cookie scoped to the admin
/// path, holding an expiry and an HMAC of it under a key derived from the admin
/// token: any server process with the same token accepts it, no session table is
/// kept, and rotating the token signs everyone out. Every form carries a token
/// derived from the session (see [`AdminSession::csrf_field`]), checked by
/// [`require_admin_session`] on each `POST`.
///
/// Signing out ends the session in this server process (its nonce is remembered
/// until it would have expired). Another process with the same token accepts a
/// copy of the cookie until it expires: rotate the token to end every session.
#[derive(Clone)]
pub struct AdminSessions {
    key: Option<HmacSha256>,
    token: Option<SecretString>,
    lifetime: Duration,
    secure: bool,
    base: String,
    clock: Arc<dyn Clock>,
    /// Nonces of the sessions signed out here, with their expiry.
    signed_out: Arc<Mutex<HashMap<String, i64>>>,
}

impl fmt::Debug for AdminSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSessions")
            .field("enabled", &self.key.is_some())
            .field("lifetime", &self.lifetime)
            .field("secure", &self.secure)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminSessions {
    /// Sign-in with `token` (`None`: the admin pages answer 503), for pages mounted
    /// at `/admin`, with `Secure` cookies (browsers keep those over plain HTTP on
    /// `localhost` only; see [`secure_cookie`](Self::secure_cookie)).
    pub fn new(token: Option<SecretString>) -> Self {
        let key = token.as_ref().and_then(|token| {
            let mut derive = HmacSha256::new_from_slice(token.expose().as_bytes()).ok()?;
            derive.update(b"tenancy-kit admin sessions v1");
            HmacSha256::new_from_slice(&derive.finalize().into_bytes()).ok()
        });
        Self {
            key,
            token,
            lifetime: DEFAULT_SESSION_LIFETIME,
            secure: true,
            base: "/admin".into(),
            clock: Arc::new(SystemClock),
            signed_out: Arc::default(),
        }
    }

    /// Keeps a sign-in for `lifetime` (default eight hours).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Whether the cookie is marked `Secure` (default `true`). Turn it off only for
    /// a service reached over plain HTTP on a trusted network.
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Where the admin pages are mounted (default `/admin`): the cookie's path and
    /// the base of every link and form.
    pub fn base_path(mut self, base: &str) -> Self {
        self.base = format!("/{}", base.trim_matches('/'));
        self
    }

    /// Uses `clock` for expiry (a test clock, say).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the admin pages are mounted.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether the admin token is configured.
    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    fn mac(&self, message: &[u8]) -> Option<String> {
        let mut mac = self.key.clone()?;
        mac.update(message);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// A new session's cookie value: `EXPIRES.NONCE.MAC`.
    fn issue(&self) -> Option<String> {
        let expires = self.clock.now().unix_timestamp() + self.lifetime.as_secs() as i64;
        let nonce = format!("{:016x}", fastrand::u64(..));
        let body = format!("{expires}.{nonce}");
        let mac = self.mac(body.as_bytes())?;
        Some(format!("{body}.{mac}"))
    }

    /// The expiry and nonce of a cookie value, if it is ours (signed with our key).
    fn verified<'v>(&self, value: &'v str) -> Option<(i64, &'v str)> {
        let (body, mac) = value.rsplit_once('.')?;
        let (expires, nonce) = body.split_once('.')?;
        let expected = self.mac(body.as_bytes())?;
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        Some((expires.parse().ok()?, nonce))
    }

    /// The session of a cookie value, if it is ours, has not expired and was not
    /// signed out here.
    fn session(&self, value: &str) -> Option<AdminSession> {
        let (expires, nonce) = self.verified(value)?;
        if expires <= self.clock.now().unix_timestamp() || self.is_signed_out(nonce) {
            return None;
        }
        let csrf = self.mac(format!("csrf|{value}").as_bytes())?;
        Some(AdminSession {
            csrf,
            base: self.base.clone(),
        })
    }

    fn session_in(&self, headers: &HeaderMap) -> Option<AdminSession> {
        session_cookies(headers).find_map(|value| self.session(value))
    }

    fn is_signed_out(&self, nonce: &str) -> bool {
        self.signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(nonce)
    }

    /// Ends the session of the cookies in `headers` here; forgets sessions that
    /// have expired anyway.
    fn sign_out(&self, headers: &HeaderMap) {
        let now = self.clock.now().unix_timestamp();
        let mut signed_out = self
            .signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        signed_out.retain(|_, expires| *expires > now);
        for value in session_cookies(headers) {
            if let Some((expires, nonce)) = self.verified(value) {
                signed_out.insert(nonce.to_owned(), expires);
            }
        }
    }

    fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(given.as_bytes())))
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{SESSION_COOKIE}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            self.base
        )
    }

    /// `next` when it is a page under the base path, else the base: a sign-in
    /// never redirects off the admin pages.
    fn safe_next(&self, next: Option<&str>) -> String {
        match next {
            Some(next)
                if (next == self.base || next.starts_with(&format!("{}/", self.base)))
                    && !next.contains("//")
                    && !next.contains('\\') =>
            {
                next.to_owned()
            }
            _ => self.base.clone(),
        }
    }
}

/// A signed-in operator, as the admin pages' handlers see one: extract it in a
/// handler behind [`require_admin_session`]. It carries the forgery token every
/// form must send back.
#[derive(Debug, Clone)]
pub struct AdminSession {
    csrf: String,
    base: String,
}

impl AdminSession {
    /// The forgery token of this session.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// The hidden form field with the forgery token: put it in every `POST` form.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf); }
    }

    /// Where the admin pages are mounted (`/admin`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address of an admin page or action: `path` under the base.
    pub fn url(&self, path: &str) -> String {
        if path.is_empty() {
            return self.base.clone();
        }
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AdminSession>()
            .cloned()
            .ok_or_else(|| {
                error_page(
                    StatusCode::UNAUTHORIZED,
                    "Not signed in",
                    "This page is not behind the admin sign-in; the service mounts it wrongly.",
                )
            })
    }
}

/// Middleware for admin pages: a page without a valid session redirects to the
/// sign-in form (303); a `POST` needs the session and its forgery token (else 403);
/// without an admin token the pages answer 503. Use it with
/// `axum::middleware::from_fn_with_state(state, require_admin_session::<S>)`.
pub async fn require_admin_session<S>(
    State(state): State<S>,
    request: Request,
    next: Next,
) -> Response
where
    AdminSessions: FromRef<S>,
{
    let sessions = AdminSessions::from_ref(&state);
    if !sessions.is_enabled() {
        return disabled_page();
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let Some(session) = sessions.session_in(request.headers()) else {
        if reads {
            // The path as the browser asked for it, before nesting stripped the base.
            let uri = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri().clone(), |o| o.0.clone());
            let next = uri
                .path_and_query()
                .map_or(sessions.base.clone(), |p| p.as_str().to_owned());
            let login = format!(
                "{}/login?next={}",
                sessions.base,
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            return redirect(&login);
        }
        return error_page(
            StatusCode::FORBIDDEN,
            "Signed out",
            "Your sign-in expired or is missing; sign in again and repeat the action.",
        );
    };
    let mut request = if reads {
        request
    } else {
        match with_checked_form(request, &session).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    protect(response.headers_mut());
    response
}

/// Reads the body (a form), checks its forgery token and puts the body back.
async fn with_checked_form(request: Request, session: &AdminSession) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BODY).await.map_err(|_| {
        error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form is larger than 4 MiB; shorten it.",
        )
    })?;
    let given = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or stale (cross-site request forgery protection). Reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Headers every admin page carries: never cached, never framed, forms post only here.
fn protect(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
}

/// A 303 See Other to `location`.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// An error page with `status`: a heading and one message.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = page(
        title,
        None,
        html! { h1 { (title) } (notice("bad", message)) },
    );
    let mut response = (status, body).into_response();
    protect(response.headers_mut());
    response
}

fn disabled_page() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Admin pages disabled",
        "The admin pages are disabled: set ADMIN_TOKEN to enable them.",
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// The query of the sign-in page.
#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

pub(super) async fn login_page<S>(
    State(state): State<S>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response
where
    AdminSessions: FromRef<S>,
{
    let sessions = AdminSessions::from_ref(&state);
    if !sessions.is_enabled() {
        return disabled_page();
    }
    let next = sessions.safe_next(query.next.as_deref());
    login_form(&sessions, &next, None).into_response()
}

pub(super) async fn login<S>(State(state): State<S>, Form(form): Form<LoginForm>) -> Response
where
    AdminSessions: FromRef<S>,
{
    let sessions = AdminSessions::from_ref(&state);
    if !sessions.is_enabled() {
        return disabled_page();
    }
    let next = sessions.safe_next(form.next.as_deref());
    if !sessions.token_matches(form.token.trim()) {
        tracing::warn!("admin sign-in refused: wrong token");
        let form = login_form(&sessions, &next, Some("That is not the admin token."));
        return (StatusCode::UNAUTHORIZED, form).into_response();
    }
    let Some(value) = sessions.issue() else {
        return disabled_page();
    };
    let mut response = redirect(&next);
    let cookie = sessions.cookie(&value, sessions.lifetime.as_secs());
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    protect(response.headers_mut());
    response
}

/// The values of the session cookies in `headers`.
fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

pub(super) async fn logout<S>(State(state): State<S>, headers: HeaderMap) -> Response
where
    AdminSessions: FromRef<S>,
{
    let sessions = AdminSessions::from_ref(&state);
    sessions.sign_out(&headers);
    let mut response = redirect(&format!("{}/login", sessions.base));
    if let Ok(cookie) = HeaderValue::from_str(&sessions.cookie("", 0)) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

fn login_form(sessions: &AdminSessions, next: &str, error: Option<&str>) -> Response {
    let body = page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the admin pages" }
            @if let Some(error) = error { (notice("bad", error)) }
            form method="post" action={ (sessions.base) "/login" } {
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                p { button type="submit" { "Sign in" } }
            }
            p.muted { "The admin token is the service's ADMIN_TOKEN. Scripts can keep sending it as a bearer token to the API." }
        },
    );
    let mut response = body.into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(response.headers_mut());
    response
}
