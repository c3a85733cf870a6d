//! Shared helpers: config tweaks, a slow receiver, a black hole, timed arrivals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use serde_json::{json, Value};

use crate::common::{self, Relay, KEY};

pub(crate) use crate::common::{first_delivery, WAIT};

/// A full `[delivery]` table: `common::FAST_RETRIES` with some keys replaced or added.
/// (Appending a second `[delivery]` table to FAST_RETRIES would be invalid TOML.)
pub(crate) fn delivery_toml(changes: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut seen = Vec::new();
    for line in common::FAST_RETRIES.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match changes.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => {
                out.push_str(&format!("{k} = {v}\n"));
                seen.push(*k);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (k, v) in changes {
        if !seen.contains(k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    assert_eq!(out.matches("[delivery]").count(), 1);
    out
}

pub(crate) fn header<'a>(call: &'a common::Received, name: &str) -> &'a str {
    call.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

pub(crate) fn gap_ms(calls: &[common::Received], i: usize) -> u128 {
    calls[i + 1].at.duration_since(calls[i].at).as_millis()
}

/// A receiver that answers only after `delay` (asynchronously, so it never blocks the test
/// runtime), 200 unless made with [`SlowReceiver::answering`]. Records when each call arrived.
#[derive(Clone)]
pub(crate) struct SlowReceiver {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) arrivals: Arc<Mutex<Vec<Instant>>>,
    pub(crate) answered: Arc<AtomicUsize>,
}

impl SlowReceiver {
    pub(crate) async fn start(delay: Duration) -> Self {
        Self::answering(delay, StatusCode::OK).await
    }

    /// A slow receiver that answers `status`.
    pub(crate) async fn answering(delay: Duration, status: StatusCode) -> Self {
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let answered: Arc<AtomicUsize> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (a, done) = (arrivals.clone(), answered.clone());
        let app = Router::new().fallback(move || {
            let (a, done) = (a.clone(), done.clone());
            async move {
                a.lock().expect("lock").push(Instant::now());
                tokio::time::sleep(delay).await;
                done.fetch_add(1, Ordering::SeqCst);
                (status, "{\"slow\":true}").into_response()
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, arrivals, answered }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/slow", self.addr)
    }

    pub(crate) fn count(&self) -> usize {
        self.arrivals.lock().expect("lock").len()
    }
}

/// The `hookrelay_lane_backlog` gauge: deliveries waiting in memory behind calls in flight.
pub(crate) async fn lane_backlog(relay: &Relay) -> i64 {
    relay.metric("hookrelay_lane_backlog").await as i64
}

/// Concurrent producers in [`queue`].
const PRODUCERS: usize = 16;

/// A receiver that accepts connections and never answers (nor closes them).
pub(crate) async fn black_hole() -> String {
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
pub(crate) async fn timed_receiver() -> (String, Arc<Mutex<HashMap<String, Instant>>>) {
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
pub(crate) async fn queue(relay: &Relay, processor: &str, count: usize) {
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

/// Waits up to `timeout` for every `(webhook-id, acknowledged at)` to arrive at a
/// [`timed_receiver`]; returns the longest time from a 202 to its arrival.
pub(crate) async fn slowest_arrival(
    relay: &Relay,
    arrivals: &Mutex<HashMap<String, Instant>>,
    acknowledged: &[(String, Instant)],
    timeout: Duration,
) -> Duration {
    relay
        .wait_for(timeout, "every healthy delivery", || async {
            let arrivals = arrivals.lock().expect("lock");
            acknowledged
                .iter()
                .map(|(id, acked)| arrivals.get(id).map(|at| at.saturating_duration_since(*acked)))
                .collect::<Option<Vec<Duration>>>()
        })
        .await
        .into_iter()
        .max()
        .unwrap_or_default()
}

/// Posts `count` messages to `processor` all at once; returns each message id with the
/// moment its 202 arrived.
pub(crate) async fn burst(relay: &Relay, processor: &str, count: usize) -> Vec<(String, Instant)> {
    let client = common::client();
    let posts: Vec<_> = (0..count)
        .map(|n| {
            let request = client
                .post(relay.url("/v1/messages"))
                .header("Api-Key", KEY)
                .json(&json!({"processor_id": processor, "payload": {"n": n}}));
            tokio::spawn(async move {
                let resp = request.send().await.expect("post");
                assert_eq!(resp.status(), 202, "message {n}");
                let acked = Instant::now();
                let body: Value = resp.json().await.expect("json");
                (body["id"].as_str().expect("id").to_string(), acked)
            })
        })
        .collect();
    let mut acknowledged = Vec::with_capacity(count);
    for post in posts {
        acknowledged.push(post.await.expect("post task"));
    }
    acknowledged
}
