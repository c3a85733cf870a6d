//! The trail of an automation's enables and disables: who (the relay itself, or the key that
//! asked), why and when. Written in the same write as the change it records, with the
//! `endpoint.enabled` / `endpoint.disabled` operational webhook it causes, so none of the
//! three is ever without the others.

use rusqlite::{params, Connection, Row};
use serde_json::{json, Value};

use super::automations::{self, Automation};
use super::column::Column;
use super::operational::{self, Operations};
use super::page::{read_page, Conditions, Page, PageRequest};
use super::pg;
use super::{Backend, Store, StoreError, StoreResult};
use crate::ids::{self, ApiKeyId, AutomationEventId, AutomationId};
use crate::time::UnixMs;

/// Who enabled or disabled an automation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The relay: an automation failing for `operational.disable_after_hours`.
    System,
    /// An admin key of the config (it has no id).
    ConfigKey,
    /// A stored key, by id.
    Key(ApiKeyId),
}

impl Actor {
    /// As stored and shown: `system`, `config_key` or the key's id.
    pub fn as_text(&self) -> String {
        match self {
            Actor::System => "system".into(),
            Actor::ConfigKey => "config_key".into(),
            Actor::Key(id) => id.to_string(),
        }
    }

    /// The actor of a request made with a key: its id, or `config_key` for one of the config.
    pub fn of_key(key_id: Option<&ApiKeyId>) -> Self {
        key_id.map_or(Actor::ConfigKey, |id| Actor::Key(id.clone()))
    }
}

/// Whether an event enabled or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The automation was enabled.
    Enabled,
    /// The automation was disabled.
    Disabled,
}

impl EventKind {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Enabled => "enabled",
            EventKind::Disabled => "disabled",
        }
    }
}

/// One recorded enable or disable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AutomationEvent {
    /// `aevt_…`
    pub id: AutomationEventId,
    /// The automation.
    pub automation_id: AutomationId,
    /// `enabled` or `disabled`.
    pub kind: String,
    /// `system`, `config_key` or a key id.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: UnixMs,
}

const COLUMNS: &str = "id, automation_id, kind, actor, reason, at";

fn from_row<R: Column>(r: &R) -> Result<AutomationEvent, R::Error> {
    const T: &str = "automation_events";
    let id: AutomationEventId = r.key(0, T)?;
    Ok(AutomationEvent {
        automation_id: r.key(1, T)?,
        kind: r.text(2, T, &id)?,
        actor: r.text(3, T, &id)?,
        reason: r.text(4, T, &id)?,
        at: r.time(5, T, &id)?,
        id,
    })
}

fn sqlite_row(r: &Row<'_>) -> rusqlite::Result<AutomationEvent> {
    from_row(r)
}

fn event_id(e: &AutomationEvent) -> &str {
    e.id.as_str()
}

/// A change of an automation's `enabled` flag, to record.
pub(crate) struct Switch<'a> {
    /// The automation, as it is after the change.
    pub automation: &'a Automation,
    /// Who made it.
    pub actor: &'a Actor,
    /// Why.
    pub reason: &'a str,
    /// For a disable by the relay: since when every attempt failed.
    pub failing_since: Option<UnixMs>,
    /// When.
    pub now: UnixMs,
}

