//! Issue 13, bulk retry: a running recover job can be cancelled. It re-queues no further
//! chunk (those it re-queued are still sent), shows `cancelled`, stays so across a restart
//! (it is not resumed), and cancelling a job that has ended is a 409 `job_ended`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{assert_error, retries, send_ok, WAIT};

const RECOVER: &str = "/v1/processors/automations/logs/recover";
const AUTOMATIONS: usize = 4;
const MESSAGES: usize = 50;

/// Chunks of one delivery, so a job over 200 deliveries takes 200 writes: a cancel sent
/// right after its 202 finds it running.
fn config() -> String {
    format!("{}recover_chunk_size = 1\n", retries(1))
}

async fn job(relay: &Relay, id: &str) -> Value {
    relay.get_json(&format!("{RECOVER}/{id}")).await
}

/// Waits until the job's re-queued deliveries have all been attempted again.
async fn settled(relay: &Relay, id: &str) -> Value {
    relay
        .wait_for(WAIT, "re-queued deliveries attempted", || async {
            let j = job(relay, id).await;
            (j["pending"] == 0).then_some(j)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_recover_job_stops_requeuing_and_stays_cancelled_after_a_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone = format!("http://{}/gone", listener.local_addr().expect("addr"));
    drop(listener);
    let mut relay = Relay::start(&config());
    for _ in 0..AUTOMATIONS {
        relay.create_automation("proc_cancel", &gone).await;
    }
    for n in 0..MESSAGES {
        relay.send_message("proc_cancel", json!({"n": n})).await;
    }
    let all = AUTOMATIONS * MESSAGES;
    relay
        .wait_for(WAIT, "every delivery exhausted", || async {
            let d = relay.list_all("/v1/deliveries?status=exhausted").await;
            (d.len() == all).then_some(())
        })
        .await;

    let (status, created) = relay.post_json(RECOVER, &json!({"since": "1h"})).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["total"], all, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let (status, cancelled) = relay.post_json(&format!("{RECOVER}/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["cancelled_at"].is_string(), "{cancelled}");

    let after = settled(&relay, &id).await;
    let requeued = after["requeued"].as_u64().expect("requeued");
    assert!(requeued < all as u64, "the cancel stopped nothing: {after}");
    assert_eq!(after["status"], "cancelled", "{after}");
    assert_eq!(relay.all_logs("trigger=recover").await.len() as u64, requeued);

    // Cancelling again: it has ended.
    let url = format!("{RECOVER}/{id}/cancel");
    let r = send_ok(&relay, Method::POST, &url, None).await;
    assert_error(&r, 409, "", "cancel twice");
    assert_eq!(r.body["code"], "job_ended", "{}", r.text);

    // After a restart the job is not resumed: a second job over the same window takes all
    // the rest while the cancelled one, had it resumed, would have raced it for them.
    relay.restart();
    let (status, second) = relay.post_json(RECOVER, &json!({"since": "1h"})).await;
    assert_eq!(status, 202, "{second}");
    let second_id = second["id"].as_str().expect("id").to_string();
    let second = relay
        .wait_for(WAIT, "second job completed", || async {
            let j = job(&relay, &second_id).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!(second["requeued"], all, "{second}");
    let first = job(&relay, &id).await;
    assert_eq!(first["status"], "cancelled", "{first}");
    assert_eq!(first["requeued"], requeued, "the cancelled job was resumed: {first}");

    // A completed job cannot be cancelled either.
    let r = send_ok(&relay, Method::POST, &format!("{RECOVER}/{second_id}/cancel"), None).await;
    assert_error(&r, 409, "", "cancel a completed job");
    assert_eq!(r.body["code"], "job_ended", "{}", r.text);
}
