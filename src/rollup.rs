//! The rollup task: every few seconds, counts the logs recorded since its last pass into the
//! per-minute rollup the console's overview reads (see `store::rollup` for why this never
//! misses or double-counts a log). Each batch is one short write of the single writer, with
//! a pause after it, so catching up on a large database (its first start after the upgrade)
//! never holds the writer for more than one batch.
//!
//! One instance at a time counts: the one holding the `rollup` duty (always this one on
//! SQLite), renewed before each batch.

use std::time::Duration;

use crate::store::{Duty, Store};

/// Logs counted per write.
const BATCH: usize = 2_000;
/// Between passes: the overview trails the logs by at most about this.
const EVERY: Duration = Duration::from_secs(2);
/// Between the batches of a pass, so that ingest's writes go in between.
const PAUSE: Duration = Duration::from_millis(20);
/// How long a hold of the duty lasts: several passes, so that its holder keeps it while it
/// lives, and another instance takes over within this of its end.
const LEASE: Duration = Duration::from_secs(10);

/// Runs passes until the task is aborted (at shutdown).
pub async fn run(store: Store) {
    loop {
        loop {
            match store.hold_duty(Duty::Rollup, LEASE).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "taking the rollup duty failed; retried");
                    break;
                }
            }
            match store.roll_up_logs(BATCH).await {
                Ok(n) if n == BATCH => tokio::time::sleep(PAUSE).await,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "counting logs into the rollup failed; retried");
                    break;
                }
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
