//! `forward`: the ceiling of any relay that takes one HTTP call in and makes one HTTP call
//! out per message. A bare forwarder (its own two-thread runtime, no storage, no signing, no
//! log) answers 202 at once and posts the body on to the receiver; the load tool drives it
//! exactly as `e2e` drives the relay. `e2e` divided by this is what durability, signing and
//! logging cost; `raw` is one HTTP exchange per message, so no relay can reach 0.5 × `raw`
//! on the same cores without also making the forwarding free.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::json;

use crate::load::{closed_loop, percentiles};
use crate::receiver::Receiver;
use crate::report::Row;
use crate::scenarios::client;
use crate::Settings;

/// Runs the scenario; see the module doc.
pub async fn forward(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let target = format!("http://{}/hook", receiver.addr);
    let (addr, _forwarder) = start_forwarder(target)?;
    let http = client()?;
    let url = format!("http://{addr}/v1/messages");
    let payloads = s.payloads;
    let t0 = Instant::now();
    let (_, mut api) = closed_loop(s.messages, s.concurrency, move |i| {
        let (http, url, body) = (http.clone(), url.clone(), payloads.payload(i));
        async move {
            let resp =
                http.post(&url).header("webhook-id", i.to_string()).body(body).send().await?;
            if resp.status() != StatusCode::ACCEPTED {
                bail!("forwarder answered {}", resp.status());
            }
            resp.bytes().await?;
            Ok(())
        }
    })
    .await?;
    let deadline = t0 + Duration::from_secs(600);
    while receiver.distinct() < s.messages {
        if Instant::now() > deadline {
            bail!("only {} of {} forwarded", receiver.distinct(), s.messages);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t0.elapsed();
    Ok(Row {
        scenario: "forward".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut api),
        relay: None,
        extra: json!({
            "measures": "a storage-free forwarder: calls in and out per second; latency is the API call's",
            "concurrency": s.concurrency, "payload_bytes": s.payloads.bytes,
        }),
    })
}

/// The forwarder's runtime; dropping it stops the forwarder without blocking (a runtime may
/// not be dropped the ordinary way inside another one).
struct Forwarder(Option<tokio::runtime::Runtime>);

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Starts the forwarder on 127.0.0.1:0 in a runtime of its own.
fn start_forwarder(target: String) -> anyhow::Result<(SocketAddr, Forwarder)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("forwarder")
        .build()?;
    let http = client()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: Bytes| {
        let (http, target) = (http.clone(), target.clone());
        async move {
            let id = headers.get("webhook-id").cloned();
            tokio::spawn(async move {
                let mut request = http.post(&target).body(body);
                if let Some(id) = id {
                    request = request.header("webhook-id", id);
                }
                if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
                    eprintln!("forwarder: {e}");
                }
            });
            (StatusCode::ACCEPTED, "{}")
        }
    });
    runtime.spawn(async move {
        let served = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => axum::serve(listener, app).await,
            Err(e) => Err(e),
        };
        if let Err(e) = served {
            eprintln!("forwarder stopped: {}", anyhow!(e));
        }
    });
    Ok((addr, Forwarder(Some(runtime))))
}
