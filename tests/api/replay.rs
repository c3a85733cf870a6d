use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{assert_error, header, rfc3339_ago, send_ok, ENDPOINTS, WAIT, ZERO_HEX};

// ---------------------------------------------------------------------------------------
// Replay missing: the deliveries an automation never got
// ---------------------------------------------------------------------------------------

fn replay_path(automation: &Value) -> String {
    format!("{ENDPOINTS}/{}/replay-missing", automation["id"].as_str().expect("automation id"))
}

async fn set(relay: &Relay, automation: &Value, change: Value) {
    let path = format!("{ENDPOINTS}/{}", automation["id"].as_str().expect("id"));
    let r = send_ok(relay, Method::PUT, &path, Some(change.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Starts a replay job over the last minute and waits for it to complete.
async fn replay(relay: &Relay, automation: &Value) -> Value {
    let (status, job) =
        relay.post_json(&replay_path(automation), &json!({"since": rfc3339_ago(60)})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_string();
    assert!(id.starts_with("rpl_"), "{job}");
    assert_eq!(job["automation_id"], automation["id"]);
    let done = relay
        .wait_for(WAIT, "replay job completed", || async {
            let j = relay.get_json(&format!("{}/{id}", replay_path(automation))).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    // Both kinds of job share a table and ids are stored without their prefix: the recover
    // job with the same digits does not exist.
    let same_digits = format!("/v1/processors/automations/logs/recover/rcv_{}", &id[4..]);
    let resp = relay.req(reqwest::Method::GET, &same_digits).send().await.expect("get");
    assert_eq!(resp.status(), 404, "a replay job was shown as a recover job");
    done
}

/// The ids of the deliveries of `automation`.
async fn deliveries_of(relay: &Relay, automation: &Value) -> Vec<Value> {
    let page = relay
        .get_json(&format!(
            "/v1/deliveries?limit=100&automation_id={}",
            automation["id"].as_str().unwrap()
        ))
        .await;
    assert!(page["list_metadata"]["after"].is_null(), "{page}");
    page["data"].as_array().expect("data").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_delivers_what_a_disabled_automation_missed_exactly_once() {
    let late = Receiver::ok().await;
    let other = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let a = relay.create_automation("proc_rp", &late.url("/late")).await;
    let b = relay.create_automation("proc_rp", &other.url("/other")).await;
    set(&relay, &a, json!({"enabled": false})).await;

    // While a is disabled: messages to the processor (b gets them, a does not), one message
    // addressed to b alone, and b's test call. Only the first kind is a's to replay.
    let mut missed = BTreeSet::new();
    for i in 0..6 {
        let m = relay.send_message("proc_rp", json!({"i": i})).await;
        assert_eq!(m["delivery_ids"].as_array().unwrap().len(), 1, "{m}");
        missed.insert(m["id"].as_str().unwrap().to_string());
    }
    let (status, to_b) = relay
        .post_json("/v1/messages", &json!({"automation_id": b["id"], "payload": {"b": 1}}))
        .await;
    assert_eq!(status, 202, "{to_b}");
    let (status, _) = relay
        .post_json(
            &format!("/v1/processors/automations/tests/webhook/{}", b["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);

    // Disabled: refused, saying why; nothing created.
    let r = send_ok(
        &relay,
        Method::POST,
        &replay_path(&a),
        Some(json!({"since": rfc3339_ago(60)}).to_string()),
    )
    .await;
    assert_error(&r, 409, "disabled", "replay of a disabled automation");
    assert_eq!(r.body["code"], "automation_disabled", "{}", r.text);
    assert!(deliveries_of(&relay, &a).await.is_empty());

    set(&relay, &a, json!({"enabled": true})).await;
    let job = replay(&relay, &a).await;
    assert_eq!(job["created"], 6, "{job}");
    assert_eq!(job["scanned_through"], job["until"], "{job}");
    assert_eq!(job["done"], 6, "{job}");
    assert_eq!((job["failed"].clone(), job["pending"].clone()), (json!(0), json!(0)), "{job}");
    assert_eq!(job["ended"], "completed", "{job}");
    assert_eq!(job["capped"], false);

    // Each missed message reached a once, signed, with its own webhook-id, logged as a replay.
    let calls = late.calls();
    let got: Vec<String> =
        calls.iter().map(|c| header(&c.headers, "webhook-id").to_string()).collect();
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), missed, "{got:?}");
    assert_eq!(got.len(), missed.len(), "a message was sent twice: {got:?}");
    let secret = a["secret"].as_str().unwrap();
    assert!(calls.iter().all(|c| verify_signature(secret, &c.headers, &c.body)));
    let logs = relay.all_logs(&format!("&automation_id={}", a["id"].as_str().unwrap())).await;
    assert_eq!(logs.len(), 6);
    assert!(logs.iter().all(|l| l["trigger"] == "replay" && l["attempt"] == 1), "{logs:?}");
    let one = missed.iter().next().unwrap();
    let shown = relay.get_json(&format!("/v1/messages/{one}")).await;
    assert_eq!(shown["delivery_count"], 2, "{shown}");

    // Again: nothing is missing any more, nothing is created.
    let again = replay(&relay, &a).await;
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(deliveries_of(&relay, &a).await.len(), 6);
    assert_eq!(late.count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_an_event_types_fix_sends_only_the_types_now_wanted() {
    // Its first call fails: a replayed delivery is retried like any other.
    let receiver = Receiver::failing_first(1, 500).await;
    let relay = Relay::start(common::FAST_RETRIES);
    let (status, a) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "typo", "processor_id": "proc_ty", "webhook_url": receiver.url("/t"),
                    "event_types": ["invoice.payed"]}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    let mut paid = BTreeSet::new();
    for (event_type, n) in [("invoice.paid", 3), ("invoice.void", 2)] {
        for i in 0..n {
            let (status, m) = relay
                .post_json(
                    "/v1/messages",
                    &json!({"processor_id": "proc_ty", "event_type": event_type, "payload": {"i": i}}),
                )
                .await;
            assert_eq!(status, 202, "{m}");
            assert_eq!(m["delivery_ids"], json!([]), "{m}");
            if event_type == "invoice.paid" {
                paid.insert(m["id"].as_str().unwrap().to_string());
            }
        }
    }
    relay.send_message("proc_ty", json!({"untyped": true})).await;

    set(&relay, &a, json!({"event_types": ["invoice.paid"]})).await;
    let job = replay(&relay, &a).await;
    assert_eq!(job["created"], 3, "{job}");
    assert_eq!(job["done"], 3, "{job}");
    let got: BTreeSet<String> =
        receiver.calls().iter().map(|c| header(&c.headers, "webhook-id").to_string()).collect();
    assert_eq!(got, paid);
    assert_eq!(receiver.count(), 4);
    let logs = relay.all_logs(&format!("&automation_id={}", a["id"].as_str().unwrap())).await;
    let triggers: Vec<(&str, u64)> = logs
        .iter()
        .map(|l| (l["trigger"].as_str().unwrap(), l["attempt"].as_u64().unwrap()))
        .collect();
    assert_eq!(triggers.iter().filter(|t| **t == ("replay", 1)).count(), 3, "{triggers:?}");
    assert_eq!(triggers.iter().filter(|t| **t == ("retry", 2)).count(), 1, "{triggers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_unknown_automations_and_bad_windows() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let a = relay.create_automation("proc_bad", &receiver.url("/x")).await;
    let since = json!({"since": rfc3339_ago(60)}).to_string();
    for id in [format!("endp_{ZERO_HEX}"), "endp_nope".to_string()] {
        let path = format!("{ENDPOINTS}/{id}/replay-missing");
        let r = send_ok(&relay, Method::POST, &path, Some(since.clone())).await;
        assert_error(&r, 404, "automation", &path);
    }
    for (body, field) in [
        (json!({"since": "last tuesday"}), "since"),
        (json!({"since": 12.5}), "since"),
        (json!({"until": rfc3339_ago(0)}), "since"),
        (json!({"since": rfc3339_ago(60), "until": "soon"}), "until"),
        (json!({"since": rfc3339_ago(0), "until": rfc3339_ago(60)}), "until"),
    ] {
        let r = send_ok(&relay, Method::POST, &replay_path(&a), Some(body.to_string())).await;
        assert_error(&r, 400, field, &body.to_string());
    }

    // A job is shown under its own automation only.
    let (status, job) = relay.post_json(&replay_path(&a), &json!({"since": rfc3339_ago(60)})).await;
    assert_eq!(status, 202, "{job}");
    let b = relay.create_automation("proc_bad", &receiver.url("/y")).await;
    let jid = job["id"].as_str().unwrap();
    let r = send_ok(&relay, Method::GET, &format!("{}/{jid}", replay_path(&b)), None).await;
    assert_error(&r, 404, "replay job", "another automation's job");
    for bad in [format!("rpl_{ZERO_HEX}"), format!("rcv_{ZERO_HEX}")] {
        let r = send_ok(&relay, Method::GET, &format!("{}/{bad}", replay_path(&a)), None).await;
        assert_error(&r, 404, "replay job", &bad);
    }
}

/// Replay leaves the relay's own `hookrelay.` messages (test calls) out, so a producer may not
/// post one: it would be delivered live, then never replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relays_own_event_type_prefix_is_refused_at_ingest() {
    let relay = Relay::start("");
    for event_type in ["hookrelay.test", "hookrelay.anything"] {
        let body = json!({"processor_id": "p", "event_type": event_type, "payload": {}});
        let r = send_ok(&relay, Method::POST, "/v1/messages", Some(body.to_string())).await;
        assert_error(&r, 400, "event_type", event_type);
    }
    let body = json!({"processor_id": "p", "event_type": "hookrelay_test", "payload": {}});
    let (status, _) = relay.post_json("/v1/messages", &body).await;
    assert_eq!(status, 202, "only the `hookrelay.` prefix is reserved");
}
