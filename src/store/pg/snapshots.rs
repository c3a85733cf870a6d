//! Automation snapshots on PostgreSQL: `store::snapshots`' SQL, beside it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_postgres::GenericClient;

use super::{bodies, OrStore, Pg};
use crate::ids::LogId;
use crate::store::cache::Target;
use crate::store::{Snapshot, StoreError, StoreResult};

/// Stores the shown snapshot and the headers sent with it, once per hash, the headers only
/// while the automation exists (see `Snapshot::put`). Outside the delivery path's
/// transactions: see [`put_all`].
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

/// Stores the snapshots of `targets`, each in a transaction of its own: called after the
/// transaction that handed their deliveries out commits, before the deliveries are called
/// (their logs refer to them). Never inside a transaction of the delivery path: two
/// transactions each storing a new snapshot and another new body in the other order would
/// deadlock at the unique index of `bodies`; alone, a transaction stores at most one body.
pub(crate) async fn put_all(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    targets: &[Arc<Target>],
) -> StoreResult<()> {
    for target in targets {
        put(pg, c, target.snapshot()).await?;
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
