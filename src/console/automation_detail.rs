//! An automation's page: its settings, its health (the run of attempts, the calls of the
//! last hour and day, why it is disabled) and the trail of its enables and disables, read
//! through the same store calls as `GET …/endpoints/{id}/health` and `…/events`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::session::Signed;
use super::Console;
use crate::ids::AutomationId;
use crate::store::{EndpointHealth, PageRequest, StoreError};
use crate::time::UnixMs;

/// Trail rows shown (newest first); the API pages through the rest.
const TRAIL_ROWS: u32 = 50;

fn health_context(h: &EndpointHealth) -> Value {
    let windows: Vec<Value> = h
        .windows
        .iter()
        .map(|w| {
            json!({
                "hours": w.hours,
                "total": w.total,
                "failed": w.failed,
                "ratio": super::overview::ratio(w.succeeded, w.failed),
                "classes": w.status_classes.iter().map(|(c, n)| json!({"class": c, "calls": n})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "disabled_reason": h.disabled_reason,
        "last_success_at": h.last_success_at.map(UnixMs::rfc3339),
        "last_failure_at": h.last_failure_at.map(UnixMs::rfc3339),
        "consecutive_failures": h.consecutive_failures,
        "failing_since": h.failing_since.map(UnixMs::rfc3339),
        "windows": windows,
    })
}

/// The page; an unknown automation is the console's 404 page.
pub(super) async fn show(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    let not_found =
        || console.pages.error(StatusCode::NOT_FOUND, "There is no automation with this id.");
    let Ok(id) = AutomationId::parse(&id) else { return not_found() };
    let store = &console.app.store;
    let automation = match store.automation(id.clone()).await {
        Ok(a) => a,
        Err(StoreError::NotFound(_)) => return not_found(),
        Err(e) => return console.failed(e),
    };
    let health = match store.endpoint_health(id.clone()).await {
        Ok(h) => h,
        Err(e) => return console.failed(e),
    };
    let newest = PageRequest { before: None, after: None, limit: TRAIL_ROWS, desc: true };
    let trail = match store.automation_events(id.clone(), newest).await {
        Ok(page) => page.items,
        Err(e) => return console.failed(e),
    };
    let trail: Vec<Value> = trail
        .iter()
        .map(
            |e| json!({"kind": e.kind, "actor": e.actor, "reason": e.reason, "at": e.at.rfc3339()}),
        )
        .collect();
    let context = json!({
        "session": signed.context(),
        "automation": {
            "id": automation.id,
            "name": automation.settings.name,
            "processor_id": automation.settings.processor_id,
            "webhook_url": automation.settings.webhook_url,
            "enabled": automation.settings.enabled,
            "operational": store.operations().is_operational(&automation.id),
        },
        "health": health_context(&health),
        "trail": trail,
    });
    console.pages.render(StatusCode::OK, "automation.html", &context)
}
