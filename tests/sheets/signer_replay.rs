//! A signer-linked spreadsheet verifies only the key derived for it from the automation's
//! secrets, which the relay uses for its calls to that sink alone. A call the automation
//! sent anywhere else (signed with its plain secret) cannot be replayed into the sheet once
//! the automation points back at the sink, nor can a rerun of that call, which the relay
//! signs afresh and sends to the other receiver again.

use reqwest::Method;
use serde_json::json;

use crate::common::{Received, Receiver, Relay};
use crate::helpers::{
    assert_error, create_automation, new_sheet, post_raw, rows, send, sink_path, wait_rows,
    ENDPOINTS, LOGS, SHEETS,
};

async fn move_automation(relay: &Relay, automation_id: &str, url: &str) {
    let path = format!("{ENDPOINTS}/{automation_id}");
    let r = send(relay.req(Method::PUT, &path).json(&json!({"webhook_url": url}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The `n`th call (0-based) the receiver got, once it has.
async fn nth_call(relay: &Relay, receiver: &Receiver, n: usize) -> Received {
    relay
        .wait_for(std::time::Duration::from_secs(10), "a call at the receiver", || async {
            receiver.calls().into_iter().nth(n)
        })
        .await
}

/// Posts `call`'s signature headers and body, unchanged, to the sink at `path`.
async fn replay(relay: &Relay, path: &str, call: &Received) -> crate::helpers::Resp {
    let headers: Vec<(&str, String)> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|h| (*h, call.headers[*h].to_str().expect("header").to_string()))
        .collect();
    post_raw(&crate::common::client(), relay, path, &headers, call.body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_the_signer_sent_elsewhere_and_their_reruns_do_not_open_the_sheet() {
    let relay = Relay::start("");
    let attacker = Receiver::ok().await;
    let sheet = new_sheet(&relay, "Replayed", None).await;
    let path = sink_path(&sheet, 0, None);
    let automation = create_automation(
        &relay,
        json!({"name": "to sheet", "processor_id": "replay", "webhook_url": relay.url(&path)}),
    )
    .await;
    let aid = automation["id"].as_str().expect("id").to_string();
    let r = send(
        relay
            .req(Method::PUT, &format!("{SHEETS}/{sheet}/signer"))
            .json(&json!({"automation_id": aid})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Moved to the attacker's receiver, it sends a signed call there; moved back.
    move_automation(&relay, &aid, &attacker.url("/hook")).await;
    relay.send_message("replay", json!({"a": "captured"})).await;
    let captured = nth_call(&relay, &attacker, 0).await;
    let logs = relay.wait_logs_exactly(&format!("&automation_id={aid}"), 1).await;
    move_automation(&relay, &aid, &relay.url(&path)).await;

    // The capture, replayed within its 5 minutes, is refused.
    assert_error(&replay(&relay, &path, &captured).await, 401, "unauthorized", None);

    // A rerun of that log (to its original target) is signed afresh and sent to the
    // attacker again; replayed to the sink, it is refused too.
    let log_id = logs[0]["id"].as_str().expect("log id");
    let (status, rerun) = relay.post_json(&format!("{LOGS}/{log_id}/rerun"), &json!({})).await;
    assert_eq!(status, 200, "{rerun}");
    let resent = nth_call(&relay, &attacker, 1).await;
    assert_error(&replay(&relay, &path, &resent).await, 401, "unauthorized", None);

    // The automation's own deliveries to the sink still append.
    relay.send_message("replay", json!({"a": "delivered"})).await;
    let got = wait_rows(&relay, &sheet, 2).await;
    assert_eq!(got, vec![vec!["a".to_string()], vec!["delivered".to_string()]]);
    assert_eq!(rows(&relay, &sheet, "Sheet1").await.len(), 2, "nothing replayed was appended");
}
