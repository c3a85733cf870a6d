use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, logs_of, wait_delivery, wait_logs};

// 7. SSRF guard on: loopback forms are refused at send time (accepted at create).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_guard_refuses_loopback_in_every_spelling() {
    let receiver = Receiver::ok().await;
    let port = receiver.addr.port();
    let relay = Relay::start_with_env(
        &delivery_toml(&[("max_attempts", "1")]),
        &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")],
    );
    // Loopback only: if the guard were broken these would reach our own receiver (or fail
    // to connect), never a host off this machine.
    let urls = [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://localhost:{port}/a"),
        format!("http://[::1]:{port}/a"),
        format!("http://127.1:{port}/a"),
        format!("http://2130706433:{port}/a"),
        format!("http://0x7f000001:{port}/a"),
        format!("http://0.0.0.0:{port}/a"),
        format!("http://[::ffff:127.0.0.1]:{port}/a"),
    ];
    let mut automations = Vec::new();
    for url in &urls {
        automations.push(relay.create_automation("proc_ssrf", url).await);
    }
    let message = relay.send_message("proc_ssrf", json!({"ssrf": true})).await;
    assert_eq!(message["delivery_ids"].as_array().unwrap().len(), urls.len());
    for id in message["delivery_ids"].as_array().unwrap() {
        wait_delivery(&relay, id.as_str().unwrap(), "exhausted").await;
    }
    let logs = wait_logs(&relay, "", urls.len()).await;
    assert_eq!(logs.len(), urls.len());
    for log in &logs {
        let url = log["external_request_log"]["webhook_url"].as_str().unwrap_or("");
        assert_eq!(log["error_code"], "E_BLOCKED_TARGET", "{url}: {log}");
        assert_eq!(log["external_request_log"]["status_code"], 0, "{url}");
    }
    assert_eq!(receiver.count(), 0, "a refused target was called");

    // A rerun of a refused log is refused the same way.
    let original = logs[0]["id"].as_str().unwrap();
    let resp = relay
        .req(reqwest::Method::POST, &format!("/v1/processors/automations/logs/{original}/rerun"))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("rerun");
    assert!(resp.status().is_success(), "{}", resp.status());
    let rerun: Value = resp.json().await.expect("json");
    let error = rerun["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_BLOCKED_TARGET"), "{rerun}");
    assert_eq!(rerun["status_code"], 0);
    let rerun_log = relay
        .get_json(&format!("/v1/processors/automations/logs/{}", rerun["id"].as_str().unwrap()))
        .await;
    assert_eq!(rerun_log["trigger"], "rerun");
    assert_eq!(rerun_log["rerun_of"], original);
    assert_eq!(rerun_log["error_code"], "E_BLOCKED_TARGET");

    // So is the test call.
    let automation_id = automations[0]["id"].as_str().unwrap();
    let (status, test) = relay
        .post_json(&format!("/v1/processors/automations/tests/webhook/{automation_id}"), &json!({}))
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["error_code"], "E_BLOCKED_TARGET", "{test}");
    assert_eq!(receiver.count(), 0, "a rerun or test call reached a refused target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_cidrs_open_only_the_listed_network() {
    let receiver = Receiver::ok().await;
    let port = receiver.addr.port();
    let extra = format!(
        "{}\n[security]\nallowed_cidrs = [\"127.0.0.0/8\"]\n",
        delivery_toml(&[("max_attempts", "1")])
    );
    let relay = Relay::start_with_env(&extra, &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")]);
    relay.create_automation("proc_v4", &format!("http://127.0.0.1:{port}/ok")).await;
    relay.create_automation("proc_v6", &format!("http://[::1]:{port}/no")).await;
    let allowed = first_delivery(&relay.send_message("proc_v4", json!({"v": 4})).await);
    let refused = first_delivery(&relay.send_message("proc_v6", json!({"v": 6})).await);
    wait_delivery(&relay, &allowed, "succeeded").await;
    wait_delivery(&relay, &refused, "exhausted").await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(logs_of(&relay, &allowed).await[0]["external_request_log"]["status_code"], 200);
    assert_eq!(logs_of(&relay, &refused).await[0]["error_code"], "E_BLOCKED_TARGET");
}
