//! A log's `created_at` is when its call was recorded (after the call ended): the time its
//! id carries, so the lists' order and the `created_after`/`created_before` filters agree
//! with what every log shows. The call's start stays in `external_request_log.request_at`.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};

use crate::common::{slow::slow_receiver, Receiver, Relay};
use crate::helpers::{ids_of, LOGS};

/// Unix ms of an RFC 3339 field of `log`.
fn ms(log: &Value, field: &str) -> i64 {
    let text = log.pointer(field).and_then(Value::as_str).expect(field);
    DateTime::parse_from_rfc3339(text).expect("rfc3339").timestamp_millis()
}

/// Unix ms as a query value.
fn at(ms: i64) -> String {
    let t = DateTime::from_timestamp_millis(ms).expect("time");
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn ids_with(relay: &Relay, query: &str) -> Vec<String> {
    ids_of(&relay.all_logs(query).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_at_is_when_the_call_was_recorded_and_filters_and_order_agree() {
    let (slow_url, _) = slow_receiver(Duration::from_millis(1000)).await;
    let fast = Receiver::ok().await;
    let relay = Relay::start("");
    relay.create_automation("proc_slow", &slow_url).await;
    relay.create_automation("proc_fast", &fast.url("/fast")).await;
    relay.send_message("proc_slow", json!({"n": 1})).await;
    // Starts after the slow call but ends (and is recorded) before it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.send_message("proc_fast", json!({"n": 2})).await;
    let logs = relay.wait_logs_exactly("", 2).await;

    let created: Vec<i64> = logs.iter().map(|l| ms(l, "/created_at")).collect();
    assert!(created[0] <= created[1], "oldest first, yet created_at goes back: {created:?}");
    for log in &logs {
        let (id, created_at) = (log["id"].as_str().expect("id"), ms(log, "/created_at"));
        let ended = ms(log, "/external_request_log/response_at");
        assert!(created_at >= ended, "{id} shown created before its call ended: {log}");
        let before = ids_with(&relay, &format!("&created_before={}", at(created_at + 1))).await;
        assert!(before.iter().any(|i| i == id), "{id} not created before {}", at(created_at + 1));
        let after = ids_with(&relay, &format!("&created_after={}", at(created_at))).await;
        assert!(after.iter().any(|i| i == id), "{id} not created at or after {}", at(created_at));
        let later = ids_with(&relay, &format!("&created_after={}", at(created_at + 1))).await;
        assert!(!later.iter().any(|i| i == id), "{id} created after {}", at(created_at + 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_log_names_the_delivery_it_repeated() {
    let receiver = Receiver::failing_first(1, 500).await;
    let relay = Relay::start(&crate::helpers::retries(1));
    relay.create_automation("proc_rerun_dlv", &receiver.url("/r")).await;
    relay.send_message("proc_rerun_dlv", json!({"n": 1})).await;
    let first = relay.wait_logs_exactly("", 1).await.remove(0);
    let delivery_id = first["delivery_id"].as_str().expect("a first attempt has its delivery");
    let rerun = format!("{LOGS}/{}/rerun", first["id"].as_str().expect("id"));
    let (status, answer) = relay.post_json(&rerun, &json!({})).await;
    assert_eq!(status, 200, "{answer}");

    let delivery = relay.get_json(&format!("/v1/deliveries/{delivery_id}")).await;
    assert_eq!(delivery["last_log_id"], answer["id"], "{delivery}");
    let last = relay.get_json(&format!("{LOGS}/{}", answer["id"].as_str().expect("id"))).await;
    assert_eq!(last["trigger"], "rerun", "{last}");
    assert_eq!(last["delivery_id"], delivery_id, "the rerun log leads back: {last}");
    assert_eq!(answer["delivery_id"], delivery_id, "{answer}");
}
