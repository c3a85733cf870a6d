//! Runs recover jobs in the background: re-queues their deliveries chunk by chunk and wakes
//! the dispatcher after each chunk.

use std::sync::Arc;

use super::dispatcher::Dispatcher;
use crate::store::{BackgroundJob, Store};

/// Deliveries re-queued per write.
const CHUNK: i64 = 500;

/// Re-queues the rest of job `job` in the background.
pub fn spawn(store: Store, dispatcher: Arc<Dispatcher>, job: BackgroundJob) {
    tokio::spawn(async move {
        loop {
            match store.requeue_chunk(job.clone(), CHUNK).await {
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
