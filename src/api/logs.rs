//! AutomationLogs, UiForm/Retab compatible: list and get (rerun: `rerun.rs`), under
//! `/v1/processors/automations/logs` and the processor-scoped family
//! `/v1/processors/{processor_id}/automations/logs` (retab 0.0.37–0.0.49).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{
    list_body, parse_number, parse_time_param, path_id, ApiQuery, NoQuery, PageParams, QueryParams,
};
use super::logs_view::automation_log;
use super::{ApiError, ApiResult, AppState};
use crate::ids;
use crate::outbound::ErrorCode;
use crate::store::{LogFilter, LogRecord, PageRequest, Trigger};

/// The list filters. `schema_id` and `schema_data_id` are accepted and ignored: the uiform
/// and retab SDKs' `logs.list` sends them when given, and logs carry no such field.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
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
    url_contains: Option<String>,
}

impl QueryParams for ListQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[
        PageParams::NAMES,
        &["status_code", "status_class", "automation_id", "webhook_url"],
        &["created_after", "created_before", "error_code", "success", "trigger", "event_type"],
        &["url_contains"],
        &["schema_id", "schema_data_id"],
    ];
}

pub(super) fn parse_class(s: &str) -> ApiResult<u8> {
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

pub(super) fn parse_error_code(code: String) -> ApiResult<ErrorCode> {
    ErrorCode::parse(&code).ok_or_else(|| {
        let known: Vec<&str> = ErrorCode::ALL.iter().map(|known| known.as_str()).collect();
        ApiError::invalid("error_code", format!("`{code}` is not one of {}", known.join(", ")))
    })
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
pub(super) fn parse_event_type(value: String) -> ApiResult<String> {
    if value.is_empty() || value.len() > 128 {
        return Err(ApiError::invalid("event_type", "1 to 128 bytes of UTF-8"));
    }
    Ok(value)
}

/// The longest `url_contains`: no index serves it (see [`LogFilter::url_contains`]), and a
/// longer needle only makes each row's test dearer; a URL part worth searching for is short.
const MAX_URL_CONTAINS: usize = 200;

/// A substring of the URL to look for: 1 to [`MAX_URL_CONTAINS`] characters.
fn parse_url_contains(value: String) -> ApiResult<String> {
    let length = value.chars().count();
    if length == 0 || length > MAX_URL_CONTAINS {
        return Err(ApiError::invalid(
            "url_contains",
            format!("1 to {MAX_URL_CONTAINS} characters (this one has {length})"),
        ));
    }
    Ok(value)
}

/// `0` (no HTTP response) or an HTTP status, 100 to 599: any other number matches nothing.
pub(super) fn parse_status_code(value: Option<&str>) -> ApiResult<Option<u16>> {
    let code = parse_number("status_code", value)?;
    match code {
        Some(c) if c != 0 && !(100..=599).contains(&c) => Err(ApiError::invalid(
            "status_code",
            format!("`{c}` is neither 0 (no HTTP response) nor an HTTP status (100 to 599)"),
        )),
        _ => Ok(code),
    }
}

/// The page and filters `q` asks for, or a 400 naming the first bad one. The console's logs
/// explorer takes the same query, through here.
pub(crate) fn page_and_filter(
    state: &AppState,
    q: ListQuery,
    processor_id: Option<String>,
) -> ApiResult<(PageRequest, LogFilter)> {
    let page = q.page.to_request(ids::LOG, state.config.limits.max_list_limit)?;
    let filter = LogFilter {
        status_code: parse_status_code(q.status_code.as_deref())?,
        status_class: q.status_class.as_deref().map(parse_class).transpose()?,
        automation_id: q.automation_id,
        processor_id,
        webhook_url: q.webhook_url,
        created_after: parse_time_param("created_after", q.created_after)?,
        created_before: parse_time_param("created_before", q.created_before)?,
        error_code: q.error_code.map(parse_error_code).transpose()?,
        success: q.success.map(parse_success).transpose()?,
        trigger: q.trigger.map(parse_trigger).transpose()?,
        event_type: q.event_type.map(parse_event_type).transpose()?,
        url_contains: q.url_contains.map(parse_url_contains).transpose()?,
        delivery_id: None,
    };
    Ok((page, filter))
}

async fn list_logs(
    state: AppState,
    q: ListQuery,
    processor_id: Option<String>,
) -> ApiResult<Json<Value>> {
    let (page, filter) = page_and_filter(&state, q, processor_id)?;
    let page = state.store.list_logs(filter, page).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(list_body(
        page.items.iter().map(|r| automation_log(r, org, rule)).collect(),
        page.before,
        page.after,
    )))
}

pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    list_logs(state, q, None).await
}

pub(super) async fn list_scoped(
    State(state): State<AppState>,
    Path(processor_id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    list_logs(state, q, Some(processor_id)).await
}

/// Loads a log, 404 when unknown, malformed, or of another processor.
pub(crate) async fn find(
    state: &AppState,
    log_id: String,
    processor_id: Option<&str>,
) -> ApiResult<LogRecord> {
    let record = state.store.log(path_id(log_id, "log")?).await?;
    match processor_id {
        Some(p) if p != record.log.processor_id => Err(ApiError::not_found("log")),
        _ => Ok(record),
    }
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(log_id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let record = find(&state, log_id, None).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(automation_log(&record, org, rule)))
}

pub(super) async fn show_scoped(
    State(state): State<AppState>,
    Path((processor_id, log_id)): Path<(String, String)>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let record = find(&state, log_id, Some(&processor_id)).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(automation_log(&record, org, rule)))
}
