//! Workflow scenarios: blocking runs of the template-only demo app (each committing its
//! completion webhook), and the time to the first byte of a streaming run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::load::{closed_loop, percentiles};
use crate::receiver::Receiver;
use crate::relay::Relay;
use crate::report::Row;
use crate::scenarios::{client, create_automation, wait_drained};
use crate::Settings;

const APP_KEY: &str = "app-demo-key-0123456789";

/// `s.messages` blocking runs at `s.concurrency`; then waits for every completion webhook.
pub async fn blocking_runs(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "demo", &format!("http://{}/hook", receiver.addr)).await?;
    let url = format!("{}/v1/workflows/run", relay.base);
    let started = Instant::now();
    let call_http = http.clone();
    let (elapsed, mut lat) = closed_loop(s.messages, s.concurrency, move |i| {
        let (http, url) = (call_http.clone(), url.clone());
        async move {
            let body = json!({"inputs": {"name": format!("user {i}")}, "response_mode": "blocking", "user": format!("u{i}")});
            let v: Value = http.post(&url).bearer_auth(APP_KEY).json(&body).send().await?.json().await?;
            if v["data"]["status"] != "succeeded" {
                bail!("run did not succeed: {v}");
            }
            Ok(())
        }
    })
    .await?;
    wait_drained(&http, &relay.base, &receiver, s.messages).await?;
    Ok(Row {
        scenario: "workflow".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({"concurrency": s.concurrency, "webhooks_delivered_after_s": started.elapsed().as_secs_f64()}),
    })
}

/// Sequential streaming runs: time from sending the request to the first body byte.
pub async fn first_sse_byte(_s: &Settings) -> anyhow::Result<Row> {
    let relay = Relay::start(None)?;
    let http = client()?;
    let url = Arc::new(format!("{}/v1/workflows/run", relay.base));
    let count = 500;
    let mut firsts: Vec<Duration> = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let body = json!({"inputs": {"name": "stream"}, "response_mode": "streaming", "user": format!("s{i}")});
        let t = Instant::now();
        let response = http.post(url.as_str()).bearer_auth(APP_KEY).json(&body).send().await?;
        let mut stream = response.bytes_stream();
        let mut first = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if first.is_none() && !chunk.is_empty() {
                first = Some(t.elapsed());
            }
        }
        firsts.push(first.unwrap_or_else(|| t.elapsed()));
    }
    let elapsed = started.elapsed();
    Ok(Row {
        scenario: "sse".into(),
        count,
        per_second: count as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut firsts),
        relay: Some(relay.stats()),
        extra: json!({"measures": "time to first SSE byte", "sequential": true}),
    })
}
