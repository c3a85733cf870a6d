//! `logs-query`: filtered pages of 100 AutomationLogs out of `--logs` stored (1,000,000 by
//! default), first on an idle relay, then while it ingests and delivers at full speed, so the
//! peak RSS is that of a relay holding a million logs and working.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Value};

use crate::load::{closed_loop, percentiles};
use crate::receiver::Receiver;
use crate::relay::{Relay, KEY};
use crate::report::Row;
use crate::scenarios::{client, create_automation, push_messages, wait_drained};
use crate::seed::Dates;
use crate::Settings;

/// Messages pushed through the relay in the write-load phase.
const WRITE_LOAD_MESSAGES: usize = 20_000;

/// Runs the scenario; see the module doc.
pub async fn pages(s: &Settings) -> anyhow::Result<Row> {
    let dir = std::env::temp_dir().join(format!("hookrelay-bench-logs-{}", crate::load::nanos()));
    std::fs::create_dir_all(&dir)?;
    // Logs that end now: the default retention (30 days) keeps all of them while the scenario
    // runs (1,000,000 logs 2 s apart span 23 days), so its deletes do not skew the figures.
    let dates = Dates::ending_now(s.logs);
    let automations =
        crate::seed::seed_logs(&dir.join("hookrelay.db"), s.logs, s.payloads, dates).await?;
    let relay = Relay::start(Some(dir))?;
    let http = client()?;
    let base = format!("{}/v1/processors/automations/logs", relay.base);
    let mid = dates.middle_time(s.logs);
    let queries = Arc::new(vec![
        format!("{base}?limit=100&automation_id={}", automations[3]),
        format!("{base}?limit=100&status_class=5xx"),
        format!("{base}?limit=100&status_code=404&order=asc"),
        format!("{base}?limit=100&created_after={}&created_before={}", mid.0, mid.1),
        format!(
            "{base}?limit=100&automation_id={}&status_class=2xx&created_before={}",
            automations[7], mid.1
        ),
        format!("{base}?limit=100&after={}", dates.middle_id(s.logs)),
    ]);
    let n = queries.len() * 100;
    let (elapsed, mut lat) = query_loop(&http, &queries, n).await?;

    let receiver = Receiver::start().await?;
    create_automation(&http, &relay, "proc_bench", &format!("http://{}/hook", receiver.addr))
        .await?;
    let load = Settings { messages: WRITE_LOAD_MESSAGES, ..s.clone() };
    let writes = {
        let (http, relay_base) = (http.clone(), relay.base.clone());
        let load = load.clone();
        tokio::spawn(async move { push_messages(&http, &relay_base, &load).await })
    };
    let (_, mut loaded_lat) = query_loop(&http, &queries, n).await?;
    let (write_elapsed, _, _) = writes.await??;
    wait_drained(&http, &relay.base, &receiver, WRITE_LOAD_MESSAGES).await?;
    let loaded = percentiles(&mut loaded_lat);
    Ok(Row {
        scenario: "logs-query".into(),
        count: n,
        per_second: n as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({
            "logs": s.logs, "page": 100,
            "under_write_load": {
                "messages": WRITE_LOAD_MESSAGES,
                "ingest_per_second": WRITE_LOAD_MESSAGES as f64 / write_elapsed.as_secs_f64(),
                "query_p50_ms": loaded.0, "query_p99_ms": loaded.1, "query_max_ms": loaded.2,
            },
        }),
    })
}

/// `n` sequential page requests cycling through `queries`; every page must be non-empty.
async fn query_loop(
    http: &reqwest::Client,
    queries: &Arc<Vec<String>>,
    n: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let (http, queries) = (http.clone(), queries.clone());
    closed_loop(n, 1, move |i| {
        let (http, queries) = (http.clone(), queries.clone());
        async move {
            let url = &queries[i % queries.len()];
            let v: Value = http
                .get(url)
                .header("Api-Key", KEY)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if v["data"].as_array().map_or(0, Vec::len) == 0 {
                bail!("empty page for {url}");
            }
            Ok(())
        }
    })
    .await
}
