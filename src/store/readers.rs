//! A fixed pool of read-only connections. WAL lets them read while the writer commits.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::{StoreError, StoreResult};

#[derive(Clone)]
pub(super) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    available: Arc<Semaphore>,
}

impl Readers {
    pub(super) fn new(conns: Vec<Connection>) -> Self {
        let available = Arc::new(Semaphore::new(conns.len()));
        Self { idle: Arc::new(Mutex::new(conns)), available }
    }

    pub(super) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            self.available.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let conn =
                idle.lock().map_err(|_| StoreError::Closed)?.pop().ok_or(StoreError::Closed)?;
            let result = f(&conn);
            if let Ok(mut pool) = idle.lock() {
                pool.push(conn);
            }
            drop(permit);
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}
