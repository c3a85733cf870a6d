//! Workflow runs: the list (every app's runs, or one app's, newest first, by cursor) and a
//! run's detail, read from the store the Workflow App API writes, with links to the logs of
//! the deliveries its completion message produced.
//!
//! A run row does not name its completion message, so the detail finds it: the message the
//! run's app posted in the same write that ended the run (its `created_at` is the run's
//! `finished_at`), confirmed by the `metadata.workflow_run_id` of its payload. The logs
//! explorer has no message filter, so each delivery links its latest log (whose page shows
//! the delivery's chain of attempts) and the explorer filtered by that automation, the run's
//! event type and the run's end.
//!
//! The detail lists the run's node executions in order, as stored when the run ended;
//! runs that ended before they were stored, and runs of upstream apps, have none.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::session::Signed;
use super::Console;
use crate::api::stored_text::refuse_nul_id;
use crate::store::{
    MessageDetail, MessageFilter, NodeRun, PageRequest, RunCursor, RunPageFilter, RunRecord,
    RunStatus, StoreError, StoreResult,
};
use crate::time::UnixMs;

/// Runs per page.
const PAGE_SIZE: u32 = 50;
/// The filters and cursors the list takes.
const PARAMS: &[&str] = &["app_id", "status", "before", "after"];
/// Longest app id the filter takes (config app ids are far shorter).
const MAX_APP_ID: usize = 128;
/// How long after a run's end its completion message can have been given its id: the id is
/// made when the writer runs the write, which may wait behind other writes.
const COMPLETION_ID_WINDOW_MS: i64 = 300_000;
/// The most messages of the run's app, from the run's end on, read to find its completion.
const COMPLETION_CANDIDATES: u32 = 100;

/// A filter the page refuses: which one, and why.
struct Problem {
    field: String,
    message: String,
}

fn problem(field: &str, message: impl Into<String>) -> Problem {
    Problem { field: field.to_string(), message: message.into() }
}

/// The list's query: filters and cursor, each checked (a 400 names the bad one).
fn parse(pairs: &[(String, String)]) -> Result<(RunPageFilter, RunCursor), Problem> {
    let mut app_id = None;
    let mut status = None;
    let (mut before, mut after) = (None, None);
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "app_id" => &mut app_id,
            "status" => &mut status,
            "before" => &mut before,
            "after" => &mut after,
            _ => {
                let known = PARAMS.join(", ");
                return Err(problem(name, format!("`{name}` is not one of {known}")));
            }
        };
        if slot.is_some() {
            return Err(problem(name, "given more than once"));
        }
        *slot = Some(value.clone());
    }
    if app_id.as_ref().is_some_and(|a: &String| a.len() > MAX_APP_ID) {
        return Err(problem("app_id", format!("at most {MAX_APP_ID} characters")));
    }
    for (name, cursor) in [("before", &before), ("after", &after)] {
        if cursor.as_deref().is_some_and(|c| uuid::Uuid::parse_str(c).is_err()) {
            return Err(problem(name, "not a workflow run id (a UUID)"));
        }
    }
    let status = match status {
        None => None,
        Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
            problem("status", format!("`{s}` is not one of running, succeeded, failed, stopped"))
        })?),
    };
    let cursor = match (before, after) {
        (Some(_), Some(_)) => return Err(problem("before", "give either before or after")),
        (Some(id), None) => RunCursor::Before(id),
        (None, Some(id)) => RunCursor::After(id),
        (None, None) => RunCursor::Newest,
    };
    Ok((RunPageFilter { app_id, status }, cursor))
}

/// The query pairs of `uri` that have a value: a filter form sends its empty fields too.
/// (The logs explorer keeps its own copy, private to it.)
pub(super) fn given_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect()
}

/// The list of `app_id`'s runs (or all runs) in `status` (or any), from `cursor` (or the
/// newest).
fn link(app_id: Option<&str>, status: Option<RunStatus>, cursor: Option<(&str, &str)>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(app) = app_id {
        query.append_pair("app_id", app);
    }
    if let Some(status) = status {
        query.append_pair("status", status.as_str());
    }
    if let Some((name, id)) = cursor {
        query.append_pair(name, id);
    }
    format!("/console/runs?{}", query.finish())
}

fn row(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "app_id": run.app_id,
        "app_link": link(Some(&run.app_id), None, None),
        "status": run.status.as_str(),
        "user": run.user,
        "created_at": run.created_at.rfc3339(),
        "elapsed": format!("{:.3}", run.elapsed_time),
        "total_steps": run.total_steps,
    })
}

