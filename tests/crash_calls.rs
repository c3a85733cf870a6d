//! Crash test for calls made outside the dispatcher: a rerun and a test call in flight at
//! `kill -9` reached the receiver, so each must be logged `E_INTERRUPTED` after the restart;
//! one that completed leaves nothing behind to be logged again.

use hookrelay_testkit as common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::slow::slow_receiver;
use common::{Receiver, Relay, KEY};
use reqwest::Method;
use serde_json::{json, Value};

/// How long the slow receiver holds each call: far past the kill.
const HOLD: Duration = Duration::from_secs(3);

/// Starts `POST path` with `body` in a task of its own (its answer never comes: the relay dies).
fn post_in_background(relay: &Relay, path: &str, body: Value) -> tokio::task::JoinHandle<()> {
    let request = relay.req(Method::POST, path).header("Api-Key", KEY).json(&body);
    tokio::spawn(async move {
        let _ = request.send().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_logs_reruns_and_test_calls_in_flight_as_interrupted() {
    let fast = Receiver::ok().await;
    let (slow_url, slow_calls) = slow_receiver(HOLD).await;
    let mut relay = Relay::start("");
    let automation = relay.create_automation("proc_calls", &fast.url("/fast")).await;
    let id = automation["id"].as_str().expect("id").to_string();
    relay.send_message("proc_calls", json!({"n": 1})).await;
    let original = relay
        .wait_for(Duration::from_secs(10), "the delivery's log", || async {
            relay.all_logs("&status_code=200").await.pop()
        })
        .await;
    let log_id = original["id"].as_str().expect("log id").to_string();

    // A rerun and a test call that complete: their rows are gone with their logs.
    let rerun_path = format!("/v1/processors/automations/logs/{log_id}/rerun");
    let test_path = format!("/v1/processors/automations/tests/webhook/{id}");
    let (status, _) = relay.post_json(&rerun_path, &json!({"target": "current"})).await;
    assert_eq!(status, 200, "completed rerun");
    let (status, _) = relay.post_json(&test_path, &json!({})).await;
    assert_eq!(status, 200, "completed test call");

    let moved = relay
        .req(Method::PUT, &format!("/v1/processors/automations/endpoints/{id}"))
        .header("Api-Key", KEY)
        .json(&json!({"webhook_url": slow_url}))
        .send()
        .await
        .expect("put");
    assert_eq!(moved.status().as_u16(), 200);
    let rerun = post_in_background(&relay, &rerun_path, json!({"target": "current"}));
    let test = post_in_background(&relay, &test_path, json!({}));
    relay
        .wait_for(Duration::from_secs(10), "both calls at the slow receiver", || async {
            (slow_calls.load(Ordering::SeqCst) == 2).then_some(())
        })
        .await;
    tokio::task::block_in_place(|| relay.kill9());
    let _ = tokio::join!(rerun, test);
    tokio::task::block_in_place(|| relay.restart());

    // Calls in flight are logged at start, before the relay listens: these are all there are.
    let logs = relay.all_logs("").await;
    let interrupted: Vec<Value> =
        logs.iter().filter(|l| l["error_code"] == "E_INTERRUPTED").cloned().collect();
    let triggers = common::count_by(&interrupted, "trigger");
    assert_eq!(triggers.get("rerun"), Some(&1), "interrupted logs: {interrupted:?}");
    assert_eq!(triggers.get("test"), Some(&1), "interrupted logs: {interrupted:?}");
    assert_eq!(interrupted.len(), 2, "only the two calls in flight: {interrupted:?}");
    for log in &interrupted {
        let call = &log["external_request_log"];
        assert_eq!(call["webhook_url"], slow_url.as_str(), "{log}");
        assert_eq!(call["status_code"], 0, "{log}");
    }
    let rerun_log = interrupted.iter().find(|l| l["trigger"] == "rerun").expect("rerun");
    assert_eq!(rerun_log["rerun_of"], log_id.as_str());
    // It names the delivery it repeated, as a completed rerun's log does; a test call has none.
    let delivery_id = original["delivery_id"].as_str().expect("the delivery's log names it");
    assert_eq!(rerun_log["delivery_id"], delivery_id, "{rerun_log}");
    let test_log = interrupted.iter().find(|l| l["trigger"] == "test").expect("test");
    assert_eq!(test_log["delivery_id"], Value::Null, "{test_log}");
    // The delivery, the completed rerun and test call, and the two interrupted calls.
    assert_eq!(logs.len(), 5, "no other log: {logs:?}");

    // Nothing is left to log again at the next start.
    tokio::task::block_in_place(|| relay.restart());
    assert_eq!(relay.all_logs("").await.len(), 5, "a second restart logs nothing more");
}
