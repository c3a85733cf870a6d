//! The per-minute rollup of the logs behind the console's overview and the automations'
//! health: calls per minute and automation (succeeded, failed, the last status and error),
//! per automation, minute, status class and outcome (the health endpoint's windows), per
//! minute and latency bucket, and per minute and error code. A page reads at most a
//! day of minutes from these tables, however many logs are stored.
//!
//! The logs are counted by a background job ([`Store::roll_up_logs`]), never by the write that
//! records a log, so the writer's hot path pays nothing. It relies on what `logs::insert`
//! guarantees: log ids are taken on the writer's thread in commit order, so readers see the
//! logs as a growing prefix of the id order, and "every log after the cursor" never misses
//! one that commits later. The cursor moves in the same transaction as the counts it stands
//! for: a crash at any point neither counts a log twice nor skips one.
//!
//! A log counts in the minute of the time its id carries (its `created_at`), as succeeded
//! when it has no error code. Logs seeded under chosen past ids (`Store::insert_log_as`, the
//! benchmark) below the cursor are not counted.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{pg, Backend, Store, StoreResult};
use crate::ids::{AutomationId, LogId};
use crate::time::UnixMs;

/// Upper bounds (inclusive, ms) of the latency buckets, a 1-2-3-5-7 log scale; one more
/// bucket holds the calls above the last bound. Stored as bucket numbers (`rollup_latency`),
/// so changing these takes a schema version.
pub const LATENCY_BOUNDS_MS: [f64; 26] = [
    1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0, 200.0, 300.0, 500.0,
    700.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 7000.0, 10000.0, 20000.0, 30000.0,
];

/// Buckets, with the one above the last bound.
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// How long rollup rows are kept: a week and a day, so the last day is always whole.
pub const ROLLUP_KEEP_MS: i64 = 8 * 24 * 3600 * 1000;

/// Milliseconds in a minute: the rollup's unit of time.
pub const MINUTE_MS: i64 = 60_000;

/// The bucket of a call of `duration_ms`.
pub fn bucket_of(duration_ms: f64) -> usize {
    LATENCY_BOUNDS_MS.iter().position(|&bound| duration_ms <= bound).unwrap_or(BUCKETS - 1)
}

/// Calls counted per latency bucket; percentiles come from merging them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    /// Calls per bucket, in [`LATENCY_BOUNDS_MS`] order, then the one above the last bound.
    pub counts: [i64; BUCKETS],
}

/// Where a percentile falls: a bucket's upper bound, or above the last one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyBound {
    /// At most this many ms.
    AtMost(f64),
    /// More than this many ms (the last bound).
    Above(f64),
}

impl Latency {
    /// The bucket holding the `p`-th percentile (0 < p ≤ 1: the call of rank ⌈p·n⌉), `None`
    /// without calls. Exact to the bucket: the answer is that bucket's upper bound.
    pub fn percentile(&self, p: f64) -> Option<LatencyBound> {
        let total: i64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        // At least rank 1, so p = 0 names the fastest call's bucket.
        let rank = ((p * total as f64).ceil() as i64).clamp(1, total);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(match LATENCY_BOUNDS_MS.get(bucket) {
                    Some(&bound) => LatencyBound::AtMost(bound),
                    None => LatencyBound::Above(LATENCY_BOUNDS_MS[BUCKETS - 2]),
                });
            }
        }
        None
    }
}

/// One log's part in the rollup.
pub(super) struct Counted {
    pub(super) id: LogId,
    pub(super) automation_id: AutomationId,
    pub(super) status_code: u16,
    pub(super) duration_ms: f64,
    pub(super) error_code: Option<String>,
}

/// One (minute, automation) row of a batch: its columns in `rollup_minutes`.
#[derive(Default)]
pub(super) struct MinuteRow {
    pub(super) succeeded: i64,
    pub(super) failed: i64,
    pub(super) last_status_code: u16,
    pub(super) last_call_error: Option<String>,
    pub(super) last_error_code: Option<String>,
}

/// A batch's counts, keyed as the tables are.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) calls: BTreeMap<(i64, AutomationId), MinuteRow>,
    pub(super) classes: BTreeMap<(AutomationId, i64, u16, bool), i64>,
    pub(super) latency: BTreeMap<(i64, usize), i64>,
    pub(super) errors: BTreeMap<(i64, String), i64>,
}

impl Counts {
    /// The counts of `logs` (in id order) that are within [`ROLLUP_KEEP_MS`] of `now`. Older
    /// logs move the cursor uncounted: retention would delete their counts at once, and a
    /// database upgraded with months of logs would write them all first.
    pub(super) fn of(logs: Vec<Counted>, now: UnixMs) -> Self {
        let mut counts = Counts::default();
        let oldest_kept = now.minus_ms(ROLLUP_KEEP_MS).as_ms();
        logs.into_iter()
            .filter(|log| log.id.time_of() >= oldest_kept)
            .for_each(|log| counts.add(log));
        counts
    }

    /// Adds logs in id order, so each minute's "last" is its newest log.
    fn add(&mut self, log: Counted) {
        let minute = log.id.time_of().div_euclid(MINUTE_MS);
        let class =
            (log.automation_id.clone(), minute, log.status_code / 100, log.error_code.is_none());
        *self.classes.entry(class).or_default() += 1;
        let entry = self.calls.entry((minute, log.automation_id)).or_default();
        match &log.error_code {
            None => entry.succeeded += 1,
            Some(code) => {
                entry.failed += 1;
                entry.last_error_code = Some(code.clone());
                *self.errors.entry((minute, code.clone())).or_default() += 1;
            }
        }
        entry.last_status_code = log.status_code;
        entry.last_call_error = log.error_code;
        *self.latency.entry((minute, bucket_of(log.duration_ms))).or_default() += 1;
    }

