//! Deliveries: the outbox. The dispatcher claims due rows, and each attempt's outcome is
//! written together with its log, so a delivery never moves without a record of why.

use std::sync::Arc;

use bytes::Bytes;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::automations::Automation;
use super::cache::{AutomationCache, SharedCache};
use super::calls_in_flight::{interrupted_log, InterruptedCall, StartingCall};
use super::health::{self, Caused};
use super::logs::{self, NewLog, Trigger};
use super::operational::Operations;
use super::page::{read_page, Conditions, Page, PageRequest};
use super::recover::BackgroundJob;
use super::{content, decode, BodyHash, DeliveryStatus, Snapshot, Store, StoreError, StoreResult};
use crate::ids::{self, AutomationId, DeliveryId, LogId, Message, MessageId};
use crate::redact::HeaderRedaction;
use crate::time::UnixMs;

/// A delivery the dispatcher now holds, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// `dlv_…`
    pub id: DeliveryId,
    /// `msg_…`, the `webhook-id`.
    pub message_id: MessageId,
    /// The automation as it was when the delivery was stored or claimed.
    pub automation: Arc<Automation>,
    /// The version of the automations then (see `Store::automations_version`): when it has
    /// changed by the time of the call, the automation is read again before calling.
    pub automation_version: u64,
    /// Hash of the stored snapshot of `automation`.
    pub snapshot_hash: BodyHash,
    /// The body to send; `None` while the delivery waits in memory behind its automation's
    /// calls in flight ([`Store::payload`] reads it as the call starts), so the backlog's
    /// memory does not grow with payload size. Also `None` for a delivery whose payload is gone:
    /// [`Store::payload`] then says why.
    pub payload: Option<Bytes>,
    /// Hash of `payload`.
    pub payload_hash: BodyHash,
    /// 1-based number of the attempt about to be made.
    pub attempt: u32,
    /// Why this attempt happens.
    pub trigger: Trigger,
    /// Set when a recover job re-queued it, or a replay job created it.
    pub recover_job_id: Option<BackgroundJob>,
    /// When it was created; the maximum age counts from here.
    pub created_at: UnixMs,
    /// Whether the database records this attempt as possibly sent (`claimed = 1`, see
    /// [`release_claims`]). A delivery held in memory is marked so just before its call.
    pub started: bool,
}

/// The result of one attempt: its log and where the delivery goes next.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The delivery attempted.
    pub delivery_id: DeliveryId,
    /// The attempt's log.
    pub log: NewLog,
    /// The delivery's new status.
    pub status: DeliveryStatus,
    /// For `Pending`: when to try again.
    pub next_attempt_at: UnixMs,
    /// The snapshot the log refers to, when it is not stored yet (the automation was read
    /// again just before the call).
    pub snapshot: Option<Snapshot>,
    /// Whether the call was made (not: the automation disabled, the payload gone): only a
    /// call made counts in the automation's health (`health`).
    pub called: bool,
}

/// What [`Store::record_outcome`] did beside recording.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    /// Whether the next held delivery was marked started.
    pub marked: bool,
    /// Whether operational webhooks were queued (the claim loop sends them).
    pub queued: bool,
}

/// A delivery as listed.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// `dlv_…`
    pub id: DeliveryId,
    /// `msg_…`
    pub message_id: MessageId,
    /// `endp_…`
    pub automation_id: AutomationId,
    /// Current status.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Next attempt while pending; `None` also for a FIFO delivery waiting its turn (its
    /// time comes when the one before it ends: see `store::fifo`).
    pub next_attempt_at: Option<UnixMs>,
    /// Latest attempt's log.
    pub last_log_id: Option<LogId>,
    /// The error code of the latest attempt's log (`None` when it succeeded, or none yet).
    pub last_error_code: Option<String>,
    /// The error message of the latest attempt's log.
    pub last_error_message: Option<String>,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// After a crash or restart nothing is in flight. A delivery that was only held in memory
