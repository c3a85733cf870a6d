//! How a stored log is shown: uiform's `AutomationLog` and `ExternalRequestLog`, every
//! required key present (nullable ones as `null`), plus hookrelay's own fields.

use serde_json::{json, Map, Value};

use crate::redact::HeaderRedaction;
use crate::store::{GoneReason, LogRecord};

/// `ExternalRequestLog`: the request as sent and the answer as received, header secrets
/// redacted by `rule` (again: rows stored under an older rule are covered too). A body that
/// is gone is shown as `{}` (the SDKs require an object there), and its `*_body_state`
/// says why: `expired` (content retention) or `expunged`; `stored` otherwise (`none` for a
/// response that never came).
pub fn external_request_log(r: &LogRecord, rule: &HeaderRedaction) -> Value {
    let error = match (r.log.error_code, &r.log.error_message) {
        (Some(code), Some(message)) => Value::String(format!("{}: {message}", code.as_str())),
        (Some(code), None) => Value::String(code.as_str().to_string()),
        _ => Value::Null,
    };
    json!({
        "webhook_url": r.log.webhook_url,
        "request_body": as_object(r.request_body.as_deref().unwrap_or_default()),
        "request_body_state": body_state(r.gone.request, true),
        "request_headers": headers_object(&r.log.request_headers, rule),
        "request_at": r.log.request_at.rfc3339(),
        "response_body": r.log.response_body.as_deref().map(as_object).unwrap_or_else(|| json!({})),
        "response_body_state": body_state(r.gone.response, r.log.response_body.is_some()),
        "response_headers": headers_object(&r.log.response_headers, rule),
        "response_at": r.log.response_at.rfc3339(),
        "status_code": r.log.status_code,
        "error": error,
        "duration_ms": r.log.duration_ms,
    })
}

/// `AutomationLog` with hookrelay's extras (`delivery_id`, `attempt`, `trigger`, …), header
/// secrets redacted by `rule`.
pub fn automation_log(r: &LogRecord, organization_id: &str, rule: &HeaderRedaction) -> Value {
    let request = r
        .request_body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .unwrap_or(Value::Null);
    let completion = completion_of(&request, r);
    let extraction_id = completion.get("extraction_id").cloned().unwrap_or(Value::Null);
    json!({
        "object": "automation_log",
        "id": r.id,
        "user_email": request.get("user").and_then(Value::as_str).filter(|u| crate::email::looks_like_email(u)),
        "organization_id": organization_id,
        "created_at": r.recorded_at().rfc3339(),
        "automation_snapshot": match r.gone.snapshot {
            None => snapshot_of(&r.snapshot, rule),
            Some(_) => snapshot_in_place_of(r),
        },
        "snapshot_state": body_state(r.gone.snapshot, true),
        "completion": completion,
        "file_metadata": file_metadata(&request),
        "external_request_log": external_request_log(r, rule),
        "extraction_id": extraction_id,
        "automation_id": r.log.automation_id,
        "processor_id": r.log.processor_id,
        "delivery_id": r.log.delivery_id,
        "message_id": r.log.message_id,
        "attempt": r.log.attempt,
        "trigger": r.log.trigger.as_str(),
        "rerun_of": r.log.rerun_of,
        "error_code": r.log.error_code,
        "response_truncated": r.log.response_truncated,
    })
}

/// A body as the JSON object `ExternalRequestLog` requires: a JSON object as is; other JSON
/// under `value`; UTF-8 text under `text`; anything else base64 under `base64`; empty as `{}`.
fn as_object(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return json!({});
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(other) => json!({ "value": other }),
        Err(_) => match std::str::from_utf8(body) {
            Ok(text) => json!({ "text": text }),
            Err(_) => {
                use base64::Engine;
                json!({ "base64": base64::engine::general_purpose::STANDARD.encode(body) })
            }
        },
    }
}

/// A body's `*_state`: why it is gone, else `stored` (or `none` when there was none).
fn body_state(gone: Option<GoneReason>, present: bool) -> &'static str {
    match (gone, present) {
        (Some(why), _) => why.as_str(),
        (None, true) => "stored",
        (None, false) => "none",
    }
}

