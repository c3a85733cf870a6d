//! The room one write sets aside for the deliveries it stores or claims (a [`Ticket`]), and
//! the dispatcher's capacity it comes from: the global slots, the lanes, and the channel that
//! carries room given back from code that cannot wait (a drop, the writer thread) to the
//! dispatcher, which finishes the job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::lanes::{Lanes, Reserved};
use crate::ids::{AutomationId, DeliveryId};
use crate::store::{ClaimedDelivery, Take};

/// The dispatcher's side of a write that stores or claims deliveries. [`Intake::take`] runs
/// on the writer thread, inside the write's transaction, so it must not block.
///
/// Sealed: [`Ticket`] is the only intake, and the dispatcher makes the only tickets, so a
/// write that stores deliveries (the store's ingest needs an intake) can only run where
/// the dispatcher is handed its result (`Dispatcher::produce`, the claim loop).
pub trait Intake: sealed::Sealed + Send + Sync {
    /// How long a claim holds a delivery (ms): past the whole call, so only a crashed or
    /// stuck attempt lets it run out.
    fn lease_ms(&self) -> i64;
    /// Sets room aside for delivery `delivery_id` of `automation_id`, or declines it (it then
    /// stays unclaimed). Room set aside for a write that fails is the intake's to give back.
    fn take(&self, automation_id: &AutomationId, delivery_id: &DeliveryId) -> Option<Take>;
}

mod sealed {
    /// Nameable only here, so only this module implements [`super::Intake`].
    pub trait Sealed {}
    impl Sealed for super::Ticket {}
    #[cfg(test)]
    impl Sealed for super::FixedIntake {}
}

/// For the store's tests, which run without a dispatcher: takes every delivery the same way
/// (or none) under a given lease, and holds no room.
#[cfg(test)]
pub(crate) struct FixedIntake {
    /// How each delivery is taken; `None`: left unclaimed.
    pub take: Option<Take>,
    /// The lease of a delivery taken to call.
    pub lease_ms: i64,
}

#[cfg(test)]
impl Intake for FixedIntake {
    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn take(&self, _: &AutomationId, _: &DeliveryId) -> Option<Take> {
        self.take
    }
}

/// Work handed to the dispatcher by code that cannot wait for it.
pub(super) enum Returned {
    /// Claimed deliveries that will not be called now: hand them back to the database.
    Release(Vec<DeliveryId>),
    /// A queued delivery that took over a lane slot given back: call it (with this global
    /// slot, when one came along).
    Run(Box<ClaimedDelivery>, Option<OwnedSemaphorePermit>),
}

/// How many calls the relay may make at once, and where they wait.
pub(super) struct Capacity {
    /// `delivery.global_concurrency` slots.
    pub global: Arc<Semaphore>,
    /// The per-automation lanes.
    pub lanes: Lanes,
    /// See [`Returned`]; unbounded, since each message stands for room already held.
    pub returns: mpsc::UnboundedSender<Returned>,
}

impl Capacity {
    /// Gives back the lane slot of a call to `automation_id` that ended or never started:
    /// the next queued delivery takes it over (with `global`, when given), else it is freed.
    pub fn free_slot(&self, automation_id: &AutomationId, global: Option<OwnedSemaphorePermit>) {
        if let Some(next) = self.lanes.finish(automation_id) {
            let _ = self.returns.send(Returned::Run(Box::new(next), global));
        }
    }
}

/// What one delivery of a ticket holds.
pub(super) struct Reservation {
    /// Its automation.
    pub automation_id: AutomationId,
    /// With a lane slot: the global slot to call with. Without: a backlog place.
    pub global: Option<OwnedSemaphorePermit>,
}

/// The room one write (an ingest or a claim) set aside, delivery by delivery, as it ran.
/// The dispatcher redeems it for the deliveries the write returns; whatever is left when
/// the ticket is dropped (the write failed, or its caller went away) is given back, and its
/// deliveries are released in the database in case the write did commit.
pub struct Ticket {
    capacity: Arc<Capacity>,
    lease_ms: i64,
    /// A global slot the claim loop already holds, used before any other.
    prepaid: Mutex<Option<OwnedSemaphorePermit>>,
    taken: Mutex<HashMap<DeliveryId, Reservation>>,
    short_of_slots: AtomicBool,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing a panic could leave half-done is guarded by these locks.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ticket {
    pub(super) fn new(
        capacity: Arc<Capacity>,
        lease_ms: i64,
        prepaid: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            capacity,
            lease_ms,
            prepaid: Mutex::new(prepaid),
            taken: Mutex::default(),
            short_of_slots: AtomicBool::new(false),
        }
    }

    /// Takes out what was set aside for delivery `id`.
    pub(super) fn redeem(&self, id: &DeliveryId) -> Option<Reservation> {
        locked(&self.taken).remove(id)
    }

    /// Whether a delivery was declined only because no global slot was free: the claim loop
    /// takes it as soon as one is (a delivery declined because its automation is saturated
    /// waits for its lane to drain instead).
    pub fn short_of_slots(&self) -> bool {
        self.short_of_slots.load(Ordering::Relaxed)
    }
}

impl Intake for Ticket {
    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn take(&self, automation_id: &AutomationId, delivery_id: &DeliveryId) -> Option<Take> {
        let mut global = None;
        let reserved = self.capacity.lanes.reserve(automation_id, || {
            global = locked(&self.prepaid)
                .take()
                .or_else(|| self.capacity.global.clone().try_acquire_owned().ok());
            if global.is_none() {
                self.short_of_slots.store(true, Ordering::Relaxed);
            }
            global.is_some()
        })?;
        let reservation = Reservation { automation_id: automation_id.clone(), global };
        locked(&self.taken).insert(delivery_id.clone(), reservation);
        Some(match reserved {
            Reserved::Slot => Take::Call,
            Reserved::Place => Take::Hold,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let taken = std::mem::take(&mut *locked(&self.taken));
        if taken.is_empty() {
            return;
        }
        let mut ids = Vec::with_capacity(taken.len());
        for (id, reservation) in taken {
            match reservation.global {
                Some(global) => self.capacity.free_slot(&reservation.automation_id, Some(global)),
                None => self.capacity.lanes.cancel_place(&reservation.automation_id),
            }
            ids.push(id);
        }
        let _ = self.capacity.returns.send(Returned::Release(ids));
    }
}
