use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::common::Relay;
use crate::helpers::lane_backlog;

/// A receiver that holds every call until the test lets it through, recording the order of
/// `webhook-id`s and the most calls it ever had in flight at once.
#[derive(Clone)]
struct Gate {
    open: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    order: Arc<Mutex<Vec<String>>>,
}

impl Gate {
    /// A closed gate.
    fn closed() -> Self {
        Self {
            open: Arc::new(Semaphore::new(0)),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            order: Arc::default(),
        }
    }
}

async fn gated_receiver(gate: Gate) -> String {
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let gate = gate.clone();
        async move {
            let now = gate.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            gate.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            gate.order.lock().expect("lock").push(id.to_string());
            if let Ok(permit) = gate.open.acquire().await {
                permit.forget();
            }
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
            "{\"ok\":true}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

// An automation at its concurrency bound: the deliveries behind it wait in memory (shown by
// hookrelay_lane_backlog), go out one at a time in the order they came, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_past_the_bound_wait_in_order_and_are_counted() {
    let gate = Gate::closed();
    let url = gated_receiver(gate.clone()).await;
    let relay = Relay::start("[delivery]\nper_automation_concurrency = 1\n");
    relay.create_automation("proc_lane", &url).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let message = relay.send_message("proc_lane", json!({ "n": n })).await;
        sent.push(message["id"].as_str().expect("id").to_string());
    }
    relay
        .wait_for(Duration::from_secs(10), "one call in flight, four waiting", || async {
            let waiting = lane_backlog(&relay).await;
            (gate.in_flight.load(Ordering::SeqCst) == 1 && waiting == 4).then_some(())
        })
        .await;
    gate.open.add_permits(5);
    relay
        .wait_for(Duration::from_secs(10), "every message delivered", || async {
            let done = relay.all_logs("&status_code=200").await.len();
            (done == 5).then_some(())
        })
        .await;
    assert_eq!(gate.most_in_flight.load(Ordering::SeqCst), 1, "the bound held");
    assert_eq!(*gate.order.lock().expect("lock"), sent, "first come, first sent");
    assert_eq!(lane_backlog(&relay).await, 0);
}
