//! Operational webhooks: the automation the relay owns for `[operational] webhook_url`, and
//! the events queued to it. An event is an ordinary message addressed to that automation,
//! with one pending delivery, inserted in the write that caused it (an attempt's outcome, an
//! enable or disable): so it is committed exactly when its cause is, survives a crash, and is
//! retried, logged and rerun like every other call. Nothing is ever emitted about the
//! operational automation itself (its failures would otherwise feed themselves).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::automations::{self, Automation, AutomationSettings};
use super::{bodies, pg, Backend, DeliveryOrder, Store, StoreResult};
use crate::delivery::signing;
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::time::UnixMs;

/// The operational automation's name, shown in lists and the console.
pub const OPERATIONAL_NAME: &str = "hookrelay operational webhooks";
/// Its processor id; messages posted to this processor never fan out to it (it is left out
/// of every processor's subscribers), so only the relay's own events reach it.
pub const OPERATIONAL_PROCESSOR: &str = "hookrelay.operational";
/// The event types it receives (Svix's names).
pub const EVENT_TYPES: [&str; 5] = [
    "message.attempt.exhausted",
    "message.attempt.failing",
    "message.attempt.recovered",
    "endpoint.disabled",
    "endpoint.enabled",
];

/// What the store's writes need of `[operational]`, set once at start-up
/// ([`Store::configure_operations`]); before that (and in a store opened for a tool or a
/// test without it), nothing is disabled and no event is emitted.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// Disable an automation whose attempts have all failed for this long; `None`: never.
    pub disable_after_ms: Option<i64>,
    /// `message.attempt.failing` when the attempt with this number fails (0: never).
    pub failing_after_attempts: u32,
    /// The operational automation, if the relay ever made one (kept when `webhook_url` is
    /// later removed: it stays the relay's, and is never the subject of an event).
    pub webhook: Option<AutomationId>,
    /// Whether events are queued to it: `webhook_url` is set.
    pub sends: bool,
}

impl Operations {
    /// Whether `id` is the operational automation.
    pub fn is_operational(&self, id: &AutomationId) -> bool {
        self.webhook.as_ref() == Some(id)
    }
}

/// Queues the operational webhook `event_type` with `data` (Svix's shape: `type`,
/// `timestamp`, `data`), when there is an operational automation and it is enabled (a
/// disabled automation gets no new deliveries). Returns whether one was queued.
pub(super) fn emit(
    conn: &Connection,
    ops: &Operations,
    event_type: &str,
    data: Value,
    now: UnixMs,
) -> StoreResult<bool> {
    let Some(target) = ops.webhook.as_ref().filter(|_| ops.sends) else { return Ok(false) };
    let enabled: Option<bool> = conn
        .prepare_cached("SELECT enabled FROM automations WHERE id = ?1")?
        .query_row([target], |r| r.get(0))
        .optional()?;
    if enabled != Some(true) {
        return Ok(false);
    }
    let payload = json!({"type": event_type, "timestamp": now.rfc3339(), "data": data});
    let hash = bodies::put(conn, payload.to_string().as_bytes())?;
    let message_id = MessageId::new();
    conn.prepare_cached(
        "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, automation_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![message_id, OPERATIONAL_PROCESSOR, event_type, &hash[..], now, target])?;
    // Unclaimed and due now: the claim loop (woken by the dispatcher after this write)
    // stores the automation's snapshot and sends it.
    conn.prepare_cached(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         claimed, next_trigger, created_at, updated_at) \
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, 0, 'initial', ?4, ?4)",
    )?
    .execute(params![DeliveryId::new(), message_id, target, now])?;
    Ok(true)
}

