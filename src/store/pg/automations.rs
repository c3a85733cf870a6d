//! Automations on PostgreSQL: `store::automations`' SQL, beside it. The rows decode through
//! the same `from_row` (see `store::column`); JSON columns are read as their text, so key
//! order shows back as it was given.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{listen, Cached, OrStore, Pg};
use crate::ids::AutomationId;
use crate::store::automations::{from_row, Automation, AutomationFilter, AutomationSettings};
use crate::store::fifo::{DeliveryOrder, WAITING_AT};
use crate::store::page::{Page, PageRequest};
use crate::store::{StoreError, StoreResult};
use crate::time::UnixMs;

/// The columns of `automations` in `from_row`'s order.
pub(super) const COLUMNS: &str = "id, name, processor_id, webhook_url, webhook_headers::text, \
    need_validation, default_language, enabled, event_types::text, secret, previous_secret, \
    previous_secret_until, created_at, updated_at, ordering, rate_limit_per_sec";

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The stored form of a rate limit (an `integer` column).
fn rate(settings: &AutomationSettings) -> Option<i32> {
    settings.rate_limit_per_sec.map(|r| i32::try_from(r.per_sec()).unwrap_or(i32::MAX))
}

/// Inserts a new automation.
pub(crate) async fn insert(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    a: &Automation,
) -> StoreResult<()> {
    let s = &a.settings;
    let event_types = s.event_types.as_ref().map(to_json).transpose()?;
    let params: [&(dyn ToSql + Sync); 16] = [
        &a.id,
        &s.name,
        &s.processor_id,
        &s.webhook_url,
        &to_json(&s.webhook_headers)?,
        &s.need_validation,
        &s.default_language,
        &s.enabled,
        &event_types,
        &a.secret,
        &a.previous_secret,
        &a.previous_secret_until.map(UnixMs::as_ms),
        &a.created_at.as_ms(),
        &a.updated_at.as_ms(),
        &s.ordering.as_str(),
        &rate(s),
    ];
    // One statement (one transaction without the caller's): the notification goes out at
    // the insert's commit, and only then (see `pg::listen`).
    c.execute(
        "WITH i AS (INSERT INTO automations (id, name, processor_id, webhook_url, \
         webhook_headers, need_validation, default_language, enabled, event_types, secret, \
         previous_secret, previous_secret_until, created_at, updated_at, ordering, \
         rate_limit_per_sec) \
         VALUES ($1, $2, $3, $4, $5::text::json, $6, $7, $8, $9::text::json, $10, $11, $12, \
         $13, $14, $15, $16) RETURNING 1) \
         SELECT pg_notify('hookrelay_automations', '') FROM i",
        &params,
    )
    .await
    .at(pg)?;
    Ok(())
}

/// Reads one automation.
pub(crate) async fn get(
    pg: &Pg,
    c: &impl Cached,
    id: &AutomationId,
) -> StoreResult<Option<Automation>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM automations WHERE id = $1"))
        .await
        .at(pg)?;
    let row = c.query_opt(&stmt, &[id]).await.at(pg)?;
    row.as_ref().map(from_row).transpose()
}

/// Replaces the user-settable fields (see `store::automations::update`), in the caller's
/// transaction: the automation's row is locked first, so concurrent updates from several
/// instances apply one after the other, each to its FIFO line.
pub(crate) async fn update(
    pg: &Pg,
    c: &impl Cached,
    id: &AutomationId,
    settings: &AutomationSettings,
    now: UnixMs,
) -> StoreResult<Automation> {
    let was = c
        .query_opt("SELECT ordering FROM automations WHERE id = $1 FOR UPDATE", &[id])
        .await
        .at(pg)?
        .ok_or(StoreError::NotFound("automation"))?;
    let was = DeliveryOrder::parse(was.get::<_, &str>(0));
    let event_types = settings.event_types.as_ref().map(to_json).transpose()?;
    let params: [&(dyn ToSql + Sync); 12] = [
        id,
        &settings.name,
        &settings.processor_id,
        &settings.webhook_url,
        &to_json(&settings.webhook_headers)?,
        &settings.need_validation,
        &settings.default_language,
        &settings.enabled,
        &event_types,
        &now.as_ms(),
        &settings.ordering.as_str(),
        &rate(settings),
    ];
    c.execute(
        "UPDATE automations SET name = $2, processor_id = $3, webhook_url = $4, \
         webhook_headers = $5::text::json, need_validation = $6, default_language = $7, \
         enabled = $8, event_types = $9::text::json, updated_at = $10, ordering = $11, \
         rate_limit_per_sec = $12 WHERE id = $1",
        &params,
    )
    .await
    .at(pg)?;
    match settings.ordering {
        DeliveryOrder::Parallel => {
            // The whole line goes at once: the waiting ones are due now.
            c.execute(
                "UPDATE deliveries SET fifo = false, next_attempt_at = CASE WHEN \
                 next_attempt_at = $2 THEN $3 ELSE next_attempt_at END \
                 WHERE automation_id = $1 AND status = 'pending' AND fifo",
                &[id, &WAITING_AT.as_ms(), &now.as_ms()],
            )
            .await
            .at(pg)?;
        }
        DeliveryOrder::Fifo if was != Some(DeliveryOrder::Fifo) => line_up(pg, c, id).await?,
        DeliveryOrder::Fifo => {}
    }
    listen::automations_changed(pg, c).await?;
    get(pg, c, id).await?.ok_or(StoreError::NotFound("automation"))
}

