//! Per-automation rate limits (`rate_limit_per_sec`): the relay starts at most N calls to an
//! automation in any window of one second (any `[t, t + 1 s)`), deliveries, retries,
//! reruns and test calls together. It is a sliding window, not a token bucket: a bucket of
//! N refilling at N/s lets 2N - 1 calls start within one second (a full bucket, then the
//! refill), which a receiver counting calls per second would see as the limit broken.
//!
//! [`RateWindows`] keeps, per limited automation, the start times of its calls within the
//! last second (at most N of them) and a turn: the deliveries waiting for a start wait in
//! line on it, first come first served, so one waits at most about its place in line / N
//! seconds. Reruns and test calls do not queue behind them (a person waits for each): they
//! take the next start that comes free.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use tokio::time::Instant;

use crate::ids::AutomationId;

/// The highest limit: beyond it a limit would not bind at any throughput the relay reaches,
/// and each limited automation keeps up to this many start times in memory.
pub const MAX_PER_SEC: u32 = 10_000;

/// The window the limit counts calls in.
const WINDOW: Duration = Duration::from_secs(1);

/// Windows kept before idle ones (no start within the last second, nobody in line) are
/// dropped, so an automation limited once does not keep its entry for ever.
const PRUNE_AT: usize = 256;

/// An automation's rate limit: calls per second, 1 to [`MAX_PER_SEC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(NonZeroU32);

impl RateLimit {
    /// The limit of `per_sec` calls per second, when it is one (1 to [`MAX_PER_SEC`]).
    pub fn new(per_sec: u64) -> Option<Self> {
        let per_sec = u32::try_from(per_sec).ok().filter(|n| *n <= MAX_PER_SEC)?;
        NonZeroU32::new(per_sec).map(Self)
    }

    /// Calls per second.
    pub fn per_sec(self) -> u32 {
        self.0.get()
    }
}

impl ToSql for RateLimit {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(i64::from(self.per_sec())))
    }
}

impl FromSql for RateLimit {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let n = i64::column_result(value)?;
        u64::try_from(n).ok().and_then(Self::new).ok_or(FromSqlError::OutOfRange(n))
    }
}

/// One automation's recent starts and its line (see the module doc).
#[derive(Default)]
struct Window {
    /// Start times within the last [`WINDOW`], oldest first.
    starts: VecDeque<Instant>,
    /// Held by the delivery whose start is next; the others wait for it in line.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Reruns and test calls waiting for a start: deliveries leave them room.
    callers: usize,
}

impl Window {
    /// Whether it can be dropped: no start that still counts, and no one in line or holding it.
    fn idle(&self, now: Instant) -> bool {
        self.starts.back().is_none_or(|last| now.duration_since(*last) >= WINDOW)
            && Arc::strong_count(&self.turn) == 1
            && self.callers == 0
    }
}

/// The windows of the limited automations; see the module doc.
#[derive(Default)]
pub struct RateWindows {
    windows: Mutex<HashMap<AutomationId, Window>>,
    /// No call to a limited automation starts before this (see [`RateWindows::after_start`]).
    quiet_until: Option<Instant>,
}

impl RateWindows {
    /// The windows of a relay starting now. The starts of the process before it are not
    /// known (the windows are kept in memory), so for one [`WINDOW`] no call to a limited
    /// automation starts: every start of the one before then lies more than a window
    /// before any start of this one, and a restart never lets 2N calls start in a second.
    pub fn after_start() -> Self {
        Self { windows: Mutex::default(), quiet_until: Some(Instant::now() + WINDOW) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AutomationId, Window>> {
        // Start times and counts only: a panic leaves nothing half-done.
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn window<'a>(
        windows: &'a mut HashMap<AutomationId, Window>,
        id: &AutomationId,
        now: Instant,
    ) -> &'a mut Window {
        if windows.len() >= PRUNE_AT && !windows.contains_key(id) {
            windows.retain(|_, w| !w.idle(now));
        }
        windows.entry(id.clone()).or_default()
    }

    /// Records a call to `id` starting at `now` if `limit` allows one; else returns when to
    /// ask again (when enough of the starts that count will have left the window). A
    /// delivery (`caller` false) also leaves room for the callers waiting (see
    /// [`RateWindows::caller_waits`]).
    pub fn try_start(
        &self,
        id: &AutomationId,
        limit: RateLimit,
        now: Instant,
        caller: bool,
    ) -> Result<(), Instant> {
        self.start_at(id, limit, now, caller, true)
    }

    /// Whether a call to `id` could start at `now`, as [`RateWindows::try_start`] answers,
    /// without recording a start: a start is recorded only once the call is about to go.
    pub fn could_start(
        &self,
        id: &AutomationId,
        limit: RateLimit,
        now: Instant,
        caller: bool,
    ) -> Result<(), Instant> {
        self.start_at(id, limit, now, caller, false)
    }

    fn start_at(
        &self,
        id: &AutomationId,
        limit: RateLimit,
        now: Instant,
        caller: bool,
        record: bool,
    ) -> Result<(), Instant> {
        if let Some(quiet_until) = self.quiet_until.filter(|until| now < *until) {
            return Err(quiet_until);
        }
        let mut windows = self.lock();
        let window = Self::window(&mut windows, id, now);
        let starts = &mut window.starts;
        while starts.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            starts.pop_front();
        }
        let ahead = if caller { 0 } else { window.callers };
        let allowed = limit.per_sec() as usize;
        if starts.len() + ahead < allowed {
            if record {
                starts.push_back(now);
            }
            return Ok(());
        }
        // The starts that must leave the window first: more than `allowed` may count after
        // a lowered limit. With more callers ahead than the limit allows, they take the
        // next second's starts whatever leaves.
        let leaving = starts.len() + ahead + 1 - allowed;
        Err(starts.get(leaving - 1).map_or(now + WINDOW, |t| *t + WINDOW))
    }

