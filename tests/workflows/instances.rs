//! A workflow run stopped through another instance (PostgreSQL, issue 15): two relays on one
//! database, a streaming run started on B, the stop sent to A. A does not run the task, so it
//! asks every instance (`NOTIFY hookrelay_stop`); B stops it as if asked itself. Skipped on
//! SQLite, where one process runs every run of its file.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::postgres::{selected, FreshDatabase};
use crate::common::{Receiver, Relay};
use crate::helpers::{slow_app, wait_calls, App, WAIT};
use crate::servers::SlowServer;

const KEY: &str = "app-slow-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_one_instance_is_stopped_through_another() {
    let Some(server) = selected() else {
        eprintln!("SKIPPED: needs HOOKRELAY_TEST_BACKEND=postgres (two instances, one database)");
        return;
    };
    let database = FreshDatabase::create(&server);
    let slow = SlowServer::start(Duration::from_secs(6)).await;
    let toml = slow_app("slow", KEY, &slow.url("/slow"), None);
    let a = Relay::start_with_database(Path::new(&database.url), &toml);
    let b = Relay::start_with_database(Path::new(&database.url), &toml);
    let receiver = Receiver::ok().await;
    a.create_automation("slow", &receiver.url("/done")).await;

    let mut sse = App::new(&b, KEY).stream(json!({}), "u-stop").await;
    let started = sse.next_event().await;
    assert_eq!(started["event"], "workflow_started");
    let task = started["task_id"].as_str().expect("task").to_string();
    let run_id = started["workflow_run_id"].as_str().expect("run").to_string();
    b.wait_for(WAIT, "the slow call", || async { (!slow.hits().is_empty()).then_some(()) }).await;

    let through_a = App::new(&a, KEY);
    let t = Instant::now();
    let (status, body) = through_a.stop(&task, "u-stop").await;
    assert_eq!((status, body), (200, json!({"result": "success"})), "Dify's answer, as today");
    assert!(t.elapsed() < Duration::from_secs(1), "stop answers at once: {:?}", t.elapsed());

    // B's stream ends stopped, long before the call would have answered.
    let rest = sse.rest().await;
    let events: Vec<_> = rest.iter().filter_map(|f| f.data.clone()).collect();
    let last = events.last().expect("a final event");
    assert_eq!(last["event"], "workflow_finished", "{events:?}");
    assert_eq!(last["data"]["status"], "stopped", "{last}");
    assert!(t.elapsed() < Duration::from_secs(2), "stopped within 2 s: {:?}", t.elapsed());

    // Either instance reads it stopped, and the completion webhook says so.
    for relay in [&a, &b] {
        let detail = App::new(relay, KEY).detail(&run_id).await;
        assert_eq!(detail["status"], "stopped", "{detail}");
    }
    let calls = wait_calls(&a, &receiver, 1).await;
    assert_eq!(calls[0].1["metadata"]["status"], "stopped");
    assert_eq!(calls[0].1["metadata"]["workflow_run_id"], run_id.as_str());
    let hit = slow.hits().first().copied().expect("the call");
    assert!(!hit.answered, "the in-flight call was aborted, not awaited: {hit:?}");
}
