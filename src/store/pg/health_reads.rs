//! An automation's health on PostgreSQL: `store::health`'s and `store::health_windows`'
//! reads, beside them. The windows are tallied and turned into figures by the same
//! functions; only the SQL differs (`sum` of a bigint is numeric here, so it is cast back).

use tokio_postgres::GenericClient;

use super::rollup::cursor;
use super::{OrStore, Pg};
use crate::ids::{AutomationId, LogId};
use crate::store::column::Column;
use crate::store::health::EndpointHealth;
use crate::store::health_windows::{figures, logs_after, start_minutes, Tally};
use crate::store::rollup::MINUTE_MS;
use crate::store::{HealthWindow, StoreError, StoreResult};
use crate::time::UnixMs;

/// The health of automation `id` at `now`: its run of attempts and its calls of the last
/// hour and day.
pub(crate) async fn endpoint_health(
    pg: &Pg,
    id: AutomationId,
    now: UnixMs,
) -> StoreResult<EndpointHealth> {
    let client = pg.client().await?;
    let row = client
        .query_opt(
            "SELECT a.enabled, h.disabled_reason, h.last_success_at, h.last_failure_at, \
             coalesce(h.consecutive_failures, 0), h.failing_since FROM automations a \
             LEFT JOIN automation_health h ON h.automation_id = a.id WHERE a.id = $1::bytea",
            &[&id],
        )
        .await
        .at(pg)?
        .ok_or(StoreError::NotFound("automation"))?;
    let key = id.to_string();
    let enabled = row.flag(0, "automations", &key)?;
    let disabled_reason = row.opt_text(1, "automation_health", &key)?;
    Ok(EndpointHealth {
        windows: windows(pg, &**client, &id, now).await?,
        enabled,
        disabled_reason: disabled_reason.filter(|_| !enabled),
        last_success_at: row.opt_time(2, "automation_health", &key)?,
        last_failure_at: row.opt_time(3, "automation_health", &key)?,
        consecutive_failures: row.int(4, "automation_health", &key)?,
        failing_since: row.opt_time(5, "automation_health", &key)?,
        automation_id: id,
    })
}

/// The calls of automation `id` over the windows up to `now`: the rollup's minutes up to
/// its cursor, the logs after it (see `health_windows`).
async fn windows(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &AutomationId,
    now: UnixMs,
) -> StoreResult<Vec<HealthWindow>> {
    let (day, hour) = start_minutes(now);
    let mut tally = Tally::new();
    let rolled = c
        .query(
            "SELECT status_class, succeeded, minute >= $3, sum(calls)::bigint FROM rollup_classes \
             WHERE automation_id = $1::bytea AND minute >= $2 GROUP BY 1, 2, 3",
            &[id, &day, &hour],
        )
        .await
        .at(pg)?;
    let after = logs_after(cursor(pg, c).await?, day);
    let hour_id = LogId::time_bound(hour * MINUTE_MS);
    let recent = c
        .query(
            "SELECT status_class, error_code IS NULL, id >= $3::bytea, count(*) FROM logs \
             WHERE automation_id = $1::bytea AND id > $2::bytea GROUP BY 1, 2, 3",
            &[id, &after, &hour_id],
        )
        .await
        .at(pg)?;
    for row in rolled.iter().chain(&recent) {
        let class: i32 = row.try_get(0).at(pg)?;
        let key = (i64::from(class), row.try_get(1).at(pg)?, row.try_get(2).at(pg)?);
        *tally.entry(key).or_default() += row.try_get::<_, i64>(3).at(pg)?;
    }
    figures(&tally)
}
