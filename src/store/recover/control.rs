//! What an operator does with a recover job besides creating it: count what a job would
//! take (a dry run, which stores nothing), and cancel one.

use rusqlite::{params, Connection};

use super::matching::count_matching;
use super::{progress, RecoverFilter, RecoverJob};
use crate::ids::RecoverJobId;
use crate::store::{pg, Backend, Store, StoreResult};
use crate::time::UnixMs;

/// What a cancel did.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// The job was running and is now cancelled.
    Cancelled(RecoverJob),
    /// The job had ended (completed, or cancelled before): nothing changed.
    Ended(RecoverJob),
}

/// Cancels job `id` unless it has ended. Done on the writer, as each chunk is, so a chunk
/// either ran before the cancel or sees it and re-queues nothing.
fn cancel(conn: &Connection, id: &RecoverJobId, now: UnixMs) -> StoreResult<CancelOutcome> {
    let job = progress(conn, id)?;
    if job.status() != "running" {
        return Ok(CancelOutcome::Ended(job));
    }
    conn.prepare_cached("UPDATE recover_jobs SET cancelled_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(CancelOutcome::Cancelled(progress(conn, id)?))
}

impl Store {
    /// How many deliveries a recover job over this window and filter would take (at most
    /// `cap`), and whether more matched; stores nothing.
    pub async fn count_recoverable(
        &self,
        since: UnixMs,
        until: UnixMs,
        filter: RecoverFilter,
        cap: i64,
    ) -> StoreResult<(i64, bool)> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::recover::count(p, since, until, &filter, cap).await,
        };
        db.read(move |c| {
            let matched = count_matching(c, since, until, &filter, &RecoverJobId::new(), cap + 1)?;
            Ok((matched.min(cap), matched > cap))
        })
        .await
    }

    /// Cancels a running recover job: it re-queues no further chunk, and is not resumed at
    /// the next start. The deliveries it re-queued already are still sent.
    pub async fn cancel_recover_job(&self, id: RecoverJobId) -> StoreResult<CancelOutcome> {
        let db = match &self.backend {
            Backend::Sqlite(db) => db,
            Backend::Postgres(p) => return pg::recover::cancel(p, &id).await,
        };
        db.write(move |c| cancel(c, &id, UnixMs::now())).await
    }
}
