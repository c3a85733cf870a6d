//! Replay jobs on PostgreSQL: `store::replay`'s SQL, beside it. As a recover job's, a chunk
//! locks the job's row and runs only on the instance the row names (see `job_owner`: its
//! creator, or the survivor that adopted it after its instance died); a delivery ingest made
//! meanwhile for the same message is kept (`ON CONFLICT … DO NOTHING`: one per message and
//! automation, as the unique index holds), and not counted.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{automations, job_owner, recover::status_counts, OrStore, Pg};
use crate::ids::{AutomationId, DeliveryId, MessageId, ReplayJobId};
use crate::store::column::Column;
use crate::store::recover::BackgroundJob;
use crate::store::replay::{
    ReplayJob, AUTOMATION_DELETED, AUTOMATION_DISABLED, COMPLETED, SCAN_PER_DELIVERY,
    TEST_EVENT_TYPE,
};
use crate::store::{Conflict, DeliveryOrder, StoreError, StoreResult};
use crate::time::UnixMs;

/// `store::replay::MISSING` on PostgreSQL: `$4` the test event type, `$5` the automation's
/// event types (NULL = all), `$6` the automation.
const MISSING: &str = "automation_id IS NULL AND event_type IS DISTINCT FROM $4::text \
    AND ($5::text[] IS NULL OR (event_type IS NOT NULL AND event_type = ANY($5::text[]))) \
    AND NOT EXISTS (SELECT 1 FROM deliveries d \
        WHERE d.message_id = messages.id AND d.automation_id = $6::bytea)";

/// `Store::create_replay_job` on PostgreSQL: 404 for an unknown automation, 409 for a
/// disabled one.
pub(crate) async fn create(
    pg: &Pg,
    automation_id: &AutomationId,
    since: UnixMs,
    until: UnixMs,
    cap: i64,
) -> StoreResult<ReplayJobId> {
    let client = pg.client().await?;
    let automation = automations::get(pg, &client, automation_id)
        .await?
        .ok_or(StoreError::NotFound("automation"))?;
    if !automation.settings.enabled {
        return Err(StoreError::Conflict(
            Conflict::AutomationDisabled,
            format!(
                "automation {automation_id} is disabled: enable it first, then replay (its \
                 deliveries would fail)"
            ),
        ));
    }
    let id = ReplayJobId::new();
    let params: [&(dyn ToSql + Sync); 7] = [
        &id,
        &since.as_ms(),
        &until.as_ms(),
        automation_id,
        &cap,
        &UnixMs::now().as_ms(),
        &pg.instance(),
    ];
    client
        .execute(
            "INSERT INTO recover_jobs (id, kind, since, until, automation_id, total, requeued, \
             capped, created_at, run_by) \
             VALUES ($1, 'replay', $2, $3, $4, $5, 0, false, $6, $7::text::uuid)",
            &params,
        )
        .await
        .at(pg)?;
    Ok(id)
}

