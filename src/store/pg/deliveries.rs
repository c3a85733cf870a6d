//! Deliveries on PostgreSQL: `store::deliveries`' SQL, beside it. Every write that ends or
//! hands back a claim names this instance (`claimed_by`): a delivery another instance took
//! over after this one's lease ran out is left to it (docs/postgres.md, "Claims").

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::page::read_page;
use super::{health, logs, Cached, OrStore, Pg};
use crate::ids::{self, DeliveryId, Message, MessageId};
use crate::store::column::Column;
use crate::store::deliveries::{DeliveryRow, Outcome, COLUMNS};
use crate::store::page::{Conditions, Page, PageRequest};
use crate::store::{DeliveryStatus, Operations, StoreError, StoreResult, WAITING_AT};
use crate::time::UnixMs;

fn from_row(r: &Row) -> StoreResult<DeliveryRow> {
    let id: DeliveryId = r.key(0, "deliveries")?;
    let status = r.parsed(3, "deliveries", &id, DeliveryStatus::parse)?;
    let next = r.time(5, "deliveries", &id)?;
    Ok(DeliveryRow {
        message_id: r.key(1, "deliveries")?,
        automation_id: r.key(2, "deliveries")?,
        status,
        attempts: u32::try_from(r.int(4, "deliveries", &id)?).unwrap_or(0),
        next_attempt_at: (status == DeliveryStatus::Pending && next != WAITING_AT).then_some(next),
        last_log_id: r.opt_id(6, "deliveries", &id)?,
        created_at: r.time(7, "deliveries", &id)?,
        updated_at: r.time(8, "deliveries", &id)?,
        last_error_code: r.opt_text(9, "deliveries", &id)?,
        last_error_message: r.opt_text(10, "deliveries", &id)?,
        id,
    })
}

/// Every delivery of message `message_id`, oldest first.
pub(crate) async fn of_message(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    message_id: &MessageId,
) -> StoreResult<Vec<DeliveryRow>> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE message_id = $1 ORDER BY id");
    c.query(sql.as_str(), &[message_id]).await.at(pg)?.iter().map(from_row).collect()
}

/// One delivery.
pub(crate) async fn get(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &DeliveryId,
) -> StoreResult<DeliveryRow> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
    let row = c.query_opt(sql.as_str(), &[id]).await.at(pg)?;
    from_row(&row.ok_or(StoreError::NotFound("delivery"))?)
}

/// One page of deliveries (see `Store::list_deliveries`).
pub(crate) async fn list(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    status: Option<DeliveryStatus>,
    automation_id: Option<String>,
    message_id: Option<String>,
    page: &PageRequest,
) -> StoreResult<Page<DeliveryRow>> {
    let mut cond = Conditions::default();
    if let Some(s) = status {
        cond.push_literal(format!("status = '{}'", s.as_str()));
    }
    if let Some(a) = automation_id {
        cond.push_id::<ids::Automation>("automation_id", &a);
    }
    if let Some(m) = message_id {
        cond.push_id::<Message>("message_id", &m);
    }
    read_page(pg, c, "deliveries", COLUMNS, &cond, page, from_row, |d| d.id.as_str()).await
}

/// Marks held delivery `id` started under a lease until `lease_until`; false when this
/// instance no longer holds it.
pub(crate) async fn mark_started(
    pg: &Pg,
    c: &impl Cached,
    id: &DeliveryId,
    lease_until: UnixMs,
) -> StoreResult<bool> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET claimed = 1, next_attempt_at = $2 \
             WHERE id = $1 AND claimed = 2 AND status = 'pending' AND claimed_by = $3::text::uuid",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 3] = [id, &lease_until.as_ms(), &pg.instance()];
    Ok(c.execute(&stmt, &params).await.at(pg)? == 1)
}

/// Takes started delivery `id` back to held, due now (see `Store::hold_unstarted`).
pub(crate) async fn hold_unstarted(pg: &Pg, c: &impl Cached, id: &DeliveryId) -> StoreResult<bool> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET claimed = 2, next_attempt_at = $2 \
             WHERE id = $1 AND claimed = 1 AND status = 'pending' AND claimed_by = $3::text::uuid",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 3] = [id, &UnixMs::now().as_ms(), &pg.instance()];
    Ok(c.execute(&stmt, &params).await.at(pg)? == 1)
}

