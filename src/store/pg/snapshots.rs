//! Automation snapshots on PostgreSQL: `store::snapshots`' SQL, beside it.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use super::{bodies, OrStore, Pg};
use crate::ids::LogId;
use crate::store::{Snapshot, StoreError, StoreResult};

/// Stores the shown snapshot and the headers sent with it, once per hash, the headers only
/// while the automation exists (see `Snapshot::put`).
pub(crate) async fn put(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    snapshot: &Snapshot,
) -> StoreResult<()> {
    bodies::put(pg, c, &snapshot.shown).await?;
    c.execute(
        "INSERT INTO snapshot_headers (snapshot_hash, automation_id, headers) \
         SELECT $1, id, $3::text::json FROM automations WHERE id = $2 \
         ON CONFLICT (snapshot_hash) DO NOTHING",
        &[&snapshot.hash.as_slice(), &snapshot.automation_id, &snapshot.sent_headers],
    )
    .await
    .at(pg)?;
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
