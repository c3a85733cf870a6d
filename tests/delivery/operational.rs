//! Issue 14 §2: endpoint health and operational webhooks, end to end. A failing automation
//! is disabled after `operational.disable_after_hours` (a fraction of an hour here), with the
//! trail, the health and the `endpoint.disabled` webhook; re-enabling it is recorded the same
//! way; deliveries that fail, exhaust and recover send Svix's per-message events. Every
//! operational call is checked with the Standard Webhooks algorithm (testkit's own verifier).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{signing, verify_signature, Receiver, Relay, ENDPOINTS, WAIT};
use crate::helpers::{delivery_toml, first_delivery};

/// The `[operational]` table: webhooks to `url` signed with `secret`.
fn operational_toml(url: &str, secret: &str, disable_after_hours: &str, failing: u32) -> String {
    format!(
        "[operational]\nwebhook_url = {url:?}\nsecret = {secret:?}\n\
         disable_after_hours = {disable_after_hours}\nfailing_after_attempts = {failing}\n"
    )
}

/// The operational calls `ops` got, each checked signed with `secret`: (type, payload).
fn events(ops: &Receiver, secret: &str) -> Vec<(String, Value)> {
    ops.calls()
        .iter()
        .map(|call| {
            assert!(verify_signature(secret, &call.headers, &call.body), "unsigned: {call:?}");
            let payload: Value = serde_json::from_slice(&call.body).expect("JSON");
            let kind = payload["type"].as_str().expect("type").to_string();
            assert!(payload["timestamp"].is_string(), "{payload}");
            (kind, payload)
        })
        .collect()
}

/// Waits until `ops` got an event of `kind` about `automation`; returns its payload.
async fn wait_event(relay: &Relay, ops: &Receiver, secret: &str, kind: &str, about: &str) -> Value {
    relay
        .wait_for(WAIT, &format!("{kind} about {about}"), || async {
            events(ops, secret)
                .into_iter()
                .find(|(k, p)| k == kind && p["data"]["endpointId"] == about)
                .map(|(_, p)| p)
        })
        .await
}

