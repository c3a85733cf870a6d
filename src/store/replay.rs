//! Replay jobs: give an automation the deliveries it is missing. A message posted to its
//! processor while the automation did not exist, was disabled, or did not subscribe to the
//! message's event type got no delivery to it; a replay job over a window creates one for
//! every such message the automation wants now, in id order, chunk by chunk.
//!
//! Replay jobs are rows of `recover_jobs` (`kind = 'replay'`), run and resumed by the same
//! runner as recover jobs (see `recover::requeue_chunk`); their deliveries carry the job's
//! id in `recover_job_id`, which gives the progress. A message gets at most one delivery per
//! automation (`deliveries_message_automation` is unique), so replaying a window twice, or
//! beside ingest, creates nothing twice.
//!
//! The deliveries are new ones, queued in the outbox for the dispatcher's claim loop: the
//! first attempt is logged with trigger `replay`, and a failed one is retried on the normal
//! schedule (a recovered delivery, by contrast, gets one more attempt only).

use rusqlite::{named_params, params, Connection, OptionalExtension};

use super::automations::{self, Automation};
use super::recover::{tagged_counts, BackgroundJob};
use super::{decode, Conflict, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, DeliveryId, MessageId, ReplayJobId};
use crate::time::UnixMs;

/// The event type of the automation test call: its messages are never replayed (those
/// stored before schema version 5 do not say which automation they were addressed to).
pub(crate) const TEST_EVENT_TYPE: &str = "hookrelay.test";

/// Messages examined per write, per delivery it may create: bounds a chunk's time in the
/// writer however few of a window's messages are missing a delivery.
pub(crate) const SCAN_PER_DELIVERY: i64 = 4;

/// Whether a row of `messages` should have a delivery to the automation and has none: it
/// was posted to its processor (not addressed to one automation, not a test call), the
/// automation subscribes to its event type (`:event_types` NULL = all; a message without
/// an event type only reaches automations of all types, as at ingest), and it has no
/// delivery to the automation yet. Never NULL (it is read as a boolean column).
const MISSING: &str = "automation_id IS NULL AND event_type IS NOT :test_event_type \
    AND (:event_types IS NULL OR (event_type IS NOT NULL \
        AND event_type IN (SELECT value FROM json_each(:event_types)))) \
    AND NOT EXISTS (SELECT 1 FROM deliveries d \
        WHERE d.message_id = messages.id AND d.automation_id = :automation_id)";

/// Why a replay job ended.
pub(crate) const COMPLETED: &str = "completed";
pub(crate) const AUTOMATION_DISABLED: &str = "automation_disabled";
pub(crate) const AUTOMATION_DELETED: &str = "automation_deleted";

/// A replay job and its progress. No total is counted up front: that would scan the whole
/// window in the request (a day of a busy processor is hundreds of millions of messages);
/// `scanned_through` tells how far the job has come instead.
#[derive(Debug, Clone)]
pub struct ReplayJob {
    /// `rpl_…`
    pub id: ReplayJobId,
    /// The automation given the missing deliveries.
    pub automation_id: AutomationId,
    /// Window start (inclusive): when the messages were accepted.
    pub since: UnixMs,
    /// Window end (exclusive).
    pub until: UnixMs,
    /// Every message accepted before this time has been examined: `until` once the
    /// job went through its window; where a job that stopped early can be resumed.
    pub scanned_through: UnixMs,
    /// Whether it stopped at the per-job cap before the end of its window (another job from
    /// `scanned_through` does the rest).
    pub capped: bool,
    /// Deliveries created so far.
    pub created: i64,
    /// Of those, delivered.
    pub done: i64,
    /// Of those, failed or exhausted.
    pub failed: i64,
    /// Of those, not yet delivered (first attempt or retries to come).
    pub pending: i64,
    /// `None` while creating deliveries; then `completed`, or why it stopped early
    /// (`automation_disabled`, `automation_deleted`).
    pub ended: Option<String>,
    /// When it was created.
    pub created_at: UnixMs,
}