/// `store::fifo::line_up` on PostgreSQL: the pending deliveries not in flight join the
/// line in id order; the first is the head unless the line has one.
async fn line_up(pg: &Pg, c: &impl Cached, id: &AutomationId) -> StoreResult<()> {
    let waiting = WAITING_AT.as_ms();
    c.execute(
        "WITH has_head AS (SELECT EXISTS (SELECT 1 FROM deliveries WHERE automation_id = $1 \
           AND status = 'pending' AND fifo AND next_attempt_at < $2) AS yes), \
         first AS (SELECT id FROM deliveries WHERE status = 'pending' \
           AND automation_id = $1 AND NOT fifo AND claimed <> 1 ORDER BY id LIMIT 1) \
         UPDATE deliveries d SET fifo = true, claimed = 0, claimed_by = NULL, \
           next_attempt_at = CASE WHEN NOT has_head.yes AND d.id = first.id \
             THEN d.next_attempt_at ELSE $2 END \
         FROM has_head, first \
         WHERE d.status = 'pending' AND d.automation_id = $1 AND NOT d.fifo AND d.claimed <> 1",
        &[id, &waiting],
    )
    .await
    .at(pg)?;
    Ok(())
}

/// Deletes an automation (see `store::automations::delete`), in the caller's transaction,
/// announcing the change at its commit.
pub(crate) async fn delete(
    pg: &Pg,
    c: &impl Cached,
    id: &AutomationId,
    now: UnixMs,
) -> StoreResult<()> {
    if c.execute("DELETE FROM automations WHERE id = $1", &[id]).await.at(pg)? == 0 {
        return Err(StoreError::NotFound("automation"));
    }
    c.execute(
        "UPDATE deliveries SET status = 'failed', claimed = 0, claimed_by = NULL, \
         updated_at = $2 WHERE automation_id = $1 AND status = 'pending' AND claimed <> 1",
        &[id, &now.as_ms()],
    )
    .await
    .at(pg)?;
    listen::automations_changed(pg, c).await
}

/// Makes `new_secret` current; the old one keeps signing until `previous_until`. The change
/// is announced at its commit (one statement).
pub(crate) async fn rotate_secret(
    pg: &Pg,
    c: &impl Cached,
    id: &AutomationId,
    new_secret: &str,
    previous_until: UnixMs,
    now: UnixMs,
) -> StoreResult<Automation> {
    let changed = c
        .execute(
            "WITH r AS (UPDATE automations SET previous_secret = secret, \
             previous_secret_until = $3, secret = $2, updated_at = $4 WHERE id = $1 \
             RETURNING 1) SELECT pg_notify('hookrelay_automations', '') FROM r",
            &[id, &new_secret, &previous_until.as_ms(), &now.as_ms()],
        )
        .await
        .at(pg)?;
    if changed == 0 {
        return Err(StoreError::NotFound("automation"));
    }
    get(pg, c, id).await?.ok_or(StoreError::NotFound("automation"))
}

/// Which of `ids` are automations that exist.
pub(crate) async fn existing(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    ids: &[AutomationId],
) -> StoreResult<Vec<AutomationId>> {
    let rows =
        c.query("SELECT id FROM automations WHERE id = ANY($1::bytea[])", &[&ids]).await.at(pg)?;
    rows.iter().map(|r| crate::store::column::Column::key(r, 0, "automations")).collect()
}

/// One page of automations.
pub(crate) async fn list(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    filter: &AutomationFilter,
    page: &PageRequest,
) -> StoreResult<Page<Automation>> {
    let conditions = crate::store::automations::conditions(filter);
    super::page::read_page(pg, c, "automations", COLUMNS, &conditions, page, from_row, |a| &a.id)
        .await
}
