//! The node executions a run stores when it ends (`workflow_runs.nodes`, read from the
//! relay's SQLite file): the same as its `node_finished` events said, in order, a failed
//! node with its error, and a node cut short by a stop left unfinished.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{edges, slow_app, App, WAIT};
use crate::servers::{Echo, SlowServer};

const KEY: &str = "app-steps-key-0123456789";
const SLOW_KEY: &str = "app-slow-steps-key-0123456789";
/// The fields a stored node has: those of its `node_finished` but inputs and outputs.
const FIELDS: &[&str] = &[
    "elapsed_time",
    "error",
    "index",
    "node_id",
    "node_type",
    "started_at",
    "started_at_ms",
    "status",
    "title",
];

/// start → greet (template, titled) → call (http GET `url`) → end.
fn app(url: &str) -> String {
    format!(
        r#"
[[apps]]
id = "steps"
api_keys = ["{KEY}"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "greet"
type = "template-transform"
title = "Greet <them>"
template = "Hello {{{{ name }}}}"
variables = [{{ variable = "name", value_selector = ["start", "name"] }}]
[[apps.nodes]]
id = "call"
type = "http-request"
method = "GET"
url = "{url}"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{{ variable = "status", value_selector = ["call", "status_code"] }}]
{}"#,
        edges(&[("start", "greet"), ("greet", "call"), ("call", "end")])
    )
}

/// The nodes stored with run `run_id`, read from the relay's database file.
fn stored_nodes(relay: &Relay, run_id: &str) -> Vec<Value> {
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let text: String = db
        .query_row("SELECT nodes FROM workflow_runs WHERE id = ?1", [run_id], |r| r.get(0))
        .expect("the run's row");
    serde_json::from_str::<Vec<Value>>(&text).expect("nodes is a JSON array")
}

/// A streaming run of the steps app to its end: its `node_finished` events' data, and its id.
async fn streamed(api: &App<'_>) -> (Vec<Value>, String) {
    let mut sse = api.stream(json!({"name": "Ada"}), "u-nodes").await;
    let events = sse.until("workflow_finished").await;
    let run_id = events[0]["workflow_run_id"].as_str().expect("run id").to_string();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "node_finished")
        .map(|e| e["data"].clone())
        .collect();
    api.wait_finished(&run_id).await;
    (finished, run_id)
}

