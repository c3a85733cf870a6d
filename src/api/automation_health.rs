//! `/v1/processors/automations/endpoints/{id}/health` and `…/events`: how an automation's
//! calls are going, and the trail of its enables and disables (who, why, when); and how the
//! API shows and guards the operational automation.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::automations::automation_id;
use super::extract::{list_body, ApiQuery, NoQuery, PageParams, QueryParams};
use super::{ApiError, ApiResult, AppState};
use crate::ids::{AutomationEvent as EventKind, AutomationId, IdKind};
use crate::store::{Automation, AutomationEvent, EndpointHealth};
use crate::time::UnixMs;

/// [`automation_json`] with `operational`: whether it is the relay's own automation for
/// `[operational] webhook_url`.
pub(super) fn shown(state: &AppState, a: &Automation) -> Value {
    let mut body = super::automations::automation_json(a, &state.config.security.redact_headers);
    body["operational"] = state.store.operations().is_operational(&a.id).into();
    body
}

/// 403 for a change the operational automation does not take: it is set by `[operational]`
/// in the config, and an edit, a rotation or a delete through the API would be undone or
/// break it. Enabling and disabling it are allowed.
pub(super) fn refuse_operational(state: &AppState, id: &AutomationId, what: &str) -> ApiResult<()> {
    if state.store.operations().is_operational(id) {
        return Err(ApiError::forbidden(format!(
            "automation {id} is the relay's operational automation, set by [operational] in \
             the configuration: it cannot be {what} through the API (only enabled or disabled)"
        )));
    }
    Ok(())
}

fn health_json(h: &EndpointHealth) -> Value {
    json!({
        "object": "automation.health",
        "automation_id": h.automation_id,
        "enabled": h.enabled,
        "disabled_reason": h.disabled_reason,
        "last_success_at": h.last_success_at.map(UnixMs::rfc3339),
        "last_failure_at": h.last_failure_at.map(UnixMs::rfc3339),
        "consecutive_failures": h.consecutive_failures,
        "failing_since": h.failing_since.map(UnixMs::rfc3339),
        "windows": h.windows,
    })
}

fn event_json(e: &AutomationEvent) -> Value {
    json!({
        "object": "automation.event",
        "id": e.id,
        "automation_id": e.automation_id,
        "kind": e.kind,
        "actor": e.actor,
        "reason": e.reason,
        "at": e.at.rfc3339(),
    })
}

/// The automation's health (404 for an unknown automation).
pub(super) async fn health(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let health = state.store.endpoint_health(automation_id(id)?).await?;
    Ok(Json(health_json(&health)))
}

#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    #[serde(flatten)]
    page: PageParams,
}

impl QueryParams for EventsQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[PageParams::NAMES];
}

/// One page of the automation's enable/disable trail, newest first by default. A deleted
/// automation keeps its trail; an id that never was one has an empty trail.
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let id = automation_id(id)?;
    let page = q.page.to_request(EventKind::PREFIX, state.config.limits.max_list_limit)?;
    let page = state.store.automation_events(id, page).await?;
    let items = page.items.iter().map(event_json).collect();
    Ok(Json(list_body(items, page.before, page.after)))
}
