//! Recover jobs: re-queue every delivery that ended `failed` or `exhausted` in a window.
//! A job re-queues in chunks (so a big window never holds the writer for long) and notes
//! each delivery it took in `recover_job_deliveries`; its progress is read from those
//! deliveries, so the numbers are never out of step. Jobs over overlapping windows may run
//! at once: a delivery one of them re-queued is pending, so no other takes it (each is
//! taken and counted once), and a job counts only what it took.

use rusqlite::{params, Connection, OptionalExtension};

use super::page::{read_page, Conditions, Page, PageRequest};
use super::{decode, pg, Backend, DeliveryStatus, Store, StoreError, StoreResult};
use crate::ids::{DeliveryId, RecoverJobId};
use crate::outbound::ErrorCode;
use crate::time::UnixMs;

mod background_job;
mod control;
mod matching;
pub use background_job::BackgroundJob;
pub use control::CancelOutcome;
pub use matching::RecoverFilter;
use matching::{count_matching, match_params, LAST_ATTEMPT, MATCH};

/// A recover job and its progress.
#[derive(Debug, Clone)]
pub struct RecoverJob {
    /// `rcv_…`
    pub id: RecoverJobId,
    /// Window start (inclusive): when the deliveries ended.
    pub since: UnixMs,
    /// Window end (exclusive).
    pub until: UnixMs,
    /// Which of the window's ended deliveries it takes.
    pub filter: RecoverFilter,
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
    /// When it was cancelled: it re-queues nothing more (those it did are still sent).
    pub cancelled_at: Option<UnixMs>,
}

impl RecoverJob {
    /// `cancelled` once cancelled, else `running` until every matched delivery was
    /// re-queued and attempted.
    pub fn status(&self) -> &'static str {
        if self.cancelled_at.is_some() {
            "cancelled"
        } else if self.requeued < self.total || self.pending > 0 {
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

fn create(
    conn: &Connection,
    since: UnixMs,
    until: UnixMs,
    filter: &RecoverFilter,
    cap: i64,
) -> StoreResult<RecoverJobId> {
    let id = RecoverJobId::new();
    let matched = count_matching(conn, since, until, filter, &id, cap + 1)?;
    conn.prepare_cached(
        "INSERT INTO recover_jobs (id, since, until, automation_id, total, requeued, capped, \
         created_at, status_code, status_class, error_code, event_type) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        since,
        until,
        filter.automation_id,
        matched.min(cap),
        matched > cap,
        UnixMs::now(),
        filter.status_code,
        filter.status_class,
        filter.error_code_str(),
        filter.event_type,
    ])?;
    Ok(id)
}

/// Re-queues up to `chunk` more deliveries of job `id`; returns how many (0 once it is
/// cancelled).
fn requeue_chunk(conn: &Connection, id: &RecoverJobId, chunk: i64) -> StoreResult<i64> {
    let job = progress(conn, id)?;
    let take = chunk.min(job.total - job.requeued);
    if take <= 0 || job.cancelled_at.is_some() {
        return Ok(0);
    }
    let (requeued, total) = (job.requeued, job.total);
    let now = UnixMs::now();
    let tag = BackgroundJob::Recover(id.clone());
    let taken = conn
        .prepare_cached(&format!(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?10, claimed = 0, \
             next_trigger = 'recover', recover_job_id = ?11, updated_at = ?10 \
             WHERE id IN (SELECT id FROM deliveries WHERE {MATCH} AND {LAST_ATTEMPT} LIMIT ?9) \
             RETURNING id"
        ))?
        .query_map(match_params!(job.since, job.until, job.filter, id, take, now, tag), |r| {
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

/// The columns [`read_job`] reads (and `pg::recover`'s).
pub(crate) const JOB_COLUMNS: &str =
    "id, since, until, automation_id, total, capped, requeued, created_at, \
    status_code, status_class, error_code, event_type, cancelled_at";

/// A job's row, without its progress counts.
fn read_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecoverJob> {
    let error_code = match r.get::<_, Option<String>>(10)? {
        Some(code) => Some(ErrorCode::parse(&code).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                10,
                rusqlite::types::Type::Text,
                format!("recover_jobs.error_code `{code}` is no error code").into(),
            )
        })?),
        None => None,
    };
    Ok(RecoverJob {
        id: r.get(0)?,
        since: r.get(1)?,
        until: r.get(2)?,
        filter: RecoverFilter {
            automation_id: r.get(3)?,
            status_code: r.get(8)?,
            status_class: r.get(9)?,
            error_code,
            event_type: r.get(11)?,
        },
        total: r.get(4)?,
        capped: r.get(5)?,
        requeued: r.get(6)?,
        done: 0,
        failed: 0,
        pending: 0,
        created_at: r.get(7)?,
        cancelled_at: r.get(12)?,
    })
}

fn progress(conn: &Connection, id: &RecoverJobId) -> StoreResult<RecoverJob> {
    let mut job = conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM recover_jobs WHERE id = ?1 AND kind = 'recover'"
        ))?
        .query_row([id], read_job)
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
pub(crate) fn by_status<E: Into<StoreError>>(
    counts: impl Iterator<Item = Result<(DeliveryStatus, i64), E>>,
) -> StoreResult<(i64, i64, i64)> {
    let (mut done, mut failed, mut pending) = (0, 0, 0);
    for row in counts {
        let (status, n) = row.map_err(Into::into)?;
        match status {
            DeliveryStatus::Succeeded => done += n,
            DeliveryStatus::Pending => pending += n,
            DeliveryStatus::Failed | DeliveryStatus::Exhausted => failed += n,
        }
    }
    Ok((done, failed, pending))
}

