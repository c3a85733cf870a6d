//! A rerun or test call whose client goes away mid-call still leaves its log: the call the
//! receiver saw is recorded whatever the client does.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::LOGS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_and_test_calls_abandoned_by_their_client_are_still_logged() {
    let (url, calls) = common::slow::slow_receiver(Duration::from_millis(1500)).await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_abandon", &url).await;
    let id = automation["id"].as_str().expect("id").to_string();
    relay.send_message("proc_abandon", json!({"n": 1})).await;
    let original = relay.wait_logs_exactly("", 1).await[0]["id"].as_str().expect("id").to_string();

    let impatient =
        reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    for path in [
        format!("{LOGS}/{original}/rerun"),
        format!("/v1/processors/automations/tests/webhook/{id}"),
    ] {
        let sent = impatient.post(relay.url(&path)).header("Api-Key", KEY).send().await;
        assert!(sent.is_err(), "the client gave up before the answer: {path}");
    }
    let logs = relay.wait_logs_exactly("", 3).await;
    let triggers: Vec<&str> = logs.iter().filter_map(|l| l["trigger"].as_str()).collect();
    assert_eq!(triggers, ["initial", "rerun", "test"], "{logs:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "every logged call reached the receiver");
}
