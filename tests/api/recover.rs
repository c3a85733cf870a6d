use std::collections::HashSet;
use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{verify_signature, Relay};
use crate::helpers::{
    assert_error, assert_uiform_log, header, retries, rfc3339_ago, send_ok, switchable_receiver,
    LOGS, WAIT,
};

// ---------------------------------------------------------------------------------------
// 8. Recover
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_requeues_exhausted_deliveries_with_progress() {
    let since = rfc3339_ago(2);
    let (receiver, failing) = switchable_receiver().await;
    let relay = Relay::start(&retries(1));
    let automation = relay.create_automation("proc_rec", &receiver.url("/r")).await;
    let secret = automation["secret"].as_str().unwrap().to_string();
    const N: usize = 20;
    for i in 0..N {
        relay.send_message("proc_rec", json!({"i": i})).await;
    }
    relay
        .wait_for(WAIT, "exhausted deliveries", || async {
            let page = relay.get_json("/v1/deliveries?status=exhausted&limit=100").await;
            (page["data"].as_array().unwrap().len() == N).then_some(())
        })
        .await;
    assert_eq!(receiver.count(), N);
    failing.store(false, Ordering::SeqCst);

    // Bad windows first: nothing is re-queued.
    for (body, hint) in [
        (json!({"since": "last tuesday"}), "since"),
        (json!({"since": 12.5}), "since"),
        (json!({"until": rfc3339_ago(0)}), "since"),
    ] {
        let r =
            send_ok(&relay, Method::POST, &format!("{LOGS}/recover"), Some(body.to_string())).await;
        assert_error(&r, 400, hint, &format!("recover {body}"));
    }
    // A refused window stores no job (a job is stored before its 202), so nothing can have
    // been re-sent. The positive control is the job below: it re-sends, and the receiver
    // ends with exactly 2 × N calls.
    assert_eq!(receiver.count(), N);

    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    let jid = job["id"].as_str().unwrap().to_string();
    assert!(jid.starts_with("rcv_"), "{jid}");
    assert_eq!(job["total"], N);
    let done = relay
        .wait_for(WAIT, "recover job completed", || async {
            let j = relay.get_json(&format!("{LOGS}/recover/{jid}")).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!(done["total"], N, "{done}");
    assert_eq!(done["done"], N, "{done}");
    assert_eq!(done["failed"], 0, "{done}");

    let logs = relay.wait_logs_exactly("", 2 * N).await;
    let recovered: Vec<&Value> = logs.iter().filter(|l| l["trigger"] == "recover").collect();
    assert_eq!(recovered.len(), N);
    for l in &recovered {
        assert_uiform_log(l);
        assert_eq!(l["external_request_log"]["status_code"], 200);
    }
    assert_eq!(logs.iter().filter(|l| l["trigger"] == "initial").count(), N);
    let succeeded = relay.get_json("/v1/deliveries?status=succeeded&limit=100").await;
    assert_eq!(succeeded["data"].as_array().unwrap().len(), N);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2 * N);
    assert!(calls[N..].iter().all(|c| verify_signature(&secret, &c.headers, &c.body)));
    let first_ids: HashSet<&str> =
        calls[..N].iter().map(|c| header(&c.headers, "webhook-id")).collect();
    let again_ids: HashSet<&str> =
        calls[N..].iter().map(|c| header(&c.headers, "webhook-id")).collect();
    assert_eq!(first_ids, again_ids, "recover changed webhook-ids");

    // A second job over the same window finds nothing left to do.
    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 0, "{job}");
}
