//! The benchmark's receiver: answers 200 at once and records when each webhook-id arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::HeaderMap;
use axum::Router;

/// Arrival time of each webhook-id (first arrival) and the count of all calls.
#[derive(Default)]
pub struct Arrivals {
    pub first: HashMap<String, Instant>,
    pub calls: usize,
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub arrivals: Arc<Mutex<Arrivals>>,
}

impl Receiver {
    /// Starts on 127.0.0.1:0, answering 200 to everything.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_failing_every(0).await
    }

    /// Starts on 127.0.0.1:0; every `n`-th call (0 = none) is answered 500 and not recorded
    /// as an arrival.
    pub async fn start_failing_every(n: usize) -> anyhow::Result<Self> {
        let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
        let recorded = arrivals.clone();
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let recorded = recorded.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let mut status = axum::http::StatusCode::OK;
                if let Ok(mut a) = recorded.lock() {
                    a.calls += 1;
                    if n > 0 && a.calls % n == 0 {
                        status = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    } else {
                        a.first.entry(id).or_insert_with(Instant::now);
                    }
                }
                (status, "{\"ok\":true}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, arrivals })
    }

    /// Calls received, failed ones included.
    pub fn calls(&self) -> usize {
        self.arrivals.lock().map(|a| a.calls).unwrap_or(0)
    }

    /// Distinct webhook-ids received.
    pub fn distinct(&self) -> usize {
        self.arrivals.lock().map(|a| a.first.len()).unwrap_or(0)
    }
}
