//! Every error answer is the JSON error `{code, message, status}`, including those no handler
//! of ours writes: axum's 405 for a known route and a method it does not serve (empty
//! body), an extractor's rejection (plain text), the request timeout (empty body). The
//! layer rewrites such an answer's body with the registry's code for its status
//! ([`ApiErrorCode::for_status`]) and keeps its headers (`Allow`…); the status is the code's,
//! so a status no code has becomes the nearest generic one.
//!
//! It also logs each error answer once, by whose fault it is: a client error (4xx) at DEBUG,
//! since a client's mistake is no news for the operator; a refusal for want of capacity or
//! storage (503, 507: the relay works as designed, and the client may retry) at WARN; any other
//! server error at ERROR. `/readyz` answering "not ready" is its answer, not an error: DEBUG.

use axum::body::{to_bytes, Body};
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::AnsweredCode;
use super::{ApiError, ApiErrorCode};

/// The most of a rejection's text kept as the message.
const MAX_DETAIL_BYTES: usize = 4096;

/// Rewrites an error answer whose body is not JSON into the JSON error shape; passes every
/// other answer through untouched. For `axum::middleware::map_response`.
pub(super) async fn json_errors(method: Method, uri: Uri, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let ours = response.extensions().get::<AnsweredCode>().map(|c| c.0.as_str());
    if ours.is_some() || is_json(response.headers()) {
        log_answer(&method, &uri, status, ours.unwrap_or("-"));
        return response;
    }
    let code = ApiErrorCode::for_status(status);
    log_answer(&method, &uri, code.status(), code.as_str());
    let (parts, body) = response.into_parts();
    let detail = detail(body).await;
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            match parts.headers.get(ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allow) if !allow.is_empty() => {
                    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
                    format!(
                        "method {method} is not allowed on this route; allowed: {}",
                        methods.join(", ")
                    )
                }
                _ => format!("method {method} is not allowed on this route"),
            }
        }
        _ => detail.unwrap_or_else(|| {
            status.canonical_reason().unwrap_or("request failed").to_lowercase()
        }),
    };
    let mut answer = ApiError::new(code, message).into_response();
    let mut headers = parts.headers;
    headers.remove(CONTENT_LENGTH);
    headers.remove(CONTENT_TYPE);
    if let Some(json) = answer.headers().get(CONTENT_TYPE).cloned() {
        headers.insert(CONTENT_TYPE, json);
    }
    *answer.headers_mut() = headers;
    answer
}

/// One line per error answer, at the level the module doc gives. The path only: a query
/// string may carry values that do not belong in a log.
fn log_answer(method: &Method, uri: &Uri, status: StatusCode, code: &str) {
    let path = uri.path();
    match status {
        StatusCode::SERVICE_UNAVAILABLE if path == "/readyz" => {
            tracing::debug!(%method, path = %path, status = status.as_u16(), "answered not ready");
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INSUFFICIENT_STORAGE => {
            let status = status.as_u16();
            tracing::warn!(%method, path = %path, status, code = %code, "answered a refusal");
        }
        _ if status.is_server_error() => {
            let status = status.as_u16();
            tracing::error!(%method, path = %path, status, code = %code, "answered a server error");
        }
        _ => {
            let status = status.as_u16();
            tracing::debug!(%method, path = %path, status, code = %code, "answered a client error");
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
}

/// The body's text, when it is short, non-empty text.
async fn detail(body: Body) -> Option<String> {
    let bytes = to_bytes(body, MAX_DETAIL_BYTES).await.ok()?;
    let text = std::str::from_utf8(&bytes).ok()?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(status: StatusCode, body: &'static str) -> Response {
        let mut r = (status, body).into_response();
        r.headers_mut().insert(ALLOW, "GET,HEAD".parse().expect("header"));
        r
    }

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = to_bytes(r.into_body(), usize::MAX).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn an_empty_405_becomes_json_and_keeps_allow() {
        let r = json_errors(
            Method::DELETE,
            Uri::from_static("/x"),
            plain(StatusCode::METHOD_NOT_ALLOWED, ""),
        )
        .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET,HEAD");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let body = body_json(r).await;
        assert_eq!(body["code"], ApiErrorCode::MethodNotAllowed.as_str());
        assert_eq!(body["status"], 405);
        assert_eq!(
            body["message"], "method DELETE is not allowed on this route; allowed: GET, HEAD",
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_text_rejection_keeps_its_text_and_json_and_success_pass_through() {
        let r = json_errors(
            Method::GET,
            Uri::from_static("/x"),
            plain(StatusCode::BAD_REQUEST, "Invalid URL"),
        )
        .await;
        let body = body_json(r).await;
        let invalid = ApiErrorCode::InvalidParam.as_str();
        assert_eq!(
            body,
            serde_json::json!({"code": invalid, "message": "Invalid URL", "status": 400})
        );
        let ok = json_errors(
            Method::GET,
            Uri::from_static("/x"),
            (StatusCode::OK, "fine").into_response(),
        )
        .await;
        assert_eq!(to_bytes(ok.into_body(), 100).await.expect("body"), "fine");
        let ours = ApiError::new(ApiErrorCode::AutomationDisabled, "taken").into_response();
        let body = body_json(json_errors(Method::GET, Uri::from_static("/x"), ours).await).await;
        assert_eq!(body["message"], "taken");
    }

    #[tokio::test]
    async fn an_empty_timeout_gets_a_message() {
        let r = json_errors(
            Method::GET,
            Uri::from_static("/x"),
            StatusCode::GATEWAY_TIMEOUT.into_response(),
        )
        .await;
        let body = body_json(r).await;
        assert_eq!(body["code"], ApiErrorCode::Timeout.as_str());
        assert_eq!(body["message"], "gateway timeout");
    }
}
