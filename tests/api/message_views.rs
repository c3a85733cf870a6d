use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay};
use crate::helpers::{assert_error, retries, send_ok, WAIT};

// ---------------------------------------------------------------------------------------
// Accepted means findable: messages listed and read back, deliveries with their last error
// ---------------------------------------------------------------------------------------

/// Every page of `path` (a list route with its filters, ending in `?…`), following the
/// `after` cursors, with the ids in listing order; pages of `limit`.
async fn walk_after(relay: &Relay, path: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = relay.get_json(&format!("{path}&limit={limit}{cursor}")).await;
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= limit, "{page}");
        out.extend(data.iter().map(|m| m["id"].as_str().expect("id").to_string()));
        match page["list_metadata"]["after"].as_str() {
            Some(a) => cursor = format!("&after={a}"),
            None => return out,
        }
    }
}

/// The same list walked backwards from its end: `before` cursors from the last page.
async fn walk_before(relay: &Relay, path: &str, limit: usize, last: &str) -> Vec<String> {
    let mut out = vec![last.to_string()];
    let mut cursor = format!("&before={last}");
    loop {
        let page = relay.get_json(&format!("{path}&limit={limit}{cursor}")).await;
        let data = page["data"].as_array().expect("data");
        let ids: Vec<String> =
            data.iter().map(|m| m["id"].as_str().expect("id").to_string()).collect();
        out.splice(0..0, ids);
        match page["list_metadata"]["before"].as_str() {
            Some(b) => cursor = format!("&before={b}"),
            None => return out,
        }
    }
}

