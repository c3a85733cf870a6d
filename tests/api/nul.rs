//! Attack finding F5: the NUL character (`\u0000`), which PostgreSQL's text cannot hold,
//! gets one answer on both backends and never a 500: a stored text field holding it is a
//! 400 naming the field, a list filter holding it matches nothing (200, an empty page), and
//! an id in a path holding it names nothing (404).

use reqwest::Method;
use serde_json::json;

use crate::common::apps::{demo_app, DEMO_KEY};
use crate::common::{Receiver, Relay};
use crate::helpers::{assert_error, send, send_ok, LOGS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_text_holding_nul_is_refused_naming_the_field() {
    let relay = Relay::start("");
    let refused = [
        ("/v1/messages", json!({"processor_id": "p\u{0}x", "payload": {}}), "processor_id"),
        (
            "/v1/messages",
            json!({"processor_id": "p", "event_type": "e\u{0}", "payload": {}}),
            "event_type",
        ),
        ("/v1/spreadsheets", json!({"title": "t\u{0}"}), "title"),
        ("/v1/spreadsheets", json!({"title": "t", "sheets": ["a\u{0}"]}), "sheets.0"),
        (
            "/v1/processors/automations/logs/recover",
            json!({"since": "1h", "event_type": "e\u{0}", "dry_run": true}),
            "event_type",
        ),
    ];
    for (path, body, field) in refused {
        let r = send_ok(&relay, Method::POST, path, Some(body.to_string())).await;
        assert_error(&r, 400, "NUL", &format!("{path} {body}"));
        assert_eq!(r.body["field"], field, "{path}: {}", r.text);
    }
    // Nothing was stored: no message, no spreadsheet.
    assert_eq!(relay.get_json("/v1/messages").await["data"], json!([]));
    assert_eq!(relay.get_json("/v1/spreadsheets").await["data"], json!([]), "spreadsheets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_filter_holding_nul_matches_nothing() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("[delivery]\npoll_interval_ms = 50\n");
    relay.create_automation("p", &receiver.url("/hook")).await;
    relay.send_message("p", json!({"n": 1})).await;
    relay.wait_logs_exactly("", 1).await;

    let filtered = [
        "/v1/messages?processor_id=p%00x",
        "/v1/messages?event_type=%00",
        &format!("{LOGS}?event_type=%00"),
        &format!("{LOGS}?webhook_url=%00"),
        &format!("{LOGS}?url_contains=%00"),
        &format!("{LOGS}?url_contains=hook%00"),
        "/v1/processors/p%00/automations/logs",
        "/v1/processors/automations/endpoints?name=%00",
        "/v1/processors/automations/endpoints?processor_id=p%00",
    ];
    for path in filtered {
        let r = send_ok(&relay, Method::GET, path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["data"], json!([]), "{path}: {}", r.text);
    }
    // The same filters without the NUL find the message, its log and its automation.
    for path in [
        "/v1/messages?processor_id=p",
        &format!("{LOGS}?url_contains=hook"),
        "/v1/processors/automations/endpoints?processor_id=p",
    ] {
        let r = send_ok(&relay, Method::GET, path, None).await;
        assert_eq!(r.body["data"].as_array().map(Vec::len), Some(1), "{path}: {}", r.text);
    }
}

/// Path ids holding NUL name nothing: 404 on both backends (SQLite's answer), never a 500
/// from PostgreSQL's text. The workflow run and task ids are looked up as text; the others
/// are parsed, or compared once found, and are here so that none comes to be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_id_holding_nul_names_nothing() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(&format!("[delivery]\npoll_interval_ms = 50\n{}", demo_app()));
    let app = [("Authorization", format!("Bearer {DEMO_KEY}"))];
    let run = json!({"inputs": {"name": "A"}, "response_mode": "blocking", "user": "u"});
    let r = send(&relay, Method::POST, "/v1/workflows/run", &app, Some(run.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (run_id, task) = (r.body["workflow_run_id"].as_str(), r.body["task_id"].as_str());
    let (run_id, task) = (run_id.expect("a run id"), task.expect("a task id"));
    let stop = Some(json!({"user": "u"}).to_string());
    for (method, path, body, what) in [
        (Method::GET, format!("/v1/workflows/run/{run_id}%00"), None, "workflow run"),
        (Method::GET, "/v1/workflows/run/%00".into(), None, "workflow run"),
        (Method::POST, format!("/v1/workflows/tasks/{task}%00/stop"), stop.clone(), "task"),
    ] {
        let r = send(&relay, method, &path, &app, body).await;
        assert_error(&r, 404, what, &path);
    }
    let r = send(&relay, Method::GET, &format!("/v1/workflows/run/{run_id}"), &app, None).await;
    assert_eq!(r.status, 200, "the same id without NUL names the run: {}", r.text);

    relay.create_automation("p", &receiver.url("/hook")).await;
    relay.send_message("p", json!({"n": 1})).await;
    let log = relay.wait_logs_exactly("", 1).await[0]["id"].as_str().expect("id").to_string();
    for (method, path, what) in [
        (Method::POST, format!("/v1/processors/p%00/automations/logs/{log}/rerun"), "log"),
        (Method::GET, format!("/v1/processors/p%00/automations/logs/{log}"), "log"),
        (Method::POST, format!("{LOGS}/{log}%00/rerun"), "log"),
        (Method::GET, "/v1/processors/automations/logs/recover/x%00".into(), "recover job"),
        (Method::GET, "/v1/deliveries/x%00".into(), "delivery"),
        (Method::DELETE, "/v1/keys/x%00".into(), "key"),
    ] {
        let r = send_ok(&relay, method, &path, None).await;
        assert_error(&r, 404, what, &path);
    }
}
