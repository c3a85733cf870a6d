//! Reading the per-minute rollup (see `rollup`): the console's overview, and the 24 h
//! health of automations. Each reads at most a day of minutes through the rollup tables'
//! keys, however many logs are stored.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::rollup::{cursor, Latency, MINUTE_MS};
use super::{pg, Backend, Store, StoreResult};
use crate::ids::AutomationId;
use crate::time::UnixMs;

/// An automation's calls over a window, from the rollup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AutomationHealth {
    /// The automation.
    pub automation_id: AutomationId,
    /// Calls without an error.
    pub succeeded: i64,
    /// Calls with an error code.
    pub failed: i64,
    /// The status of its last call in the window (0: no HTTP answer); `None` without one.
    pub last_status_code: Option<u16>,
    /// The error code of its last call, `None` when that call succeeded (or there was none).
    pub last_call_error: Option<String>,
    /// The error code of its last failed call in the window.
    pub last_error_code: Option<String>,
}

/// Calls in one minute, all automations together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    /// Unix ms / [`MINUTE_MS`].
    pub minute: i64,
    /// Calls without an error.
    pub succeeded: i64,
    /// Calls with an error code.
    pub failed: i64,
}

/// What the overview shows, read from the rollup only.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// The minutes of the last day that had calls, oldest first.
    pub minutes: Vec<MinuteCounts>,
    /// Latency of the last hour's calls.
    pub latency_hour: Latency,
    /// Latency of the last day's calls.
    pub latency_day: Latency,
    /// Failed calls of the last day by error code, most first.
    pub errors: Vec<(String, i64)>,
    /// The automations with the most failed calls in the last day, most first.
    pub failing: Vec<AutomationHealth>,
    /// When the last log counted was recorded: the rollup is complete up to then.
    pub counted_until: Option<UnixMs>,
}

