//! Slots for calls made outside the dispatcher (reruns and test calls): they take the same
//! lane slot and global slot as a delivery, so no number of them can call a receiver past
//! `per_automation_concurrency`, nor all receivers past `global_concurrency`. A caller
//! waits in line for its automation's next free slot (ahead of the deliveries queued in
//! memory: a person waits for each), then for a global one, at most
//! `delivery.call_slot_wait_ms` in all. They also count against their automation's rate
//! limit, and wait for it within the same time (see `dispatcher_rate`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::time::{timeout_at, Instant};

use super::lanes::SlotOrWait;
use super::rate_limit::Reservation;
use super::rate_limit_stamp::StartStamp;
use super::ticket::Capacity;
use super::Dispatcher;
use crate::ids::AutomationId;

/// Why a call got no slot.
#[derive(Debug, thiserror::Error)]
pub enum NoSlot {
    /// None came free in time.
    #[error(
        "no call slot came free within {waited_ms} ms: the automation is at \
         delivery.per_automation_concurrency, or all automations at \
         delivery.global_concurrency; try again later"
    )]
    Busy {
        /// How long the call waited.
        waited_ms: u64,
    },
    /// The automation's rate limit allows no call before the wait would end.
    #[error(
        "the automation's rate_limit_per_sec ({per_sec}) allows no call before \
         delivery.call_slot_wait_ms is over; try again later"
    )]
    RateLimited {
        /// The limit.
        per_sec: u32,
    },
    /// The relay is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// One of an automation's lane slots, given back when dropped.
struct LaneSlot {
    capacity: Arc<Capacity>,
    automation_id: AutomationId,
}

impl Drop for LaneSlot {
    fn drop(&mut self) {
        self.capacity.free_slot(&self.automation_id, None);
    }
}

/// A caller in line for a lane slot. Dropped while in line (it gave up, or its request went
/// away), it leaves the line, or gives back the slot it was handed meanwhile.
struct InLine {
    capacity: Arc<Capacity>,
    automation_id: AutomationId,
    id: u64,
    handed: oneshot::Receiver<()>,
    done: bool,
}

impl Drop for InLine {
    fn drop(&mut self) {
        if !self.done && !self.capacity.lanes.cancel_wait(&self.automation_id, self.id) {
            self.capacity.free_slot(&self.automation_id, None);
        }
    }
}

/// A lane slot and a global slot for one call; both are given back when it is dropped.
/// Under a rate limit it also holds room for the call's start: [`CallSlot::start`] records
/// it just before the call.
pub struct CallSlot {
    _lane: LaneSlot,
    _global: OwnedSemaphorePermit,
    rate: Option<(Reservation, Option<StartStamp>)>,
}

impl CallSlot {
    /// Records the call's start under its automation's rate limit: call it last, just
    /// before the call goes out. Returns the start taken from the shared window, to stamp
    /// as the call arrives (see [`crate::delivery::attempt::call`]).
    pub fn start(&mut self) -> Option<StartStamp> {
        let (rate, stamp) = self.rate.take()?;
        rate.start();
        stamp
    }
}

impl Dispatcher {
    /// Waits for a slot to call `automation_id` outside the dispatcher; see the module doc.
    pub async fn call_slot(&self, automation_id: &AutomationId) -> Result<CallSlot, NoSlot> {
        let waited_ms = self.config.call_slot_wait_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        let capacity = self.capacity.clone();
        let lane = match capacity.lanes.slot_or_wait(automation_id) {
            SlotOrWait::Taken => LaneSlot { capacity, automation_id: automation_id.clone() },
            SlotOrWait::Closed => return Err(NoSlot::ShuttingDown),
            SlotOrWait::Waiting(id, handed) => {
                let automation_id = automation_id.clone();
                let mut in_line =
                    InLine { capacity: capacity.clone(), automation_id, id, handed, done: false };
                match timeout_at(deadline, &mut in_line.handed).await {
                    Ok(Ok(())) => {
                        in_line.done = true;
                        LaneSlot { capacity, automation_id: in_line.automation_id.clone() }
                    }
                    Ok(Err(_)) => {
                        in_line.done = true;
                        return Err(NoSlot::ShuttingDown);
                    }
                    Err(_) => return Err(NoSlot::Busy { waited_ms }),
                }
            }
        };
        let global = self.capacity.global.clone().acquire_owned();
        let global = match timeout_at(deadline, global).await {
            Ok(Ok(global)) => global,
            Ok(Err(_)) => return Err(NoSlot::ShuttingDown),
            Err(_) => return Err(NoSlot::Busy { waited_ms }),
        };
        let (global, rate) = self.rate_start(automation_id, global, deadline).await?;
        Ok(CallSlot { _lane: lane, _global: global, rate })
    }
}
