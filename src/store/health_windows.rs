//! The calls of an automation over the health endpoint's windows (the last hour and day, from
//! the start of the minute they begin in), read from the rollup (`rollup_classes`: at most a
//! day of minutes per class and outcome, however many calls) for the logs it has counted, and
//! from the logs themselves for those after its cursor, which the rollup job has not reached
//! yet. The two never overlap: the rollup holds exactly the logs up to its cursor.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::health::HealthWindow;
use super::rollup::{self, MINUTE_MS};
use super::{StoreError, StoreResult};
use crate::ids::{AutomationId, LogId};
use crate::time::UnixMs;

/// The windows counted, in hours.
const WINDOWS_HOURS: [u32; 2] = [1, 24];

/// The name of status class `class` (`status_code / 100`; 0: no answer).
fn class_name(class: i64) -> Option<&'static str> {
    ["no_response", "1xx", "2xx", "3xx", "4xx", "5xx"].get(usize::try_from(class).ok()?).copied()
}

/// Calls counted by (status class, succeeded, in the last hour).
pub(super) type Tally = BTreeMap<(i64, bool, bool), i64>;

/// The minutes the day's and the hour's windows start in, for `now`.
pub(super) fn start_minutes(now: UnixMs) -> (i64, i64) {
    let start_minute = |hours: u32| (now.as_ms() - i64::from(hours) * 3_600_000) / MINUTE_MS;
    (start_minute(24), start_minute(1))
}

/// The first log id the logs are read from: after the rollup's cursor (`cursor`), never
/// before the day's first minute (`day`).
pub(super) fn logs_after(cursor: Option<LogId>, day: i64) -> LogId {
    let since = LogId::time_bound(day * MINUTE_MS);
    match cursor {
        Some(c) => c.max(since),
        None => since,
    }
}

/// Each of [`WINDOWS_HOURS`] from the day's `tally`.
pub(super) fn figures(tally: &Tally) -> StoreResult<Vec<HealthWindow>> {
    WINDOWS_HOURS.iter().map(|&hours| window(hours, tally)).collect()
}

/// The calls of automation `id` over each of [`WINDOWS_HOURS`] up to `now`.
pub(super) fn windows(
    conn: &Connection,
    id: &AutomationId,
    now: UnixMs,
) -> StoreResult<Vec<HealthWindow>> {
    let (day, hour) = start_minutes(now);
    let mut tally = Tally::new();
    let mut rolled = conn.prepare_cached(
        "SELECT status_class, succeeded, minute >= ?3, sum(calls) FROM rollup_classes \
         WHERE automation_id = ?1 AND minute >= ?2 GROUP BY 1, 2, 3",
    )?;
    let rows = rolled.query_map(params![id, day, hour], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (key, calls) = row?;
        *tally.entry(key).or_default() += calls;
    }
    let after = logs_after(rollup::cursor(conn)?, day);
    let mut recent = conn.prepare_cached(
        "SELECT status_class, error_code IS NULL, id >= ?3, count(*) FROM logs \
         WHERE automation_id = ?1 AND id > ?2 GROUP BY 1, 2, 3",
    )?;
    let rows = recent.query_map(params![id, after, LogId::time_bound(hour * MINUTE_MS)], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (key, calls) = row?;
        *tally.entry(key).or_default() += calls;
    }
    figures(&tally)
}

/// One window's figures from `tally` (the day's calls; the last hour's are flagged).
fn window(hours: u32, tally: &Tally) -> StoreResult<HealthWindow> {
    let mut w = HealthWindow {
        hours,
        total: 0,
        succeeded: 0,
        failed: 0,
        success_ratio: None,
        status_classes: (0..6).filter_map(class_name).map(|c| (c, 0)).collect(),
    };
    for (&(class, ok, last_hour), &calls) in tally {
        if hours == 1 && !last_hour {
            continue;
        }
        let name = class_name(class)
            .ok_or_else(|| StoreError::Corrupt(format!("logs.status_class {class}")))?;
        w.total += calls;
        if ok {
            w.succeeded += calls;
        } else {
            w.failed += calls;
        }
        *w.status_classes.entry(name).or_default() += calls;
    }
    w.success_ratio = (w.total > 0).then(|| w.succeeded as f64 / w.total as f64);
    Ok(w)
}
