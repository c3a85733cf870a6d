//! A log shows the request headers the receiver got, whether it stores them whole or leaves
//! out the ones its own columns imply (`src/store/implied_headers.rs`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{Received, Receiver, Relay};

const MESSAGES: usize = 60;
const PROCESSOR: &str = "proc_headers";

/// The headers a receiver got, by lower-case name.
fn received(call: &Received) -> BTreeMap<String, Value> {
    call.headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), json!(value.to_str().expect("ASCII"))))
        .collect()
}

/// Sends [`MESSAGES`] through a relay started with `toml`; checks each log shows what its
/// call sent (`redacted` shown as such) in the order recorded, and returns the stored
/// `(request_headers, request_headers_implied)` of every log.
async fn deliver_and_compare(toml: &str, redacted: Option<&str>) -> Vec<(String, bool)> {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(toml);
    let body = json!({"name": "headers", "processor_id": PROCESSOR,
        "webhook_url": receiver.url("/h"), "webhook_headers": {"X-Plain": "p"}});
    let (status, created) = relay.post_json("/v1/processors/automations/endpoints", &body).await;
    assert_eq!(status, 201, "{created}");
    for n in 0..MESSAGES {
        relay.send_message(PROCESSOR, json!({"n": n})).await;
    }
    let logs = relay.wait_logs_exactly("", MESSAGES).await;
    let got: BTreeMap<String, BTreeMap<String, Value>> = receiver
        .calls()
        .iter()
        .map(|call| {
            (received(call)["webhook-id"].as_str().unwrap_or("").to_string(), received(call))
        })
        .collect();
    assert_eq!(got.len(), MESSAGES, "one call a message");
    for log in &logs {
        let shown = log["external_request_log"]["request_headers"]
            .as_object()
            .unwrap_or_else(|| panic!("headers object: {log}"));
        let sent = &got[log["message_id"].as_str().expect("message id")];
        for (name, value) in shown {
            let expected = match redacted {
                Some(secret) if secret == name => &json!("[REDACTED]"),
                _ => &sent[name],
            };
            assert_eq!(value, expected, "{name}: {log}");
        }
        let names: Vec<&str> = shown.keys().map(String::as_str).collect();
        let signed = ["user-agent", "content-type", "webhook-id", "webhook-timestamp"];
        assert_eq!(names, [&signed[..], &["webhook-signature", "x-plain"]].concat(), "{log}");
    }
    // A rerun answers the log it stored: the same as the list shows it (headers included).
    let first = logs[0]["id"].as_str().expect("id");
    let rerun = format!("/v1/processors/automations/logs/{first}/rerun");
    let (status, answer) = relay.post_json(&rerun, &json!({})).await;
    assert_eq!(status, 200, "{answer}");
    let listed = relay.all_logs("&trigger=rerun").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let call = listed[0]["external_request_log"].as_object().expect("the log's call");
    for (key, value) in call {
        assert_eq!(&answer[key], value, "{key}: the rerun's answer and its log");
    }
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("db");
    db.prepare("SELECT request_headers, request_headers_implied FROM logs WHERE trigger <> 'rerun'")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("logs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stores_the_headers_a_signed_call_always_sends_short_and_shows_them_as_sent() {
    let stored = deliver_and_compare("", None).await;
    // A call whose timestamp was taken in the second before its request is stored whole;
    // that is rare, not the rule.
    let short = stored.iter().filter(|(_, implied)| *implied).count();
    assert!(short * 10 >= MESSAGES * 9, "{short} of {MESSAGES} stored short");
    for (headers, implied) in &stored {
        assert_eq!(*implied, !headers.contains("webhook-id"), "{headers}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_header_that_would_be_implied_is_stored_whole_and_shown_redacted() {
    let toml = "[security]\nredact_headers = [\"webhook-timestamp\"]\n";
    let stored = deliver_and_compare(toml, Some("webhook-timestamp")).await;
    assert_eq!(stored.len(), MESSAGES);
    for (headers, implied) in &stored {
        assert!(!implied && headers.contains("webhook-id"), "{headers}");
    }
}
