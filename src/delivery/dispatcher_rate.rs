//! The dispatcher's side of rate limits (see [`crate::delivery::rate_limit`]): a call to a
//! limited automation starts only when its window allows, the start recorded as the call
//! is about to go (after the claim, the payload and the global slot), so the times the
//! window counts are the calls' own.
//!
//! A delivery that must wait keeps its lane slot (so its automation's other deliveries
//! wait in its lane's backlog, or in the database once that is full, and the claim loop
//! passes over it as saturated) but gives its global slot back: a limited automation never
//! holds up the others. Its claim's lease is renewed while it waits, so it is never taken
//! for a stuck call and claimed again.

use std::future::Future;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use super::Dispatcher;
use crate::delivery::rate_limit::{CallerWaits, RateLimit};
use crate::delivery::NoSlot;
use crate::ids::{AutomationId, DeliveryId};
use crate::store::{Automation, ClaimedDelivery, StoreError};
use crate::time::UnixMs;

/// How often the lease of a delivery waiting for its start is renewed: well within the
/// slack a lease has past the call's own timeout.
const LEASE_RENEWAL: Duration = Duration::from_secs(20);

impl Dispatcher {
    /// The rate limit of automation `id` as it is now: `held`'s (a copy taken at an
    /// automations version) while no automation has changed since, else read again. Not
    /// cached by version: the version changes as an update starts, so a read racing the
    /// update can still see the old row, and must not be kept as the new version's.
    async fn rate_limit_of(
        &self,
        id: &AutomationId,
        held: Option<(&Automation, u64)>,
    ) -> Option<RateLimit> {
        let version = self.store.automations_version();
        if let Some((automation, _)) = held.filter(|(_, at)| *at == version) {
            return automation.settings.rate_limit_per_sec;
        }
        match self.store.automation(id.clone()).await {
            Ok(automation) => automation.settings.rate_limit_per_sec,
            Err(StoreError::NotFound(_)) => None,
            Err(e) => {
                tracing::warn!(automation = %id, error = %e, "cannot read the automation's rate limit again; keeping the one held");
                held.and_then(|(a, _)| a.settings.rate_limit_per_sec)
            }
        }
    }

    /// Waits until delivery `d` may start under its automation's rate limit, in line behind
    /// the deliveries of that automation that came first, and returns the global slot to
    /// call with (`global` when it did not wait); `None` when the relay stops meanwhile (the
    /// caller releases `d`).
    pub(super) async fn rate_turn(
        &self,
        d: &ClaimedDelivery,
        global: OwnedSemaphorePermit,
    ) -> Option<OwnedSemaphorePermit> {
        let id = &d.automation.id;
        let held = Some((&*d.automation, d.automation_version));
        if self.rate_limit_of(id, held).await.is_none() {
            return Some(global);
        }
        let turn = self.rate_windows.turn(id);
        let mut global = Some(global);
        let _turn = match turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => {
                global = None;
                self.leased(&d.id, turn.lock_owned()).await
            }
        };
        loop {
            if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let slot = match global.take() {
                Some(slot) => slot,
                None => {
                    self.leased(&d.id, self.capacity.global.clone().acquire_owned()).await.ok()?
                }
            };
            // Read again after each wait: an update may have changed or removed the limit.
            let Some(limit) = self.rate_limit_of(id, held).await else { return Some(slot) };
            match self.rate_windows.try_start(id, limit, Instant::now(), false) {
                Ok(()) => return Some(slot),
                Err(at) => {
                    drop(slot);
                    self.leased(&d.id, sleep_until(at)).await;
                }
            }
        }
    }

    /// Runs `wait`, renewing delivery `id`'s lease every [`LEASE_RENEWAL`] until it ends.
    async fn leased<F: Future>(&self, id: &DeliveryId, wait: F) -> F::Output {
        tokio::pin!(wait);
        loop {
            tokio::select! {
                out = &mut wait => return out,
                () = sleep(LEASE_RENEWAL) => {
                    let until = UnixMs::now().plus_ms(self.lease_ms());
                    if let Err(e) = self.store.extend_lease(id.clone(), until).await {
                        tracing::warn!(delivery = %id, error = %e, "renewing the lease of a delivery waiting for its rate limit failed");
                    }
                }
            }
        }
    }

    /// Waits until a call outside the dispatcher (a rerun, a test call) to `id` may start
    /// under its rate limit, taking the next start that comes free (not in line behind the
    /// deliveries: a person waits for it), until `deadline`; gives `global` back while it
    /// waits. Returns the global slot to call with and, under a limit, the room held for
    /// the call, whose start is recorded as it goes ([`CallerWaits::start`]).
    pub(in crate::delivery) async fn rate_start(
        &self,
        id: &AutomationId,
        global: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, Option<CallerWaits>), NoSlot> {
        let Some(limit) = self.rate_limit_of(id, None).await else { return Ok((global, None)) };
        let mut global = Some(global);
        let waits = self.rate_windows.caller_waits(id, limit);
        loop {
            let slot = match global.take() {
                Some(slot) => slot,
                None => {
                    match timeout_at(deadline, self.capacity.global.clone().acquire_owned()).await {
                        Ok(Ok(slot)) => slot,
                        Ok(Err(_)) => return Err(NoSlot::ShuttingDown),
                        Err(_) => {
                            return Err(NoSlot::Busy { waited_ms: self.config.call_slot_wait_ms })
                        }
                    }
                }
            };
            match self.rate_windows.caller_could_start(id, limit, Instant::now()) {
                Ok(()) => return Ok((slot, Some(waits))),
                Err(at) if at > deadline => {
                    return Err(NoSlot::RateLimited { per_sec: limit.per_sec() })
                }
                Err(at) => {
                    drop(slot);
                    sleep_until(at).await;
                }
            }
        }
    }
}
