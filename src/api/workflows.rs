//! The Dify-compatible Workflow App API (`Authorization: Bearer app-…`; the key selects the
//! app): run (blocking, streaming, async), run detail, stop, logs, parameters.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{body_bytes, decode_object, ApiQuery, NoQuery, QueryParams};
use super::stored_text::{refuse_nul, refuse_nul_id};
use super::workflow_inputs::{validate_inputs, FileItem, RunInputs};
use super::{ApiError, ApiResult, AppState};
use crate::auth;
use crate::store::{RunFilter, RunRecord, RunStatus};
use crate::time::UnixMs;
use crate::workflow::app::AppDefinition;
use crate::workflow::events::{event_stream, EventReceiver};
use crate::workflow::runner::{finished_data, RunSpec};

/// The app selected by the request's key.
pub type App = Extension<Arc<AppDefinition>>;

/// 401 without a valid app key; 403 for an admin key (the wrong kind for this API).
pub(super) async fn require_app_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(key) = auth::presented_key(req.headers()) else {
        return ApiError::unauthorized(
            "Access token is missing: send `Authorization: Bearer app-…`",
        )
        .into_response();
    };
    match state.workflows.app_for_key(key) {
        Some(app) => {
            req.extensions_mut().insert(app);
            next.run(req).await
        }
        None if state.keys.authenticate(key, crate::time::UnixMs::now()).is_some() => {
            ApiError::forbidden(
                "an API key (of any role) cannot use the workflow app API; use the app's key",
            )
            .into_response()
        }
        None => ApiError::unauthorized("Access token is invalid").into_response(),
    }
}

/// A run's body; any other field is refused, so a misspelt one is not silently ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowRunBody)]
pub(super) struct RunBody {
    /// The app's inputs by name (each once), checked against its form.
    #[schema(required, nullable = false, value_type = Option<Object>)]
    inputs: Option<RunInputs>,
    /// `blocking` (the default), `streaming` or `async`.
    #[schema(value_type = Option<WorkflowResponseMode>)]
    response_mode: Option<String>,
    /// The end user running it: 1 to 256 bytes of UTF-8.
    #[schema(required, nullable = false, min_length = 1, max_length = 64)]
    user: Option<String>,
    #[serde(default)]
    files: Vec<FileItem>,
    /// Accepted and ignored: Dify's Workflow API documents a `trace_id` (for its tracing
    /// integrations, which the relay has none of), so Dify clients may send it.
    #[serde(rename = "trace_id")]
    #[schema(value_type = Option<String>)]
    _trace_id: Option<serde::de::IgnoredAny>,
}

/// How a run answers.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // Read by `utoipa::ToSchema` only; the handler matches the names.
pub(super) enum WorkflowResponseMode {
    Blocking,
    Streaming,
    Async,
}

/// A run's query: Dify also takes `trace_id` here, accepted and ignored as in the body.
#[derive(Debug, Deserialize)]
pub(super) struct RunQuery {}

impl QueryParams for RunQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[&["trace_id"]];
}

pub(super) async fn run(
    State(state): State<AppState>,
    Extension(app): App,
    headers: HeaderMap,
    _: ApiQuery<RunQuery>,
    req: Request,
) -> ApiResult<Response> {
    let idempotency_key = super::messages::idempotency_key(&headers)?;
    let bytes = body_bytes(req, &state).await?;
    let body: RunBody = decode_object(&bytes, state.config.limits.max_json_depth)?;
    let RunInputs(inputs) =
        body.inputs.ok_or_else(|| ApiError::invalid("inputs", "inputs is required"))?;
    let user = body
        .user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid("user", "user is required"))?;
    if user.len() > 256 {
        return Err(ApiError::invalid("user", "at most 256 characters"));
    }
    refuse_nul("user", &user)?;
    let mode = body.response_mode.unwrap_or_else(|| "blocking".into());
    if !matches!(mode.as_str(), "blocking" | "streaming" | "async") {
        return Err(ApiError::invalid("response_mode", "must be blocking, streaming or async"));
    }
    let mut inputs = validate_inputs(&app, inputs)?;
    let files = body.files.into_iter().map(FileItem::into_value).collect();
    let mut files = super::workflow_inputs::validate_files(&app, files)?;
    super::workflow_inputs::resolve_files(&state.store, &app, &mut files, &mut inputs).await?;
    // A client may fall at most a body's worth of events behind (see workflow::events).
    let max_queued = state.config.limits.max_body_bytes;
    let (sink, events) = if mode == "streaming" {
        let (tx, rx) = event_stream(max_queued);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let started =
        state.workflows.start(app.clone(), inputs, user, files, idempotency_key, sink).await?;
    if let Some(existing) = started.existing {
        // An idempotent replay: the run that key started, as it is now — in the shape the
        // client asked for (an event stream holds its workflow_finished, or where it stands).
        let body = blocking_body(&started.spec, &existing);
        if mode == "streaming" {
            let (tx, rx) = event_stream(max_queued);
            tx.send(&json!({"event": "workflow_finished", "task_id": body["task_id"],
                "workflow_run_id": body["workflow_run_id"], "data": body["data"]}));
            let ping = Duration::from_millis(state.config.workflow.ping_interval_ms);
            return Ok(sse(rx, ping).into_response());
        }
        return Ok(Json(body).into_response());
    }
    match (mode.as_str(), events, started.outcome) {
        ("streaming", Some(events), _) => {
            let ping = Duration::from_millis(state.config.workflow.ping_interval_ms);
            Ok(sse(events, ping).into_response())
        }
        ("async", _, _) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"workflow_run_id": started.spec.run_id, "task_id": started.spec.task_id})),
        )
            .into_response()),
        (_, _, Some(outcome)) => {
            let outcome = outcome
                .await
                .map_err(|_| ApiError::internal("the run task ended without an outcome"))?;
            Ok(Json(json!({
                "workflow_run_id": started.spec.run_id,
                "task_id": started.spec.task_id,
                "data": finished_data(&started.spec, &outcome),
            }))
            .into_response())
        }
        _ => Err(ApiError::internal("run started without an outcome channel")),
    }
}

