use serde_json::{json, Value};

use crate::common::ssrf::{assert_no_failures, check_refused, Matrix, GUARD_ON};
use crate::common::{Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, WAIT};

/// Creates an automation for `url` under its own processor and posts one message to it;
/// returns the automation id and the delivery id.
async fn deliver(relay: &Relay, processor: &str, url: &str) -> (String, String) {
    let automation = relay.create_automation(processor, url).await;
    let id = automation["id"].as_str().expect("automation id").to_string();
    let message = relay.send_message(processor, json!({"to": url})).await;
    (id, first_delivery(&message))
}

/// The one log of delivery `id`, once the delivery has ended.
async fn only_log(relay: &Relay, id: &str) -> (Value, Value) {
    let ended = relay
        .wait_for(WAIT, &format!("delivery {id} to end"), || async {
            let d = relay.delivery(id).await;
            (d["status"] != "pending").then_some(d)
        })
        .await;
    let logs = relay.logs_of(id).await;
    assert_eq!(logs.len(), 1, "one attempt for delivery {id}: {logs:?}");
    (ended, logs[0].clone())
}

// 7. SSRF guard on (the default): every internal target is refused when delivering, and by
// the test call of the same automation; a public receiver's redirect to an internal target
// is recorded as refused, and never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_internal_target_is_refused_for_deliveries_and_test_calls() {
    let matrix = Matrix::start().await;
    let toml = format!("{}{}", delivery_toml(&[("max_attempts", "1")]), matrix.security_toml());
    let relay = Relay::start_with_env(&toml, &GUARD_ON);

    // Controls: the pin reaches public.example through the same client, and a redirect to
    // an allowed target stays a plain non-2xx.
    let (_, ok) = deliver(&relay, "ctl_ok", &matrix.public_url("/ok")).await;
    let (_, to_public) = deliver(&relay, "ctl_redirect", &matrix.public_url("/to-public")).await;
    let targets = matrix.targets();
    let mut sent = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        sent.push((target, deliver(&relay, &format!("ssrf_{i}"), &target.url).await));
    }

    let (ended, log) = only_log(&relay, &ok).await;
    assert_eq!(ended["status"], "succeeded", "pinned public.example: {log}");
    let (ended, log) = only_log(&relay, &to_public).await;
    assert_eq!(ended["status"], "exhausted");
    assert_eq!(log["error_code"], "E_HTTP_STATUS", "a redirect to an allowed target: {log}");
    assert_eq!(log["external_request_log"]["status_code"], 302);

    let mut failures = Vec::new();
    for (target, (automation_id, delivery_id)) in &sent {
        let (ended, log) = only_log(&relay, delivery_id).await;
        let call = &log["external_request_log"];
        let message = call["error"].as_str().unwrap_or("");
        failures.extend(check_refused(target, &log["error_code"], &call["status_code"], message));
        if ended["status"] != "exhausted" {
            failures.push(format!("{}: delivery ended {}", target.name, ended["status"]));
        }
        let (status, test) = relay
            .post_json(
                &format!("/v1/processors/automations/tests/webhook/{automation_id}"),
                &json!({}),
            )
            .await;
        let call = &test["external_request_log"];
        let message = call["error"].as_str().unwrap_or("");
        match status {
            200 => failures.extend(
                check_refused(target, &test["error_code"], &call["status_code"], message)
                    .map(|f| format!("test call: {f}")),
            ),
            other => failures.push(format!("{}: test call answered {other}: {test}", target.name)),
        }
    }
    assert_no_failures("deliveries and test calls", &failures);
    matrix.assert_only_public_calls(2, &["/ok", "/to-public"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_cidrs_open_only_the_listed_network() {
    let receiver = Receiver::ok().await;
    let port = receiver.addr.port();
    let extra = format!(
        "{}\n[security]\nallowed_cidrs = [\"127.0.0.0/8\"]\n",
        delivery_toml(&[("max_attempts", "1")])
    );
    let relay = Relay::start_with_env(&extra, &GUARD_ON);
    relay.create_automation("proc_v4", &format!("http://127.0.0.1:{port}/ok")).await;
    relay.create_automation("proc_v6", &format!("http://[::1]:{port}/no")).await;
    let allowed = first_delivery(&relay.send_message("proc_v4", json!({"v": 4})).await);
    let refused = first_delivery(&relay.send_message("proc_v6", json!({"v": 6})).await);
    relay.wait_delivery_ends(&allowed, "succeeded").await;
    relay.wait_delivery_ends(&refused, "exhausted").await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(relay.logs_of(&allowed).await[0]["external_request_log"]["status_code"], 200);
    assert_eq!(relay.logs_of(&refused).await[0]["error_code"], "E_BLOCKED_TARGET");
}