impl ReplayJob {
    /// `running` while it creates deliveries or they await delivery; then `completed`, or
    /// `stopped` when its automation was disabled or deleted before it was done.
    pub fn status(&self) -> &'static str {
        match self.ended.as_deref() {
            None => "running",
            Some(_) if self.pending > 0 => "running",
            Some(COMPLETED) => "completed",
            Some(_) => "stopped",
        }
    }
}

/// `automation.event_types` as the JSON array [`MISSING`] takes (NULL = every type).
fn event_types_json(automation: &Automation) -> StoreResult<Option<String>> {
    automation
        .settings
        .event_types
        .as_ref()
        .map(|t| serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// The automation, refused when unknown (404) or disabled (409: its deliveries would fail).
fn enabled_automation(conn: &Connection, id: &AutomationId) -> StoreResult<Automation> {
    let automation = automations::get(conn, id)?.ok_or(StoreError::NotFound("automation"))?;
    if !automation.settings.enabled {
        return Err(StoreError::Conflict(
            Conflict::AutomationDisabled,
            format!(
            "automation {id} is disabled: enable it first, then replay (its deliveries would fail)"
        ),
        ));
    }
    Ok(automation)
}

/// Stores a replay job for an enabled automation; it creates at most `cap` deliveries
/// (kept in `total`).
fn insert_job(
    conn: &Connection,
    automation_id: &AutomationId,
    since: UnixMs,
    until: UnixMs,
    cap: i64,
) -> StoreResult<ReplayJobId> {
    enabled_automation(conn, automation_id)?;
    let id = ReplayJobId::new();
    conn.prepare_cached(
        "INSERT INTO recover_jobs (id, kind, since, until, automation_id, total, requeued, capped, created_at) \
         VALUES (?1, 'replay', ?2, ?3, ?4, ?5, 0, 0, ?6)",
    )?
    .execute(params![id, since, until, automation_id, cap, UnixMs::now()])?;
    Ok(id)
}

/// Creates up to `chunk` more deliveries for replay job `id`, examining at most
/// `chunk * SCAN_PER_DELIVERY` messages; returns how many messages it examined (0 when the
/// job has nothing left). Ends the job when its window is done or its cap (`total`)
/// reached, or when its automation was disabled or deleted meanwhile.
pub(super) fn replay_chunk(conn: &Connection, id: &ReplayJobId, chunk: i64) -> StoreResult<i64> {
    type JobRow = (AutomationId, UnixMs, UnixMs, i64, i64, Option<MessageId>, Option<String>);
    let job: Option<JobRow> = conn
        .prepare_cached(
            "SELECT automation_id, since, until, total, requeued, cursor, ended \
             FROM recover_jobs WHERE id = ?1 AND kind = 'replay'",
        )?
        .query_row([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()?;
    let (automation_id, since, until, cap, created, cursor, ended) =
        job.ok_or(StoreError::NotFound("replay job"))?;
    if ended.is_some() {
        return Ok(0);
    }
    let automation = match automations::get(conn, &automation_id)? {
        None => return end(conn, id, AUTOMATION_DELETED),
        Some(a) if !a.settings.enabled => return end(conn, id, AUTOMATION_DISABLED),
        Some(a) => a,
    };
    // At the cap, nothing is scanned and the job ends capped below.
    let take = chunk.min(cap - created).max(0);
    let scan = take * SCAN_PER_DELIVERY;
    // One lower bound, so the index range starts there (not at the window's start).
    let (lower, from) = match cursor {
        Some(c) => ("id > :from", c),
        None => ("id >= :from", MessageId::time_bound(since.as_ms())),
    };
    let sql = format!(
        "SELECT id, {MISSING} FROM messages WHERE processor_id = :processor_id \
         AND {lower} AND id < :to ORDER BY id LIMIT :scan"
    );
    let event_types = event_types_json(&automation)?;
    let rows: Vec<(MessageId, bool)> = conn
        .prepare_cached(&sql)?
        .query_map(
            named_params! {
                ":processor_id": automation.settings.processor_id,
                ":from": from,
                ":to": MessageId::time_bound(until.as_ms()),
                ":test_event_type": TEST_EVENT_TYPE,
                ":event_types": event_types,
                ":automation_id": automation.id,
                ":scan": scan,
            },
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let now = UnixMs::now();
    let tag = BackgroundJob::Replay(id.clone());
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         claimed, next_trigger, recover_job_id, created_at, updated_at, fifo) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, 0, 'replay', ?5, ?4, ?4, ?6)",
    )?;
    // A FIFO automation's replayed deliveries join the end of its line (see `fifo`).
    let in_line = automation.settings.ordering == super::DeliveryOrder::Fifo;
    let (mut examined, mut made) = (0, 0);
    let mut last = None;
    for (message_id, missing) in &rows {
        examined += 1;
        last = Some(message_id);
        if *missing {
            insert.execute(params![
                DeliveryId::new(),
                message_id,
                automation.id,
                now,
                tag,
                in_line
            ])?;
            made += 1;
            if made == take {
                break;
            }
        }
    }
    let window_done = (rows.len() as i64) < scan && examined == rows.len() as i64;
    let capped = !window_done && created + made >= cap;
    let ended = (window_done || capped).then_some(COMPLETED);
    conn.prepare_cached(
        "UPDATE recover_jobs SET requeued = requeued + ?2, cursor = coalesce(?3, cursor), \
         ended = ?4, capped = ?5 WHERE id = ?1",
    )?
    .execute(params![id, made, last, ended, capped])?;
    Ok(examined)
}

/// Ends job `id` for `reason`; it has nothing left to do.
fn end(conn: &Connection, id: &ReplayJobId, reason: &str) -> StoreResult<i64> {
    conn.prepare_cached("UPDATE recover_jobs SET ended = ?2 WHERE id = ?1")?
        .execute(params![id, reason])?;
    Ok(0)
}

fn progress(conn: &Connection, id: &ReplayJobId) -> StoreResult<ReplayJob> {
    let mut job = conn
        .prepare_cached(
            "SELECT id, automation_id, since, until, cursor, capped, requeued, ended, created_at \
             FROM recover_jobs WHERE id = ?1 AND kind = 'replay'",
        )?
        .query_row([id], |r| {
            let (since, until, cursor): (UnixMs, UnixMs, Option<MessageId>) =
                (r.get(2)?, r.get(3)?, r.get(4)?);
            let (capped, ended): (bool, Option<String>) = (r.get(5)?, r.get(7)?);
            let window_done = ended.as_deref() == Some(COMPLETED) && !capped;
            let scanned_through = if window_done {
                until
            } else {
                cursor.map_or(since, |c| UnixMs::from_ms(c.time_of()))
            };
            Ok(ReplayJob {
                id: r.get(0)?,
                automation_id: decode::value(r, 1, "recover_jobs", id)?,
                since,
                until,
                scanned_through,
                capped,
                created: r.get(6)?,
                done: 0,
                failed: 0,
                pending: 0,
                ended,
                created_at: r.get(8)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound("replay job"))?;
    (job.done, job.failed, job.pending) = tagged_counts(conn, &BackgroundJob::Replay(id.clone()))?;
    Ok(job)
}

impl Store {
    /// Creates a replay job giving `automation_id` the deliveries it is missing among the
    /// messages accepted in `[since, until)`, at most `cap`; 404 for an unknown automation,
    /// 409 for a disabled one. The deliveries are created by the recover-job runner.
    pub async fn create_replay_job(
        &self,
        automation_id: AutomationId,
        since: UnixMs,
        until: UnixMs,
        cap: i64,
    ) -> StoreResult<ReplayJob> {
        let id = match &self.backend {
            super::Backend::Sqlite(db) => {
                db.write(move |c| insert_job(c, &automation_id, since, until, cap)).await?
            }
            super::Backend::Postgres(p) => {
                super::pg::replay::create(p, &automation_id, since, until, cap).await?
            }
        };
        self.replay_job(id).await
    }

    /// A replay job with its progress.
    pub async fn replay_job(&self, id: ReplayJobId) -> StoreResult<ReplayJob> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => return super::pg::replay::job(p, &id).await,
        };
        db.read(move |c| progress(c, &id)).await
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
