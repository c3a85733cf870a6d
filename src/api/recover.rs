//! `POST /v1/processors/automations/logs/recover`, `GET …/recover`,
//! `GET …/recover/{job_id}` and `POST …/recover/{job_id}/cancel`: re-queue every delivery
//! that ended failed or exhausted in a window (and whose last attempt passes the logs
//! filters given), as a background job, or only count them (`dry_run`); list the jobs;
//! follow one; cancel one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{list_body, path_id, ApiQuery, JsonBody, NoBody, NoQuery, PageParams};
use super::logs::{parse_class, parse_error_code, parse_event_type, parse_status_code};
use super::recover_window::window;
use super::stored_text::refuse_nul_in;
use super::{ApiError, ApiErrorCode, ApiResult, AppState};
use crate::delivery::recover;
use crate::ids::{self, AutomationId};
use crate::store::{BackgroundJob, CancelOutcome, RecoverFilter, RecoverJob, StillRetrying};
use crate::time::UnixMs;

/// A recover request: the window and the logs filters, as the API's body and the console's
/// bulk retry form give them (both read by [`start`], so both mean the same).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "A recover job: the window (`since` required, RFC 3339) and the logs \
    list's filters. Any other field is refused.")]
pub(crate) struct RecoverBody {
    /// An RFC 3339 time, Unix seconds, or a duration back from now (`90s`, `30m`, `1h`,
    /// `2d`): not before 2000, not in the future.
    #[schema(min_length = 1)]
    pub(crate) since: String,
    pub(crate) until: Option<String>,
    pub(crate) automation_id: Option<String>,
    /// A number or its digits, as in the logs list's query.
    #[schema(value_type = Option<i64>)]
    pub(crate) status_code: Option<Value>,
    pub(crate) status_class: Option<String>,
    pub(crate) error_code: Option<String>,
    pub(crate) event_type: Option<String>,
    #[serde(default)]
    pub(crate) dry_run: bool,
}

/// The body's filters, read by the logs list's parsers so that each means what it means
/// there (and is refused with the same 400).
fn filter(body: &RecoverBody) -> ApiResult<RecoverFilter> {
    // A recover job stores its filters.
    refuse_nul_in("event_type", body.event_type.as_deref())?;
    let status_code = match &body.status_code {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => parse_status_code(Some(&n.to_string()))?,
        Some(Value::String(s)) => parse_status_code(Some(s))?,
        Some(other) => {
            return Err(ApiError::invalid("status_code", format!("`{other}` is not a number")))
        }
    };
    Ok(RecoverFilter {
        automation_id: body
            .automation_id
            .clone()
            .map(AutomationId::try_from)
            .transpose()
            .map_err(|_| ApiError::invalid("automation_id", "not an automation id"))?,
        status_code,
        status_class: body.status_class.as_deref().map(parse_class).transpose()?,
        error_code: body.error_code.clone().map(parse_error_code).transpose()?,
        event_type: body.event_type.clone().map(parse_event_type).transpose()?,
    })
}

fn filter_json(filter: &RecoverFilter) -> Value {
    json!({
        "automation_id": filter.automation_id,
        "status_code": filter.status_code,
        "status_class": filter.status_class.map(|c| format!("{c}xx")),
        "error_code": filter.error_code.map(|c| c.as_str()),
        "event_type": filter.event_type,
    })
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
        "automation_id": job.filter.automation_id,
        "filters": filter_json(&job.filter),
        "created_at": job.created_at.rfc3339(),
        "cancelled_at": job.cancelled_at.map(UnixMs::rfc3339),
    })
}

/// The job, with the deliveries of its window that still retry: recover takes only
/// deliveries that have ended, so these explain a job that matched less than expected.
/// `retrying_until` is the latest any of them can still be tried (created + the maximum
/// age); each has ended by then, succeeded or recoverable.
async fn answer(state: &AppState, job: RecoverJob) -> ApiResult<Json<Value>> {
    let mut body = job_json(&job);
    add_still_retrying(state, &job, &mut body).await?;
    Ok(Json(body))
}

