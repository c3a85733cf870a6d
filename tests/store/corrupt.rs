//! A stored value that cannot be read (the schema's CHECKs keep them out, but a database can
//! be edited by hand or damaged) is an error naming it, never a default: an automation's
//! unreadable headers never mean "no headers", its unreadable event types never mean "every
//! event type", an unknown delivery status or log trigger is not shown as another one.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay, FAST_RETRIES};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// Runs `sql` on the stopped relay's database, past the CHECKs that would refuse it.
fn corrupt(relay: &mut Relay, sql: &str) {
    relay.kill9();
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    db.execute_batch(&format!("PRAGMA ignore_check_constraints = 1; {sql}")).expect(sql);
    drop(db);
    relay.restart();
}

async fn create(relay: &Relay, body: Value) -> String {
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

async fn status_of(relay: &Relay, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = relay.req(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_webhook_headers_are_an_error_never_a_call_without_them() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let id = create(
        &relay,
        json!({"name": "auth", "processor_id": "proc_auth", "webhook_url": receiver.url("/a"),
               "webhook_headers": {"Authorization": "Bearer receiver-token"}}),
    )
    .await;
    corrupt(
        &mut relay,
        &format!(
            "UPDATE automations SET webhook_headers = '{{' WHERE id = unhex(substr('{id}', -32))"
        ),
    );

    let (status, body) = status_of(&relay, Method::GET, &format!("{ENDPOINTS}/{id}"), None).await;
    assert_eq!(status, 500, "{body}");
    let message = json!({"processor_id": "proc_auth", "payload": {"n": 1}});
    let (status, body) = status_of(&relay, Method::POST, "/v1/messages", Some(message)).await;
    assert_eq!(status, 500, "a message for it is not accepted to be sent without them: {body}");
    assert_eq!(receiver.count(), 0, "called without its headers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_event_types_never_mean_every_event_type() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let id = create(
        &relay,
        json!({"name": "paid", "processor_id": "proc_types", "webhook_url": receiver.url("/t"),
               "event_types": ["invoice.paid"]}),
    )
    .await;
    corrupt(
        &mut relay,
        &format!("UPDATE automations SET event_types = 'x' WHERE id = unhex(substr('{id}', -32))"),
    );

    let (status, body) = status_of(&relay, Method::GET, ENDPOINTS, None).await;
    assert_eq!(status, 500, "{body}");
    let message =
        json!({"processor_id": "proc_types", "event_type": "invoice.voided", "payload": {}});
    let (status, body) = status_of(&relay, Method::POST, "/v1/messages", Some(message)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(receiver.count(), 0, "sent an event type it did not subscribe to");
}

/// A delivery due for an automation whose headers cannot be read waits (it is not sent
/// without them), and the deliveries of other automations go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_delivery_of_an_unreadable_automation_waits_and_others_go_on() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let broken = create(
        &relay,
        json!({"name": "auth", "processor_id": "proc_broken", "webhook_url": receiver.url("/broken"),
               "webhook_headers": {"Authorization": "Bearer receiver-token"}, "enabled": false}),
    )
    .await;
    relay.create_automation("proc_fine", &receiver.url("/fine")).await;
    let message = relay.send_message("proc_broken", json!({"n": 1})).await;
    assert_eq!(message["delivery_ids"], json!([]), "disabled: no delivery yet");
    let message_id = message["id"].as_str().expect("id").to_string();
    // A pending delivery, due now, for the automation, enabled, with unreadable headers.
    corrupt(
        &mut relay,
        &format!(
            "UPDATE automations SET enabled = 1, webhook_headers = '[1]' WHERE id = unhex(substr('{broken}', -32));
             INSERT INTO deliveries (id, message_id, automation_id, status, attempts,
                 next_attempt_at, next_trigger, created_at, updated_at)
             VALUES (unhex(substr('dlv_0000000000007000800000000000b0b0', -32)), unhex(substr('{message_id}', -32)), unhex(substr('{broken}', -32)), 'pending', 0, 0, 'initial', 0, 0);"
        ),
    );

    relay.send_message("proc_fine", json!({"n": 2})).await;
    relay
        .wait_for(Duration::from_secs(10), "the other automation's call", || async {
            receiver.calls().iter().any(|c| c.body.as_ref() == b"{\"n\":2}").then_some(())
        })
        .await;
    let waiting = relay
        .wait_for(Duration::from_secs(10), "the delivery put back", || async {
            let d = relay.get_json("/v1/deliveries/dlv_0000000000007000800000000000b0b0").await;
            (d["next_attempt_at"].as_str() > Some("2000")).then_some(d)
        })
        .await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["attempts"], 0, "{waiting}");
    let broken_calls = receiver.calls().iter().filter(|c| c.body.as_ref() == b"{\"n\":1}").count();
    assert_eq!(broken_calls, 0, "sent without its headers");
}

