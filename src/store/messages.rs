//! Ingest: a message and one delivery per subscribed automation, committed together.
//! Every producer (the messages API, workflow completions) reaches [`ingest`] only through
//! `relay::Relay`, which hands what it stored to the dispatcher: ingest needs an [`Intake`],
//! and only the dispatcher makes one.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use bytes::Bytes;

use super::bodies::Prepared;
use super::cache::{AutomationCache, Target};
use super::claims::Take;
use super::fifo::{self, DeliveryOrder, WAITING_AT};
use super::{
    bodies, Automation, BodyHash, ClaimedDelivery, Conflict, Store, StoreError, StoreResult,
    Trigger,
};
use crate::delivery::ticket::Intake;
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::time::UnixMs;

/// How long an `Idempotency-Key` keeps answering with its first result.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A message to accept.
#[derive(Clone)]
pub struct NewMessage {
    /// Fan out to the enabled automations of this processor…
    pub processor_id: Option<String>,
    /// …or to exactly this automation.
    pub automation_id: Option<AutomationId>,
    /// Optional event type, matched against each automation's `event_types`.
    pub event_type: Option<String>,
    /// The JSON object sent as the webhook body, already serialized (sent byte for byte).
    pub payload: Vec<u8>,
    /// Same key within 24 h → the first answer again, nothing new stored.
    pub idempotency_key: Option<String>,
}

/// What [`Store::ingest`] did: what the producer is told, and what the dispatcher is given.
#[derive(Debug)]
pub struct Accepted {
    /// For the producer.
    pub receipt: Receipt,
    /// For the dispatcher.
    pub handover: Handover,
}

/// What a producer is told about an accepted message.
#[derive(Debug)]
pub struct Receipt {
    /// The answer (the first one again for a replayed idempotency key).
    pub result: IngestResult,
    /// Whether `result` is a replay.
    pub replayed: bool,
}

/// The deliveries a write stored, for the dispatcher. Ignoring it leaves the ones the
/// intake took claimed, uncalled, until their lease runs out.
#[derive(Debug, Default)]
#[must_use = "give it to the dispatcher, or the deliveries it took wait for their lease"]
pub struct Handover {
    /// The new deliveries the intake took, claimed (ready to call or hold).
    pub ready: Vec<ClaimedDelivery>,
    /// Whether new deliveries were stored unclaimed, for the dispatcher's claim loop.
    pub unclaimed: bool,
}

/// The answer to an accepted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResult {
    /// `msg_…`; also the `webhook-id` of every call made for it.
    pub message_id: MessageId,
    /// The processor whose automations it went to.
    pub processor_id: String,
    /// The event type given, if any.
    pub event_type: Option<String>,
    /// One delivery per automation: (`dlv_…`, `endp_…`).
    pub deliveries: Vec<(DeliveryId, AutomationId)>,
    /// When it was created.
    pub created_at: UnixMs,
}

/// Stores `msg` and its deliveries on `conn` (inside the caller's transaction). The
/// deliveries `intake` takes are stored already claimed and returned ready to send, so the
/// dispatcher need not claim (and re-read) what ingest just wrote; the others are stored
/// unclaimed.
pub(super) fn ingest(
    conn: &Connection,
    cache: &mut AutomationCache,
    msg: NewMessage,
    intake: &dyn Intake,
    now: UnixMs,
) -> StoreResult<Accepted> {
    ingest_prepared(conn, cache, msg, None, intake, now)
}

/// [`ingest`] with the payload's hash and stored form made beforehand (`payload`), so that
/// the single writer neither hashes nor compresses it.
fn ingest_prepared(
    conn: &Connection,
    cache: &mut AutomationCache,
    msg: NewMessage,
    payload: Option<Prepared>,
    intake: &dyn Intake,
    now: UnixMs,
) -> StoreResult<Accepted> {
    // Only a keyed request needs its fingerprint (a copy and a hash of the payload).
    let request_hash =
        msg.idempotency_key.as_ref().map(|_| bodies::body_hash(&request_fingerprint(&msg)));
    if let (Some(key), Some(request_hash)) = (&msg.idempotency_key, &request_hash) {
        if let Some(result) = first_answer(conn, key, request_hash, now)? {
            let receipt = Receipt { result, replayed: true };
            return Ok(Accepted { receipt, handover: Handover::default() });
        }
    }

    // Every refusal comes before the first write: ingest runs without a savepoint of its
    // own, so a write followed by a refusal would roll back the whole group commit.
    let (processor_id, targets) = addressed_targets(conn, cache, &msg)?;

    let message_id = MessageId::new();
    let payload_hash = match &payload {
        Some(prepared) => bodies::put_prepared(conn, prepared)?,
        None => bodies::put(conn, &msg.payload)?,
    };
    insert_message(conn, &message_id, &processor_id, &msg, &payload_hash, now)?;
    let stored =
        StoredMessage { id: message_id, payload: Bytes::from(msg.payload), payload_hash, now };
    let (deliveries, handover) = insert_deliveries(conn, cache, intake, &stored, targets)?;
    let result = IngestResult {
        message_id: stored.id,
        processor_id,
        event_type: msg.event_type,
        deliveries,
        created_at: now,
    };
    if let (Some(key), Some(request_hash)) = (&msg.idempotency_key, &request_hash) {
        remember_answer(conn, key, request_hash, &result, now)?;
    }
    let receipt = Receipt { result, replayed: false };
    Ok(Accepted { receipt, handover })
}

