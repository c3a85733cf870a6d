//! `POST /v1/processors/automations/logs/recover` and `GET …/recover/{job_id}`: re-queue
//! every delivery that ended failed or exhausted in a window, as a background job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{JsonBody, NoQuery};
use super::{ApiError, ApiResult, AppState};
use crate::delivery::recover;
use crate::ids;
use crate::store::RecoverJob;
use crate::time::{now_ms, parse_time, rfc3339};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/processors/automations/logs/recover", post(create))
        .route("/processors/automations/logs/recover/{job_id}", get(show))
}

#[derive(Debug, Deserialize)]
struct RecoverBody {
    since: String,
    until: Option<String>,
    automation_id: Option<String>,
}

fn job_json(job: &RecoverJob) -> Value {
    json!({
        "object": "recover_job",
        "id": job.id,
        "status": job.status(),
        "total": job.total,
        "requeued": job.requeued,
        "done": job.done,
        "failed": job.failed,
        "pending": job.pending,
        "capped": job.capped,
        "since": rfc3339(job.since),
        "until": rfc3339(job.until),
        "automation_id": job.automation_id,
        "created_at": rfc3339(job.created_at),
    })
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RecoverBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let since = parse_time(&body.since)
        .ok_or_else(|| ApiError::invalid("since", "not an RFC 3339 time or Unix seconds"))?;
    let until = match &body.until {
        Some(u) => parse_time(u)
            .ok_or_else(|| ApiError::invalid("until", "not an RFC 3339 time or Unix seconds"))?,
        None => now_ms() + 1,
    };
    if until <= since {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    if let Some(a) = &body.automation_id {
        if !ids::is_valid(ids::AUTOMATION, a) {
            return Err(ApiError::invalid("automation_id", "not an automation id"));
        }
    }
    let cap = i64::from(state.config.delivery.recover_max_deliveries);
    let job = state.store.create_recover_job(since, until, body.automation_id, cap).await?;
    recover::spawn(state.store.clone(), state.dispatcher.clone(), job.id.clone());
    Ok((StatusCode::ACCEPTED, Json(job_json(&job))))
}

async fn show(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    if !ids::is_valid(ids::RECOVER_JOB, &job_id) {
        return Err(ApiError::not_found("recover job"));
    }
    Ok(Json(job_json(&state.store.recover_job(job_id).await?)))
}