/// Sends one message to a new automation of `processor` calling `receiver`; returns its
/// delivery's id and, once it is logged, the log's.
async fn delivered_once(relay: &Relay, receiver: &Receiver, processor: &str) -> (String, String) {
    relay.create_automation(processor, &receiver.url("/once")).await;
    let message = relay.send_message(processor, json!({"n": 1})).await;
    let delivery = message["delivery_ids"][0].as_str().expect("delivery").to_string();
    let logs = relay
        .wait_for(Duration::from_secs(10), "the log", || async {
            let logs = relay.all_logs("").await;
            (logs.len() == 1).then_some(logs)
        })
        .await;
    (delivery, logs[0]["id"].as_str().expect("id").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_delivery_statuses_and_log_triggers_are_errors() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let (delivery, log) = delivered_once(&relay, &receiver, "proc_enum").await;
    corrupt(
        &mut relay,
        &format!(
            "UPDATE deliveries SET status = 'sent' WHERE id = unhex(substr('{delivery}', -32));
             UPDATE logs SET trigger = 'manual' WHERE id = unhex(substr('{log}', -32));"
        ),
    );

    let (status, body) =
        status_of(&relay, Method::GET, &format!("/v1/deliveries/{delivery}"), None).await;
    assert_eq!(status, 500, "an unknown status was shown as another: {body}");
    let (status, body) =
        status_of(&relay, Method::GET, &format!("/v1/processors/automations/logs/{log}"), None)
            .await;
    assert_eq!(status, 500, "an unknown trigger was shown as another: {body}");
}

/// A stored id that is not one (the text of an id where its 16 bytes belong, as an older
/// build or a hand edit would leave it) is an error, never shown as if it were one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_id_of_another_kind_is_an_error() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let (delivery, log) = delivered_once(&relay, &receiver, "proc_ids").await;
    corrupt(
        &mut relay,
        &format!(
            "UPDATE logs SET message_id = '{delivery}' WHERE id = unhex(substr('{log}', -32))"
        ),
    );

    let path = format!("/v1/processors/automations/logs/{log}");
    let (status, body) = status_of(&relay, Method::GET, &path, None).await;
    assert_eq!(status, 500, "a delivery id was shown as the log's message id: {body}");
}

const APP_KEY: &str = "app-corrupt-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_run_status_is_an_error() {
    let mut relay = Relay::start(&crate::common::apps::start_to_end_app("corrupt_app", APP_KEY));
    let resp = crate::common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(APP_KEY)
        .json(&json!({"inputs": {}, "user": "u", "response_mode": "blocking"}))
        .send()
        .await
        .expect("run");
    assert_eq!(resp.status(), 200);
    let run: Value = resp.json().await.expect("json");
    let id = run["workflow_run_id"].as_str().expect("run id").to_string();
    corrupt(&mut relay, &format!("UPDATE workflow_runs SET status = 'paused' WHERE id = '{id}'"));

    let resp = crate::common::client()
        .get(relay.url(&format!("/v1/workflows/run/{id}")))
        .bearer_auth(APP_KEY)
        .send()
        .await
        .expect("get");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 500, "an unknown status was shown: {body}");
}

/// Posts a blocking run of the smallest app; its run id.
async fn run_once(relay: &Relay) -> String {
    let resp = crate::common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(APP_KEY)
        .json(&json!({"inputs": {}, "user": "u", "response_mode": "blocking"}))
        .send()
        .await
        .expect("run");
    assert_eq!(resp.status(), 200);
    let run: Value = resp.json().await.expect("json");
    run["workflow_run_id"].as_str().expect("run id").to_string()
}

