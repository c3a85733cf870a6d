//! Recording an attempt, and for the head of a FIFO line that ended, taking the next of its
//! line in the same write (see `store::fifo`): the line then costs one write per message,
//! not two (the record, then a claim of its own), so its throughput stays close to what
//! the receiver's latency allows.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Dispatcher;
use crate::delivery::ticket::Ticket;
use crate::ids::{AutomationId, DeliveryId};
use crate::store::retry::{surely_unwritten, Backoff};
use crate::store::{ClaimRequest, Outcome, Recorded, StoreResult};
use crate::time::UnixMs;

impl Dispatcher {
    /// Records `outcome`, marking held delivery `mark` started in the same write; says
    /// whether it was. With `line` (the automation whose FIFO head `outcome` ended), the next
    /// of that line is claimed in that write too and started or queued; when none was taken
    /// (none left, or no room for it), the claim loop is woken to look again.
    ///
    /// A write the database refused for a passing reason that surely stored nothing (away,
    /// full, locked: see `store::retry::surely_unwritten`) is tried again with a backoff while
    /// the claim's lease lasts and the dispatcher is not stopping: dropped, the call the
    /// receiver answered would have no log and be made again once the lease ran out. A
    /// connection lost mid-write is not tried again: its COMMIT may have been carried out,
    /// and a second write would log the call twice; the lease makes it due again instead.
    pub(super) async fn record(
        self: &Arc<Self>,
        outcome: Outcome,
        mark: Option<(DeliveryId, UnixMs)>,
        line: Option<AutomationId>,
    ) -> bool {
        let outcome = Arc::new(outcome);
        let delivery = outcome.delivery_id.clone();
        let lease_ends = outcome.log.request_at.as_ms().saturating_add(self.lease_ms());
        let mut backoff = Backoff::new();
        loop {
            let error =
                match self.record_once(Arc::clone(&outcome), mark.clone(), line.clone()).await {
                    Ok(marked) => return marked,
                    Err(e) => e,
                };
            let wait = backoff.next_wait();
            let in_lease =
                UnixMs::now().as_ms().saturating_add(wait.as_millis() as i64) < lease_ends;
            if !surely_unwritten(&error) || !in_lease || self.stopping.load(Ordering::Relaxed) {
                // The claim lease makes the delivery due again later; nothing is lost.
                tracing::error!(delivery = %delivery, error = %error, "recording an attempt failed");
                return false;
            }
            tracing::warn!(delivery = %delivery, error = %error, "recording an attempt was refused; trying again");
            tokio::time::sleep(wait).await;
        }
    }

    /// One try of [`Dispatcher::record`].
    async fn record_once(
        self: &Arc<Self>,
        outcome: Arc<Outcome>,
        mark: Option<(DeliveryId, UnixMs)>,
        line: Option<AutomationId>,
    ) -> StoreResult<bool> {
        let Some(automation_id) = line else {
            return self.store.record_outcome(outcome, mark).await.map(|r| self.woken(r));
        };
        let ticket = Arc::new(Ticket::new(self.capacity.clone(), self.lease_ms(), None));
        let request = ClaimRequest {
            want: 1,
            scan: 1,
            saturated: Vec::new(),
            intake: ticket.clone(),
            line: Some(automation_id),
        };
        let (recorded, claimed) =
            self.store.record_outcome_and_claim(outcome, mark, request).await?;
        if claimed.is_empty() {
            self.wake();
        }
        self.admit(&ticket, claimed, false);
        Ok(self.woken(recorded))
    }

    /// Wakes the claim loop for the operational webhooks `recorded` queued; whether the next
    /// held delivery was marked started.
    fn woken(&self, recorded: Recorded) -> bool {
        if recorded.queued {
            self.wake();
        }
        recorded.marked
    }
}
