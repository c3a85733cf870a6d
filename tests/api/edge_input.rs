//! Input the relay took wrongly or named vaguely: a path parameter that is not UTF-8 once
//! decoded (`%ff`), a query parameter given twice, and webhook URLs and header values that
//! read but are not what a client meant (surrounding blanks, an empty host, non-ASCII).

use reqwest::Method;
use serde_json::json;

use crate::common::{Relay, KEY};
use crate::helpers::{assert_error, send, ENDPOINTS};

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
