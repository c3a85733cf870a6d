//! `POST /v1/processors/automations/logs/recover`, `GET …/recover` and
//! `GET …/recover/{job_id}`: re-queue every delivery that ended failed or exhausted in a
//! window, as a background job; list the jobs; follow one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{list_body, path_id, ApiQuery, JsonBody, NoQuery, PageParams};
use super::recover_window::window;
use super::{ApiError, ApiResult, AppState};
use crate::delivery::recover;
use crate::ids::{self, AutomationId};
use crate::store::{BackgroundJob, RecoverJob, StillRetrying};
use crate::time::UnixMs;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecoverBody {
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
        "since": job.since.rfc3339(),
        "until": job.until.rfc3339(),
        "automation_id": job.automation_id,
        "created_at": job.created_at.rfc3339(),
    })
}

/// The job, with the deliveries of its window that still retry: recover takes only
/// deliveries that have ended, so these explain a job that matched less than expected.
/// `retrying_until` is the latest any of them can still be tried (created + the maximum
/// age); each has ended by then, succeeded or recoverable.
async fn answer(state: &AppState, job: RecoverJob) -> ApiResult<Json<Value>> {
    let retrying = state.store.still_retrying(job.clone()).await?;
    let max_age_ms =
        i64::try_from(state.config.delivery.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let retrying_until = retrying.newest_created_at.map(|at| at.plus_ms(max_age_ms));
    let mut body = job_json(&job);
    body["still_retrying"] = retrying.count.into();
    body["next_retry_at"] = retrying.next_attempt_at.map(UnixMs::rfc3339).into();
    body["retrying_until"] = retrying_until.map(UnixMs::rfc3339).into();
    body["note"] = note(&job, &retrying, retrying_until).into();
    Ok(Json(body))
}

fn note(job: &RecoverJob, retrying: &StillRetrying, until: Option<UnixMs>) -> Option<String> {
    let n = retrying.count;
    if n == 0 {
        return (job.total == 0).then(|| {
            "no delivery ended failed or exhausted in this window, and none of it is still \
             retrying: there is nothing to recover"
                .to_string()
        });
    }
    let when = |at: Option<UnixMs>| at.map(UnixMs::rfc3339).unwrap_or_default();
    Some(format!(
        "{n} {} of this window {} still retrying (next attempt at {}, the last by {} at the \
         latest){}; recover takes only deliveries that have ended failed or exhausted: once \
         they have, recover a window that includes their end",
        if n == 1 { "delivery" } else { "deliveries" },
        if n == 1 { "is" } else { "are" },
        when(retrying.next_attempt_at),
        when(until),
        if job.total == 0 { ", so this job matched nothing" } else { "" },
    ))
}

pub(super) async fn create(
    State(state): State<AppState>,
    _: NoQuery,
    JsonBody(body): JsonBody<RecoverBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (since, until) = window(&body.since, body.until.as_deref(), UnixMs::now())?;
    let automation_id = body
        .automation_id
        .map(AutomationId::try_from)
        .transpose()
        .map_err(|_| ApiError::invalid("automation_id", "not an automation id"))?;
    let cap = i64::from(state.config.delivery.recover_max_deliveries);
    let job = state.store.create_recover_job(since, until, automation_id, cap).await?;
    let runner = BackgroundJob::Recover(job.id.clone());
    recover::spawn(state.store.clone(), state.dispatcher.clone(), runner);
    Ok((StatusCode::ACCEPTED, answer(&state, job).await?))
}

/// Recover jobs, newest first by default, with their progress (without the still-retrying
/// part, which costs a scan of the pending deliveries per job: see `show`).
pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = page.to_request(ids::RECOVER_JOB, state.config.limits.max_list_limit)?;
    let page = state.store.list_recover_jobs(page).await?;
    Ok(Json(list_body(page.items.iter().map(job_json).collect(), page.before, page.after)))
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    answer(&state, state.store.recover_job(path_id(job_id, "recover job")?).await?).await
}
