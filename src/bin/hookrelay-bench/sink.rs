//! The `sink` scenario: signed appends to the sheets sink, then 100-row reads deep in the sheet.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use crate::load::{closed_loop, percentiles};
use crate::relay::{Relay, KEY};
use crate::report::Row;
use crate::scenarios::client;
use crate::Settings;
use hookrelay::delivery::signing;

/// `s.messages` signed appends at `s.concurrency`, then sequential reads of 100 rows.
pub async fn appends(s: &Settings) -> anyhow::Result<Row> {
    let relay = Relay::start(None)?;
    let http = client()?;
    let secret = signing::new_secret();
    let created: Value = http
        .post(format!("{}/v1/spreadsheets", relay.base))
        .header("Api-Key", KEY)
        .json(&json!({"title": "bench", "webhook_secret": secret}))
        .send()
        .await?
        .json()
        .await?;
    let id =
        created["spreadsheetId"].as_str().ok_or_else(|| anyhow!("create: {created}"))?.to_string();
    let url = Arc::new(format!(
        "{}/v1/integrations/google_sheets/webhook?spreadsheet_id={id}&worksheet_id=0",
        relay.base
    ));
    let secret = Arc::new(secret);
    let call_http = http.clone();
    let (elapsed, mut lat) = closed_loop(s.messages, s.concurrency, move |i| {
        let (http, url, secret) = (call_http.clone(), url.clone(), secret.clone());
        async move {
            let body = json!({"completion": {"choices": [{"message": {"parsed": {
                "invoice": i, "customer": format!("customer {i}"), "total": "99.00", "address": {"city": "Paris"}
            }}}]}})
            .to_string();
            let msg_id = format!("msg_bench_{i}");
            let ts = chrono::Utc::now().timestamp();
            let signature = signing::signature_header(&[secret.as_str()], &msg_id, ts, body.as_bytes());
            let resp = http
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("webhook-id", msg_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("append answered {}", resp.status());
            }
            Ok(())
        }
    })
    .await?;
    // Reads of 100 rows from the middle of the sheet.
    let middle = (s.messages / 2).max(2);
    let read =
        format!("{}/v1/spreadsheets/{id}/values/Sheet1!A{middle}:E{}", relay.base, middle + 99);
    let mut reads = Vec::with_capacity(200);
    let started = Instant::now();
    for _ in 0..200 {
        let t = Instant::now();
        let v: Value = http.get(&read).header("Api-Key", KEY).send().await?.json().await?;
        reads.push(t.elapsed());
        if v["values"].as_array().map_or(0, Vec::len) != 100.min(s.messages) {
            bail!("read returned {v}");
        }
    }
    let read_lat = percentiles(&mut reads);
    Ok(Row {
        scenario: "sink".into(),
        count: s.messages,
        per_second: s.messages as f64 / elapsed.as_secs_f64(),
        latency_ms: percentiles(&mut lat),
        relay: Some(relay.stats()),
        extra: json!({
            "signed": true, "concurrency": s.concurrency,
            "read_100_rows_p50_ms": read_lat.0, "read_100_rows_p99_ms": read_lat.1,
            "reads_seconds": started.elapsed().as_secs_f64(),
        }),
    })
}
