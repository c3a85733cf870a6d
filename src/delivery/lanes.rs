//! Per-automation lanes: at most `per_automation_concurrency` calls in flight to one
//! automation, and a bounded in-memory backlog behind them. A delivery that finds its lane
//! full waits in the backlog without holding a global slot (so one slow receiver cannot
//! starve the others), and the call that frees a lane slot takes the next one at once. The
//! backlog is bounded in total; ingest and the claim loop check [`Lanes::room`] before
//! handing deliveries over, so a delivery is seldom refused and sent back to the database
//! (which costs a write and a poll interval of latency).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::store::ClaimedDelivery;

/// Most deliveries waiting in memory behind all automations together (one hot automation may
/// use all of it: the others' calls still start at once while their lanes have free slots).
const BACKLOG_TOTAL: usize = 8192;

/// What [`Lanes::admit`] decided.
pub enum Admit {
    /// A lane slot is taken: call now, then [`Lanes::finish`].
    Go(ClaimedDelivery),
    /// Queued behind the calls in flight; a finishing call will take it.
    Queued,
    /// No room (or the lanes are closed): hand it back to the database.
    Refused(ClaimedDelivery),
}

#[derive(Default)]
struct Lane {
    in_flight: usize,
    backlog: VecDeque<ClaimedDelivery>,
}

#[derive(Default)]
struct State {
    lanes: HashMap<String, Lane>,
    queued: usize,
    closed: bool,
}

/// The lanes of every automation with calls in flight.
pub struct Lanes {
    limit: usize,
    state: Mutex<State>,
}

impl Lanes {
    /// Lanes allowing `limit` calls in flight per automation (at least one).
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), state: Mutex::new(State::default()) }
    }

    /// Takes a lane slot for `delivery`, queues it, or refuses it.
    pub fn admit(&self, delivery: ClaimedDelivery) -> Admit {
        let Ok(mut state) = self.state.lock() else { return Admit::Refused(delivery) };
        if state.closed {
            return Admit::Refused(delivery);
        }
        let limit = self.limit;
        let full = state.queued >= BACKLOG_TOTAL;
        let lane = state.lanes.entry(delivery.automation.id.clone()).or_default();
        if lane.in_flight < limit {
            lane.in_flight += 1;
            return Admit::Go(delivery);
        }
        if full {
            return Admit::Refused(delivery);
        }
        lane.backlog.push_back(delivery);
        state.queued += 1;
        Admit::Queued
    }

    /// A call to `automation_id` ended: the next queued delivery keeps its lane slot and is
    /// returned to be called; with none queued (or the lanes closed) the slot is freed.
    pub fn finish(&self, automation_id: &str) -> Option<ClaimedDelivery> {
        let mut state = self.state.lock().ok()?;
        let closed = state.closed;
        let lane = state.lanes.get_mut(automation_id)?;
        let next = if closed { None } else { lane.backlog.pop_front() };
        if next.is_none() {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            if lane.in_flight == 0 && lane.backlog.is_empty() {
                state.lanes.remove(automation_id);
            }
        } else {
            state.queued -= 1;
        }
        next
    }

    /// How many deliveries wait in the backlog.
    pub fn queued(&self) -> usize {
        self.state.lock().map_or(0, |s| s.queued)
    }

    /// How many more deliveries the backlog takes (0 once closed).
    pub fn room(&self) -> usize {
        self.state.lock().map_or(0, |s| {
            if s.closed {
                0
            } else {
                BACKLOG_TOTAL.saturating_sub(s.queued)
            }
        })
    }

    /// Refuses everything from now on and returns the ids of the deliveries still queued,
    /// which were never sent (shutdown releases them to the database).
    pub fn close(&self) -> Vec<String> {
        let Ok(mut state) = self.state.lock() else { return Vec::new() };
        state.closed = true;
        state.queued = 0;
        state.lanes.values_mut().flat_map(|lane| lane.backlog.drain(..)).map(|d| d.id).collect()
    }
}

#[cfg(test)]
#[path = "lanes_tests.rs"]
mod tests;
