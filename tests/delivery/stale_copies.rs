//! Deliveries waiting in memory behind a busy automation follow what the automation is by
//! the time of their call: moved to a new URL, they go there; disabled, they are not sent.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, SlowReceiver};

const QUEUED: usize = 20;
/// How long the receiver takes to answer each call.
const CALL_TAKES: Duration = Duration::from_secs(2);
/// The relay's call timeout: past `CALL_TAKES` with room for a loaded machine. At the harness's
/// 2 s (equal to `CALL_TAKES`, and started before the receiver's own clock) the calls in
/// flight timed out and were retried, so their deliveries got two logs each and the count of
/// logs passed `QUEUED`.
const CALL_TIMEOUT_MS: &str = "5000";

async fn put(relay: &Relay, id: &str, body: serde_json::Value) -> Instant {
    let path = format!("/v1/processors/automations/endpoints/{id}");
    let resp = relay.req(Method::PUT, &path).json(&body).send().await.expect("put");
    assert_eq!(resp.status(), 200);
    Instant::now()
}

/// Starts an automation calling a receiver that takes `CALL_TAKES` per call (and answers
/// each within the call timeout), two at a time, with `QUEUED` messages queued behind it;
/// returns the relay, the receiver and the automation id.
async fn busy_automation(processor: &str) -> (Relay, SlowReceiver, String) {
    let slow = SlowReceiver::start(CALL_TAKES).await;
    let relay = Relay::start(&delivery_toml(&[
        ("per_automation_concurrency", "2"),
        ("request_timeout_ms", CALL_TIMEOUT_MS),
    ]));
    let automation = relay.create_automation(processor, &slow.url()).await;
    let id = automation["id"].as_str().expect("id").to_string();
    for n in 0..QUEUED {
        relay.send_message(processor, json!({"n": n})).await;
    }
    relay
        .wait_for(Duration::from_secs(5), "calls in flight", || async {
            (slow.count() >= 2).then_some(())
        })
        .await;
    (relay, slow, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_in_memory_go_to_the_url_the_automation_has_at_their_call() {
    let (relay, slow, id) = busy_automation("proc_moved").await;
    let moved_to = Receiver::ok().await;
    let moved_at = put(&relay, &id, json!({"webhook_url": moved_to.url("/new")})).await;
    relay
        .wait_for(Duration::from_secs(15), "the queued deliveries at the new URL", || async {
            (slow.count() + moved_to.count() == QUEUED).then_some(())
        })
        .await;
    let late = slow.arrivals.lock().expect("lock").iter().filter(|t| **t > moved_at).count();
    assert_eq!(late, 0, "no call reached the old URL after the move");
    assert!(moved_to.count() >= QUEUED - 4, "{} at the new URL", moved_to.count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_in_memory_are_not_sent_once_their_automation_is_disabled() {
    let (relay, slow, id) = busy_automation("proc_disabled_queue").await;
    let disabled_at = put(&relay, &id, json!({"enabled": false})).await;
    // At least, then exactly: a delivery logged twice fails here, not as a timed-out wait.
    let logs = relay
        .wait_for(Duration::from_secs(15), "a log for every delivery", || async {
            let logs = relay.all_logs(&format!("&automation_id={id}")).await;
            (logs.len() >= QUEUED).then_some(logs)
        })
        .await;
    let codes: Vec<_> = logs.iter().map(|l| l["error_code"].clone()).collect();
    assert_eq!(logs.len(), QUEUED, "one log per delivery: {codes:?}");
    let late = slow.arrivals.lock().expect("lock").iter().filter(|t| **t > disabled_at).count();
    assert_eq!(late, 0, "no call started after the automation was disabled");
    let disabled = logs.iter().filter(|l| l["error_code"] == "E_AUTOMATION_DISABLED").count();
    assert_eq!(disabled + slow.count(), QUEUED, "the rest end E_AUTOMATION_DISABLED");
    for log in logs.iter().filter(|l| l["error_code"] == "E_AUTOMATION_DISABLED") {
        assert_eq!(log["automation_snapshot"]["id"], id.as_str(), "{log}");
    }
}
