use serde_json::json;

use crate::common::{self, Receiver, Relay};
use crate::helpers::{ENDPOINTS, LOGS, WAIT};

// ---------------------------------------------------------------------------------------
// Messages: targeting and the delivery views
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_fan_out_to_a_processor_or_target_one_automation() {
    let r1 = Receiver::ok().await;
    let r2 = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let a1 = relay.create_automation("proc_m", &r1.url("/1")).await;
    let a2 = relay.create_automation("proc_m", &r2.url("/2")).await;
    let (status, typed) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "typed", "processor_id": "proc_m", "webhook_url": r2.url("/typed"),
                    "event_types": ["invoice.paid"]}),
        )
        .await;
    assert_eq!(status, 201, "{typed}");
    assert_eq!(typed["event_types"], json!(["invoice.paid"]));

    // No event type: the two automations without an event-type filter.
    let m = relay.send_message("proc_m", json!({"to": "all"})).await;
    assert_eq!(m["object"], "message");
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    let mut targets: Vec<&str> = m["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["automation_id"].as_str().unwrap())
        .collect();
    targets.sort();
    let mut want = vec![a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(targets, want, "{m}");

    // The subscribed event type reaches all three.
    let (status, typed_msg) = relay
        .post_json(
            "/v1/messages",
            &json!({"processor_id": "proc_m", "event_type": "invoice.paid", "payload": {"to": "typed"}}),
        )
        .await;
    assert_eq!(status, 202, "{typed_msg}");
    assert_eq!(typed_msg["delivery_ids"].as_array().unwrap().len(), 3, "{typed_msg}");

    // One automation by id.
    let (status, one) = relay
        .post_json("/v1/messages", &json!({"automation_id": a1["id"], "payload": {"to": "one"}}))
        .await;
    assert_eq!(status, 202, "{one}");
    assert_eq!(
        one["deliveries"],
        json!([{"id": one["delivery_ids"][0], "automation_id": a1["id"]}])
    );

    // A processor nobody subscribed to: accepted, no delivery.
    let nobody = relay.send_message("proc_nobody", json!({"x": 1})).await;
    assert_eq!(nobody["delivery_ids"], json!([]));

    relay.wait_logs_exactly("", 6).await;
    assert_eq!(r1.count(), 3);
    assert_eq!(r2.count(), 3);
    let did = one["delivery_ids"][0].as_str().unwrap();
    let d = relay
        .wait_for(WAIT, "delivery succeeded", || async {
            let d = relay.get_json(&format!("/v1/deliveries/{did}")).await;
            (d["status"] == "succeeded").then_some(d)
        })
        .await;
    assert_eq!(d["object"], "delivery");
    assert_eq!(d["message_id"], one["id"]);
    assert_eq!(d["automation_id"], a1["id"]);
    assert_eq!(d["attempts"], 1);
    let last = d["last_log_id"].as_str().expect("last_log_id");
    let log = relay.get_json(&format!("{LOGS}/{last}")).await;
    assert_eq!(log["delivery_id"], did);
    assert_eq!(log["external_request_log"]["request_body"], json!({"to": "one"}));
    let by_msg = relay
        .get_json(&format!("/v1/deliveries?message_id={}&limit=100", m["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_msg["data"].as_array().unwrap().len(), 2);
    let by_auto = relay
        .get_json(&format!("/v1/deliveries?automation_id={}&limit=100", a2["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_auto["data"].as_array().unwrap().len(), 2);
    let ok = relay.get_json("/v1/deliveries?status=succeeded&limit=100").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 6);
}
