//! The per-minute rollup on PostgreSQL: `store::rollup`'s job, beside it. The logs are
//! counted by the same `Counts`; the counts are written as four `INSERT … SELECT FROM
//! unnest(…) ON CONFLICT … DO UPDATE` statements (one round trip per table, whatever the
//! batch).
//!
//! Two things differ from SQLite, where one writer takes log ids in commit order:
//! - Several instances (and several connections of one) insert logs at once, so a log can
//!   commit after one with a later id. The job therefore counts only logs whose id is at
//!   least [`SETTLE_MS`] old: a log committed later than that after its id was drawn would
//!   be left uncounted (it stays in the logs), so logs must take their id in the
//!   transaction that inserts them.
//! - Two instances may run a pass at once (a duty lease that lapsed mid-pass). The cursor
//!   moves first in the counting transaction, on the condition that it is still where the
//!   logs were read from: the second pass waits for the first's row lock (or, before the
//!   first pass, its insert), finds the cursor moved, and rolls back. A log is never counted
//!   twice nor skipped, whichever instance counts it.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{OrStore, Pg};
use crate::ids::{AutomationId, LogId};
use crate::store::column::Column;
use crate::store::rollup::{Counted, Counts, ROLLUP_TABLES};
use crate::store::StoreResult;
use crate::time::UnixMs;

/// How old a log's id must be before the job counts it (see the module doc): longer than a
/// log's inserting transaction, plus the clock difference between instances.
pub(crate) const SETTLE_MS: i64 = 5_000;

/// The last log counted, `None` before the first pass.
pub(crate) async fn cursor(pg: &Pg, c: &(impl GenericClient + Sync)) -> StoreResult<Option<LogId>> {
    let row =
        c.query_opt("SELECT last_log_id FROM rollup_cursor WHERE id = 1", &[]).await.at(pg)?;
    row.map(|r| r.key(0, "rollup_cursor")).transpose()
}

/// Counts up to `limit` logs after the cursor, settled at `now`, and moves the cursor past
/// them in the same transaction; returns how many were counted (0 when another pass moved
/// the cursor first).
pub(crate) async fn roll_up(pg: &Pg, limit: usize, now: UnixMs) -> StoreResult<usize> {
    let mut client = pg.client().await?;
    let from = cursor(pg, &**client).await?;
    let start = from.clone().unwrap_or_else(|| LogId::time_bound(0));
    let settled = LogId::time_bound(now.as_ms() - SETTLE_MS);
    let op = if from.is_some() { ">" } else { ">=" };
    let sql = format!(
        "SELECT id, automation_id, status_code, duration_ms, error_code FROM logs \
         WHERE id {op} $1::bytea AND id < $2::bytea ORDER BY id LIMIT $3"
    );
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client.query(sql.as_str(), &[&start, &settled, &limit_sql]).await.at(pg)?;
    let mut logs = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: LogId = row.key(0, "logs")?;
        let key = id.to_string();
        let status: i32 = row.try_get(2).at(pg)?;
        logs.push(Counted {
            automation_id: row.key(1, "logs")?,
            status_code: u16::try_from(status)
                .map_err(|_| row.corrupt(2, "logs", &key, format!("status {status}")))?,
            duration_ms: row.real(3, "logs", &key)?,
            error_code: row.opt_text(4, "logs", &key)?,
            id,
        });
    }
    let Some(last) = logs.last().map(|l| l.id.clone()) else { return Ok(0) };
    let n = logs.len();
    let counts = Counts::of(logs, now);
    let tx = client.transaction().await.at(pg)?;
    let moved = match &from {
        Some(from) => tx
            .execute(
                "UPDATE rollup_cursor SET last_log_id = $1::bytea \
                 WHERE id = 1 AND last_log_id = $2::bytea",
                &[&last, from],
            )
            .await
            .at(pg)?,
        None => tx
            .execute(
                "INSERT INTO rollup_cursor (id, last_log_id) VALUES (1, $1::bytea) \
                 ON CONFLICT (id) DO NOTHING",
                &[&last],
            )
            .await
            .at(pg)?,
    };
    if moved == 0 {
        return Ok(0);
    }
    upsert(pg, &*tx, &counts).await?;
    tx.commit().await.at(pg)?;
    Ok(n)
}