fn blocking_body(spec: &RunSpec, run: &RunRecord) -> Value {
    json!({"workflow_run_id": spec.run_id, "task_id": spec.task_id, "data": {
        "id": run.id, "workflow_id": run.app_id, "status": run.status, "outputs": run.outputs, "error": run.error,
        "elapsed_time": run.elapsed_time, "total_tokens": run.total_tokens, "total_steps": run.total_steps,
        "created_at": run.created_at.as_secs(), "finished_at": run.finished_at.map(UnixMs::as_secs),
    }})
}

/// The event stream: every run event as `data: {json}`, `event: ping` every `ping`, and the
/// end of the response right after `workflow_finished` (or the `error` cutting off a client
/// that fell too far behind).
fn sse(events: EventReceiver, ping: Duration) -> impl IntoResponse {
    let stream = stream::unfold((events, false), |(mut events, finished)| async move {
        if finished {
            return None;
        }
        let frame = events.recv().await?;
        let event = Event::default().data(frame.json);
        Some((Ok::<Event, Infallible>(event), (events, frame.last)))
    });
    let body = Sse::new(stream);
    let keep_alive = KeepAlive::new().interval(ping).event(Event::default().event("ping"));
    (
        [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")],
        body.keep_alive(keep_alive),
    )
}

fn run_detail(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "workflow_id": run.app_id,
        "status": run.status,
        "inputs": Value::Object(run.inputs.clone()).to_string(),
        "outputs": run.outputs,
        "error": run.error,
        "total_steps": run.total_steps,
        "total_tokens": run.total_tokens,
        "created_at": run.created_at.as_secs(),
        "finished_at": run.finished_at.map(UnixMs::as_secs),
        "elapsed_time": run.elapsed_time,
    })
}

pub(super) async fn show_run(
    State(state): State<AppState>,
    Extension(app): App,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    refuse_nul_id("workflow run", &id)?;
    let run = state.store.run(id).await?;
    if run.app_id != app.id {
        return Err(ApiError::not_found("workflow run"));
    }
    Ok(Json(run_detail(&run)))
}

/// Who stops a run: the end user who started it. Any other field is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowStopBody)]
pub(super) struct StopBody {
    #[schema(required, nullable = false, min_length = 1)]
    user: Option<String>,
}

pub(super) async fn stop(
    State(state): State<AppState>,
    Extension(app): App,
    Path(task_id): Path<String>,
    _: NoQuery,
    req: Request,
) -> ApiResult<Json<Value>> {
    let bytes = body_bytes(req, &state).await?;
    let body: StopBody = decode_object(&bytes, state.config.limits.max_json_depth)?;
    let user = body
        .user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid("user", "user is required"))?;
    refuse_nul_id("task", &task_id)?;
    let run = state.store.run_by_task(task_id.clone()).await?;
    if run.app_id != app.id || run.user != user {
        return Err(ApiError::not_found("task"));
    }
    // A run another instance runs (PostgreSQL) is stopped by that instance's listener. The
    // answer does not wait for the stop, as a local stop's does not (Dify's contract).
    if !state.workflows.stop(&task_id) && run.status == RunStatus::Running {
        state.store.stop_elsewhere(&task_id).await?;
    }
    Ok(Json(json!({"result": "success"})))
}

