//! Endpoint health: each dispatcher attempt's outcome moves its automation's run of
//! successes and failures (`automation_health`), in the write that records the attempt, and
//! with it come what that outcome causes: the per-message operational webhooks
//! (`message.attempt.failing`, `…exhausted`, `…recovered`) and the automatic disable of an
//! automation whose every attempt has failed for `operational.disable_after_hours`. One write,
//! so a crash can neither lose nor repeat any of them.
//!
//! Only attempts actually sent count: one not sent (the automation disabled, the payload
//! gone) says nothing of the endpoint. Reruns and test calls are an operator's and do not
//! count either; the counts per status class of [`Store::endpoint_health`] are of every call.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::deliveries::Outcome;
use super::operational::{self, Operations};
use super::{automation_events, health_windows};
use super::{pg, Backend, DeliveryStatus, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, LogId};
use crate::time::UnixMs;

/// How stale an automation's `last_success_at` may be while it keeps succeeding: a success
/// that ends no run of failures moves it only once it is this old, so an automation
/// delivering thousands of messages a second costs one health write a second, not one per
/// delivery (as API keys note their last use to the minute). A first success, and any success
/// after a failure, is written at once: the failure counts and the disable clock never lag.
pub(super) const LAST_SUCCESS_RESOLUTION_MS: i64 = 1_000;

/// What recording an attempt's outcome caused beside it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Caused {
    /// Operational webhooks were queued (the dispatcher is to be woken).
    pub queued: bool,
    /// The automation was disabled (the automation cache must be cleared).
    pub disabled: bool,
}

/// Moves the health of `outcome`'s automation on, and queues or does what it causes (see the
/// module doc). `log_id` is the attempt's log.
pub(super) fn after_attempt(
    conn: &Connection,
    ops: &Operations,
    outcome: &Outcome,
    log_id: &LogId,
) -> StoreResult<Caused> {
    let mut caused = Caused::default();
    if !outcome.called {
        return Ok(caused);
    }
    let log = &outcome.log;
    let id = &log.automation_id;
    let now = log.response_at;
    let ok = log.error_code.is_none();
    // The row is made only for an automation that exists (one deleted while its call was in
    // flight has none, and its foreign key would fail the whole group commit). A success
    // writes only what it changes: a run of failures it ends, or `last_success_at` once it is
    // [`LAST_SUCCESS_RESOLUTION_MS`] old (see there).
    let failing_since: Option<UnixMs> = if ok {
        conn.prepare_cached(
            "INSERT INTO automation_health (automation_id, last_success_at) \
             SELECT id, ?2 FROM automations WHERE id = ?1 \
             ON CONFLICT (automation_id) DO UPDATE SET last_success_at = ?2, \
             consecutive_failures = 0, failing_since = NULL \
             WHERE consecutive_failures > 0 OR failing_since IS NOT NULL \
             OR last_success_at IS NULL OR last_success_at <= ?2 - ?3",
        )?
        .execute(params![id, now, LAST_SUCCESS_RESOLUTION_MS])?;
        None
    } else {
        conn.prepare_cached(
            "INSERT INTO automation_health (automation_id, last_failure_at, consecutive_failures, \
             failing_since) SELECT id, ?2, 1, ?2 FROM automations WHERE id = ?1 \
             ON CONFLICT (automation_id) DO UPDATE SET last_failure_at = ?2, \
             consecutive_failures = consecutive_failures + 1, \
             failing_since = coalesce(failing_since, ?2) RETURNING failing_since",
        )?
        .query_row(params![id, now], |r| r.get(0))
        .optional()?
    };
    for (event, data) in attempt_events(ops, outcome, log_id) {
        caused.queued |= operational::emit(conn, ops, event, data, now)?;
    }
    // The operational automation is never disabled for failing: while it were, the events
    // of the outage (its own receiver's, or any other) would not even be queued.
    if let (Some(limit), Some(since)) = (ops.disable_after_ms, failing_since) {
        if now.since(since) >= limit && !ops.is_operational(id) {
            let (disabled, queued) = automation_events::disable_failing(conn, ops, id, since, now)?;
            caused.disabled = disabled;
            caused.queued |= queued;
        }
    }
    Ok(caused)
}

