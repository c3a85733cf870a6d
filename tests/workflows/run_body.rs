//! A run's `inputs` and `files` are read as sent, not guessed at: an input given twice was
//! run with the last value, and a file item's unknown or repeated field was ignored. Both
//! are a 400 naming the field, and no run starts. What Dify clients send stays accepted,
//! and inputs the form does not declare are still dropped, as Dify does.

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{assert_dify_error, edges, App};

const KEY: &str = "app-body-key-0123456789";
const URL: &str = "https://example.com/a.png";

fn config() -> String {
    format!(
        r#"
[[apps]]
id = "body"
api_keys = ["{KEY}"]
[apps.file_upload]
enabled = true
allowed_types = ["image"]
[[apps.inputs]]
type = "text-input"
variable = "name"
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{{ variable = "name", value_selector = ["start", "name"] }}]
{}"#,
        edges(&[("start", "end")])
    )
}

/// POSTs `body` as written (a JSON value cannot hold a repeated key).
async fn run_text(app: &App<'_>, body: &str) -> (u16, Value) {
    let resp = app
        .request(reqwest::Method::POST, "/v1/workflows/run")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_inputs_and_unknown_file_fields_are_refused() {
    let relay = Relay::start(&config());
    let app = App::new(&relay, KEY);
    let file = |extra: &str| {
        format!(r#"{{"type":"image","transfer_method":"remote_url","url":"{URL}"{extra}}}"#)
    };
    for (files, inputs, field, why) in [
        ("[]".to_string(), r#"{"name":"first","name":"second"}"#, "inputs.name", "duplicate"),
        (format!("[{}]", file(r#","zzq":1"#)), r#"{"name":"a"}"#, "files[0].zzq", "unknown"),
        (format!("[{}]", file(r#","type":"image""#)), r#"{"name":"a"}"#, "files[0].type", "dup"),
        (format!("[{},{}]", file(""), file(r#","id":1"#)), "{}", "files[1].id", "unknown"),
    ] {
        let body = format!(r#"{{"inputs":{inputs},"user":"u1","files":{files}}}"#);
        let (status, answer) = run_text(&app, &body).await;
        assert_dify_error(status, &answer, 400, "invalid_param", &body);
        assert_eq!(answer["field"], field, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{body}: {answer}");
    }
    assert_eq!(app.runs_total().await, 0, "no run started");

    // As the dify-client sends them (its file items: type, transfer_method, url or
    // upload_file_id), with an input the form does not declare, dropped.
    let body = json!({"inputs": {"name": "a", "undeclared": 1}, "user": "u1",
        "response_mode": "blocking",
        "files": [{"type": "image", "transfer_method": "remote_url", "url": URL}]});
    let (status, answer) = app.run(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["outputs"], json!({"name": "a"}), "{answer}");
    let run = app.detail(answer["workflow_run_id"].as_str().expect("run id")).await;
    let inputs: Value =
        serde_json::from_str(run["inputs"].as_str().expect("inputs")).expect("json");
    assert_eq!(inputs, json!({"name": "a"}), "the undeclared input is dropped: {run}");
}