/// The answer first given to `key`, while its window lasts: a replay stores nothing new.
/// The same key with another request is a conflict rather than a silent replay, so a
/// client that reuses keys finds out.
fn first_answer(
    conn: &Connection,
    key: &str,
    request_hash: &BodyHash,
    now: UnixMs,
) -> StoreResult<Option<IngestResult>> {
    let found: Option<(Vec<u8>, String, UnixMs)> = conn
        .prepare_cached(
            "SELECT request_hash, response, created_at FROM idempotency_keys WHERE key = ?1",
        )?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((hash, response, created_at)) = found else { return Ok(None) };
    if now.since(created_at) >= IDEMPOTENCY_WINDOW_MS {
        return Ok(None);
    }
    if hash != request_hash[..] {
        return Err(StoreError::Conflict(
            Conflict::IdempotencyKeyReused,
            "Idempotency-Key was already used for a different request".into(),
        ));
    }
    serde_json::from_str(&response).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The processor a message goes to and the automations that get a delivery of it: the one
/// it names (refused if disabled), or the subscribers of its processor that want its event
/// type. Writes nothing, so a refusal here leaves the group commit intact.
fn addressed_targets(
    conn: &Connection,
    cache: &mut AutomationCache,
    msg: &NewMessage,
) -> StoreResult<(String, Vec<Arc<Target>>)> {
    match (&msg.automation_id, &msg.processor_id) {
        (Some(id), _) => {
            let t = cache.target(conn, id)?.ok_or(StoreError::NotFound("automation"))?;
            if !t.automation.settings.enabled {
                return Err(StoreError::Conflict(
                    Conflict::AutomationDisabled,
                    format!("automation {id} is disabled"),
                ));
            }
            Ok((t.automation.settings.processor_id.clone(), vec![t]))
        }
        (None, Some(p)) => {
            let wanted = cache.subscribers(conn, p)?;
            let targets = wanted
                .iter()
                .filter(|t| t.automation.wants(msg.event_type.as_deref()))
                .cloned()
                .collect();
            Ok((p.clone(), targets))
        }
        (None, None) => Err(StoreError::Unaddressed),
    }
}

/// Inserts the `messages` row (its payload already stored under `payload_hash`).
fn insert_message(
    conn: &Connection,
    message_id: &MessageId,
    processor_id: &str,
    msg: &NewMessage,
    payload_hash: &BodyHash,
    now: UnixMs,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, automation_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        message_id,
        processor_id,
        msg.event_type,
        &payload_hash[..],
        now,
        msg.automation_id
    ])?;
    Ok(())
}

/// A message just inserted, as each of its new deliveries refers to it.
pub(super) struct StoredMessage {
    pub(super) id: MessageId,
    pub(super) payload: Bytes,
    pub(super) payload_hash: BodyHash,
    pub(super) now: UnixMs,
}

/// Inserts one delivery per target: the ones `intake` takes are stored claimed (a call
/// leased, a hold due now) and handed over ready, so the dispatcher need not re-read them;
/// the others are stored unclaimed for its claim loop. A FIFO automation's delivery is
/// offered to `intake` only when its line is empty; otherwise it is stored waiting its turn
/// (see `fifo`), and neither handed over nor due.
fn insert_deliveries(
    conn: &Connection,
    cache: &AutomationCache,
    intake: &dyn Intake,
    message: &StoredMessage,
    targets: Vec<Arc<Target>>,
) -> StoreResult<(Vec<(DeliveryId, AutomationId)>, Handover)> {
    let now = message.now;
    let lease_until = now.plus_ms(intake.lease_ms());
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         claimed, next_trigger, created_at, updated_at, fifo) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5, 'initial', ?6, ?6, ?7)",
    )?;
    let mut deliveries = Vec::with_capacity(targets.len());
    let mut ready = Vec::with_capacity(targets.len());
    let mut unclaimed = false;
    for target in targets {
        let delivery_id = DeliveryId::new();
        let in_line = target.automation.settings.ordering == DeliveryOrder::Fifo;
        let waits = in_line && fifo::line_busy(conn, &target.automation.id)?;
        let taken = if waits { None } else { intake.take(&target.automation.id, &delivery_id) };
        let taken = taken.map(|t| t.stored_for(&target.automation));
        let next_attempt_at = match taken {
            Some(Take::Call) => lease_until,
            Some(Take::Hold) => now,
            None if waits => WAITING_AT,
            None => now,
        };
        unclaimed |= taken.is_none() && !waits;
        insert.execute(params![
            delivery_id,
            message.id,
            target.automation.id,
            next_attempt_at,
            taken.map_or(0, Take::claimed),
            now,
            in_line
        ])?;
        deliveries.push((delivery_id.clone(), target.automation.id.clone()));
        if let Some(taken) = taken {
            // The attempt's log will refer to this snapshot (the claim loop stores it for
            // deliveries left unclaimed).
            let snapshot_hash = AutomationCache::store_snapshot(conn, &target)?;
            ready.push(ClaimedDelivery {
                id: delivery_id,
                message_id: message.id.clone(),
                automation: target.automation.clone(),
                automation_version: cache.version(),
                snapshot_hash,
                // A held delivery keeps no payload: see `ClaimedDelivery::payload`.
                payload: (taken == Take::Call).then(|| message.payload.clone()),
                payload_hash: message.payload_hash,
                attempt: 1,
                trigger: Trigger::Initial,
                recover_job_id: None,
                created_at: now,
                started: taken == Take::Call,
            });
        }
    }
    Ok((deliveries, Handover { ready, unclaimed }))
}