async fn post_message(relay: &Relay, processor: &str, event_type: &str) -> String {
    let (status, m) = relay
        .post_json(
            "/v1/messages",
            &json!({"processor_id": processor, "event_type": event_type, "payload": {"e": event_type}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    m["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_reached_no_automation_are_listed_and_read_back() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    // Sent as raw text: the payload must come back byte for byte, not re-encoded.
    let payload = r#"{"z":1,"a":1.10,"big":123456789012345678901234567890,"s":"é"}"#;
    let body = format!(
        r#"{{"processor_id":"proc_nobody","event_type":"order.created","payload":{payload}}}"#
    );
    let r = send_ok(&relay, Method::POST, "/v1/messages", Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["delivery_ids"], json!([]));
    let id = r.body["id"].as_str().expect("id").to_string();

    let shown = send_ok(&relay, Method::GET, &format!("/v1/messages/{id}"), None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(shown.text.contains(&format!(r#""payload":{payload}"#)), "{}", shown.text);
    let m = &shown.body;
    assert_eq!(m["object"], "message");
    assert_eq!(m["id"], json!(id));
    assert_eq!(m["processor_id"], "proc_nobody");
    assert_eq!(m["event_type"], "order.created");
    assert_eq!(m["automation_id"], Value::Null);
    assert_eq!(m["delivery_count"], 0);
    assert_eq!(m["deliveries"], json!([]));
    assert_eq!(m["created_at"], r.body["created_at"]);

    let listed = relay.get_json("/v1/messages?processor_id=proc_nobody").await;
    assert_eq!(listed["data"].as_array().expect("data").len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["id"], json!(id));
    assert_eq!(listed["data"][0]["delivery_count"], 0);
    assert!(listed["data"][0].get("payload").is_none(), "lists stay light: {listed}");

    // A message addressed to one automation, and that automation's test call: both listed,
    // both naming it; the first with its delivery and its state.
    let a = relay.create_automation("proc_seen", &receiver.url("/a")).await;
    let (status, one) = relay
        .post_json("/v1/messages", &json!({"automation_id": a["id"], "payload": {"one": 1}}))
        .await;
    assert_eq!(status, 202, "{one}");
    let (status, test_log) = relay
        .post_json(
            &format!("/v1/processors/automations/tests/webhook/{}", a["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{test_log}");
    let shown = relay
        .wait_for(WAIT, "the addressed message delivered", || async {
            let m = relay.get_json(&format!("/v1/messages/{}", one["id"].as_str().unwrap())).await;
            (m["deliveries"][0]["status"] == "succeeded").then_some(m)
        })
        .await;
    assert_eq!(shown["automation_id"], a["id"]);
    assert_eq!(shown["payload"], json!({"one": 1}));
    let d = &shown["deliveries"][0];
    assert_eq!(d["id"], one["delivery_ids"][0]);
    assert_eq!(d["automation_id"], a["id"]);
    assert_eq!(d["attempts"], 1);
    assert!(d["last_log_id"].as_str().is_some_and(|l| l.starts_with("log_auto_")), "{d}");
    assert_eq!(d["last_error_code"], Value::Null);
    let seen = relay.get_json("/v1/messages?processor_id=proc_seen&order=asc").await;
    let seen = seen["data"].as_array().expect("data");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["id"], one["id"]);
    assert_eq!(seen[0]["delivery_count"], 1);
    assert_eq!(seen[1]["id"], test_log["message_id"]);
    assert_eq!(seen[1]["event_type"], "hookrelay.test");
    assert_eq!(seen[1]["automation_id"], a["id"]);
    assert_eq!(seen[1]["delivery_count"], 0);

    // Unknown and malformed ids are 404s.
    for bad in ["msg_00000000000000000000000000000000", "msg_nope", "dlv_1"] {
        let r = send_ok(&relay, Method::GET, &format!("/v1/messages/{bad}"), None).await;
        assert_error(&r, 404, "message", bad);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_filters_and_cursor_pages_walk_every_message_once() {
    let relay = Relay::start(common::FAST_RETRIES);
    let mut early = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 { "x.created" } else { "x.deleted" };
        early.push((post_message(&relay, "proc_fa", kind).await, "proc_fa", kind));
    }
    // Message ids carry their millisecond: a boundary strictly between the two batches.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let boundary = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = Vec::new();
    for _ in 0..5 {
        late.push((post_message(&relay, "proc_fb", "x.created").await, "proc_fb", "x.created"));
    }
    let all: Vec<_> = early.iter().chain(&late).cloned().collect();
    let ids_where = |keep: &dyn Fn(&(String, &str, &str)) -> bool| -> Vec<String> {
        all.iter().filter(|m| keep(m)).map(|m| m.0.clone()).collect()
    };
    let at = boundary.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cases: Vec<(String, Vec<String>)> = vec![
        (String::new(), ids_where(&|_| true)),
        ("processor_id=proc_fa".into(), ids_where(&|m| m.1 == "proc_fa")),
        ("event_type=x.created".into(), ids_where(&|m| m.2 == "x.created")),
        (
            "processor_id=proc_fa&event_type=x.deleted".into(),
            ids_where(&|m| m.1 == "proc_fa" && m.2 == "x.deleted"),
        ),
        (format!("created_after={at}"), late.iter().map(|m| m.0.clone()).collect()),
        (format!("created_before={at}"), early.iter().map(|m| m.0.clone()).collect()),
        (format!("created_after={at}&event_type=x.deleted"), vec![]),
    ];
    for (query, want) in cases {
        let asc = walk_after(&relay, &format!("/v1/messages?order=asc&{query}"), 2).await;
        assert_eq!(asc, want, "asc {query}");
        let mut desc = walk_after(&relay, &format!("/v1/messages?order=desc&{query}"), 3).await;
        desc.reverse();
        assert_eq!(desc, want, "desc {query}");
        if let Some(last) = want.last() {
            let back =
                walk_before(&relay, &format!("/v1/messages?order=asc&{query}"), 2, last).await;
            assert_eq!(back, want, "before cursors {query}");
        }
        let unique: BTreeSet<&String> = want.iter().collect();
        assert_eq!(unique.len(), want.len());
    }

    for (query, field) in [
        ("created_after=yesterday", "created_after"),
        ("created_before=12.5", "created_before"),
        ("limit=0", "limit"),
        ("order=sideways", "order"),
        ("after=log_auto_00000000000000000000000000000000", "after"),
    ] {
        let r = send_ok(&relay, Method::GET, &format!("/v1/messages?{query}"), None).await;
        assert_error(&r, 400, field, query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_shows_its_last_error_code_and_message() {
    let receiver = Receiver::with(std::sync::Arc::new(|_| {
        (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"down\"}").into_response()
    }))
    .await;
    let relay = Relay::start(&retries(2));
    let a = relay.create_automation("proc_err", &receiver.url("/down")).await;
    let m = relay.send_message("proc_err", json!({"n": 1})).await;
    let did = m["delivery_ids"][0].as_str().expect("delivery id").to_string();
    let d = relay
        .wait_for(WAIT, "the delivery exhausted", || async {
            let d = relay.get_json(&format!("/v1/deliveries/{did}")).await;
            (d["status"] == "exhausted").then_some(d)
        })
        .await;
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["last_error_code"], "E_HTTP_STATUS", "{d}");
    assert!(d["last_error_message"].as_str().is_some_and(|s| s.contains("503")), "{d}");
    let log = relay
        .get_json(&format!(
            "/v1/processors/automations/logs/{}",
            d["last_log_id"].as_str().expect("log")
        ))
        .await;
    assert_eq!(log["attempt"], 2, "the last log is the last attempt's: {log}");
    assert_eq!(log["error_code"], d["last_error_code"]);

    // The same in the list and in the message's view.
    let page = relay
        .get_json(&format!("/v1/deliveries?automation_id={}", a["id"].as_str().expect("id")))
        .await;
    assert_eq!(page["data"][0]["last_error_code"], "E_HTTP_STATUS", "{page}");
    assert_eq!(page["data"][0]["last_error_message"], d["last_error_message"]);
    let shown = relay.get_json(&format!("/v1/messages/{}", m["id"].as_str().expect("id"))).await;
    assert_eq!(shown["deliveries"][0]["last_error_code"], "E_HTTP_STATUS", "{shown}");
}
