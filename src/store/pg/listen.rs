//! Notifications across instances (docs/postgres.md, "Wake-ups", "The automation cache",
//! "Workflow runs"). Each instance holds one connection outside the pool that `LISTEN`s on
//! three channels, each sent in the transaction whose commit it announces (PostgreSQL
//! delivers a notification at commit, coalesced per transaction):
//!
//! - `hookrelay_due`: deliveries became due now (ingest leaving some unclaimed, a release,
//!   the end of a FIFO head); it wakes the dispatcher.
//! - `hookrelay_automations`: an automation changed (created, updated, deleted, its secret
//!   rotated, disabled after failing); it clears this instance's automation cache, so a
//!   delivery held in memory reads its automation again before its call.
//! - `hookrelay_stop`, payload a workflow task id: stop that task if it runs here.
//!
//! A notification sent while the connection is down is lost, so each (re)connection wakes
//! the dispatcher (its poll stays, as the fallback) and clears the cache (an automation may
//! have changed meanwhile); a stop sent then is lost (the caller's answer does not wait for
//! it). The listener connects again after [`RECONNECT`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::{describe, tls, Cached, OrStore, Pg};
use crate::store::cache::SharedCache;
use crate::store::{Backend, Store, StoreResult};

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The channel of stop requests for workflow tasks.
const STOP: &str = "hookrelay_stop";

/// The channel of automation changes.
const AUTOMATIONS: &str = "hookrelay_automations";

/// How many stop requests wait for the workflow service before the oldest are dropped.
pub(super) const STOPS_QUEUED: usize = 64;

/// Announces, in `c`'s transaction, that an automation changed (see the module doc).
pub(in crate::store) async fn automations_changed(pg: &Pg, c: &impl Cached) -> StoreResult<()> {
    c.batch_execute("NOTIFY hookrelay_automations").await.at(pg)
}

impl Pg {
    /// Starts this instance's listener: `wake` runs on each notification on
    /// `hookrelay_due` and whenever the listening connection is (re)made or lost, `cache` is
    /// cleared on each on `hookrelay_automations` and at each (re)connection, and each task id
    /// on `hookrelay_stop` goes to the receivers of [`Store::stop_requests`]. It stops once
    /// the pool is closed.
    pub(in crate::store) fn listen(
        &self,
        wake: impl Fn() + Send + Sync + 'static,
        cache: SharedCache,
    ) {
        let pg = self.clone();
        tokio::spawn(async move {
            while !pg.pool.is_closed() {
                if let Err(reason) = pg.listen_once(&wake, &cache).await {
                    tracing::warn!(
                        database = %pg.target, %reason,
                        "PostgreSQL: the connection listening for other instances' changes \
                         was lost; polling until it is back"
                    );
                }
                wake();
                tokio::time::sleep(RECONNECT).await;
            }
        });
    }

    /// One listening connection, until it fails or the pool closes.
    async fn listen_once(
        &self,
        wake: &(impl Fn() + Send + Sync),
        cache: &SharedCache,
    ) -> Result<(), String> {
        let tls = tls().map_err(|e| e.to_string())?;
        let (client, mut connection) = self.config.connect(tls).await.map_err(|e| describe(&e))?;
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let listen = client.batch_execute(
            "LISTEN hookrelay_due; LISTEN hookrelay_automations; LISTEN hookrelay_stop",
        );
        // The LISTEN's answer comes through the connection, driven by the stream below.
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                done = &mut listen, if !listening => {
                    done.map_err(|e| describe(&e))?;
                    listening = true;
                    // What changed while nobody listened: automations are read again, and
                    // what came due is found by a claim now.
                    cache.lock().clear();
                    wake();
                }
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(n))) => match n.channel() {
                        AUTOMATIONS => cache.lock().clear(),
                        STOP => {
                            // No receiver (no workflow service yet) is not an error.
                            let _ = self.stops.send(Arc::from(n.payload()));
                        }
                        _ => wake(),
                    },
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(describe(&e)),
                    None => return Err("the server closed the connection".into()),
                },
                _ = tokio::time::sleep(RECONNECT) => if self.pool.is_closed() {
                    return Ok(());
                },
            }
        }
    }
}

impl Store {
    /// The workflow task ids other instances (or this one) asked every instance to stop
    /// (`hookrelay_stop`); `None` on SQLite, where every run is this process's.
    pub fn stop_requests(&self) -> Option<broadcast::Receiver<Arc<str>>> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(p) => Some(p.stops.subscribe()),
        }
    }

    /// Asks every instance to stop workflow task `task_id` (`NOTIFY hookrelay_stop`), for a
    /// task that does not run in this process. Nothing on SQLite: no other process runs
    /// tasks of its file.
    pub async fn stop_elsewhere(&self, task_id: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(p) => {
                let client = p.client().await?;
                client.execute("SELECT pg_notify($1, $2)", &[&STOP, &task_id]).await.at(p)?;
                Ok(())
            }
        }
    }
}
