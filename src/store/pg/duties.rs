//! Duties run by one instance at a time (docs/postgres.md, "Duties"): a `duty_leases` row
//! per duty names the instance holding it until `lease_until`. Taking or renewing a lease is
//! one statement, decided by the row's lock: of two instances asking at once, the second
//! waits for the first's commit and then finds the lease current and someone else's. The
//! lease's times are the database's clock, so instances' clocks need not agree.

use std::time::Duration;

use super::{OrStore, Pg};
use crate::store::StoreResult;

/// Takes or renews the lease of `duty` for instance `me` (its id in `instances`, see
/// `pg::instances`) for `lease`: true when `me` holds it now (it was free, had lapsed, or
/// was `me`'s already), false while another holds it.
pub(crate) async fn hold(pg: &Pg, duty: &str, me: &str, lease: Duration) -> StoreResult<bool> {
    let client = pg.client().await?;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let held = client
        .query_opt(
            "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) \
             INSERT INTO duty_leases AS d (duty, held_by, lease_until) \
             SELECT $1, $2::text::uuid, ms + $3 FROM now \
             ON CONFLICT (duty) DO UPDATE SET held_by = excluded.held_by, \
             lease_until = excluded.lease_until \
             WHERE d.lease_until < (SELECT ms FROM now) OR d.held_by = excluded.held_by \
             RETURNING 1",
            &[&duty, &me, &lease_ms],
        )
        .await
        .at(pg)?;
    Ok(held.is_some())
}
