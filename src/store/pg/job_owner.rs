//! Which instance runs a recover or replay job (`recover_jobs.run_by`, docs/postgres.md,
//! "Instances"): the one that created it, until it dies. Once a survivor has taken a dead
//! instance over (its `instances` row deleted, see `takeover`), a job naming it is lost, and
//! the first instance to look adopts it ([`adopt`]) and runs its remaining chunks from its
//! stored progress. A chunk runs only on the job's instance ([`lock_mine`]), under the
//! job row's lock: two instances never run one job, and a chunk either ran before an
//! adoption or sees it.

use std::time::Duration;

use tokio_postgres::types::ToSql;

use super::{OrStore, Pg};
use crate::store::column::Column;
use crate::store::recover::BackgroundJob;
use crate::store::{StoreError, StoreResult};

/// How often an instance looks for lost jobs (its heartbeat's interval): a job is adopted
/// at most this long after its instance was taken over.
pub(crate) const LOST_JOBS_EVERY: Duration = Duration::from_secs(2);

/// The jobs not ended that no live instance runs (`run_by` NULL, as a job stored before
/// version 25 has, or naming an instance that is gone), adopted by this one in the same
/// statement. Of instances adopting at once each job goes to one: the second's update waits
/// on the row, and its re-check finds `run_by` changed from the value it found lost (as
/// `runs::left_running`, whose comment says why the `NOT EXISTS` alone is not enough).
pub(crate) async fn adopt(pg: &Pg) -> StoreResult<Vec<BackgroundJob>> {
    let client = pg.client().await?;
    let rows = client
        .query(
            "UPDATE recover_jobs r SET run_by = $1::text::uuid \
             FROM (SELECT id, run_by FROM recover_jobs j \
                   WHERE ((kind = 'recover' AND requeued < total AND cancelled_at IS NULL) \
                          OR (kind = 'replay' AND ended IS NULL)) \
                   AND (run_by IS NULL \
                        OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = j.run_by))) lost \
             WHERE r.id = lost.id AND r.run_by IS NOT DISTINCT FROM lost.run_by \
             RETURNING r.id, r.kind = 'replay'",
            &[&pg.instance()],
        )
        .await
        .at(pg)?;
    rows.iter()
        .map(|r| {
            Ok(if r.get(1) {
                BackgroundJob::Replay(r.key(0, "recover_jobs")?)
            } else {
                BackgroundJob::Recover(r.key(0, "recover_jobs")?)
            })
        })
        .collect()
}

/// Locks job `id`'s row (of `kind`, `what` naming it when it is missing) in `tx`, waiting
/// for a chunk, a cancel or an adoption holding it; whether this instance runs the job.
pub(super) async fn lock_mine(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    id: &(dyn ToSql + Sync),
    kind: &str,
    what: &'static str,
) -> StoreResult<bool> {
    let row = tx
        .query_opt(
            "SELECT run_by IS NOT DISTINCT FROM $2::text::uuid FROM recover_jobs \
             WHERE id = $1 AND kind = $3 FOR UPDATE",
            &[id, &pg.instance(), &kind],
        )
        .await
        .at(pg)?;
    Ok(row.ok_or(StoreError::NotFound(what))?.get(0))
}
