//! Recover jobs: re-queue every delivery that ended `failed` or `exhausted` in a window.
//! A job re-queues in chunks (so a big window never holds the writer for long) and notes
//! each delivery it took in `recover_job_deliveries`; its progress is read from those
//! deliveries, so the numbers are never out of step. Jobs over overlapping windows may run
//! at once: a delivery one of them re-queued is pending, so no other takes it (each is
//! taken and counted once), and a job counts only what it took.

use rusqlite::{params, Connection, OptionalExtension};

use super::page::{read_page, Conditions, Page, PageRequest};
use super::{decode, DeliveryStatus, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, DeliveryId, RecoverJobId, ReplayJobId};
use crate::time::UnixMs;

/// A job the recover-job runner works through chunk by chunk: a recover job, or a replay
/// job (stored beside them, see [`super::replay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundJob {
    /// Re-queues ended deliveries.
    Recover(RecoverJobId),
    /// Creates the deliveries an automation missed.
    Replay(ReplayJobId),
}

impl std::fmt::Display for BackgroundJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackgroundJob::Recover(id) => id.fmt(f),
            BackgroundJob::Replay(id) => id.fmt(f),
        }
    }
}

/// The first byte of a stored [`BackgroundJob`]: which kind its id is.
const RECOVER_TAG: u8 = 1;
const REPLAY_TAG: u8 = 2;

/// Stored as a kind byte and the id's 16 bytes (`deliveries.recover_job_id` holds either
/// kind, and a stored id alone does not say which).
impl rusqlite::types::ToSql for BackgroundJob {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        let (tag, id) = match self {
            BackgroundJob::Recover(id) => (RECOVER_TAG, id.stored_bytes()),
            BackgroundJob::Replay(id) => (REPLAY_TAG, id.stored_bytes()),
        };
        let mut bytes = Vec::with_capacity(17);
        bytes.push(tag);
        bytes.extend_from_slice(id);
        Ok(rusqlite::types::ToSqlOutput::Owned(rusqlite::types::Value::Blob(bytes)))
    }
}

/// Read back by its kind byte; any other stored value is a conversion failure (a corrupt
/// value).
impl rusqlite::types::FromSql for BackgroundJob {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::{FromSqlError, ValueRef};
        let blob = value.as_blob()?;
        let (tag, id) = blob
            .split_first()
            .ok_or(FromSqlError::InvalidBlobSize { expected_size: 17, blob_size: 0 })?;
        match *tag {
            RECOVER_TAG => RecoverJobId::column_result(ValueRef::Blob(id)).map(Self::Recover),
            REPLAY_TAG => ReplayJobId::column_result(ValueRef::Blob(id)).map(Self::Replay),
            other => Err(FromSqlError::OutOfRange(i64::from(other))),
        }
    }
}

/// A recover job and its progress.
#[derive(Debug, Clone)]
pub struct RecoverJob {
    /// `rcv_…`
    pub id: RecoverJobId,
    /// Window start (inclusive): when the deliveries ended.
    pub since: UnixMs,
    /// Window end (exclusive).
    pub until: UnixMs,
    /// Only this automation's deliveries, when set.
    pub automation_id: Option<AutomationId>,
    /// Deliveries matched (at most the cap); once the window has run dry, those it took
    /// (deliveries another job took first were never this job's).
    pub total: i64,
    /// Whether more matched than the cap.
    pub capped: bool,
    /// Re-queued so far.
    pub requeued: i64,
    /// Re-queued and delivered.
    pub done: i64,
    /// Re-queued and failed again.
    pub failed: i64,
    /// Re-queued and not yet attempted.
    pub pending: i64,
    /// When it was created.
    pub created_at: UnixMs,
}

impl RecoverJob {
    /// `running` until every matched delivery was re-queued and attempted.
    pub fn status(&self) -> &'static str {
        if self.requeued < self.total || self.pending > 0 {
            "running"
        } else {
            "completed"
        }
    }
}

/// Deliveries of a window still retrying: not recoverable yet, which is why a recover job
/// over a window where everything still retries matches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct StillRetrying {
    /// How many.
    pub count: i64,
    /// The earliest next attempt among them (a call in flight counts as now).
    pub next_attempt_at: Option<UnixMs>,
    /// When the newest of them was created: the maximum age counts from there.
    pub newest_created_at: Option<UnixMs>,
}

/// Deliveries job `?4` may take: ended unsuccessfully in its window, and not taken by it
/// already (one it re-queued that failed again is not sent again by the same job).
const MATCH: &str = "status IN ('failed', 'exhausted') AND updated_at >= ?1 AND updated_at < ?2 \
    AND (?3 IS NULL OR automation_id = ?3) AND NOT EXISTS (SELECT 1 FROM recover_job_deliveries \
    WHERE job_id = ?4 AND delivery_id = deliveries.id)";

