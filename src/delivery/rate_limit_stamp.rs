//! Stamping a start taken from PostgreSQL's shared rate window once its call arrived (see
//! `store::rate_starts`): a start counts from then, so the next second's calls, decided on
//! the database's clock, reach the receiver a full second after this one.

use std::future::Future;
use std::time::Duration;

use tokio::time::sleep;

use crate::ids::AutomationId;
use crate::store::{SharedStart, Store};

/// How long after its call went a start is stamped when the call has not answered by then
/// (the call goes on). A call reaches a receiver within this in all but a stalled network,
/// so its start still counts from after its arrival; and a start counts this much longer
/// than its call's second at most, so an automation whose receiver answers slowly gets at
/// most 5 % fewer calls than its limit. (A first call also connects; a loaded machine takes
/// 10-30 ms to carry a call to the receiver, which counting from the take missed.)
pub const STAMP_AFTER: Duration = Duration::from_millis(50);

/// A start taken from the shared window, to stamp once its call arrived.
pub struct StartStamp {
    store: Store,
    automation: AutomationId,
    start: SharedStart,
}

impl StartStamp {
    /// The stamp of `start`, taken for a call to `automation`.
    pub fn new(store: Store, automation: AutomationId, start: SharedStart) -> Self {
        Self { store, automation, start }
    }

    /// Stamps the start now. A failure leaves it counting from its take, and is logged.
    async fn stamp(self) {
        let StartStamp { store, automation, start } = self;
        if let Err(e) = store.stamp_shared_start(&automation, start).await {
            tracing::warn!(automation = %automation, error = %e, "cannot stamp a start in the shared rate window; it counts from when it was taken");
        }
    }
}

/// Runs `call` (a call about to go), stamping `stamp` once it answered, or [`STAMP_AFTER`]
/// after it went when that comes first; returns what the call returns.
pub async fn stamped<T>(call: impl Future<Output = T>, stamp: Option<StartStamp>) -> T {
    let Some(stamp) = stamp else { return call.await };
    tokio::pin!(call);
    let answered = tokio::select! {
        biased;
        out = &mut call => Some(out),
        () = sleep(STAMP_AFTER) => None,
    };
    match answered {
        Some(out) => {
            stamp.stamp().await;
            out
        }
        None => tokio::join!(call, stamp.stamp()).0,
    }
}
