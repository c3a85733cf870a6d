//! Claims: the dispatcher takes due deliveries out of the database. Whoever stores or claims
//! deliveries for the dispatcher (ingest, the claim loop) asks its [`Intake`] about each one
//! as the write runs, so a delivery is claimed only when the dispatcher has room for it, and
//! the rest stay unclaimed and due, durable in the database.
//!
//! `deliveries.claimed` says how: 1 for a delivery taken to call at once (its call may have
//! started: a crash logs it `E_INTERRUPTED`), under a lease in `next_attempt_at`; 2 for one
//! held in memory, whose call has not started (a crash puts it back as it was). A held
//! delivery is marked 1 in a write that commits before its call starts, usually the write
//! recording the call before it in its lane. Held deliveries are never claimed again, and
//! never time out: they leave memory only by being called or released.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::types::{FromSql, Value};
use rusqlite::{params, Connection};

use super::cache::AutomationCache;
use super::recover::BackgroundJob;
use super::{
    bodies, decode, deliveries, messages, Automation, BodyHash, ClaimedDelivery, Outcome, Recorded,
    Store, StoreError, StoreResult, Trigger,
};
use crate::delivery::ticket::Intake;
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::time::UnixMs;

/// How the dispatcher takes a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// To call at once.
    Call,
    /// To hold in memory until its automation has a free slot.
    Hold,
}

impl Take {
    /// How a delivery of `automation` taken this way is stored: one to call at once is held
    /// instead when the automation is rate limited, since its call starts only when its
    /// turn comes, and is marked started then (see `delivery::dispatcher_rate`).
    pub(super) fn stored_for(self, automation: &Automation) -> Take {
        match self {
            Take::Call if automation.settings.rate_limit_per_sec.is_some() => Take::Hold,
            taken => taken,
        }
    }

    /// The `claimed` value it is stored with (see the module doc).
    pub(super) fn claimed(self) -> i64 {
        match self {
            Take::Call => 1,
            Take::Hold => 2,
        }
    }
}

/// How long a due delivery whose automation cannot be read (a corrupt stored value) waits
/// before it is looked at again: it is never sent without what could not be read (its
/// headers may carry the receiver's credentials), it must not hold up the deliveries behind
/// it, and it goes once the value is repaired.
pub(super) const UNREADABLE_WAIT_MS: i64 = 60_000;

