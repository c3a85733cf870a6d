//! Rate limits across instances (`rate_starts.sql`): one round trip per start of a call to
//! a limited automation, deciding on every instance's starts of the last second.

use std::time::Duration;

use super::{OrStore, Pg};
use crate::ids::AutomationId;
use crate::store::StoreResult;

/// Takes a start of `automation` under `per_sec`: `None` when taken, else how long until
/// one of the second's starts leaves the window.
pub(crate) async fn take(
    pg: &Pg,
    automation: &AutomationId,
    per_sec: u32,
) -> StoreResult<Option<Duration>> {
    let client = pg.client().await?;
    let statement =
        client.prepare_cached("SELECT hr_take_start($1::bytea, $2::integer)").await.at(pg)?;
    let per_sec = i32::try_from(per_sec).unwrap_or(i32::MAX);
    let wait_ms: i64 = client.query_one(&statement, &[automation, &per_sec]).await.at(pg)?.get(0);
    Ok(u64::try_from(wait_ms).ok().filter(|ms| *ms > 0).map(Duration::from_millis))
}
