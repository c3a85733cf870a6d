//! No run stays `running`: the app's run timeout fails a run, and runs interrupted by a
//! crash are failed at the next start; both still send their completion webhook.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{verify_signature, Receiver, Relay};
use crate::helpers::{automation_with, slow_app, wait_calls, App, WAIT};
use crate::servers::SlowServer;

const KEY: &str = "app-slow-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_fails_and_is_still_webhooked() {
    let slow = SlowServer::start(Duration::from_secs(4)).await;
    let relay = Relay::start(&slow_app("slow", KEY, &slow.url("/slow"), Some(1)));
    let receiver = Receiver::ok().await;
    let automation = relay.create_automation("slow", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);

    let t = Instant::now();
    let body = api.blocking(json!({"note": "t"}), "u-timeout").await;
    let took = t.elapsed();
    let data = &body["data"];
    assert_eq!(data["status"], "failed", "{body}");
    let error = data["error"].as_str().expect("an error");
    assert!(error.contains("timed out") && error.contains('1'), "mentions the timeout: {error}");
    assert_eq!(data["outputs"], Value::Null);
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(3500), "{took:?}");
    let run_id = body["workflow_run_id"].as_str().expect("id");
    let detail = api.detail(run_id).await;
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["error"], error);

    let calls = wait_calls(&relay, &receiver, 1).await;
    let (call, webhook) = &calls[0];
    assert!(verify_signature(
        automation["secret"].as_str().expect("secret"),
        &call.headers,
        &call.body
    ));
    assert_eq!(webhook["metadata"]["workflow_run_id"], run_id);
    assert_eq!(webhook["metadata"]["status"], "failed");
    assert_eq!(webhook["metadata"]["error"], error);
    assert_eq!(webhook["completion"]["extraction_id"], run_id);

    let hit = slow.hits()[0];
    assert!(!hit.answered && hit.hung_up_after.is_some(), "the slow call was abandoned: {hit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_crash_is_failed_at_restart_with_its_webhook() {
    let slow = SlowServer::start(Duration::from_secs(30)).await;
    let mut relay = Relay::start(&slow_app("slow", KEY, &slow.url("/slow"), None));
    let failed_only = Receiver::ok().await;
    let automation = automation_with(
        &relay,
        "slow",
        &failed_only.url("/failed"),
        json!({"event_types": ["workflow_run.failed"]}),
    )
    .await;
    let (status, body) = App::new(&relay, KEY)
        .run(&json!({"inputs": {"note": "crash"}, "user": "carl@example.com", "response_mode": "async"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["workflow_run_id"].as_str().expect("id").to_string();
    let task_id = body["task_id"].as_str().expect("task").to_string();
    relay
        .wait_for(WAIT, "the slow call", || async { (!slow.hits().is_empty()).then_some(()) })
        .await;
    assert_eq!(App::new(&relay, KEY).detail(&run_id).await["status"], "running");

    relay.kill9();
    relay.restart();
    let api = App::new(&relay, KEY);
    let detail = api.wait_finished(&run_id).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert!(detail["error"].as_str().is_some_and(|e| !e.is_empty()), "{detail}");
    assert!(detail["finished_at"].is_i64());
    assert_eq!(api.logs("?status=running").await["total"], 0, "no run stays running");

    let calls = wait_calls(&relay, &failed_only, 1).await;
    let (call, webhook) = &calls[0];
    assert!(verify_signature(
        automation["secret"].as_str().expect("secret"),
        &call.headers,
        &call.body
    ));
    let meta = &webhook["metadata"];
    assert_eq!(meta["workflow_run_id"], run_id.as_str());
    assert_eq!(meta["task_id"], task_id.as_str());
    assert_eq!(meta["workflow_id"], "slow");
    assert_eq!(meta["status"], "failed");
    assert_eq!(meta["error"], detail["error"]);
    assert_eq!(meta["user"], "carl@example.com");
    assert_eq!(webhook["user"], "carl@example.com");
    assert_eq!(webhook["completion"]["extraction_id"], run_id.as_str());

    // The log of that delivery names the app as the processor.
    let logs =
        relay.all_logs(&format!("&automation_id={}", automation["id"].as_str().expect("id"))).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["automation_snapshot"]["processor_id"], "slow");
    assert_eq!(logs[0]["completion"]["extraction_id"], run_id.as_str());
    // The restart fails the run, and stores its message, before it listens: a second
    // webhook would already be a delivery.
    let deliveries = relay.deliveries_of(automation["id"].as_str().expect("id")).await;
    assert_eq!(deliveries.len(), 1, "one webhook for the interrupted run: {deliveries:?}");
    assert_eq!(failed_only.count(), 1, "one webhook for the interrupted run");
}