async fn events_of(relay: &Relay, id: &str) -> Vec<Value> {
    let page = relay.get_json(&format!("{ENDPOINTS}/{id}/events")).await;
    page["data"].as_array().expect("data").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_automation_is_disabled_with_a_trail_and_reenabled_the_same_way() {
    let ops = Receiver::ok().await;
    let secret = signing::new_secret();
    let failing = Receiver::failing_first(usize::MAX, 503).await;
    // 0.0005 h = 1.8 s of failures; retries every 200 ms.
    let toml = format!(
        "{}{}",
        delivery_toml(&[("max_attempts", "100"), ("backoff_multiplier", "1.0")]),
        operational_toml(&ops.url("/ops"), &secret, "0.0005", 3)
    );
    let relay = Relay::start(&toml);
    let automation = relay.create_automation("proc_ops", &failing.url("/f")).await;
    let id = automation["id"].as_str().unwrap().to_string();
    assert_eq!(automation["operational"], false);
    let delivery = first_delivery(&relay.send_message("proc_ops", json!({"n": 1})).await);

    let disabled = wait_event(&relay, &ops, &secret, "endpoint.disabled", &id).await;
    assert_eq!(disabled["data"]["trigger"], "automatic", "{disabled}");
    assert_eq!(disabled["data"]["actor"], "system", "{disabled}");
    assert!(disabled["data"]["failSince"].is_string(), "{disabled}");
    let shown = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(shown["enabled"], false, "{shown}");

    // The trail names who, why and when.
    let trail = events_of(&relay, &id).await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!((&trail[0]["kind"], &trail[0]["actor"]), (&json!("disabled"), &json!("system")));
    assert!(trail[0]["reason"].as_str().unwrap().contains("disable_after_hours"), "{trail:?}");
    assert!(trail[0]["id"].as_str().unwrap().starts_with("aevt_"));

    // Its pending delivery keeps today's rule: it ends failed, not sent again.
    let d = relay.wait_delivery_ends(&delivery, "failed").await;
    let logs = relay.logs_of(&delivery).await;
    assert_eq!(logs.last().unwrap()["error_code"], "E_AUTOMATION_DISABLED", "{d}");
    // The health says so too: every attempt sent failed 503; the last log, not sent, had
    // no answer (and does not count as a failure of the endpoint).
    let health = relay.get_json(&format!("{ENDPOINTS}/{id}/health")).await;
    assert_eq!(health["enabled"], false, "{health}");
    assert_eq!(health["disabled_reason"], trail[0]["reason"], "{health}");
    let failures = health["consecutive_failures"].as_i64().unwrap();
    assert!(failures >= 3, "{health}");
    assert_eq!(failures as usize, failing.count(), "{health}");
    assert!(health["last_failure_at"].is_string() && health["last_success_at"].is_null());
    let hour = &health["windows"][0];
    assert_eq!((hour["hours"].as_i64(), hour["succeeded"].as_i64()), (Some(1), Some(0)));
    assert_eq!(hour["status_classes"]["5xx"], failures, "{health}");
    assert_eq!(hour["status_classes"]["no_response"], 1, "{health}");
    assert_eq!(hour["failed"], failures + 1, "{health}");
    assert_eq!(hour["success_ratio"], 0.0, "{health}");

    // One `failing` for the delivery, at its third attempt; none about anything else.
    let failing_events: Vec<_> = events(&ops, &secret)
        .into_iter()
        .filter(|(k, _)| k == "message.attempt.failing")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(failing_events.len(), 1, "{failing_events:?}");
    assert_eq!(failing_events[0]["data"]["lastAttempt"]["attempt"], 3);
    assert_eq!(failing_events[0]["data"]["lastAttempt"]["responseStatusCode"], 503);
    assert_eq!(failing_events[0]["data"]["deliveryId"], delivery.as_str());

    // Re-enabled through the API: recorded with the key (one of the config), and told.
    let (status, body) = relay.post_json(&format!("{ENDPOINTS}/{id}/enable"), &json!({})).await;
    assert_eq!((status, &body["enabled"]), (200, &json!(true)), "{body}");
    let enabled = wait_event(&relay, &ops, &secret, "endpoint.enabled", &id).await;
    assert_eq!(enabled["data"]["actor"], "config_key", "{enabled}");
    let trail = events_of(&relay, &id).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!((&trail[0]["kind"], &trail[0]["actor"]), (&json!("enabled"), &json!("config_key")));
    let health = relay.get_json(&format!("{ENDPOINTS}/{id}/health")).await;
    assert!(health["disabled_reason"].is_null() && health["failing_since"].is_null(), "{health}");

    // The operational calls are logs of the operational automation, in the logs list.
    let list = relay.get_json(&format!("{ENDPOINTS}?processor_id=hookrelay.operational")).await;
    let op = &list["data"][0];
    assert_eq!(op["operational"], true, "{list}");
    let op_id = op["id"].as_str().unwrap();
    let logs = relay
        .wait_logs_at_least(&format!("automation_id={op_id}&event_type=endpoint.disabled"), 1)
        .await;
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200, "{:?}", logs[0]);
    // It is the relay's: not to be deleted, edited or rotated through the API.
    let one = format!("{ENDPOINTS}/{op_id}");
    for (method, path, body) in [
        (Method::DELETE, one.clone(), None),
        (Method::PUT, one.clone(), Some(json!({"webhook_url": failing.url("/x")}))),
        (Method::POST, format!("{one}/secret/rotate"), None),
    ] {
        let mut req = relay.req(method.clone(), &path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status(), 403, "{method} {path}");
        let body: Value = resp.json().await.expect("json");
        assert!(body["message"].as_str().unwrap_or("").contains("operational"), "{body}");
    }
    let shown = relay.get_json(&one).await;
    assert_eq!(shown["webhook_url"], ops.url("/ops"), "nothing changed");
    // Nor can a producer send it a message: it would reach the operational receiver signed
    // with the operational secret, as if the relay had sent it.
    let before = ops.calls().len();
    let stored = || async {
        let page = relay.get_json("/v1/messages?processor_id=hookrelay.operational").await;
        page["data"].as_array().expect("data").len()
    };
    let stored_before = stored().await;
    let forged = json!({"automation_id": op_id, "payload": {"type": "endpoint.disabled"}});
    let (status, body) = relay.post_json("/v1/messages", &forged).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (403, &json!("forbidden"), &json!("automation_id")),
        "{body}"
    );
    assert_eq!(stored().await, stored_before, "no message stored");
    // Nor under its processor, nor by a replay to it.
    let posed = json!({"processor_id": "hookrelay.operational", "payload": {"forged": true}});
    let (status, body) = relay.post_json("/v1/messages", &posed).await;
    assert_eq!((status, &body["field"]), (400, &json!("processor_id")), "{body}");
    let replay = format!("{ENDPOINTS}/{op_id}/replay-missing");
    let (status, body) = relay.post_json(&replay, &json!({"since": "1h"})).await;
    assert_eq!((status, &body["code"]), (403, &json!("forbidden")), "{body}");
    assert_eq!(stored().await, stored_before, "no message stored");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(ops.calls().len(), before, "nothing more reached the operational receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_send_failing_exhausted_and_recovered_and_none_about_the_operational_one() {
    // The operational endpoint fails its first calls: they are retried like any delivery, and
    // its own failures are never the subject of an event (with failing_after_attempts = 1,
    // its first failed call would otherwise send one about itself).
    let ops = Receiver::failing_first(3, 500).await;
    let secret = signing::new_secret();
    let toml = format!(
        "{}{}",
        delivery_toml(&[("max_attempts", "4"), ("backoff_multiplier", "1.0")]),
        operational_toml(&ops.url("/ops"), &secret, "0", 1)
    );
    let relay = Relay::start(&toml);
    let recovering = Receiver::failing_first(2, 500).await;
    let dead = Receiver::with(Arc::new(|_| StatusCode::BAD_GATEWAY.into_response())).await;
    let a = relay.create_automation("proc_r", &recovering.url("/r")).await;
    let b = relay.create_automation("proc_x", &dead.url("/x")).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let da = first_delivery(&relay.send_message("proc_r", json!({"r": 1})).await);
    let db = first_delivery(&relay.send_message("proc_x", json!({"x": 1})).await);
    relay.wait_delivery_ends(&da, "succeeded").await;
    relay.wait_delivery_ends(&db, "exhausted").await;

    let recovered = wait_event(&relay, &ops, &secret, "message.attempt.recovered", a).await;
    assert_eq!(recovered["data"]["deliveryId"], da.as_str());
    assert_eq!(recovered["data"]["lastAttempt"]["attempt"], 3);
    assert_eq!(recovered["data"]["appId"], "proc_r");
    let exhausted = wait_event(&relay, &ops, &secret, "message.attempt.exhausted", b).await;
    let last = &exhausted["data"]["lastAttempt"];
    assert_eq!(
        (last["attempt"].as_i64(), last["responseStatusCode"].as_i64()),
        (Some(4), Some(502))
    );
    assert_eq!(last["errorCode"], "E_HTTP_STATUS");
    // lastAttempt.id is the log of that attempt.
    let log = relay
        .get_json(&format!("/v1/processors/automations/logs/{}", last["id"].as_str().unwrap()))
        .await;
    assert_eq!(log["external_request_log"]["status_code"], 502, "{log}");
    let msg_id = exhausted["data"]["msgId"].as_str().unwrap();
    assert!(msg_id.starts_with("msg_"), "{exhausted}");
    for about in [a, b] {
        wait_event(&relay, &ops, &secret, "message.attempt.failing", about).await;
    }
    // Once each: failing for both, recovered for a, exhausted for b; nothing else, and
    // nothing about the operational automation, whose first calls failed.
    relay
        .wait_for(WAIT, "the operational calls", || async { (ops.count() >= 3 + 4).then_some(()) })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut kinds: Vec<(String, String)> = events(&ops, &secret)
        .into_iter()
        .map(|(k, p)| (k, p["data"]["endpointId"].as_str().unwrap_or("").to_string()))
        .collect();
    kinds.sort();
    kinds.dedup();
    let expected = [
        ("message.attempt.exhausted", b),
        ("message.attempt.failing", a),
        ("message.attempt.failing", b),
        ("message.attempt.recovered", a),
    ];
    let mut expected: Vec<(String, String)> =
        expected.iter().map(|(k, e)| (k.to_string(), e.to_string())).collect();
    expected.sort();
    assert_eq!(kinds, expected);
    // Every event reached the receiver despite its failures: 4 events, 3 failed calls first.
    let ok_calls = ops.count() - 3;
    assert_eq!(ok_calls, 4, "each event delivered once");
    // The health of the recovered automation: a success after two failures.
    let health = relay.get_json(&format!("{ENDPOINTS}/{a}/health")).await;
    assert_eq!(health["consecutive_failures"], 0, "{health}");
    assert!(health["last_success_at"].is_string() && health["last_failure_at"].is_string());
    let day = &health["windows"][1];
    assert_eq!((day["hours"].as_i64(), day["total"].as_i64()), (Some(24), Some(3)), "{health}");
    assert_eq!(
        (day["status_classes"]["2xx"].as_i64(), day["status_classes"]["5xx"].as_i64()),
        (Some(1), Some(2))
    );
    let ratio = day["success_ratio"].as_f64().unwrap();
    assert!((ratio - 1.0 / 3.0).abs() < 1e-9, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operational_event_queued_before_a_crash_is_sent_after_it() {
    // The operational endpoint is down until the relay has been killed (-9) and restarted.
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let ops = Receiver::with(Arc::new(move |_| match flag.load(Ordering::SeqCst) {
        true => StatusCode::OK.into_response(),
        false => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }))
    .await;
    let secret = signing::new_secret();
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let toml = format!(
        "{}{}",
        delivery_toml(&[("max_attempts", "100"), ("backoff_multiplier", "1.0")]),
        operational_toml(&ops.url("/ops"), &secret, "0.0002", 1000)
    );
    let mut relay = Relay::start(&toml);
    let automation = relay.create_automation("proc_crash", &failing.url("/f")).await;
    let id = automation["id"].as_str().unwrap().to_string();
    relay.send_message("proc_crash", json!({"n": 1})).await;
    let list = relay.get_json(&format!("{ENDPOINTS}?processor_id=hookrelay.operational")).await;
    let op_id = list["data"][0]["id"].as_str().expect("the operational automation").to_string();
    let query = format!("automation_id={op_id}&event_type=endpoint.disabled");
    let tried = relay.wait_logs_at_least(&query, 1).await;
    assert_eq!(tried[0]["external_request_log"]["status_code"], 503);

    relay.kill9();
    up.store(true, Ordering::SeqCst);
    relay.restart();
    let disabled = wait_event(&relay, &ops, &secret, "endpoint.disabled", &id).await;
    assert_eq!(disabled["data"]["trigger"], "automatic");
    // One event, retried under one webhook-id (receivers de-duplicate on it).
    let ids: std::collections::BTreeSet<String> = ops
        .calls()
        .iter()
        .filter(|c| c.body.windows(17).any(|w| w == b"endpoint.disabled"))
        .map(|c| c.headers["webhook-id"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(events_of(&relay, &id).await.len(), 1);
    assert_eq!(relay.get_json(&format!("{ENDPOINTS}/{id}")).await["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operational_endpoint_is_never_disabled_and_its_events_keep_being_queued() {
    // Every operational call fails, for longer than disable_after_hours (0.0003 h = 1.08 s).
    let ops = Receiver::with(Arc::new(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())).await;
    let secret = signing::new_secret();
    let toml = format!(
        "{}{}",
        delivery_toml(&[("max_attempts", "20"), ("backoff_multiplier", "1.0")]),
        operational_toml(&ops.url("/ops"), &secret, "0.0003", 4)
    );
    let relay = Relay::start(&toml);
    let fine = Receiver::ok().await;
    let toggled = relay.create_automation("proc_t", &fine.url("/t")).await;
    let toggled = toggled["id"].as_str().unwrap().to_string();
    let list = relay.get_json(&format!("{ENDPOINTS}?processor_id=hookrelay.operational")).await;
    let op_id = list["data"][0]["id"].as_str().expect("the operational automation").to_string();
    let queued = || async {
        let page =
            relay.get_json("/v1/messages?processor_id=hookrelay.operational&limit=100").await;
        page["data"].as_array().expect("data").len()
    };
    let relay = &relay;
    let flip = |on: bool| {
        let path = format!("{ENDPOINTS}/{toggled}/{}", if on { "enable" } else { "disable" });
        async move { relay.post_json(&path, &json!({})).await }
    };
    flip(false).await;
    relay
        .wait_for(WAIT, "operational calls failing for longer than the threshold", || async {
            let failed = ops.calls().len() >= 3;
            let first = ops.calls().first().map(|c| c.at);
            (failed && first.is_some_and(|t| t.elapsed().as_millis() > 1_500)).then_some(())
        })
        .await;
    for on in [true, false, true] {
        flip(on).await;
    }
    assert_eq!(queued().await, 4, "every enable and disable queued its event");
    let op = relay.get_json(&format!("{ENDPOINTS}/{op_id}")).await;
    assert_eq!(op["enabled"], true, "the operational automation stays enabled: {op}");
    assert!(events_of(relay, &op_id).await.is_empty(), "no disable in its trail");
}
