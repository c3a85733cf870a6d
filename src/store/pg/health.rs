//! Endpoint health on PostgreSQL: `store::health::after_attempt`'s writes, beside it. After a
//! failure, in the transaction recording the attempt: the health row and the automatic
//! disable (recorded, with its `endpoint.disabled` webhook, through `pg::automation_events`)
//! before the attempt's log, and the per-message operational webhooks ([`queue_attempt_events`])
//! after the log, as they name it; after a success, once that transaction commits
//! ([`after_success`]). The instance recording the attempt queues them, once.

use tokio_postgres::types::ToSql;

use super::{automation_events, automations, operational, Cached, OrStore, Pg};
use crate::ids::LogId;
use crate::store::automation_events::{Actor, Switch};
use crate::store::deliveries::Outcome;
use crate::store::health::{attempt_events, LAST_SUCCESS_RESOLUTION_MS};
use crate::store::{Operations, StoreResult};
use crate::time::UnixMs;

/// Moves the health of `outcome`'s automation on after a failed call, in the transaction
/// recording it, and disables the automation when every attempt failed for
/// `operational.disable_after_hours`; returns whether it did. A success is [`after_success`].
pub(crate) async fn after_attempt(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    ops: &Operations,
    outcome: &Outcome,
) -> StoreResult<bool> {
    if !outcome.called || outcome.log.error_code.is_none() {
        return Ok(false);
    }
    let log = &outcome.log;
    let id = &log.automation_id;
    let now = log.response_at;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO automation_health (automation_id, last_failure_at, \
             consecutive_failures, failing_since) SELECT id, $2, 1, $2 FROM automations \
             WHERE id = $1 ON CONFLICT (automation_id) DO UPDATE SET last_failure_at = $2, \
             consecutive_failures = automation_health.consecutive_failures + 1, \
             failing_since = coalesce(automation_health.failing_since, $2) \
             RETURNING failing_since",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 2] = [id, &now.as_ms()];
    let since = tx.query_opt(&stmt, &params).await.at(pg)?;
    let since = since.and_then(|r| r.get::<_, Option<i64>>(0)).map(UnixMs::from_ms);
    let (Some(limit), Some(since)) = (ops.disable_after_ms, since) else { return Ok(false) };
    if now.since(since) < limit || ops.is_operational(id) {
        return Ok(false);
    }
    let changed = tx
        .execute(
            "UPDATE automations SET enabled = false, updated_at = $2 WHERE id = $1 AND enabled",
            &[id, &now.as_ms()],
        )
        .await
        .at(pg)?;
    let Some(automation) = automations::get(pg, tx, id).await?.filter(|_| changed == 1) else {
        return Ok(false);
    };
    let hours = |ms: i64| ms as f64 / 3_600_000.0;
    let reason = format!(
        "every attempt failed since {} ({:.4} h; operational.disable_after_hours = {})",
        since.rfc3339(),
        hours(now.since(since)),
        hours(limit)
    );
    let switch = Switch {
        automation: &automation,
        actor: &Actor::System,
        reason: &reason,
        failing_since: Some(since),
        now,
    };
    automation_events::record(pg, tx, ops, &switch).await?;
    Ok(true)
}

/// Moves the health of `outcome`'s automation on after a successful call: a statement of
/// its own, after the outcome's transaction commits, so that the row is locked only while
/// it changes (once a second at most, [`LAST_SUCCESS_RESOLUTION_MS`], or after failures),
/// never while the rest of a transaction runs. A crash between the two leaves the health a
/// success behind, which the next one mends; a failure answered after this success, recorded
/// meanwhile, is not undone by it. Written so that a success changing nothing
/// locks nothing: an UPDATE whose WHERE no longer holds once a concurrent writer commits
/// skips the row, and the INSERT runs only for a missing row, doing nothing on a conflict.
/// (`INSERT … ON CONFLICT DO UPDATE … WHERE` locks the row before testing its WHERE.)
pub(crate) async fn after_success(pg: &Pg, c: &impl Cached, outcome: &Outcome) -> StoreResult<()> {
    if !outcome.called || outcome.log.error_code.is_some() {
        return Ok(());
    }
    let stmt = c
        .prepare_cached(
            "WITH refreshed AS (UPDATE automation_health SET last_success_at = $2, \
             consecutive_failures = 0, failing_since = NULL WHERE automation_id = $1 \
             AND (consecutive_failures > 0 OR failing_since IS NOT NULL \
             OR last_success_at IS NULL OR last_success_at <= $2::bigint - $3::bigint) \
             AND (last_failure_at IS NULL OR last_failure_at <= $2) \
             RETURNING 1) \
             INSERT INTO automation_health (automation_id, last_success_at) \
             SELECT id, $2 FROM automations WHERE id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM automation_health h WHERE h.automation_id = $1) \
             ON CONFLICT (automation_id) DO NOTHING",
        )
        .await
        .at(pg)?;
    let log = &outcome.log;
    let params: [&(dyn ToSql + Sync); 3] =
        [&log.automation_id, &log.response_at.as_ms(), &LAST_SUCCESS_RESOLUTION_MS];
    c.execute(&stmt, &params).await.at(pg)?;
    Ok(())
}

/// Queues the per-message operational webhooks of `outcome` (`store::health::attempt_events`),
/// its log being `log_id`, in the caller's transaction.
pub(crate) async fn queue_attempt_events(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    ops: &Operations,
    outcome: &Outcome,
    log_id: &LogId,
) -> StoreResult<()> {
    for (event, data) in attempt_events(ops, outcome, log_id) {
        operational::emit(pg, tx, ops, event, data, outcome.log.response_at).await?;
    }
    Ok(())
}
