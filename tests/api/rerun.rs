use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::ssrf::{assert_no_failures, check_refused, Matrix, GUARD_ON};
use crate::common::{self, verify_signature, Receiver, Relay, KEY};
use crate::helpers::{
    assert_error, assert_external_request_log, assert_uiform_log, header, retries, send, send_ok,
    ENDPOINTS, LOGS,
};

// ---------------------------------------------------------------------------------------
// 6. Rerun
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_resends_the_stored_request_and_links_the_new_log() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_rr", &receiver.url("/rr")).await;
    let secret = automation["secret"].as_str().unwrap().to_string();
    relay.send_message("proc_rr", json!({"order": 42, "nested": {"a": [1, 2, 3]}})).await;
    let logs = relay.wait_logs_exactly("", 1).await;
    let original = logs[0].clone();
    let oid = original["id"].as_str().unwrap().to_string();
    assert_eq!(original["trigger"], "initial");
    // webhook-timestamp has one-second resolution: make sure a fresh one differs.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let r = send(
        &relay,
        Method::POST,
        &format!("{LOGS}/{oid}/rerun"),
        &[("Api-Key", KEY.to_string()), ("Content-Length", "0".to_string())],
        Some(String::new()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.body;
    assert_external_request_log(&answer);
    assert_eq!(answer["status_code"], 200);
    assert!(answer["error"].is_null(), "{answer}");
    assert_eq!(answer["request_body"], json!({"order": 42, "nested": {"a": [1, 2, 3]}}));
    assert_eq!(answer["response_body"], json!({"ok": true}));
    assert_eq!(answer["webhook_url"], receiver.url("/rr"));
    let new_id = answer["id"].as_str().expect("id of the new log").to_string();
    assert!(new_id.starts_with("log_auto_") && new_id != oid, "{new_id}");

    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].body, calls[0].body, "rerun body differs");
    assert_eq!(header(&calls[1].headers, "webhook-id"), header(&calls[0].headers, "webhook-id"));
    let ts = |c: &common::Received| header(&c.headers, "webhook-timestamp").parse::<i64>().unwrap();
    assert!(ts(&calls[1]) > ts(&calls[0]), "timestamp not fresh");
    assert_ne!(
        header(&calls[1].headers, "webhook-signature"),
        header(&calls[0].headers, "webhook-signature")
    );
    assert!(verify_signature(&secret, &calls[1].headers, &calls[1].body));

    let new_log = relay.get_json(&format!("{LOGS}/{new_id}")).await;
    assert_uiform_log(&new_log);
    assert_eq!(new_log["trigger"], "rerun");
    assert_eq!(new_log["rerun_of"], oid.as_str());
    assert_eq!(new_log["external_request_log"]["status_code"], 200);
    let unchanged = relay.get_json(&format!("{LOGS}/{oid}")).await;
    assert_eq!(unchanged, original, "the original log changed");

    // Processor-scoped rerun, and a wrong processor.
    let scoped = format!("/v1/processors/proc_rr/automations/logs/{oid}");
    let got = relay.get_json(&scoped).await;
    assert_eq!(got, original);
    let r = send_ok(&relay, Method::POST, &format!("{scoped}/rerun"), Some(String::new())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_external_request_log(&r.body);
    let scoped_new = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(receiver.count(), 3);
    let l = relay.get_json(&format!("{LOGS}/{scoped_new}")).await;
    assert_eq!(l["trigger"], "rerun");
    assert_eq!(l["rerun_of"], oid.as_str());

    let wrong = format!("/v1/processors/proc_other/automations/logs/{oid}");
    let r = send_ok(&relay, Method::GET, &wrong, None).await;
    assert_error(&r, 404, "", "scoped GET, wrong processor");
    let r = send_ok(&relay, Method::POST, &format!("{wrong}/rerun"), Some(String::new())).await;
    assert_error(&r, 404, "", "scoped rerun, wrong processor");
    // A rerun calls before it answers, so a refused one that had called would show already.
    assert_eq!(receiver.count(), 3, "a refused rerun reached the receiver");

    // A rerun without any content type is fine too.
    let r = send(
        &relay,
        Method::POST,
        &format!("{LOGS}/{oid}/rerun"),
        &[("Api-Key", KEY.to_string())],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(receiver.count(), 4);
    let all = relay.all_logs("").await;
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|l| l["trigger"] == "rerun").count(), 3);

    // A rerun goes to the URL the original call went to, even after the automation moved.
    let moved = Receiver::ok().await;
    let aid = automation["id"].as_str().unwrap();
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(json!({"webhook_url": moved.url("/moved")}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        send_ok(&relay, Method::POST, &format!("{LOGS}/{oid}/rerun"), Some(String::new())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["webhook_url"], receiver.url("/rr"));
    assert_eq!(receiver.count(), 5);
    assert_eq!(moved.count(), 0);

    // With the automation deleted there is no secret to sign with: a clear error, no call.
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        send_ok(&relay, Method::POST, &format!("{LOGS}/{oid}/rerun"), Some(String::new())).await;
    // The log is still there (404 would say it is not): the conflict is its deleted automation.
    assert_error(&r, 409, "deleted", "rerun after delete");
    assert_eq!(r.body["code"], "automation_deleted", "{}", r.text);
    assert_eq!(receiver.count(), 5);
    assert_eq!(relay.all_logs("").await.len(), 5);
}

/// Creates an automation calling `url` under its own processor, posts one message, and
/// returns the log of that (single) attempt.
async fn first_log(relay: &Relay, processor: &str, url: &str) -> serde_json::Value {
    let automation = relay.create_automation(processor, url).await;
    relay.send_message(processor, json!({"to": url})).await;
    let id = automation["id"].as_str().expect("automation id");
    relay.wait_logs_exactly(&format!("&automation_id={id}"), 1).await.remove(0)
}

/// Reruns log `id`; the answer (an `ExternalRequestLog`) and the new log as stored.
async fn rerun_of(relay: &Relay, id: &str) -> (serde_json::Value, serde_json::Value) {
    let r = send_ok(relay, Method::POST, &format!("{LOGS}/{id}/rerun"), Some(String::new())).await;
    assert_eq!(r.status, 200, "rerun of {id}: {}", r.text);
    let new_id = r.body["id"].as_str().expect("id of the new log");
    let stored = relay.get_json(&format!("{LOGS}/{new_id}")).await;
    assert_eq!(stored["trigger"], "rerun");
    assert_eq!(stored["rerun_of"], id);
    (r.body, stored)
}

// SSRF guard on: a rerun goes through the same guard as the delivery it repeats, for every
// internal target of the matrix and for a public receiver redirecting to an internal one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_refuse_every_internal_target() {
    let matrix = Matrix::start().await;
    let relay =
        Relay::start_with_env(&format!("{}{}", retries(1), matrix.security_toml()), &GUARD_ON);

    // Controls: pinned public.example is reachable by reruns; a redirect to it stays E_HTTP_STATUS.
    let ok = first_log(&relay, "ctl_ok", &matrix.public_url("/ok")).await;
    let (answer, _) = rerun_of(&relay, ok["id"].as_str().expect("id")).await;
    assert_eq!(answer["status_code"], 200, "{answer}");
    assert!(answer["error"].is_null(), "{answer}");
    let to_public = first_log(&relay, "ctl_redirect", &matrix.public_url("/to-public")).await;
    let (answer, stored) = rerun_of(&relay, to_public["id"].as_str().expect("id")).await;
    assert_eq!(answer["status_code"], 302, "{answer}");
    assert_eq!(stored["error_code"], "E_HTTP_STATUS", "{stored}");

    let mut failures = Vec::new();
    for (i, target) in matrix.targets().iter().enumerate() {
        let original = first_log(&relay, &format!("ssrf_{i}"), &target.url).await;
        let (answer, stored) = rerun_of(&relay, original["id"].as_str().expect("id")).await;
        let message = answer["error"].as_str().unwrap_or("");
        if !message.starts_with("E_BLOCKED_TARGET") {
            failures.push(format!("{}: rerun answered error {message:?}", target.name));
        }
        failures.extend(check_refused(
            target,
            &stored["error_code"],
            &answer["status_code"],
            message,
        ));
    }
    assert_no_failures("reruns", &failures);
    matrix.assert_only_public_calls(2, &["/ok", "/ok", "/to-public", "/to-public"]);
}