/// The list, newest first. Empty filter fields (a form sends them) count as not given.
pub(super) async fn list(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let pairs = given_pairs(&uri);
    let mut context = json!({"session": signed.context(), "filters": {}});
    for (name, value) in &pairs {
        context["filters"][name] = value.clone().into();
    }
    let (filter, cursor) = match parse(&pairs) {
        Ok(parsed) => parsed,
        Err(p) => {
            context["problem"] = json!({"field": p.field, "message": p.message});
            return console.pages.render(StatusCode::BAD_REQUEST, "runs.html", &context);
        }
    };
    let (app, status) = (filter.app_id.clone(), filter.status);
    let page = match console.app.store.run_page(filter, cursor, PAGE_SIZE).await {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let link_to = |cursor| link(app.as_deref(), status, Some(cursor));
    context["runs"] = page.items.iter().map(row).collect();
    context["newer"] = page.before.as_deref().map(|id| link_to(("before", id))).into();
    context["older"] = page.after.as_deref().map(|id| link_to(("after", id))).into();
    console.pages.render(StatusCode::OK, "runs.html", &context)
}

fn pretty(object: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(object).unwrap_or_default()
}

/// The completion message of a finished run (see the module doc), if it is still stored.
async fn completion(console: &Console, run: &RunRecord) -> StoreResult<Option<MessageDetail>> {
    let Some(finished_at) = run.finished_at else { return Ok(None) };
    let store = &console.app.store;
    let filter = MessageFilter {
        processor_id: Some(run.app_id.clone()),
        event_type: None,
        created_after: Some(finished_at),
        created_before: Some(finished_at.plus_ms(COMPLETION_ID_WINDOW_MS)),
    };
    let page = PageRequest { before: None, after: None, limit: COMPLETION_CANDIDATES, desc: false };
    let candidates = store.list_messages(filter, page).await?;
    for message in candidates.items.into_iter().filter(|m| m.created_at == finished_at) {
        let detail = store.message(message.id).await?;
        let payload = detail.payload.as_deref().ok();
        let about: Option<Value> = payload.and_then(|p| serde_json::from_slice(p).ok());
        let run_id = about.as_ref().and_then(|v| v["metadata"]["workflow_run_id"].as_str());
        if run_id == Some(run.id.as_str()) {
            return Ok(Some(detail));
        }
    }
    Ok(None)
}

/// The deliveries of the run's completion, each with links to its logs: its latest log, and
/// the explorer filtered by its automation, the message's event type, and the run's end.
fn deliveries(message: &MessageDetail, finished_at: UnixMs) -> Vec<Value> {
    let event_type = message.message.event_type.as_deref();
    message
        .deliveries
        .iter()
        .map(|d| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("automation_id", d.automation_id.as_str());
            if let Some(event_type) = event_type {
                query.append_pair("event_type", event_type);
            }
            query.append_pair("created_after", &finished_at.as_secs().to_string());
            json!({
                "id": d.id.as_str(),
                "automation_id": d.automation_id.as_str(),
                "status": d.status.as_str(),
                "attempts": d.attempts,
                "last_log_id": d.last_log_id.as_ref().map(|l| l.as_str().to_string()),
                "last_error_code": d.last_error_code,
                "logs_link": format!("/console/logs?{}", query.finish()),
            })
        })
        .collect()
}

fn detail(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "app_id": run.app_id,
        "app_link": link(Some(&run.app_id), None, None),
        "task_id": run.task_id,
        "status": run.status.as_str(),
        "user": run.user,
        "created_at": run.created_at.rfc3339(),
        "finished_at": run.finished_at.map(UnixMs::rfc3339),
        "elapsed": format!("{:.3}", run.elapsed_time),
        "total_steps": run.total_steps,
        "total_tokens": run.total_tokens,
        "inputs": pretty(&run.inputs),
        "outputs": run.outputs.as_ref().map(pretty),
        "files": (!run.files.is_empty())
            .then(|| serde_json::to_string_pretty(&run.files).unwrap_or_default()),
        "error": run.error,
    })
}

/// The rows of the node table: start times as RFC 3339 to the millisecond (to the second for
/// nodes stored before their milliseconds were, rather than inventing `.000`), elapsed times
/// in milliseconds; an unfinished node (the run ended while it ran) has no elapsed time.
fn node_rows(nodes: &[NodeRun]) -> Vec<Value> {
    nodes
        .iter()
        .map(|n| {
            json!({
                "index": n.index,
                "node_id": n.node_id,
                "title": n.title,
                "node_type": n.node_type,
                "status": n.status,
                "started_at": started_text(n),
                "elapsed_ms": n.elapsed_time.map(|s| format!("{:.1}", s * 1000.0)),
                "error": n.error,
            })
        })
        .collect()
}

/// When node `n` started, as RFC 3339 UTC with milliseconds when stored, else seconds.
fn started_text(n: &NodeRun) -> String {
    let (ms, format) = match n.started_at_ms {
        Some(ms) => (ms, SecondsFormat::Millis),
        None => (n.started_at.saturating_mul(1000), SecondsFormat::Secs),
    };
    let at = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    at.to_rfc3339_opts(format, true)
}

/// A run's detail; an unknown id is the console's 404 page.
pub(super) async fn show(
    State(console): State<Console>,
    signed: Signed,
    Path(run_id): Path<String>,
) -> Response {
    let not_found = || console.pages.error(StatusCode::NOT_FOUND, "There is no run with this id.");
    if refuse_nul_id("workflow run", &run_id).is_err() {
        return not_found();
    }
    let run = match console.app.store.run(run_id).await {
        Ok(run) => run,
        Err(StoreError::NotFound(_)) => return not_found(),
        Err(e) => return console.failed(e),
    };
    let nodes = match console.app.store.run_nodes(run.id.clone()).await {
        Ok(nodes) => nodes,
        Err(e) => return console.failed(e),
    };
    let mut context = json!({"session": signed.context(), "run": detail(&run)});
    context["nodes"] = node_rows(&nodes).into();
    match (completion(&console, &run).await, run.finished_at) {
        (Ok(Some(message)), Some(finished_at)) => {
            context["message_id"] = message.message.id.as_str().into();
            context["deliveries"] = deliveries(&message, finished_at).into();
        }
        (Ok(_), _) => {}
        (Err(e), _) => return console.failed(e),
    }
    console.pages.render(StatusCode::OK, "run.html", &context)
}
