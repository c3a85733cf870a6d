//! Content that is gone answers clearly, never a 500: erased on request (`DELETE
//! /v1/messages/{id}/content`, GDPR erasure) or deleted under the relay (content retention,
//! simulated by deleting the body row in the SQLite file). The message and its logs stay
//! readable and say why their content is absent; a rerun is a 410 naming the reason; a
//! delivery still to be sent ends `failed` with a log whose code says why.

use std::sync::atomic::Ordering;

use reqwest::Method;
use rusqlite::Connection;
use serde_json::{json, Value};

use hookrelay::ids::stored_value;

use crate::common::{first_delivery, Receiver, Relay, FAST_RETRIES};
use crate::helpers::{
    assert_error, assert_uiform_log, rfc3339_ago, send_ok, switchable_receiver, LOGS, WAIT,
    ZERO_HEX,
};

/// Fast retries, but a failed first attempt waits a minute for its retry: a delivery stays
/// pending for the length of a test unless something ends it.
fn slow_retries() -> String {
    FAST_RETRIES
        .replace("initial_backoff_ms = 200", "initial_backoff_ms = 60000")
        .replace("max_backoff_ms = 2000", "max_backoff_ms = 60000")
}

/// How many stored bodies hold `marker`, read through a second connection to the file.
fn bodies_holding(relay: &Relay, marker: &str) -> i64 {
    let db = Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    db.query_row(
        "SELECT count(*) FROM bodies WHERE instr(CAST(data AS TEXT), ?1) > 0",
        [marker],
        |r| r.get(0),
    )
    .expect("count bodies")
}