/// Claims due deliveries, oldest due first, as `intake` takes them, until `want` are taken.
/// Deliveries of the `saturated` automations are passed over in the query, and at most
/// `scan` candidates are looked at, so a claim costs the same however much waits behind
/// automations that can take nothing. Deliveries of automations that no longer exist end
/// `failed`; those of an automation that cannot be read wait (see [`UNREADABLE_WAIT_MS`]).
fn claim(
    conn: &Connection,
    cache: &mut AutomationCache,
    request: &ClaimRequest,
    now: UnixMs,
) -> StoreResult<Vec<ClaimedDelivery>> {
    // The saturated automations as a JSON array of their ids' hex digits, which the query
    // turns back into the stored bytes.
    let saturated = serde_json::Value::from(
        request.saturated.iter().map(|a| a.hex_digits()).collect::<Vec<_>>(),
    )
    .to_string();
    let candidate = |r: &rusqlite::Row<'_>| {
        let id: Value = r.get(0)?;
        let columns = due_columns(r, &shown(&id)).map_err(StoreError::from);
        Ok((id, r.get::<_, Value>(1)?, columns))
    };
    let candidates = match &request.line {
        None => conn
            .prepare_cached(
                "SELECT id, automation_id, message_id, attempts, next_trigger, recover_job_id, \
                 created_at FROM deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 AND claimed != 2 \
                 AND automation_id NOT IN (SELECT unhex(value) FROM json_each(?2)) \
                 ORDER BY next_attempt_at LIMIT ?3",
            )?
            .query_map(params![now, saturated, request.scan as i64], candidate)?
            .collect::<Result<Vec<_>, _>>()?,
        // The head of one FIFO line, by its index (see `fifo`).
        Some(automation_id) => conn
            .prepare_cached(
                "SELECT id, automation_id, message_id, attempts, next_trigger, recover_job_id, \
                 created_at FROM deliveries INDEXED BY deliveries_fifo \
                 WHERE automation_id = ?1 AND status = 'pending' AND fifo = 1 \
                 AND next_attempt_at <= ?2 AND claimed != 2 LIMIT 1",
            )?
            .query_map(params![automation_id, now], candidate)?
            .collect::<Result<Vec<_>, _>>()?,
    };

    let lease_until = now.plus_ms(request.intake.lease_ms());
    let mut hashes: HashMap<MessageId, (BodyHash, bool)> = HashMap::new();
    let mut payloads: HashMap<BodyHash, Bytes> = HashMap::new();
    let mut claimed = Vec::with_capacity(request.want.min(candidates.len()));
    let mut unreadable = Unreadable::default();
    for (stored_id, stored_automation, columns) in candidates {
        if claimed.len() == request.want {
            break;
        }
        // Ids of another kind (a damaged row) wait like any unreadable row, rather than
        // failing every claim.
        let (Ok(id), Ok(automation_id)) = (
            DeliveryId::column_result((&stored_id).into()),
            AutomationId::column_result((&stored_automation).into()),
        ) else {
            unreadable.note(&shown(&stored_id), &"its ids are not stored ids");
            conn.prepare_cached("UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1")?
                .execute(params![stored_id, now.plus_ms(UNREADABLE_WAIT_MS)])?;
            continue;
        };
        // Everything that can be unreadable is read before the intake sets room aside, so
        // a delivery that cannot be read waits alone and takes no room from the others.
        let due = match columns
            .and_then(|columns| read_due(conn, cache, &automation_id, columns, &mut hashes))
        {
            Ok(Some(due)) => due,
            Ok(None) => {
                conn.prepare_cached("UPDATE deliveries SET status = 'failed', claimed = 0, updated_at = ?2 WHERE id = ?1")?
                    .execute(params![id, now])?;
                continue;
            }
            Err(e) if e.is_unreadable_row() => {
                unreadable.note(&id, &e);
                conn.prepare_cached("UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1")?
                    .execute(params![id, now.plus_ms(UNREADABLE_WAIT_MS)])?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(taken) = request.intake.take(&automation_id, &id) else { continue };
        let taken = taken.stored_for(&due.target.automation);
        conn.prepare_cached(
            "UPDATE deliveries SET claimed = ?3, \
             next_attempt_at = CASE WHEN ?3 = 1 THEN ?2 ELSE next_attempt_at END WHERE id = ?1",
        )?
        .execute(params![id, lease_until, taken.claimed()])?;
        // A held delivery keeps no payload: see `ClaimedDelivery::payload`. One whose payload
        // is gone (content retention, an expunge) is taken all the same, without it: the
        // dispatcher finds it gone as it reads it for the call, and ends the delivery
        // `failed` with a log saying why (see `content`), instead of it coming due forever.
        let payload = match (taken, payloads.get(&due.payload_hash)) {
            (Take::Hold, _) => None,
            (Take::Call, _) if due.expunged => None,
            (Take::Call, Some(payload)) => Some(payload.clone()),
            (Take::Call, None) => bodies::find(conn, &due.payload_hash)?.map(|data| {
                let payload = Bytes::from(data);
                payloads.insert(due.payload_hash, payload.clone());
                payload
            }),
        };
        let snapshot_hash = AutomationCache::store_snapshot(conn, &due.target)?;
        claimed.push(ClaimedDelivery {
            id,
            message_id: due.message_id,
            automation: due.target.automation.clone(),
            automation_version: cache.version(),
            snapshot_hash,
            payload,
            payload_hash: due.payload_hash,
            attempt: due.attempts + 1,
            trigger: due.trigger,
            recover_job_id: due.recover_job_id,
            created_at: due.created_at,
            started: taken == Take::Call,
        });
    }
    unreadable.log();
    Ok(claimed)
}

/// The due deliveries one claim put back because they cannot be read, logged as one line
/// (each comes back every `UNREADABLE_WAIT_MS`: a line each would flood the log).
#[derive(Default)]
struct Unreadable {
    count: usize,
    first: Option<String>,
}

impl Unreadable {
    fn note(&mut self, delivery: &str, why: &dyn std::fmt::Display) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(format!("{delivery}: {why}"));
        }
    }

    fn log(self) {
        if let Some(first) = self.first {
            tracing::error!(
                deliveries = self.count,
                first = %first,
                "due deliveries wait: they cannot be read (looked at again in a minute)"
            );
        }
    }
}

