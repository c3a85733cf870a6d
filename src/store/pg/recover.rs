//! Recover jobs on PostgreSQL: `store::recover`'s SQL, beside it. A job is run by one
//! instance, the one its row names (`run_by`, see `job_owner`): the one that created it,
//! or the survivor that adopted it after its instance died. A chunk runs in one transaction
//! that first locks the job's row and checks it is this instance's (another's chunk is 0,
//! which ends this runner). A cancel waits for that lock, so a chunk either ran before it or
//! sees it.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::page::read_page;
use super::{job_owner, OrStore, Pg};
use crate::ids::{DeliveryId, RecoverJobId};
use crate::outbound::ErrorCode;
use crate::store::column::Column;
use crate::store::fifo::WAITING_AT;
use crate::store::page::{Conditions, Page, PageRequest};
use crate::store::recover::{
    by_status, BackgroundJob, CancelOutcome, RecoverFilter, RecoverJob, StillRetrying, JOB_COLUMNS,
};
use crate::store::{DeliveryStatus, StoreError, StoreResult};
use crate::time::UnixMs;

/// `recover::matching::MATCH` with its parameters numbered and typed.
const MATCH: &str = "status IN ('exhausted', 'failed') AND updated_at >= $1 AND updated_at < $2 \
    AND ($3::bytea IS NULL OR automation_id = $3::bytea) AND NOT EXISTS (SELECT 1 \
    FROM recover_job_deliveries WHERE job_id = $4::bytea AND delivery_id = deliveries.id)";

/// `recover::matching::LAST_ATTEMPT` with its parameters numbered and typed.
const LAST_ATTEMPT: &str = "($5::integer IS NULL AND $6::integer IS NULL AND $7::text IS NULL \
    AND $8::text IS NULL OR EXISTS (SELECT 1 FROM logs WHERE logs.id = deliveries.last_log_id \
    AND ($5::integer IS NULL OR logs.status_code = $5::integer) \
    AND ($6::integer IS NULL OR logs.status_class = $6::integer) \
    AND ($7::text IS NULL OR logs.error_code = $7::text) \
    AND ($8::text IS NULL OR logs.event_type = $8::text)))";

/// The filter's values as [`MATCH`] and [`LAST_ATTEMPT`] bind them (`$3`, `$5`-`$8`).
struct Bound {
    status_code: Option<i32>,
    status_class: Option<i32>,
    error_code: Option<&'static str>,
}

impl Bound {
    fn of(filter: &RecoverFilter) -> Bound {
        Bound {
            status_code: filter.status_code.map(i32::from),
            status_class: filter.status_class.map(i32::from),
            error_code: filter.error_code_str(),
        }
    }
}

/// How many deliveries job `id` (or a dry run, with a fresh id) would take, up to `limit`.
async fn count_matching(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    since: UnixMs,
    until: UnixMs,
    filter: &RecoverFilter,
    id: &RecoverJobId,
    limit: i64,
) -> StoreResult<i64> {
    let b = Bound::of(filter);
    let params: [&(dyn ToSql + Sync); 9] = [
        &since.as_ms(),
        &until.as_ms(),
        &filter.automation_id,
        id,
        &b.status_code,
        &b.status_class,
        &b.error_code,
        &filter.event_type,
        &limit,
    ];
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE {MATCH} AND {LAST_ATTEMPT} \
         LIMIT $9) m"
    );
    Ok(c.query_one(sql.as_str(), &params).await.at(pg)?.get(0))
}

/// `Store::count_recoverable` on PostgreSQL.
pub(crate) async fn count(
    pg: &Pg,
    since: UnixMs,
    until: UnixMs,
    filter: &RecoverFilter,
    cap: i64,
) -> StoreResult<(i64, bool)> {
    let client = pg.client().await?;
    let id = RecoverJobId::new();
    let matched = count_matching(pg, &**client, since, until, filter, &id, cap + 1).await?;
    Ok((matched.min(cap), matched > cap))
}

/// Stores a new recover job over the window (see `store::recover::create`).
pub(crate) async fn create(
    pg: &Pg,
    since: UnixMs,
    until: UnixMs,
    filter: &RecoverFilter,
    cap: i64,
) -> StoreResult<RecoverJobId> {
    let client = pg.client().await?;
    let id = RecoverJobId::new();
    let matched = count_matching(pg, &**client, since, until, filter, &id, cap + 1).await?;
    let b = Bound::of(filter);
    let params: [&(dyn ToSql + Sync); 12] = [
        &id,
        &since.as_ms(),
        &until.as_ms(),
        &filter.automation_id,
        &matched.min(cap),
        &(matched > cap),
        &UnixMs::now().as_ms(),
        &b.status_code,
        &b.status_class,
        &b.error_code,
        &filter.event_type,
        &pg.instance(),
    ];
    client
        .execute(
            "INSERT INTO recover_jobs (id, since, until, automation_id, total, requeued, capped, \
             created_at, status_code, status_class, error_code, event_type, run_by) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12::text::uuid)",
            &params,
        )
        .await
        .at(pg)?;
    Ok(id)
}

