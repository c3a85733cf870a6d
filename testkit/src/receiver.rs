//! Receivers on 127.0.0.1 that record every call they get and answer as told.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One call a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// What a receiver answers to its n-th call (0-based).
pub type Behaviour = Arc<dyn Fn(usize) -> Response + Send + Sync>;

/// A receiver on 127.0.0.1 that records calls and answers as its behaviour says.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers 200 `{"ok":true}` to everything.
    pub async fn ok() -> Self {
        Self::with(Arc::new(|_| {
            (StatusCode::OK, [("content-type", "application/json")], "{\"ok\":true}")
                .into_response()
        }))
        .await
    }

    /// Answers `fail_status` to the first `n` calls, then 200.
    pub async fn failing_first(n: usize, fail_status: u16) -> Self {
        Self::with(Arc::new(move |i| {
            if i < n {
                (StatusCode::from_u16(fail_status).expect("status"), "{\"error\":\"nope\"}")
                    .into_response()
            } else {
                (StatusCode::OK, "{\"ok\":true}").into_response()
            }
        }))
        .await
    }

    /// A receiver with a custom behaviour.
    pub async fn with(behaviour: Behaviour) -> Self {
        let calls: Arc<Mutex<Vec<Received>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = (calls.clone(), behaviour);
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls }
    }

    /// URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Calls so far.
    pub fn calls(&self) -> Vec<Received> {
        self.calls.lock().expect("lock").clone()
    }

    /// Number of calls so far.
    pub fn count(&self) -> usize {
        self.calls.lock().expect("lock").len()
    }
}

async fn handle(
    State((calls, behaviour)): State<(Arc<Mutex<Vec<Received>>>, Behaviour)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut calls = calls.lock().expect("lock");
        calls.push(Received { headers, body, at: Instant::now() });
        calls.len() - 1
    };
    behaviour(n)
}
