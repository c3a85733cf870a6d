//! Duties that one instance at a time runs for the whole database: retention and the rollup
//! job. On SQLite there is one instance per file (its lock file), which holds every duty; on
//! PostgreSQL a lease per duty decides (see `pg::duties`). The tasks ask before each pass,
//! the same way on both backends.

use std::time::Duration;

use super::{pg, Backend, Store, StoreResult};

/// A duty run by one instance at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Deleting what is past its window (`crate::retention`).
    Retention,
    /// Counting logs into the overview's rollup (`crate::rollup`).
    Rollup,
}

impl Duty {
    /// Its name in `duty_leases.duty`.
    fn as_str(self) -> &'static str {
        match self {
            Duty::Retention => "retention",
            Duty::Rollup => "rollup",
        }
    }
}

impl Store {
    /// Whether this instance is to run `duty` now, for up to `lease` (taking or renewing its
    /// lease on PostgreSQL; always on SQLite). The holder asks again within `lease` to keep
    /// it; one that stops asking (or dies) loses it at the lease's end.
    pub async fn hold_duty(&self, duty: Duty, lease: Duration) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(p) => pg::duties::hold(p, duty.as_str(), p.instance(), lease).await,
        }
    }
}