/// Hands this instance's claims of `ids` back untried, due now.
pub(crate) async fn release(pg: &Pg, c: &impl Cached, ids: &[DeliveryId]) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET claimed = 0, claimed_by = NULL, next_attempt_at = $2 \
             WHERE id = ANY($1::bytea[]) AND claimed_by = $3::text::uuid",
        )
        .await
        .at(pg)?;
    let ids: Vec<&[u8]> = ids.iter().map(|id| id.stored_bytes().as_slice()).collect();
    let params: [&(dyn ToSql + Sync); 3] = [&ids, &UnixMs::now().as_ms(), &pg.instance()];
    if c.execute(&stmt, &params).await.at(pg)? > 0 {
        // Due now, for any instance (see `pg::listen`).
        c.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    Ok(())
}

/// When the oldest delivery due and not in flight came due (see `Store::oldest_due_at`).
pub(crate) async fn oldest_due_at(pg: &Pg, c: &impl Cached) -> StoreResult<Option<UnixMs>> {
    let row = c
        .query_opt(
            "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' AND claimed <> 1 \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 1",
            &[&UnixMs::now().as_ms()],
        )
        .await
        .at(pg)?;
    Ok(row.map(|r| UnixMs::from_ms(r.get(0))))
}

/// (All pending, due now and not in flight).
pub(crate) async fn backlog(pg: &Pg, c: &impl Cached) -> StoreResult<(i64, i64)> {
    let row = c
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= $1 AND claimed = 0) \
             FROM deliveries WHERE status = 'pending'",
            &[&UnixMs::now().as_ms()],
        )
        .await
        .at(pg)?;
    Ok((row.get(0), row.get(1)))
}

/// `store::deliveries::record` on PostgreSQL (the outcome's snapshot, if any, stored before
/// the transaction: see `pg::snapshots`): the log, the delivery moved on, the health;
/// returns whether the automation was disabled. The delivery moves only while this instance
/// holds it (or nobody does: its automation was deleted or lined up meanwhile, as on
/// SQLite); one another instance took over after this one's lease ran out keeps its new
/// holder's state, and the attempt is logged all the same (it was made).
pub(crate) async fn record(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    ops: &Operations,
    outcome: &Outcome,
) -> StoreResult<bool> {
    let disabled = health::after_attempt(pg, tx, ops, outcome).await?;
    let log_id = logs::insert(pg, tx, &outcome.log).await?;
    health::queue_attempt_events(pg, tx, ops, outcome, &log_id).await?;
    let moved = tx
        .prepare_cached(
            "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4, claimed = 0, \
             claimed_by = NULL, next_trigger = 'retry', last_log_id = $5, updated_at = $6 \
             WHERE id = $1 AND status <> 'succeeded' \
             AND (claimed_by IS NULL OR claimed_by = $7::text::uuid) RETURNING fifo",
        )
        .await
        .at(pg)?;
    let attempt = i32::try_from(outcome.log.attempt).unwrap_or(i32::MAX);
    let params: [&(dyn ToSql + Sync); 7] = [
        &outcome.delivery_id,
        &outcome.status.as_str(),
        &attempt,
        &outcome.next_attempt_at.as_ms(),
        &log_id,
        &outcome.log.response_at.as_ms(),
        &pg.instance(),
    ];
    let moved = tx.query_opt(&moved, &params).await.at(pg)?;
    if moved.as_ref().is_some_and(|r| r.get::<_, bool>(0))
        && outcome.status != DeliveryStatus::Pending
    {
        // The head of a FIFO line ended: the trigger made the next one due.
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    if moved.is_none() {
        // Ended `succeeded` meanwhile (a rerun), or taken over: the attempt counts, and a
        // claim of this instance's ends.
        let kept = tx
            .prepare_cached(
                "UPDATE deliveries SET attempts = greatest(attempts, $2), claimed = 0, \
                 claimed_by = NULL \
                 WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $3::text::uuid)",
            )
            .await
            .at(pg)?;
        let params: [&(dyn ToSql + Sync); 3] = [&outcome.delivery_id, &attempt, &pg.instance()];
        if tx.execute(&kept, &params).await.at(pg)? == 0 {
            tracing::warn!(
                delivery = %outcome.delivery_id, log = %log_id,
                "an attempt ended after this instance's lease: the delivery was taken over \
                 (at-least-once), and is left to its new holder"
            );
        }
    }
    Ok(disabled)
}
