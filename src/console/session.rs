//! Sign-in, sign-out and the session every other page needs. The session's token is a random
//! 256-bit value in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/console`; only its
//! SHA-256 is stored. Each request checks the session's expiry (idle and absolute) and its
//! key against the live key set, so a revoked or expired key ends the session at once.
//! Every state-changing request must carry the session's CSRF token ([`csrf_refusal`]).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use rand::RngCore;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{sign_in_token, Console};
use crate::api::access::authenticate;
use crate::api::ApiError;
use crate::auth::{key_hash, Principal, Role};
use crate::store::{ConsoleSession, SessionKey};
use crate::time::UnixMs;

/// The session cookie's name.
const COOKIE: &str = "hr_console";
/// Where a signed-in browser lands: the overview.
const HOME: &str = "/console/overview";
/// Where a request without a valid session is sent.
const SIGN_IN: &str = "/console/sign-in";
/// The form field (or, for htmx, the header) carrying the CSRF token.
pub(super) const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// Longest interval between two writes of a session's last use: each page would otherwise
/// cost a write of the single writer. Idle expiry is judged on the noted time, so it is at
/// most this (or a tenth of the idle window, if shorter) early.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A signed-in request: who it acts for, and the session's CSRF token.
pub(super) struct Signed {
    /// The key's id (if stored) and its role now.
    pub principal: Principal,
    /// The token state-changing requests must carry.
    pub csrf_token: String,
    token_hash: [u8; 32],
}

impl Signed {
    /// What every page's layout shows of the session.
    pub(super) fn context(&self) -> serde_json::Value {
        json!({"role": self.principal.role.as_str(), "csrf": self.csrf_token})
    }
}

/// 32 random bytes as lowercase hex: a session, CSRF or sign-in token.
pub(super) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of the browser's cookie `name`, if it sent one.
pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, COOKIE)
}

/// The value of the urlencoded form field `name` in `body`.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl Console {
    /// The session `headers` present, if it is valid now; an expired one, or one whose key
    /// is revoked or expired, is deleted.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Signed>, Response> {
        let Some(token) = cookie_token(headers) else { return Ok(None) };
        let token_hash = key_hash(token);
        let store = &self.app.store;
        let Some(session) = store.session(token_hash).await.map_err(|e| self.failed(e))? else {
            return Ok(None);
        };
        let (now, limits) = (UnixMs::now(), &self.app.config.console);
        let idle_ms = secs_to_ms(limits.session_idle_secs);
        let expired = now.since(session.created_at) >= secs_to_ms(limits.session_absolute_secs)
            || now.since(session.last_seen_at) >= idle_ms;
        let role = if expired { None } else { self.role_of(&session.key, now) };
        let Some(role) = role else {
            store.end_session(token_hash).await.map_err(|e| self.failed(e))?;
            return Ok(None);
        };
        if now.since(session.last_seen_at) >= TOUCH_EVERY_MS.min(idle_ms / 10) {
            store.touch_session(token_hash, now).await.map_err(|e| self.failed(e))?;
        }
        let key_id = match session.key {
            SessionKey::Stored(id) => Some(id),
            SessionKey::Configured(_) => None,
        };
        let principal = Principal { key_id, role };
        Ok(Some(Signed { principal, csrf_token: session.csrf_token, token_hash }))
    }

    /// The role of a session's key now: a stored key's from the live key set (`None` once
    /// revoked or expired), a configured key's admin while the config lists it.
    fn role_of(&self, key: &SessionKey, now: UnixMs) -> Option<Role> {
        match key {
            SessionKey::Stored(id) => self.app.keys.role_of(id, now),
            SessionKey::Configured(hash) => {
                let listed = self.app.config.api_keys.iter().any(|k| key_hash(k) == *hash);
                listed.then_some(Role::Admin)
            }
        }
    }

    pub(super) fn failed(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "a console request failed");
        self.pages.error(StatusCode::INTERNAL_SERVER_ERROR, "The server could not answer.")
    }

    /// The `Set-Cookie` value for `token` (empty and expired: sign-out).
    fn cookie(&self, headers: &HeaderMap, token: &str, max_age_secs: u64) -> Response {
        let secure = self.secure_attribute(headers);
        let cookie = format!(
            "{COOKIE}={token}; Path=/console; Max-Age={max_age_secs}; HttpOnly; \
             SameSite=Strict{secure}"
        );
        match HeaderValue::from_str(&cookie) {
            Ok(value) => {
                let mut response =
                    Redirect::to(if token.is_empty() { SIGN_IN } else { HOME }).into_response();
                response.headers_mut().insert(header::SET_COOKIE, value);
                response
            }
            Err(e) => self.failed(e),
        }
    }

    /// `"; Secure"` for cookies set over TLS (as a trusted proxy's `X-Forwarded-Proto` says).
    pub(super) fn secure_attribute(&self, headers: &HeaderMap) -> &'static str {
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        if self.app.config.console.trust_forwarded_proto && forwarded_https {
            "; Secure"
        } else {
            ""
        }
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    /// No valid session: back to sign-in (nothing is done for the request).
    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        match console.session(&parts.headers).await? {
            Some(signed) => Ok(signed),
            None => Err(Redirect::to(SIGN_IN).into_response()),
        }
    }
}