/// The operational automation as first made: enabled, parallel, subscribed to
/// [`EVENT_TYPES`], signed with `secret` or a new one.
pub(super) fn new_automation(url: &str, secret: Option<&str>) -> Automation {
    let now = UnixMs::now();
    Automation {
        id: AutomationId::new(),
        settings: AutomationSettings {
            name: OPERATIONAL_NAME.into(),
            processor_id: OPERATIONAL_PROCESSOR.into(),
            webhook_url: url.into(),
            webhook_headers: BTreeMap::new(),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: Some(EVENT_TYPES.iter().map(|t| t.to_string()).collect()),
            ordering: DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: secret.map_or_else(signing::new_secret, str::to_string),
        previous_secret: None,
        previous_secret_until: None,
        created_at: now,
        updated_at: now,
    }
}

/// The operational automation, if the relay made one.
fn marked(conn: &Connection) -> StoreResult<Option<AutomationId>> {
    Ok(conn
        .query_row("SELECT automation_id FROM operational_automation WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Creates the operational automation, or points the existing one at `url` (and gives it
/// `secret` when one is configured); returns its id and whether its secret was generated
/// now. Its `enabled` flag is left as it is: an operator's or the relay's disable outlives a
/// restart.
fn install(
    conn: &Connection,
    url: &str,
    secret: Option<&str>,
) -> StoreResult<(AutomationId, bool)> {
    let now = UnixMs::now();
    if let Some(id) = marked(conn)? {
        conn.execute(
            "UPDATE automations SET webhook_url = ?2, updated_at = ?3 \
             WHERE id = ?1 AND webhook_url <> ?2",
            params![id, url, now],
        )?;
        if let Some(secret) = secret {
            conn.execute(
                "UPDATE automations SET secret = ?2, previous_secret = NULL, \
                 previous_secret_until = NULL, updated_at = ?3 WHERE id = ?1 AND secret <> ?2",
                params![id, secret, now],
            )?;
        }
        return Ok((id, false));
    }
    let automation = new_automation(url, secret);
    automations::insert(conn, &automation)?;
    conn.execute(
        "INSERT INTO operational_automation (id, automation_id) VALUES (1, ?1)",
        [&automation.id],
    )?;
    Ok((automation.id, secret.is_none()))
}

impl Store {
    /// Sets what the writes need of `[operational]` (once; a second call changes nothing),
    /// creating or re-pointing the operational automation when `webhook` (URL, secret) is
    /// given. Returns its id and whether its secret was generated now.
    pub async fn configure_operations(
        &self,
        disable_after_ms: Option<i64>,
        failing_after_attempts: u32,
        webhook: Option<(String, Option<String>)>,
    ) -> StoreResult<Option<(AutomationId, bool)>> {
        let sends = webhook.is_some();
        let installed = match (webhook, &self.backend) {
            (Some((url, secret)), Backend::Sqlite(s)) => {
                let cache = self.cache.clone();
                Some(
                    s.write(move |c| {
                        cache.lock().clear();
                        install(c, &url, secret.as_deref())
                    })
                    .await?,
                )
            }
            (Some((url, secret)), Backend::Postgres(p)) => {
                let installed = pg::operational::install(p, &url, secret.as_deref()).await?;
                self.cache.lock().clear();
                Some(installed)
            }
            (None, _) => None,
        };
        let marked = match (&installed, &self.backend) {
            (Some((id, _)), _) => Some(id.clone()),
            (None, Backend::Sqlite(s)) => s.read(marked).await?,
            (None, Backend::Postgres(p)) => {
                pg::operational::marked(p, &**p.client().await?).await?
            }
        };
        let ops = Operations { disable_after_ms, failing_after_attempts, webhook: marked, sends };
        let _ = self.ops.set(ops);
        Ok(installed)
    }

    /// What the writes know of `[operational]` (see [`Operations`]).
    pub fn operations(&self) -> Operations {
        self.ops.get().cloned().unwrap_or_default()
    }

    /// The operational automation's id, when `[operational] webhook_url` is set.
    pub fn operational_automation(&self) -> Option<AutomationId> {
        self.ops.get().and_then(|o| o.webhook.clone())
    }
}
