//! The sign-in form's own CSRF token, against login CSRF: a page of another site posting the
//! attacker's key to the sign-in form would put the victim in the attacker's session. The
//! `Sec-Fetch-Site` and `Origin` checks ([`super::refuse_cross_site`]) stop that in browsers
//! that send those headers; this token stops it in those that send neither.
//!
//! There is no session yet to bind a token to, so it is a double-submit token, as Django's
//! `csrftoken` cookie guards its login form: 256 random bits in a short-lived `HttpOnly`,
//! `SameSite=Strict` cookie scoped to the sign-in path, echoed in a hidden field of the form,
//! and compared with it in constant time. A page of another site can neither read the cookie
//! nor (SameSite) have it sent with its post, so it cannot present a matching pair. An HMAC
//! of the token would add nothing here: whoever could plant a cookie in the victim's browser
//! could equally plant one the server signed for them.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::session::{cookie_value, form_field, random_hex};
use super::Console;

/// The cookie holding the token.
const COOKIE: &str = "hr_sign_in";
/// The only path the cookie is sent to.
const PATH: &str = "/console/sign-in";
/// The form field echoing it (the same name as signed-in forms' token).
const FIELD: &str = "csrf";
/// How long a sign-in page stays usable: an hour, then the form is refused and served again
/// with a new token.
const MAX_AGE_SECS: u64 = 3600;
/// A token's length: 32 random bytes as hex.
const TOKEN_LEN: usize = 64;

/// The token of the browser's sign-in cookie, if it holds one of the form this module makes.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, COOKIE)
        .filter(|t| t.len() == TOKEN_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the sign-in form `body` echoes the token of the browser's sign-in cookie
/// (compared in constant time). Without either, it does not.
pub(super) fn presented(headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(cookie), Some(field)) = (cookie_token(headers), form_field(body, FIELD)) else {
        return false;
    };
    bool::from(cookie.as_bytes().ct_eq(field.as_bytes()))
}

/// The `Set-Cookie` value giving the browser `token` for an hour (`None`: ending it).
pub(super) fn cookie(console: &Console, headers: &HeaderMap, token: Option<&str>) -> String {
    let secure = console.secure_attribute(headers);
    let (value, max_age) = match token {
        Some(token) => (token, MAX_AGE_SECS),
        None => ("", 0),
    };
    format!("{COOKIE}={value}; Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// The sign-in page with `status` and `error`, its form carrying the browser's token (a new
/// one when it has none yet), set again in a cookie so that it lasts an hour from this page.
/// Several tabs share one token.
pub(super) fn page(
    console: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let token = cookie_token(headers).map_or_else(random_hex, String::from);
    let context = json!({"error": error, "sign_in_csrf": token, "csrf_field": FIELD});
    let mut response = console.pages.render(status, "sign_in.html", &context);
    match HeaderValue::from_str(&cookie(console, headers, Some(&token))) {
        Ok(value) => {
            response.headers_mut().append(header::SET_COOKIE, value);
            response
        }
        Err(e) => console.failed(e),
    }
}
