use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::Router;
use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{delivery_toml, lane_backlog};

/// Calls in flight per automation, and the in-memory backlog bounds (lowered from their
/// defaults of 64, 1,024 and 8,192, so that the ten thousand queued pass each many times).
const LIMITS: [(&str, &str); 3] = [
    ("per_automation_concurrency", "16"),
    ("per_automation_backlog", "128"),
    ("lane_backlog", "512"),
];
/// Deliveries queued to the receiver that never answers: more than its calls in flight and
/// the whole in-memory backlog together (and so more than its share of it).
const STALLED: usize = 10_000;
/// Concurrent producers queueing them.
const PRODUCERS: usize = 16;

/// A receiver that accepts connections and never answers (nor closes them).
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/hole")
}

/// A receiver that answers 200 and records when each `webhook-id` arrived.
async fn timed_receiver() -> (String, Arc<Mutex<HashMap<String, Instant>>>) {
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            seen.lock().expect("lock").insert(id.to_string(), Instant::now());
            "{\"ok\":true}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/ok"), arrivals)
}

/// Posts `count` messages to `processor` from `PRODUCERS` concurrent clients.
async fn queue(relay: &Relay, processor: &str, count: usize) {
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = relay.url("/v1/messages");
            let processor = processor.to_string();
            tokio::spawn(async move {
                let client = common::client();
                for n in (p..count).step_by(PRODUCERS) {
                    let body = json!({"processor_id": processor, "payload": {"n": n}});
                    let resp = client
                        .post(&url)
                        .header("Api-Key", KEY)
                        .json(&body)
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(resp.status(), 202, "message {n}");
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.expect("producer");
    }
}

// One receiver that never answers, with more deliveries queued to it than the in-memory
// backlog holds: another automation's deliveries still go out at once, because no automation
// takes more than its share of the backlog and the claim loop passes over full lanes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_receiver_does_not_hold_up_other_automations() {
    let hole = black_hole().await;
    let (healthy, arrivals) = timed_receiver().await;
    let mut config = LIMITS.to_vec();
    config.push(("request_timeout_ms", "60000"));
    let relay = Relay::start(&delivery_toml(&config));
    relay.create_automation("proc_stalled", &hole).await;
    relay.create_automation("proc_healthy", &healthy).await;

    let started = Instant::now();
    queue(&relay, "proc_stalled", STALLED).await;
    eprintln!("{STALLED} messages queued to the black hole in {:?}", started.elapsed());
    assert_eq!(lane_backlog(&relay).await, 128, "the black hole holds its share, no more");

    let mut acknowledged = Vec::new();
    for n in 0..100 {
        let message = relay.send_message("proc_healthy", json!({ "n": n })).await;
        acknowledged.push((message["id"].as_str().expect("id").to_string(), Instant::now()));
    }
    let arrived = relay
        .wait_for(Duration::from_secs(5), "every healthy delivery", || async {
            let arrivals = arrivals.lock().expect("lock");
            let times: Option<Vec<(Instant, Instant)>> = acknowledged
                .iter()
                .map(|(id, acked)| arrivals.get(id).map(|at| (*acked, *at)))
                .collect();
            times
        })
        .await;
    let slowest = arrived.iter().map(|(acked, at)| at.saturating_duration_since(*acked)).max();
    assert!(
        slowest.is_some_and(|d| d < Duration::from_secs(1)),
        "a healthy delivery took {slowest:?} after its 202"
    );
}
