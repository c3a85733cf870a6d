//! The logs explorer: the list with the API's filters (kept in the URL, so a view can be
//! shared), parsed by the API's own parser and listed by the store's indexed list; a log's
//! detail; and its Rerun button, through the API's rerun service.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::session::{action_refusal, Signed};
use super::Console;
use crate::api::access::authorize;
use crate::api::extract::decode_query;
use crate::api::logs::{find, page_and_filter, ListQuery};
use crate::api::logs_view::automation_log;
use crate::api::rerun::{send_rerun, Target};
use crate::api::ApiError;
use crate::outbound::ErrorCode;
use crate::store::LogRecord;

/// Page size of the list (the API's default is 10; a screen holds more).
const PAGE_SIZE: &str = "50";

/// The query pairs of `uri` that have a value: a filter form sends its empty fields too.
fn given_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect()
}

fn query_of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    query.finish()
}

/// The list's context: the filters as given, the error code choices, and the page or the
/// problem with a filter.
fn filters_context(pairs: &[(String, String)]) -> Value {
    let filters: serde_json::Map<String, Value> =
        pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({"filters": filters, "error_codes": codes})
}

fn row(r: &LogRecord) -> Value {
    json!({
        "id": r.id,
        "created_at": r.recorded_at().rfc3339(),
        "automation_id": r.log.automation_id,
        "trigger": r.log.trigger.as_str(),
        "status_code": r.log.status_code,
        "error_code": r.log.error_code.map(|c| c.as_str()),
        "duration_ms": r.log.duration_ms.round(),
        "webhook_url": r.log.webhook_url,
    })
}

/// The list, newest first. Empty filter fields are dropped from the URL (a redirect), so
/// the URL holds only the filters in force.
pub(super) async fn list(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let pairs = given_pairs(&uri);
    let raw_count = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).count();
    if raw_count != pairs.len() {
        let query = query_of(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        return Redirect::to(&format!("/console/logs?{query}")).into_response();
    }
    let mut context = filters_context(&pairs);
    context["session"] = signed.context();
    if authorize(signed.principal.role, console.recover_role).is_ok() {
        context["retry_link"] = super::retry::link_from_logs(&pairs).into();
    }
    let page = parse(&console, &pairs);
    let page = match page {
        Ok((page, filter)) => console.app.store.list_logs(filter, page).await,
        Err(e) => {
            context["problem"] = json!({"field": e.field, "message": e.message});
            return console.pages.render(StatusCode::BAD_REQUEST, "logs.html", &context);
        }
    };
    let page = match page {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let filters_only = || pairs.iter().filter(|(k, _)| k != "before" && k != "after");
    let link = |cursor: &str, id: &str| {
        let pairs = filters_only().map(|(k, v)| (k.as_str(), v.as_str()));
        format!("/console/logs?{}", query_of(pairs.chain([(cursor, id)])))
    };
    context["logs"] = page.items.iter().map(row).collect();
    context["newer"] = page.before.as_deref().map(|id| link("before", id)).into();
    context["older"] = page.after.as_deref().map(|id| link("after", id)).into();
    console.pages.render(StatusCode::OK, "logs.html", &context)
}

/// The page and filter the pairs ask for, by the API's parser (400 naming the filter).
fn parse(
    console: &Console,
    pairs: &[(String, String)],
) -> Result<(crate::store::PageRequest, crate::store::LogFilter), ApiError> {
    let has_limit = pairs.iter().any(|(k, _)| k == "limit");
    let limit = (!has_limit).then_some(("limit", PAGE_SIZE));
    let all = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(limit);
    let uri: Uri = format!("/console/logs?{}", query_of(all))
        .parse()
        .map_err(|_| ApiError::invalid("query", "the query string is not valid"))?;
    let query: ListQuery = decode_query(&uri)?;
    page_and_filter(&console.app, query, None)
}

/// A body shown as text: JSON pretty-printed, other text as it is.
fn shown_body(body: &Value) -> Option<String> {
    let object = body.as_object()?;
    if object.is_empty() {
        return None;
    }
    if let (1, Some(Value::String(text))) = (object.len(), object.get("text")) {
        return Some(text.clone());
    }
    serde_json::to_string_pretty(body).ok()
}

/// A log as the detail page shows it: the API's view, bodies made readable, the error
/// code's meaning.
fn detail(console: &Console, record: &LogRecord) -> Value {
    let config = &console.app.config;
    let mut log = automation_log(record, &config.organization_id, &config.security.redact_headers);
    let call = &log["external_request_log"];
    let pretty = json!({
        "request_body": shown_body(&call["request_body"]),
        "response_body": shown_body(&call["response_body"]),
        "request_headers": serde_json::to_string_pretty(&call["request_headers"]).ok(),
        "response_headers": serde_json::to_string_pretty(&call["response_headers"]).ok(),
        "error_meaning": record.log.error_code.map(|c| c.meaning()),
        "succeeded": record.log.error_code.is_none(),
    });
    log["shown"] = pretty;
    log
}

fn api_error_page(console: &Console, e: &ApiError) -> Response {
    let message = if e.status() == StatusCode::NOT_FOUND {
        "There is no log with this id."
    } else {
        e.message.as_str()
    };
    console.pages.error(e.status(), message)
}

pub(super) async fn show(
    State(console): State<Console>,
    signed: Signed,
    Path(log_id): Path<String>,
) -> Response {
    let record = match find(&console.app, log_id, None).await {
        Ok(record) => record,
        Err(e) => return api_error_page(&console, &e),
    };
    let may_rerun = authorize(signed.principal.role, console.rerun_role).is_ok();
    let context = json!({"session": signed.context(), "log": detail(&console, &record),
                         "may_rerun": may_rerun});
    console.pages.render(StatusCode::OK, "log.html", &context)
}

/// Reruns the log to its original target, as the API's rerun does. Answered with the new
/// attempt's result: in place for htmx, else by sending the browser to the new log.
pub(super) async fn rerun(
    State(console): State<Console>,
    signed: Signed,
    Path(log_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.rerun_role) {
        return refused;
    }
    let record = match send_rerun(&console.app, log_id, None, Target::Original).await {
        Ok((record, _)) => record,
        Err(e) => return api_error_page(&console, &e),
    };
    if headers.contains_key("hx-request") {
        let context = json!({"log": detail(&console, &record)});
        return console.pages.render(StatusCode::OK, "rerun_result.html", &context);
    }
    Redirect::to(&format!("/console/logs/{}", record.id)).into_response()
}
