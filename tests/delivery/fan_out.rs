use serde_json::Value;

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::header;

// 10. Fan-out: one message, one delivery per automation, same id and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_fans_out_byte_identical() {
    let (r1, r2) = (Receiver::ok().await, Receiver::ok().await);
    let relay = Relay::start(common::FAST_RETRIES);
    let a1 = relay.create_automation("proc_fan", &r1.url("/one")).await;
    let a2 = relay.create_automation("proc_fan", &r2.url("/two")).await;
    // Unusual spacing, key order, number spelling and escapes: must arrive exactly as sent.
    let payload = r#"{ "z" : 1,"a":[1.50, 2e3, "caf\u00e9 é"],  "n":{"x":null} }"#;
    let body = format!(r#"{{"processor_id":"proc_fan","payload":{payload}}}"#);
    let resp = relay
        .req(reqwest::Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 202);
    let message: Value = resp.json().await.unwrap();
    let ids = message["delivery_ids"].as_array().expect("delivery_ids");
    assert_eq!(ids.len(), 2, "{message}");
    assert_ne!(ids[0], ids[1]);
    let mut targets: Vec<&str> = message["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["automation_id"].as_str())
        .collect();
    targets.sort_unstable();
    let mut expected = vec![a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(targets, expected);

    for id in ids {
        relay.wait_delivery_ends(id.as_str().unwrap(), "succeeded").await;
    }
    let message_id = message["id"].as_str().unwrap();
    for (receiver, automation) in [(&r1, &a1), (&r2, &a2)] {
        let calls = receiver.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(header(&calls[0], "webhook-id"), message_id);
        assert_eq!(&calls[0].body[..], payload.as_bytes(), "body re-encoded");
        assert!(verify_signature(
            automation["secret"].as_str().unwrap(),
            &calls[0].headers,
            &calls[0].body
        ));
    }
    assert_eq!(
        relay.all_logs(&format!("&automation_id={}", a1["id"].as_str().unwrap())).await.len(),
        1
    );
    assert_eq!(
        relay.all_logs(&format!("&automation_id={}", a2["id"].as_str().unwrap())).await.len(),
        1
    );
}