fn create(
    conn: &Connection,
    since: UnixMs,
    until: UnixMs,
    automation_id: Option<AutomationId>,
    cap: i64,
) -> StoreResult<RecoverJobId> {
    let id = RecoverJobId::new();
    let matched: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE {MATCH} LIMIT ?5)"
        ))?
        .query_row(params![since, until, automation_id, id, cap + 1], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO recover_jobs (id, since, until, automation_id, total, requeued, capped, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
    )?
    .execute(params![id, since, until, automation_id, matched.min(cap), matched > cap, UnixMs::now()])?;
    Ok(id)
}

/// Re-queues up to `chunk` more deliveries of job `id`; returns how many.
fn requeue_chunk(conn: &Connection, id: &RecoverJobId, chunk: i64) -> StoreResult<i64> {
    let job: Option<(UnixMs, UnixMs, Option<AutomationId>, i64, i64)> = conn
        .prepare_cached(
            "SELECT since, until, automation_id, total, requeued FROM recover_jobs WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let (since, until, automation_id, total, requeued) =
        job.ok_or(StoreError::NotFound("recover job"))?;
    let take = chunk.min(total - requeued);
    if take <= 0 {
        return Ok(0);
    }
    let now = UnixMs::now();
    let tag = BackgroundJob::Recover(id.clone());
    let taken = conn
        .prepare_cached(&format!(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?6, claimed = 0, \
             next_trigger = 'recover', recover_job_id = ?7, updated_at = ?6 \
             WHERE id IN (SELECT id FROM deliveries WHERE {MATCH} LIMIT ?5) RETURNING id"
        ))?
        .query_map(params![since, until, automation_id, id, take, now, tag], |r| {
            r.get::<_, DeliveryId>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut note = conn.prepare_cached(
        "INSERT INTO recover_job_deliveries (job_id, delivery_id) VALUES (?1, ?2)",
    )?;
    for delivery in &taken {
        note.execute(params![id, delivery])?;
    }
    let n = taken.len() as i64;
    // Fewer than asked means the window ran dry (other jobs took the rest, or deliveries
    // were deleted): the job is complete with what it took.
    let new_total = if n < take { requeued + n } else { total };
    conn.prepare_cached("UPDATE recover_jobs SET requeued = ?2, total = ?3 WHERE id = ?1")?
        .execute(params![id, requeued + n, new_total])?;
    Ok(n)
}

fn progress(conn: &Connection, id: &RecoverJobId) -> StoreResult<RecoverJob> {
    let mut job = conn
        .prepare_cached(
            "SELECT id, since, until, automation_id, total, capped, requeued, created_at FROM recover_jobs WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(RecoverJob {
                id: r.get(0)?,
                since: r.get(1)?,
                until: r.get(2)?,
                automation_id: r.get(3)?,
                total: r.get(4)?,
                capped: r.get(5)?,
                requeued: r.get(6)?,
                done: 0,
                failed: 0,
                pending: 0,
                created_at: r.get(7)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound("recover job"))?;
    (job.done, job.failed, job.pending) = taken_counts(conn, id)?;
    Ok(job)
}

/// The deliveries recover job `id` took: (succeeded, failed or exhausted, pending).
fn taken_counts(conn: &Connection, id: &RecoverJobId) -> StoreResult<(i64, i64, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.status, count(*) FROM recover_job_deliveries j \
         JOIN deliveries d ON d.id = j.delivery_id WHERE j.job_id = ?1 GROUP BY d.status",
    )?;
    let counts = stmt.query_map([id], |r| {
        Ok((decode::value(r, 0, "deliveries", &format!("those of job {id}"))?, r.get::<_, i64>(1)?))
    })?;
    by_status(counts)
}

/// The deliveries replay job `id` tagged: (succeeded, failed or exhausted, pending).
pub(super) fn tagged_counts(conn: &Connection, id: &BackgroundJob) -> StoreResult<(i64, i64, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, count(*) FROM deliveries WHERE recover_job_id = ?1 GROUP BY status",
    )?;
    let counts = stmt.query_map([id], |r| {
        Ok((decode::value(r, 0, "deliveries", &format!("those of job {id}"))?, r.get::<_, i64>(1)?))
    })?;
    by_status(counts)
}

/// Sums (status, count) rows as (succeeded, failed or exhausted, pending).
fn by_status(
    counts: impl Iterator<Item = rusqlite::Result<(DeliveryStatus, i64)>>,
) -> StoreResult<(i64, i64, i64)> {
    let (mut done, mut failed, mut pending) = (0, 0, 0);
    for row in counts {
        let (status, n) = row?;
        match status {
            DeliveryStatus::Succeeded => done += n,
            DeliveryStatus::Pending => pending += n,
            DeliveryStatus::Failed | DeliveryStatus::Exhausted => failed += n,
        }
    }
    Ok((done, failed, pending))
}

/// Pending deliveries that were active in `[since, until)` (created before its end, last
/// changed after its start), apart from those `job` re-queued itself. Both bounds
/// only move one way while a delivery retries, so the count is stable until they end.
fn still_retrying(conn: &Connection, job: &RecoverJob, now: UnixMs) -> StoreResult<StillRetrying> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), min(CASE WHEN claimed = 1 THEN ?5 ELSE next_attempt_at END), \
             max(created_at) FROM deliveries \
             WHERE status = 'pending' AND updated_at >= ?1 AND created_at < ?2 \
             AND (?3 IS NULL OR automation_id = ?3) AND NOT EXISTS (SELECT 1 \
             FROM recover_job_deliveries WHERE job_id = ?4 AND delivery_id = deliveries.id)",
        )?
        .query_row(params![job.since, job.until, job.automation_id, job.id, now], |r| {
            Ok(StillRetrying {
                count: r.get(0)?,
                next_attempt_at: r.get::<_, Option<UnixMs>>(1)?.map(|at| at.max(now)),
                newest_created_at: r.get(2)?,
            })
        })?)
}