#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    keyword: Option<String>,
    status: Option<String>,
    page: Option<String>,
    limit: Option<String>,
    #[serde(rename = "created_at__before")]
    created_before: Option<String>,
    #[serde(rename = "created_at__after")]
    created_after: Option<String>,
    created_by_end_user_session_id: Option<String>,
    created_by_account: Option<String>,
}

impl QueryParams for LogsQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[&[
        "keyword",
        "status",
        "page",
        "limit",
        "created_at__before",
        "created_at__after",
        "created_by_end_user_session_id",
        "created_by_account",
    ]];
}

/// `GET /parameters` takes `user` (Dify's SDK always sends it), accepted and ignored: the
/// form is the app's, the same for every user.
#[derive(Debug, Deserialize)]
pub(super) struct ParametersQuery {}

impl QueryParams for ParametersQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[&["user"]];
}

pub(super) async fn logs(
    State(state): State<AppState>,
    Extension(app): App,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Value>> {
    let page = super::extract::parse_number::<u32>("page", q.page.as_deref())?.unwrap_or(1);
    let limit = super::extract::parse_number::<u32>("limit", q.limit.as_deref())?.unwrap_or(20);
    if !(1..=99_999).contains(&page) {
        return Err(ApiError::invalid("page", "must be between 1 and 99999"));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let status = q
        .status
        .map(|s| {
            RunStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid("status", "must be succeeded, failed, stopped or running")
            })
        })
        .transpose()?;
    let when = |field: &str, v: Option<String>| -> ApiResult<Option<UnixMs>> {
        v.map(|t| UnixMs::parse(&t).ok_or_else(|| ApiError::invalid(field, "not an ISO 8601 time")))
            .transpose()
    };
    let filter = RunFilter {
        keyword: q.keyword.filter(|k| !k.is_empty()).map(|k| k.chars().take(30).collect()),
        status,
        created_before: when("created_at__before", q.created_before)?,
        created_after: when("created_at__after", q.created_after)?,
        user: q.created_by_end_user_session_id,
    };
    // Runs are made by end users only: asking for an account's runs matches none.
    // Nor does a filter holding NUL, which no stored text holds (see `stored_text`).
    let nul = [&filter.keyword, &filter.user]
        .iter()
        .any(|f| f.as_ref().is_some_and(|t| t.contains('\0')));
    let (runs, total) = if q.created_by_account.is_some() || nul {
        (Vec::new(), 0)
    } else {
        state.store.list_runs(app.id.clone(), filter, page, limit).await?
    };
    let data: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "id": run.id,
                "workflow_run": {
                    "id": run.id, "version": "1", "status": run.status, "error": run.error,
                    "elapsed_time": run.elapsed_time, "total_tokens": run.total_tokens,
                    "total_steps": run.total_steps, "created_at": run.created_at.as_secs(),
                    "finished_at": run.finished_at.map(UnixMs::as_secs),
                },
                "created_from": "service-api",
                "created_by_role": "end_user",
                "created_by_account": null,
                "created_by_end_user": {"id": run.user, "type": "service_api", "is_anonymous": false, "session_id": run.user},
                "created_at": run.created_at.as_secs(),
            })
        })
        .collect();
    let has_more = u64::from(page) * u64::from(limit) < total;
    Ok(Json(
        json!({"page": page, "limit": limit, "total": total, "has_more": has_more, "data": data}),
    ))
}

pub(super) async fn parameters(Extension(app): App, _: ApiQuery<ParametersQuery>) -> Json<Value> {
    let form: Vec<Value> = app
        .inputs
        .iter()
        .map(|f| {
            json!({ f.kind.as_str(): {
                "label": if f.label.is_empty() { &f.variable } else { &f.label },
                "variable": f.variable, "required": f.required, "default": f.default.clone().unwrap_or(Value::String(String::new())),
                "options": f.options, "max_length": f.max_length,
            }})
        })
        .collect();
    let upload = &app.file_upload;
    let kind = |name: &str| {
        json!({"enabled": upload.enabled && upload.allowed_types.iter().any(|t| t == name),
               "number_limits": upload.number_limits, "transfer_methods": upload.transfer_methods})
    };
    Json(json!({
        "opening_statement": "",
        "user_input_form": form,
        "file_upload": {"image": kind("image"), "document": kind("document"), "audio": kind("audio"),
                        "video": kind("video"), "custom": kind("custom")},
        "system_parameters": crate::workflow::files::system_parameters(),
    }))
}
