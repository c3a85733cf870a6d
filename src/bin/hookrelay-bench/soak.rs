//! `soak`: the steady load (`--rate`, unique payloads) for `--duration` (600 s by default)
//! under short retention windows (logs and messages 60 s, content 600 s, the shortest
//! allowed; a pass every 10 s), sampling every 10 s the database file and WAL sizes, the
//! relay's `hookrelay_database_size_bytes` and `hookrelay_database_free_pages` gauges, the
//! rows retention deleted and the rows stored. Logs, messages and deliveries level off after
//! a minute, content after ten: run it for longer than that to see the file level off.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::receiver::Receiver;
use crate::relay::{Override, Relay};
use crate::report::Row;
use crate::scenarios::{client, create_automation};
use crate::scrape::{Metrics, TABLES};
use crate::steady::offer;
use crate::Settings;

/// `--duration` of `soak` when not given.
const DEFAULT_DURATION_SECS: usize = 600;
/// Time between two samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The `[retention]` the relay runs with.
fn windows() -> Vec<Override> {
    [
        ("logs_secs", "60"),
        ("messages_secs", "60"),
        ("payload_secs", "600"),
        ("interval_ms", "10000"),
    ]
    .into_iter()
    .map(|(key, value)| ("retention", key, value.to_string()))
    .collect()
}

/// Runs the scenario; see the module doc.
pub async fn soak(s: &Settings) -> anyhow::Result<Row> {
    let receiver = Receiver::start().await?;
    let windows = windows();
    let relay = Relay::start_with(None, &windows)?;
    let http = client()?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let duration_secs = s.duration_secs.unwrap_or(DEFAULT_DURATION_SECS);
    let (stop, stopped) = oneshot::channel();
    let sampler =
        tokio::spawn(sample(http.clone(), relay.base.clone(), relay.dir.clone(), stopped));
    let load = offer(s, duration_secs, &http, &relay.base, &receiver).await;
    let _ = stop.send(());
    let samples = sampler.await?;
    let mut load = load?;
    let latency = load.json();
    Ok(Row {
        scenario: "soak".into(),
        count: load.count,
        per_second: load.per_second(),
        latency_ms: (
            latency["p50_ms"].as_f64().unwrap_or(0.0),
            latency["p99_ms"].as_f64().unwrap_or(0.0),
            latency["max_ms"].as_f64().unwrap_or(0.0),
        ),
        relay: Some(relay.stats()),
        extra: json!({
            "measures": "the database's size over a steady load under short retention windows",
            "rate": s.rate, "duration_secs": duration_secs, "latency": latency,
            "retention": windows.iter().map(|(_, k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "samples": samples,
        }),
    })
}

/// Samples every [`SAMPLE_EVERY`] until `stop`, and once more then; prints each sample.
async fn sample(
    http: reqwest::Client,
    base: String,
    dir: std::path::PathBuf,
    mut stop: oneshot::Receiver<()>,
) -> Vec<Value> {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    let mut samples = Vec::new();
    let mut sampled_at = None::<Instant>;
    loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = &mut stop => true,
        };
        // The load often ends on a tick: a second sample of the same moment says nothing.
        if last && sampled_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return samples;
        }
        sampled_at = Some(Instant::now());
        match one_sample(&http, &base, &dir, started).await {
            Ok(s) => {
                println!("soak {}", sample_line(&s));
                samples.push(s);
            }
            Err(e) => eprintln!("soak: sample failed: {e:#}"),
        }
        if last {
            return samples;
        }
    }
}

/// The database's state now.
async fn one_sample(
    http: &reqwest::Client,
    base: &str,
    dir: &Path,
    started: Instant,
) -> anyhow::Result<Value> {
    let metrics = Metrics::fetch(http, base).await?;
    let size = |file: &str| std::fs::metadata(dir.join(file)).map_or(0, |m| m.len());
    let rows = stored_rows(&dir.join("hookrelay.db"))?;
    Ok(json!({
        "t_secs": started.elapsed().as_secs(),
        "db_bytes": size("hookrelay.db"), "wal_bytes": size("hookrelay.db-wal"),
        "size_gauge_bytes": metrics.value("hookrelay_database_size_bytes") as u64,
        "free_pages": metrics.value("hookrelay_database_free_pages") as u64,
        "deleted": TABLES.iter().map(|t| (t.to_string(), json!(metrics.deleted(t)))).collect::<serde_json::Map<_, _>>(),
        "rows": rows,
    }))
}

/// Rows stored per table, from a read-only connection.
fn stored_rows(db: &Path) -> anyhow::Result<Value> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut rows = serde_json::Map::new();
    for table in TABLES {
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        rows.insert(table.to_string(), json!(n));
    }
    Ok(Value::Object(rows))
}

/// One sample as a line: time, sizes in MiB, free pages, rows stored and deleted per table.
fn sample_line(s: &Value) -> String {
    let mib = |key: &str| s[key].as_u64().unwrap_or(0) as f64 / 1_048_576.0;
    let tables = TABLES
        .iter()
        .map(|t| format!("{t} {}/-{}", s["rows"][t], s["deleted"][t]))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "t={:>4}s db {:.1} MiB wal {:.1} MiB gauge {:.1} MiB free_pages {} | stored/-deleted: {tables}",
        s["t_secs"],
        mib("db_bytes"),
        mib("wal_bytes"),
        mib("size_gauge_bytes"),
        s["free_pages"],
    )
}