    /// Counts a rerun or test call waiting for a start of `id` until the guard is dropped:
    /// meanwhile deliveries leave it room.
    pub fn caller_waits(self: &Arc<Self>, id: &AutomationId) -> CallerWaits {
        let mut windows = self.lock();
        Self::window(&mut windows, id, Instant::now()).callers += 1;
        CallerWaits { windows: self.clone(), id: id.clone() }
    }

    /// Takes room for a rerun or test call to `id` at `now` if `limit` allows one, as
    /// [`RateWindows::try_start`] answers for a caller; the room is held (counted as a start
    /// at `now`) until the [`Reservation`] starts or is dropped. Taken before the write that
    /// records the call in flight, so a caller never waits for its start after that write.
    pub fn try_reserve(
        self: &Arc<Self>,
        id: &AutomationId,
        limit: RateLimit,
        now: Instant,
    ) -> Result<Reservation, Instant> {
        self.start_at(id, limit, now, true, true)?;
        Ok(Reservation { windows: self.clone(), id: id.clone(), at: Some(now) })
    }

    /// Moves the start recorded at `from` for `id` to `to` (a reservation starting), or
    /// takes it out (`to` none: a reservation given up).
    fn move_start(&self, id: &AutomationId, from: Instant, to: Option<Instant>) {
        let mut windows = self.lock();
        let Some(window) = windows.get_mut(id) else { return };
        if let Some(at) = window.starts.iter().position(|t| *t == from) {
            window.starts.remove(at);
        }
        if let Some(to) = to {
            let at = window.starts.partition_point(|t| *t <= to);
            window.starts.insert(at, to);
        }
    }

    /// The line of `id`'s deliveries waiting to start (see the module doc).
    pub fn turn(&self, id: &AutomationId) -> Arc<tokio::sync::Mutex<()>> {
        let mut windows = self.lock();
        Self::window(&mut windows, id, Instant::now()).turn.clone()
    }
}

/// A rerun or test call waiting for a start (see [`RateWindows::caller_waits`]): while it
/// lives, deliveries leave it room.
pub struct CallerWaits {
    windows: Arc<RateWindows>,
    id: AutomationId,
}

impl Drop for CallerWaits {
    fn drop(&mut self) {
        if let Some(window) = self.windows.lock().get_mut(&self.id) {
            window.callers = window.callers.saturating_sub(1);
        }
    }
}

/// Room held for a rerun or test call's start (see [`RateWindows::try_reserve`]).
pub struct Reservation {
    windows: Arc<RateWindows>,
    id: AutomationId,
    /// The start it holds, until it starts.
    at: Option<Instant>,
}

impl Reservation {
    /// Records the call's start as now, as it is about to go (after the write recording it
    /// in flight, so the start counted is the call's own). Never waits: the room is held.
    pub fn start(mut self) {
        if let Some(at) = self.at.take() {
            self.windows.move_start(&self.id, at, Some(Instant::now()));
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(at) = self.at.take() {
            self.windows.move_start(&self.id, at, None);
        }
    }
}

#[cfg(test)]
#[path = "rate_limit_tests.rs"]
mod tests;
