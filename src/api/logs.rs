//! AutomationLogs, UiForm/Retab compatible: list, get and rerun, under
//! `/v1/processors/automations/logs` and the processor-scoped family
//! `/v1/processors/{processor_id}/automations/logs` (retab 0.0.37–0.0.49).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{list_body, parse_number, ApiQuery, NoQuery, PageParams, QueryParams};
use super::logs_view::{automation_log, external_request_log};
use super::{ApiError, ApiResult, AppState};
use crate::delivery::attempt::{self, CallContext};
use crate::delivery::codes;
use crate::ids;
use crate::store::{
    body_hash, Automation, BodyHash, LogFilter, LogRecord, Snapshot, StoreError, Trigger,
};
use crate::time::parse_time;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/processors/automations/logs", get(list))
        .route("/processors/automations/logs/{log_id}", get(show))
        .route("/processors/automations/logs/{log_id}/rerun", post(rerun))
        .route("/processors/{processor_id}/automations/logs", get(list_scoped))
        .route("/processors/{processor_id}/automations/logs/{log_id}", get(show_scoped))
        .route("/processors/{processor_id}/automations/logs/{log_id}/rerun", post(rerun_scoped))
}

/// The list filters. `schema_id` and `schema_data_id` are accepted and ignored: the uiform
/// and retab SDKs' `logs.list` sends them when given, and logs carry no such field.
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(flatten)]
    page: PageParams,
    status_code: Option<String>,
    status_class: Option<String>,
    automation_id: Option<String>,
    webhook_url: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    error_code: Option<String>,
    success: Option<String>,
    trigger: Option<String>,
    event_type: Option<String>,
}

impl QueryParams for ListQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[
        PageParams::NAMES,
        &["status_code", "status_class", "automation_id", "webhook_url"],
        &["created_after", "created_before", "error_code", "success", "trigger", "event_type"],
        &["schema_id", "schema_data_id"],
    ];
}

fn parse_class(s: &str) -> ApiResult<u8> {
    match s.to_ascii_lowercase().as_str() {
        "2xx" => Ok(2),
        "3xx" => Ok(3),
        "4xx" => Ok(4),
        "5xx" => Ok(5),
        _ => Err(ApiError::invalid(
            "status_class",
            format!("`{s}` is not one of 2xx, 3xx, 4xx, 5xx"),
        )),
    }
}

fn parse_when(field: &str, value: Option<String>) -> ApiResult<Option<i64>> {
    value
        .map(|v| {
            parse_time(&v).ok_or_else(|| {
                ApiError::invalid(field, format!("`{v}` is not an RFC 3339 time or Unix seconds"))
            })
        })
        .transpose()
}

fn parse_error_code(code: String) -> ApiResult<String> {
    if codes::ALL.iter().any(|(known, _)| *known == code) {
        return Ok(code);
    }
    let known: Vec<&str> = codes::ALL.iter().map(|(known, _)| *known).collect();
    Err(ApiError::invalid("error_code", format!("`{code}` is not one of {}", known.join(", "))))
}

fn parse_success(value: String) -> ApiResult<bool> {
    match value.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid("success", format!("`{value}` is not true or false"))),
    }
}

fn parse_trigger(value: String) -> ApiResult<Trigger> {
    Trigger::parse(&value).ok_or_else(|| {
        ApiError::invalid(
            "trigger",
            format!("`{value}` is not one of initial, retry, rerun, recover, replay, test"),
        )
    })
}

/// The length `POST /v1/messages` allows an event type: a value outside it matches nothing.
fn parse_event_type(value: String) -> ApiResult<String> {
    if value.is_empty() || value.len() > 128 {
        return Err(ApiError::invalid("event_type", "1 to 128 characters"));
    }
    Ok(value)
}

async fn list_logs(
    state: AppState,
    q: ListQuery,
    processor_id: Option<String>,
) -> ApiResult<Json<Value>> {
    let page = q.page.to_request(ids::LOG, state.config.limits.max_list_limit)?;
    let filter = LogFilter {
        status_code: parse_number("status_code", q.status_code.as_deref())?,
        status_class: q.status_class.as_deref().map(parse_class).transpose()?,
        automation_id: q.automation_id,
        processor_id,
        webhook_url: q.webhook_url,
        created_after: parse_when("created_after", q.created_after)?,
        created_before: parse_when("created_before", q.created_before)?,
        error_code: q.error_code.map(parse_error_code).transpose()?,
        success: q.success.map(parse_success).transpose()?,
        trigger: q.trigger.map(parse_trigger).transpose()?,
        event_type: q.event_type.map(parse_event_type).transpose()?,
    };
    let page = state.store.list_logs(filter, page).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(list_body(
        page.items.iter().map(|r| automation_log(r, org, rule)).collect(),
        page.before,
        page.after,
    )))
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    list_logs(state, q, None).await
}

