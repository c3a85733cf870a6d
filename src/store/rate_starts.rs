//! Rate limits held across instances. The dispatcher's windows (`delivery::rate_limit`)
//! count the starts of this process; on SQLite that is every start (one process per file),
//! on PostgreSQL each start is also taken from the database's shared window
//! (`pg::rate_starts`), so instances sharing an automation's limit never exceed it together.

use std::time::Duration;

use super::{pg, Backend, Store, StoreResult};
use crate::delivery::rate_limit::RateLimit;
use crate::ids::AutomationId;

impl Store {
    /// Takes a start of a call to `automation` under `limit` from the window every instance
    /// shares: `None` when the call may start now, else how long to wait before asking
    /// again. Always `None` on SQLite, whose one process's window is the whole truth.
    pub async fn take_shared_start(
        &self,
        automation: &AutomationId,
        limit: RateLimit,
    ) -> StoreResult<Option<Duration>> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(p) => pg::rate_starts::take(p, automation, limit.per_sec()).await,
        }
    }
}