fn expunge_path(message_id: &str) -> String {
    format!("/v1/messages/{message_id}/content")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expunged_message_and_its_logs_stay_readable_and_cannot_be_rerun() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(FAST_RETRIES);
    relay.create_automation("proc_erase", &receiver.url("/e")).await;
    let marker = "erase-me-7f3a";
    let message = relay.send_message("proc_erase", json!({"user": marker})).await;
    let message_id = message["id"].as_str().expect("id").to_string();
    let logs = relay.wait_logs_exactly("", 1).await;
    let log_id = logs[0]["id"].as_str().expect("log id").to_string();
    assert_eq!(logs[0]["external_request_log"]["request_body_state"], "stored", "{}", logs[0]);
    assert_eq!(bodies_holding(&relay, marker), 1, "the payload is stored before");

    let first = send_ok(&relay, Method::DELETE, &expunge_path(&message_id), None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["id"], message_id.as_str(), "{}", first.text);
    assert!(first.body["content_expunged_at"].is_string(), "{}", first.text);
    let again = send_ok(&relay, Method::DELETE, &expunge_path(&message_id), None).await;
    assert_eq!((again.status, &again.body), (200, &first.body), "idempotent: {}", again.text);
    assert_eq!(bodies_holding(&relay, marker), 0, "the payload is erased from the file");

    let shown = relay.get_json(&format!("/v1/messages/{message_id}")).await;
    assert_eq!(shown["payload"], Value::Null, "{shown}");
    assert_eq!(shown["payload_state"], "expunged", "{shown}");
    assert_eq!(shown["content_expunged_at"], first.body["content_expunged_at"], "{shown}");
    assert_eq!(shown["deliveries"][0]["status"], "succeeded", "{shown}");
    let listed = relay.list_all("/v1/messages?processor_id=proc_erase").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["content_expunged_at"], first.body["content_expunged_at"]);

    let detail = relay.get_json(&format!("{LOGS}/{log_id}")).await;
    assert_uiform_log(&detail);
    let request = &detail["external_request_log"];
    assert_eq!(request["request_body"], json!({}), "{detail}");
    assert_eq!(request["request_body_state"], "expunged", "{detail}");
    assert_eq!(request["response_body_state"], "stored", "{detail}");
    assert!(!detail.to_string().contains(marker), "nothing of the payload is shown: {detail}");
    let logs = relay.all_logs("").await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["external_request_log"]["request_body_state"], "expunged");

    let rerun = send_ok(&relay, Method::POST, &format!("{LOGS}/{log_id}/rerun"), None).await;
    assert_error(&rerun, 410, "expunged", "rerun of an expunged log");
    assert_eq!(rerun.body["code"], "content_expunged", "{}", rerun.text);
    assert_eq!(receiver.count(), 1, "nothing was sent again");

    // An expunge keeps response bodies: one gone later went by content retention (simulated
    // here), and says so, whatever its message's state.
    let db = Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    db.execute(
        "DELETE FROM bodies WHERE hash = (SELECT response_body_hash FROM logs WHERE id = ?1)",
        [stored_value(&log_id)],
    )
    .expect("delete the response body");
    let detail = relay.get_json(&format!("{LOGS}/{log_id}")).await;
    let request = &detail["external_request_log"];
    assert_eq!(request["response_body_state"], "expired", "{detail}");
    assert_eq!(request["request_body_state"], "expunged", "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunging_unknown_or_malformed_messages_is_refused() {
    let relay = Relay::start("");
    let unknown =
        send_ok(&relay, Method::DELETE, &expunge_path(&format!("msg_{ZERO_HEX}")), None).await;
    assert_error(&unknown, 404, "message", "unknown message");
    assert_eq!(unknown.body["code"], "not_found", "{}", unknown.text);
    let other_kind = send_ok(&relay, Method::DELETE, &expunge_path("garbage"), None).await;
    assert_error(&other_kind, 404, "message", "not a message id");
    let not_utf8 = send_ok(&relay, Method::DELETE, &expunge_path("%ff"), None).await;
    assert_error(&not_utf8, 400, "id", "an id that is not UTF-8");
    assert_eq!(not_utf8.body["field"], "id", "{}", not_utf8.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunge_ends_the_deliveries_still_to_be_sent() {
    let (receiver, _failing) = switchable_receiver().await;
    let relay = Relay::start(&slow_retries());
    relay.create_automation("proc_erase_pending", &receiver.url("/p")).await;
    let message = relay.send_message("proc_erase_pending", json!({"n": 1})).await;
    let message_id = message["id"].as_str().expect("id").to_string();
    let delivery_id = first_delivery(&message);
    relay.wait_logs_exactly("", 1).await;
    assert_eq!(relay.delivery(&delivery_id).await["status"], "pending", "retries in a minute");

    let erased = send_ok(&relay, Method::DELETE, &expunge_path(&message_id), None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    let ended = relay.wait_delivery_ends(&delivery_id, "failed").await;
    assert_eq!(ended["last_error_code"], "E_CONTENT_EXPUNGED", "{ended}");
    let logs = relay.logs_of(&delivery_id).await;
    assert_eq!(logs.len(), 2, "the first attempt and the one that ended it");
    assert_uiform_log(&logs[1]);
    assert_eq!(logs[1]["error_code"], "E_CONTENT_EXPUNGED", "{}", logs[1]);
    assert_eq!(receiver.count(), 1, "nothing was sent without its payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_deleted_under_the_relay_ends_its_delivery_and_answers_missing_payload() {
    let since = rfc3339_ago(60);
    let (receiver, failing) = switchable_receiver().await;
    let mut relay = Relay::start(&slow_retries());
    relay.create_automation("proc_expired", &receiver.url("/x")).await;
    let message = relay.send_message("proc_expired", json!({"n": 2})).await;
    let message_id = message["id"].as_str().expect("id").to_string();
    let delivery_id = first_delivery(&message);
    let logs = relay.wait_logs_exactly("", 1).await;
    let log_id = logs[0]["id"].as_str().expect("log id").to_string();
    relay.kill9();

    // What content retention does: the body goes, the rows referring to it stay. The
    // delivery is made due at once rather than in a minute.
    let db = Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let deleted = db
        .execute(
            "DELETE FROM bodies WHERE hash = (SELECT payload_hash FROM messages WHERE id = ?1)",
            [stored_value(&message_id)],
        )
        .expect("delete the payload");
    assert_eq!(deleted, 1);
    db.execute(
        "UPDATE deliveries SET next_attempt_at = 0 WHERE id = ?1",
        [stored_value(&delivery_id)],
    )
    .expect("due now");
    drop(db);
    failing.store(false, Ordering::SeqCst);
    relay.restart();

    let ended = relay.wait_delivery_ends(&delivery_id, "failed").await;
    assert_eq!(ended["last_error_code"], "E_PAYLOAD_MISSING", "{ended}");

    let detail = relay.get_json(&format!("{LOGS}/{log_id}")).await;
    assert_uiform_log(&detail);
    assert_eq!(detail["external_request_log"]["request_body_state"], "expired", "{detail}");
    let shown = relay.get_json(&format!("/v1/messages/{message_id}")).await;
    assert_eq!(shown["payload"], Value::Null, "{shown}");
    assert_eq!(shown["payload_state"], "expired", "{shown}");
    assert_eq!(shown["content_expunged_at"], Value::Null, "{shown}");

    let rerun = send_ok(&relay, Method::POST, &format!("{LOGS}/{log_id}/rerun"), None).await;
    assert_error(&rerun, 410, "no longer stored", "rerun of an expired log");
    assert_eq!(rerun.body["code"], "missing_payload", "{}", rerun.text);

    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 1, "{job}");
    let job_id = job["id"].as_str().expect("job id").to_string();
    let done = relay
        .wait_for(WAIT, "the recover job to complete", || async {
            let j = relay.get_json(&format!("{LOGS}/recover/{job_id}")).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!((done["done"].clone(), done["failed"].clone()), (json!(0), json!(1)), "{done}");
    let after = relay.delivery(&delivery_id).await;
    assert_eq!(after["status"], "failed", "{after}");
    assert_eq!(after["last_error_code"], "E_PAYLOAD_MISSING", "{after}");
    assert_eq!(receiver.count(), 1, "nothing was sent without its payload");
}

/// Bodies are stored once per distinct content: another message that posted the same bytes
/// keeps them through an expunge (its payload, and reruns of its log), while the expunged
/// message never shows them again, also once the same bytes are posted anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_content_posted_by_another_message_survives_an_expunge() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(FAST_RETRIES);
    relay.create_automation("proc_same", &receiver.url("/s")).await;
    let payload = json!({"user": "same-bytes-91c2"});
    let expunged = relay.send_message("proc_same", payload.clone()).await;
    let expunged_id = expunged["id"].as_str().expect("id").to_string();
    let other = relay.send_message("proc_same", payload.clone()).await;
    let other_id = other["id"].as_str().expect("id").to_string();
    let logs = relay.wait_logs_exactly("", 2).await;
    let log_of = |message: &str| {
        logs.iter()
            .find(|l| l["message_id"] == message)
            .and_then(|l| l["id"].as_str())
            .expect("the message's log")
            .to_string()
    };
    let (expunged_log, other_log) = (log_of(&expunged_id), log_of(&other_id));

    let erased = send_ok(&relay, Method::DELETE, &expunge_path(&expunged_id), None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    let kept = relay.get_json(&format!("/v1/messages/{other_id}")).await;
    assert_eq!(kept["payload_state"], "stored", "another message's payload: {kept}");
    assert_eq!(kept["payload"], payload, "{kept}");
    let rerun_other =
        send_ok(&relay, Method::POST, &format!("{LOGS}/{other_log}/rerun"), None).await;
    assert_eq!(rerun_other.status, 200, "{}", rerun_other.text);

    let after = relay.send_message("proc_same", payload.clone()).await;
    relay.wait_logs_exactly("", 4).await;
    let reposted =
        relay.get_json(&format!("/v1/messages/{}", after["id"].as_str().expect("id"))).await;
    assert_eq!(reposted["payload"], payload, "{reposted}");
    let shown = relay.get_json(&format!("/v1/messages/{expunged_id}")).await;
    assert_eq!(shown["payload"], Value::Null, "{shown}");
    assert_eq!(shown["payload_state"], "expunged", "{shown}");
    let detail = relay.get_json(&format!("{LOGS}/{expunged_log}")).await;
    assert_eq!(detail["external_request_log"]["request_body"], json!({}), "{detail}");
    assert_eq!(detail["external_request_log"]["request_body_state"], "expunged", "{detail}");
    let rerun = send_ok(&relay, Method::POST, &format!("{LOGS}/{expunged_log}/rerun"), None).await;
    assert_error(&rerun, 410, "expunged", "rerun of the expunged message's log");
    assert_eq!(rerun.body["code"], "content_expunged", "{}", rerun.text);
    assert_eq!(receiver.count(), 4, "two messages, one rerun, the third message: nothing more");
}

/// A delivery held in memory behind its automation's call in flight (`claimed = 2`) is not
/// touched by the expunge's write; the dispatcher finds its payload expunged as its call
/// would start, and ends it `failed` without calling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_held_in_memory_is_not_sent_once_its_message_is_expunged() {
    let (url, calls) = crate::common::slow::slow_receiver(std::time::Duration::from_secs(2)).await;
    let config =
        FAST_RETRIES.replace("[delivery]\n", "[delivery]\nper_automation_concurrency = 1\n");
    let relay = Relay::start(&config);
    relay.create_automation("proc_held", &url).await;
    relay.send_message("proc_held", json!({"n": "in flight"})).await;
    relay
        .wait_for(WAIT, "the first call to start", || async {
            (calls.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
    let held = relay.send_message("proc_held", json!({"n": "held"})).await;
    let held_id = held["id"].as_str().expect("id").to_string();
    let delivery_id = first_delivery(&held);
    let db = Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let claimed: i64 = db
        .query_row(
            "SELECT claimed FROM deliveries WHERE id = ?1",
            [stored_value(&delivery_id)],
            |r| r.get(0),
        )
        .expect("claimed");
    assert_eq!(claimed, 2, "held in memory behind the call in flight");

    let erased = send_ok(&relay, Method::DELETE, &expunge_path(&held_id), None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    let ended = relay.wait_delivery_ends(&delivery_id, "failed").await;
    assert_eq!(ended["last_error_code"], "E_CONTENT_EXPUNGED", "{ended}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the held delivery was never called");
}