/// Pending deliveries that were active in `[since, until)` (created before its end, last
/// changed after its start) whose last attempt passes the job's filters, apart from those
/// `job` re-queued itself. Both bounds
/// only move one way while a delivery retries, so the count is stable until they end.
fn still_retrying(conn: &Connection, job: &RecoverJob, now: UnixMs) -> StoreResult<StillRetrying> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT count(*), min(CASE WHEN claimed = 1 THEN ?9 \
             WHEN next_attempt_at = {waiting} THEN NULL ELSE next_attempt_at END), \
             max(created_at) FROM deliveries \
             WHERE status = 'pending' AND updated_at >= ?1 AND created_at < ?2 \
             AND (?3 IS NULL OR automation_id = ?3) AND NOT EXISTS (SELECT 1 \
             FROM recover_job_deliveries WHERE job_id = ?4 AND delivery_id = deliveries.id) \
             AND {LAST_ATTEMPT}",
            // A FIFO delivery waiting its turn has no time of its own (see `fifo`).
            waiting = super::WAITING_AT.as_ms()
        ))?
        .query_row(match_params!(job.since, job.until, job.filter, job.id, now), |r| {
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
         (kind = 'recover' AND requeued < total AND cancelled_at IS NULL) OR (kind = 'replay' AND ended IS NULL)",
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
        filter: RecoverFilter,
        cap: i64,
    ) -> StoreResult<RecoverJob> {
        let id = match &self.backend {
            Backend::Sqlite(db) => db.write(move |c| create(c, since, until, &filter, cap)).await?,
            Backend::Postgres(p) => pg::recover::create(p, since, until, &filter, cap).await?,
        };
        self.recover_job(id).await
    }

    /// Re-queues the next chunk of a job; 0 when it has nothing left. For a replay job a
    /// chunk creates the missing deliveries instead, and the count is of the messages it
    /// examined (see [`super::replay`]).
    pub async fn requeue_chunk(&self, job: BackgroundJob, chunk: i64) -> StoreResult<i64> {
        match job {
            BackgroundJob::Recover(id) => match &self.backend {
                Backend::Sqlite(db) => db.write(move |c| requeue_chunk(c, &id, chunk)).await,
                Backend::Postgres(p) => pg::recover::requeue_chunk(p, &id, chunk).await,
            },
            BackgroundJob::Replay(id) => match &self.backend {
                Backend::Sqlite(db) => {
                    db.write(move |c| super::replay::replay_chunk(c, &id, chunk)).await
                }
                Backend::Postgres(p) => pg::replay::chunk(p, &id, chunk).await,
            },
        }
    }

    /// A job with its progress.
    pub async fn recover_job(&self, id: RecoverJobId) -> StoreResult<RecoverJob> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::recover::job(p, &id).await,
        };
        db.read(move |c| progress(c, &id)).await
    }

    /// The deliveries of job `job`'s window that still retry (see [`still_retrying`]).
    pub async fn still_retrying(&self, job: RecoverJob) -> StoreResult<StillRetrying> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::recover::still_retrying(p, &job).await,
        };
        db.read(move |c| still_retrying(c, &job, UnixMs::now())).await
    }

    /// One page of recover jobs with their progress.
    pub async fn list_recover_jobs(&self, page: PageRequest) -> StoreResult<Page<RecoverJob>> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::recover::list(p, &page).await,
        };
        db.read(move |c| {
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
    /// at start-up. On PostgreSQL, where other instances run jobs of their own, only the
    /// jobs no live instance runs, adopted by this one (see `pg::job_owner::adopt`).
    pub async fn unfinished_recover_jobs(&self) -> StoreResult<Vec<BackgroundJob>> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::job_owner::adopt(p).await,
        };
        db.read(unfinished).await
    }

    /// Resolves when jobs of a lost instance may wait to be adopted
    /// ([`Store::unfinished_recover_jobs`] then finds them): never on SQLite, where only a
    /// stop of this relay interrupts a job and the start resumes it; on PostgreSQL after
    /// each heartbeat's interval, since any instance's death can.
    pub async fn lost_recover_jobs(&self) {
        match &self.backend {
            Backend::Sqlite(_) => std::future::pending().await,
            Backend::Postgres(_) => tokio::time::sleep(pg::job_owner::LOST_JOBS_EVERY).await,
        }
    }
}
