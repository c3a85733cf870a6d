//! Shared helpers: raw requests, error and uiform-shape assertions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::response::IntoResponse;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay, KEY};
pub(crate) use crate::common::{ENDPOINTS, LOGS, WAIT};

/// What an error about unparseable JSON mentions.
pub(crate) const MALFORMED: &str = "json|eof|expected|parsing";
pub(crate) const ZERO_HEX: &str = "00000000000000000000000000000000";

/// The compressed test schedule with another maximum attempt count.
pub(crate) fn retries(max_attempts: u32) -> String {
    assert!(common::FAST_RETRIES.contains("max_attempts = 4"));
    common::FAST_RETRIES.replace("max_attempts = 4", &format!("max_attempts = {max_attempts}"))
}

/// Now minus `secs`, as RFC 3339 UTC with a `Z` (safe in a query string).
pub(crate) fn rfc3339_ago(secs: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Request headers as (name, value) pairs.
pub(crate) type Headers = Vec<(&'static str, String)>;

/// One answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) body: Value,
}

/// Sends `method path` with exactly `headers` (no key unless given) and an optional raw body.
pub(crate) async fn send(
    relay: &Relay,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Resp {
    let mut req = common::client().request(method, relay.url(path));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("text");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, body }
}

/// Sends with the admin key in `Api-Key`.
pub(crate) async fn send_ok(
    relay: &Relay,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Resp {
    send(relay, method, path, &[("Api-Key", KEY.to_string())], body).await
}

/// Asserts an error answer: `status`, a JSON `{code, message, status[, field]}` and nothing
/// else, naming `hint` (or one of its `|`-separated alternatives) in its `field` or
/// `message` (when `hint` is not empty).
pub(crate) fn assert_error(r: &Resp, status: u16, hint: &str, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: {}", r.text);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.contains("application/json"), "{ctx}: content-type {ct:?}: {}", r.text);
    let obj = r.body.as_object().unwrap_or_else(|| panic!("{ctx}: not a JSON object: {}", r.text));
    for key in obj.keys() {
        assert!(
            ["code", "message", "status", "field"].contains(&key.as_str()),
            "{ctx}: unexpected key {key} in error {}",
            r.text
        );
    }
    assert!(obj["code"].as_str().is_some_and(|c| !c.is_empty()), "{ctx}: code: {}", r.text);
    assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()), "{ctx}: message: {}", r.text);
    assert_eq!(obj["status"], json!(status), "{ctx}: status in body: {}", r.text);
    if !hint.is_empty() {
        let field = obj.get("field").and_then(Value::as_str).unwrap_or("");
        let message = obj["message"].as_str().unwrap_or("");
        let (field, message) = (field.to_lowercase(), message.to_lowercase());
        assert!(
            hint.to_lowercase().split('|').any(|h| field.contains(h) || message.contains(h)),
            "{ctx}: error does not name {hint:?}: {}",
            r.text
        );
    }
}

pub(crate) fn assert_time(v: &Value, ctx: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{ctx}: not a string: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{ctx}: {s:?} not RFC 3339: {e}"));
}

pub(crate) fn assert_string_map(v: &Value, ctx: &str) {
    let obj = v.as_object().unwrap_or_else(|| panic!("{ctx}: not an object: {v}"));
    for (k, val) in obj {
        assert!(val.is_string(), "{ctx}: {k} is not a string: {val}");
    }
}

/// Every key uiform's `ExternalRequestLog` requires, with the right types.
pub(crate) fn assert_external_request_log(e: &Value) {
    let keys = [
        "webhook_url",
        "request_body",
        "request_headers",
        "request_at",
        "response_body",
        "response_headers",
        "response_at",
        "status_code",
        "error",
        "duration_ms",
    ];
    for k in keys {
        assert!(e.get(k).is_some(), "ExternalRequestLog lacks {k}: {e}");
    }
    let url = e["webhook_url"].as_str().expect("webhook_url");
    assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
    assert!(e["request_body"].is_object(), "request_body: {e}");
    assert!(e["response_body"].is_object(), "response_body: {e}");
    assert_string_map(&e["request_headers"], "request_headers");
    assert_string_map(&e["response_headers"], "response_headers");
    assert_time(&e["request_at"], "request_at");
    assert_time(&e["response_at"], "response_at");
    assert!(e["status_code"].is_u64(), "status_code: {e}");
    assert!(e["error"].is_null() || e["error"].is_string(), "error: {e}");
    assert!(e["duration_ms"].is_number(), "duration_ms: {e}");
}

/// Every key uiform's `AutomationLog` requires, with the right types.
pub(crate) fn assert_uiform_log(log: &Value) {
    let keys = [
        "object",
        "id",
        "user_email",
        "organization_id",
        "created_at",
        "automation_snapshot",
        "completion",
        "file_metadata",
        "external_request_log",
    ];
    for k in keys {
        assert!(log.get(k).is_some(), "AutomationLog lacks {k}: {log}");
    }
    assert_eq!(log["object"], "automation_log");
    assert!(log["id"].as_str().is_some_and(|i| i.starts_with("log_auto_")), "{}", log["id"]);
    assert!(log["user_email"].is_null() || log["user_email"].is_string(), "{log}");
    assert!(log["organization_id"].is_string(), "organization_id: {log}");
    assert_time(&log["created_at"], "created_at");
    let snap = &log["automation_snapshot"];
    for k in ["name", "processor_id", "webhook_url"] {
        assert!(snap[k].is_string(), "automation_snapshot.{k}: {snap}");
    }
    let c = &log["completion"];
    assert!(c["id"].is_string(), "completion.id: {c}");
    assert_eq!(c["object"], "chat.completion", "{c}");
    assert!(c["created"].is_i64(), "completion.created: {c}");
    assert!(c["model"].is_string(), "completion.model: {c}");
    let choices = c["choices"].as_array().expect("choices");
    assert!(!choices.is_empty(), "{c}");
    for ch in choices {
        assert!(ch["message"]["role"].is_string(), "choice: {ch}");
    }
    let f = &log["file_metadata"];
    assert!(f.is_null() || (f["filename"].is_string() && f["url"].is_string()), "{f}");
    let e = &log["external_request_log"];
    if !e.is_null() {
        assert_external_request_log(e);
    }
}

pub(crate) async fn count_list(relay: &Relay, path: &str) -> usize {
    let page = relay.get_json(path).await;
    assert!(page["list_metadata"]["after"].is_null(), "use a bigger limit: {page}");
    page["data"].as_array().expect("data").len()
}

pub(crate) fn ids_of(items: &[Value]) -> Vec<String> {
    items.iter().map(|v| v["id"].as_str().expect("id").to_string()).collect()
}

pub(crate) fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A receiver that answers 500 while the returned switch is on (it starts on), 200 after.
pub async fn switchable_receiver() -> (Receiver, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let receiver = Receiver::with(Arc::new(move |_| {
        if flag.load(Ordering::SeqCst) {
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"down\"}").into_response()
        } else {
            (axum::http::StatusCode::OK, "{\"ok\":true}").into_response()
        }
    }))
    .await;
    (receiver, failing)
}
