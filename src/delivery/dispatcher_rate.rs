//! The dispatcher's side of rate limits (see [`crate::delivery::rate_limit`]): a call to a
//! limited automation starts only when its window allows, the start recorded as the call
//! is about to go (after the claim, the payload, the global slot and the write marking it
//! started), so the times the window counts are the calls' own; on PostgreSQL the start
//! taken from the shared window is stamped again as the call arrives
//! (`rate_limit_stamp`).
//!
//! A delivery that must wait keeps its lane slot (so its automation's other deliveries
//! wait in its lane's backlog, or in the database once that is full, and the claim loop
//! passes over it as saturated) but gives its global slot back: a limited automation never
//! holds up the others. While it waits it is held (`claimed` 2, see `store::claims`), not
//! started: a crash or a stop during the wait puts it back in the queue with no log, and no
//! lease can run out under it.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::Dispatcher;
use crate::delivery::rate_limit::{RateLimit, Reservation};
use crate::delivery::rate_limit_stamp::StartStamp;
use crate::delivery::NoSlot;
use crate::ids::AutomationId;
use crate::store::{Automation, ClaimedDelivery, StoreError};

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

    /// Takes delivery `d`'s turn: waits until it may start under its automation's rate
    /// limit, in line behind the deliveries of that automation that came first, and marks
    /// it started (see `store::claims`) unless it was; returns the global slot to call with
    /// (`global` when it did not wait) and the start taken from the shared window, to stamp
    /// as the call arrives. `d.started` says whether to call it: false when it was released
    /// or its automation deleted meanwhile. `None` when the relay stops meanwhile (the caller
    /// releases `d`).
    pub(super) async fn take_turn(
        &self,
        d: &mut ClaimedDelivery,
        global: OwnedSemaphorePermit,
    ) -> Option<(OwnedSemaphorePermit, Option<StartStamp>)> {
        let automation = Arc::clone(&d.automation);
        let (id, held) = (&automation.id, Some((&*automation, d.automation_version)));
        if self.rate_limit_of(id, held).await.is_none() {
            self.mark_if_held(d).await;
            return Some((global, None));
        }
        let turn = self.rate_windows.turn(id);
        let mut global = Some(global);
        let _turn = match turn.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => {
                if !self.hold_to_wait(d).await {
                    return global.map(|slot| (slot, None));
                }
                global = None;
                turn.lock_owned().await
            }
        };
        loop {
            if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let slot = match global.take() {
                Some(slot) => slot,
                None => self.capacity.global.clone().acquire_owned().await.ok()?,
            };
            // Read again after each wait: an update may have changed or removed the limit.
            let Some(limit) = self.rate_limit_of(id, held).await else {
                self.mark_if_held(d).await;
                return Some((slot, None));
            };
            let windows = &self.rate_windows;
            let wait = match windows.could_start(id, limit, Instant::now(), false) {
                Ok(()) => {
                    if !self.mark_if_held(d).await {
                        return Some((slot, None));
                    }
                    match self.shared_start(id, limit).await {
                        Err(at) => at,
                        // Another start may have come between (a rerun's): then it waits again,
                        // the shared start taken left to count from its take.
                        Ok(stamp) => match windows.try_start(id, limit, Instant::now(), false) {
                            Ok(()) => return Some((slot, stamp)),
                            Err(at) => at,
                        },
                    }
                }
                Err(at) => at,
            };
            if !self.hold_to_wait(d).await {
                return Some((slot, None));
            }
            drop(slot);
            sleep_until(wait).await;
        }
    }

    /// Marks delivery `d` started unless it is; false when it must not be called.
    async fn mark_if_held(&self, d: &mut ClaimedDelivery) -> bool {
        if !d.started {
            d.started = self.mark_started(&d.id).await;
        }
        d.started
    }

    /// Before delivery `d` waits for its turn: takes it back to held if it was started (see
    /// [`crate::store::Store::hold_unstarted`]). False, with `d.started` false, when it must
    /// not be called: no longer pending under its claim, or the write failed (then it is
    /// released, as when marking it started fails).
    async fn hold_to_wait(&self, d: &mut ClaimedDelivery) -> bool {
        if !d.started {
            return true;
        }
        d.started = false;
        match self.store.hold_unstarted(d.id.clone()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(delivery = %d.id, error = %e, "holding a delivery while it waits for its rate limit failed; not calling it");
                self.release_unsent(vec![d.id.clone()]).await;
                false
            }
        }
    }

    /// Waits until a call outside the dispatcher (a rerun, a test call) to `id` may start
    /// under its rate limit, taking the next start that comes free (not in line behind the
    /// deliveries: a person waits for it), until `deadline`; gives `global` back while it
    /// waits. Returns the global slot to call with and, under a limit, the room held for
    /// the call, whose start is recorded as it goes ([`Reservation::start`]), with the start
    /// taken from the shared window, to stamp as the call arrives. The limit is read again
    /// after each wait: an update applies to callers already waiting.
    pub(in crate::delivery) async fn rate_start(
        &self,
        id: &AutomationId,
        global: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, Option<(Reservation, Option<StartStamp>)>), NoSlot> {
        let mut global = Some(global);
        let _waits = self.rate_windows.caller_waits(id);
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
            let Some(limit) = self.rate_limit_of(id, None).await else { return Ok((slot, None)) };
            let wait = match self.rate_windows.try_reserve(id, limit, Instant::now()) {
                Ok(room) => match self.shared_start(id, limit).await {
                    Ok(stamp) => return Ok((slot, Some((room, stamp)))),
                    Err(at) => at,
                },
                Err(at) => at,
            };
            if wait > deadline {
                return Err(NoSlot::RateLimited { per_sec: limit.per_sec() });
            }
            drop(slot);
            sleep_until(wait).await;
        }
    }

    /// Takes the start of a call to `id` from the window the instances share (see
    /// [`crate::store::Store::take_shared_start`]): `Ok` when it may start now, with the
    /// start to stamp as it arrives (none on SQLite), else when to ask again. A database that
    /// cannot answer makes the call wait a second: a limit is never passed for want of an
    /// answer.
    async fn shared_start(
        &self,
        id: &AutomationId,
        limit: RateLimit,
    ) -> Result<Option<StartStamp>, Instant> {
        match self.store.take_shared_start(id, limit).await {
            Ok(Ok(start)) => {
                Ok(start.map(|start| StartStamp::new(self.store.clone(), id.clone(), start)))
            }
            Ok(Err(wait)) => Err(Instant::now() + wait),
            Err(e) => {
                tracing::warn!(automation = %id, error = %e, "cannot take a start from the shared rate window; waiting a second");
                Err(Instant::now() + std::time::Duration::from_secs(1))
            }
        }
    }
}
