//! Issue 10, item 5: the log filters operators reach for. `success=false` finds every failed
//! call, those that got no answer (`E_CONNECTION`, status 0) included, which
//! `status_class=5xx` misses; `error_code`, `trigger` and `event_type` (the message's) narrow
//! to exactly the matching logs, alone, combined, processor-scoped and across cursor pages;
//! a value that cannot match is a 400 naming the filter.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::cursor::walk_after;
use crate::helpers::{assert_error, ids_of, retries, send_ok, LOGS};

/// Posts a message of `event_type` (none when `None`) to `processor_id`; returns its id.
async fn send_event(relay: &Relay, processor_id: &str, event_type: Option<&str>) -> String {
    let body = json!({"processor_id": processor_id, "event_type": event_type, "payload": {"n": 1}});
    let (status, answer) = relay.post_json("/v1/messages", &body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().expect("message id").to_string()
}

/// Asserts that the logs list with `query` serves (every page, oldest first) exactly the logs
/// of `all` (oldest first) for which `keep` holds.
async fn assert_exactly(relay: &Relay, query: &str, all: &[Value], keep: impl Fn(&Value) -> bool) {
    let got = ids_of(&relay.all_logs(&format!("&{query}")).await);
    let want: Vec<Value> = all.iter().filter(|l| keep(l)).cloned().collect();
    assert_eq!(got, ids_of(&want), "{query}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_find_failed_calls_by_code_trigger_and_event_type() {
    let ok = Receiver::ok().await;
    let down =
        Receiver::with(Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()))
            .await;
    // Two attempts each: a first attempt and one retry for every failed call.
    let relay = Relay::start(&retries(2));
    let a_ok = relay.create_automation("pf", &ok.url("/ok")).await;
    relay.create_automation("pf", &down.url("/down")).await;
    // Nothing listens on port 1: every call is refused, no HTTP answer (status 0).
    let dead = relay.create_automation("pf", "http://127.0.0.1:1/dead").await;
    relay.create_automation("pg", &ok.url("/g")).await;

    let paid = send_event(&relay, "pf", Some("invoice.paid")).await;
    let created = send_event(&relay, "pf", Some("invoice.created")).await;
    send_event(&relay, "pf", None).await;
    let paid_g = send_event(&relay, "pg", Some("invoice.paid")).await;
    // pf: 3 messages × (1 ok + 2 × 503 + 2 × refused); pg: 1.
    let attempts = relay.wait_logs_exactly("", 16).await;
    let first_paid_ok = attempts
        .iter()
        .find(|l| l["message_id"] == paid.as_str() && l["automation_id"] == a_ok["id"])
        .expect("the ok log of the paid message");
    let rerun = format!("{LOGS}/{}/rerun", first_paid_ok["id"].as_str().unwrap());
    assert_eq!(send_ok(&relay, Method::POST, &rerun, Some(String::new())).await.status, 200);
    let test = format!("/v1/processors/automations/tests/webhook/{}", a_ok["id"].as_str().unwrap());
    assert_eq!(send_ok(&relay, Method::POST, &test, None).await.status, 200);
    let all = relay.wait_logs_exactly("", 18).await;

    let code = |l: &Value| l["error_code"].as_str().map(str::to_string);
    let status = |l: &Value| l["external_request_log"]["status_code"].as_u64().unwrap();
    let refused: Vec<&Value> =
        all.iter().filter(|l| code(l).as_deref() == Some("E_CONNECTION")).collect();
    assert_eq!(refused.len(), 6, "the refused calls were logged as E_CONNECTION");
    assert!(refused.iter().all(|l| status(l) == 0 && l["automation_id"] == dead["id"]));

    // success: no error code; a failure is any call with one, answered or not.
    assert_exactly(&relay, "success=false", &all, |l| code(l).is_some()).await;
    assert_exactly(&relay, "success=true", &all, |l| code(l).is_none()).await;
    assert_eq!(relay.all_logs("&success=false").await.len(), 12);
    assert!(all.iter().filter(|l| code(l).is_none()).all(|l| status(l) == 200));
    // status_class=5xx sees the 503s only, not the calls that got no answer.
    let fives = ids_of(&relay.all_logs("&status_class=5xx").await);
    assert_eq!(fives.len(), 6);
    assert!(refused.iter().all(|l| !fives.contains(&l["id"].as_str().unwrap().to_string())));
    assert_exactly(&relay, "status_code=0", &all, |l| status(l) == 0).await;

    for c in ["E_CONNECTION", "E_HTTP_STATUS", "E_TIMEOUT"] {
        assert_exactly(&relay, &format!("error_code={c}"), &all, |l| code(l).as_deref() == Some(c))
            .await;
    }
    assert_eq!(relay.all_logs("&error_code=E_HTTP_STATUS").await.len(), 6);

    for t in ["initial", "retry", "rerun", "recover", "test"] {
        assert_exactly(&relay, &format!("trigger={t}"), &all, |l| l["trigger"] == t).await;
    }
    assert_eq!(relay.all_logs("&trigger=retry").await.len(), 6);
    assert_eq!(relay.all_logs("&trigger=rerun").await.len(), 1);
    assert_eq!(relay.all_logs("&trigger=test").await.len(), 1);

    // The message's event type; the rerun of a paid log is paid too.
    let paid_ids: HashSet<&str> = [paid.as_str(), paid_g.as_str()].into();
    let is_paid = |l: &Value| paid_ids.contains(l["message_id"].as_str().unwrap());
    assert_exactly(&relay, "event_type=invoice.paid", &all, is_paid).await;
    assert_eq!(relay.all_logs("&event_type=invoice.paid").await.len(), 7);
    assert_exactly(&relay, "event_type=invoice.created", &all, |l| {
        l["message_id"] == created.as_str()
    })
    .await;
    assert_exactly(&relay, "event_type=hookrelay.test", &all, |l| l["trigger"] == "test").await;
    assert_exactly(&relay, "event_type=refund", &all, |_| false).await;

    // Combined, and under the processor scope.
    assert_exactly(&relay, "success=false&event_type=invoice.paid", &all, |l| {
        code(l).is_some() && is_paid(l)
    })
    .await;
    assert_exactly(&relay, "trigger=retry&error_code=E_CONNECTION", &all, |l| {
        l["trigger"] == "retry" && code(l).as_deref() == Some("E_CONNECTION")
    })
    .await;
    let scoped = "/v1/processors/pg/automations/logs?limit=100&event_type=invoice.paid";
    let g = relay.get_json(scoped).await;
    assert_eq!(ids_of(g["data"].as_array().unwrap()).len(), 1, "{g}");
    assert_eq!(g["data"][0]["message_id"], paid_g.as_str());
    let scoped = "/v1/processors/pf/automations/logs?limit=100&success=false&trigger=initial";
    let f = relay.get_json(scoped).await;
    assert_eq!(f["data"].as_array().unwrap().len(), 6, "{f}");

    // Pages of a filter served by its own index.
    let failed: Vec<String> =
        ids_of(&all.iter().filter(|l| code(l).is_some()).cloned().collect::<Vec<_>>());
    let pages = walk_after(&relay, &format!("{LOGS}?success=false"), "asc", 5).await;
    assert_eq!(pages.concat(), failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filter_values_that_cannot_match_are_400() {
    let relay = Relay::start("");
    let long = "e".repeat(129);
    let cases = [
        ("error_code=E_NOPE", "error_code"),
        ("error_code=e_connection", "error_code"),
        ("error_code=", "error_code"),
        ("success=yes", "success"),
        ("success=", "success"),
        ("trigger=manual", "trigger"),
        ("trigger=", "trigger"),
        ("event_type=", "event_type"),
        ("status_code=999", "status_code"),
        ("status_code=42", "status_code"),
    ];
    let long_case = format!("event_type={long}");
    for (query, field) in cases.iter().copied().chain([(long_case.as_str(), "event_type")]) {
        for list in [LOGS, "/v1/processors/p1/automations/logs"] {
            let path = format!("{list}?{query}");
            let r = send_ok(&relay, Method::GET, &path, None).await;
            assert_error(&r, 400, field, &path);
            assert_eq!(r.body["field"], field, "{path}: {}", r.text);
            assert_eq!(r.body["code"], "invalid_param", "{path}: {}", r.text);
        }
    }
    // The valid codes are listed, so a typo can be fixed from the answer.
    let r = send_ok(&relay, Method::GET, &format!("{LOGS}?error_code=E_CONNECT"), None).await;
    assert!(r.body["message"].as_str().unwrap().contains("E_CONNECTION"), "{}", r.text);
}
