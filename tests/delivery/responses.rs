use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery};

// 5. Response body cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bodies_are_capped_and_flagged() {
    let big = Receiver::with(Arc::new(|_| {
        (StatusCode::OK, [("content-type", "text/plain")], "x".repeat(100 * 1024)).into_response()
    }))
    .await;
    let small = Receiver::with(Arc::new(|_| {
        (StatusCode::OK, [("content-type", "text/plain")], "short answer").into_response()
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("response_body_cap_bytes", "1024")]));
    relay.create_automation("proc_big", &big.url("/big")).await;
    relay.create_automation("proc_small", &small.url("/small")).await;
    let d_big = first_delivery(&relay.send_message("proc_big", json!({"b": 1})).await);
    let d_small = first_delivery(&relay.send_message("proc_small", json!({"s": 1})).await);
    relay.wait_delivery_ends(&d_big, "succeeded").await;
    relay.wait_delivery_ends(&d_small, "succeeded").await;

    let logs = relay.logs_of(&d_big).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["response_truncated"], true, "{}", logs[0]["response_truncated"]);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200);
    assert!(logs[0]["error_code"].is_null());
    let text = logs[0]["external_request_log"]["response_body"]["text"]
        .as_str()
        .expect("text body shown as {text}");
    assert!(text.len() <= 1024, "stored {} bytes, cap 1024", text.len());
    assert!(text.len() >= 512 && text.bytes().all(|b| b == b'x'), "kept the start of the body");
    // The single-log view agrees with the list.
    let one = relay
        .get_json(&format!("/v1/processors/automations/logs/{}", logs[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["response_truncated"], true);

    let logs = relay.logs_of(&d_small).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["response_truncated"], false);
    assert_eq!(logs[0]["external_request_log"]["response_body"], json!({"text": "short answer"}));
}

// 6. Redirects are not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let target = Receiver::ok().await;
    let location = target.url("/elsewhere");
    let redirecting = Receiver::with(Arc::new(move |_| {
        (StatusCode::FOUND, [("location", location.clone())], "").into_response()
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("max_attempts", "2")]));
    relay.create_automation("proc_redirect", &redirecting.url("/moved")).await;
    let id = first_delivery(&relay.send_message("proc_redirect", json!({"r": 1})).await);
    relay.wait_delivery_ends(&id, "exhausted").await;
    assert_eq!(redirecting.count(), 2);
    assert_eq!(target.count(), 0, "the redirect target must never be called");
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_eq!(log["external_request_log"]["status_code"], 302);
        assert_eq!(log["error_code"], "E_HTTP_STATUS");
        assert_eq!(log["external_request_log"]["webhook_url"], redirecting.url("/moved"));
    }
}
