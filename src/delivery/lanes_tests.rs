//! Lanes: the concurrency bound per automation, the backlog behind it with its two bounds,
//! and shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use tokio::sync::Notify;

use super::{Admit, Bounds, Lanes, Reserved, SlotOrWait};
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::store::{Automation, ClaimedDelivery, Trigger};

const A: &str = "endp_0000000000000000000000000000000a";
const B: &str = "endp_0000000000000000000000000000000b";
const C: &str = "endp_0000000000000000000000000000000c";
/// An automation whose calls stall.
const D: &str = "endp_0000000000000000000000000000000d";

/// Automation id `text` (one of the ids above).
fn id(text: &str) -> AutomationId {
    AutomationId::parse(text).expect("a valid automation id")
}

/// Delivery `n` of `automation` (one of the ids above).
fn dlv(automation: &str, n: usize) -> DeliveryId {
    let last = &automation[automation.len() - 1..];
    DeliveryId::parse(&format!("dlv_{last}{n:0>31}")).expect("a valid delivery id")
}

fn delivery(automation: &str, n: usize) -> ClaimedDelivery {
    ClaimedDelivery {
        automation_version: 0,
        id: dlv(automation, n),
        message_id: MessageId::time_bound(n as i64),
        automation: Arc::new(Automation {
            id: AutomationId::parse(automation).expect("a valid automation id"),
            settings: crate::store::AutomationSettings {
                name: "lane test".into(),
                processor_id: "proc".into(),
                webhook_url: "http://127.0.0.1:9/hook".into(),
                webhook_headers: BTreeMap::new(),
                need_validation: false,
                default_language: "en".into(),
                enabled: true,
                event_types: None,
                ordering: crate::store::DeliveryOrder::Parallel,
                rate_limit_per_sec: None,
            },
            secret: "whsec_dGVzdHRlc3R0ZXN0dGVzdA==".into(),
            previous_secret: None,
            previous_secret_until: None,
            created_at: crate::time::UnixMs::EPOCH,
            updated_at: crate::time::UnixMs::EPOCH,
        }),
        snapshot_hash: [0; 16],
        payload: Some(Bytes::from_static(b"{}")),
        payload_hash: [0; 16],
        attempt: 1,
        trigger: Trigger::Initial,
        recover_job_id: None,
        created_at: crate::time::UnixMs::EPOCH,
        started: false,
    }
}

fn lanes(calls: usize, share: usize, total: usize) -> (Lanes, Arc<Notify>) {
    let refill = Arc::new(Notify::new());
    let bounds =
        Bounds { per_automation_calls: calls, per_automation_backlog: share, total_backlog: total };
    (Lanes::new(bounds, refill.clone()), refill)
}

/// Reserves for delivery `n` of `automation` with a global slot free, and queues it when it
/// got a place; returns what was reserved.
fn arrive(lanes: &Lanes, automation: &str, n: usize) -> Option<Reserved> {
    let reserved = lanes.reserve(&id(automation), || true);
    if reserved == Some(Reserved::Place) {
        assert!(matches!(lanes.enqueue(delivery(automation, n)), Admit::Queued));
    }
    reserved
}

#[test]
fn calls_past_the_bound_queue_and_the_finishing_call_takes_them_in_order() {
    let (lanes, _) = lanes(2, 100, 1000);
    assert_eq!(arrive(&lanes, &id(A), 1), Some(Reserved::Slot));
    assert_eq!(arrive(&lanes, &id(A), 2), Some(Reserved::Slot));
    assert_eq!(arrive(&lanes, &id(A), 3), Some(Reserved::Place));
    assert_eq!(arrive(&lanes, &id(A), 4), Some(Reserved::Place));
    assert_eq!((lanes.queued(), lanes.room()), (2, 998));
    // Another automation is not held up by a's backlog.
    assert_eq!(arrive(&lanes, &id(B), 1), Some(Reserved::Slot));
    assert_eq!(lanes.finish(&id(A)).map(|d| d.id).as_deref(), Some(dlv(A, 3).as_str()));
    assert_eq!(lanes.finish(&id(A)).map(|d| d.id).as_deref(), Some(dlv(A, 4).as_str()));
    assert_eq!(lanes.room(), 1000);
    // Backlog empty: the slots free up, and a new delivery gets one straight away.
    assert!(lanes.finish(&id(A)).is_none());
    assert!(lanes.finish(&id(A)).is_none());
    assert_eq!(arrive(&lanes, &id(A), 5), Some(Reserved::Slot));
}

#[test]
fn a_free_lane_slot_without_a_global_one_reserves_nothing() {
    let (lanes, _) = lanes(2, 100, 1000);
    assert_eq!(
        lanes.reserve(&id(A), || false),
        None,
        "a place behind no call would never be taken"
    );
    assert_eq!(lanes.queued(), 0);
    assert!(lanes.saturated().is_empty());
}

