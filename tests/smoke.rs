use hookrelay_testkit as common;

use common::{verify_signature, Receiver, Relay};
use std::time::Duration;

#[tokio::test]
async fn a_message_becomes_a_signed_logged_delivery() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_smoke", &receiver.url("/hook")).await;
    let secret = automation["secret"].as_str().expect("secret").to_string();
    relay.send_message("proc_smoke", serde_json::json!({"n": 1})).await;
    relay
        .wait_for(Duration::from_secs(5), "delivery", || async {
            (receiver.count() == 1).then_some(())
        })
        .await;
    let call = &receiver.calls()[0];
    assert!(verify_signature(&secret, &call.headers, &call.body));
    let logs = relay
        .wait_for(Duration::from_secs(5), "log", || async {
            let logs = relay.all_logs("").await;
            (logs.len() == 1).then_some(logs)
        })
        .await;
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200);
}