impl Store {
    /// The 24 hours before `now` of each automation of `ids` that had calls in them, from the
    /// rollup (three reads of its `(automation_id, minute)` index per automation, whatever
    /// the number of logs): for the Automations page's health column. An automation without
    /// a call in the window is not in the map.
    pub async fn automation_health(
        &self,
        ids: Vec<AutomationId>,
        now: UnixMs,
    ) -> StoreResult<HashMap<AutomationId, AutomationHealth>> {
        let since = health_since(now);
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::rollup_reads::automation_health(p, ids, since).await
            }
        };
        db.read(move |c| {
            let mut found = HashMap::new();
            for id in ids {
                if let Some(health) = health_of(c, &id, since)? {
                    found.insert(id, health);
                }
            }
            Ok(found)
        })
        .await
    }

    /// The overview's figures for the day before `now`, from the rollup only.
    pub async fn overview(&self, now: UnixMs, failing: usize) -> StoreResult<Overview> {
        let (day, hour) = overview_minutes(now);
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::rollup_reads::overview(p, day, hour, failing).await,
        };
        db.read(move |c| {
            let minutes = c
                .prepare_cached(
                    "SELECT minute, sum(succeeded), sum(failed) FROM rollup_minutes \
                     WHERE minute >= ?1 GROUP BY minute ORDER BY minute",
                )?
                .query_map([day], |r| {
                    Ok(MinuteCounts { minute: r.get(0)?, succeeded: r.get(1)?, failed: r.get(2)? })
                })?
                .collect::<Result<_, _>>()?;
            let errors = c
                .prepare_cached(
                    "SELECT error_code, sum(calls) AS n FROM rollup_errors WHERE minute >= ?1 \
                     GROUP BY error_code ORDER BY n DESC, error_code",
                )?
                .query_map([day], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            // `+automation_id`: grouped through the minute range of the primary key (a day's
            // rows), not by walking the automation index over every minute kept (8 days):
            // 16 ms against 420 ms with 10 automations.
            let worst: Vec<(AutomationId, i64, i64)> = c
                .prepare_cached(
                    "SELECT automation_id, sum(succeeded), sum(failed) AS n FROM rollup_minutes \
                     WHERE minute >= ?1 GROUP BY +automation_id HAVING n > 0 \
                     ORDER BY n DESC, automation_id LIMIT ?2",
                )?
                .query_map(params![day, failing as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut failing = Vec::with_capacity(worst.len());
            for (id, succeeded, failed) in worst {
                failing.push(with_last(c, id, day, succeeded, failed)?);
            }
            let counted_until = cursor(c)?.map(|id| UnixMs::from_ms(id.time_of()));
            Ok(Overview {
                minutes,
                latency_hour: latency(c, hour)?,
                latency_day: latency(c, day)?,
                errors,
                failing,
                counted_until,
            })
        })
        .await
    }
}

/// The calls of the minutes from `since` on, per latency bucket.
fn latency(c: &Connection, since: i64) -> StoreResult<Latency> {
    let mut merged = Latency::default();
    let mut stmt = c.prepare_cached(
        "SELECT bucket, sum(calls) FROM rollup_latency WHERE minute >= ?1 GROUP BY bucket",
    )?;
    let rows = stmt.query_map([since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (bucket, n) = row?;
        merged.add(bucket, n);
    }
    Ok(merged)
}

impl Latency {
    /// Adds `n` calls to stored bucket `bucket` (the tables' CHECK holds buckets to the
    /// array's range; one outside it is left out).
    pub(super) fn add(&mut self, bucket: i64, n: i64) {
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| self.counts.get_mut(b)) {
            *slot += n;
        }
    }
}

/// The first minute of the day before `now` (24 h back) for the Automations page's health.
pub(super) fn health_since(now: UnixMs) -> i64 {
    now.minus_ms(24 * 3600 * 1000).as_ms().div_euclid(MINUTE_MS)
}

/// The first minutes of the overview's day and hour before `now` (the minute of `now`
/// included in both).
pub(super) fn overview_minutes(now: UnixMs) -> (i64, i64) {
    let this_minute = now.as_ms().div_euclid(MINUTE_MS);
    (this_minute - 24 * 60 + 1, this_minute - 59)
}

/// `id`'s calls in the minutes from `since` on, `None` without any.
fn health_of(
    c: &Connection,
    id: &AutomationId,
    since: i64,
) -> StoreResult<Option<AutomationHealth>> {
    let (succeeded, failed): (Option<i64>, Option<i64>) = c
        .prepare_cached(
            "SELECT sum(succeeded), sum(failed) FROM rollup_minutes \
             WHERE automation_id = ?1 AND minute >= ?2",
        )?
        .query_row(params![id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(succeeded), Some(failed)) = (succeeded, failed) else { return Ok(None) };
    with_last(c, id.clone(), since, succeeded, failed).map(Some)
}

/// `id`'s health from its counts, with its last status and errors since `since` (two
/// reads of one row each, newest first by the automation index).
fn with_last(
    c: &Connection,
    id: AutomationId,
    since: i64,
    succeeded: i64,
    failed: i64,
) -> StoreResult<AutomationHealth> {
    let (last_status_code, last_call_error) = c
        .prepare_cached(
            "SELECT last_status_code, last_call_error FROM rollup_minutes \
             WHERE automation_id = ?1 AND minute >= ?2 ORDER BY minute DESC LIMIT 1",
        )?
        .query_row(params![id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let last_error_code = c
        .prepare_cached(
            "SELECT last_error_code FROM rollup_minutes WHERE automation_id = ?1 \
             AND minute >= ?2 AND last_error_code IS NOT NULL ORDER BY minute DESC LIMIT 1",
        )?
        .query_row(params![id, since], |r| r.get(0))
        .optional()?;
    Ok(AutomationHealth {
        automation_id: id,
        succeeded,
        failed,
        last_status_code: Some(last_status_code),
        last_call_error,
        last_error_code,
    })
}
