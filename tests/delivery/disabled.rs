use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, WAIT};

// 9. Disabling an automation ends its pending deliveries with a log row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_automation_fails_pending_delivery_and_gets_no_new_ones() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    // A 1.5 s first retry leaves ample time to disable the automation in between.
    let relay = Relay::start(&delivery_toml(&[("initial_backoff_ms", "1500")]));
    let automation = relay.create_automation("proc_disable", &failing.url("/f")).await;
    let automation_id = automation["id"].as_str().unwrap();
    let id = first_delivery(&relay.send_message("proc_disable", json!({"d": 1})).await);
    relay
        .wait_for(WAIT, "first attempt", || async {
            let d = relay.delivery(&id).await;
            (d["attempts"] == 1).then_some(())
        })
        .await;

    let resp = relay
        .req(reqwest::Method::PUT, &format!("/v1/processors/automations/endpoints/{automation_id}"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["webhook_url"], failing.url("/f"), "other fields kept");

    let d = relay.wait_delivery_ends(&id, "failed").await;
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(failing.count(), 1, "nothing is sent to a disabled automation");
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["error_code"], "E_HTTP_STATUS");
    assert_eq!(logs[1]["error_code"], "E_AUTOMATION_DISABLED", "{}", logs[1]);
    assert_eq!(logs[1]["trigger"], "retry");
    assert_eq!(logs[1]["external_request_log"]["status_code"], 0);

    let message = relay.send_message("proc_disable", json!({"d": 2})).await;
    assert_eq!(message["delivery_ids"], json!([]), "{message}");
    assert_eq!(failing.count(), 1);
}
