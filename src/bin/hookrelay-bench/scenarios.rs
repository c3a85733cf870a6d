//! The named scenarios. Each returns one [`Row`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::load::{closed_loop, percentiles};
use crate::report::Row;

use crate::receiver::Receiver;
use crate::relay::{Relay, KEY};
use crate::Settings;

/// The scenarios `--database postgres://…` runs (the others read the SQLite file, e.g.
/// `dbstat`, or were not tried on PostgreSQL).
pub const ON_POSTGRES: [&str; 4] = ["e2e", "ingest", "raw", "forward"];

/// Runs scenario `name`.
pub async fn run(name: &str, s: &Settings) -> anyhow::Result<Row> {
    if crate::postgres::SERVER.get().is_some() && !ON_POSTGRES.contains(&name) {
        bail!(
            "not on PostgreSQL yet (it reads the SQLite file or has not been tried there); \
             with --database run {}",
            ON_POSTGRES.join(" ")
        );
    }
    match name {
        "raw" => raw(s).await,
        "forward" => crate::forward::forward(s).await,
        "ingest" => ingest(s).await,
        "e2e" => e2e(s).await,
        "rerun" => rerun(s).await,
        "logs-query" => crate::logs_query::pages(s).await,
        "console" => crate::console::pages(s).await,
        "steady" => crate::steady::steady(s).await,
        "retention" => crate::retention::backlog(s).await,
        "soak" => crate::soak::soak(s).await,
        "workflow" => crate::workflow::blocking_runs(s).await,
        "sse" => crate::workflow::first_sse_byte(s).await,
        "sink" => crate::sink::appends(s).await,
        "fanout" => crate::spread::fanout(s).await,
        "failing" => crate::spread::failing(s).await,
        "fifo" => crate::fifo::line(s).await,
        other => bail!("unknown scenario {other}"),
    }
}

/// The load tool's HTTP client. Idle pooled connections are dropped after 5 s, before the
/// relay closes them (an idle HTTP/1.1 connection gets `header_read_timeout_ms`, 10 s): a
/// request sent on a connection the server is closing fails with "connection closed before
/// message completed", which ended a 16-minute soak at its last second.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()?)
}

pub(crate) async fn create_automation(
    http: &reqwest::Client,
    relay: &Relay,
    processor: &str,
    url: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{}/v1/processors/automations/endpoints", relay.base))
        .header("Api-Key", KEY)
        .json(&json!({"name": "bench", "processor_id": processor, "webhook_url": url}))
        .send()
        .await?;
    let body: Value = resp.json().await?;
    body["id"].as_str().map(String::from).ok_or_else(|| anyhow!("create automation: {body}"))
}

/// The loopback ceiling: the same client posting the same payloads straight to the receiver.
async fn raw(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let http = client()?;
    let url = format!("http://{}/hook", receiver.addr);
    let payloads = s.payloads;
    let (elapsed, mut lat) = closed_loop(s.messages, s.concurrency, move |i| {
        let (http, url, body) = (http.clone(), url.clone(), payloads.payload(i));
        async move {
            let resp =
                http.post(&url).header("webhook-id", i.to_string()).body(body).send().await?;
            resp.error_for_status()?.bytes().await?;
            Ok(())
        }
    })
    .await?;
    Ok(Row {
        scenario: "raw".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: None,
        extra: json!({"concurrency": s.concurrency, "payload_bytes": s.payloads.bytes}),
    })
}

/// Sends `s.messages` messages; returns elapsed, API latencies and message id → send start.
pub(crate) async fn push_messages(
    http: &reqwest::Client,
    base: &str,
    s: &Settings,
) -> anyhow::Result<(Duration, Vec<Duration>, HashMap<String, Instant>)> {
    push_messages_over(http, &[base.to_string()], s).await
}

/// Like [`push_messages`], message i to `bases[i % bases.len()]` (producers spread
/// round-robin over a run's instances).
pub(crate) async fn push_messages_over(
    http: &reqwest::Client,
    bases: &[String],
    s: &Settings,
) -> anyhow::Result<(Duration, Vec<Duration>, HashMap<String, Instant>)> {
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let urls: Arc<Vec<String>> =
        Arc::new(bases.iter().map(|b| format!("{b}/v1/messages")).collect());
    if urls.is_empty() {
        bail!("no relay to post to");
    }
    let payloads = s.payloads;
    let (http, record) = (http.clone(), started.clone());
    let (elapsed, lat) = closed_loop(s.messages, s.concurrency, move |i| {
        let (http, url, body, record) =
            (http.clone(), urls[i % urls.len()].clone(), payloads.message(i), record.clone());
        async move {
            let t = Instant::now();
            let id = post_message(&http, &url, body).await?;
            record.lock().map_err(|_| anyhow!("lock"))?.insert(id, t);
            Ok(())
        }
    })
    .await?;
    let map = std::mem::take(&mut *started.lock().map_err(|_| anyhow!("lock"))?);
    Ok((elapsed, lat, map))
}

