//! Recording an attempt, and for the head of a FIFO line that ended, taking the next of its
//! line in the same write (see `store::fifo`): the line then costs one write per message,
//! not two (the record, then a claim of its own), so its throughput stays close to what
//! the receiver's latency allows.

use std::sync::Arc;

use super::Dispatcher;
use crate::delivery::ticket::Ticket;
use crate::ids::{AutomationId, DeliveryId};
use crate::store::{ClaimRequest, ClaimedDelivery, DeliveryOrder, Outcome, Recorded};
use crate::time::UnixMs;

impl Dispatcher {
    /// Records `outcome`, marking held delivery `mark` started in the same write; says
    /// whether it was. With `line` (the automation whose FIFO head `outcome` ended), the next
    /// of that line is claimed in that write too and started or queued; when none was taken
    /// (none left, or no room for it), the claim loop is woken to look again.
    pub(super) async fn record(
        self: &Arc<Self>,
        outcome: Outcome,
        mark: Option<(DeliveryId, UnixMs)>,
        line: Option<AutomationId>,
    ) -> bool {
        let delivery = outcome.delivery_id.clone();
        let recorded = match line {
            None => self.store.record_outcome(outcome, mark).await.map(|r| self.woken(r)),
            Some(automation_id) => {
                let ticket = Arc::new(Ticket::new(self.capacity.clone(), self.lease_ms(), None));
                let request = ClaimRequest {
                    want: 1,
                    scan: 1,
                    saturated: Vec::new(),
                    intake: ticket.clone(),
                    line: Some(automation_id),
                };
                match self.store.record_outcome_and_claim(outcome, mark, request).await {
                    Ok((recorded, claimed)) => {
                        if claimed.is_empty() {
                            self.wake();
                        }
                        self.admit(&ticket, claimed, false);
                        Ok(self.woken(recorded))
                    }
                    Err(e) => Err(e),
                }
            }
        };
        // On an error the claim lease makes the delivery due again later; nothing is lost.
        recorded.unwrap_or_else(|e| {
            tracing::error!(delivery = %delivery, error = %e, "recording an attempt failed");
            false
        })
    }

    /// Whether `d`'s automation delivers in FIFO order now: the copy held while no automation
    /// has changed since, else read again (a copy claimed before a switch to `fifo` must
    /// still hand over to the line, or the line waits for the claim loop's next poll).
    pub(super) async fn in_line(&self, d: &ClaimedDelivery) -> bool {
        let ordering = if self.store.automations_version() == d.automation_version {
            d.automation.settings.ordering
        } else {
            match self.store.automation(d.automation.id.clone()).await {
                Ok(automation) => automation.settings.ordering,
                Err(_) => d.automation.settings.ordering,
            }
        };
        ordering == DeliveryOrder::Fifo
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