async fn list_scoped(
    State(state): State<AppState>,
    Path(processor_id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    list_logs(state, q, Some(processor_id)).await
}

/// Loads a log, 404 when unknown, malformed, or of another processor.
async fn find(
    state: &AppState,
    log_id: String,
    processor_id: Option<&str>,
) -> ApiResult<LogRecord> {
    if !ids::is_valid(ids::LOG, &log_id) {
        return Err(ApiError::not_found("log"));
    }
    let record = state.store.log(log_id).await?;
    match processor_id {
        Some(p) if p != record.processor_id => Err(ApiError::not_found("log")),
        _ => Ok(record),
    }
}

async fn show(
    State(state): State<AppState>,
    Path(log_id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let record = find(&state, log_id, None).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(automation_log(&record, org, rule)))
}

async fn show_scoped(
    State(state): State<AppState>,
    Path((processor_id, log_id)): Path<(String, String)>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let record = find(&state, log_id, Some(&processor_id)).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(automation_log(&record, org, rule)))
}

/// Sends the stored request again: same URL, same body, `webhook-id` and custom headers as
/// the original call (never the automation's current headers: they may hold a credential for
/// another receiver), fresh timestamp and signature (current secret), synchronously. The
/// body is not read, so the SDK's empty `Content-Type: application/json` POST is accepted.
async fn rerun_log(
    state: AppState,
    log_id: String,
    processor_id: Option<String>,
) -> ApiResult<Json<Value>> {
    let original = find(&state, log_id, processor_id.as_deref()).await?;
    let Some(body) = original.request_body else {
        return Err(ApiError::conflict(
            "the stored request body of this log is missing; it cannot be sent again",
        ));
    };
    let mut automation =
        state.store.automation(original.automation_id.clone()).await.map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::conflict(
                "the automation of this log was deleted; there is no secret to sign a rerun with",
            ),
            other => other.into(),
        })?;
    automation.webhook_headers = state.store.sent_headers(original.id.clone()).await?;
    automation.webhook_url = original.webhook_url;
    let call = OneCall {
        message_id: original.message_id.clone(),
        body_hash: body_hash(&body),
        body,
        url: automation.webhook_url.clone(),
        trigger: Trigger::Rerun,
        rerun_of: Some(original.id),
    };
    let record = send_one(&state, &automation, call).await?;
    let mut body = external_request_log(&record, &state.config.security.redact_headers);
    body["id"] = record.id.clone().into();
    body["object"] = "automation_log.rerun".into();
    body["rerun_of"] = record.rerun_of.clone().into();
    Ok(Json(body))
}

async fn rerun(
    State(state): State<AppState>,
    Path(log_id): Path<String>,
) -> ApiResult<Json<Value>> {
    rerun_log(state, log_id, None).await
}

async fn rerun_scoped(
    State(state): State<AppState>,
    Path((processor_id, log_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    rerun_log(state, log_id, Some(processor_id)).await
}

/// A synchronous call outside the dispatcher (rerun or test).
pub(super) struct OneCall {
    /// `webhook-id`.
    pub message_id: String,
    /// Body sent.
    pub body: Vec<u8>,
    /// Its hash (already stored).
    pub body_hash: BodyHash,
    /// URL called.
    pub url: String,
    /// `rerun` or `test`.
    pub trigger: Trigger,
    /// For reruns, the original log.
    pub rerun_of: Option<String>,
}

/// Makes the call within the delivery concurrency bounds (waiting for a slot, 503 when none
/// comes free in time), stores its log, and returns the log as stored. The call and its log
/// run in a task of their own: a client that goes away mid-call must not leave a call the
/// receiver saw without its log (dropping the handler's future would cancel both).
pub(super) async fn send_one(
    state: &AppState,
    automation: &Automation,
    call: OneCall,
) -> ApiResult<LogRecord> {
    let (state, automation) = (state.clone(), automation.clone());
    tokio::spawn(async move { call_and_log(&state, &automation, call).await })
        .await
        .map_err(ApiError::internal)?
}

async fn call_and_log(
    state: &AppState,
    automation: &Automation,
    call: OneCall,
) -> ApiResult<LogRecord> {
    let rule = &state.config.security.redact_headers;
    let snapshot = Snapshot::of(automation, rule);
    let context = CallContext {
        delivery_id: None,
        message_id: call.message_id,
        attempt: 1,
        trigger: call.trigger,
        rerun_of: call.rerun_of,
        body_hash: call.body_hash,
        snapshot_hash: snapshot.hash,
    };
    let ua = &state.config.delivery.user_agent;
    let body = Bytes::from(call.body);
    let slot = state.dispatcher.call_slot(&automation.id).await?;
    let (log, _) =
        attempt::call(&state.sender, ua, automation, &call.url, body.clone(), context).await;
    drop(slot);
    state.metrics.record_attempt(call.trigger.as_str(), log.duration_ms);
    let record = log.to_record(body.to_vec(), automation.snapshot_json(rule));
    state.store.insert_log(log, snapshot).await?;
    Ok(record)
}
