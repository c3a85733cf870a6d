//! Stopping a streaming run mid-node (its in-flight call aborted), and `event: ping`
//! keep-alives on a long run.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{assert_dify_error, slow_app, wait_calls, App, WAIT};
use crate::servers::SlowServer;

const KEY: &str = "app-slow-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_run_aborts_the_call_and_ends_the_stream_stopped() {
    let slow = SlowServer::start(Duration::from_secs(4)).await;
    let relay = Relay::start(&slow_app("slow", KEY, &slow.url("/slow"), None));
    let receiver = Receiver::ok().await;
    relay.create_automation("slow", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({}), "u-stop").await;
    let started = sse.next_event().await;
    assert_eq!(started["event"], "workflow_started");
    let task = started["task_id"].as_str().expect("task").to_string();
    let run_id = started["workflow_run_id"].as_str().expect("run").to_string();
    relay
        .wait_for(WAIT, "the slow call", || async { (!slow.hits().is_empty()).then_some(()) })
        .await;

    // Another user cannot stop it: still running after a window longer than the owner's
    // stop below takes to end the run (the positive control, asserted below).
    let window = Duration::from_secs(1);
    api.stop(&task, "someone-else").await;
    tokio::time::sleep(window).await;
    assert_eq!(api.detail(&run_id).await["status"], "running", "another user's stop is ignored");

    let t = Instant::now();
    let (status, body) = api.stop(&task, "u-stop").await;
    assert_eq!((status, body.clone()), (200, json!({"result": "success"})));
    assert!(t.elapsed() < Duration::from_secs(1), "stop answers at once: {:?}", t.elapsed());

    let rest = sse.rest().await;
    let took = t.elapsed();
    assert!(
        took < window,
        "the owner's stop took {took:?}: the ignored one was not watched long enough"
    );
    let events: Vec<_> = rest.iter().filter_map(|f| f.data.clone()).collect();
    let last = events.last().expect("a final event");
    assert_eq!(last["event"], "workflow_finished", "{events:?}");
    assert_eq!(last["data"]["status"], "stopped");
    assert_eq!(last["task_id"], task.as_str());
    assert_eq!(last["data"]["outputs"], serde_json::Value::Null);
    assert!(
        !events.iter().any(|e| e["event"] == "node_started" && e["data"]["node_id"] == "end"),
        "nothing runs after the stop"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "the stream ended well before the call would");

    let detail = api.detail(&run_id).await;
    assert_eq!(detail["status"], "stopped", "{detail}");
    assert!(detail["finished_at"].is_i64());
    assert!(detail["elapsed_time"].as_f64().is_some_and(|t| t < 2.5), "{detail}");

    // The slow receiver saw its connection closed long before it meant to answer.
    let hit = relay
        .wait_for(WAIT, "the aborted call to be noticed", || async {
            slow.hits().first().copied().filter(|h| h.hung_up_after.is_some() || h.answered)
        })
        .await;
    assert!(!hit.answered, "the in-flight call was aborted, not awaited");
    assert!(hit.hung_up_after.is_some_and(|d| d < Duration::from_secs(2)), "{hit:?}");

    // The stopped run's completion still goes out.
    let calls = wait_calls(&relay, &receiver, 1).await;
    assert_eq!(calls[0].1["metadata"]["status"], "stopped");
    assert_eq!(calls[0].1["metadata"]["workflow_run_id"], run_id.as_str());

    // Stopping a finished task changes nothing.
    let (_, body) = api.stop(&task, "u-stop").await;
    assert_eq!(body["result"], "success", "{body}");
    assert_eq!(api.detail(&run_id).await["status"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tasks_cannot_be_stopped() {
    let relay = Relay::start(&slow_app("slow", KEY, "http://127.0.0.1:9/x", None));
    let api = App::new(&relay, KEY);
    let (status, body) = api.stop("00000000-0000-7000-8000-000000000000", "u").await;
    assert_dify_error(status, &body, 404, "not_found", "unknown task");
    let (status, body) = api.post("/v1/workflows/tasks/nope/stop", &json!({})).await;
    assert_dify_error(status, &body, 400, "invalid_param", "stop without user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streaming_runs_get_ping_frames() {
    let slow = SlowServer::start(Duration::from_millis(1100)).await;
    let toml = format!(
        "[workflow]\nping_interval_ms = 200\n{}",
        slow_app("slow", KEY, &slow.url("/slow"), None)
    );
    let relay = Relay::start(&toml);
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({}), "u-ping").await;
    let mut frames = Vec::new();
    while let Some(frame) = sse.next().await {
        frames.push(frame);
    }
    let pings: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.event.as_deref() == Some("ping"))
        .map(|(i, _)| i)
        .collect();
    assert!(pings.len() >= 2, "pings every 200 ms over ~1.1 s: {}", sse.raw);
    assert!(sse.raw.contains("event: ping\n"), "{}", sse.raw);
    let finished = frames.iter().position(|f| f.name() == "workflow_finished").expect("finished");
    assert_eq!(finished, frames.len() - 1, "workflow_finished is last");
    assert!(pings.iter().all(|&i| i < finished));
    assert!(
        frames.iter().filter(|f| f.event.is_some()).all(|f| f.data.is_none()),
        "pings carry no data"
    );
    assert_eq!(frames[finished].data.as_ref().expect("data")["data"]["status"], "succeeded");
}
