//! `steady`: messages at a fixed rate (`--rate`, 1,000/s by default) for `--duration`
//! seconds, open loop: each message is sent at its scheduled instant whatever the relay is
//! doing, and its enqueue→delivered latency is measured from that instant, so a stall shows
//! up in the figures instead of slowing the sender down (no coordinated omission).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use crate::load::percentiles;
use crate::receiver::Receiver;
use crate::relay::Relay;
use crate::report::Row;
use crate::scenarios::{client, create_automation, post_message, wait_drained};
use crate::Settings;

/// Most requests in flight; past it the schedule slips and the run fails (the relay could
/// not keep up with the rate).
const MAX_IN_FLIGHT: usize = 512;

/// Runs the scenario; see the module doc.
pub async fn steady(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let count = s.rate * s.duration_secs;
    let url = Arc::new(format!("{}/v1/messages", relay.base));
    let scheduled: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate.max(1) as f64));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count);
    let t0 = Instant::now();
    for seq in 0..count {
        let at = ticker.tick().await.into_std();
        let permit = in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| anyhow!("{MAX_IN_FLIGHT} requests in flight: the relay fell behind"))?;
        let (http, url, body, scheduled) =
            (http.clone(), url.clone(), s.payloads.message(seq), scheduled.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let id = post_message(&http, &url, body).await?;
            scheduled.lock().map_err(|_| anyhow!("lock"))?.insert(id, at);
            Ok::<_, anyhow::Error>(at.elapsed())
        }));
    }
    let mut api = Vec::with_capacity(count);
    for task in tasks {
        api.push(task.await??);
    }
    let sending = t0.elapsed();
    wait_drained(&http, &relay.base, &receiver, count).await?;
    let scheduled = std::mem::take(&mut *scheduled.lock().map_err(|_| anyhow!("lock"))?);
    let arrivals = receiver.arrivals.lock().map_err(|_| anyhow!("lock"))?;
    let mut lat: Vec<Duration> = scheduled
        .iter()
        .filter_map(|(id, at)| arrivals.first.get(id).map(|a| a.saturating_duration_since(*at)))
        .collect();
    let api = percentiles(&mut api);
    Ok(Row {
        scenario: "steady".into(),
        count,
        per_second: count as f64 / sending.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({
            "measures": "enqueue→delivered at a fixed offered rate, from each message's scheduled send time",
            "rate": s.rate, "duration_secs": s.duration_secs, "api_p50_ms": api.0, "api_p99_ms": api.1,
        }),
    })
}
