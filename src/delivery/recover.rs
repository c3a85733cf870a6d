//! Runs recover jobs in the background: re-queues their deliveries chunk by chunk
//! (`delivery.recover_chunk_size` per write) and wakes the dispatcher after each chunk. A
//! cancelled job's next chunk re-queues nothing, which ends the loop.

use std::sync::Arc;

use super::dispatcher::Dispatcher;
use crate::store::{BackgroundJob, Store};

/// Re-queues the rest of job `job` in the background.
pub fn spawn(store: Store, dispatcher: Arc<Dispatcher>, job: BackgroundJob) {
    let chunk = i64::from(dispatcher.config.recover_chunk_size);
    tokio::spawn(async move {
        loop {
            match store.requeue_chunk(job.clone(), chunk).await {
                Ok(0) => break,
                Ok(_) => dispatcher.wake(),
                Err(e) => {
                    tracing::error!(job = %job, error = %e, "recover job stopped; it resumes at the next start");
                    break;
                }
            }
        }
    });
}
