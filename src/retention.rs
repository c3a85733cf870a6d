//! The retention task: every `retention.interval_ms`, deletes the logs, messages and content
//! past their windows (`[retention]`) and the overview's rollup past its own, then gives the
//! freed pages back to the file system.
//!
//! Each batch is one short write of the single writer, with a pause after it, so the
//! writes of ingest and delivery go in between: a pass of any size never holds the writer
//! for longer than one batch, and a batch is sized to hold it about `batch_hold_ms`. Logs go first, then messages, then content, so that content is
//! judged after what referred to it is gone.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RetentionConfig;
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult, ROLLUP_KEEP_MS};
use crate::time::UnixMs;

/// Runs passes until the task is aborted (at shutdown).
pub async fn run(store: Store, config: RetentionConfig, metrics: Arc<Metrics>) {
    match store.file_stats().await {
        Ok(stats) if !stats.incremental_vacuum => tracing::info!(
            "the database was created without incremental auto-vacuum: pages freed by \
             retention stay in the file and are reused by later writes, so it stays flat \
             rather than shrinking (see [retention] in config.example.toml to switch it)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reading the database's page counts failed"),
    }
    loop {
        let task = Task { store: &store, config: &config, metrics: &metrics };
        if let Err(e) = task.pass().await {
            tracing::warn!(error = %e, "retention pass failed; the next one starts over");
        }
        task.refresh_file_stats().await;
        tokio::time::sleep(Duration::from_millis(config.interval_ms)).await;
    }
}

/// What a pass works with.
struct Task<'a> {
    store: &'a Store,
    config: &'a RetentionConfig,
    metrics: &'a Metrics,
}

impl Task<'_> {
    /// One pass: every window in turn, batch by batch until it has nothing more to delete.
    /// Each kind of batch is sized on its own: a log costs more to delete than a body.
    async fn pass(&self) -> StoreResult<()> {
        let now = UnixMs::now();
        let sized = || BatchSize::new(self.config);
        if let Some(before) = cutoff(now, self.config.logs_secs) {
            let mut size = sized();
            loop {
                let rows = size.rows();
                let batch = self.store.delete_logs_before(before, rows).await?;
                size.held(batch.held);
                self.metrics.record_deleted("logs", batch.done);
                if batch.done < rows {
                    break;
                }
                self.pause().await;
            }
        }
        if let Some(before) = cutoff(now, self.config.messages_secs) {
            let (mut size, mut after) = (sized(), None);
            loop {
                let rows = size.rows();
                let batch = self.store.delete_messages_before(before, after, rows).await?;
                size.held(batch.held);
                let batch = batch.done;
                self.metrics.record_deleted("messages", batch.messages);
                self.metrics.record_deleted("deliveries", batch.deliveries);
                if batch.examined < rows {
                    break;
                }
                after = batch.last;
                self.pause().await;
            }
        }
        if let Some(before) = cutoff(now, self.config.payload_secs) {
            let keep = self.store.pending_payloads(before).await?;
            let (mut size, mut after) = (sized(), None);
            loop {
                let rows = size.rows();
                let batch =
                    self.store.delete_bodies_before(before, after, rows, keep.clone()).await?;
                size.held(batch.held);
                let batch = batch.done;
                self.metrics.record_deleted("bodies", batch.bodies);
                self.metrics.record_deleted("upload_files", batch.upload_files);
                if batch.examined < rows {
                    break;
                }
                after = batch.last;
                self.pause().await;
            }
        }
        self.delete_old_rollup(now, self.config.batch_rows).await?;
        self.give_back_free_pages().await
    }

    /// The overview's rollup keeps a fixed window ([`ROLLUP_KEEP_MS`]), whatever the logs'
    /// (it counts calls, and deleting logs never changes it), so it stays bounded.
    async fn delete_old_rollup(&self, now: UnixMs, limit: usize) -> StoreResult<()> {
        let before = now.minus_ms(ROLLUP_KEEP_MS);
        while self.store.delete_rollup_before(before, limit).await? >= limit {
            self.pause().await;
        }
        Ok(())
    }

    /// Gives the free pages back, a few at a time, while there are some and their number
    /// goes down (without incremental auto-vacuum it does not: the pragma does nothing).
    async fn give_back_free_pages(&self) -> StoreResult<()> {
        if !self.store.file_stats().await?.incremental_vacuum {
            return Ok(());
        }
        let (mut size, mut left) = (BatchSize::pages(self.config), i64::MAX);
        loop {
            let step = self.store.give_back_free_pages(size.rows()).await?;
            size.held(step.held);
            if step.done == 0 || step.done >= left {
                return Ok(());
            }
            left = step.done;
            self.pause().await;
        }
    }

    async fn pause(&self) {
        tokio::time::sleep(Duration::from_millis(self.config.batch_pause_ms)).await;
    }

    async fn refresh_file_stats(&self) {
        match self.store.file_stats().await {
            Ok(stats) => {
                self.metrics.database_size.set(stats.size_bytes);
                self.metrics.database_free_pages.set(stats.free_pages);
            }
            Err(e) => tracing::warn!(error = %e, "reading the database's page counts failed"),
        }
    }
}

