//! Rate limits held across instances. The dispatcher's windows (`delivery::rate_limit`)
//! count the starts of this process; on SQLite that is every start (one process per file),
//! on PostgreSQL each start is also taken from the database's shared window
//! (`pg::rate_starts`), so instances sharing an automation's limit never exceed it together.
//!
//! A shared start is taken before its call goes, on the database's clock, and stamped once
//! the call arrived ([`Store::stamp_shared_start`]): taken at its decision, it would count
//! from a moment before its call left the instance (the take's answer travelling back, the
//! signing, the call's own way to the receiver, each varying call to call), and another
//! instance's call a second later could reach the receiver less than a second after it.

use std::time::Duration;

use super::{pg, Backend, Store, StoreResult};
use crate::delivery::rate_limit::RateLimit;
use crate::ids::AutomationId;

/// A start taken from PostgreSQL's shared window (its row's id), to be stamped as its call
/// arrives.
#[derive(Debug)]
pub struct SharedStart(pub(super) i64);

impl Store {
    /// Takes a start of a call to `automation` under `limit` from the window every instance
    /// shares: `Ok` when the call may start now, with the start to stamp once it arrived
    /// (none on SQLite, whose one process's window is the whole truth: always `Ok` there),
    /// else how long to wait before asking again.
    pub async fn take_shared_start(
        &self,
        automation: &AutomationId,
        limit: RateLimit,
    ) -> StoreResult<Result<Option<SharedStart>, Duration>> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Ok(None)),
            Backend::Postgres(p) => {
                Ok(pg::rate_starts::take(p, automation, limit.per_sec()).await?.map(Some))
            }
        }
    }

    /// Counts `start` of `automation` from now, on the database's clock: called once its
    /// call has arrived (see the module doc). Never earlier than it was taken.
    pub async fn stamp_shared_start(
        &self,
        automation: &AutomationId,
        start: SharedStart,
    ) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(p) => pg::rate_starts::stamp(p, automation, start).await,
        }
    }
}
