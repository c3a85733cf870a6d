//! Ingest: a message and one delivery per subscribed automation, committed together.
//! Every producer (the messages API, workflow completions, tests) goes through [`ingest`].

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{automations, bodies, BodyHash, Store, StoreError, StoreResult};
use crate::ids;

/// How long an `Idempotency-Key` keeps answering with its first result.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A message to accept.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Fan out to the enabled automations of this processor…
    pub processor_id: Option<String>,
    /// …or to exactly this automation.
    pub automation_id: Option<String>,
    /// Optional event type, matched against each automation's `event_types`.
    pub event_type: Option<String>,
    /// The JSON object sent as the webhook body, already serialized (sent byte for byte).
    pub payload: Vec<u8>,
    /// Same key within 24 h → the first answer again, nothing new stored.
    pub idempotency_key: Option<String>,
}

/// The answer to an accepted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResult {
    /// `msg_…`; also the `webhook-id` of every call made for it.
    pub message_id: String,
    /// The processor whose automations it went to.
    pub processor_id: String,
    /// The event type given, if any.
    pub event_type: Option<String>,
    /// One delivery per automation: (`dlv_…`, `endp_…`).
    pub deliveries: Vec<(String, String)>,
    /// Unix ms.
    pub created_at: i64,
}

/// Stores `msg` and its deliveries on `conn` (inside the caller's transaction).
/// Returns the stored answer, and whether it is a replay of an earlier identical request.
pub fn ingest(conn: &Connection, msg: &NewMessage, now: i64) -> StoreResult<(IngestResult, bool)> {
    let request_hash = bodies::body_hash(&request_fingerprint(msg));
    if let Some(key) = &msg.idempotency_key {
        let found: Option<(Vec<u8>, String, i64)> = conn
            .prepare_cached(
                "SELECT request_hash, response, created_at FROM idempotency_keys WHERE key = ?1",
            )?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((hash, response, created_at)) = found {
            if now - created_at < IDEMPOTENCY_WINDOW_MS {
                if hash != request_hash {
                    return Err(StoreError::Conflict(
                        "Idempotency-Key was already used for a different request".into(),
                    ));
                }
                let result = serde_json::from_str(&response)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                return Ok((result, true));
            }
        }
    }

    let (processor_id, targets) = match (&msg.automation_id, &msg.processor_id) {
        (Some(id), _) => {
            let a = automations::get(conn, id)?.ok_or(StoreError::NotFound("automation"))?;
            if !a.enabled {
                return Err(StoreError::Conflict(format!("automation {id} is disabled")));
            }
            (a.processor_id.clone(), vec![a])
        }
        (None, Some(p)) => {
            (p.clone(), automations::subscribers(conn, p, msg.event_type.as_deref())?)
        }
        (None, None) => {
            return Err(StoreError::Conflict("processor_id or automation_id is required".into()))
        }
    };

    let message_id = ids::new_id(ids::MESSAGE);
    let payload_hash = bodies::put(conn, &msg.payload)?;
    conn.prepare_cached(
        "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![message_id, processor_id, msg.event_type, &payload_hash[..], now])?;

    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         claimed, next_trigger, created_at, updated_at) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, 0, 'initial', ?4, ?4)",
    )?;
    let mut deliveries = Vec::with_capacity(targets.len());
    for automation in targets {
        let delivery_id = ids::new_id(ids::DELIVERY);
        insert.execute(params![delivery_id, message_id, automation.id, now])?;
        deliveries.push((delivery_id, automation.id));
    }
    let result = IngestResult {
        message_id,
        processor_id,
        event_type: msg.event_type.clone(),
        deliveries,
        created_at: now,
    };
    if let Some(key) = &msg.idempotency_key {
        let response =
            serde_json::to_string(&result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![key, &request_hash[..], response, now])?;
    }
    Ok((result, false))
}

/// What identifies "the same request" for idempotency: target, event type and payload.
fn request_fingerprint(msg: &NewMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.payload.len() + 64);
    for part in [&msg.processor_id, &msg.automation_id, &msg.event_type] {
        out.extend_from_slice(part.as_deref().unwrap_or("").as_bytes());
        out.push(0);
    }
    out.extend_from_slice(&msg.payload);
    out
}

/// A message's payload (the webhook body every delivery of it sends).
pub(super) fn payload(conn: &Connection, message_id: &str) -> StoreResult<Vec<u8>> {
    let hash: Vec<u8> = conn
        .prepare_cached("SELECT payload_hash FROM messages WHERE id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound("message"))?;
    bodies::get(conn, &hash)
}

impl Store {
    /// Accepts a message: answers only once it and its deliveries are committed.
    pub async fn ingest(&self, msg: NewMessage) -> StoreResult<(IngestResult, bool)> {
        self.write(move |c| ingest(c, &msg, crate::time::now_ms())).await
    }

    /// Stores a message that fans out to nobody (the automation test call): it gives the
    /// call its `webhook-id` and keeps its body for reruns.
    pub async fn insert_bare_message(
        &self,
        processor_id: String,
        event_type: &'static str,
        payload: Vec<u8>,
    ) -> StoreResult<(String, BodyHash)> {
        self.write(move |c| {
            let id = ids::new_id(ids::MESSAGE);
            let hash = bodies::put(c, &payload)?;
            c.prepare_cached(
                "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, processor_id, event_type, &hash[..], crate::time::now_ms()])?;
            Ok((id, hash))
        })
        .await
    }

    /// Forgets idempotency keys older than the window.
    pub async fn purge_idempotency_keys(&self) -> StoreResult<usize> {
        self.write(|c| {
            let cutoff = crate::time::now_ms() - IDEMPOTENCY_WINDOW_MS;
            Ok(c.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute([cutoff])?)
        })
        .await
    }
}
