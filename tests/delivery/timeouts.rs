use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, SlowReceiver};

// 4. Timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_times_out_with_e_timeout() {
    let slow = SlowReceiver::start(Duration::from_secs(3)).await;
    let relay =
        Relay::start(&delivery_toml(&[("request_timeout_ms", "500"), ("max_attempts", "1")]));
    relay.create_automation("proc_timeout", &slow.url()).await;
    let id = first_delivery(&relay.send_message("proc_timeout", json!({"t": 1})).await);
    let d = relay.wait_delivery_ends(&id, "exhausted").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(slow.count(), 1, "the call reached the receiver");
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["error_code"], "E_TIMEOUT", "{log}");
    assert_eq!(log["external_request_log"]["status_code"], 0);
    let duration = log["external_request_log"]["duration_ms"].as_f64().expect("duration_ms");
    assert!((450.0..2_500.0).contains(&duration), "timed out after {duration} ms, limit 500");
    let error = log["external_request_log"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_TIMEOUT"), "{error}");
}

// Headers arrive, then the body stalls past the timeout: a timeout, not a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_response_body_times_out() {
    let receiver = Receiver::with(Arc::new(|_| {
        let stream = futures_util::stream::unfold(0u8, |step| async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"partial")), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Some((Ok(axum::body::Bytes::from_static(b" rest")), 2))
                }
                _ => None,
            }
        });
        (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response()
    }))
    .await;
    let relay =
        Relay::start(&delivery_toml(&[("request_timeout_ms", "500"), ("max_attempts", "1")]));
    relay.create_automation("proc_stall", &receiver.url("/stall")).await;
    let id = first_delivery(&relay.send_message("proc_stall", json!({"s": 1})).await);
    let d = relay.wait_delivery_ends(&id, "exhausted").await;
    assert_eq!(d["attempts"], 1);
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["error_code"], "E_TIMEOUT", "{}", logs[0]);
}
