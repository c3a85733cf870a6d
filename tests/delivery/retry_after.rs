use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::{self, Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, gap_ms};

// 3. Retry-After, delta seconds and HTTP-date; clamped to max_retry_after_secs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_and_http_date_are_honoured() {
    let seconds = Receiver::with(Arc::new(|i| {
        if i == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let date = Receiver::with(Arc::new(|i| {
        if i == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            let value = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", value)], "maintenance")
                .into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_ra_secs", &seconds.url("/s")).await;
    relay.create_automation("proc_ra_date", &date.url("/d")).await;
    let m1 = relay.send_message("proc_ra_secs", json!({"ra": "seconds"})).await;
    let m2 = relay.send_message("proc_ra_date", json!({"ra": "date"})).await;
    let (d1, d2) = (first_delivery(&m1), first_delivery(&m2));
    relay.wait_delivery_ends(&d1, "succeeded").await;
    relay.wait_delivery_ends(&d2, "succeeded").await;

    let calls = seconds.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    // The schedule alone would retry after ~200 ms.
    assert!(gap >= 950, "Retry-After: 1 not honoured: retried after {gap} ms");
    assert!(gap < 2_500, "Retry-After: 1 retried far too late: {gap} ms");

    let calls = date.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    // The date is ~2 s ahead at 1-s resolution: the wait is between ~1 s and ~2 s.
    assert!(gap >= 900, "Retry-After HTTP-date not honoured: retried after {gap} ms");
    assert!(gap < 3_500, "Retry-After HTTP-date retried far too late: {gap} ms");

    let logs = relay.logs_of(&d1).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 429);
    assert_eq!(logs[0]["external_request_log"]["response_headers"]["retry-after"], "1");
    assert_eq!(logs[1]["trigger"], "retry");
    let logs = relay.logs_of(&d2).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_clamped_to_the_configured_maximum() {
    let receiver = Receiver::with(Arc::new(|i| {
        if i == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3600")], "later").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("max_retry_after_secs", "1")]));
    relay.create_automation("proc_clamp", &receiver.url("/c")).await;
    let id = first_delivery(&relay.send_message("proc_clamp", json!({"c": 1})).await);
    relay.wait_delivery_ends(&id, "succeeded").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    assert!(gap >= 950, "clamped Retry-After should still wait ~1 s: {gap} ms");
    assert!(gap < 2_500, "Retry-After: 3600 not clamped to 1 s: {gap} ms");
}

// RFC 9110 §5.6.7: a recipient must accept all three HTTP-date formats, including asctime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_asctime_http_date_is_honoured() {
    let receiver = Receiver::with(Arc::new(|i| {
        if i == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            let value = at.format("%a %b %e %H:%M:%S %Y").to_string();
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", value)], "maintenance")
                .into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_asctime", &receiver.url("/a")).await;
    let id = first_delivery(&relay.send_message("proc_asctime", json!({"a": 1})).await);
    relay.wait_delivery_ends(&id, "succeeded").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    assert!(gap >= 900, "asctime Retry-After not honoured: retried after {gap} ms");
    assert!(gap < 3_500, "asctime Retry-After retried far too late: {gap} ms");
}
