//! The retention task: every `retention.interval_ms`, deletes the logs, messages and content
//! past their windows (`[retention]`) and the overview's rollup past its own, then gives the
//! freed pages back to the file system.
//!
//! Each batch is one short write of the single writer, with a pause after it, so the
//! writes of ingest and delivery go in between: a pass of any size never holds the writer
//! for longer than one batch. Logs go first, then messages, then content, so that content is
//! judged after what referred to it is gone.
//!
//! One instance at a time runs passes: the one holding the `retention` duty (always this one
//! on SQLite). It asks at the start of a pass and renews the hold between batches; the lease
//! outlasts the interval, so the holder keeps the duty from pass to pass while it lives.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RetentionConfig;
use crate::metrics::Metrics;
use crate::store::{Duty, Store, StoreResult, ROLLUP_KEEP_MS};
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
        match task.hold().await {
            Ok(true) => {
                if let Err(e) = task.pass().await {
                    tracing::warn!(error = %e, "retention pass failed; the next one starts over");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "taking the retention duty failed; retried"),
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
    async fn pass(&self) -> StoreResult<()> {
        let now = UnixMs::now();
        let limit = self.config.batch_rows;
        if let Some(before) = cutoff(now, self.config.logs_secs) {
            loop {
                let deleted = self.store.delete_logs_before(before, limit).await?;
                self.metrics.record_deleted("logs", deleted);
                if deleted < limit {
                    break;
                }
                self.pause().await;
            }
        }
        if let Some(before) = cutoff(now, self.config.messages_secs) {
            let mut after = None;
            loop {
                let batch = self.store.delete_messages_before(before, after, limit).await?;
                self.metrics.record_deleted("messages", batch.messages);
                self.metrics.record_deleted("deliveries", batch.deliveries);
                if batch.examined < limit {
                    break;
                }
                after = batch.last;
                self.pause().await;
            }
        }
        if let Some(before) = cutoff(now, self.config.payload_secs) {
            let keep = self.store.pending_payloads(before).await?;
            let mut after = None;
            loop {
                let batch =
                    self.store.delete_bodies_before(before, after, limit, keep.clone()).await?;
                self.metrics.record_deleted("bodies", batch.bodies);
                self.metrics.record_deleted("upload_files", batch.upload_files);
                if batch.examined < limit {
                    break;
                }
                after = batch.last;
                self.pause().await;
            }
        }
        self.delete_old_rollup(now, limit).await?;
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

    /// Gives the free pages past the share kept for reuse back, a few at a time, while
    /// there are some and their number goes down (without incremental auto-vacuum it does
    /// not: the pragma does nothing).
    async fn give_back_free_pages(&self) -> StoreResult<()> {
        if !self.store.file_stats().await?.incremental_vacuum {
            return Ok(());
        }
        let mut left = i64::MAX;
        loop {
            let now_left = self.store.give_back_free_pages().await?;
            if now_left == 0 || now_left >= left {
                return Ok(());
            }
            left = now_left;
            self.pause().await;
        }
    }

    /// Takes or renews the `retention` duty, for an interval and a minute: past the next
    /// pass's start.
    async fn hold(&self) -> StoreResult<bool> {
        let lease = Duration::from_millis(self.config.interval_ms) + Duration::from_secs(60);
        self.store.hold_duty(Duty::Retention, lease).await
    }

    /// Pauses between batches, renewing the duty. A pass that lost it meanwhile (its lease
    /// ran out during a long pause of the database) still ends: each batch re-checks what it
    /// deletes, so two passes at once delete nothing twice and nothing kept; and a renewal
    /// that fails is for the next pass to find out.
    async fn pause(&self) {
        tokio::time::sleep(Duration::from_millis(self.config.batch_pause_ms)).await;
        if let Err(e) = self.hold().await {
            tracing::debug!(error = %e, "renewing the retention duty failed");
        }
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

/// The time before which things `window_secs` old are deleted; `None` for 0 (kept forever).
fn cutoff(now: UnixMs, window_secs: u64) -> Option<UnixMs> {
    let window_ms = i64::try_from(window_secs).ok()?.checked_mul(1000)?;
    (window_ms > 0).then(|| now.minus_ms(window_ms))
}