/// Runs a crash interrupted are failed at the next start with their webhooks; one that
/// cannot be read is left alone and keeps neither the start nor the others from ending
/// (its unreadable `total_tokens` stopped the relay from starting at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_interrupted_run_keeps_neither_the_start_nor_the_others_back() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(&crate::common::apps::start_to_end_app("corrupt_app", APP_KEY));
    let (readable, unreadable) = (run_once(&relay).await, run_once(&relay).await);
    relay.create_automation("corrupt_app", &receiver.url("/runs")).await;
    corrupt(
        &mut relay,
        &format!(
            "UPDATE workflow_runs SET status = 'running', finished_at = NULL, outputs = NULL;
             UPDATE workflow_runs SET total_tokens = 'x' WHERE id = '{unreadable}';"
        ),
    );
    let detail = relay
        .wait_for(Duration::from_secs(10), "the readable run failed at the start", || async {
            let resp = crate::common::client()
                .get(relay.url(&format!("/v1/workflows/run/{readable}")))
                .bearer_auth(APP_KEY)
                .send()
                .await
                .ok()?;
            let detail: Value = resp.json().await.ok()?;
            (detail["status"] == "failed").then_some(detail)
        })
        .await;
    assert_eq!(detail["status"], "failed", "{detail}");
    relay
        .wait_for(Duration::from_secs(10), "the readable run's webhook", || async {
            receiver
                .calls()
                .iter()
                .any(|c| std::str::from_utf8(&c.body).is_ok_and(|b| b.contains(readable.as_str())))
                .then_some(())
        })
        .await;
    let about_unreadable = receiver
        .calls()
        .iter()
        .filter(|c| std::str::from_utf8(&c.body).is_ok_and(|b| b.contains(unreadable.as_str())))
        .count();
    assert_eq!(about_unreadable, 0, "a webhook was made up for the unreadable run");
}

/// Due deliveries that cannot be read — a row holding text where a count belongs, an
/// automation whose timestamps are text — each wait alone: a due delivery of a healthy
/// automation claimed after them is still sent (one such row made every claim fail, so no
/// retry of any automation went out), and the claim logs them in one line. One whose
/// message's payload is gone does not hold anything up either: it is not coming back, so the
/// delivery ends `failed` with an `E_PAYLOAD_MISSING` log, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_due_deliveries_wait_alone_and_the_others_are_sent() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start_capturing_log(FAST_RETRIES, &[]);
    let mut ids = Vec::new();
    for processor in ["proc_gone", "proc_text", "proc_time", "proc_fine"] {
        let id = create(
            &relay,
            json!({"name": processor, "processor_id": processor,
                   "webhook_url": receiver.url(&format!("/{processor}")), "enabled": false}),
        )
        .await;
        let message = relay.send_message(processor, json!({"to": processor})).await;
        ids.push((id, message["id"].as_str().expect("id").to_string()));
    }
    let delivery = |i: usize| format!("dlv_00000000000070008000000000000{i:03}");
    let mut sql = String::from("UPDATE automations SET enabled = 1;");
    for (i, (automation, message)) in ids.iter().enumerate() {
        // Due in this order, the healthy one last: a claim meets the unreadable ones first.
        sql.push_str(&format!(
            "INSERT INTO deliveries (id, message_id, automation_id, status, attempts,
                 next_attempt_at, next_trigger, created_at, updated_at)
             VALUES (unhex(substr('{}', -32)), unhex(substr('{message}', -32)), unhex(substr('{automation}', -32)), 'pending', 0, {i}, 'retry', 0, 0);",
            delivery(i)
        ));
    }
    let (gone, text, time) = (&ids[0].1, delivery(1), &ids[2].0);
    sql.push_str(&format!(
        "DELETE FROM bodies WHERE hash = (SELECT payload_hash FROM messages WHERE id = unhex(substr('{gone}', -32)));
         UPDATE deliveries SET attempts = 'x' WHERE id = unhex(substr('{text}', -32));
         UPDATE automations SET created_at = 'yesterday' WHERE id = unhex(substr('{time}', -32));"
    ));
    corrupt(&mut relay, &sql);

    let fine = |c: &crate::common::Received| c.body.as_ref() == br#"{"to":"proc_fine"}"#;
    relay
        .wait_for(Duration::from_secs(10), "the healthy automation's retry", || async {
            receiver.calls().iter().any(fine).then_some(())
        })
        .await;
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let ended = relay
        .wait_for(Duration::from_secs(10), "the delivery whose payload is gone to end", || async {
            let d = relay.get_json(&format!("/v1/deliveries/{}", delivery(0))).await;
            (d["status"] != "pending").then_some(d)
        })
        .await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["last_error_code"], "E_PAYLOAD_MISSING", "{ended}");
    for i in 1..3 {
        let (status, due): (String, i64) = db
            .query_row(
                "SELECT status, next_attempt_at FROM deliveries WHERE id = ?1",
                [hookrelay::ids::stored_value(&delivery(i))],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the unreadable delivery");
        assert_eq!(status, "pending", "delivery {i}");
        assert!(due > 1_000_000, "delivery {i} was not put back to wait: due at {due}");
    }
    let unreadable_calls = receiver.calls().iter().filter(|c| !fine(c)).count();
    assert_eq!(unreadable_calls, 0, "an unreadable delivery was sent");
    // One line for the claim that put the two back, not one per delivery.
    let log = relay.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("due deliveries wait")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("deliveries=2"), "{}", lines[0]);
}

