use serde_json::json;

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, gap_ms, header};

// 1. Fails N times, then succeeds: N+1 logs, schedule respected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_is_retried_on_schedule_until_it_succeeds() {
    const FAILURES: usize = 2;
    let receiver = Receiver::failing_first(FAILURES, 500).await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_retry", &receiver.url("/hook")).await;
    let secret = automation["secret"].as_str().expect("secret");
    let message = relay.send_message("proc_retry", json!({"n": 1})).await;
    let id = first_delivery(&message);

    let d = relay.wait_delivery_ends(&id, "succeeded").await;
    assert_eq!(d["attempts"], FAILURES + 1, "{d}");
    assert_eq!(d["message_id"], message["id"]);

    let calls = receiver.calls();
    assert_eq!(calls.len(), FAILURES + 1, "exactly N+1 calls");
    for call in &calls {
        assert_eq!(header(call, "webhook-id"), message["id"].as_str().unwrap(), "same id");
        assert!(verify_signature(secret, &call.headers, &call.body));
        assert_eq!(&call.body[..], br#"{"n":1}"#);
    }
    // Compressed schedule: 200 ms then 400 ms, each ±10 %; 20 ms tolerance below, and the
    // 50 ms poll interval plus generous slack above.
    let (g1, g2) = (gap_ms(&calls, 0), gap_ms(&calls, 1));
    assert!(g1 >= 160, "first retry too early: {g1} ms (schedule 200 ms ±10 %)");
    assert!(g2 >= 340, "second retry too early: {g2} ms (schedule 400 ms ±10 %)");
    assert!(g1 < 1_200, "first retry far too late: {g1} ms");
    assert!(g2 < 1_500, "second retry far too late: {g2} ms");
    assert!(g2 > g1, "backoff grows: {g1} ms then {g2} ms");

    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), FAILURES + 1, "exactly N+1 logs: {logs:#?}");
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log["attempt"], i + 1);
        assert_eq!(log["message_id"], message["id"]);
        let trigger = if i == 0 { "initial" } else { "retry" };
        assert_eq!(log["trigger"], trigger, "{log}");
        let status = &log["external_request_log"]["status_code"];
        if i < FAILURES {
            assert_eq!(*status, 500);
            assert_eq!(log["error_code"], "E_HTTP_STATUS");
        } else {
            assert_eq!(*status, 200);
            assert!(log["error_code"].is_null(), "{log}");
        }
    }
    assert_eq!(d["last_log_id"], logs[FAILURES]["id"]);
}

// 2. Exhaustion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_receiver_exhausts_after_max_attempts() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let ok = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES); // max_attempts = 4
    let bad = relay.create_automation("proc_exhaust", &failing.url("/fail")).await;
    relay.create_automation("proc_fine", &ok.url("/ok")).await;
    let message = relay.send_message("proc_exhaust", json!({"will": "fail"})).await;
    let id = first_delivery(&message);
    relay.send_message("proc_fine", json!({"will": "work"})).await;

    let d = relay.wait_delivery_ends(&id, "exhausted").await;
    assert_eq!(d["attempts"], 4, "{d}");
    assert_eq!(failing.count(), 4, "max_attempts = 4 calls, no more");

    let exhausted = relay.get_json("/v1/deliveries?status=exhausted").await;
    let listed: Vec<&str> =
        exhausted["data"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(listed, vec![id.as_str()], "{exhausted}");
    let pending = relay.get_json("/v1/deliveries?status=pending").await;
    assert!(
        !pending["data"].as_array().unwrap().iter().any(|d| d["id"] == id.as_str()),
        "{pending}"
    );

    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 4, "{logs:#?}");
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log["attempt"], i + 1);
        assert_eq!(log["error_code"], "E_HTTP_STATUS");
        assert_eq!(log["external_request_log"]["status_code"], 500);
        assert_eq!(log["automation_id"], bad["id"]);
        let error = log["external_request_log"]["error"].as_str().unwrap_or("");
        assert!(error.starts_with("E_HTTP_STATUS"), "{error}");
    }

    // The 2xx log of the other processor exists, and the class filter separates them.
    relay.wait_logs_exactly("&status_class=2xx", 1).await;
    let five = relay.all_logs("&status_class=5xx").await;
    assert_eq!(five.len(), 4, "{five:#?}");
    assert!(five.iter().all(|l| l["external_request_log"]["status_code"] == 500));
    let two = relay.all_logs("&status_class=2xx").await;
    assert_eq!(two.len(), 1, "{two:#?}");
    assert_eq!(two[0]["external_request_log"]["status_code"], 200);
    assert!(relay.all_logs("&status_class=4xx").await.is_empty());
    let by_code = relay.all_logs("&status_code=500").await;
    assert_eq!(by_code.len(), 4);
}

// The maximum age bounds retries even when attempts remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_ends_retries_before_max_attempts() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    // Retries at ~0.2 s and ~0.6 s; the next (~1.4 s) would be past the 1 s age.
    let relay = Relay::start(&delivery_toml(&[("max_age_secs", "1"), ("max_attempts", "8")]));
    relay.create_automation("proc_age", &failing.url("/old")).await;
    let id = first_delivery(&relay.send_message("proc_age", json!({"age": 1})).await);
    let d = relay.wait_delivery_ends(&id, "exhausted").await;
    let attempts = d["attempts"].as_u64().unwrap();
    assert!((2..=3).contains(&attempts), "max age 1 s allows 2-3 attempts, got {attempts}");
    assert_eq!(failing.count() as u64, attempts);
    assert_eq!(relay.logs_of(&id).await.len() as u64, attempts);
}
