//! Reruns on PostgreSQL: `store::reruns`' rule, beside it. The rerun's log names the
//! delivery it repeated; one that got a 2xx ends that delivery `succeeded` in the same
//! transaction, claim cleared (`claimed_by` too: an instance whose call of it is in flight
//! then records its outcome without moving it, see `pg::deliveries::record`).

use tokio_postgres::types::ToSql;

use super::{logs, Cached, OrStore, Pg};
use crate::ids::{AutomationId, DeliveryId, LogId, MessageId};
use crate::store::column::Column;
use crate::store::logs::NewLog;
use crate::store::{DeliveryStatus, RerunDelivery, StoreResult};

/// Records rerun `log` in `tx` and settles the delivery it repeated (see `store::reruns`);
/// returns that delivery, if there is one. As `pg::deliveries::record`, the log's id is
/// taken before the delivery row is locked (one order for every transaction: no deadlock).
pub(super) async fn record(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    mut log: NewLog,
) -> StoreResult<(LogId, Option<RerunDelivery>)> {
    let found = repeated_delivery(pg, tx, &log.message_id, &log.automation_id).await?;
    log.delivery_id = found.clone();
    let log_id = logs::insert(pg, tx, &log).await?;
    let Some(id) = found else { return Ok((log_id, None)) };
    if log.error_code.is_some() {
        let row =
            tx.query_one("SELECT id, status FROM deliveries WHERE id = $1", &[&id]).await.at(pg)?;
        let status = row.parsed(1, "deliveries", &id, DeliveryStatus::parse)?;
        return Ok((log_id, Some(RerunDelivery { id, status })));
    }
    let params: [&(dyn ToSql + Sync); 3] = [&id, &log_id, &log.response_at.as_ms()];
    let ended = tx
        .query_opt(
            "UPDATE deliveries SET status = 'succeeded', claimed = 0, claimed_by = NULL, \
             last_log_id = $2, updated_at = $3 WHERE id = $1 AND status <> 'succeeded' \
             RETURNING fifo",
            &params,
        )
        .await
        .at(pg)?;
    if ended.is_some_and(|r| r.get::<_, bool>(0)) {
        // A FIFO delivery ended: the trigger may have made the next one due.
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    Ok((log_id, Some(RerunDelivery { id, status: DeliveryStatus::Succeeded })))
}

/// The delivery of `message_id` to `automation_id` (see `store::reruns::repeated_delivery`).
pub(super) async fn repeated_delivery(
    pg: &Pg,
    c: &impl Cached,
    message_id: &MessageId,
    automation_id: &AutomationId,
) -> StoreResult<Option<DeliveryId>> {
    let row = c
        .query_opt(
            "SELECT id FROM deliveries WHERE message_id = $1 AND automation_id = $2",
            &[message_id, automation_id],
        )
        .await
        .at(pg)?;
    row.map(|r| r.key(0, "deliveries")).transpose()
}
