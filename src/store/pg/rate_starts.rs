//! Rate limits across instances (`rate_starts.sql`, `rate_starts_stamped.sql`): one round
//! trip per start of a call to a limited automation, deciding on every instance's starts of
//! the last second, and one more once the call arrived, stamping the start with that time.

use std::time::Duration;

use super::{OrStore, Pg};
use crate::ids::AutomationId;
use crate::store::rate_starts::SharedStart;
use crate::store::StoreResult;

/// Takes a start of `automation` under `per_sec`: the start taken, else how long until one
/// of the second's starts leaves the window.
pub(crate) async fn take(
    pg: &Pg,
    automation: &AutomationId,
    per_sec: u32,
) -> StoreResult<Result<SharedStart, Duration>> {
    let client = pg.client().await?;
    let statement =
        client.prepare_cached("SELECT hr_rate_take($1::bytea, $2::integer)").await.at(pg)?;
    let per_sec = i32::try_from(per_sec).unwrap_or(i32::MAX);
    let answer: i64 = client.query_one(&statement, &[automation, &per_sec]).await.at(pg)?.get(0);
    if answer > 0 {
        return Ok(Ok(SharedStart(answer)));
    }
    Ok(Err(Duration::from_millis(answer.unsigned_abs().max(1))))
}

/// Moves `start` of `automation` to the database's clock now (see `hr_rate_stamp`).
pub(crate) async fn stamp(
    pg: &Pg,
    automation: &AutomationId,
    start: SharedStart,
) -> StoreResult<()> {
    let client = pg.client().await?;
    let statement =
        client.prepare_cached("SELECT hr_rate_stamp($1::bytea, $2::bigint)").await.at(pg)?;
    client.execute(&statement, &[automation, &start.0]).await.at(pg)?;
    Ok(())
}