/// The per-message operational webhooks `outcome` (an attempt actually made, logged as
/// `log_id`) causes: `message.attempt.failing` at attempt `failing_after_attempts`,
/// `…exhausted`, `…recovered` after a failing run; none about the operational automation.
pub(super) fn attempt_events(
    ops: &Operations,
    outcome: &Outcome,
    log_id: &LogId,
) -> Vec<(&'static str, Value)> {
    let log = &outcome.log;
    let id = &log.automation_id;
    if !outcome.called || ops.is_operational(id) {
        return Vec::new();
    }
    let ok = log.error_code.is_none();
    let n = ops.failing_after_attempts;
    let mut events = Vec::new();
    if !ok && n > 0 && log.attempt == n {
        events.push("message.attempt.failing");
    }
    if outcome.status == DeliveryStatus::Exhausted {
        events.push("message.attempt.exhausted");
    }
    if ok && n > 0 && log.attempt > n {
        events.push("message.attempt.recovered");
    }
    let data = json!({
        "appId": log.processor_id,
        "endpointId": id,
        "msgId": log.message_id,
        "deliveryId": outcome.delivery_id,
        "lastAttempt": {
            "id": log_id,
            "attempt": log.attempt,
            "timestamp": log.response_at.rfc3339(),
            "responseStatusCode": log.status_code,
            "errorCode": log.error_code.map(|c| c.as_str()),
        },
    });
    events.into_iter().map(|e| (e, data.clone())).collect()
}

/// An automation's calls over one window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthWindow {
    /// The window, in hours back from now.
    pub hours: u32,
    /// Calls made.
    pub total: i64,
    /// Calls that succeeded (a 2xx answer, whole).
    pub succeeded: i64,
    /// Calls that failed.
    pub failed: i64,
    /// `succeeded / total`; `None` without a call.
    pub success_ratio: Option<f64>,
    /// Calls by status class: `no_response`, `1xx` … `5xx` (each present, 0 or more).
    pub status_classes: BTreeMap<&'static str, i64>,
}

/// What `GET …/endpoints/{id}/health` shows.
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    /// The automation.
    pub automation_id: AutomationId,
    /// Whether it is enabled now.
    pub enabled: bool,
    /// Why it was disabled, while it is.
    pub disabled_reason: Option<String>,
    /// Its last successful attempt.
    pub last_success_at: Option<UnixMs>,
    /// Its last failed attempt.
    pub last_failure_at: Option<UnixMs>,
    /// Failed attempts since its last success.
    pub consecutive_failures: i64,
    /// The first failure since its last success (or since it was last enabled).
    pub failing_since: Option<UnixMs>,
    /// The last hour and the last 24 hours.
    pub windows: Vec<HealthWindow>,
}

impl Store {
    /// The health of automation `id` now: its run of attempts and its calls of the last hour
    /// and day.
    pub async fn endpoint_health(&self, id: AutomationId) -> StoreResult<EndpointHealth> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::health_reads::endpoint_health(p, id, UnixMs::now()).await
            }
        };
        db.read(move |c| {
            let enabled: bool = c
                .prepare_cached("SELECT enabled FROM automations WHERE id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::NotFound("automation"))?;
            type Row = (Option<String>, Option<UnixMs>, Option<UnixMs>, i64, Option<UnixMs>);
            let row: Option<Row> = c
                .prepare_cached(
                    "SELECT disabled_reason, last_success_at, last_failure_at, \
                     consecutive_failures, failing_since FROM automation_health \
                     WHERE automation_id = ?1",
                )?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()?;
            let (disabled_reason, last_success_at, last_failure_at, consecutive_failures, since) =
                row.unwrap_or_default();
            Ok(EndpointHealth {
                windows: health_windows::windows(c, &id, UnixMs::now())?,
                automation_id: id,
                enabled,
                disabled_reason: disabled_reason.filter(|_| !enabled),
                last_success_at,
                last_failure_at,
                consecutive_failures,
                failing_since: since,
            })
        })
        .await
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
