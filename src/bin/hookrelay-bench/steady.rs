//! `steady`: messages at a fixed rate (`--rate`, 1,000/s by default) for `--duration`
//! seconds (30 by default), open loop: each message is sent at its scheduled instant whatever
//! the relay is doing, and its enqueue→delivered latency is measured from that instant, so a
//! stall shows up in the figures instead of slowing the sender down (no coordinated omission).
//! [`offer`] is that load, which `retention` and `soak` run too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::{json, Value};
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

/// `--duration` of `steady` when not given.
pub const DEFAULT_DURATION_SECS: usize = 30;

/// What one open-loop run measured.
pub struct Offered {
    /// Messages sent.
    pub count: usize,
    /// Time the sending took (about the duration asked, unless the relay stalled the sender).
    pub sending: Duration,
    /// Each message's enqueue→delivered latency, from its scheduled send time.
    pub delivered: Vec<Duration>,
    /// Each message's ingest answer time, from its scheduled send time.
    pub api: Vec<Duration>,
}

impl Offered {
    /// Messages offered per second, as sent.
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.sending.as_secs_f64()
    }

    /// The latencies as JSON: enqueue→delivered and ingest p50/p99/max, ms.
    pub fn json(&mut self) -> Value {
        let delivered = percentiles(&mut self.delivered);
        let api = percentiles(&mut self.api);
        json!({
            "messages": self.count, "per_second": self.per_second(),
            "p50_ms": delivered.0, "p99_ms": delivered.1, "max_ms": delivered.2,
            "api_p50_ms": api.0, "api_p99_ms": api.1, "api_max_ms": api.2,
        })
    }
}

/// Runs the scenario; see the module doc.
pub async fn steady(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let duration_secs = s.duration_secs.unwrap_or(DEFAULT_DURATION_SECS);
    let mut load = offer(s, duration_secs, &http, &relay.base, &receiver).await?;
    let api = percentiles(&mut load.api);
    Ok(Row {
        scenario: "steady".into(),
        count: load.count,
        per_second: load.per_second(),
        latency_ms: percentiles(&mut load.delivered),
        relay: Some(relay.stats()),
        extra: json!({
            "measures": "enqueue→delivered at a fixed offered rate, from each message's scheduled send time",
            "rate": s.rate, "duration_secs": duration_secs, "api_p50_ms": api.0, "api_p99_ms": api.1,
        }),
    })
}

/// Sends `s.rate` messages a second for `duration_secs` to the relay at `base` (whose
/// automation delivers them to `receiver`), open loop, and waits until all are delivered.
/// The receiver may have seen messages of an earlier run: only this run's are measured.
pub async fn offer(
    s: &Settings,
    duration_secs: usize,
    http: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
) -> anyhow::Result<Offered> {
    let seen_before = receiver.distinct();
    let count = s.rate * duration_secs;
    let url = Arc::new(format!("{base}/v1/messages"));
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
    wait_drained(http, base, receiver, seen_before + count).await?;
    let scheduled = std::mem::take(&mut *scheduled.lock().map_err(|_| anyhow!("lock"))?);
    let arrivals = receiver.arrivals.lock().map_err(|_| anyhow!("lock"))?;
    let delivered = scheduled
        .iter()
        .filter_map(|(id, at)| arrivals.first.get(id).map(|a| a.saturating_duration_since(*at)))
        .collect();
    Ok(Offered { count, sending, delivered, api })
}