/// Adds `counts` to the tables; the newer "last" values replace the stored ones.
async fn upsert(pg: &Pg, c: &(impl GenericClient + Sync), counts: &Counts) -> StoreResult<()> {
    let mut minute = Vec::new();
    let mut automation: Vec<&AutomationId> = Vec::new();
    let (mut succeeded, mut failed, mut status) = (Vec::new(), Vec::new(), Vec::new());
    let (mut call_error, mut error_code) = (Vec::new(), Vec::new());
    for ((m, a), row) in &counts.calls {
        minute.push(*m);
        automation.push(a);
        succeeded.push(row.succeeded);
        failed.push(row.failed);
        status.push(i32::from(row.last_status_code));
        call_error.push(row.last_call_error.as_deref());
        error_code.push(row.last_error_code.as_deref());
    }
    let calls: [&(dyn ToSql + Sync); 7] =
        [&minute, &automation, &succeeded, &failed, &status, &call_error, &error_code];
    c.execute(
        "INSERT INTO rollup_minutes AS r (minute, automation_id, succeeded, failed, \
         last_status_code, last_call_error, last_error_code) \
         SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], \
         $5::integer[], $6::text[], $7::text[]) \
         ON CONFLICT (minute, automation_id) DO UPDATE SET \
         succeeded = r.succeeded + excluded.succeeded, failed = r.failed + excluded.failed, \
         last_status_code = excluded.last_status_code, \
         last_call_error = excluded.last_call_error, \
         last_error_code = coalesce(excluded.last_error_code, r.last_error_code)",
        &calls,
    )
    .await
    .at(pg)?;
    let (mut automation, mut minute, mut class, mut ok, mut n): (Vec<&AutomationId>, _, _, _, _) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((a, m, c, s), calls) in &counts.classes {
        automation.push(a);
        minute.push(*m);
        class.push(i32::from(*c));
        ok.push(*s);
        n.push(*calls);
    }
    c.execute(
        "INSERT INTO rollup_classes AS r (automation_id, minute, status_class, succeeded, calls) \
         SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::integer[], $4::boolean[], \
         $5::bigint[]) ON CONFLICT (automation_id, minute, status_class, succeeded) \
         DO UPDATE SET calls = r.calls + excluded.calls",
        &[&automation, &minute, &class, &ok, &n],
    )
    .await
    .at(pg)?;
    let (mut minute, mut bucket, mut n) = (Vec::new(), Vec::new(), Vec::new());
    for ((m, b), calls) in &counts.latency {
        minute.push(*m);
        bucket.push(i32::try_from(*b).unwrap_or(i32::MAX));
        n.push(*calls);
    }
    c.execute(
        "INSERT INTO rollup_latency AS r (minute, bucket, calls) \
         SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[]) \
         ON CONFLICT (minute, bucket) DO UPDATE SET calls = r.calls + excluded.calls",
        &[&minute, &bucket, &n],
    )
    .await
    .at(pg)?;
    let (mut minute, mut code, mut n) = (Vec::new(), Vec::new(), Vec::new());
    for ((m, e), calls) in &counts.errors {
        minute.push(*m);
        code.push(e.as_str());
        n.push(*calls);
    }
    c.execute(
        "INSERT INTO rollup_errors AS r (minute, error_code, calls) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) \
         ON CONFLICT (minute, error_code) DO UPDATE SET calls = r.calls + excluded.calls",
        &[&minute, &code, &n],
    )
    .await
    .at(pg)?;
    Ok(())
}

/// Deletes up to `limit` rows of each rollup table older than `minute`, each table in a
/// statement of its own (a short transaction); returns how many in all.
pub(crate) async fn delete_before(pg: &Pg, minute: i64, limit: usize) -> StoreResult<usize> {
    let client = pg.client().await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut deleted = 0;
    for (table, key) in ROLLUP_TABLES {
        let sql = format!(
            "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} \
             WHERE minute < $1 ORDER BY minute LIMIT $2)"
        );
        deleted += client.execute(sql.as_str(), &[&minute, &limit]).await.at(pg)?;
    }
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}
