//! Calls in flight outside the dispatcher on PostgreSQL: `store::calls_in_flight`'s SQL,
//! beside it. The row names this instance (`started_by`), so a survivor can tell whose
//! interrupted call it is. A rerun's log is recorded with its delivery (`pg::reruns`).

use tokio_postgres::types::ToSql;

use super::{logs, reruns, snapshots, OrStore, Pg};
use crate::ids::LogId;
use crate::store::calls_in_flight::{InFlight, StartingCall};
use crate::store::logs::{NewLog, Trigger};
use crate::store::{RerunDelivery, Snapshot, StoreResult};
use crate::time::UnixMs;

/// Records `call` as started (with its snapshot), before it starts.
pub(crate) async fn start(
    pg: &Pg,
    call: &StartingCall,
    snapshot: &Snapshot,
) -> StoreResult<InFlight> {
    let mut client = pg.client().await?;
    snapshots::put_committed(pg, &client, snapshot).await?;
    let tx = client.transaction().await.at(pg)?;
    let params: [&(dyn ToSql + Sync); 10] = [
        &call.message_id,
        &call.automation_id,
        &call.processor_id,
        &call.trigger.as_str(),
        &call.rerun_of,
        &call.webhook_url,
        &call.request_body_hash.as_slice(),
        &snapshot.hash.as_slice(),
        &UnixMs::now().as_ms(),
        &pg.instance(),
    ];
    let row = tx
        .query_one(
            "INSERT INTO calls_in_flight (message_id, automation_id, processor_id, trigger, \
             rerun_of, webhook_url, request_body_hash, snapshot_hash, request_at, started_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::uuid) RETURNING id",
            &params,
        )
        .await
        .at(pg)?;
    tx.commit().await.at(pg)?;
    Ok(InFlight(row.get(0)))
}

/// Deletes the row of `in_flight` and stores its log; a rerun also settles the delivery it
/// repeated (`pg::reruns`), which it returns.
pub(crate) async fn finish(
    pg: &Pg,
    in_flight: InFlight,
    log: NewLog,
    snapshot: &Snapshot,
) -> StoreResult<(LogId, Option<RerunDelivery>)> {
    let mut client = pg.client().await?;
    snapshots::put_committed(pg, &client, snapshot).await?;
    let tx = client.transaction().await.at(pg)?;
    tx.execute("DELETE FROM calls_in_flight WHERE id = $1", &[&in_flight.0]).await.at(pg)?;
    let done = if log.trigger == Trigger::Rerun {
        reruns::record(pg, &tx, log).await?
    } else {
        (logs::insert(pg, &tx, &log).await?, None)
    };
    tx.commit().await.at(pg)?;
    Ok(done)
}