/// What a due delivery is sent with, read before it is taken.
struct Due {
    target: std::sync::Arc<super::cache::Target>,
    message_id: MessageId,
    attempts: u32,
    trigger: Trigger,
    recover_job_id: Option<BackgroundJob>,
    created_at: UnixMs,
    payload_hash: BodyHash,
    /// Whether its message's content was expunged: its payload is then not read.
    expunged: bool,
}

/// A stored key as a log line shows it: its id when it is one, its SQLite value otherwise.
fn shown(stored: &Value) -> String {
    DeliveryId::column_result(stored.into()).map_or_else(|_| format!("{stored:?}"), String::from)
}

/// A due delivery's own columns, read with its candidate row: message, attempts made,
/// trigger, recover or replay job, creation time.
type DueColumns = (MessageId, u32, Trigger, Option<BackgroundJob>, UnixMs);

/// Columns 2.. of a candidate row `id` (see the claim's query); one that cannot be read is
/// that row's error only, so the claim goes on with the others.
fn due_columns(r: &rusqlite::Row<'_>, id: &str) -> rusqlite::Result<DueColumns> {
    Ok((
        decode::value(r, 2, "deliveries", id)?,
        decode::value(r, 3, "deliveries", id)?,
        decode::value(r, 4, "deliveries", id)?,
        decode::value(r, 5, "deliveries", id)?,
        decode::value(r, 6, "deliveries", id)?,
    ))
}

/// What a due delivery needs beyond its own row: its automation (`None` when deleted) and
/// its message's payload hash. Either unreadable is an error for which
/// [`StoreError::is_unreadable_row`] holds. Whether the payload is still stored is not
/// asked here: see the claim.
fn read_due(
    conn: &Connection,
    cache: &mut AutomationCache,
    automation_id: &AutomationId,
    (message_id, attempts, trigger, recover_job_id, created_at): DueColumns,
    hashes: &mut HashMap<MessageId, (BodyHash, bool)>,
) -> StoreResult<Option<Due>> {
    let Some(target) = cache.target(conn, automation_id)? else { return Ok(None) };
    let (payload_hash, expunged) = match hashes.get(&message_id) {
        Some(found) => *found,
        None => {
            let found = messages::payload_hash(conn, &message_id)?;
            hashes.insert(message_id.clone(), found);
            found
        }
    };
    Ok(Some(Due {
        target,
        message_id,
        attempts,
        trigger,
        recover_job_id,
        created_at,
        payload_hash,
        expunged,
    }))
}

/// What one claim asks for; see [`Store::claim_due`].
pub struct ClaimRequest {
    /// Most deliveries to take.
    pub want: usize,
    /// Most candidates to look at.
    pub scan: usize,
    /// Automations whose deliveries are passed over.
    pub saturated: Vec<AutomationId>,
    /// Decides about each candidate.
    pub intake: std::sync::Arc<dyn Intake>,
    /// Only the head of this automation's FIFO line, if due (see `fifo`); `None`: every due
    /// delivery.
    pub line: Option<AutomationId>,
}

impl Store {
    /// Claims due deliveries as the request's intake takes them; see [`ClaimRequest`].
    pub async fn claim_due(&self, request: ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let version = self.cache.version();
                return super::pg::claims::claim_due(p, &self.rule, version, &request).await;
            }
        };
        let cache = self.cache.clone();
        db.write(move |c| claim(c, &mut cache.lock(), &request, UnixMs::now())).await
    }

    /// [`Store::record_outcome`], then the claim `request` in the same write: the end of a
    /// FIFO head makes the next of its line due (see `fifo`), and claiming it there costs
    /// no write of its own. Returns what recording did, and what was claimed.
    pub async fn record_outcome_and_claim(
        &self,
        outcome: Arc<Outcome>,
        next: Option<(DeliveryId, UnixMs)>,
        request: ClaimRequest,
    ) -> StoreResult<(Recorded, Vec<ClaimedDelivery>)> {
        let ops = self.operations();
        let cache = self.cache.clone();
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let then = Some((&self.rule, self.cache.version(), &request));
                return super::pg::claims::record_outcome(p, &ops, &cache, &outcome, next, then)
                    .await;
            }
        };
        // Unguarded as `record_outcome`: after its first write only a storage failure stops it.
        db.write_unguarded(move |c| {
            let recorded = deliveries::record_and_mark(c, &ops, &cache, &outcome, next)?;
            Ok((recorded, claim(c, &mut cache.lock(), &request, UnixMs::now())?))
        })
        .await
    }
}
