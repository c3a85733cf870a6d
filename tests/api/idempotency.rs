use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;

use crate::common::{self, Receiver, Relay, KEY};
use crate::helpers::{assert_error, count_list, send};

// ---------------------------------------------------------------------------------------
// 7. Idempotency
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_answer() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_idem", &receiver.url("/i")).await;
    let body = json!({"processor_id": "proc_idem", "payload": {"charge": 1}}).to_string();
    let post = |key: &'static str, body: String| {
        let relay = &relay;
        async move {
            send(
                relay,
                Method::POST,
                "/v1/messages",
                &[("Api-Key", KEY.to_string()), ("Idempotency-Key", key.to_string())],
                Some(body),
            )
            .await
        }
    };

    let first = post("key-1", body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_ne!(
        first.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true"),
        "the first answer is not a replay"
    );
    let again = post("key-1", body.clone()).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(
        again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["delivery_ids"], first.body["delivery_ids"]);

    let other = json!({"processor_id": "proc_idem", "payload": {"charge": 2}}).to_string();
    let conflict = post("key-1", other).await;
    assert_error(&conflict, 409, "idempotency-key", "same key, different body");
    assert_eq!(conflict.body["code"], "idempotency_key_reused", "{}", conflict.text);

    // Concurrent requests with one new key: one message.
    let answers = futures_util::future::join_all((0..6).map(|_| post("key-2", body.clone()))).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 202, "{}", a.text);
            a.body["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "concurrent same-key requests made several messages");
    assert_ne!(ids.iter().next(), first.body["id"].as_str().map(str::to_string).as_ref());

    relay.wait_logs_exactly("", 2).await;
    assert_eq!(count_list(&relay, "/v1/deliveries?limit=100").await, 2);
    // Positive control: a message sent after the replays reaches the receiver, and by then
    // the receiver has had one call a message, none for a replay.
    let control = relay.send_message("proc_idem", json!({"control": true})).await;
    let control_id = control["id"].as_str().expect("message id").to_string();
    let calls = relay
        .wait_for(common::WAIT, "the control message", || async {
            let calls = receiver.calls();
            let arrived = calls.iter().any(|c| c.headers["webhook-id"] == control_id.as_str());
            arrived.then_some(calls)
        })
        .await;
    let ids: HashSet<&str> =
        calls.iter().map(|c| c.headers["webhook-id"].to_str().expect("webhook-id")).collect();
    assert_eq!((calls.len(), ids.len()), (3, 3), "a replay was delivered again: {calls:?}");
}
