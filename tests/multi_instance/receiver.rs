//! A receiver that records every call's `webhook-id` with when it started and ended, and
//! answers 200 after a short delay (so calls overlap), or 503 to each message's first call.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};

/// One call: its `webhook-id`, when it arrived and when it ended (answered, or dropped
/// because the caller went away, or 503: then `answered` is false).
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub start: Instant,
    pub end: Instant,
    pub answered: bool,
}

/// Records the call when dropped, so a call cut by its caller's death is recorded too.
struct Recording {
    id: String,
    start: Instant,
    answered: bool,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        let call = Call {
            id: std::mem::take(&mut self.id),
            start: self.start,
            end: Instant::now(),
            answered: self.answered,
        };
        self.calls.lock().expect("lock").push(call);
    }
}

/// The receiver: its URL and the calls it recorded.
pub struct Timed {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Timed {
    /// Starts one on 127.0.0.1 answering each call after `delay`: 200, or 503 to the first
    /// call of each `webhook-id` when `fail_first`.
    pub async fn start(delay: Duration, fail_first: bool) -> Self {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let recorded = calls.clone();
        let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let (calls, seen) = (recorded.clone(), seen.clone());
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let first = seen.lock().expect("lock").insert(id.clone());
                let status = match fail_first && first {
                    true => StatusCode::SERVICE_UNAVAILABLE,
                    false => StatusCode::OK,
                };
                let mut call = Recording { id, start: Instant::now(), answered: false, calls };
                tokio::time::sleep(delay).await;
                call.answered = status == StatusCode::OK;
                (status, [("content-type", "application/json")], "{\"ok\":true}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Timed { url: format!("http://{addr}/hook"), calls }
    }

    /// The calls ended so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
}