/// What the log itself says of its automation, in place of a snapshot that is gone, so that
/// the log still validates as an `AutomationLog` (its snapshot's `name`, `processor_id` and
/// `webhook_url` are required); `snapshot_state` says it is not the stored one.
fn snapshot_in_place_of(r: &LogRecord) -> Value {
    json!({
        "object": "automation",
        "id": r.log.automation_id,
        "name": "",
        "processor_id": r.log.processor_id,
        "webhook_url": r.log.webhook_url,
        "webhook_headers": {},
    })
}

fn headers_object(text: &str, rule: &HeaderRedaction) -> Value {
    let mut headers = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    rule.redact_object(&mut headers);
    Value::Object(headers)
}

/// The stored automation snapshot, its `webhook_headers` redacted by `rule`.
fn snapshot_of(stored: &[u8], rule: &HeaderRedaction) -> Value {
    let mut snapshot = serde_json::from_slice::<Value>(stored).unwrap_or_else(|_| json!({}));
    if let Some(Value::Object(headers)) = snapshot.get_mut("webhook_headers") {
        rule.redact_object(headers);
    }
    snapshot
}

/// The payload's own `completion` when it is a chat completion (a `WebhookRequest`);
/// otherwise one that carries the payload as its parsed message, so every log validates.
fn completion_of(request: &Value, r: &LogRecord) -> Value {
    if let Some(c) = request.get("completion").filter(|c| is_chat_completion(c)) {
        return c.clone();
    }
    json!({
        "id": format!("chatcmpl-{}", r.log.message_id),
        "object": "chat.completion",
        "created": r.log.request_at.as_secs(),
        "model": "hookrelay",
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "logprobs": null,
            "message": {"role": "assistant", "content": request.to_string(), "parsed": request},
        }],
    })
}

fn is_chat_completion(c: &Value) -> bool {
    c.get("id").is_some_and(Value::is_string)
        && c.get("object").and_then(Value::as_str) == Some("chat.completion")
        && c.get("created").is_some_and(Value::is_i64)
        && c.get("model").is_some_and(Value::is_string)
        && c.get("choices").and_then(Value::as_array).is_some_and(|choices| {
            choices.iter().all(|ch| {
                ch.get("message").and_then(|m| m.get("role")).is_some_and(Value::is_string)
            })
        })
}

/// `BaseMIMEData` from the payload's `file_payload`, when it has a filename and a URL.
fn file_metadata(request: &Value) -> Value {
    let Some(file) = request.get("file_payload") else { return Value::Null };
    match (file.get("filename").and_then(Value::as_str), file.get("url").and_then(Value::as_str)) {
        (Some(filename), Some(url)) => json!({"filename": filename, "url": url}),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_always_become_objects() {
        assert_eq!(as_object(br#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(as_object(b"[1]"), json!({"value": [1]}));
        assert_eq!(as_object(b"ok"), json!({"text": "ok"}));
        assert_eq!(as_object(&[0xff, 0xfe]), json!({"base64": "//4="}));
        assert_eq!(as_object(b""), json!({}));
    }

    #[test]
    fn headers_and_snapshots_stored_in_clear_are_shown_redacted() {
        let rule = HeaderRedaction::with_names(["x-tenant".to_string()]);
        let stored = r#"{"x-session-id":"s","x-tenant":"t","webhook-signature":"v1,x","a":"b"}"#;
        assert_eq!(
            headers_object(stored, &rule),
            json!({"x-session-id": "[REDACTED]", "x-tenant": "[REDACTED]",
                   "webhook-signature": "v1,x", "a": "b"})
        );
        assert_eq!(headers_object("[]", &rule), json!({}));
        let snapshot =
            json!({"id": "endp_1", "webhook_headers": {"X-Passwd": "p", "X-Plain": "v"}});
        assert_eq!(
            snapshot_of(snapshot.to_string().as_bytes(), &rule),
            json!({"id": "endp_1", "webhook_headers": {"X-Passwd": "[REDACTED]", "X-Plain": "v"}})
        );
        assert_eq!(snapshot_of(b"not json", &rule), json!({}));
    }
}
