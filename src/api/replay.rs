//! `POST /v1/processors/automations/endpoints/{id}/replay-missing` and
//! `GET …/replay-missing/{job_id}`: give an automation the deliveries it never got (messages
//! posted to its processor before it existed, while it was disabled, or of an event type it
//! did not subscribe to then), as a background job with progress, like recover.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::automations::automation_id;
use super::extract::{path_id, JsonBody, NoQuery};
use super::recover_window::window;
use super::{ApiError, ApiResult, AppState};
use crate::delivery::recover;
use crate::store::{BackgroundJob, ReplayJob};
use crate::time::UnixMs;

/// The window of messages to look at, by when they were accepted; `until` defaults to now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    /// An RFC 3339 time, Unix seconds, or a duration back from now (`90s`, `30m`, `1h`,
    /// `2d`): not before 2000, not in the future.
    #[schema(min_length = 1)]
    since: String,
    /// As `since`, and after it; absent: now.
    until: Option<String>,
}

fn job_json(job: &ReplayJob) -> Value {
    json!({
        "object": "replay_job",
        "id": job.id,
        "status": job.status(),
        "automation_id": job.automation_id,
        "since": job.since.rfc3339(),
        "until": job.until.rfc3339(),
        "scanned_through": job.scanned_through.rfc3339(),
        "capped": job.capped,
        "created": job.created,
        "done": job.done,
        "failed": job.failed,
        "pending": job.pending,
        "ended": job.ended,
        "created_at": job.created_at.rfc3339(),
    })
}

/// 202 with the job; 404 for an unknown automation, 409 for a disabled one (enable it
/// first: a replayed delivery to a disabled automation would only fail).
pub(super) async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    JsonBody(body): JsonBody<ReplayBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = automation_id(id)?;
    super::automation_health::refuse_operational(&state, &id, "replayed to")?;
    let (since, until) = window(&body.since, body.until.as_deref(), UnixMs::now())?;
    let cap = i64::from(state.config.delivery.recover_max_deliveries);
    let job = state.store.create_replay_job(id, since, until, cap).await?;
    let runner = BackgroundJob::Replay(job.id.clone());
    recover::spawn(state.store.clone(), state.dispatcher.clone(), runner);
    Ok((StatusCode::ACCEPTED, Json(job_json(&job))))
}

pub(super) async fn show(
    State(state): State<AppState>,
    _: NoQuery,
    Path((id, job_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = automation_id(id)?;
    let job = state.store.replay_job(path_id(job_id, "replay job")?).await?;
    if job.automation_id != id {
        return Err(ApiError::not_found("replay job"));
    }
    Ok(Json(job_json(&job)))
}