    /// Adds these counts to the tables; the newer "last" values replace the stored ones.
    fn upsert(&self, c: &Connection) -> StoreResult<()> {
        let mut calls = c.prepare_cached(
            "INSERT INTO rollup_minutes (minute, automation_id, succeeded, failed, \
             last_status_code, last_call_error, last_error_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (minute, automation_id) DO UPDATE SET \
             succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, \
             last_status_code = excluded.last_status_code, \
             last_call_error = excluded.last_call_error, \
             last_error_code = coalesce(excluded.last_error_code, last_error_code)",
        )?;
        for ((minute, automation), row) in &self.calls {
            calls.execute(params![
                minute,
                automation,
                row.succeeded,
                row.failed,
                row.last_status_code,
                row.last_call_error,
                row.last_error_code
            ])?;
        }
        let mut classes = c.prepare_cached(
            "INSERT INTO rollup_classes (automation_id, minute, status_class, succeeded, calls) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (automation_id, minute, status_class, succeeded) \
             DO UPDATE SET calls = calls + excluded.calls",
        )?;
        for ((automation, minute, class, succeeded), n) in &self.classes {
            classes.execute(params![automation, minute, class, succeeded, n])?;
        }
        let mut latency = c.prepare_cached(
            "INSERT INTO rollup_latency (minute, bucket, calls) VALUES (?1, ?2, ?3) \
             ON CONFLICT (minute, bucket) DO UPDATE SET calls = calls + excluded.calls",
        )?;
        for ((minute, bucket), n) in &self.latency {
            latency.execute(params![minute, *bucket as i64, n])?;
        }
        let mut errors = c.prepare_cached(
            "INSERT INTO rollup_errors (minute, error_code, calls) VALUES (?1, ?2, ?3) \
             ON CONFLICT (minute, error_code) DO UPDATE SET calls = calls + excluded.calls",
        )?;
        for ((minute, code), n) in &self.errors {
            errors.execute(params![minute, code, n])?;
        }
        Ok(())
    }
}

/// The rollup's tables, each with its key.
pub(super) const ROLLUP_TABLES: [(&str, &str); 4] = [
    ("rollup_minutes", "minute, automation_id"),
    ("rollup_classes", "automation_id, minute, status_class, succeeded"),
    ("rollup_latency", "minute, bucket"),
    ("rollup_errors", "minute, error_code"),
];

/// The last log counted, `None` before the first pass.
pub(super) fn cursor(c: &Connection) -> StoreResult<Option<LogId>> {
    Ok(c.prepare_cached("SELECT last_log_id FROM rollup_cursor WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Up to `limit` logs after `after` (from the first without one), in id order.
fn logs_after(c: &Connection, after: Option<&LogId>, limit: usize) -> StoreResult<Vec<Counted>> {
    let (sql, from) = match after {
        Some(id) => ("id > ?1", id.clone()),
        None => ("id >= ?1", LogId::time_bound(0)),
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id, automation_id, status_code, duration_ms, error_code FROM logs \
         WHERE {sql} ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![from, limit as i64], |r| {
        Ok(Counted {
            id: r.get(0)?,
            automation_id: r.get(1)?,
            status_code: r.get(2)?,
            duration_ms: r.get(3)?,
            error_code: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Counts up to `limit` logs after the rollup's cursor into the rollup and moves the
    /// cursor past them, in one write; returns how many were counted (fewer than `limit`:
    /// caught up). The logs are read on a reader; the write counts them only if the cursor
    /// is still where they were read from, so two passes at once cannot count a log twice.
    pub async fn roll_up_logs(&self, limit: usize) -> StoreResult<usize> {
        if let Backend::Postgres(p) = &self.backend {
            return pg::rollup::roll_up(p, limit, UnixMs::now()).await;
        }
        let (from, logs) = self
            .read(move |c| {
                let from = cursor(c)?;
                let logs = logs_after(c, from.as_ref(), limit)?;
                Ok((from, logs))
            })
            .await?;
        let Some(last) = logs.last().map(|l| l.id.clone()) else { return Ok(0) };
        let n = logs.len();
        let counts = Counts::of(logs, UnixMs::now());
        let db = self.on_sqlite("roll_up_logs")?;
        db.write(move |c| {
            if cursor(c)? != from {
                return Ok(0);
            }
            counts.upsert(c)?;
            c.prepare_cached(
                "INSERT INTO rollup_cursor (id, last_log_id) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET last_log_id = excluded.last_log_id",
            )?
            .execute([&last])?;
            Ok(n)
        })
        .await
    }

    /// Deletes up to `limit` rows of each rollup table older than `before`; returns how many
    /// in all (fewer than `limit`: done).
    pub async fn delete_rollup_before(&self, before: UnixMs, limit: usize) -> StoreResult<usize> {
        let minute = before.as_ms().div_euclid(MINUTE_MS);
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::rollup::delete_before(p, minute, limit).await,
        };
        db.write(move |c| {
            let mut deleted = 0;
            for (table, key) in ROLLUP_TABLES {
                deleted += c
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} \
                         WHERE minute < ?1 ORDER BY minute LIMIT ?2)"
                    ))?
                    .execute(params![minute, limit as i64])?;
            }
            Ok(deleted)
        })
        .await
    }
}

#[cfg(test)]
#[path = "rollup_tests.rs"]
mod tests;
