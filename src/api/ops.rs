//! Operations routes, open without a key: `/healthz`, `/readyz`, `/metrics` (whose series
//! naming automations only a scrape with an API key gets).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::time::UnixMs;

/// The process is up.
pub(super) async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready to work: the database answers, no write was refused for want of storage in the
/// last few seconds (a full disk, a lock held by another process), and the dispatcher runs.
pub(super) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.ping().await;
    let writable = !state.store.writes_failing();
    let dispatcher = state.dispatcher.is_running();
    let ready = database && writable && dispatcher;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": database,
            "writable": writable,
            "dispatcher": dispatcher,
        })),
    )
}

/// Prometheus text exposition; queue gauges are read from the database at scrape time, and
/// deleted automations' series dropped. Open to all, but the series naming automations only
/// to a scrape with a valid API key of any role (`Authorization: Bearer …` or `Api-Key`):
/// a viewer reads everything but secrets.
pub(super) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let keyed = super::access::authenticate(&state, &headers).is_ok();
    if let Ok((pending, due)) = state.store.backlog().await {
        state.metrics.queue_depth.set(pending);
        state.metrics.due_backlog.set(due);
    }
    if let Ok(oldest) = state.store.oldest_due_at().await {
        let age_ms = oldest.map_or(0, |at| UnixMs::now().since(at).max(0));
        state.metrics.oldest_due_age.set(age_ms as f64 / 1000.0);
    }
    let tracked = state.metrics.automation_attempts.tracked();
    if !tracked.is_empty() {
        if let Ok(existing) = state.store.existing_automations(tracked.clone()).await {
            state.metrics.automation_attempts.retain(&existing, &tracked);
        }
    }
    state.metrics.store_rollbacks.set(i64::try_from(state.store.rollbacks()).unwrap_or(i64::MAX));
    state
        .metrics
        .lane_backlog
        .set(i64::try_from(state.dispatcher.lane_backlog()).unwrap_or(i64::MAX));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(keyed),
    )
}