/// Keeps `result` as the answer to `key` for [`IDEMPOTENCY_WINDOW_MS`].
fn remember_answer(
    conn: &Connection,
    key: &str,
    request_hash: &BodyHash,
    result: &IngestResult,
    now: UnixMs,
) -> StoreResult<()> {
    let response = serde_json::to_string(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![key, &request_hash[..], response, now])?;
    Ok(())
}

/// What identifies "the same request" for idempotency: target, event type and payload.
pub(super) fn request_fingerprint(msg: &NewMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.payload.len() + 64);
    let automation_id = msg.automation_id.as_deref();
    for part in [msg.processor_id.as_deref(), automation_id, msg.event_type.as_deref()] {
        out.extend_from_slice(part.unwrap_or("").as_bytes());
        out.push(0);
    }
    out.extend_from_slice(&msg.payload);
    out
}

/// The hash of a message's payload (the webhook body every delivery of it sends), and
/// whether its content was expunged (the payload must then not be sent even if a body with
/// that hash is stored again: see `content::expunged`).
pub(super) fn payload_hash(
    conn: &Connection,
    message_id: &MessageId,
) -> StoreResult<(BodyHash, bool)> {
    let (hash, expunged_at): (Vec<u8>, Option<i64>) = conn
        .prepare_cached("SELECT payload_hash, content_expunged_at FROM messages WHERE id = ?1")?
        .query_row([message_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound("message"))?;
    let hash = BodyHash::try_from(hash.as_slice())
        .map_err(|_| StoreError::Corrupt("a payload hash is malformed".into()))?;
    Ok((hash, expunged_at.is_some()))
}

impl Store {
    /// Accepts a message: answers only once it and its deliveries are committed. For
    /// `relay::Relay` (see the module doc).
    pub(crate) async fn ingest(
        &self,
        msg: NewMessage,
        intake: Arc<dyn Intake>,
    ) -> StoreResult<Accepted> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let payload = Prepared::of(&msg.payload);
                let version = self.cache.version();
                return super::pg::messages::ingest(p, &self.rule, version, msg, payload, &*intake)
                    .await;
            }
        };
        let cache = self.cache.clone();
        let payload = Prepared::of(&msg.payload);
        // Unguarded: everything that can refuse a message is checked before its first write.
        db.write_unguarded(move |c| {
            ingest_prepared(
                c,
                &mut cache.lock(),
                msg,
                Some(payload),
                intake.as_ref(),
                UnixMs::now(),
            )
        })
        .await
    }

    /// Stores a message addressed to `automation` that gets no delivery (the automation
    /// test call, sent directly): it gives the call its `webhook-id` and keeps its body for
    /// reruns. Being addressed to one automation, it is never replayed to the others.
    pub async fn insert_bare_message(
        &self,
        automation: &Automation,
        event_type: &'static str,
        payload: Vec<u8>,
    ) -> StoreResult<(MessageId, BodyHash)> {
        let (processor_id, automation_id) =
            (automation.settings.processor_id.clone(), automation.id.clone());
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let (processor, automation) = (&processor_id, &automation_id);
                return super::pg::messages::insert_bare(
                    p, processor, automation, event_type, &payload,
                )
                .await;
            }
        };
        db.write(move |c| {
            let id = MessageId::new();
            let hash = bodies::put(c, &payload)?;
            c.prepare_cached(
                "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, automation_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                processor_id,
                event_type,
                &hash[..],
                UnixMs::now(),
                automation_id
            ])?;
            Ok((id, hash))
        })
        .await
    }

    /// Forgets idempotency keys older than the window.
    pub async fn purge_idempotency_keys(&self) -> StoreResult<usize> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::messages::purge_idempotency_keys(p).await
            }
        };
        db.write(|c| {
            let cutoff = UnixMs::now().minus_ms(IDEMPOTENCY_WINDOW_MS);
            Ok(c.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute([cutoff])?)
        })
        .await
    }
}