/// See [`Store::unfinished_recover_jobs`]; each job typed by its kind.
pub(super) fn unfinished(conn: &Connection) -> StoreResult<Vec<BackgroundJob>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind = 'replay' FROM recover_jobs WHERE \
         (kind = 'recover' AND requeued < total) OR (kind = 'replay' AND ended IS NULL)",
    )?;
    let jobs = stmt
        .query_map([], |r| {
            Ok(if r.get(1)? {
                BackgroundJob::Replay(decode::key(r, 0, "recover_jobs")?)
            } else {
                BackgroundJob::Recover(decode::key(r, 0, "recover_jobs")?)
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jobs)
}

impl Store {
    /// Creates a recover job over the window; re-queuing happens in [`Store::requeue_chunk`].
    pub async fn create_recover_job(
        &self,
        since: UnixMs,
        until: UnixMs,
        automation_id: Option<AutomationId>,
        cap: i64,
    ) -> StoreResult<RecoverJob> {
        let id = self.write(move |c| create(c, since, until, automation_id, cap)).await?;
        self.recover_job(id).await
    }

    /// Re-queues the next chunk of a job; 0 when it has nothing left. For a replay job a
    /// chunk creates the missing deliveries instead, and the count is of the messages it
    /// examined (see [`super::replay`]).
    pub async fn requeue_chunk(&self, job: BackgroundJob, chunk: i64) -> StoreResult<i64> {
        match job {
            BackgroundJob::Recover(id) => self.write(move |c| requeue_chunk(c, &id, chunk)).await,
            BackgroundJob::Replay(id) => {
                self.write(move |c| super::replay::replay_chunk(c, &id, chunk)).await
            }
        }
    }

    /// A job with its progress.
    pub async fn recover_job(&self, id: RecoverJobId) -> StoreResult<RecoverJob> {
        self.read(move |c| progress(c, &id)).await
    }

    /// The deliveries of job `job`'s window that still retry (see [`still_retrying`]).
    pub async fn still_retrying(&self, job: RecoverJob) -> StoreResult<StillRetrying> {
        self.read(move |c| still_retrying(c, &job, UnixMs::now())).await
    }

    /// One page of recover jobs with their progress.
    pub async fn list_recover_jobs(&self, page: PageRequest) -> StoreResult<Page<RecoverJob>> {
        self.read(move |c| {
            // Replay jobs share the table; they are listed with their automation.
            let mut recover_only = Conditions::default();
            recover_only.push_literal("kind = 'recover'".into());
            let ids = read_page(
                c,
                "recover_jobs",
                "id",
                &recover_only,
                &page,
                |r| decode::key::<crate::ids::RecoverJob>(r, 0, "recover_jobs"),
                |id| id.as_str(),
            )?;
            let items = ids.items.iter().map(|id| progress(c, id)).collect::<StoreResult<_>>()?;
            Ok(Page { items, before: ids.before, after: ids.after })
        })
        .await
    }

    /// Jobs interrupted before they re-queued (a replay job: created) everything, resumed
    /// at start-up.
    pub async fn unfinished_recover_jobs(&self) -> StoreResult<Vec<BackgroundJob>> {
        self.read(unfinished).await
    }
}
