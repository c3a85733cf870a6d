//! Input the relay took wrongly or named vaguely: a path parameter that is not UTF-8 once
//! decoded (`%ff`), a query parameter given twice, and webhook URLs and header values that
//! read but are not what a client meant (surrounding blanks, an empty host, non-ASCII).

use reqwest::Method;
use serde_json::json;

use crate::common::{Relay, KEY};
use crate::helpers::{assert_error, send, send_ok, ENDPOINTS, LOGS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_path_and_query_parameters_are_named() {
    let relay = Relay::start("");
    let key = [("Api-Key", KEY.to_string())];
    let cases = [
        (format!("{ENDPOINTS}/%ff"), "id"),
        ("/v1/processors/%ff%fe/automations/logs".to_string(), "processor_id"),
        (format!("{ENDPOINTS}?limit=1&limit=2"), "limit"),
        ("/v1/messages?order=asc&order=desc".to_string(), "order"),
    ];
    let mut wrong = Vec::new();
    for (path, field) in cases {
        let r = send(&relay, Method::GET, &path, &key, None).await;
        assert_error(&r, 400, "", &path);
        if (&r.body["field"], &r.body["code"]) != (&json!(field), &json!("invalid_param")) {
            wrong.push(format!("{path}: {}", r.text));
        }
    }
    assert!(wrong.is_empty(), "not named:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_and_header_values_that_are_not_meant_are_refused() {
    let relay = Relay::start("");
    let key = [("Api-Key", KEY.to_string())];
    let body = |url: &str, headers: serde_json::Value| {
        json!({"name": "n", "processor_id": "p", "webhook_url": url, "webhook_headers": headers})
            .to_string()
    };
    let cases = [
        (body(" http://127.0.0.1:9/x", json!({})), "webhook_url"),
        (body("http://127.0.0.1:9/x\n", json!({})), "webhook_url"),
        (body("http:///x", json!({})), "webhook_url"),
        (body("http:x.example/", json!({})), "webhook_url"),
        (body("http://127.0.0.1:9/x", json!({"X-Note": "café"})), "webhook_headers.X-Note"),
    ];
    let mut wrong = Vec::new();
    for (create, field) in cases {
        let r = send(&relay, Method::POST, ENDPOINTS, &key, Some(create.clone())).await;
        if (r.status, &r.body["field"]) != (400, &json!(field)) {
            wrong.push(format!("{create}: {} {}", r.status, r.text));
        } else {
            assert_error(&r, 400, field, &create);
        }
    }
    assert!(wrong.is_empty(), "not refused:\n{}", wrong.join("\n"));
    let listed = send(&relay, Method::GET, ENDPOINTS, &key, None).await;
    assert_eq!(listed.body["data"], json!([]), "nothing was stored: {}", listed.text);
}

/// The limits on a message's `processor_id` and `event_type`, a spreadsheet's title and
/// worksheet titles, and the logs' `event_type` filter count bytes of UTF-8, as the
/// OpenAPI document says: a refusal says so (it said "characters" of a text refused at
/// half as many two-byte characters), and text at the byte limit is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_limits_counted_in_bytes_say_bytes() {
    let relay = Relay::start("");
    let e = |n: usize| "é".repeat(n);
    let over = [
        ("/v1/messages", json!({"processor_id": e(129), "payload": {}}), "processor_id"),
        (
            "/v1/messages",
            json!({"processor_id": "p", "event_type": e(65), "payload": {}}),
            "event_type",
        ),
        ("/v1/spreadsheets", json!({"title": e(129)}), "title"),
        ("/v1/spreadsheets", json!({"title": "t", "sheets": [e(51)]}), "sheets.0"),
    ];
    for (path, body, field) in over {
        let r = send_ok(&relay, Method::POST, path, Some(body.to_string())).await;
        assert_error(&r, 400, field, path);
        assert_eq!(r.body["field"], field, "{}", r.text);
        assert!(r.body["message"].as_str().is_some_and(|m| m.contains("bytes")), "{}", r.text);
    }
    let filter = format!("{}?event_type={}", LOGS, e(65));
    let r = send_ok(&relay, Method::GET, &filter, None).await;
    assert_error(&r, 400, "event_type", &filter);
    assert!(r.text.contains("bytes"), "{}", r.text);

    let at_limit = json!({"processor_id": e(128), "event_type": e(64), "payload": {}});
    let r = send_ok(&relay, Method::POST, "/v1/messages", Some(at_limit.to_string())).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let sheet = json!({"title": e(128), "sheets": [e(50)]});
    let r = send_ok(&relay, Method::POST, "/v1/spreadsheets", Some(sheet.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// A webhook URL's scheme is read in any case (`HTTP://`), as the URL parser reads it and
/// as the OpenAPI document's pattern says; it is stored as given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_scheme_in_capitals_is_taken() {
    let relay = Relay::start("");
    let body = json!({"name": "n", "processor_id": "p", "webhook_url": "HTTPS://example.com/h"});
    let r = send_ok(&relay, Method::POST, ENDPOINTS, Some(body.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["webhook_url"], "HTTPS://example.com/h");
}