/// (`claimed = 2`: its call had not started) goes back to the queue as it was, without a
/// log. One whose call may have started (`claimed = 1`, written before the call) may have
/// reached the receiver: that attempt is recorded as an `E_INTERRUPTED` log, and the delivery
/// is due again at once. The interrupted attempt counts in the attempt numbers but never
/// exhausts a delivery.
pub(super) fn release_claims(conn: &Connection, rule: &HeaderRedaction) -> StoreResult<usize> {
    let now = UnixMs::now();
    let tx = conn.unchecked_transaction()?;
    tx.execute("UPDATE deliveries SET claimed = 0 WHERE claimed = 2", [])?;
    let rows = tx
        .prepare(
            "SELECT d.id, d.message_id, d.automation_id, d.attempts, d.next_trigger, m.payload_hash \
             FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.claimed = 1 AND d.status = 'pending'",
        )?
        .query_map([], |r| {
            let id: DeliveryId = decode::key(r, 0, "deliveries")?;
            Ok((
                decode::value::<MessageId>(r, 1, "deliveries", &id)?,
                decode::value::<AutomationId>(r, 2, "deliveries", &id)?,
                r.get::<_, u32>(3)?,
                decode::value::<Trigger>(r, 4, "deliveries", &id)?,
                r.get::<_, Vec<u8>>(5)?,
                id,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut cache = AutomationCache::new(rule.clone(), Default::default());
    for (message_id, automation_id, attempts, trigger, payload_hash, id) in &rows {
        let Some(target) = cache.target(&tx, automation_id)? else {
            tx.execute("UPDATE deliveries SET status = 'failed', claimed = 0, updated_at = ?2 WHERE id = ?1", params![id, now])?;
            continue;
        };
        let snapshot_hash = AutomationCache::store_snapshot(&tx, &target)?;
        let call = StartingCall {
            message_id: message_id.clone(),
            automation_id: automation_id.clone(),
            processor_id: target.automation.settings.processor_id.clone(),
            trigger: *trigger,
            rerun_of: None,
            webhook_url: target.automation.settings.webhook_url.clone(),
            request_body_hash: payload_hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("payload hash".into()))?,
        };
        let log = interrupted_log(InterruptedCall {
            call,
            delivery_id: Some(id.clone()),
            attempt: attempts + 1,
            snapshot_hash,
            at: now,
        });
        let log_id = logs::insert(&tx, &log)?;
        tx.execute(
            "UPDATE deliveries SET claimed = 0, next_attempt_at = ?2, attempts = ?3, next_trigger = 'retry', \
             last_log_id = ?4, updated_at = ?2 WHERE id = ?1",
            params![id, now, attempts + 1, log_id],
        )?;
    }
    tx.commit()?;
    Ok(rows.len())
}

/// Marks held delivery `id` as possibly sent from now on, under a lease until `lease_until`;
/// false when it is no longer held (released, or its automation deleted meanwhile).
fn mark_started(conn: &Connection, id: &DeliveryId, lease_until: UnixMs) -> StoreResult<bool> {
    let marked = conn
        .prepare_cached(
            "UPDATE deliveries SET claimed = 1, next_attempt_at = ?2 \
             WHERE id = ?1 AND claimed = 2 AND status = 'pending'",
        )?
        .execute(params![id, lease_until])?;
    Ok(marked == 1)
}

/// Records `outcome` with what it causes (see `health`; a disable clears `cache`) and, with
/// `next`, marks that held delivery started (see [`Store::record_outcome`]).
pub(super) fn record_and_mark(
    conn: &Connection,
    ops: &Operations,
    cache: &SharedCache,
    outcome: &Outcome,
    next: Option<(DeliveryId, UnixMs)>,
) -> StoreResult<Recorded> {
    let caused = record(conn, ops, outcome)?;
    if caused.disabled {
        cache.lock().clear();
    }
    let marked = match next {
        Some((id, lease_until)) => mark_started(conn, &id, lease_until)?,
        None => false,
    };
    Ok(Recorded { marked, queued: caused.queued })
}

fn record(conn: &Connection, ops: &Operations, outcome: &Outcome) -> StoreResult<Caused> {
    if let Some(snapshot) = &outcome.snapshot {
        snapshot.put(conn)?;
    }
    let log_id = logs::insert(conn, &outcome.log)?;
    let moved = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, claimed = 0, \
             next_trigger = 'retry', last_log_id = ?5, updated_at = ?6 \
             WHERE id = ?1 AND status != 'succeeded'",
        )?
        .execute(params![
            outcome.delivery_id,
            outcome.status,
            outcome.log.attempt,
            outcome.next_attempt_at,
            log_id,
            outcome.log.response_at
        ])?;
    // Ended `succeeded` while this attempt was in flight (a rerun got through, see
    // `reruns`): the attempt is logged and counted, and must not make it due again.
    if moved == 0 {
        conn.prepare_cached("UPDATE deliveries SET attempts = ?2, claimed = 0 WHERE id = ?1")?
            .execute(params![outcome.delivery_id, outcome.log.attempt])?;
    }
    health::after_attempt(conn, ops, outcome, &log_id)
}

/// The last error is read from the last log (one primary-key lookup per row shown) rather
/// than copied onto the delivery, which would cost a wider row on every attempt's write.
pub(super) const COLUMNS: &str =
    "id, message_id, automation_id, status, attempts, next_attempt_at, last_log_id, created_at, updated_at, \
     (SELECT error_code FROM logs WHERE logs.id = deliveries.last_log_id), \
     (SELECT error_message FROM logs WHERE logs.id = deliveries.last_log_id)";

fn from_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let id: DeliveryId = decode::key(r, 0, "deliveries")?;
    let status = decode::value(r, 3, "deliveries", &id)?;
    Ok(DeliveryRow {
        message_id: decode::value(r, 1, "deliveries", &id)?,
        automation_id: decode::value(r, 2, "deliveries", &id)?,
        status,
        attempts: r.get(4)?,
        next_attempt_at: (status == DeliveryStatus::Pending)
            .then(|| r.get(5))
            .transpose()?
            .filter(|at| *at != super::WAITING_AT),
        last_log_id: decode::value(r, 6, "deliveries", &id)?,
        last_error_code: r.get(9)?,
        last_error_message: r.get(10)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        id,
    })
}

/// Every delivery of message `message_id`, oldest first (one per automation it went to).
pub(super) fn of_message(
    conn: &Connection,
    message_id: &MessageId,
) -> StoreResult<Vec<DeliveryRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE message_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([message_id], from_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Store {
    /// Writes an attempt's log and moves its delivery on, in one write, with what the outcome
    /// causes (the automation's health, operational webhooks, an automatic disable: see
    /// `health`); with `next`, marks that held delivery started in the same write (see
    /// [`Store::mark_started`]), and says whether it was.
    pub async fn record_outcome(
        &self,
        outcome: Arc<Outcome>,
        next: Option<(DeliveryId, UnixMs)>,
    ) -> StoreResult<Recorded> {
        let ops = self.operations();
        let cache = self.cache.clone();
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let recorded =
                    super::pg::claims::record_outcome(p, &ops, &cache, &outcome, next, None);
                return Ok(recorded.await?.0);
            }
        };
        // Unguarded: after its first write only a storage failure can stop it.
        db.write_unguarded(move |c| record_and_mark(c, &ops, &cache, &outcome, next)).await
    }

    /// The stored payload of message `message_id`, with hash `hash` (a delivery's, read as
    /// its call starts); [`StoreError::ContentGone`] when it is no longer stored.
    pub async fn payload(&self, message_id: MessageId, hash: BodyHash) -> StoreResult<Bytes> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let client = p.client().await?;
                return super::pg::message_views::payload(p, &**client, &message_id, &hash)
                    .await
                    .map(Bytes::from);
            }
        };
        db.read(move |c| content::payload(c, &message_id, &hash).map(Bytes::from)).await
    }

    /// Takes delivery `id` back from started (`claimed` 1) to held (2), due now, before it
    /// waits for its automation's rate limit: its call has not begun, so a crash or a stop
    /// during the wait puts it back in the queue with no log instead of logging an attempt
    /// never made, and a held delivery has no lease to run out. False when it is no longer
    /// pending under such a claim.
    pub async fn hold_unstarted(&self, id: DeliveryId) -> StoreResult<bool> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::deliveries::hold_unstarted(p, &p.client().await?, &id).await
            }
        };
        db.write(move |c| {
            let held = c
                .prepare_cached(
                    "UPDATE deliveries SET claimed = 2, next_attempt_at = ?2 \
                     WHERE id = ?1 AND claimed = 1 AND status = 'pending'",
                )?
                .execute(params![id, UnixMs::now()])?;
            Ok(held == 1)
        })
        .await
    }

    /// Marks held delivery `id` as possibly sent, under a lease until `lease_until`; its call
    /// may start only once this is committed. False when it is no longer held.
    pub async fn mark_started(&self, id: DeliveryId, lease_until: UnixMs) -> StoreResult<bool> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let client = p.client().await?;
                return super::pg::deliveries::mark_started(p, &client, &id, lease_until).await;
            }
        };
        db.write(move |c| mark_started(c, &id, lease_until)).await
    }

    /// Hands claimed deliveries back untried, due now (the dispatcher had no room for them).
    pub async fn release_deliveries(&self, ids: Vec<DeliveryId>) -> StoreResult<()> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::deliveries::release(p, &p.client().await?, &ids).await
            }
        };
        db.write(move |c| {
            let now = UnixMs::now();
            let mut stmt = c.prepare_cached(
                "UPDATE deliveries SET claimed = 0, next_attempt_at = ?2 WHERE id = ?1",
            )?;
            for id in ids {
                stmt.execute(params![id, now])?;
            }
            Ok(())
        })
        .await
    }

    /// When the oldest delivery due and not yet sent came due: pending and not in
    /// flight (unclaimed, or held in memory behind its automation's calls, which keeps its
    /// due time). Walks the deliveries_due index from its start; deliveries in flight, whose
    /// next_attempt_at is their lease's end, sort after the due ones.
    pub async fn oldest_due_at(&self) -> StoreResult<Option<UnixMs>> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::deliveries::oldest_due_at(p, &p.client().await?).await
            }
        };
        db.read(|c| {
            let now = UnixMs::now();
            Ok(c.prepare_cached(
                "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' AND claimed <> 1 \
                 AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT 1",
            )?
            .query_row([now], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    /// Counts of pending deliveries: (all pending, due now and not in flight).
    pub async fn backlog(&self) -> StoreResult<(i64, i64)> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::deliveries::backlog(p, &p.client().await?).await
            }
        };
        db.read(|c| {
            let now = UnixMs::now();
            Ok(c.prepare_cached(
                "SELECT count(*), coalesce(sum(next_attempt_at <= ?1 AND claimed = 0), 0) \
                 FROM deliveries WHERE status = 'pending'",
            )?
            .query_row([now], |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
        .await
    }

    /// One delivery.
    pub async fn delivery(&self, id: DeliveryId) -> StoreResult<DeliveryRow> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::deliveries::get(p, &**p.client().await?, &id).await
            }
        };
        db.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))?
                .query_row([id], from_row)
                .optional()?
                .ok_or(StoreError::NotFound("delivery"))
        })
        .await
    }

    /// One page of deliveries, filtered by status, automation and message.
    pub async fn list_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        automation_id: Option<String>,
        message_id: Option<String>,
        page: PageRequest,
    ) -> StoreResult<Page<DeliveryRow>> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let client = p.client().await?;
                return super::pg::deliveries::list(
                    p,
                    &**client,
                    status,
                    automation_id,
                    message_id,
                    &page,
                )
                .await;
            }
        };
        db.read(move |c| {
            let mut cond = Conditions::default();
            if let Some(s) = status {
                cond.push_literal(format!("status = '{}'", s.as_str()));
            }
            if let Some(a) = automation_id {
                cond.push_id::<ids::Automation>("automation_id", &a);
            }
            if let Some(m) = message_id {
                cond.push_id::<Message>("message_id", &m);
            }
            read_page(c, "deliveries", COLUMNS, &cond, &page, from_row, |d| d.id.as_str())
        })
        .await
    }
}