#[test]
fn no_automation_takes_more_than_its_share_of_the_backlog() {
    let (lanes, refill) = lanes(1, 4, 6);
    assert_eq!(arrive(&lanes, &id(A), 0), Some(Reserved::Slot));
    for n in 1..=4 {
        assert_eq!(arrive(&lanes, &id(A), n), Some(Reserved::Place), "delivery {n}");
    }
    assert_eq!(lanes.reserve(&id(A), || true), None, "a's share is used up");
    assert_eq!(lanes.saturated(), vec![id(A)]);
    // b still finds room: its own slot, then what is left of the total.
    assert_eq!(arrive(&lanes, &id(B), 0), Some(Reserved::Slot));
    assert_eq!(arrive(&lanes, &id(B), 1), Some(Reserved::Place));
    assert_eq!(arrive(&lanes, &id(B), 2), Some(Reserved::Place));
    assert_eq!(lanes.reserve(&id(B), || true), None, "the total is used up");
    assert_eq!(lanes.reserve(&id(C), || true), Some(Reserved::Slot), "a free slot needs no place");
    // c is at its bound too, and with the total used up it can take nothing either.
    let mut saturated = lanes.saturated();
    saturated.sort();
    assert_eq!(saturated, [id(A), id(B), id(C)]);
    // a drains to half its share: the claim loop is told to refill it.
    assert!(lanes.finish(&id(A)).is_some());
    assert!(lanes.finish(&id(A)).is_some());
    assert!(futures_util::FutureExt::now_or_never(refill.notified()).is_some());
    // A place given back (its write failed) is room again.
    assert_eq!(arrive(&lanes, &id(A), 5), Some(Reserved::Place));
    lanes.cancel_place(&id(B));
    assert_eq!(lanes.queued(), 4);
}

#[test]
fn a_call_ending_in_a_lane_that_had_deliveries_declined_wakes_the_claim_loop() {
    let (lanes, refill) = lanes(1, 2, 2);
    let woken = || futures_util::FutureExt::now_or_never(refill.notified()).is_some();
    assert_eq!(arrive(&lanes, &id(D), 0), Some(Reserved::Slot));
    assert_eq!(arrive(&lanes, &id(D), 1), Some(Reserved::Place));
    assert_eq!(arrive(&lanes, &id(D), 2), Some(Reserved::Place));
    // The shared backlog is full: "b", at its call bound, has a delivery declined.
    assert_eq!(arrive(&lanes, &id(B), 0), Some(Reserved::Slot));
    assert_eq!(lanes.reserve(&id(B), || true), None);
    assert!(!woken());
    assert!(lanes.finish(&id(B)).is_none());
    assert!(woken(), "the slot that came free is refilled at once, not at the next poll");
    // A lane the claim loop passes over because the shared backlog is full counts as declined.
    assert_eq!(arrive(&lanes, &id(B), 1), Some(Reserved::Slot));
    let mut saturated = lanes.saturated();
    saturated.sort();
    assert_eq!(saturated, [id(B), id(D)]);
    assert!(lanes.finish(&id(B)).is_none());
    assert!(woken());
    // Nothing declined since: the next call ending wakes nobody.
    assert_eq!(arrive(&lanes, &id(B), 2), Some(Reserved::Slot));
    assert!(lanes.finish(&id(B)).is_none());
    assert!(!woken());
}

#[test]
fn closing_returns_what_was_queued_and_refuses_the_rest() {
    let (lanes, _) = lanes(1, 10, 10);
    assert_eq!(arrive(&lanes, &id(A), 0), Some(Reserved::Slot));
    assert_eq!(arrive(&lanes, &id(A), 1), Some(Reserved::Place));
    assert_eq!(lanes.reserve(&id(A), || true), Some(Reserved::Place));
    assert_eq!(lanes.close(), vec![dlv(A, 1)]);
    // Closed: a reserved place is refused, nothing new is reserved, a finishing call takes nothing.
    assert!(matches!(lanes.enqueue(delivery(A, 2)), Admit::Refused(_)));
    assert_eq!(lanes.reserve(&id(C), || true), None);
    assert!(lanes.finish(&id(A)).is_none());
    assert_eq!((lanes.queued(), lanes.room()), (0, 0));
}

#[test]
fn a_reserved_place_whose_lane_freed_up_meanwhile_goes_at_once() {
    let (lanes, _) = lanes(1, 10, 10);
    assert_eq!(lanes.reserve(&id(A), || true), Some(Reserved::Slot));
    assert_eq!(lanes.reserve(&id(A), || true), Some(Reserved::Place));
    assert!(lanes.finish(&id(A)).is_none(), "the call ended before the place was filled");
    assert!(matches!(lanes.enqueue(delivery(A, 1)), Admit::Go(_)));
    assert_eq!(lanes.queued(), 0);
}

#[test]
fn callers_wait_in_line_ahead_of_the_backlog_and_can_leave_it() {
    let (lanes, _) = lanes(1, 10, 10);
    assert!(matches!(lanes.slot_or_wait(&id(A)), SlotOrWait::Taken));
    assert_eq!(arrive(&lanes, &id(A), 1), Some(Reserved::Place));
    let SlotOrWait::Waiting(first, mut handed) = lanes.slot_or_wait(&id(A)) else {
        panic!("the only slot is taken")
    };
    let SlotOrWait::Waiting(second, _) = lanes.slot_or_wait(&id(A)) else { panic!("still taken") };
    assert!(lanes.cancel_wait(&id(A), second), "the second caller gives up while in line");
    // The finishing call hands its slot to the first caller, not to the queued delivery.
    assert!(lanes.finish(&id(A)).is_none());
    assert!(handed.try_recv().is_ok());
    assert!(!lanes.cancel_wait(&id(A), first), "it holds the slot now, no longer in line");
    assert_eq!(lanes.finish(&id(A)).map(|d| d.id).as_deref(), Some(dlv(A, 1).as_str()));
    assert!(lanes.finish(&id(A)).is_none());
    assert!(matches!(lanes.slot_or_wait(&id(A)), SlotOrWait::Taken));
}
