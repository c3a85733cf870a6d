use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{RateLimit, RateWindows, MAX_PER_SEC};
use crate::ids::AutomationId;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_limit_is_a_whole_number_from_one_to_the_maximum() {
    assert_eq!(RateLimit::new(0), None);
    assert_eq!(RateLimit::new(1).map(RateLimit::per_sec), Some(1));
    assert_eq!(RateLimit::new(u64::from(MAX_PER_SEC)).map(RateLimit::per_sec), Some(MAX_PER_SEC));
    assert_eq!(RateLimit::new(u64::from(MAX_PER_SEC) + 1), None);
    assert_eq!(RateLimit::new(u64::MAX), None);
}

#[test]
fn at_most_n_starts_in_any_second() {
    let windows = RateWindows::default();
    let a = AutomationId::new();
    let limit = RateLimit::new(3).expect("a limit");
    let t0 = Instant::now();
    for i in 0..3 {
        assert_eq!(windows.try_start(&a, limit, t0 + ms(i), false), Ok(()), "start {i}");
    }
    // The fourth waits until the first is a second old, to the instant.
    assert_eq!(windows.try_start(&a, limit, t0 + ms(500), false), Err(t0 + ms(1000)));
    assert_eq!(windows.try_start(&a, limit, t0 + ms(999), false), Err(t0 + ms(1000)));
    assert_eq!(windows.try_start(&a, limit, t0 + ms(1000), false), Ok(()));
    assert_eq!(windows.try_start(&a, limit, t0 + ms(1000), false), Err(t0 + ms(1001)));
    // Another automation has its own window.
    let b = AutomationId::new();
    assert_eq!(windows.try_start(&b, limit, t0 + ms(1000), false), Ok(()));
}

#[test]
fn a_lowered_limit_waits_for_the_older_starts_to_leave_the_window() {
    let windows = RateWindows::default();
    let a = AutomationId::new();
    let t0 = Instant::now();
    let five = RateLimit::new(5).expect("a limit");
    for i in 0..5 {
        assert_eq!(windows.try_start(&a, five, t0 + ms(i * 100), false), Ok(()));
    }
    let two = RateLimit::new(2).expect("a limit");
    // Five count; the next start may come once only one does (the one at 400 ms).
    assert_eq!(windows.try_start(&a, two, t0 + ms(450), false), Err(t0 + ms(1300)));
    assert_eq!(windows.try_start(&a, two, t0 + ms(1300), false), Ok(()));
    assert_eq!(windows.try_start(&a, two, t0 + ms(1300), false), Err(t0 + ms(1400)));
}

#[test]
fn idle_windows_are_dropped_past_the_bound() {
    let windows = RateWindows::default();
    let limit = RateLimit::new(1).expect("a limit");
    let t0 = Instant::now();
    let busy = AutomationId::new();
    assert_eq!(windows.try_start(&busy, limit, t0 + ms(10_000), false), Ok(()));
    for i in 0..super::PRUNE_AT as u64 * 2 {
        assert_eq!(windows.try_start(&AutomationId::new(), limit, t0 + ms(i * 10), false), Ok(()));
    }
    let held = windows.lock().len();
    assert!(held <= super::PRUNE_AT, "{held} windows kept");
    // The window whose start still counts was kept.
    assert_eq!(windows.try_start(&busy, limit, t0 + ms(10_500), false), Err(t0 + ms(11_000)));
}

#[test]
fn deliveries_leave_room_for_the_callers_waiting() {
    let windows = Arc::new(RateWindows::default());
    let a = AutomationId::new();
    let two = RateLimit::new(2).expect("a limit");
    let t0 = Instant::now();
    let waits = windows.caller_waits(&a);
    assert_eq!(windows.try_start(&a, two, t0, false), Ok(()));
    // One start left, kept for the caller: the delivery asks again once the first leaves.
    assert_eq!(windows.try_start(&a, two, t0 + ms(10), false), Err(t0 + ms(1000)));
    assert_eq!(windows.try_start(&a, two, t0 + ms(10), true), Ok(()));
    drop(waits);
    assert_eq!(windows.try_start(&a, two, t0 + ms(1000), false), Ok(()));
    // More callers than the limit: a delivery asks again a second on.
    let waiting: Vec<_> = (0..3).map(|_| windows.caller_waits(&a)).collect();
    assert_eq!(windows.try_start(&a, two, t0 + ms(1010), false), Err(t0 + ms(2010)));
    assert_eq!(windows.try_start(&a, two, t0 + ms(1010), true), Ok(()));
    assert_eq!(windows.try_start(&a, two, t0 + ms(1020), true), Err(t0 + ms(2000)));
    drop(waiting);
}

#[test]
fn a_caller_holds_its_room_until_it_starts_or_gives_it_up() {
    let windows = Arc::new(RateWindows::default());
    let a = AutomationId::new();
    let one = RateLimit::new(1).expect("a limit");
    let t0 = Instant::now();
    let room = windows.try_reserve(&a, one, t0).expect("room");
    assert!(windows.try_reserve(&a, one, t0 + ms(5)).is_err(), "a second caller waits");
    assert!(windows.try_start(&a, one, t0 + ms(5), false).is_err(), "so does a delivery");
    drop(room);
    let room = windows.try_reserve(&a, one, t0 + ms(10)).expect("given up, the room is free");
    // Started later than reserved: the start counted is the call's own.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let started = Instant::now();
    room.start();
    let Err(free) = windows.try_start(&a, one, started + ms(990), false) else {
        panic!("a start within a second of the call's own")
    };
    assert!(free >= started + ms(1000) && free < started + ms(1010), "{:?}", free - started);
    assert_eq!(windows.try_start(&a, one, free, false), Ok(()));
}

#[test]
fn no_limited_call_starts_in_the_first_second_after_a_start() {
    let windows = Arc::new(RateWindows::after_start());
    let a = AutomationId::new();
    let five = RateLimit::new(5).expect("a limit");
    let now = Instant::now();
    let Err(first) = windows.try_start(&a, five, now, false) else { panic!("a start at once") };
    assert!(first > now + ms(900) && first <= now + ms(1000), "{:?}", first - now);
    assert!(windows.try_reserve(&a, five, now).is_err(), "a caller waits too");
    assert_eq!(windows.try_start(&a, five, first, false), Ok(()));
}
