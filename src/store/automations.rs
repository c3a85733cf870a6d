//! Automations: the subscribed webhook endpoints, with their signing secrets.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::column::Column;
use super::fifo::{self, DeliveryOrder};
use super::page::{read_page, Conditions, Page, PageRequest};
use super::{StoreError, StoreResult};
use crate::delivery::rate_limit::RateLimit;
use crate::delivery::signing::is_valid_secret;
use crate::ids::AutomationId;
use crate::redact::HeaderRedaction;
use crate::time::UnixMs;

/// A stored automation: its settings, with what the store assigns and keeps (id,
/// signing secrets, times).
#[derive(Debug, Clone)]
pub struct Automation {
    /// `endp_…`
    pub id: AutomationId,
    /// What the user set (and may change with an update).
    pub settings: AutomationSettings,
    /// Current `whsec_…` signing secret.
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_until: Option<UnixMs>,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// The user-settable fields of an automation (validated by the API layer).
#[derive(Debug, Clone)]
pub struct AutomationSettings {
    /// Display name.
    pub name: String,
    /// The processor (or workflow app) whose messages feed it.
    pub processor_id: String,
    /// Where deliveries go.
    pub webhook_url: String,
    /// Extra headers sent with every call.
    pub webhook_headers: BTreeMap<String, String>,
    /// uiform's flag, stored and echoed.
    pub need_validation: bool,
    /// uiform's field, stored and echoed.
    pub default_language: String,
    /// Disabled automations get no new deliveries.
    pub enabled: bool,
    /// Event types it receives; `None` = all.
    pub event_types: Option<Vec<String>>,
    /// Parallel (the default) or one at a time in ingest order (see `store::fifo`).
    pub ordering: DeliveryOrder,
    /// At most this many calls start in any second; `None` = no limit.
    pub rate_limit_per_sec: Option<RateLimit>,
}

/// List filters.
#[derive(Debug, Default, Clone)]
pub struct AutomationFilter {
    /// Exact name.
    pub name: Option<String>,
    /// Exact webhook URL.
    pub webhook_url: Option<String>,
    /// Exact processor id.
    pub processor_id: Option<String>,
}

impl Automation {
    /// Whether a message of `event_type` goes to this automation.
    pub fn wants(&self, event_type: Option<&str>) -> bool {
        match (&self.settings.event_types, event_type) {
            (None, _) => true,
            (Some(types), Some(t)) => types.iter().any(|x| x == t),
            (Some(_), None) => false,
        }
    }

    /// The secrets that sign a call made at `now`: the current one, and the previous one
    /// during the 24 h after a rotation so receivers can switch over without dropping calls.
    pub fn signing_secrets(&self, now: UnixMs) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if now < until {
                secrets.push(prev);
            }
        }
        secrets
    }
}

pub(super) const COLUMNS: &str =
    "id, name, processor_id, webhook_url, webhook_headers, need_validation, \
    default_language, enabled, event_types, secret, previous_secret, previous_secret_until, \
    created_at, updated_at, ordering, rate_limit_per_sec";

/// What a stored secret must be: one that signs (a malformed one would send calls with an
/// empty signature).
pub(super) const A_SECRET: &str = "a whsec_ secret of at least 16 bytes";

/// An automation from its row (columns in the order of [`COLUMNS`]), on either backend.
pub(super) fn from_row<R: Column>(r: &R) -> Result<Automation, R::Error> {
    const T: &str = "automations";
    let id: AutomationId = r.key(0, T)?;
    Ok(Automation {
        settings: AutomationSettings {
            name: r.text(1, T, &id)?,
            processor_id: r.text(2, T, &id)?,
            webhook_url: r.text(3, T, &id)?,
            webhook_headers: r.json(4, T, &id)?,
            need_validation: r.flag(5, T, &id)?,
            default_language: r.text(6, T, &id)?,
            enabled: r.flag(7, T, &id)?,
            event_types: r.json_or_null(8, T, &id)?,
            ordering: r.parsed(14, T, &id, DeliveryOrder::parse)?,
            rate_limit_per_sec: r
                .opt_int(15, T, &id)?
                .map(|n| {
                    u64::try_from(n)
                        .ok()
                        .and_then(RateLimit::new)
                        .ok_or_else(|| r.corrupt(15, T, &id, format!("{n} is out of range")))
                })
                .transpose()?,
        },
        secret: r.checked_text(9, T, &id, is_valid_secret, A_SECRET)?,
        previous_secret: r
            .opt_text(10, T, &id)?
            .map(|s| {
                if is_valid_secret(&s) {
                    Ok(s)
                } else {
                    Err(r.corrupt(10, T, &id, format!("not {A_SECRET}")))
                }
            })
            .transpose()?,
        previous_secret_until: r.opt_time(11, T, &id)?,
        created_at: r.time(12, T, &id)?,
        updated_at: r.time(13, T, &id)?,
        id,
    })
}

/// [`from_row`] for a rusqlite row mapping.
fn sqlite_row(r: &Row<'_>) -> rusqlite::Result<Automation> {
    from_row(r)
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Inserts a new automation.
pub(super) fn insert(conn: &Connection, a: &Automation) -> StoreResult<()> {
    let event_types = a.settings.event_types.as_ref().map(to_json).transpose()?;
    conn.prepare_cached(&format!(
        "INSERT INTO automations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        a.id,
        a.settings.name,
        a.settings.processor_id,
        a.settings.webhook_url,
        to_json(&a.settings.webhook_headers)?,
        a.settings.need_validation,
        a.settings.default_language,
        a.settings.enabled,
        event_types,
        a.secret,
        a.previous_secret,
        a.previous_secret_until,
        a.created_at,
        a.updated_at,
        a.settings.ordering,
        a.settings.rate_limit_per_sec
    ])?;
    Ok(())
}

/// Reads one automation.
pub(super) fn get(conn: &Connection, id: &AutomationId) -> StoreResult<Option<Automation>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM automations WHERE id = ?1"))?
        .query_row([id], sqlite_row)
        .optional()?)
}

