//! A database damaged by an older build (bodies missing under existing logs) still lists and
//! shows every log and message; such a log cannot be rerun, and says why. A missing body
//! cannot be told from one content retention removed: both read as `expired`.

use reqwest::Method;
use serde_json::json;

use crate::common::{Receiver, Relay, FAST_RETRIES};

const LOGS: &str = "/v1/processors/automations/logs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_whose_bodies_are_missing_stay_listable_and_say_why_they_cannot_be_rerun() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    relay.create_automation("proc_damaged", &receiver.url("/d")).await;
    let message = relay.send_message("proc_damaged", json!({"n": 1})).await;
    let logs = relay
        .wait_for(std::time::Duration::from_secs(10), "the log", || async {
            let logs = relay.all_logs("").await;
            (logs.len() == 1).then_some(logs)
        })
        .await;
    let log_id = logs[0]["id"].as_str().expect("id").to_string();
    relay.kill9();

    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let deleted = db.execute("DELETE FROM bodies", []).expect("delete bodies");
    assert!(deleted >= 2, "the request body and the snapshot were stored: {deleted}");
    drop(db);

    relay.restart();
    let listed = relay.all_logs("").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["snapshot_state"], "expired", "{}", listed[0]);
    assert_eq!(listed[0]["automation_snapshot"]["webhook_url"], receiver.url("/d"));
    assert_eq!(listed[0]["external_request_log"]["request_body"], json!({}));
    assert_eq!(listed[0]["external_request_log"]["request_body_state"], "expired");
    relay.get_json(&format!("{LOGS}/{log_id}")).await;
    let resp =
        relay.req(Method::POST, &format!("{LOGS}/{log_id}/rerun")).send().await.expect("rerun");
    assert_eq!(resp.status(), 410);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or("").contains("request body"), "{body}");
    assert_eq!(body["code"], "missing_payload", "{body}");
    assert_eq!(receiver.count(), 1, "nothing was sent");

    let shown =
        relay.get_json(&format!("/v1/messages/{}", message["id"].as_str().expect("id"))).await;
    assert_eq!(shown["payload"], serde_json::Value::Null, "{shown}");
    assert_eq!(shown["payload_state"], "expired", "{shown}");
    assert_eq!(shown["deliveries"][0]["status"], "succeeded", "{shown}");
}
