use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{header, WAIT};

/// Secret header values the automation carries, by name (`X-Tenant` through
/// `security.redact_headers`, the others by the built-in rule).
const SENT: [(&str, &str); 5] = [
    ("X-Hub-Signature", "sha1=static-signature-value"),
    ("X-Credentials", "credentials-value"),
    ("X-Passwd", "passwd-value"),
    ("X-Session-Id", "session-id-value"),
    ("X-Tenant", "tenant-value"),
];

/// Secret header values the receiver answers with.
const ANSWERED: [(&str, &str); 2] =
    [("set-cookie", "sid=cookie-value"), ("x-auth-token", "tok-value")];

/// Every secret value of the test.
fn secrets() -> impl Iterator<Item = &'static str> {
    SENT.iter().chain(&ANSWERED).map(|(_, value)| *value)
}

fn assert_redacted(headers: &Value, names: &[&str], what: &str) {
    for name in names {
        let value = headers.as_object().and_then(|h| {
            h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        });
        assert_eq!(value, Some(json!("[REDACTED]")), "{what}: {name} in {headers}");
    }
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in secrets() {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

// Header secrets are recognised by a documented list, a broader heuristic and
// `security.redact_headers`, and redacted alike in the automation, the log's request and
// response headers and its snapshot, as stored and as shown; `webhook-signature` stays shown;
// the receiver gets every real value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_secrets_are_redacted_wherever_stored_or_shown_but_sent() {
    let receiver = Receiver::with(Arc::new(|_| {
        let mut answer = (StatusCode::OK, "{}").into_response();
        for (name, value) in ANSWERED.iter().chain(&[("x-request-id", "req-visible")]) {
            answer.headers_mut().insert(*name, value.parse().expect("header value"));
        }
        answer
    }))
    .await;
    let toml = format!("{}[security]\nredact_headers = [\"x-tenant\"]\n", common::FAST_RETRIES);
    let relay = Relay::start(&toml);
    let mut headers: serde_json::Map<String, Value> =
        SENT.iter().map(|(name, value)| (name.to_string(), json!(value))).collect();
    headers.insert("X-Plain".into(), json!("plain-visible"));
    let (status, created) = relay
        .post_json(
            "/v1/processors/automations/endpoints",
            &json!({"name": "redact", "processor_id": "proc_redact",
                    "webhook_url": receiver.url("/r"), "webhook_headers": headers}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let names: Vec<&str> = SENT.iter().map(|(name, _)| *name).collect();
    let shown = relay.get_json(&format!("/v1/processors/automations/endpoints/{id}")).await;
    for automation in [&created, &shown] {
        assert_redacted(&automation["webhook_headers"], &names, "automation");
        assert_eq!(automation["webhook_headers"]["X-Plain"], "plain-visible");
        assert_no_secret(&automation.to_string(), "automation");
    }

    relay.send_message("proc_redact", json!({"n": 1})).await;
    let (status, tested) = relay
        .post_json(&format!("/v1/processors/automations/tests/webhook/{id}"), &json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    let logs = relay
        .wait_for(WAIT, "the delivery's log", || async {
            let logs = relay.all_logs(&format!("&automation_id={id}")).await;
            (logs.len() == 2).then_some(logs)
        })
        .await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        for (name, value) in SENT {
            assert_eq!(header(call, name), value, "the receiver gets {name}");
        }
        assert!(verify_signature(
            created["secret"].as_str().expect("secret"),
            &call.headers,
            &call.body
        ));
    }
    let signatures: Vec<&str> = calls.iter().map(|c| header(c, "webhook-signature")).collect();
    for log in logs.iter().chain([&tested]) {
        let call = &log["external_request_log"];
        assert_redacted(&call["request_headers"], &names, "log request headers");
        assert_redacted(&log["automation_snapshot"]["webhook_headers"], &names, "snapshot");
        assert_redacted(&call["response_headers"], &["set-cookie", "x-auth-token"], "response");
        assert_eq!(call["response_headers"]["x-request-id"], "req-visible", "{call}");
        assert_eq!(call["request_headers"]["x-plain"], "plain-visible", "{call}");
        let signature = call["request_headers"]["webhook-signature"].as_str().unwrap_or("");
        assert!(signatures.contains(&signature), "webhook-signature is shown: {call}");
        assert_no_secret(&log.to_string(), "log");
    }

    // What is stored is already redacted (not only what is shown).
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("db");
    let mut stored: Vec<String> = db
        .prepare("SELECT request_headers || response_headers FROM logs")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("logs");
    assert_eq!(stored.len(), 2);
    let blobs: Vec<Vec<u8>> = db
        .prepare("SELECT data FROM bodies")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("bodies");
    stored.extend(blobs.iter().map(|b| String::from_utf8_lossy(b).into_owned()));
    assert_no_secret(&stored.join("\n"), "the database's logs and bodies");
}