/// A stored secret that signs nothing is unreadable: its automation answers 500 and its
/// deliveries wait, never a call with an empty `webhook-signature` (it was sent so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_sign_is_an_error_never_an_unsigned_call() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let broken = create(
        &relay,
        json!({"name": "unsigned", "processor_id": "proc_unsigned",
               "webhook_url": receiver.url("/unsigned"), "enabled": false}),
    )
    .await;
    corrupt(
        &mut relay,
        &format!(
            "UPDATE automations SET secret = 'not-a-secret', enabled = 1 WHERE id = unhex(substr('{broken}', -32))"
        ),
    );
    let (status, body) =
        status_of(&relay, Method::GET, &format!("{ENDPOINTS}/{broken}"), None).await;
    assert_eq!(status, 500, "a secret that signs nothing was shown: {body}");
    let (status, body) =
        status_of(&relay, Method::GET, &format!("{ENDPOINTS}/{broken}/secret"), None).await;
    assert_eq!(status, 500, "a secret that signs nothing was shown: {body}");
    let (status, _) = status_of(
        &relay,
        Method::POST,
        "/v1/messages",
        Some(json!({"processor_id": "proc_unsigned", "payload": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 500, "the ingest of a message to it (nothing is written)");
    relay.create_automation("proc_control", &receiver.url("/control")).await;
    relay.send_message("proc_control", json!({"n": 2})).await;
    relay
        .wait_for(Duration::from_secs(10), "the control automation's call", || async {
            receiver.calls().iter().any(|c| c.body.as_ref() == b"{\"n\":2}").then_some(())
        })
        .await;
    let unsigned = receiver.calls().iter().filter(|c| c.body.as_ref() == b"{\"n\":1}").count();
    assert_eq!(unsigned, 0, "a call was sent with a secret that signs nothing");
}

/// A flag that is neither 0 nor 1 is unreadable: shown as an error, never as `true` while
/// the queries that compare it with 1 treated the automation as disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_neither_0_nor_1_is_an_error() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(FAST_RETRIES);
    let flagged = create(
        &relay,
        json!({"name": "flag", "processor_id": "proc_flag", "webhook_url": receiver.url("/f")}),
    )
    .await;
    corrupt(
        &mut relay,
        &format!("UPDATE automations SET enabled = 7 WHERE id = unhex(substr('{flagged}', -32))"),
    );
    let (status, body) =
        status_of(&relay, Method::GET, &format!("{ENDPOINTS}/{flagged}"), None).await;
    assert_eq!(status, 500, "a flag of 7 was shown: {body}");
    let (status, body) = status_of(
        &relay,
        Method::POST,
        "/v1/messages",
        Some(json!({"processor_id": "proc_flag", "payload": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 500, "a message to it was taken as if it were disabled: {body}");
}