/// `store::replay::replay_chunk` on PostgreSQL: returns how many messages it examined (0
/// when the job has nothing left, or when another instance runs it).
pub(crate) async fn chunk(pg: &Pg, id: &ReplayJobId, chunk: i64) -> StoreResult<i64> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    if !job_owner::lock_mine(pg, &tx, id, "replay", "replay job").await? {
        return Ok(0);
    }
    let row = tx
        .query_one(
            "SELECT automation_id, since, until, total, requeued, cursor, ended \
             FROM recover_jobs WHERE id = $1",
            &[id],
        )
        .await
        .at(pg)?;
    let t = "recover_jobs";
    let automation_id: AutomationId = row.key(0, t)?;
    let (since, until) = (row.time(1, t, id)?, row.time(2, t, id)?);
    let (cap, created) = (row.int(3, t, id)?, row.int(4, t, id)?);
    let cursor: Option<MessageId> = row.opt_id(5, t, id)?;
    if row.opt_text(6, t, id)?.is_some() {
        return Ok(0);
    }
    let automation = match automations::get(pg, &tx, &automation_id).await? {
        None => return end(pg, tx, id, AUTOMATION_DELETED).await,
        Some(a) if !a.settings.enabled => return end(pg, tx, id, AUTOMATION_DISABLED).await,
        Some(a) => a,
    };
    let take = chunk.min(cap - created).max(0);
    let scan = take * SCAN_PER_DELIVERY;
    let (lower, from) = match cursor {
        Some(c) => ("id > $2", c),
        None => ("id >= $2", MessageId::time_bound(since.as_ms())),
    };
    let sql = format!(
        "SELECT id, {MISSING} FROM messages WHERE processor_id = $1 AND {lower} AND id < $3 \
         ORDER BY id LIMIT $7"
    );
    let event_types = automation.settings.event_types.clone();
    let params: [&(dyn ToSql + Sync); 7] = [
        &automation.settings.processor_id,
        &from,
        &MessageId::time_bound(until.as_ms()),
        &TEST_EVENT_TYPE,
        &event_types,
        &automation.id,
        &scan,
    ];
    let rows = tx.query(sql.as_str(), &params).await.at(pg)?;
    let now = UnixMs::now().as_ms();
    let tag = BackgroundJob::Replay(id.clone()).stored();
    // A FIFO automation's replayed deliveries join the end of its line (the triggers).
    let in_line = automation.settings.ordering == DeliveryOrder::Fifo;
    let (mut examined, mut made) = (0i64, 0i64);
    let mut last = None;
    for r in &rows {
        let message_id: MessageId = r.key(0, "messages")?;
        examined += 1;
        let missing: bool = r.get(1);
        last = Some(message_id.clone());
        if missing {
            let params: [&(dyn ToSql + Sync); 6] =
                [&DeliveryId::new(), &message_id, &automation.id, &now, &tag, &in_line];
            made += tx
                .execute(
                    "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
                     next_attempt_at, claimed, next_trigger, recover_job_id, created_at, \
                     updated_at, fifo) VALUES ($1, $2, $3, 'pending', 0, $4, 0, 'replay', $5, \
                     $4, $4, $6) ON CONFLICT (message_id, automation_id) DO NOTHING",
                    &params,
                )
                .await
                .at(pg)? as i64;
            if made == take {
                break;
            }
        }
    }
    let window_done = (rows.len() as i64) < scan && examined == rows.len() as i64;
    let capped = !window_done && created + made >= cap;
    let ended = (window_done || capped).then_some(COMPLETED);
    let params: [&(dyn ToSql + Sync); 5] = [id, &made, &last, &ended, &capped];
    tx.execute(
        "UPDATE recover_jobs SET requeued = requeued + $2, cursor = coalesce($3, cursor), \
         ended = $4, capped = $5 WHERE id = $1",
        &params,
    )
    .await
    .at(pg)?;
    if made > 0 {
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    tx.commit().await.at(pg)?;
    Ok(examined)
}

/// Ends job `id` for `reason` in `tx` and commits; it has nothing left to do.
async fn end(
    pg: &Pg,
    tx: deadpool_postgres::Transaction<'_>,
    id: &ReplayJobId,
    reason: &str,
) -> StoreResult<i64> {
    tx.execute("UPDATE recover_jobs SET ended = $2 WHERE id = $1", &[id, &reason]).await.at(pg)?;
    tx.commit().await.at(pg)?;
    Ok(0)
}

/// `Store::replay_job` on PostgreSQL.
pub(crate) async fn job(pg: &Pg, id: &ReplayJobId) -> StoreResult<ReplayJob> {
    let client = pg.client().await?;
    let row = client
        .query_opt(
            "SELECT id, automation_id, since, until, cursor, capped, requeued, ended, created_at \
             FROM recover_jobs WHERE id = $1 AND kind = 'replay'",
            &[id],
        )
        .await
        .at(pg)?
        .ok_or(StoreError::NotFound("replay job"))?;
    let mut job = read_job(&row, id)?;
    (job.done, job.failed, job.pending) = tagged_counts(pg, &**client, id).await?;
    Ok(job)
}

/// A replay job's row, without its progress counts.
fn read_job(r: &Row, id: &ReplayJobId) -> StoreResult<ReplayJob> {
    let t = "recover_jobs";
    let (since, until) = (r.time(2, t, id)?, r.time(3, t, id)?);
    let cursor: Option<MessageId> = r.opt_id(4, t, id)?;
    let (capped, ended) = (r.flag(5, t, id)?, r.opt_text(7, t, id)?);
    let window_done = ended.as_deref() == Some(COMPLETED) && !capped;
    let scanned_through =
        if window_done { until } else { cursor.map_or(since, |c| UnixMs::from_ms(c.time_of())) };
    Ok(ReplayJob {
        id: r.key(0, t)?,
        automation_id: r.key(1, t)?,
        since,
        until,
        scanned_through,
        capped,
        created: r.int(6, t, id)?,
        done: 0,
        failed: 0,
        pending: 0,
        ended,
        created_at: r.time(8, t, id)?,
    })
}

/// The deliveries replay job `id` tagged: (succeeded, failed or exhausted, pending).
async fn tagged_counts(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &ReplayJobId,
) -> StoreResult<(i64, i64, i64)> {
    let tag = BackgroundJob::Replay(id.clone()).stored();
    let rows = c
        .query(
            "SELECT status, count(*) FROM deliveries WHERE recover_job_id = $1 GROUP BY status",
            &[&tag],
        )
        .await
        .at(pg)?;
    status_counts(&rows, id.as_str())
}