/// The refusal of a state-changing request: without the session's CSRF token (checked
/// first, so a forged request learns nothing about roles), or by a role below `role` (the
/// role the API's route table gives the same action). `None` when it may go on.
pub(super) fn action_refusal(
    console: &Console,
    signed: &Signed,
    headers: &HeaderMap,
    body: &[u8],
    role: crate::auth::Role,
) -> Option<Response> {
    if let Some(problem) = malformed_form(body) {
        let message = format!("This form could not be read: {problem}. Nothing was changed.");
        return Some(console.pages.error(StatusCode::BAD_REQUEST, &message));
    }
    if let Some(refused) = csrf_refusal(console, signed, headers, body) {
        return Some(refused);
    }
    let denied = crate::api::access::authorize(signed.principal.role, role).err()?;
    Some(console.pages.error(StatusCode::FORBIDDEN, &denied.message))
}

/// What is wrong with a form body, if anything: a field given twice (which one counts would
/// be the reader's guess; the API refuses the same in a query string) or text that is not
/// UTF-8 once decoded (read leniently it would be stored with replacement characters).
fn malformed_form(body: &[u8]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let parts = pair.splitn(2, |&b| b == b'=');
        let mut decoded = parts.map(|part| {
            let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
            let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            String::from_utf8(bytes)
        });
        let name = match decoded.next() {
            Some(Ok(name)) => name,
            _ => return Some("a field name is not UTF-8 text".into()),
        };
        if let Some(Err(_)) = decoded.next() {
            return Some(format!("field `{name}` is not UTF-8 text"));
        }
        if !seen.insert(name.clone()) {
            return Some(format!("field `{name}` is given twice"));
        }
    }
    None
}

/// The 403 for a request without the session's CSRF token (in the form field or, for htmx,
/// the header; compared in constant time); `None` when it carries it.
pub(super) fn csrf_refusal(
    console: &Console,
    signed: &Signed,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let presented = form_field(body, CSRF_FIELD)
        .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(String::from));
    let valid =
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(signed.csrf_token.as_bytes())));
    if valid {
        return None;
    }
    let message = "This form's security token is missing or does not match your session. \
                   Nothing was changed; reload the page and try again.";
    Some(console.pages.error(StatusCode::FORBIDDEN, message))
}

pub(super) async fn sign_in_page(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.session(&headers).await {
        Ok(Some(_)) => Redirect::to(HOME).into_response(),
        Ok(None) => sign_in_token::page(&console, &headers, StatusCode::OK, None),
        Err(answer) => answer,
    }
}

/// Signs in with the key in the form: any valid API key (not an app key), judged by the
/// API's own check, once the form shows it came from this console's sign-in page (its
/// token, [`sign_in_token`]).
pub(super) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |status, error: &str| sign_in_token::page(&console, &headers, status, Some(error));
    if let Some(problem) = malformed_form(&body) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("This form could not be read: {problem}."),
        );
    }
    if !sign_in_token::presented(&headers, &body) {
        let error = "This sign-in form has expired or did not come from this console. \
                     Nobody was signed in; enter the key again.";
        return refuse(StatusCode::FORBIDDEN, error);
    }
    let key = form_field(&body, "key").unwrap_or_default();
    let key = key.trim();
    let now = UnixMs::now();
    // Presented to the API's own check, as an `Api-Key` header: the same keys are refused
    // with the same words, and the key's use is noted as for an API call.
    let mut presented = HeaderMap::new();
    let principal = match HeaderValue::from_str(key) {
        Ok(value) => {
            presented.insert("api-key", value);
            authenticate(&console.app, &presented)
        }
        Err(_) => Err(ApiError::unauthorized("invalid API key")),
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.message),
    };
    let limits = &console.app.config.console;
    let store = &console.app.store;
    let created_before = now.minus_ms(secs_to_ms(limits.session_absolute_secs));
    let seen_before = now.minus_ms(secs_to_ms(limits.session_idle_secs));
    if let Err(e) = store.end_expired_sessions(created_before, seen_before).await {
        return console.failed(e);
    }
    let token = random_hex();
    let session = ConsoleSession {
        key: match principal.key_id {
            Some(id) => SessionKey::Stored(id),
            None => SessionKey::Configured(key_hash(key)),
        },
        role: principal.role,
        csrf_token: random_hex(),
        created_at: now,
        last_seen_at: now,
    };
    if let Err(e) = store.add_session(key_hash(&token), session).await {
        return console.failed(e);
    }
    let mut signed_in = console.cookie(&headers, &token, limits.session_absolute_secs);
    // The sign-in token has served: the cookie goes (the next sign-in page makes another).
    if let Ok(ended) = HeaderValue::from_str(&sign_in_token::cookie(&console, &headers, None)) {
        signed_in.headers_mut().append(header::SET_COOKIE, ended);
    }
    signed_in
}

/// Ends the session (with its CSRF token, so no other site can sign anyone out).
pub(super) async fn sign_out(
    State(console): State<Console>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = csrf_refusal(&console, &signed, &headers, &body) {
        return refused;
    }
    if let Err(e) = console.app.store.end_session(signed.token_hash).await {
        return console.failed(e);
    }
    console.cookie(&headers, "", 0)
}