/// Posts one message to `url` (`…/v1/messages`); returns its id once answered 202.
pub(crate) async fn post_message(
    http: &reqwest::Client,
    url: &str,
    body: String,
) -> anyhow::Result<String> {
    let resp = http
        .post(url)
        .header("Api-Key", KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    if resp.status().as_u16() != 202 {
        bail!("ingest answered {}", resp.status());
    }
    let v: Value = resp.json().await?;
    Ok(v["id"].as_str().context("message id")?.to_string())
}

/// Waits until the receiver saw `n` distinct messages and no delivery is pending (every
/// attempt's log committed).
pub(crate) async fn wait_drained(
    http: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
    n: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.distinct() < n {
        if Instant::now() > deadline {
            bail!("only {} of {n} delivered", receiver.distinct());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while any_pending(http, base).await? {
        if Instant::now() > deadline {
            bail!("deliveries still pending");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Whether any delivery is still pending.
pub(crate) async fn any_pending(http: &reqwest::Client, base: &str) -> anyhow::Result<bool> {
    let v: Value = http
        .get(format!("{base}/v1/deliveries?status=pending&limit=1"))
        .header("Api-Key", KEY)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["data"].as_array().is_some_and(|d| !d.is_empty()))
}

async fn ingest(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let (elapsed, mut lat, _) = push_messages(&http, &relay.base, s).await?;
    Ok(Row {
        scenario: "ingest".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({"concurrency": s.concurrency, "payload_bytes": s.payloads.bytes}),
    })
}

async fn e2e(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relays = Relay::start_instances()?;
    let relay = relays.first().context("no relay started")?;
    let http = client()?;
    create_automation(&http, relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let watch = match (crate::postgres::SERVER.get(), &relay.database) {
        (Some(server), Some(db)) => Some(crate::postgres::Watch::start(server, &db.url).await?),
        _ => None,
    };
    let bases: Vec<String> = relays.iter().map(|r| r.base.clone()).collect();
    let t0 = Instant::now();
    let (_, mut api_lat, started) = push_messages_over(&http, &bases, s).await?;
    wait_drained(&http, &relay.base, &receiver, s.messages).await?;
    let elapsed = t0.elapsed();
    let stats = Relay::sum_stats(&relays);
    let postgres = match watch {
        Some(w) => Some(w.finish(s.messages, stats.as_ref().map_or(0.0, |r| r.cpu_ms)).await?),
        None => None,
    };
    let arrivals = receiver.arrivals.lock().map_err(|_| anyhow!("lock"))?;
    let mut lat: Vec<Duration> = started
        .iter()
        .filter_map(|(id, t)| arrivals.first.get(id).map(|a| a.saturating_duration_since(*t)))
        .collect();
    let duplicates = arrivals.calls - arrivals.first.len();
    let api = percentiles(&mut api_lat);
    if let Some(pg) = &postgres {
        println!(
            "postgres: {} instance(s), relay {:.0} + postgres {:.0} = {:.0} cpu_us/delivery, \
             lock waits in {} of {} active-backend samples, deadlocks {}",
            relays.len(),
            pg["relay_cpu_us_per_delivery"].as_f64().unwrap_or(0.0),
            pg["cpu_us_per_delivery"].as_f64().unwrap_or(0.0),
            pg["relay_plus_postgres_cpu_us_per_delivery"].as_f64().unwrap_or(0.0),
            pg["lock_wait_samples"],
            pg["active_backend_samples"],
            pg["stat_database"]["deadlocks"],
        );
    }
    Ok(Row {
        scenario: "e2e".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: stats,
        extra: json!({
            "concurrency": s.concurrency, "payload_bytes": s.payloads.bytes, "duplicates": duplicates,
            "api_p50_ms": api.0, "api_p99_ms": api.1,
            "backend": if postgres.is_some() { "postgres" } else { "sqlite" },
            "instances": relays.len(), "postgres": postgres,
        }),
    })
}

async fn rerun(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let relay = Relay::start(None)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let one = Settings { messages: 1, concurrency: 1, ..s.clone() };
    push_messages(&http, &relay.base, &one).await?;
    wait_drained(&http, &relay.base, &receiver, 1).await?;
    let list: Value = http
        .get(format!("{}/v1/processors/automations/logs?limit=1", relay.base))
        .header("Api-Key", KEY)
        .send()
        .await?
        .json()
        .await?;
    let log_id = list["data"][0]["id"].as_str().context("a log")?.to_string();
    let url = format!("{}/v1/processors/automations/logs/{log_id}/rerun", relay.base);
    let count = 1000;
    let (elapsed, mut lat) = closed_loop(count, 1, move |_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let resp = http
                .post(&url)
                .header("Api-Key", KEY)
                .header("content-type", "application/json")
                .send()
                .await?;
            let v: Value = resp.error_for_status()?.json().await?;
            if v["status_code"] != 200 {
                bail!("rerun: {v}");
            }
            Ok(())
        }
    })
    .await?;
    Ok(Row {
        scenario: "rerun".into(),
        count,
        per_second: count as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({"sequential": true}),
    })
}
