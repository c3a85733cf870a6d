//! `fifo`: the throughput of one FIFO automation (`ordering = "fifo"`), whose calls go one
//! at a time, so it is bounded by its receiver's latency: messages/s delivered against the
//! ceiling 1 / receiver latency measured by the receiver in the same run, and whether the
//! receiver saw the messages in ingest order (message id order).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use axum::http::HeaderMap;
use axum::Router;
use serde_json::{json, Value};

use crate::load::percentiles;
use crate::relay::{Relay, KEY};
use crate::report::Row;
use crate::scenarios::{any_pending, client, push_messages};
use crate::Settings;

/// Messages when `--messages` is not given: the line takes `messages × delay` at best.
const DEFAULT_MESSAGES: usize = 2_000;

/// One call the receiver answered: its webhook-id, when it came and when it was answered.
struct Call {
    id: String,
    start: Instant,
    end: Instant,
}

/// A receiver answering 200 after `delay`, recording each call and the most it had at once.
struct SlowReceiver {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    most_at_once: Arc<AtomicUsize>,
}

impl SlowReceiver {
    async fn start(delay: Duration) -> anyhow::Result<Self> {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let most_at_once: Arc<AtomicUsize> = Arc::default();
        let now_in: Arc<AtomicUsize> = Arc::default();
        let (recorded, most) = (calls.clone(), most_at_once.clone());
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let (recorded, most, now_in) = (recorded.clone(), most.clone(), now_in.clone());
            async move {
                let start = Instant::now();
                most.fetch_max(now_in.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                tokio::time::sleep(delay).await;
                now_in.fetch_sub(1, Ordering::SeqCst);
                if let Ok(mut calls) = recorded.lock() {
                    calls.push(Call { id, start, end: Instant::now() });
                }
                "{\"ok\":true}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, calls, most_at_once })
    }

    fn answered(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// N messages with unique payloads to one FIFO automation whose receiver answers after
/// `--receiver-delay-ms`: delivered messages/s (first call to last answer) against the
/// ceiling 1 / mean receiver latency, the relay's hand-off time between one answer and the
/// next call (p50/p99/max), and a check that the calls came one at a time in ingest order.
pub async fn line(s: &Settings) -> anyhow::Result<Row> {
    let messages = if s.messages_given { s.messages } else { DEFAULT_MESSAGES };
    let delay = Duration::from_millis(s.receiver_delay_ms);
    let receiver = SlowReceiver::start(delay).await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    let resp = http
        .post(format!("{}/v1/processors/automations/endpoints", relay.base))
        .header("Api-Key", KEY)
        .json(&json!({"name": "bench-fifo", "processor_id": "proc_bench", "ordering": "fifo",
                      "webhook_url": format!("http://{}/hook", receiver.addr)}))
        .send()
        .await?;
    let created: Value = resp.json().await?;
    if created["ordering"] != "fifo" {
        bail!("create FIFO automation: {created}");
    }

    let settings = Settings { messages, ..s.clone() };
    let (_, _, sent) = push_messages(&http, &relay.base, &settings).await?;
    let deadline = Instant::now() + delay * u32::try_from(messages)? * 3 + Duration::from_secs(60);
    while receiver.answered() < messages || any_pending(&http, &relay.base).await? {
        if Instant::now() > deadline {
            bail!("only {} of {messages} answered", receiver.answered());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let calls = receiver.calls.lock().map_err(|_| anyhow!("lock"))?;
    let mut ingest_order: Vec<&String> = sent.keys().collect();
    ingest_order.sort();
    let seen: Vec<&String> = calls.iter().map(|c| &c.id).collect();
    let in_order = seen == ingest_order;
    let most_at_once = receiver.most_at_once.load(Ordering::SeqCst);
    let (first, last) = match (calls.first(), calls.last()) {
        (Some(f), Some(l)) => (f.start, l.end),
        _ => bail!("no call answered"),
    };
    let per_second = calls.len() as f64 / last.duration_since(first).as_secs_f64();
    let receiver_ms =
        calls.iter().map(|c| c.end.duration_since(c.start).as_secs_f64()).sum::<f64>() * 1000.0
            / calls.len() as f64;
    let ceiling = 1000.0 / receiver_ms;
    let mut handoffs: Vec<Duration> =
        calls.windows(2).map(|p| p[1].start.saturating_duration_since(p[0].end)).collect();
    let row = Row {
        scenario: "fifo".into(),
        count: calls.len(),
        per_second,
        latency_ms: percentiles(&mut handoffs),
        relay: Some(relay.stats()),
        extra: json!({
            "receiver_delay_ms": s.receiver_delay_ms,
            "receiver_latency_ms": receiver_ms,
            "ceiling_per_second": ceiling,
            "per_second_vs_ceiling": per_second / ceiling,
            "in_ingest_order": in_order,
            "most_calls_at_once": most_at_once,
            "payload_bytes": s.payloads.bytes,
            "latency": "hand-off: from one call's answer to the next call's arrival",
        }),
    };
    if !in_order || most_at_once != 1 {
        bail!(
            "the receiver saw {} calls, {most_at_once} at most at once, in ingest order: {in_order}",
            calls.len()
        );
    }
    Ok(row)
}
