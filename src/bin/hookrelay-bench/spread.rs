//! Scenarios of several automations: `fanout` (each message to 10 automations) and `failing`
//! (a receiver failing every other call beside a healthy one, which must not slow down).

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::load::percentiles;
use crate::receiver::Receiver;
use crate::relay::{Relay, RelayStats, KEY};
use crate::report::Row;
use crate::scenarios::{any_pending, client, create_automation, push_messages};
use crate::Settings;

/// One message to 10 automations: deliveries per second until every call is logged.
pub async fn fanout(s: &Settings) -> anyhow::Result<Row> {
    const FAN: usize = 10;
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    for i in 0..FAN {
        create_automation(
            &http,
            &relay,
            "proc_bench",
            &format!("http://{}/hook/{i}", receiver.addr),
        )
        .await?;
    }
    let messages = (s.messages / FAN).max(1);
    let settings = Settings { messages, ..s.clone() };
    let t0 = Instant::now();
    let (_, mut api, _) = push_messages(&http, &relay.base, &settings).await?;
    let deadline = t0 + Duration::from_secs(600);
    while receiver.calls() < messages * FAN || any_pending(&http, &relay.base).await? {
        if Instant::now() > deadline {
            bail!("fanout did not drain");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = t0.elapsed();
    Ok(Row {
        scenario: "fanout".into(),
        count: messages * FAN,
        per_second: (messages * FAN) as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut api),
        relay: Some(relay.stats()),
        extra: json!({"automations": FAN, "messages": messages, "latency": "API p50/p99 of the ingest calls"}),
    })
}

/// A healthy automation beside one whose receiver fails every other call: the healthy one's
/// throughput and enqueue→delivered latency, against a control run where the other
/// automation is healthy too (so the retries' cost is what differs), and the failing one's
/// retries scheduled and logged.
pub async fn failing(s: &Settings) -> anyhow::Result<Row> {
    let control = healthy_beside(s, 0).await?;
    let mut flaky = healthy_beside(s, 2).await?;
    let mut control_lat = control.latencies;
    let control_lat = percentiles(&mut control_lat);
    Ok(Row {
        scenario: "failing".into(),
        count: s.messages,
        per_second: flaky.per_second,
        latency_ms: percentiles(&mut flaky.latencies),
        relay: Some(flaky.relay),
        extra: json!({
            "measures": "the healthy automation beside a 50 %-failing one",
            "flaky_calls": flaky.other_calls, "flaky_delivered": flaky.other_delivered,
            "failures_logged": flaky.failures_logged,
            "control": {
                "measures": "the same automation beside a healthy one",
                "per_second": control.per_second, "p50_ms": control_lat.0, "p99_ms": control_lat.1,
            },
            "healthy_throughput_vs_control": flaky.per_second / control.per_second,
        }),
    })
}

/// What the healthy automation saw beside the other one.
struct Beside {
    per_second: f64,
    latencies: Vec<Duration>,
    relay: RelayStats,
    other_calls: usize,
    other_delivered: usize,
    failures_logged: bool,
}

/// Sends `s.messages` to a healthy automation and another whose receiver fails every
/// `fail_every`-th call (0: never); measures the healthy one until it has them all.
async fn healthy_beside(s: &Settings, fail_every: usize) -> anyhow::Result<Beside> {
    let healthy = Receiver::start().await?;
    let other = Receiver::start_failing_every(fail_every).await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/ok", healthy.addr)).await?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/other", other.addr)).await?;
    let t0 = Instant::now();
    let (_, _, started) = push_messages(&http, &relay.base, s).await?;
    let deadline = t0 + Duration::from_secs(600);
    while healthy.distinct() < s.messages {
        if Instant::now() > deadline {
            bail!("healthy automation did not catch up");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let healthy_done = t0.elapsed();
    let latencies: Vec<Duration> = {
        let arrivals = healthy.arrivals.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        started
            .iter()
            .filter_map(|(id, t)| arrivals.first.get(id).map(|a| a.saturating_duration_since(*t)))
            .collect()
    };
    let logs: Value = http
        .get(format!("{}/v1/processors/automations/logs?status_class=5xx&limit=1", relay.base))
        .header("Api-Key", KEY)
        .send()
        .await?
        .json()
        .await?;
    Ok(Beside {
        per_second: s.messages as f64 / healthy_done.as_secs_f64(),
        latencies,
        relay: relay.stats(),
        other_calls: other.calls(),
        other_delivered: other.distinct(),
        failures_logged: logs["data"].as_array().is_some_and(|d| !d.is_empty()),
    })
}
