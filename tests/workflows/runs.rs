//! Response modes: the blocking shape, a streaming run read as it arrives (order, ids, end
//! of stream), async runs, Idempotency-Key, and a run that outlives its client.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{edges, App, WAIT};
use crate::servers::Echo;

const KEY: &str = "app-runs-key-0123456789";

/// start → greet (template) → call (http POST to `echo`) → end.
fn app(echo: &Echo) -> String {
    format!(
        r#"
[[apps]]
id = "runs"
api_keys = ["{KEY}"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
[[apps.inputs]]
type = "paragraph"
variable = "note"
default = "no note"
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "greet"
type = "template-transform"
template = "Hello {{{{ name }}}}"
variables = [{{ variable = "name", value_selector = ["start", "name"] }}]
[[apps.nodes]]
id = "call"
title = "Call the receiver"
type = "http-request"
method = "POST"
url = "{url}"
body = "{{{{#greet.output#}}}}"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [
  {{ variable = "greeting", value_selector = ["greet", "output"] }},
  {{ variable = "echoed", value_selector = ["call", "body"] }},
]
{}"#,
        edges(&[("start", "greet"), ("greet", "call"), ("call", "end")]),
        url = echo.url("/hook"),
    )
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_run_has_difys_shape_and_detail_matches() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let before = now_secs();
    let body = api.blocking(json!({"name": "Ada"}), "u-block").await;
    let run_id = body["workflow_run_id"].as_str().expect("workflow_run_id").to_string();
    let task_id = body["task_id"].as_str().expect("task_id");
    assert_ne!(run_id, task_id);
    let keys: HashSet<&str> =
        body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["workflow_run_id", "task_id", "data"]), "{body}");
    let data = &body["data"];
    let keys: HashSet<&str> = data.as_object().expect("data").keys().map(String::as_str).collect();
    let expected = [
        "id",
        "workflow_id",
        "status",
        "outputs",
        "error",
        "elapsed_time",
        "total_tokens",
        "total_steps",
        "created_at",
        "finished_at",
    ];
    assert_eq!(keys, HashSet::from(expected), "{data}");
    assert_eq!(data["id"], run_id.as_str());
    assert_eq!(data["workflow_id"], "runs");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["outputs"], json!({"greeting": "Hello Ada", "echoed": "Hello Ada"}));
    assert_eq!(data["error"], Value::Null);
    assert!(data["elapsed_time"].as_f64().is_some_and(|t| (0.0..5.0).contains(&t)), "{data}");
    assert_eq!(data["total_tokens"], 0);
    assert_eq!(data["total_steps"], 4);
    let created = data["created_at"].as_i64().expect("created_at is an integer");
    let finished = data["finished_at"].as_i64().expect("finished_at is an integer");
    assert!(created >= before - 1 && created <= now_secs() + 1, "created_at in Unix seconds");
    assert!(finished >= created && finished <= now_secs() + 1);

    let detail = api.detail(&run_id).await;
    assert_eq!(detail["id"], run_id.as_str());
    assert_eq!(detail["workflow_id"], "runs");
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["outputs"], data["outputs"]);
    assert_eq!(detail["total_steps"], 4);
    assert_eq!(detail["created_at"], created);
    assert_eq!(detail["finished_at"], finished);
    // Dify sends `inputs` as a JSON-encoded string; the default applied is recorded.
    let inputs: Value =
        serde_json::from_str(detail["inputs"].as_str().expect("inputs is a string")).expect("json");
    assert_eq!(inputs, json!({"name": "Ada", "note": "no note"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_events_arrive_as_they_happen_in_order_and_the_stream_ends() {
    let echo = Echo::gated().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({"name": "Bo"}), "u-stream").await;

    // Incremental: the run is held inside the http node until the test has read that node's
    // node_started from the stream. A buffered response would never get here.
    let early = sse.until("node_started").await; // start's
    assert_eq!(early[0]["event"], "workflow_started");
    let mut events = early;
    loop {
        let e = sse.next_event().await;
        let is_call = e["event"] == "node_started" && e["data"]["node_id"] == "call";
        events.push(e);
        if is_call {
            break;
        }
    }
    relay
        .wait_for(WAIT, "the http node's call", || async {
            (!echo.seen().is_empty()).then_some(())
        })
        .await;
    assert_eq!(
        api.detail(events[0]["workflow_run_id"].as_str().expect("id")).await["status"],
        "running"
    );
    echo.release();
    events.extend(sse.until("workflow_finished").await);
    let t = Instant::now();
    assert!(sse.rest().await.is_empty(), "nothing follows workflow_finished");
    assert!(t.elapsed() < Duration::from_secs(2), "the response ends right after the last event");

    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("")).collect();
    assert_eq!(
        names,
        [
            "workflow_started",
            "node_started",
            "node_finished",
            "node_started",
            "node_finished",
            "node_started",
            "node_finished",
            "node_started",
            "node_finished",
            "workflow_finished",
        ]
    );
    let run_id = events[0]["workflow_run_id"].as_str().expect("run id");
    let task_id = events[0]["task_id"].as_str().expect("task id");
    for e in &events {
        assert_eq!(e["workflow_run_id"], run_id, "{e}");
        assert_eq!(e["task_id"], task_id, "{e}");
    }
    let started = &events[0]["data"];
    assert_eq!(started["id"], run_id);
    assert_eq!(started["workflow_id"], "runs");
    assert!(started["created_at"].is_i64());
    let order = ["start", "greet", "call", "end"];
    for (i, pair) in events[1..9].chunks(2).enumerate() {
        let (s, f) = (&pair[0]["data"], &pair[1]["data"]);
        assert_eq!(s["node_id"], order[i]);
        assert_eq!(f["node_id"], order[i], "node_finished follows its own node_started");
        assert_eq!(s["id"], f["id"], "same node execution id");
        assert_eq!(s["index"], i + 1);
        assert_eq!(f["status"], "succeeded");
        assert_eq!(
            s["predecessor_node_id"],
            if i == 0 { Value::Null } else { order[i - 1].into() }
        );
        assert!(f["elapsed_time"].is_f64());
    }
    assert_eq!(events[5]["data"]["title"], "Call the receiver");
    assert_eq!(events[5]["data"]["node_type"], "http-request");
    assert_eq!(events[1]["data"]["title"], "start", "the title defaults to the id");
    let done = &events[9]["data"];
    assert_eq!(done["id"], run_id);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["outputs"], json!({"greeting": "Hello Bo", "echoed": "Hello Bo"}));
    assert_eq!(done["total_steps"], 4);
    assert!(done["finished_at"].is_i64() && done["elapsed_time"].is_f64());
    assert_eq!(api.detail(run_id).await["status"], "succeeded", "committed before the event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_runs_answer_202_at_once_and_finish_in_the_background() {
    let echo = Echo::gated().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let (status, body) = api
        .run(&json!({"inputs": {"name": "Cy"}, "user": "u-async", "response_mode": "async"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let keys: HashSet<&str> =
        body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["workflow_run_id", "task_id"]), "{body}");
    let run_id = body["workflow_run_id"].as_str().expect("id");
    relay
        .wait_for(WAIT, "the http node's call", || async {
            (!echo.seen().is_empty()).then_some(())
        })
        .await;
    assert_eq!(api.detail(run_id).await["status"], "running", "answered while the run goes on");
    echo.release();
    let detail = api.wait_finished(run_id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["outputs"]["echoed"], "Hello Cy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_run_continues_when_its_client_disconnects() {
    let echo = Echo::gated().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({"name": "Di"}), "u-gone").await;
    let started = sse.next_event().await;
    let run_id = started["workflow_run_id"].as_str().expect("id").to_string();
    drop(sse);
    relay
        .wait_for(WAIT, "the http node's call", || async {
            (!echo.seen().is_empty()).then_some(())
        })
        .await;
    echo.release();
    let detail = api.wait_finished(&run_id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["outputs"]["greeting"], "Hello Di");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_same_run() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let send = |key: &'static str, name: &'static str| {
        api.request(reqwest::Method::POST, "/v1/workflows/run")
            .header("Idempotency-Key", key)
            .json(&json!({"inputs": {"name": name}, "user": "u-idem", "response_mode": "blocking"}))
            .send()
    };
    let first: Value = send("order-1", "Eve").await.expect("send").json().await.expect("json");
    let again = send("order-1", "Eve").await.expect("send");
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["data"]["status"], "succeeded", "{first}");
    assert_eq!(again["workflow_run_id"], first["workflow_run_id"], "same key, same run");
    assert_eq!(again["task_id"], first["task_id"]);
    assert_eq!(again["data"]["outputs"], first["data"]["outputs"]);
    assert_eq!(again["data"]["status"], "succeeded");
    assert_eq!(echo.seen().len(), 1, "the replay ran nothing");
    let other: Value = send("order-2", "Eve").await.expect("send").json().await.expect("json");
    assert_ne!(other["workflow_run_id"], first["workflow_run_id"], "another key, another run");
    // The same key for a different request is refused, not answered with someone else's run.
    let reused = send("order-1", "Mallory").await.expect("send");
    assert_eq!(reused.status(), 409);
    let reused: Value = reused.json().await.expect("json");
    assert_eq!(reused["code"], "idempotency_key_reused", "{reused}");
    assert!(reused.get("data").is_none(), "no outputs of the other run leak: {reused}");
    assert_eq!(api.runs_total().await, 2);
}

/// A key that is not one is refused, never ignored: ignored, the retry it was meant for
/// would make a second run and a second webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_that_is_not_one_is_refused_naming_it() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let long = "k".repeat(257);
    let keys = [
        reqwest::header::HeaderValue::from_bytes(b"a\xff\xfe").expect("obs-text"),
        reqwest::header::HeaderValue::from_str(&long).expect("ascii"),
    ];
    for key in keys {
        let refused = api
            .request(reqwest::Method::POST, "/v1/workflows/run")
            .header("Idempotency-Key", key)
            .json(
                &json!({"inputs": {"name": "Ida"}, "user": "u-idem", "response_mode": "blocking"}),
            )
            .send()
            .await
            .expect("send");
        let status = refused.status().as_u16();
        let body: Value = refused.json().await.expect("json");
        crate::helpers::assert_dify_error(status, &body, 400, "invalid_param", "a bad key");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("Idempotency-Key"), "{body}");
    }
    assert_eq!(api.runs_total().await, 0, "no run was made");
    assert!(echo.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_replay_still_answers_an_event_stream() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let send = || {
        api.request(reqwest::Method::POST, "/v1/workflows/run")
            .header("Idempotency-Key", "stream-1")
            .json(&json!({"inputs": {"name": "Fay"}, "user": "u-replay", "response_mode": "streaming"}))
            .send()
    };
    let mut first = crate::helpers::Sse::new(send().await.expect("send"));
    let events = first.until("workflow_finished").await;
    let run_id = events[0]["workflow_run_id"].clone();
    let replay = send().await.expect("send");
    let content_type = replay.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(
        content_type,
        Some("text/event-stream; charset=utf-8"),
        "a streaming client gets a stream"
    );
    let mut replay = crate::helpers::Sse::new(replay);
    let last = replay.until("workflow_finished").await.pop().expect("workflow_finished");
    assert_eq!(last["workflow_run_id"], run_id);
    assert_eq!(last["data"]["status"], "succeeded");
}
