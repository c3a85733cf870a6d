use serde_json::json;

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{header, WAIT};

// 8. Secret rotation: both secrets sign during the overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_signs_with_old_and_new() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_rotate", &receiver.url("/r")).await;
    let id = automation["id"].as_str().unwrap();
    let old = automation["secret"].as_str().unwrap().to_string();

    relay.send_message("proc_rotate", json!({"before": "rotation"})).await;
    relay.wait_for(WAIT, "first call", || async { (receiver.count() == 1).then_some(()) }).await;
    let first = &receiver.calls()[0];
    assert_eq!(header(first, "webhook-signature").matches("v1,").count(), 1);
    assert!(verify_signature(&old, &first.headers, &first.body));

    let (status, rotated) = relay
        .post_json(&format!("/v1/processors/automations/endpoints/{id}/secret/rotate"), &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_string();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");

    relay.send_message("proc_rotate", json!({"after": "rotation"})).await;
    relay.wait_for(WAIT, "second call", || async { (receiver.count() == 2).then_some(()) }).await;
    let second = &receiver.calls()[1];
    let signature = header(second, "webhook-signature");
    assert_eq!(signature.matches("v1,").count(), 2, "{signature}");
    assert!(verify_signature(&old, &second.headers, &second.body), "old secret");
    assert!(verify_signature(&new, &second.headers, &second.body), "new secret");
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!verify_signature(stranger, &second.headers, &second.body));
}
