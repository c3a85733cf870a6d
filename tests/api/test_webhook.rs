use reqwest::Method;
use serde_json::Value;

use crate::common::{self, verify_signature, Receiver, Relay, KEY};
use crate::helpers::{assert_uiform_log, ids_of, send, LOGS};

// ---------------------------------------------------------------------------------------
// 9. Test webhook
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_webhook_sends_a_webhook_request_and_answers_its_log() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_test", &receiver.url("/t")).await;
    let aid = automation["id"].as_str().unwrap().to_string();
    let secret = automation["secret"].as_str().unwrap().to_string();

    let r = send(
        &relay,
        Method::POST,
        &format!("/v1/processors/automations/tests/webhook/{aid}"),
        &[("Api-Key", KEY.to_string())],
        Some(String::new()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let log = r.body;
    assert_uiform_log(&log);
    assert_eq!(log["object"], "automation_log");
    assert_eq!(log["trigger"], "test");
    assert_eq!(log["external_request_log"]["status_code"], 200);
    assert_eq!(log["automation_snapshot"]["webhook_url"], receiver.url("/t"));
    assert!(log["file_metadata"]["filename"].is_string(), "{log}");

    assert_eq!(receiver.count(), 1);
    let call = &receiver.calls()[0];
    assert!(verify_signature(&secret, &call.headers, &call.body));
    let sent: Value = serde_json::from_slice(&call.body).expect("JSON body");
    for k in ["completion", "user", "file_payload", "metadata"] {
        assert!(sent.get(k).is_some(), "WebhookRequest lacks {k}: {sent}");
    }
    assert_eq!(sent["completion"]["object"], "chat.completion");
    assert!(
        sent["file_payload"]["filename"].is_string() && sent["file_payload"]["url"].is_string()
    );
    assert_eq!(log["external_request_log"]["request_body"], sent);
    // The log carries the sample's own completion and user.
    assert_eq!(log["completion"]["id"], sent["completion"]["id"]);
    assert_eq!(log["user_email"], sent["user"]);
    assert_eq!(log["file_metadata"]["filename"], sent["file_payload"]["filename"]);

    let stored = relay.get_json(&format!("{LOGS}/{}", log["id"].as_str().unwrap())).await;
    assert_eq!(stored["trigger"], "test");
    assert_eq!(stored["id"], log["id"]);
    assert_uiform_log(&stored);
    let listed = relay.all_logs(&format!("&automation_id={aid}")).await;
    assert_eq!(ids_of(&listed), vec![log["id"].as_str().unwrap().to_string()]);
}
