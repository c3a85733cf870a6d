//! Bounds on a request's head: its URI (414) and its header fields, by number and by size
//! (431), answered with the JSON error like every other refusal.
//!
//! hyper enforces limits of its own while parsing, and answers those itself with an empty
//! body before any service runs. The listener sets hyper's limits above these (see
//! `listener::connection`), so every head that breaks ours reaches this check and gets the
//! JSON error; only heads past hyper's much larger limits get hyper's bare answer.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiErrorCode, AppState};
use crate::config::LimitsConfig;

/// Most header fields a request may carry (hyper's own default, as clients expect).
pub const MAX_HEADER_FIELDS: usize = 100;

/// Answers 414 or 431 when the request's head is past the limits; otherwise runs the request.
pub(super) async fn check_head(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match head_problem(req.uri(), req.headers(), &state.config.limits) {
        Some(problem) => problem.into_response(),
        None => next.run(req).await,
    }
}

fn head_problem(uri: &Uri, headers: &HeaderMap, limits: &LimitsConfig) -> Option<ApiError> {
    let uri_bytes = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_bytes > limits.max_uri_bytes {
        return Some(ApiError::new(
            ApiErrorCode::UriTooLong,
            format!(
                "the request URI (path and query) is {uri_bytes} bytes; at most {} are accepted",
                limits.max_uri_bytes
            ),
        ));
    }
    if headers.len() > MAX_HEADER_FIELDS {
        return Some(headers_too_large(
            format!(
                "the request has {} header fields; at most {MAX_HEADER_FIELDS} are accepted",
                headers.len()
            ),
            None,
        ));
    }
    let size = |(name, value): (&axum::http::HeaderName, &axum::http::HeaderValue)| {
        name.as_str().len() + value.len()
    };
    let header_bytes: usize = headers.iter().map(size).sum();
    if header_bytes > limits.max_header_bytes {
        // Named, so the client can tell which one grew (a cookie, a token).
        let largest = headers.iter().max_by_key(|&field| size(field)).map(|(name, _)| name);
        return Some(headers_too_large(
            format!(
                "the request's header names and values are {header_bytes} bytes (largest: {}); \
                 at most {} are accepted",
                largest.map_or("", |name| name.as_str()),
                limits.max_header_bytes
            ),
            largest.map(|name| name.to_string()),
        ));
    }
    None
}

fn headers_too_large(message: String, field: Option<String>) -> ApiError {
    ApiError { code: ApiErrorCode::HeadersTooLarge, message, field }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(uri: &str, headers: &[(&str, String)]) -> Option<(u16, Option<String>)> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let uri: Uri = uri.parse().expect("uri");
        head_problem(&uri, &map, &LimitsConfig::default()).map(|e| (e.status().as_u16(), e.field))
    }

    #[test]
    fn each_limit_is_inclusive_and_named() {
        let max_uri = LimitsConfig::default().max_uri_bytes;
        assert_eq!(problem(&format!("/{}", "a".repeat(max_uri - 1)), &[]), None);
        assert_eq!(problem(&format!("/{}", "a".repeat(max_uri)), &[]), Some((414, None)));
        let many: Vec<_> = (0..=MAX_HEADER_FIELDS).map(|i| ("x-n", i.to_string())).collect();
        assert_eq!(problem("/", &many[1..]), None);
        assert_eq!(problem("/", &many), Some((431, None)));
        let max_bytes = LimitsConfig::default().max_header_bytes;
        let cookie = |len: usize| vec![("x-small", "1".to_string()), ("cookie", "c".repeat(len))];
        let fits = max_bytes - "x-small1cookie".len();
        assert_eq!(problem("/", &cookie(fits)), None);
        assert_eq!(problem("/", &cookie(fits + 1)), Some((431, Some("cookie".into()))));
    }
}