/// Re-queues up to `chunk` more deliveries of job `id` (see the module doc); returns how
/// many (0 once it is cancelled or done, or when another instance runs it).
pub(crate) async fn requeue_chunk(pg: &Pg, id: &RecoverJobId, chunk: i64) -> StoreResult<i64> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    if !job_owner::lock_mine(pg, &tx, id, "recover", "recover job").await? {
        return Ok(0);
    }
    let sql = format!("SELECT {JOB_COLUMNS} FROM recover_jobs WHERE id = $1");
    let row = tx.query_one(sql.as_str(), &[id]).await.at(pg)?;
    let job = read_job(&row)?;
    let take = chunk.min(job.total - job.requeued);
    if take <= 0 || job.cancelled_at.is_some() {
        return Ok(0);
    }
    let now = UnixMs::now().as_ms();
    let tag = BackgroundJob::Recover(id.clone()).stored();
    let b = Bound::of(&job.filter);
    let params: [&(dyn ToSql + Sync); 11] = [
        &job.since.as_ms(),
        &job.until.as_ms(),
        &job.filter.automation_id,
        id,
        &b.status_code,
        &b.status_class,
        &b.error_code,
        &job.filter.event_type,
        &take,
        &now,
        &tag,
    ];
    // Deliveries ended, so claimed by nobody; SKIP LOCKED passes over one a rerun is
    // settling at this moment (it is ending `succeeded`, not this job's).
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $10, claimed = 0, \
         claimed_by = NULL, next_trigger = 'recover', recover_job_id = $11, updated_at = $10 \
         WHERE id IN (SELECT id FROM deliveries WHERE {MATCH} AND {LAST_ATTEMPT} LIMIT $9 \
         FOR UPDATE SKIP LOCKED) RETURNING id"
    );
    let taken = tx.query(sql.as_str(), &params).await.at(pg)?;
    for r in &taken {
        let delivery: DeliveryId = r.key(0, "deliveries")?;
        tx.execute(
            "INSERT INTO recover_job_deliveries (job_id, delivery_id) VALUES ($1, $2)",
            &[id, &delivery],
        )
        .await
        .at(pg)?;
    }
    let n = taken.len() as i64;
    // Fewer than asked: the window ran dry (see `store::recover::requeue_chunk`).
    let new_total = if n < take { job.requeued + n } else { job.total };
    tx.execute(
        "UPDATE recover_jobs SET requeued = $2, total = $3 WHERE id = $1",
        &[id, &(job.requeued + n), &new_total],
    )
    .await
    .at(pg)?;
    if n > 0 {
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    tx.commit().await.at(pg)?;
    Ok(n)
}

/// A job's row, without its progress counts (`JOB_COLUMNS`' order).
fn read_job(r: &Row) -> StoreResult<RecoverJob> {
    let t = "recover_jobs";
    let id: RecoverJobId = r.key(0, t)?;
    let error_code = match r.opt_text(10, t, &id)? {
        Some(code) => Some(
            ErrorCode::parse(&code)
                .ok_or_else(|| r.corrupt(10, t, &id, format!("`{code}` is no error code")))?,
        ),
        None => None,
    };
    let status_code = r.opt_int(8, t, &id)?.map(|v| u16::try_from(v).unwrap_or(u16::MAX));
    let status_class = r.opt_int(9, t, &id)?.map(|v| u8::try_from(v).unwrap_or(u8::MAX));
    Ok(RecoverJob {
        since: r.time(1, t, &id)?,
        until: r.time(2, t, &id)?,
        filter: RecoverFilter {
            automation_id: r.opt_id(3, t, &id)?,
            status_code,
            status_class,
            error_code,
            event_type: r.opt_text(11, t, &id)?,
        },
        total: r.int(4, t, &id)?,
        capped: r.flag(5, t, &id)?,
        requeued: r.int(6, t, &id)?,
        done: 0,
        failed: 0,
        pending: 0,
        created_at: r.time(7, t, &id)?,
        cancelled_at: r.opt_time(12, t, &id)?,
        id,
    })
}