/// Records `switch` (the automation's flag already changed in this write): the trail's row,
/// the health row's disabled reason (and, on enable, a new start for the failing clock), the
/// server log line, and the operational webhook, unless the automation is the operational
/// one. Returns whether a webhook was queued.
pub(super) fn record(
    conn: &Connection,
    ops: &Operations,
    switch: &Switch<'_>,
) -> StoreResult<bool> {
    let a = switch.automation;
    let kind = if a.settings.enabled { EventKind::Enabled } else { EventKind::Disabled };
    conn.prepare_cached(
        "INSERT INTO automation_events (id, automation_id, kind, actor, reason, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        AutomationEventId::new(),
        a.id,
        kind.as_str(),
        switch.actor.as_text(),
        switch.reason,
        switch.now
    ])?;
    let disabled_reason = (kind == EventKind::Disabled).then_some(switch.reason);
    conn.prepare_cached(
        "INSERT INTO automation_health (automation_id, disabled_reason) VALUES (?1, ?2) \
         ON CONFLICT (automation_id) DO UPDATE SET disabled_reason = excluded.disabled_reason, \
         failing_since = CASE WHEN excluded.disabled_reason IS NULL THEN NULL \
         ELSE failing_since END",
    )?
    .execute(params![a.id, disabled_reason])?;
    tracing::warn!(
        automation = %a.id, actor = %switch.actor.as_text(), reason = %switch.reason,
        "automation {}", kind.as_str()
    );
    match switch_event(ops, switch) {
        Some((event_type, data)) => operational::emit(conn, ops, event_type, data, switch.now),
        None => Ok(false),
    }
}

/// The operational webhook `switch` causes (`endpoint.enabled` or `endpoint.disabled`, with
/// Svix's data), unless its automation is the operational one.
pub(super) fn switch_event(ops: &Operations, switch: &Switch<'_>) -> Option<(&'static str, Value)> {
    let a = switch.automation;
    if ops.is_operational(&a.id) {
        return None;
    }
    let mut data = json!({
        "appId": a.settings.processor_id,
        "endpointId": a.id,
        "actor": switch.actor.as_text(),
        "reason": switch.reason,
    });
    if !a.settings.enabled {
        data["trigger"] =
            if switch.actor == &Actor::System { "automatic" } else { "manual" }.into();
        data["failSince"] = switch.failing_since.map(UnixMs::rfc3339).into();
    }
    let event_type = if a.settings.enabled { "endpoint.enabled" } else { "endpoint.disabled" };
    Some((event_type, data))
}

/// Disables automation `id` for the relay, if it is still enabled, with the trail and webhook
/// of [`record`]; returns whether it was (and whether a webhook was queued).
pub(super) fn disable_failing(
    conn: &Connection,
    ops: &Operations,
    id: &AutomationId,
    failing_since: UnixMs,
    now: UnixMs,
) -> StoreResult<(bool, bool)> {
    let changed = conn
        .prepare_cached(
            "UPDATE automations SET enabled = 0, updated_at = ?2 WHERE id = ?1 AND enabled = 1",
        )?
        .execute(params![id, now])?;
    if changed == 0 {
        return Ok((false, false));
    }
    let automation = automations::get(conn, id)?.ok_or(StoreError::NotFound("automation"))?;
    let hours = |ms: i64| ms as f64 / 3_600_000.0;
    let limit = ops.disable_after_ms.unwrap_or_default();
    let reason = format!(
        "every attempt failed since {} ({:.4} h; operational.disable_after_hours = {})",
        failing_since.rfc3339(),
        hours(now.since(failing_since)),
        hours(limit)
    );
    let switch = Switch {
        automation: &automation,
        actor: &Actor::System,
        reason: &reason,
        failing_since: Some(failing_since),
        now,
    };
    Ok((true, record(conn, ops, &switch)?))
}

impl Store {
    /// One page of automation `id`'s enable/disable trail (an automation deleted keeps its
    /// trail; an id that never existed has an empty one).
    pub async fn automation_events(
        &self,
        id: AutomationId,
        page: PageRequest,
    ) -> StoreResult<Page<AutomationEvent>> {
        let mut cond = Conditions::default();
        cond.push_id::<ids::Automation>("automation_id", id.as_str());
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| {
                    read_page(c, "automation_events", COLUMNS, &cond, &page, sqlite_row, event_id)
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let table = "automation_events";
                pg::page::read_page(p, &**client, table, COLUMNS, &cond, &page, from_row, event_id)
                    .await
            }
        }
    }
}
