//! Each finished run becomes uiform's `WebhookRequest` for the automations whose
//! processor_id is the app id: body checked field by field, signature verified, the
//! AutomationLog filled from the run, and `event_types` choosing which final statuses.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common::{verify_signature, Receiver, Relay};
use crate::helpers::{automation_with, branch, edges, wait_calls, App};

const KEY: &str = "app-intake-key-0123456789";
const FILE_URL: &str = "https://files.example.com/docs/report.pdf?sig=abc";

/// start → failing? (if-else on `mode`) → false: greet → end | true: boom (refused call) → end_x
const APP: &str = r#"
[[apps]]
id = "intake"
api_keys = ["app-intake-key-0123456789"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
[[apps.inputs]]
type = "select"
variable = "mode"
options = ["ok", "fail"]
default = "ok"
[[apps.inputs]]
type = "file"
variable = "doc"
[apps.file_upload]
enabled = true
allowed_types = ["document"]
transfer_methods = ["remote_url", "local_file"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "failing"
type = "if-else"
conditions = [{ variable_selector = ["start", "mode"], comparison_operator = "is", value = "fail" }]
[[apps.nodes]]
id = "greet"
type = "template-transform"
template = "Hi {{ name }}"
variables = [{ variable = "name", value_selector = ["start", "name"] }]
[[apps.nodes]]
id = "boom"
type = "http-request"
url = "http://127.0.0.1:9/refused"
timeout_secs = 2
[[apps.nodes]]
id = "end"
type = "end"
outputs = [
  { variable = "greeting", value_selector = ["greet", "output"] },
  { variable = "name", value_selector = ["start", "name"] },
]
[[apps.nodes]]
id = "end_x"
type = "end"
outputs = [{ variable = "status", value_selector = ["boom", "status_code"] }]
"#;

fn config() -> String {
    format!(
        "{APP}{}{}{}",
        edges(&[("start", "failing"), ("greet", "end"), ("boom", "end_x")]),
        branch("failing", "false", "greet"),
        branch("failing", "true", "boom"),
    )
}

fn by_run<'a>(
    calls: &'a [(crate::common::Received, Value)],
    run: &str,
) -> &'a (crate::common::Received, Value) {
    calls
        .iter()
        .find(|(_, b)| b["metadata"]["workflow_run_id"] == run)
        .unwrap_or_else(|| panic!("no webhook for run {run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_webhooks_are_signed_and_carry_the_run_field_by_field() {
    let relay = Relay::start(&config());
    let all = Receiver::ok().await;
    let failed_only = Receiver::ok().await;
    let a = relay.create_automation("intake", &all.url("/all")).await;
    let b = automation_with(
        &relay,
        "intake",
        &failed_only.url("/failed"),
        json!({"event_types": ["workflow_run.failed"]}),
    )
    .await;
    let other = Receiver::ok().await;
    relay.create_automation("some-other-processor", &other.url("/x")).await;
    let api = App::new(&relay, KEY);

    let (status, one) = api
        .run(&json!({"inputs": {"name": "Ada"}, "user": "ada@example.com", "response_mode": "blocking",
                      "files": [{"type": "document", "transfer_method": "remote_url", "url": FILE_URL}]}))
        .await;
    assert_eq!(status, 200, "{one}");
    let two = api.blocking(json!({"name": "Bob"}), "bob-42").await;
    let three = api.blocking(json!({"name": "Cy", "mode": "fail"}), "cy@example.org").await;
    assert_eq!(one["data"]["status"], "succeeded");
    assert_eq!(three["data"]["status"], "failed", "{three}");
    let id = |b: &Value| b["workflow_run_id"].as_str().expect("id").to_string();
    let (r1, r2, r3) = (id(&one), id(&two), id(&three));

    let calls = wait_calls(&relay, &all, 3).await;
    let secret = a["secret"].as_str().expect("secret");
    for (call, _) in &calls {
        assert!(verify_signature(secret, &call.headers, &call.body), "signature verifies");
    }

    // Run 1: an email user and a remote file.
    let (_, w) = by_run(&calls, &r1);
    let keys: HashSet<&str> = w.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["completion", "user", "file_payload", "metadata"]), "{w}");
    let data = &one["data"];
    let c = &w["completion"];
    assert_eq!(c["object"], "chat.completion");
    assert!(c["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(c["model"].is_string());
    assert_eq!(c["created"], data["created_at"]);
    let choice = &c["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    let content: Value =
        serde_json::from_str(choice["message"]["content"].as_str().expect("content"))
            .expect("JSON");
    assert_eq!(
        content,
        json!({"greeting": "Hi Ada", "name": "Ada"}),
        "content = JSON of the outputs"
    );
    assert_eq!(choice["message"]["parsed"], data["outputs"], "parsed = the outputs object");
    assert_eq!(c["usage"]["total_tokens"], data["total_tokens"]);
    assert_eq!(c["usage"]["total_tokens"], 0);
    assert_eq!(c["extraction_id"], r1.as_str());
    let request_at =
        chrono::DateTime::parse_from_rfc3339(c["request_at"].as_str().expect("request_at"))
            .expect("RFC 3339");
    assert_eq!(Some(request_at.timestamp()), data["created_at"].as_i64());
    assert_eq!(w["user"], "ada@example.com");
    assert_eq!(w["file_payload"]["filename"], "report.pdf");
    assert_eq!(w["file_payload"]["url"], FILE_URL);
    assert_eq!(w["file_payload"]["metadata"]["type"], "document");
    assert_eq!(w["file_payload"]["metadata"]["transfer_method"], "remote_url");
    let m = &w["metadata"];
    assert_eq!(m["workflow_run_id"], r1.as_str());
    assert_eq!(m["task_id"], one["task_id"]);
    assert_eq!(m["workflow_id"], "intake");
    assert_eq!(m["status"], "succeeded");
    assert_eq!(m["error"], Value::Null);
    assert_eq!(m["elapsed_time"], data["elapsed_time"]);
    assert_eq!(m["total_tokens"], 0);
    assert_eq!(m["total_steps"], data["total_steps"]);
    assert_eq!(m["total_steps"], 4);
    assert_eq!(m["user"], "ada@example.com");

    // Run 2: a user that is not an email, no files.
    let (_, w) = by_run(&calls, &r2);
    assert_eq!(w["user"], Value::Null);
    assert_eq!(w["metadata"]["user"], "bob-42", "the raw user is kept in metadata");
    // uiform's WebhookRequest requires a file_payload (MIMEData): without files, the run's
    // inputs are sent as a JSON document.
    let file = &w["file_payload"];
    assert_eq!(file["filename"], format!("{r2}-inputs.json"));
    let encoded =
        file["url"].as_str().and_then(|u| u.strip_prefix("data:application/json;base64,"));
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        encoded.expect("a JSON data URL"),
    )
    .expect("base64");
    let document: Value = serde_json::from_slice(&decoded).expect("JSON");
    assert_eq!(document, json!({"name": "Bob", "mode": "ok"}), "the inputs, default applied");
    assert_eq!(file["metadata"]["source"], "inputs");
    assert_eq!(w["completion"]["choices"][0]["message"]["parsed"]["greeting"], "Hi Bob");

    // Run 3: failed.
    let (_, w) = by_run(&calls, &r3);
    assert_eq!(w["metadata"]["status"], "failed");
    let error = w["metadata"]["error"].as_str().expect("error");
    assert!(error.contains("boom"), "names the failing node: {error}");
    assert_eq!(three["data"]["error"], error);
    assert_eq!(w["user"], "cy@example.org");

    // event_types: the failed-only automation got run 3 and nothing else.
    let failed_calls = wait_calls(&relay, &failed_only, 1).await;
    // A run's message and its deliveries are stored before any call: no wait is needed.
    let b_id = b["id"].as_str().expect("id");
    assert_eq!(relay.deliveries_of(b_id).await.len(), 1, "only the failed run is delivered");
    assert_eq!(failed_only.count(), 1, "only the failed run");
    assert_eq!(failed_calls[0].1["metadata"]["workflow_run_id"], r3.as_str());
    assert!(verify_signature(
        b["secret"].as_str().expect("secret"),
        &failed_calls[0].0.headers,
        &failed_calls[0].0.body
    ));
    assert_eq!(other.count(), 0, "automations of other processors get nothing");

    // The AutomationLogs are filled from the runs.
    let logs = relay.all_logs(&format!("&automation_id={}", a["id"].as_str().expect("id"))).await;
    assert_eq!(logs.len(), 3);
    let log_of = |run: &str| {
        logs.iter()
            .find(|l| l["completion"]["extraction_id"] == run)
            .unwrap_or_else(|| panic!("no log for {run}: {logs:?}"))
            .clone()
    };
    let l1 = log_of(&r1);
    assert_eq!(l1["automation_snapshot"]["processor_id"], "intake");
    assert_eq!(l1["user_email"], "ada@example.com");
    assert_eq!(l1["completion"]["object"], "chat.completion");
    assert_eq!(l1["completion"]["choices"][0]["message"]["parsed"], one["data"]["outputs"]);
    assert_eq!(l1["file_metadata"]["filename"], "report.pdf");
    assert_eq!(l1["file_metadata"]["url"], FILE_URL);
    assert_eq!(l1["external_request_log"]["status_code"], 200);
    let l2 = log_of(&r2);
    assert_eq!(l2["user_email"], Value::Null);
    assert_eq!(l2["file_metadata"]["filename"], format!("{r2}-inputs.json"));
    assert_eq!(log_of(&r3)["user_email"], "cy@example.org");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_input_is_the_file_payload_when_files_is_empty() {
    let relay = Relay::start(&config());
    let receiver = Receiver::ok().await;
    relay.create_automation("intake", &receiver.url("/all")).await;
    let api = App::new(&relay, KEY);
    let doc = json!({"type": "document", "transfer_method": "remote_url", "url": FILE_URL});
    let body = api.blocking(json!({"name": "Dee", "doc": doc}), "dee@example.com").await;
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    let calls = wait_calls(&relay, &receiver, 1).await;
    let file = &calls[0].1["file_payload"];
    assert_eq!(file["filename"], "report.pdf", "{file}");
    assert_eq!(file["url"], FILE_URL);
    assert_eq!(file["metadata"]["transfer_method"], "remote_url");
}

/// Every producer's deliveries go out as soon as they are committed, not when the claim loop
/// next polls: with a poll interval of a minute, a message posted to the API and a finished
/// run's completion each reach their receiver within two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_completions_go_out_without_waiting_for_the_poll() {
    let relay = Relay::start(&format!("{}\n[delivery]\npoll_interval_ms = 60000\n", config()));
    let receiver = Receiver::ok().await;
    relay.create_automation("intake", &receiver.url("/all")).await;
    let at_once = std::time::Duration::from_secs(2);

    relay.send_message("intake", json!({"from": "the api"})).await;
    relay
        .wait_for(at_once, "the API message's delivery", || async {
            (receiver.count() >= 1).then_some(())
        })
        .await;

    let body = App::new(&relay, KEY).blocking(json!({"name": "Eve"}), "eve@example.com").await;
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    relay
        .wait_for(at_once, "the completion's delivery", || async {
            (receiver.count() >= 2).then_some(())
        })
        .await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "one call each, no repeat");
}

/// A finished run's webhook is logged and can be sent again: rerunning its AutomationLog
/// calls the receiver with the same body and `webhook-id`, freshly signed with the
/// automation's secret, and records a new log that points back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_webhook_is_logged_and_rerun_byte_for_byte() {
    let relay = Relay::start(&config());
    let receiver = Receiver::ok().await;
    let automation = relay.create_automation("intake", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);
    let run = api.blocking(json!({"name": "Dee"}), "dee@example.com").await;
    assert_eq!(run["data"]["status"], "succeeded", "{run}");
    let first = wait_calls(&relay, &receiver, 1).await;
    let logs = relay.wait_logs_exactly("", 1).await;
    let log_id = logs[0]["id"].as_str().expect("log id");

    let (status, rerun) = relay
        .post_json(&format!("/v1/processors/automations/logs/{log_id}/rerun"), &json!({}))
        .await;
    assert_eq!(status, 200, "{rerun}");
    assert_eq!(rerun["rerun_of"], log_id, "{rerun}");
    let calls = wait_calls(&relay, &receiver, 2).await;
    let (original, again) = (&first[0].0, &calls[1].0);
    assert_eq!(again.body, original.body, "the same body");
    assert_eq!(again.headers["webhook-id"], original.headers["webhook-id"]);
    let secret = automation["secret"].as_str().expect("secret");
    assert!(verify_signature(secret, &again.headers, &again.body), "the rerun is signed");
    assert_eq!(relay.wait_logs_exactly("", 2).await.len(), 2, "the rerun is logged");
}
