//! Bad requests get Dify's error shape `{code, message, status}` with the right code, and
//! create nothing: no run, no webhook.

use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay};
use crate::helpers::{assert_dify_error, edges, wait_calls, App};

const KEY: &str = "app-forms-key-0123456789";
const OTHER_KEY: &str = "app-other-key-0123456789";

fn config() -> String {
    let app = |id: &str, key: &str| {
        format!(
            r#"
[[apps]]
id = "{id}"
api_keys = ["{key}"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
max_length = 5
[[apps.inputs]]
type = "number"
variable = "count"
[[apps.inputs]]
type = "select"
variable = "tone"
options = ["warm", "cool"]
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
    };
    format!("{}{}", app("forms", KEY), app("other", OTHER_KEY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_run_requests_get_difys_errors_and_create_nothing() {
    let relay = Relay::start(&config());
    let receiver = Receiver::ok().await;
    relay.create_automation("forms", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);
    let cases: &[(&str, Value, &str)] = &[
        ("missing inputs", json!({"user": "u"}), "inputs"),
        ("inputs not an object", json!({"inputs": "name=x", "user": "u"}), "inputs"),
        ("missing user", json!({"inputs": {"name": "a"}}), "user"),
        ("empty user", json!({"inputs": {"name": "a"}, "user": ""}), "user"),
        ("required input missing", json!({"inputs": {"count": 1}, "user": "u"}), "name"),
        ("required input blank", json!({"inputs": {"name": ""}, "user": "u"}), "name"),
        (
            "number given an object",
            json!({"inputs": {"name": "a", "count": {"n": 1}}, "user": "u"}),
            "count",
        ),
        (
            "number given words",
            json!({"inputs": {"name": "a", "count": "many"}, "user": "u"}),
            "count",
        ),
        ("text given a number", json!({"inputs": {"name": 42}, "user": "u"}), "name"),
        (
            "select value not in options",
            json!({"inputs": {"name": "a", "tone": "hot"}, "user": "u"}),
            "tone",
        ),
        ("over-long text", json!({"inputs": {"name": "abcdef"}, "user": "u"}), "name"),
        (
            "bad response_mode",
            json!({"inputs": {"name": "a"}, "user": "u", "response_mode": "turbo"}),
            "response_mode",
        ),
        (
            "files on an app without file upload",
            json!({"inputs": {"name": "a"}, "user": "u",
            "files": [{"type": "document", "transfer_method": "remote_url", "url": "https://example.com/a.pdf"}]}),
            "files",
        ),
    ];
    for (what, body, names) in cases {
        let (status, answer) = api.run(body).await;
        assert_dify_error(status, &answer, 400, "invalid_param", what);
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains(names), "{what}: the message names `{names}`: {answer}");
    }
    let resp = api
        .request(reqwest::Method::POST, "/v1/workflows/run")
        .header("content-type", "application/json")
        .body("{\"inputs\": {")
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    assert_dify_error(
        status,
        &resp.json().await.expect("json"),
        400,
        "invalid_param",
        "malformed JSON",
    );

    // Wrong keys, each kind on the wrong API.
    let with_key = |key: &str| {
        common::client()
            .post(relay.url("/v1/workflows/run"))
            .bearer_auth(key)
            .json(&json!({"inputs": {"name": "a"}, "user": "u"}))
            .send()
    };
    for (what, key, status, code) in [
        ("wrong app key", "app-wrong-key-0123456789", 401, "unauthorized"),
        ("admin key on the app API", common::KEY, 403, "forbidden"),
    ] {
        let resp = with_key(key).await.expect("send");
        let http = resp.status().as_u16();
        assert_dify_error(http, &resp.json().await.expect("json"), status, code, what);
    }
    let resp = common::client()
        .post(relay.url("/v1/workflows/run"))
        .json(&json!({"inputs": {"name": "a"}, "user": "u"}))
        .send()
        .await
        .expect("send");
    let http = resp.status().as_u16();
    assert_dify_error(http, &resp.json().await.expect("json"), 401, "unauthorized", "no key");
    let resp = common::client()
        .get(relay.url("/v1/processors/automations/endpoints"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    let http = resp.status().as_u16();
    assert_dify_error(
        http,
        &resp.json().await.expect("json"),
        403,
        "forbidden",
        "app key on the admin API",
    );

    // Nothing was created: no run, no delivery.
    assert_eq!(api.runs_total().await, 0);
    let deliveries = relay.get_json("/v1/deliveries").await;
    assert_eq!(deliveries["data"].as_array().map(Vec::len), Some(0), "{deliveries}");
    assert_eq!(receiver.count(), 0);

    // The same request made valid goes through (so the checks above can fail), and its
    // webhook is the receiver's only call.
    let ok = api.blocking(json!({"name": "a", "count": "3", "tone": "warm"}), "u").await;
    assert_eq!(ok["data"]["status"], "succeeded", "{ok}");
    assert_eq!(api.runs_total().await, 1);
    let calls = wait_calls(&relay, &receiver, 1).await;
    assert_eq!(calls.len(), 1, "a refused run sent a webhook");
    let run_id = &ok["workflow_run_id"];
    assert_eq!(calls[0].1["metadata"]["workflow_run_id"], *run_id, "{}", calls[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_foreign_ids_are_not_found() {
    let relay = Relay::start(&config());
    let api = App::new(&relay, KEY);
    let other = App::new(&relay, OTHER_KEY);
    let (status, body) = api.get("/v1/workflows/run/00000000-0000-7000-8000-000000000000").await;
    assert_dify_error(status, &body, 404, "not_found", "unknown run id");
    let (status, body) = api.stop("no-such-task", "u").await;
    assert_dify_error(status, &body, 404, "not_found", "unknown task id");

    // Another app's run is not visible through this app's key.
    let theirs = other.blocking(json!({"name": "z"}), "u").await;
    let run_id = theirs["workflow_run_id"].as_str().expect("id");
    assert_eq!(other.detail(run_id).await["status"], "succeeded");
    let (status, body) = api.get(&format!("/v1/workflows/run/{run_id}")).await;
    assert_dify_error(status, &body, 404, "not_found", "another app's run");
    let task = theirs["task_id"].as_str().expect("task");
    let (status, body) = api.stop(task, "u").await;
    assert_dify_error(status, &body, 404, "not_found", "another app's task");
    assert_eq!(api.runs_total().await, 0, "logs are per app");
    assert_eq!(other.runs_total().await, 1);
}
