//! Automation snapshots on PostgreSQL: `store::snapshots`' SQL, beside it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{bodies, Cached, OrStore, Pg};
use crate::ids::LogId;
use crate::store::bodies::USE_REFRESH_MS;
use crate::store::cache::Target;
use crate::store::{BodyHash, Snapshot, StoreError, StoreResult};
use crate::time::UnixMs;

/// Most snapshots [`Stored`] remembers; past it, it forgets them all (each is only a saved
/// write).
const MAX_REMEMBERED: usize = 4096;

/// The snapshots this instance stored, committed, and when (Unix ms). PostgreSQL reads the
/// targets of each message uncached (see `pg::messages`), so without it every delivery would
/// store its automation's snapshot again, three statements; with it, a snapshot in use is
/// stored again every [`USE_REFRESH_MS`], as SQLite's automation cache does (content
/// retention's shortest window is twice that, so it never deletes a snapshot in use).
#[derive(Debug, Default)]
pub(crate) struct Stored(Mutex<HashMap<BodyHash, i64>>);

impl Stored {
    fn recent(&self, hash: &BodyHash, now: i64) -> bool {
        let stored = self.0.lock().map(|m| m.get(hash).copied()).unwrap_or_default();
        stored.is_some_and(|at| now.saturating_sub(at) < USE_REFRESH_MS)
    }

    fn note(&self, hash: BodyHash, now: i64) {
        if let Ok(mut stored) = self.0.lock() {
            if stored.len() >= MAX_REMEMBERED {
                stored.clear();
            }
            stored.insert(hash, now);
        }
    }
}

/// Stores the shown snapshot and the headers sent with it, once per hash, the headers only
/// while the automation exists (see `Snapshot::put`). Outside the delivery path's
/// transactions: see [`put_all`].
pub(crate) async fn put(pg: &Pg, c: &impl Cached, snapshot: &Snapshot) -> StoreResult<()> {
    bodies::put(pg, c, &snapshot.shown).await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO snapshot_headers (snapshot_hash, automation_id, headers) \
             SELECT $1, id, $3::text::json FROM automations WHERE id = $2 \
             ON CONFLICT (snapshot_hash) DO NOTHING",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 3] =
        [&snapshot.hash.as_slice(), &snapshot.automation_id, &snapshot.sent_headers];
    c.execute(&stmt, &params).await.at(pg)?;
    Ok(())
}

/// [`put`] outside any transaction (so that what it stored is committed), unless this
/// instance did so within the last [`USE_REFRESH_MS`] (see [`Stored`]).
pub(crate) async fn put_committed(
    pg: &Pg,
    c: &impl Cached,
    snapshot: &Snapshot,
) -> StoreResult<()> {
    let now = UnixMs::now().as_ms();
    if pg.stored_snapshots.recent(&snapshot.hash, now) {
        return Ok(());
    }
    put(pg, c, snapshot).await?;
    pg.stored_snapshots.note(snapshot.hash, now);
    Ok(())
}

/// Stores the snapshots of `targets`, each in a transaction of its own: called after the
/// transaction that handed their deliveries out commits, before the deliveries are called
/// (their logs refer to them). Never inside a transaction of the delivery path: two
/// transactions each storing a new snapshot and another new body in the other order would
/// deadlock at the unique index of `bodies`; alone, a transaction stores at most one body.
pub(crate) async fn put_all(pg: &Pg, c: &impl Cached, targets: &[Arc<Target>]) -> StoreResult<()> {
    for target in targets {
        put_committed(pg, c, target.snapshot()).await?;
    }
    Ok(())
}

/// The custom headers sent with the calls whose log is `log_id` (see
/// `store::snapshots::sent_headers`).
pub(crate) async fn sent_headers(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    log_id: &LogId,
) -> StoreResult<BTreeMap<String, String>> {
    let row = c
        .query_opt(
            "SELECT s.headers::text FROM logs l \
             JOIN snapshot_headers s ON s.snapshot_hash = l.snapshot_hash WHERE l.id = $1",
            &[log_id],
        )
        .await
        .at(pg)?;
    match row {
        None => Ok(BTreeMap::new()),
        Some(row) => serde_json::from_str(row.get::<_, &str>(0))
            .map_err(|e| StoreError::Corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_stored_again_once_its_use_is_due_a_refresh() {
        let stored = Stored::default();
        let (a, b) = ([1; 16], [2; 16]);
        assert!(!stored.recent(&a, 1_000), "never stored");
        stored.note(a, 1_000);
        assert!(stored.recent(&a, 1_000 + USE_REFRESH_MS - 1));
        assert!(!stored.recent(&a, 1_000 + USE_REFRESH_MS), "due again");
        assert!(!stored.recent(&b, 1_000));
        for n in 0..MAX_REMEMBERED {
            stored.note(body_of(n), 1_000);
        }
        assert!(stored.0.lock().unwrap().len() <= MAX_REMEMBERED, "bounded");
    }

    fn body_of(n: usize) -> BodyHash {
        let mut hash = [0; 16];
        hash[..8].copy_from_slice(&(n as u64 + 10).to_be_bytes());
        hash
    }
}