/// Asserts that `stored` is what the `node_finished` events said, field by field: the same
/// numbers, since both come from the same values.
fn assert_same(stored: &[Value], finished: &[Value]) {
    assert_eq!(stored.len(), finished.len(), "stored {stored:?}\nevents {finished:?}");
    for (node, event) in stored.iter().zip(finished) {
        let mut keys: Vec<&str> = node.as_object().expect("object").keys().map(|k| &**k).collect();
        keys.sort_unstable();
        assert_eq!(keys, FIELDS, "no inputs or outputs stored: {node}");
        for field in ["node_id", "node_type", "title", "index", "status", "elapsed_time", "error"] {
            assert_eq!(node[field], event[field], "{field} of {node}\nevent {event}");
        }
        assert_eq!(node["started_at"], event["created_at"], "{node}\nevent {event}");
        // The console's start time to the millisecond: within the second the event says.
        let ms = node["started_at_ms"].as_i64().expect("started_at_ms");
        assert_eq!(Some(ms / 1000), event["created_at"].as_i64(), "{node}\nevent {event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stores_its_nodes_as_its_node_finished_events_said() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo.url("/ok")));
    let api = App::new(&relay, KEY);
    let (finished, run_id) = streamed(&api).await;

    let stored = stored_nodes(&relay, &run_id);
    assert_same(&stored, &finished);
    let order: Vec<(&str, &str)> = stored
        .iter()
        .map(|n| (n["node_id"].as_str().expect("id"), n["status"].as_str().expect("status")))
        .collect();
    let all_succeeded = [
        ("start", "succeeded"),
        ("greet", "succeeded"),
        ("call", "succeeded"),
        ("end", "succeeded"),
    ];
    assert_eq!(order, all_succeeded);
    assert_eq!(stored[1]["title"], "Greet <them>");
    assert_eq!(stored[0]["title"], "start", "an untitled node is titled by its id");
    let indexes: Vec<u64> = stored.iter().map(|n| n["index"].as_u64().expect("index")).collect();
    assert_eq!(indexes, [1, 2, 3, 4]);
    let detail = api.detail(&run_id).await;
    assert_eq!(detail["total_steps"], 4, "as many steps as nodes stored: {detail}");
    let sum: f64 = stored.iter().map(|n| n["elapsed_time"].as_f64().expect("elapsed")).sum();
    let total = detail["elapsed_time"].as_f64().expect("elapsed_time");
    assert!(sum > 0.0 && sum <= total, "nodes took {sum} s of the run's {total} s");

    // A blocking run (no event stream) stores its nodes too.
    let body = api.blocking(json!({"name": "Grace"}), "u-nodes").await;
    let blocking = stored_nodes(&relay, body["workflow_run_id"].as_str().expect("run id"));
    let ids: Vec<&Value> = blocking.iter().map(|n| &n["node_id"]).collect();
    assert_eq!(ids, ["start", "greet", "call", "end"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_node_is_stored_with_its_error_and_nothing_after_it() {
    // Nothing listens on port 9: the call fails.
    let relay = Relay::start(&app("http://127.0.0.1:9/nothing"));
    let api = App::new(&relay, KEY);
    let (finished, run_id) = streamed(&api).await;

    let stored = stored_nodes(&relay, &run_id);
    assert_same(&stored, &finished);
    let order: Vec<(&str, &str)> = stored
        .iter()
        .map(|n| (n["node_id"].as_str().expect("id"), n["status"].as_str().expect("status")))
        .collect();
    assert_eq!(order, [("start", "succeeded"), ("greet", "succeeded"), ("call", "failed")]);
    let error = stored[2]["error"].as_str().expect("the failed node's error");
    assert!(error.contains("127.0.0.1:9"), "{error}");
    assert!(stored[..2].iter().all(|n| n["error"].is_null()), "{stored:?}");
    let detail = api.detail(&run_id).await;
    assert_eq!(detail["status"], "failed");
    let run_error = detail["error"].as_str().expect("run error");
    assert!(run_error.contains(error), "the run's error {run_error:?} tells the node's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_running_when_the_run_is_stopped_is_stored_unfinished() {
    let slow = SlowServer::start(Duration::from_secs(4)).await;
    let relay = Relay::start(&slow_app("slow", SLOW_KEY, &slow.url("/slow"), None));
    let api = App::new(&relay, SLOW_KEY);
    let mut sse = api.stream(json!({}), "u-stop").await;
    let started = sse.next_event().await;
    let task = started["task_id"].as_str().expect("task").to_string();
    let run_id = started["workflow_run_id"].as_str().expect("run").to_string();
    relay
        .wait_for(WAIT, "the slow call", || async { (!slow.hits().is_empty()).then_some(()) })
        .await;
    assert_eq!(api.stop(&task, "u-stop").await.0, 200);
    let events = sse.until("workflow_finished").await;
    assert_eq!(events.last().expect("finished")["data"]["status"], "stopped");

    let stored = stored_nodes(&relay, &run_id);
    let summary: Vec<(&Value, &Value, bool)> =
        stored.iter().map(|n| (&n["node_id"], &n["status"], n["elapsed_time"].is_null())).collect();
    assert_eq!(
        summary,
        [
            (&json!("start"), &json!("succeeded"), false),
            (&json!("call"), &json!("unfinished"), true)
        ]
    );
    let call_started = events
        .iter()
        .find(|e| e["event"] == "node_started" && e["data"]["node_id"] == "call")
        .expect("the call's node_started");
    assert_eq!(stored[1]["started_at"], call_started["data"]["created_at"]);
    assert_eq!(stored[1]["index"], call_started["data"]["index"]);
}
