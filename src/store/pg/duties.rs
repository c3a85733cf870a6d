//! Duties run by one instance at a time (docs/postgres.md, "Duties"): a `duty_leases` row
//! per duty names the instance holding it until `lease_until`. Taking or renewing a lease is
//! one statement, decided by the row's lock: of two instances asking at once, the second
//! waits for the first's commit and then finds the lease current and someone else's. The
//! lease's times are the database's clock, so instances' clocks need not agree.

use std::sync::OnceLock;
use std::time::Duration;

use super::{OrStore, Pg};
use crate::store::StoreResult;

/// This process's id as a duty holder, drawn once. The one place that names the instance:
/// when instances get their `instances` row (issue 15, step 4), its id replaces this.
pub(crate) fn this_instance() -> uuid::Uuid {
    static ID: OnceLock<uuid::Uuid> = OnceLock::new();
    *ID.get_or_init(uuid::Uuid::now_v7)
}

/// Takes or renews the lease of `duty` for `me` for `lease`: true when `me` holds it now
/// (it was free, had lapsed, or was `me`'s already), false while another holds it.
pub(crate) async fn hold(
    pg: &Pg,
    duty: &str,
    me: uuid::Uuid,
    lease: Duration,
) -> StoreResult<bool> {
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
            &[&duty, &me.to_string(), &lease_ms],
        )
        .await
        .at(pg)?;
    Ok(held.is_some())
}
