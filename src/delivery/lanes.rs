//! Per-automation lanes: at most `per_automation_concurrency` calls in flight to one
//! automation, and a bounded in-memory backlog behind them. A delivery that finds its lane
//! full waits in the backlog without holding a global slot, and the call that frees a lane
//! slot takes the next one at once.
//!
//! The backlog is bounded twice: in total (`lane_backlog`) and per automation
//! (`per_automation_backlog`), so one stalled receiver can fill its own share but never the
//! room the others need. Room is reserved as a write stores or claims a delivery (see
//! [`Lanes::reserve`]), so nothing is claimed that the lanes cannot take; what does not fit
//! stays unclaimed in the database, and the claim loop passes over saturated automations
//! ([`Lanes::saturated`]) until their backlog has drained to half its share.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};

use crate::ids::{AutomationId, DeliveryId};
use crate::store::ClaimedDelivery;

/// What [`Lanes::reserve`] set aside for a delivery about to be stored or claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// A lane slot: the delivery is called at once.
    Slot,
    /// A place in the backlog: [`Lanes::enqueue`] puts the delivery there.
    Place,
}

/// What [`Lanes::enqueue`] did with a delivery that had a place reserved.
pub enum Admit {
    /// A lane slot came free meanwhile and is now taken: call now, then [`Lanes::finish`].
    Go(ClaimedDelivery),
    /// Queued behind the calls in flight; a finishing call will take it.
    Queued,
    /// The lanes are closed: hand it back to the database.
    Refused(ClaimedDelivery),
}

/// What [`Lanes::slot_or_wait`] got a caller (a rerun or a test call).
pub enum SlotOrWait {
    /// A lane slot, taken.
    Taken,
    /// In line for one: the receiver is told when a finishing call hands its slot over
    /// (see [`Lanes::cancel_wait`]); it errs when the lanes close.
    Waiting(u64, oneshot::Receiver<()>),
    /// The lanes are closed.
    Closed,
}

/// The backlog bounds.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Calls in flight per automation (at least one).
    pub per_automation_calls: usize,
    /// Deliveries waiting in memory per automation.
    pub per_automation_backlog: usize,
    /// Deliveries waiting in memory, all automations together.
    pub total_backlog: usize,
}

#[derive(Default)]
struct Lane {
    in_flight: usize,
    /// Places taken: queued deliveries and reservations not yet enqueued.
    held: usize,
    backlog: VecDeque<ClaimedDelivery>,
    /// Callers in line for a slot, served before the backlog: a person waits for each.
    callers: VecDeque<(u64, oneshot::Sender<()>)>,
    /// A delivery was declined (left in the database) since this lane last had room: the
    /// next call to end wakes the claim loop for it. Without this, a lane at its bound while
    /// the shared backlog is full would get new deliveries only at each poll.
    declined: bool,
}

#[derive(Default)]
struct State {
    lanes: HashMap<AutomationId, Lane>,
    held: usize,
    closed: bool,
    next_caller: u64,
}

/// The lanes of every automation with calls in flight or deliveries waiting.
pub struct Lanes {
    bounds: Bounds,
    state: Mutex<State>,
    /// Woken when a saturated lane (or the whole backlog) has drained to half its bound, or a
    /// call ends in a lane that had deliveries declined, so the claim loop refills it.
    refill: Arc<Notify>,
}

impl Lanes {
    /// Lanes within `bounds`, notifying `refill` when saturated backlogs have room again.
    pub fn new(bounds: Bounds, refill: Arc<Notify>) -> Self {
        let bounds = Bounds {
            per_automation_calls: bounds.per_automation_calls.max(1),
            per_automation_backlog: bounds.per_automation_backlog.max(1),
            total_backlog: bounds.total_backlog.max(1),
        };
        Self { bounds, state: Mutex::new(State::default()), refill }
    }