/// Rows (or pages) per batch: as many as hold the writer at most `batch_hold_ms`, found by
/// halving after a batch that held it longer and growing by a quarter after one that held
/// it less than half of that, between [`LEAST_ROWS`] and `batch_rows`. It starts at the
/// least, so a pass never opens with a long write.
struct BatchSize {
    rows: usize,
    most: usize,
    hold: Duration,
}

/// The fewest rows a batch deletes however slow they are, so that retention keeps up with
/// ingest on any machine (at 1,000 messages a second it must delete about 3,000 rows).
const LEAST_ROWS: usize = 10;

/// Pages one step of giving back free pages moves at most (8 MiB of 8 KiB pages).
const MOST_PAGES: usize = 1024;

impl BatchSize {
    fn new(config: &RetentionConfig) -> Self {
        Self::between(config.batch_rows, config.batch_hold_ms)
    }

    fn pages(config: &RetentionConfig) -> Self {
        Self::between(MOST_PAGES, config.batch_hold_ms)
    }

    fn between(most: usize, hold_ms: u64) -> Self {
        Self { rows: LEAST_ROWS.min(most), most, hold: Duration::from_millis(hold_ms) }
    }

    fn rows(&self) -> usize {
        self.rows
    }

    /// Sizes the next batch by how long the last one held the writer.
    fn held(&mut self, held: Duration) {
        let least = LEAST_ROWS.min(self.most);
        if held > self.hold {
            self.rows = (self.rows / 2).max(least);
        } else if held * 2 < self.hold {
            self.rows = (self.rows + self.rows / 4 + 1).min(self.most);
        }
    }
}

/// The time before which things `window_secs` old are deleted; `None` for 0 (kept forever).
fn cutoff(now: UnixMs, window_secs: u64) -> Option<UnixMs> {
    let window_ms = i64::try_from(window_secs).ok()?.checked_mul(1000)?;
    (window_ms > 0).then(|| now.minus_ms(window_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(batch_rows: usize, batch_hold_ms: u64) -> RetentionConfig {
        RetentionConfig { batch_rows, batch_hold_ms, ..RetentionConfig::default() }
    }

    #[test]
    fn a_batch_grows_while_quick_and_halves_when_it_holds_the_writer_too_long() {
        let mut size = BatchSize::new(&config(500, 2));
        assert_eq!(size.rows(), LEAST_ROWS, "a pass opens with the smallest batch");
        let mut grown = vec![size.rows()];
        while size.rows() < 500 {
            size.held(Duration::from_micros(900));
            grown.push(size.rows());
        }
        assert!(grown.len() < 25, "reaches the most in a few batches: {grown:?}");
        size.held(Duration::from_micros(900));
        assert_eq!(size.rows(), 500, "never past batch_rows");
        size.held(Duration::from_micros(1500));
        assert_eq!(size.rows(), 500, "between half the hold and the hold: kept");
        size.held(Duration::from_millis(3));
        assert_eq!(size.rows(), 250);
        for _ in 0..20 {
            size.held(Duration::from_millis(50));
        }
        assert_eq!(size.rows(), LEAST_ROWS, "never under the least");
    }

    #[test]
    fn a_batch_rows_under_the_least_is_the_size() {
        let mut size = BatchSize::new(&config(3, 2));
        assert_eq!(size.rows(), 3);
        size.held(Duration::ZERO);
        assert_eq!(size.rows(), 3);
        size.held(Duration::from_secs(1));
        assert_eq!(size.rows(), 3);
    }
}
