//! A rerun sends what was sent then: the log's URL with the custom headers of that call,
//! never the automation's current headers (they may hold a credential for another receiver).

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay};
use crate::helpers::{header, ENDPOINTS, LOGS};

async fn rerun(relay: &Relay, log_id: &str) -> (u16, Value) {
    relay.post_json(&format!("{LOGS}/{log_id}/rerun"), &json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_the_automation_moved_sends_the_old_receiver_only_its_old_headers() {
    let (old, new) = (Receiver::ok().await, Receiver::ok().await);
    let relay = Relay::start(common::FAST_RETRIES);
    let (status, automation) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "moving", "processor_id": "proc_move", "webhook_url": old.url("/old"),
                    "webhook_headers": {"Authorization": "Bearer old-token", "X-Tenant": "t-old"}}),
        )
        .await;
    assert_eq!(status, 201, "{automation}");
    let id = automation["id"].as_str().expect("id").to_string();
    relay.send_message("proc_move", json!({"n": 1})).await;
    let first = relay.wait_logs_exactly("", 1).await[0]["id"].as_str().expect("id").to_string();

    let resp = relay
        .req(Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"webhook_url": new.url("/new"),
                      "webhook_headers": {"Authorization": "Bearer new-token", "X-Tenant": "t-new"}}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);

    let (status, answer) = rerun(&relay, &first).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["webhook_url"], old.url("/old"));
    let calls = old.calls();
    assert_eq!(calls.len(), 2, "the original call and its rerun");
    assert_eq!(header(&calls[1].headers, "authorization"), "Bearer old-token");
    assert_eq!(header(&calls[1].headers, "x-tenant"), "t-old");
    assert_eq!(new.count(), 0, "nothing went to the new receiver");

    // The rerun's log shows the configuration it was sent with, and a rerun of it sends the same.
    let rerun_id = answer["id"].as_str().expect("id").to_string();
    let rerun_log = relay.get_json(&format!("{LOGS}/{rerun_id}")).await;
    assert_eq!(rerun_log["automation_snapshot"]["webhook_url"], old.url("/old"), "{rerun_log}");
    assert_eq!(rerun_log["automation_snapshot"]["webhook_headers"]["X-Tenant"], "t-old");
    assert_eq!(rerun_log["automation_snapshot"]["webhook_headers"]["Authorization"], "[REDACTED]");
    let (status, again) = rerun(&relay, &rerun_id).await;
    assert_eq!(status, 200, "{again}");
    let calls = old.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(header(&calls[2].headers, "authorization"), "Bearer old-token");
    assert_eq!(new.count(), 0);

    // A new message goes to the new receiver with the new headers.
    relay.send_message("proc_move", json!({"n": 2})).await;
    relay
        .wait_for(std::time::Duration::from_secs(10), "the new receiver", || async {
            (new.count() == 1).then_some(())
        })
        .await;
    assert_eq!(header(&new.calls()[0].headers, "authorization"), "Bearer new-token");

    // The headers kept for reruns go with the automation.
    let stored = |token: &str| -> i64 {
        let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("db");
        db.query_row(
            "SELECT count(*) FROM snapshot_headers WHERE headers LIKE ?1",
            [format!("%{token}%")],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert!(stored("old-token") > 0 && stored("new-token") > 0, "kept while it exists");
    let resp =
        relay.req(Method::DELETE, &format!("{ENDPOINTS}/{id}")).send().await.expect("delete");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!((stored("old-token"), stored("new-token")), (0, 0), "deleted with it");
}
