//! Reading the per-minute rollup on PostgreSQL: `store::rollup_reads`' SQL, beside it (the
//! console's overview and the automations' 24 h health), with the same row types and the
//! same windows. `sum` of a bigint is numeric here, so sums are cast back to bigint.

use std::collections::HashMap;

use tokio_postgres::GenericClient;

use super::rollup::cursor;
use super::{OrStore, Pg};
use crate::ids::AutomationId;
use crate::store::column::Column;
use crate::store::{AutomationHealth, Latency, MinuteCounts, Overview, StoreError, StoreResult};
use crate::time::UnixMs;

/// The health of each automation of `ids` with calls in the minutes from `since` on.
pub(crate) async fn automation_health(
    pg: &Pg,
    ids: Vec<AutomationId>,
    since: i64,
) -> StoreResult<HashMap<AutomationId, AutomationHealth>> {
    let client = pg.client().await?;
    let mut found = HashMap::new();
    for id in ids {
        let row = client
            .query_one(
                "SELECT sum(succeeded)::bigint, sum(failed)::bigint FROM rollup_minutes \
                 WHERE automation_id = $1::bytea AND minute >= $2",
                &[&id, &since],
            )
            .await
            .at(pg)?;
        let (succeeded, failed): (Option<i64>, Option<i64>) =
            (row.try_get(0).at(pg)?, row.try_get(1).at(pg)?);
        if let (Some(succeeded), Some(failed)) = (succeeded, failed) {
            let health = with_last(pg, &**client, id.clone(), since, succeeded, failed).await?;
            found.insert(id, health);
        }
    }
    Ok(found)
}

/// The overview's figures for the minutes from `day` on (latency also from `hour` on), with
/// the `failing` automations with the most failed calls.
pub(crate) async fn overview(
    pg: &Pg,
    day: i64,
    hour: i64,
    failing: usize,
) -> StoreResult<Overview> {
    let client = pg.client().await?;
    let c = &**client;
    let minutes = c
        .query(
            "SELECT minute, sum(succeeded)::bigint, sum(failed)::bigint FROM rollup_minutes \
             WHERE minute >= $1 GROUP BY minute ORDER BY minute",
            &[&day],
        )
        .await
        .at(pg)?
        .iter()
        .map(|r| {
            Ok(MinuteCounts {
                minute: r.try_get(0).at(pg)?,
                succeeded: r.try_get(1).at(pg)?,
                failed: r.try_get(2).at(pg)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    let errors = c
        .query(
            "SELECT error_code, sum(calls)::bigint AS n FROM rollup_errors WHERE minute >= $1 \
             GROUP BY error_code ORDER BY n DESC, error_code",
            &[&day],
        )
        .await
        .at(pg)?
        .iter()
        .map(|r| Ok((r.try_get(0).at(pg)?, r.try_get(1).at(pg)?)))
        .collect::<StoreResult<_>>()?;
    let worst = c
        .query(
            "SELECT automation_id, sum(succeeded)::bigint, sum(failed)::bigint AS n \
             FROM rollup_minutes WHERE minute >= $1 GROUP BY automation_id \
             HAVING sum(failed) > 0 ORDER BY n DESC, automation_id LIMIT $2",
            &[&day, &i64::try_from(failing).unwrap_or(i64::MAX)],
        )
        .await
        .at(pg)?;
    let mut failing = Vec::with_capacity(worst.len());
    for row in &worst {
        let id: AutomationId = row.key(0, "rollup_minutes")?;
        let (succeeded, failed) = (row.try_get(1).at(pg)?, row.try_get(2).at(pg)?);
        failing.push(with_last(pg, c, id, day, succeeded, failed).await?);
    }
    let counted_until = cursor(pg, c).await?.map(|id| UnixMs::from_ms(id.time_of()));
    Ok(Overview {
        minutes,
        latency_hour: latency(pg, c, hour).await?,
        latency_day: latency(pg, c, day).await?,
        errors,
        failing,
        counted_until,
    })
}

/// The calls of the minutes from `since` on, per latency bucket.
async fn latency(pg: &Pg, c: &(impl GenericClient + Sync), since: i64) -> StoreResult<Latency> {
    let mut merged = Latency::default();
    let rows = c
        .query(
            "SELECT bucket, sum(calls)::bigint FROM rollup_latency WHERE minute >= $1 \
             GROUP BY bucket",
            &[&since],
        )
        .await
        .at(pg)?;
    for row in &rows {
        let bucket: i32 = row.try_get(0).at(pg)?;
        merged.add(i64::from(bucket), row.try_get(1).at(pg)?);
    }
    Ok(merged)
}

/// `id`'s health from its counts, with its last status and errors since `since`.
async fn with_last(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: AutomationId,
    since: i64,
    succeeded: i64,
    failed: i64,
) -> StoreResult<AutomationHealth> {
    let last = c
        .query_one(
            "SELECT last_status_code, last_call_error FROM rollup_minutes \
             WHERE automation_id = $1::bytea AND minute >= $2 ORDER BY minute DESC LIMIT 1",
            &[&id, &since],
        )
        .await
        .at(pg)?;
    let status: i32 = last.try_get(0).at(pg)?;
    let last_status_code = u16::try_from(status).map_err(|_| {
        StoreError::Corrupt(format!("rollup_minutes.last_status_code {status} of {id}"))
    })?;
    let last_error_code = c
        .query_opt(
            "SELECT last_error_code FROM rollup_minutes WHERE automation_id = $1::bytea \
             AND minute >= $2 AND last_error_code IS NOT NULL ORDER BY minute DESC LIMIT 1",
            &[&id, &since],
        )
        .await
        .at(pg)?
        .map(|r| r.try_get(0).at(pg))
        .transpose()?;
    Ok(AutomationHealth {
        last_call_error: last.try_get(1).at(pg)?,
        automation_id: id,
        succeeded,
        failed,
        last_status_code: Some(last_status_code),
        last_error_code,
    })
}
