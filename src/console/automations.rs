//! The automations page: each automation with the outcome of its last call (one indexed
//! read per automation), its health over 24 hours (from the per-minute rollup), a link to its logs, and the operator's Enable / Disable and "Send a
//! test call" buttons, through the API's own services
//! ([`crate::api::automations::switch`], [`crate::api::test_call::send_test_call`]); the
//! admin's New, Edit and "Rotate secret" are in [`super::automation_forms`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::session::{action_refusal, Signed};
use super::Console;
use crate::api::access::authorize;
use crate::api::automations::switch;
use crate::api::test_call::send_test_call;
use crate::api::ApiError;
use crate::ids;
use crate::store::{Automation, AutomationFilter, LogFilter, PageRequest};
use crate::time::UnixMs;

/// Automations per page.
const PAGE_SIZE: u32 = 50;

/// The last log of `automation`, newest first by the `logs_automation (automation_id, id)`
/// index: one row read, however many logs it has.
async fn last_call(console: &Console, automation: &Automation) -> anyhow::Result<Value> {
    let filter = LogFilter { automation_id: Some(automation.id.to_string()), ..Default::default() };
    let newest = PageRequest { before: None, after: None, limit: 1, desc: true };
    let page = console.app.store.list_logs(filter, newest).await?;
    Ok(match page.items.first() {
        Some(r) => json!({
            "id": r.id,
            "at": r.recorded_at().rfc3339(),
            "status_code": r.log.status_code,
            "error_code": r.log.error_code.map(|c| c.as_str()),
        }),
        None => Value::Null,
    })
}

/// The `after` cursor in the URL, if valid (an invalid one is a 400 page).
fn cursor(uri: &Uri) -> Result<Option<String>, ApiError> {
    let query = uri.query().unwrap_or("").as_bytes();
    let Some((_, after)) = url::form_urlencoded::parse(query).find(|(k, _)| k == "after") else {
        return Ok(None);
    };
    if !ids::is_valid(ids::AUTOMATION, &after) {
        return Err(ApiError::invalid("after", format!("`{after}` is not an automation id")));
    }
    Ok(Some(after.into_owned()))
}

/// The list, newest first, each automation with its last call.
pub(super) async fn list(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let after = match cursor(&uri) {
        Ok(after) => after,
        Err(e) => return console.pages.error(e.status(), &e.message),
    };
    let request = PageRequest { before: None, after, limit: PAGE_SIZE, desc: true };
    let page = match console.app.store.list_automations(AutomationFilter::default(), request).await
    {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let ids = page.items.iter().map(|a| a.id.clone()).collect();
    let health = match console.app.store.automation_health(ids, UnixMs::now()).await {
        Ok(health) => health,
        Err(e) => return console.failed(e),
    };
    let mut rows = Vec::with_capacity(page.items.len());
    for a in &page.items {
        let health = health.get(&a.id).map(|h| {
            json!({
                "calls": h.succeeded + h.failed,
                "failed": h.failed,
                "ratio": super::overview::ratio(h.succeeded, h.failed),
                "last_error_code": h.last_error_code,
            })
        });
        let last = match last_call(&console, a).await {
            Ok(last) => last,
            Err(e) => return console.failed(e),
        };
        rows.push(json!({
            "id": a.id,
            "name": a.settings.name,
            "processor_id": a.settings.processor_id,
            "webhook_url": a.settings.webhook_url,
            "enabled": a.settings.enabled,
            "last": last,
            "health": health,
        }));
    }
    let role = signed.principal.role;
    let context = json!({
        "session": signed.context(),
        "automations": rows,
        "may_switch": authorize(role, console.enable_role).is_ok()
            && authorize(role, console.disable_role).is_ok(),
        "may_test": authorize(role, console.test_role).is_ok(),
        "may_create": authorize(role, console.create_role).is_ok(),
        "may_edit": authorize(role, console.edit_role).is_ok(),
        "may_rotate": authorize(role, console.rotate_role).is_ok(),
        "older": page.after.map(|id| format!("/console/automations?after={id}")),
    });
    console.pages.render(StatusCode::OK, "automations.html", &context)
}

/// The error page of a refused action; an unknown automation is the console's 404.
pub(super) fn action_error(console: &Console, e: &ApiError) -> Response {
    let message = if e.status() == StatusCode::NOT_FOUND {
        "There is no automation with this id."
    } else {
        e.message.as_str()
    };
    console.pages.error(e.status(), message)
}

/// Enables (`ON`) or disables the automation as the API's enable/disable does, then shows
/// the list again.
pub(super) async fn set_enabled<const ON: bool>(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = if ON { console.enable_role } else { console.disable_role };
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, role) {
        return refused;
    }
    match switch(&console.app, id, ON, &signed.principal).await {
        Ok(_) => Redirect::to("/console/automations").into_response(),
        Err(e) => action_error(&console, &e),
    }
}

/// Sends the API's sample test call and shows the log it produced.
pub(super) async fn test_call(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.test_role) {
        return refused;
    }
    match send_test_call(&console.app, id).await {
        Ok(record) => Redirect::to(&format!("/console/logs/{}", record.id)).into_response(),
        Err(e) => action_error(&console, &e),
    }
}