/// Job `id` with its progress.
async fn progress(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &RecoverJobId,
) -> StoreResult<RecoverJob> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM recover_jobs WHERE id = $1 AND kind = 'recover'");
    let row = c.query_opt(sql.as_str(), &[id]).await.at(pg)?;
    let mut job = read_job(&row.ok_or(StoreError::NotFound("recover job"))?)?;
    let rows = c
        .query(
            "SELECT d.status, count(*) FROM recover_job_deliveries j \
             JOIN deliveries d ON d.id = j.delivery_id WHERE j.job_id = $1 GROUP BY d.status",
            &[id],
        )
        .await
        .at(pg)?;
    (job.done, job.failed, job.pending) = status_counts(&rows, id.as_str())?;
    Ok(job)
}

/// (status, count) rows summed by `recover::by_status`.
pub(super) fn status_counts(rows: &[Row], of: &str) -> StoreResult<(i64, i64, i64)> {
    by_status(rows.iter().map(|r| -> StoreResult<(DeliveryStatus, i64)> {
        Ok((r.parsed(0, "deliveries", of, DeliveryStatus::parse)?, r.get(1)))
    }))
}

/// `Store::recover_job` on PostgreSQL.
pub(crate) async fn job(pg: &Pg, id: &RecoverJobId) -> StoreResult<RecoverJob> {
    progress(pg, &**pg.client().await?, id).await
}

/// `Store::list_recover_jobs` on PostgreSQL.
pub(crate) async fn list(pg: &Pg, page: &PageRequest) -> StoreResult<Page<RecoverJob>> {
    let client = pg.client().await?;
    let mut recover_only = Conditions::default();
    recover_only.push_literal("kind = 'recover'".into());
    let ids = read_page(
        pg,
        &**client,
        "recover_jobs",
        "id",
        &recover_only,
        page,
        |r| r.key::<crate::ids::RecoverJob>(0, "recover_jobs"),
        |id| id.as_str(),
    )
    .await?;
    let mut items = Vec::with_capacity(ids.items.len());
    for id in &ids.items {
        items.push(progress(pg, &**client, id).await?);
    }
    Ok(Page { items, before: ids.before, after: ids.after })
}

/// `store::recover::still_retrying` on PostgreSQL.
pub(crate) async fn still_retrying(pg: &Pg, job: &RecoverJob) -> StoreResult<StillRetrying> {
    let client = pg.client().await?;
    let now = UnixMs::now();
    let b = Bound::of(&job.filter);
    let params: [&(dyn ToSql + Sync); 10] = [
        &job.since.as_ms(),
        &job.until.as_ms(),
        &job.filter.automation_id,
        &job.id,
        &b.status_code,
        &b.status_class,
        &b.error_code,
        &job.filter.event_type,
        &now.as_ms(),
        &WAITING_AT.as_ms(),
    ];
    let sql = format!(
        "SELECT count(*), min(CASE WHEN claimed = 1 THEN $9 WHEN next_attempt_at = $10 \
         THEN NULL ELSE next_attempt_at END), max(created_at) FROM deliveries \
         WHERE status = 'pending' AND updated_at >= $1 AND created_at < $2 \
         AND ($3::bytea IS NULL OR automation_id = $3::bytea) AND NOT EXISTS (SELECT 1 \
         FROM recover_job_deliveries WHERE job_id = $4::bytea AND delivery_id = deliveries.id) \
         AND {LAST_ATTEMPT}"
    );
    let r = client.query_one(sql.as_str(), &params).await.at(pg)?;
    let at = |v: Option<i64>| v.map(UnixMs::from_ms);
    Ok(StillRetrying {
        count: r.get(0),
        next_attempt_at: at(r.get(1)).map(|at| at.max(now)),
        newest_created_at: at(r.get(2)),
    })
}

/// `Store::cancel_recover_job` on PostgreSQL: the job's row locked first (waiting for a
/// chunk running), so a chunk either ran before the cancel or sees it.
pub(crate) async fn cancel(pg: &Pg, id: &RecoverJobId) -> StoreResult<CancelOutcome> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    tx.execute("SELECT 1 FROM recover_jobs WHERE id = $1 FOR UPDATE", &[id]).await.at(pg)?;
    let job = progress(pg, &*tx, id).await?;
    if job.status() != "running" {
        return Ok(CancelOutcome::Ended(job));
    }
    tx.execute(
        "UPDATE recover_jobs SET cancelled_at = $2 WHERE id = $1",
        &[id, &UnixMs::now().as_ms()],
    )
    .await
    .at(pg)?;
    let job = progress(pg, &*tx, id).await?;
    tx.commit().await.at(pg)?;
    Ok(CancelOutcome::Cancelled(job))
}
