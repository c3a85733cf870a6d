//! Which connections are open and whether each has a request in flight: the connection cap,
//! the idle deadlines, and the eviction of idle connections when the cap is reached.
//!
//! A connection is idle while it has no request in flight: from its accept until its first
//! request's headers are in, and from the end of each answer (the response body sent or
//! dropped) until the next request. Closing an idle connection loses no work, so under
//! pressure the one idle the longest makes room for a new client. A connection whose only
//! requests in flight are still receiving their bodies is waiting on its client too, and
//! may be evicted alike, ranked by how long it has waited (since the oldest such request
//! started): a client that trickles a body holds a descriptor just as a slow head does,
//! and if such connections counted as busy, enough of them, reconnecting as they are
//! closed, would lock everyone out (`/healthz` included). A new connection is always the
//! youngest, so it gets its turn. Under no pressure they are left to finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The open connections, at most `max` of them (plus those evicted and not yet gone).
pub(super) struct Connections {
    max: usize,
    open: Mutex<Open>,
}

struct Open {
    next_id: u64,
    by_id: HashMap<u64, Arc<Activity>>,
    /// How many of `by_id` were told to close and have not yet gone: they no longer count
    /// against the cap, or a burst of clients would find it full of departing connections.
    evicted: usize,
}

/// The answer to a new connection.
pub(super) enum Admission {
    /// It may be served; dropping the slot frees its place.
    Admitted(Slot),
    /// The cap is reached and every connection has a request in flight.
    Full,
}

/// A connection's place among the open ones.
pub(super) struct Slot {
    id: u64,
    connections: Arc<Connections>,
    /// What the connection is doing, shared with its service and the cap.
    pub(super) activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        if open.by_id.remove(&self.id).is_some() && self.activity.lock().evicted {
            open.evicted -= 1;
        }
    }
}

impl Connections {
    /// Room for `max` connections.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(Open { next_id: 0, by_id: HashMap::new(), evicted: 0 }),
        })
    }

    /// Admits a new connection, evicting the connection idle the longest when the cap is
    /// reached; `Full` when every open connection has a request in flight.
    pub(super) fn admit(self: &Arc<Self>) -> Admission {
        let mut open = self.lock();
        if open.by_id.len() - open.evicted >= self.max && !evict_longest_idle(&mut open) {
            return Admission::Full;
        }
        let id = open.next_id;
        open.next_id += 1;
        let activity = Arc::new(Activity::new());
        open.by_id.insert(id, activity.clone());
        Admission::Admitted(Slot { id, connections: self.clone(), activity })
    }

    /// Tells the connection idle the longest to close at once; whether there was one.
    pub(super) fn evict_longest_idle(&self) -> bool {
        evict_longest_idle(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn evict_longest_idle(open: &mut Open) -> bool {
    let longest = open
        .by_id
        .values()
        .filter_map(|activity| activity.lock().evictable_since().map(|since| (since, activity)))
        .min_by_key(|(idle_since, _)| *idle_since)
        .map(|(_, activity)| activity.clone());
    let Some(activity) = longest else { return false };
    activity.lock().evicted = true;
    activity.evict.notify_one();
    open.evicted += 1;
    true
}

/// What one connection is doing: requests in flight, idle since when, evicted or not.
pub(super) struct Activity {
    state: Mutex<ActivityState>,
    /// Signalled when a request starts or ends, so the idle deadline is recomputed.
    changed: Notify,
    evict: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    /// How many of `in_flight` are still receiving their bodies, and since when (the
    /// first of them that started).
    bodies_arriving: usize,
    arriving_since: Instant,
    /// Whether a request has started: until then the first-request deadline applies.
    served: bool,
    evicted: bool,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                bodies_arriving: 0,
                arriving_since: Instant::now(),
                served: false,
                evicted: false,
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        }
    }

    /// Records a request whose headers are in; it is in flight until the guard drops.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        {
            let mut state = self.lock();
            state.in_flight += 1;
            state.served = true;
        }
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Resolves once the connection has been idle for `first_request` (before any request)
    /// or `between_requests` (after one).
    pub(super) async fn idle_expired(&self, first_request: Duration, between_requests: Duration) {
        loop {
            let deadline = {
                let state = self.lock();
                let allowed = if state.served { between_requests } else { first_request };
                (state.in_flight == 0).then(|| state.idle_since + allowed)
            };
            match deadline {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }

    /// Records that a request's body is arriving; it is until the guard drops.
    pub(super) fn body_arriving(self: &Arc<Self>) -> BodyArriving {
        let mut state = self.lock();
        if state.bodies_arriving == 0 {
            state.arriving_since = Instant::now();
        }
        state.bodies_arriving += 1;
        BodyArriving(self.clone())
    }

    /// Whether a request whose body is in is in flight on the connection: closing the
    /// connection would lose work the relay is doing.
    pub(super) fn has_work_in_flight(&self) -> bool {
        let state = self.lock();
        state.in_flight > state.bodies_arriving
    }

    /// Resolves when the connection is evicted to make room for another.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ActivityState {
    /// Since when the connection may be evicted; `None` while it has work in flight (or
    /// was evicted already).
    fn evictable_since(&self) -> Option<Instant> {
        if self.evicted {
            None
        } else if self.in_flight == 0 {
            Some(self.idle_since)
        } else {
            (self.in_flight == self.bodies_arriving).then_some(self.arriving_since)
        }
    }
}

/// A request body still arriving; dropping it ends that.
pub(super) struct BodyArriving(Arc<Activity>);

impl Drop for BodyArriving {
    fn drop(&mut self) {
        self.0.lock().bodies_arriving -= 1;
    }
}

/// A request in flight on a connection; dropping it (with the response body) ends it.
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(connections: &Arc<Connections>) -> Slot {
        match connections.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Full => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn the_cap_evicts_the_longest_idle_and_refuses_when_all_are_busy() {
        let connections = Connections::new(2);
        let older = admitted(&connections);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let newer = admitted(&connections);
        let third = admitted(&connections);
        assert!(older.activity.lock().evicted, "the longest idle makes room");
        assert!(!newer.activity.lock().evicted);
        drop(older);
        let _busy = [newer.activity.request_started(), third.activity.request_started()];
        assert!(matches!(connections.admit(), Admission::Full));
        assert!(!connections.evict_longest_idle());
    }

    #[tokio::test]
    async fn a_connection_only_receiving_bodies_is_evicted_oldest_first_and_busy_ones_never() {
        let connections = Connections::new(2);
        let (older, newer) = (admitted(&connections), admitted(&connections));
        let _requests = [older.activity.request_started(), newer.activity.request_started()];
        let arriving = older.activity.body_arriving();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _also_arriving = newer.activity.body_arriving();
        let _third = admitted(&connections);
        assert!(older.activity.lock().evicted, "the body waited on the longest makes room");
        assert!(!newer.activity.lock().evicted);
        drop(arriving);
        assert!(older.activity.has_work_in_flight(), "its body is in: the relay is working");
    }

    #[tokio::test]
    async fn the_idle_deadline_waits_for_requests_in_flight_and_restarts_after_them() {
        let connections = Connections::new(1);
        let slot = admitted(&connections);
        let (first, between) = (Duration::from_millis(100), Duration::from_millis(500));
        let started = Instant::now();
        let in_flight = slot.activity.request_started();
        let idle = slot.activity.idle_expired(first, between);
        let end_request = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(in_flight);
        };
        tokio::join!(idle, end_request);
        // 300 ms in flight, then 500 ms idle; not the 100 ms first-request deadline.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(800), "expired after {elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "expired after {elapsed:?}");
    }
}