    /// Sets aside room for one delivery of `automation_id`: a lane slot when one is free and
    /// `global_slot` grants a global one, else a backlog place when the lane is at its bound
    /// and both backlog bounds have room, else nothing (the delivery stays in the database).
    /// A free lane slot without a global one reserves nothing: a place behind no call in
    /// flight would never be taken.
    pub fn reserve(
        &self,
        automation_id: &AutomationId,
        global_slot: impl FnOnce() -> bool,
    ) -> Option<Reserved> {
        let mut state = self.state.lock().ok()?;
        if state.closed {
            return None;
        }
        let bounds = self.bounds;
        let total_full = state.held >= bounds.total_backlog;
        let lane = state.lanes.entry(automation_id.clone()).or_default();
        let reserved = if lane.in_flight < bounds.per_automation_calls {
            global_slot().then(|| {
                lane.in_flight += 1;
                Reserved::Slot
            })
        } else if lane.held < bounds.per_automation_backlog && !total_full {
            lane.held += 1;
            Some(Reserved::Place)
        } else {
            None
        };
        match reserved {
            Some(Reserved::Place) => state.held += 1,
            Some(Reserved::Slot) => {}
            None => {
                lane.declined = true;
                forget_if_idle(&mut state, automation_id);
            }
        }
        reserved
    }

    /// Gives back a place reserved for a delivery that was not stored or claimed after all.
    pub fn cancel_place(&self, automation_id: &AutomationId) {
        let Ok(mut state) = self.state.lock() else { return };
        if let Some(lane) = state.lanes.get_mut(automation_id) {
            lane.held = lane.held.saturating_sub(1);
            state.held = state.held.saturating_sub(1);
        }
        forget_if_idle(&mut state, automation_id);
    }

    /// Puts a delivery whose place was reserved into its backlog, in the order deliveries
    /// arrive (so an automation's backlog is first come, first sent); see [`Admit`].
    pub fn enqueue(&self, delivery: ClaimedDelivery) -> Admit {
        let Ok(mut guard) = self.state.lock() else { return Admit::Refused(delivery) };
        let state = &mut *guard;
        let limit = self.bounds.per_automation_calls;
        let closed = state.closed;
        let Some(lane) = state.lanes.get_mut(&delivery.automation.id) else {
            return Admit::Refused(delivery);
        };
        if !closed && lane.in_flight >= limit {
            lane.backlog.push_back(delivery);
            return Admit::Queued;
        }
        lane.held = lane.held.saturating_sub(1);
        state.held = state.held.saturating_sub(1);
        if closed {
            forget_if_idle(state, &delivery.automation.id);
            return Admit::Refused(delivery);
        }
        // Calls ended while the write ran and freed a slot: nothing would take the place.
        lane.in_flight += 1;
        Admit::Go(delivery)
    }

    /// Takes a lane slot of `automation_id` for a call outside the dispatcher, or puts the
    /// caller in line for one. Give the slot back with [`Lanes::finish`].
    pub fn slot_or_wait(&self, automation_id: &AutomationId) -> SlotOrWait {
        let Ok(mut guard) = self.state.lock() else { return SlotOrWait::Closed };
        let state = &mut *guard;
        if state.closed {
            return SlotOrWait::Closed;
        }
        state.next_caller += 1;
        let id = state.next_caller;
        let lane = state.lanes.entry(automation_id.clone()).or_default();
        if lane.in_flight < self.bounds.per_automation_calls {
            lane.in_flight += 1;
            return SlotOrWait::Taken;
        }
        let (tx, rx) = oneshot::channel();
        lane.callers.push_back((id, tx));
        SlotOrWait::Waiting(id, rx)
    }

