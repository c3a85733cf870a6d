//! Unauthenticated operations routes: `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready to work: the database answers, no write was refused for want of storage in the
/// last few seconds (a full disk, a lock held by another process), and the dispatcher runs.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
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

/// Prometheus text exposition; queue gauges are read from the database at scrape time.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok((pending, due)) = state.store.backlog().await {
        state.metrics.queue_depth.set(pending);
        state.metrics.due_backlog.set(due);
    }
    state.metrics.store_rollbacks.set(i64::try_from(state.store.rollbacks()).unwrap_or(i64::MAX));
    state
        .metrics
        .lane_backlog
        .set(i64::try_from(state.dispatcher.lane_backlog()).unwrap_or(i64::MAX));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
