//! Issue 10, item 4: reruns that tell the truth. A rerun that got a 2xx ends the delivery it
//! repeated `succeeded` (so neither a retry nor a recover sends it again), whether it had
//! ended exhausted, was still retrying, or had an attempt in flight; a failed rerun leaves
//! the delivery as it was; a test call's log has no delivery.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay};
use crate::helpers::{retries, rfc3339_ago, LOGS, WAIT};

/// Reruns log `id` with no body, as the SDKs do; asserts 200 and returns the answer.
async fn rerun(relay: &Relay, id: &str) -> Value {
    let resp = relay
        .req(reqwest::Method::POST, &format!("{LOGS}/{id}/rerun"))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("rerun");
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["target"], "original", "{answer}");
    answer
}

async fn delivery(relay: &Relay, id: &str) -> Value {
    relay.get_json(&format!("/v1/deliveries/{id}")).await
}

/// The only delivery of the automation `automation_id`, once its status is `status`.
async fn wait_delivery(relay: &Relay, automation_id: &str, status: &str) -> Value {
    relay
        .wait_for(WAIT, &format!("a {status} delivery"), || async {
            let page =
                relay.get_json(&format!("/v1/deliveries?automation_id={automation_id}")).await;
            page["data"]
                .as_array()
                .and_then(|d| d.first())
                .filter(|d| d["status"] == status)
                .cloned()
        })
        .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_rerun_ends_an_exhausted_delivery_and_recover_leaves_it_alone() {
    let since = rfc3339_ago(60);
    let receiver = Receiver::failing_first(1, 500).await;
    let down = Receiver::failing_first(usize::MAX, 503).await;
    let relay = Relay::start(&retries(1));
    let automation = relay.create_automation("proc_settle", &receiver.url("/r")).await;
    let broken = relay.create_automation("proc_down", &down.url("/d")).await;
    relay.send_message("proc_settle", json!({"n": 1})).await;
    relay.send_message("proc_down", json!({"n": 2})).await;
    let exhausted = wait_delivery(&relay, &id(&automation), "exhausted").await;
    let still_down = wait_delivery(&relay, &id(&broken), "exhausted").await;

    let log = relay.wait_logs_exactly(&format!("&automation_id={}", id(&automation)), 1).await;
    let answer = rerun(&relay, &id(&log[0])).await;
    assert_eq!(answer["status_code"], 200, "{answer}");
    assert_eq!(answer["delivery_id"], exhausted["id"], "{answer}");
    assert_eq!(answer["delivery_status"], "succeeded", "{answer}");
    let now = delivery(&relay, &id(&exhausted)).await;
    assert_eq!(now["status"], "succeeded", "{now}");
    assert_eq!(now["last_log_id"], answer["id"], "{now}");
    assert_eq!(now["attempts"], 1, "a rerun is not an attempt of the delivery: {now}");

    // A failed rerun changes nothing.
    let log = relay.wait_logs_exactly(&format!("&automation_id={}", id(&broken)), 1).await;
    let answer = rerun(&relay, &id(&log[0])).await;
    assert_eq!(answer["status_code"], 503, "{answer}");
    assert_eq!(answer["delivery_status"], "exhausted", "{answer}");
    assert_eq!(delivery(&relay, &id(&still_down)).await, still_down);

    // Recover finds only the one still exhausted: nothing is sent twice.
    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 1, "{job}");
    relay
        .wait_for(WAIT, "the recover job", || async {
            let j = relay.get_json(&format!("{LOGS}/recover/{}", id(&job))).await;
            (j["status"] == "completed").then_some(())
        })
        .await;
    assert_eq!(receiver.count(), 2, "the original call and the rerun, nothing more");
    assert_eq!(down.count(), 3, "the original call, the rerun and the recover attempt");

    // A test call's log belongs to no delivery.
    let (status, test_log) = relay
        .post_json(
            &format!("/v1/processors/automations/tests/webhook/{}", id(&automation)),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{test_log}");
    let answer = rerun(&relay, &id(&test_log)).await;
    assert_eq!(answer.get("delivery_id"), Some(&Value::Null), "{answer}");
    assert_eq!(answer.get("delivery_status"), Some(&Value::Null), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_rerun_ends_a_retrying_delivery_before_its_next_attempt() {
    let receiver = Receiver::failing_first(1, 500).await;
    let slow_retry =
        common::FAST_RETRIES.replace("initial_backoff_ms = 200", "initial_backoff_ms = 1500");
    let relay = Relay::start(&slow_retry);
    let automation = relay.create_automation("proc_retrying", &receiver.url("/r")).await;
    relay.send_message("proc_retrying", json!({"n": 1})).await;
    let log = relay.wait_logs_exactly("", 1).await;
    let pending = wait_delivery(&relay, &id(&automation), "pending").await;
    let due =
        chrono::DateTime::parse_from_rfc3339(pending["next_attempt_at"].as_str().expect("due"))
            .expect("time");

    let answer = rerun(&relay, &id(&log[0])).await;
    assert_eq!(answer["status_code"], 200, "{answer}");
    assert_eq!(answer["delivery_status"], "succeeded", "{answer}");
    let now = delivery(&relay, &id(&pending)).await;
    assert_eq!(now["status"], "succeeded", "{now}");
    assert!(now["next_attempt_at"].is_null(), "{now}");

    // Past the retry it had scheduled (and a few claim polls), nothing more was sent; a
    // delivery failing now has its retry sent meanwhile (due later than the cancelled one).
    let control = relay.retrying_control("proc_control").await;
    relay.wait_control_retry(&control).await;
    let wait = (due.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait + 700)).await;
    assert_eq!(receiver.count(), 2, "the retry was sent after the rerun succeeded");
    let own_logs = relay.all_logs(&format!("&automation_id={}", id(&automation))).await;
    assert_eq!(own_logs.len(), 2, "{own_logs:?}");
}

/// A receiver answering 500 at once to its first call, 500 after `delay` to its second, and
/// 200 to every later one; returns its URL and call counter.
async fn fail_then_slow_fail(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 1 {
                tokio::time::sleep(delay).await;
            }
            if n < 2 {
                (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"down\"}").into_response()
            } else {
                (StatusCode::OK, "{\"ok\":true}").into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/flaky"), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_in_flight_when_a_rerun_succeeds_does_not_make_the_delivery_due_again() {
    let (url, calls) = fail_then_slow_fail(Duration::from_millis(1500)).await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_in_flight", &url).await;
    relay.send_message("proc_in_flight", json!({"n": 1})).await;
    let first = relay.wait_logs_exactly("", 1).await;
    relay
        .wait_for(WAIT, "the second attempt in flight", || async {
            (calls.load(Ordering::SeqCst) == 2).then_some(())
        })
        .await;

    let answer = rerun(&relay, &id(&first[0])).await;
    assert_eq!(answer["status_code"], 200, "{answer}");
    assert_eq!(answer["delivery_status"], "succeeded", "{answer}");

    // The attempt in flight ends with a 500: logged and counted, and the delivery stays ended.
    let logs = relay.wait_logs_exactly("", 3).await;
    let attempt =
        logs.iter().find(|l| l["attempt"] == 2 && l["trigger"] == "retry").expect("attempt 2");
    assert_eq!(attempt["external_request_log"]["status_code"], 500, "{attempt}");
    let delivery_id = answer["delivery_id"].as_str().expect("delivery id");
    let d = delivery(&relay, delivery_id).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["automation_id"], automation["id"], "{d}");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["last_log_id"], answer["id"], "{d}");
    // Its next retry would have come 400 ms later; a delivery failing now (retry 200 ms
    // after its call) has its retry sent meanwhile.
    let ended = std::time::Instant::now();
    let control = relay.retrying_control("proc_control").await;
    relay.wait_control_retry(&control).await;
    tokio::time::sleep(Duration::from_millis(1200).saturating_sub(ended.elapsed())).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the delivery was sent again");
    assert_eq!(delivery(&relay, delivery_id).await["status"], "succeeded");
}