    /// Takes caller `id` out of line; false when it is no longer in line because a finishing
    /// call already handed it its slot (the caller then holds it and must give it back).
    pub fn cancel_wait(&self, automation_id: &AutomationId, id: u64) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        let Some(lane) = state.lanes.get_mut(automation_id) else { return false };
        let before = lane.callers.len();
        lane.callers.retain(|(caller, _)| *caller != id);
        before != lane.callers.len()
    }

    /// A call to `automation_id` ended: a caller in line gets its lane slot, else the next
    /// queued delivery keeps it and is returned to be called; with neither (or the lanes
    /// closed) the slot is freed.
    pub fn finish(&self, automation_id: &AutomationId) -> Option<ClaimedDelivery> {
        let mut guard = self.state.lock().ok()?;
        let state = &mut *guard;
        let closed = state.closed;
        let bounds = self.bounds;
        let lane = state.lanes.get_mut(automation_id)?;
        while let Some((_, caller)) = lane.callers.pop_front() {
            // Sent under the lock, so a caller that gives up in line sees either its place
            // or its slot (see `cancel_wait`).
            if caller.send(()).is_ok() {
                return None;
            }
        }
        let next = if closed { None } else { lane.backlog.pop_front() };
        if std::mem::take(&mut lane.declined) {
            self.refill.notify_one();
        }
        match next {
            Some(_) => {
                lane.held = lane.held.saturating_sub(1);
                let lane_refill = lane.held == bounds.per_automation_backlog / 2;
                state.held = state.held.saturating_sub(1);
                if lane_refill || state.held == bounds.total_backlog / 2 {
                    self.refill.notify_one();
                }
            }
            None => {
                lane.in_flight = lane.in_flight.saturating_sub(1);
                forget_if_idle(state, automation_id);
            }
        }
        next
    }

    /// Automations that can take no delivery now: every lane slot busy and no backlog room.
    /// The claim loop leaves their deliveries in the database. A lane passed over only
    /// because the shared backlog is full counts as having had deliveries declined (its next
    /// call end wakes the claim loop); one at its own share waits to drain to half of it.
    pub fn saturated(&self) -> Vec<AutomationId> {
        let Ok(mut state) = self.state.lock() else { return Vec::new() };
        let bounds = self.bounds;
        let total_full = state.held >= bounds.total_backlog;
        let mut saturated = Vec::new();
        for (id, lane) in &mut state.lanes {
            if lane.in_flight < bounds.per_automation_calls {
                continue;
            }
            if lane.held < bounds.per_automation_backlog {
                if !total_full {
                    continue;
                }
                lane.declined = true;
            }
            saturated.push(id.clone());
        }
        saturated
    }

    /// How many deliveries wait in the backlog (or have a place reserved there).
    pub fn queued(&self) -> usize {
        self.state.lock().map_or(0, |s| s.held)
    }

    /// How many more deliveries the backlog takes, all automations together (0 once closed).
    pub fn room(&self) -> usize {
        self.state.lock().map_or(0, |s| {
            if s.closed {
                0
            } else {
                self.bounds.total_backlog.saturating_sub(s.held)
            }
        })
    }

    /// Refuses everything from now on and returns the ids of the deliveries still queued,
    /// which were never sent (shutdown releases them to the database).
    pub fn close(&self) -> Vec<DeliveryId> {
        let Ok(mut state) = self.state.lock() else { return Vec::new() };
        state.closed = true;
        let mut ids = Vec::new();
        for lane in state.lanes.values_mut() {
            lane.callers.clear();
            lane.held = lane.held.saturating_sub(lane.backlog.len());
            ids.extend(lane.backlog.drain(..).map(|d| d.id));
        }
        state.held = state.held.saturating_sub(ids.len());
        ids
    }
}

/// Drops the entry of a lane with nothing in flight, queued or reserved.
fn forget_if_idle(state: &mut State, automation_id: &AutomationId) {
    if state.lanes.get(automation_id).is_some_and(|l| l.in_flight == 0 && l.held == 0) {
        state.lanes.remove(automation_id);
    }
}

#[cfg(test)]
#[path = "lanes_tests.rs"]
mod tests;
