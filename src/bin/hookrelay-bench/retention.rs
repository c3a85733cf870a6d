//! `retention`: what deleting a backlog costs the live path. `--logs` logs (1,000,000 by
//! default), each with its message and unique payload, all 40 days old, are seeded; the relay
//! starts on them with the default retention (30 days), whose first pass, at start-up,
//! deletes them in batches; the steady load (`--rate`, `--duration`) runs at once, and again
//! once the backlog is gone (every seeded row counted deleted on `/metrics`), as the control.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::receiver::Receiver;
use crate::relay::Relay;
use crate::report::Row;
use crate::scenarios::{client, create_automation};
use crate::scrape::Metrics;
use crate::seed::Dates;
use crate::steady::{offer, DEFAULT_DURATION_SECS};
use crate::Settings;

/// Age of the newest seeded row: past the default 30-day windows.
const AGE_MS: i64 = 40 * 24 * 3600 * 1000;
/// The default windows (config.example.toml's `[retention]`), for counting what is past them.
const WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
/// Longest wait for the backlog to be deleted.
const DELETION_TIMEOUT: Duration = Duration::from_secs(3600);

/// Runs the scenario; see the module doc.
pub async fn backlog(s: &Settings) -> anyhow::Result<Row> {
    let dir =
        std::env::temp_dir().join(format!("hookrelay-bench-retention-{}", crate::load::nanos()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("hookrelay.db");
    crate::seed::seed_logs(&db, s.logs, s.payloads, Dates::ending_ago(s.logs, AGE_MS)).await?;
    let backlog = old_rows(&db)?;
    let receiver = Receiver::start().await?;
    let started = Instant::now();
    // A pass every second: the first pass finds the overview's rollup not yet caught up with
    // the seeded logs (logs go only once counted), and the default 10 minutes until the next
    // would delete them long after the load.
    let relay = Relay::start_with(Some(dir), &[("retention", "interval_ms", "1000".into())])?;
    let http = client()?;
    let deletion = tokio::spawn(watch_deletion(http.clone(), relay.base.clone(), backlog, started));
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let duration_secs = s.duration_secs.unwrap_or(DEFAULT_DURATION_SECS);
    let mut during = offer(s, duration_secs, &http, &relay.base, &receiver).await?;
    let during_load_secs = started.elapsed().as_secs_f64();
    let done = deletion.await??;
    let mut control = offer(s, duration_secs, &http, &relay.base, &receiver).await?;

    let deletion_secs = done.iter().map(|(_, _, at)| *at).fold(0.0, f64::max);
    let rows: u64 = done.iter().map(|(_, n, _)| n).sum();
    let (during_json, control_json) = (during.json(), control.json());
    println!(
        "retention: deleted {rows} rows ({}) in {deletion_secs:.1} s = {:.0} rows/s; \
         enqueue→delivered p99 {:.2} ms while deleting, {:.2} ms after (control)",
        done.iter()
            .map(|(t, n, at)| format!("{t} {n} by {at:.1} s"))
            .collect::<Vec<_>>()
            .join(", "),
        rows as f64 / deletion_secs.max(1e-9),
        during_json["p99_ms"].as_f64().unwrap_or(0.0),
        control_json["p99_ms"].as_f64().unwrap_or(0.0),
    );
    Ok(Row {
        scenario: "retention".into(),
        count: during.count,
        per_second: during.per_second(),
        latency_ms: (
            during_json["p50_ms"].as_f64().unwrap_or(0.0),
            during_json["p99_ms"].as_f64().unwrap_or(0.0),
            during_json["max_ms"].as_f64().unwrap_or(0.0),
        ),
        relay: Some(relay.stats()),
        extra: json!({
            "measures": "enqueue→delivered at a fixed rate while retention deletes a backlog (the row's latencies), then once it is gone (control)",
            "rate": s.rate, "duration_secs": duration_secs, "seeded_logs": s.logs, "age_days": AGE_MS / 86_400_000,
            "while_deleting": during_json, "control": control_json,
            "deleted_rows": rows, "deletion_secs": deletion_secs,
            "deleted_rows_per_second": rows as f64 / deletion_secs.max(1e-9),
            "first_load_ended_secs": during_load_secs,
            "deletion_outlasted_first_load": deletion_secs > during_load_secs,
            "tables": done.iter().map(|(t, n, at)| (t.to_string(), json!({"rows": n, "done_at_secs": at})))
                .collect::<Map<String, Value>>(),
        }),
    })
}

/// The seeded rows past the default windows, per table: what the first pass must delete.
fn old_rows(db: &std::path::Path) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let cutoff = hookrelay::time::UnixMs::now().minus_ms(WINDOW_MS).as_ms();
    let message_bound = hookrelay::ids::MessageId::time_bound(cutoff);
    let count = |sql: &str, param: &dyn rusqlite::ToSql| -> anyhow::Result<u64> {
        let n: i64 = c.query_row(sql, [param], |r| r.get(0)).context("counting the seed")?;
        Ok(n.max(0) as u64)
    };
    let log_bound = hookrelay::ids::LogId::time_bound(cutoff);
    Ok(vec![
        ("logs", count("SELECT count(*) FROM logs WHERE id < ?1", &log_bound)?),
        ("messages", count("SELECT count(*) FROM messages WHERE id < ?1", &message_bound)?),
        ("bodies", count("SELECT count(*) FROM bodies WHERE used_at < ?1", &cutoff)?),
    ])
}

/// Polls `/metrics` until every table's deleted rows reach `backlog`; returns, per table, the
/// rows and the seconds from `started` (just before the relay started: its first pass runs
/// at start-up) until they were all deleted.
async fn watch_deletion(
    http: reqwest::Client,
    base: String,
    backlog: Vec<(&'static str, u64)>,
    started: Instant,
) -> anyhow::Result<Vec<(&'static str, u64, f64)>> {
    let mut done: Vec<Option<f64>> = vec![None; backlog.len()];
    while done.iter().any(Option::is_none) {
        if started.elapsed() > DELETION_TIMEOUT {
            bail!("the backlog was not deleted in {} s", DELETION_TIMEOUT.as_secs());
        }
        let metrics = Metrics::fetch(&http, &base).await?;
        for ((table, rows), at) in backlog.iter().zip(done.iter_mut()) {
            if at.is_none() && metrics.deleted(table) >= *rows {
                *at = Some(started.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(backlog.iter().zip(done).map(|((t, n), at)| (*t, *n, at.unwrap_or_default())).collect())
}