/// Replaces the user-settable fields; the secret and creation time are kept. A change of
/// ordering applies to its backlog in the same write (see `store::fifo`): made FIFO, its
/// pending deliveries not yet in flight line up in ingest order; made parallel, its FIFO line
/// (if any) goes at once.
pub(super) fn update(
    conn: &Connection,
    id: &AutomationId,
    settings: &AutomationSettings,
    now: UnixMs,
) -> StoreResult<Automation> {
    let was: Option<DeliveryOrder> = conn
        .prepare_cached("SELECT ordering FROM automations WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let event_types = settings.event_types.as_ref().map(to_json).transpose()?;
    let changed = conn
        .prepare_cached(
            "UPDATE automations SET name = ?2, processor_id = ?3, webhook_url = ?4, \
             webhook_headers = ?5, need_validation = ?6, default_language = ?7, enabled = ?8, \
             event_types = ?9, updated_at = ?10, ordering = ?11, rate_limit_per_sec = ?12 \
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            settings.name,
            settings.processor_id,
            settings.webhook_url,
            to_json(&settings.webhook_headers)?,
            settings.need_validation,
            settings.default_language,
            settings.enabled,
            event_types,
            now,
            settings.ordering,
            settings.rate_limit_per_sec
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound("automation"));
    }
    match settings.ordering {
        DeliveryOrder::Parallel => fifo::dissolve(conn, id, now)?,
        DeliveryOrder::Fifo if was != Some(DeliveryOrder::Fifo) => {
            fifo::line_up(conn, id)?;
        }
        DeliveryOrder::Fifo => {}
    }
    get(conn, id)?.ok_or(StoreError::NotFound("automation"))
}

/// Deletes an automation. Its pending deliveries end as `failed` (recorded, not dropped),
/// those held in memory too (they are then not called); those whose call may have started
/// are left to end by their outcome. Its logs stay, each with the snapshot of the
/// automation it was sent for; the headers it sent in clear go, and so does its signing
/// for spreadsheets.
pub(super) fn delete(conn: &Connection, id: &AutomationId, now: UnixMs) -> StoreResult<()> {
    if conn.prepare_cached("DELETE FROM automations WHERE id = ?1")?.execute([id])? == 0 {
        return Err(StoreError::NotFound("automation"));
    }
    // Its snapshot headers and spreadsheet signer links go by `ON DELETE CASCADE`.
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'failed', claimed = 0, updated_at = ?2 \
         WHERE automation_id = ?1 AND status = 'pending' AND claimed != 1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Makes `new_secret` current; the old one keeps signing until `previous_until`.
pub(super) fn rotate_secret(
    conn: &Connection,
    id: &AutomationId,
    new_secret: &str,
    previous_until: UnixMs,
    now: UnixMs,
) -> StoreResult<Automation> {
    let changed = conn
        .prepare_cached(
            "UPDATE automations SET previous_secret = secret, previous_secret_until = ?3, \
             secret = ?2, updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![id, new_secret, previous_until, now])?;
    if changed == 0 {
        return Err(StoreError::NotFound("automation"));
    }
    get(conn, id)?.ok_or(StoreError::NotFound("automation"))
}

/// Enabled automations of `processor_id` (a flag neither 0 nor 1 is read too, and is an error);
/// never the operational one, which gets only the relay's own events.
pub(super) fn enabled_of_processor(
    conn: &Connection,
    processor_id: &str,
) -> StoreResult<Vec<Automation>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM automations WHERE processor_id = ?1 AND enabled != 0 \
         AND id NOT IN (SELECT automation_id FROM operational_automation) ORDER BY id"
    ))?;
    let all = stmt.query_map([processor_id], sqlite_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(all)
}

/// One page of automations.
pub(super) fn list(
    conn: &Connection,
    filter: &AutomationFilter,
    page: &PageRequest,
) -> StoreResult<Page<Automation>> {
    read_page(conn, "automations", COLUMNS, &conditions(filter), page, sqlite_row, |a| &a.id)
}

/// The conditions of a list of automations under `filter` (both backends).
pub(super) fn conditions(filter: &AutomationFilter) -> Conditions {
    let mut conditions = Conditions::default();
    if let Some(name) = &filter.name {
        conditions.push("name = ?", name.clone());
    }
    if let Some(url) = &filter.webhook_url {
        conditions.push("webhook_url = ?", url.clone());
    }
    if let Some(p) = &filter.processor_id {
        conditions.push("processor_id = ?", p.clone());
    }
    conditions
}

impl Automation {
    /// uiform's `AutomationConfig` for this automation, header secrets redacted by `rule`:
    /// what a log shows as `automation_snapshot` (stored once per distinct version).
    pub fn snapshot_json(&self, rule: &HeaderRedaction) -> Vec<u8> {
        let headers: BTreeMap<&str, &str> = self
            .settings
            .webhook_headers
            .iter()
            .map(|(k, v)| (k.as_str(), rule.shown(k, v)))
            .collect();
        let snapshot = serde_json::json!({
            "object": "automation.endpoint",
            "id": self.id,
            "name": self.settings.name,
            "processor_id": self.settings.processor_id,
            "updated_at": self.updated_at.rfc3339(),
            "default_language": self.settings.default_language,
            "webhook_url": self.settings.webhook_url,
            "webhook_headers": headers,
            "need_validation": self.settings.need_validation,
        });
        snapshot.to_string().into_bytes()
    }
}
