//! Reads the relay's `/metrics` (Prometheus text) for the retention scenarios.

use anyhow::Context;

/// The tables whose deleted rows `hookrelay_retention_deleted_rows_total` counts.
pub const TABLES: [&str; 4] = ["logs", "messages", "deliveries", "bodies"];

/// One scrape of `/metrics`.
pub struct Metrics(String);

impl Metrics {
    /// Fetches `base/metrics`.
    pub async fn fetch(http: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
            .context("reading /metrics")?;
        Ok(Self(text))
    }

    /// The value of the series named exactly `series` (with its labels), 0 when absent: a
    /// counter no one has touched yet is not rendered.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|line| line.strip_prefix(series))
            .find_map(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Rows retention deleted from `table` so far.
    pub fn deleted(&self, table: &str) -> u64 {
        self.value(&format!("hookrelay_retention_deleted_rows_total{{table=\"{table}\"}}")) as u64
    }
}