/// Adds to `body` the deliveries of `job`'s window that still retry, and the note on them.
async fn add_still_retrying(state: &AppState, job: &RecoverJob, body: &mut Value) -> ApiResult<()> {
    let retrying = state.store.still_retrying(job.clone()).await?;
    let max_age_ms =
        i64::try_from(state.config.delivery.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let retrying_until = retrying.newest_created_at.map(|at| at.plus_ms(max_age_ms));
    body["still_retrying"] = retrying.count.into();
    body["next_retry_at"] = retrying.next_attempt_at.map(UnixMs::rfc3339).into();
    body["retrying_until"] = retrying_until.map(UnixMs::rfc3339).into();
    body["note"] = note(job, &retrying, retrying_until).into();
    Ok(())
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

/// Creates the job (202), or with `dry_run` only counts what it would take (200), storing
/// nothing.
pub(super) async fn create(
    State(state): State<AppState>,
    _: NoQuery,
    JsonBody(body): JsonBody<RecoverBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (status, body) = start(&state, &body).await?;
    Ok((status, Json(body)))
}

/// What `POST …/recover` does with `body`, for the API and the console: validates the window
/// and filters (400 naming the field), then counts (`dry_run`, 200) or creates the job and
/// starts it (202). The answer's body as the API gives it.
pub(crate) async fn start(state: &AppState, body: &RecoverBody) -> ApiResult<(StatusCode, Value)> {
    let (since, until) = window(&body.since, body.until.as_deref(), UnixMs::now())?;
    let filter = filter(body)?;
    let cap = i64::from(state.config.delivery.recover_max_deliveries);
    if body.dry_run {
        return Ok((StatusCode::OK, dry_run(state, since, until, filter, cap).await?.0));
    }
    let job = state.store.create_recover_job(since, until, filter, cap).await?;
    let runner = BackgroundJob::Recover(job.id.clone());
    recover::spawn(state.store.clone(), state.dispatcher.clone(), runner);
    Ok((StatusCode::ACCEPTED, answer(state, job).await?.0))
}

/// What a job would take: its count and the still-retrying part, as the 202 gives them.
async fn dry_run(
    state: &AppState,
    since: UnixMs,
    until: UnixMs,
    filter: RecoverFilter,
    cap: i64,
) -> ApiResult<Json<Value>> {
    let (total, capped) = state.store.count_recoverable(since, until, filter.clone(), cap).await?;
    // An unstored job with that count, so the still-retrying part reads as a job's would.
    let job = RecoverJob {
        id: ids::RecoverJobId::new(),
        since,
        until,
        filter,
        total,
        capped,
        requeued: 0,
        done: 0,
        failed: 0,
        pending: 0,
        created_at: UnixMs::now(),
        cancelled_at: None,
    };
    let mut body = json!({
        "object": "recover_dry_run",
        "dry_run": true,
        "total": total,
        "capped": capped,
        "since": since.rfc3339(),
        "until": until.rfc3339(),
        "filters": filter_json(&job.filter),
    });
    add_still_retrying(state, &job, &mut body).await?;
    Ok(Json(body))
}

/// Stops a running job re-queuing (those it re-queued are still sent); 409 `job_ended`
/// when it has ended already.
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    cancel_job(&state, job_id).await.map(Json)
}

/// What `POST …/recover/{job_id}/cancel` does, for the API and the console: the cancelled
/// job, 404 for an unknown id, 409 `job_ended` when it has ended.
pub(crate) async fn cancel_job(state: &AppState, job_id: String) -> ApiResult<Value> {
    match state.store.cancel_recover_job(path_id(job_id, "recover job")?).await? {
        CancelOutcome::Cancelled(job) => Ok(job_json(&job)),
        CancelOutcome::Ended(job) => Err(ApiError::new(
            ApiErrorCode::JobEnded,
            format!(
                "recover job {} has ended ({}); there is nothing to cancel",
                job.id,
                job.status()
            ),
        )),
    }
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
    progress(&state, job_id).await.map(Json)
}

/// What `GET …/recover/{job_id}` answers, for the API and the console: the job's progress
/// and the still-retrying part of its window; 404 for an unknown id.
pub(crate) async fn progress(state: &AppState, job_id: String) -> ApiResult<Value> {
    Ok(answer(state, state.store.recover_job(path_id(job_id, "recover job")?).await?).await?.0)
}
