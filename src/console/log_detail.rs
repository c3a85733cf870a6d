//! A log's page: the call as sent and answered (bodies made readable, the error code with its
//! meaning), the chain of attempts of its delivery, and its Rerun button, through the API's
//! rerun service.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::session::{action_refusal, Signed};
use super::Console;
use crate::api::access::authorize;
use crate::api::logs::find;
use crate::api::logs_view::automation_log;
use crate::api::rerun::{send_rerun, Target};
use crate::api::ApiError;
use crate::store::{LogFilter, LogRecord, PageRequest, StoreError, StoreResult};

/// The most logs the chain shows. A delivery has at most `max_attempts` attempts, but reruns
/// and recovers add to its chain without bound; the page says when there are more.
const CHAIN_LIMIT: u32 = 100;

/// A body as the page shows it, with what it was taken for: JSON pretty-printed, UTF-8 text
/// as it is, anything else base64. From the stored bytes, not the API's view, which wraps
/// what is not a JSON object (`{"value": …}`, `{"text": …}`) for the SDKs.
fn shown_body(body: Option<&[u8]>) -> Value {
    let Some(body) = body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) else {
        return json!({"kind": "empty", "text": Value::Null});
    };
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Ok(pretty) = serde_json::to_string_pretty(&value) {
            return json!({"kind": "JSON, pretty-printed", "text": pretty});
        }
    }
    match std::str::from_utf8(body) {
        Ok(text) => json!({"kind": "text", "text": text}),
        Err(_) => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            json!({"kind": "binary, base64", "text": encoded})
        }
    }
}

/// A log as the detail page shows it: the API's view, bodies made readable, the error
/// code's meaning.
fn detail(console: &Console, record: &LogRecord) -> Value {
    let config = &console.app.config;
    let mut log = automation_log(record, &config.organization_id, &config.security.redact_headers);
    let call = &log["external_request_log"];
    let pretty = json!({
        "request_body": shown_body(record.request_body.as_deref()),
        "response_body": shown_body(record.log.response_body.as_deref()),
        "request_headers": serde_json::to_string_pretty(&call["request_headers"]).ok(),
        "response_headers": serde_json::to_string_pretty(&call["response_headers"]).ok(),
        "error_meaning": record.log.error_code.map(|c| c.meaning()),
        "succeeded": record.log.error_code.is_none(),
    });
    log["shown"] = pretty;
    log
}

/// The logs of `record`'s chain of attempts, oldest first, and whether there are more than
/// shown. A log of a delivery: every log naming that delivery (its attempts, and the reruns
/// and recovers of it, which name it too: see `store::reruns`), by the `logs_delivery` index.
/// A log of none (a test call, or a rerun of one): the logs it reran, back to the first,
/// each by its id.
async fn chain(console: &Console, record: &LogRecord) -> StoreResult<(Vec<LogRecord>, bool)> {
    let store = &console.app.store;
    if let Some(delivery) = &record.log.delivery_id {
        let filter = LogFilter { delivery_id: Some(delivery.clone()), ..Default::default() };
        let oldest_first =
            PageRequest { before: None, after: None, limit: CHAIN_LIMIT, desc: false };
        let page = store.list_logs(filter, oldest_first).await?;
        return Ok((page.items, page.after.is_some()));
    }
    let mut chain = vec![record.clone()];
    while let Some(parent) = chain.last().and_then(|l| l.log.rerun_of.clone()) {
        if chain.len() >= CHAIN_LIMIT as usize {
            chain.reverse();
            return Ok((chain, true));
        }
        match store.log(parent).await {
            Ok(log) => chain.push(log),
            // Deleted by retention: the chain starts here.
            Err(StoreError::NotFound(_)) => break,
            Err(e) => return Err(e),
        }
    }
    chain.reverse();
    Ok((chain, false))
}

/// One line of the chain.
fn link(record: &LogRecord, current: &LogRecord) -> Value {
    json!({
        "id": record.id,
        "created_at": record.recorded_at().rfc3339(),
        "trigger": record.log.trigger.as_str(),
        "attempt": record.log.attempt,
        "status_code": record.log.status_code,
        "error_code": record.log.error_code.map(|c| c.as_str()),
        "duration_ms": record.log.duration_ms.round(),
        "current": record.id == current.id,
    })
}

/// The error page of an API error: a 404 says which thing is missing.
fn api_error_page(console: &Console, e: &ApiError) -> Response {
    let message = if e.status() == StatusCode::NOT_FOUND {
        "There is no log with this id."
    } else {
        e.message.as_str()
    };
    console.pages.error(e.status(), message)
}

/// The log's page.
pub(super) async fn show(
    State(console): State<Console>,
    signed: Signed,
    Path(log_id): Path<String>,
) -> Response {
    let record = match find(&console.app, log_id, None).await {
        Ok(record) => record,
        Err(e) => return api_error_page(&console, &e),
    };
    let (chain, more) = match chain(&console, &record).await {
        Ok(found) => found,
        Err(e) => return console.failed(e),
    };
    let may_rerun = authorize(signed.principal.role, console.rerun_role).is_ok();
    let chain: Vec<Value> = chain.iter().map(|l| link(l, &record)).collect();
    let context = json!({"session": signed.context(), "log": detail(&console, &record),
                         "may_rerun": may_rerun, "chain": chain, "chain_more": more,
                         "chain_limit": CHAIN_LIMIT});
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
    let in_place = headers.contains_key("hx-request");
    let record = match send_rerun(&console.app, log_id, None, Target::Original).await {
        Ok((record, _)) => record,
        // In place, the refusal replaces the result (htmx swaps error answers too: see the
        // `responseHandling` of base.html), not a whole page inside the log's.
        Err(e) if in_place => {
            let context = json!({"status": e.status().as_u16(), "message": e.message});
            return console.pages.render(e.status(), "rerun_refused.html", &context);
        }
        Err(e) => return api_error_page(&console, &e),
    };
    if in_place {
        let context = json!({"log": detail(&console, &record)});
        return console.pages.render(StatusCode::OK, "rerun_result.html", &context);
    }
    Redirect::to(&format!("/console/logs/{}", record.id)).into_response()
}
