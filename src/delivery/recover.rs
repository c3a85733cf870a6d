//! Runs recover jobs in the background: re-queues their deliveries chunk by chunk
//! (`delivery.recover_chunk_size` per write) and wakes the dispatcher after each chunk. A
//! cancelled job's next chunk re-queues nothing, which ends the loop; so does a chunk of a
//! job another instance runs (PostgreSQL: it was adopted by a survivor, see
//! `store::pg::job_owner`).

use std::sync::Arc;
use std::time::Duration;

use super::dispatcher::Dispatcher;
use crate::store::{BackgroundJob, Store};

/// How long a runner waits before trying again a chunk that failed on PostgreSQL.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Re-queues the rest of job `job` in the background. A chunk that fails is tried again
/// after [`RETRY_AFTER`] on PostgreSQL (the database may come back; the job stays this
/// instance's, so no survivor would adopt it while this one lives), unless the job's row
/// cannot be read; on SQLite the job resumes at the next start.
pub fn spawn(store: Store, dispatcher: Arc<Dispatcher>, job: BackgroundJob) {
    let chunk = i64::from(dispatcher.config.recover_chunk_size);
    tokio::spawn(async move {
        loop {
            match store.requeue_chunk(job.clone(), chunk).await {
                Ok(0) => break,
                Ok(_) => dispatcher.wake(),
                Err(e) if store.is_postgres() && !e.is_unreadable_row() => {
                    tracing::warn!(job = %job, error = %e, "a chunk of a recover job failed; tried again shortly");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(e) => {
                    tracing::error!(job = %job, error = %e, "recover job stopped; it resumes at the next start");
                    break;
                }
            }
        }
    });
}

/// Adopts, for as long as the relay runs, the jobs whose instance died (PostgreSQL; never
/// on SQLite), and runs each from its stored progress.
pub async fn adopt_lost(store: Store, dispatcher: Arc<Dispatcher>) {
    loop {
        store.lost_recover_jobs().await;
        match store.unfinished_recover_jobs().await {
            Ok(jobs) => {
                for job in jobs {
                    tracing::warn!(job = %job, "a job of an instance that is gone was taken over");
                    spawn(store.clone(), dispatcher.clone(), job);
                }
            }
            Err(e) => tracing::warn!(error = %e, "looking for the jobs of a lost instance failed"),
        }
    }
}
