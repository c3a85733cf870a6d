//! Bulk retry: re-queue every failed delivery matching the logs filters, through the API's
//! recover job ([`crate::api::recover`]): the same validation, matching and job. A dry run
//! counts first, a confirmation creates the job, its page follows the progress (htmx polls
//! a fragment every second while the job runs) and offers a Cancel.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::session::{action_refusal, Signed};
use super::Console;
use crate::api::access::authorize;
use crate::api::recover::{cancel_job, progress as job_progress, start, RecoverBody};
use crate::api::{ApiError, ApiErrorCode};
use crate::outbound::ErrorCode;

/// The form's fields: the recover body's window and filters, under the body's names.
const FIELDS: &[&str] =
    &["automation_id", "status_class", "status_code", "error_code", "event_type", "since", "until"];

/// The window a form opened without one proposes.
const DEFAULT_SINCE: &str = "1h";

/// The form's fields among `pairs`, trimmed; empty ones dropped (a form sends them too).
fn form_values(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter(|(k, v)| FIELDS.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k, Value::String(v.trim().to_string())))
        .collect()
}

/// The recover request the form's `values` make.
fn body_of(values: &Map<String, Value>, dry_run: bool) -> RecoverBody {
    let get = |k: &str| values.get(k).and_then(Value::as_str).map(String::from);
    RecoverBody {
        since: get("since").unwrap_or_default(),
        until: get("until"),
        automation_id: get("automation_id"),
        status_code: get("status_code").map(Value::String),
        status_class: get("status_class"),
        error_code: get("error_code"),
        event_type: get("event_type"),
        dry_run,
    }
}

/// The link from the logs explorer's filters `pairs` to this form, carrying those recover
/// takes (the logs' time range becomes the window).
pub(super) fn link_from_logs(pairs: &[(String, String)]) -> String {
    let renamed = pairs.iter().map(|(k, v)| match k.as_str() {
        "created_after" => ("since".to_string(), v.clone()),
        "created_before" => ("until".to_string(), v.clone()),
        _ => (k.clone(), v.clone()),
    });
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_values(renamed) {
        query.append_pair(&k, v.as_str().unwrap_or_default());
    }
    format!("/console/retry?{}", query.finish())
}

fn form_context(console: &Console, signed: &Signed, values: Map<String, Value>) -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({"session": signed.context(), "filters": values, "error_codes": codes,
           "may_retry": authorize(signed.principal.role, console.recover_role).is_ok()})
}

/// The form, pre-filled from the URL (the logs explorer's "Retry these…" link).
pub(super) async fn form(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let mut values = form_values(url::form_urlencoded::parse(query).into_owned());
    values.entry("since").or_insert(DEFAULT_SINCE.into());
    let context = form_context(&console, &signed, values);
    console.pages.render(StatusCode::OK, "retry.html", &context)
}

/// The form again, saying which field is wrong; an error without a field is a page of its own.
fn refused_form(console: &Console, mut context: Value, e: &ApiError) -> Response {
    if e.field.is_none() {
        return console.pages.error(e.status(), &e.message);
    }
    context["problem"] = json!({"field": e.field, "message": e.message});
    console.pages.render(e.status(), "retry.html", &context)
}

/// The dry run: how many deliveries the job would re-queue, and a Confirm button.
pub(super) async fn dry_run(
    State(console): State<Console>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.recover_role)
    {
        return refused;
    }
    let values = form_values(url::form_urlencoded::parse(&body).into_owned());
    let request = body_of(&values, true);
    let mut context = form_context(&console, &signed, values);
    match start(&console.app, &request).await {
        Ok((_, counted)) => {
            context["dry_run"] = counted;
            console.pages.render(StatusCode::OK, "retry.html", &context)
        }
        Err(e) => refused_form(&console, context, &e),
    }
}

/// Creates the job over the window and filters confirmed, and sends the browser to its page.
pub(super) async fn confirm(
    State(console): State<Console>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.recover_role)
    {
        return refused;
    }
    let values = form_values(url::form_urlencoded::parse(&body).into_owned());
    let request = body_of(&values, false);
    let created = match start(&console.app, &request).await {
        Ok((_, created)) => created,
        Err(e) => return refused_form(&console, form_context(&console, &signed, values), &e),
    };
    match created["id"].as_str() {
        Some(id) => Redirect::to(&format!("/console/retry/{id}")).into_response(),
        None => console.failed("a created recover job has no id"),
    }
}

/// The page of an unknown job is the console's 404; other failures say what they are.
fn job_error(console: &Console, e: &ApiError) -> Response {
    let message = if e.status() == StatusCode::NOT_FOUND {
        "There is no bulk retry job with this id."
    } else {
        e.message.as_str()
    };
    console.pages.error(e.status(), message)
}

/// `template` over the job's progress, or the job's error page.
async fn render_job(
    console: &Console,
    signed: &Signed,
    job_id: String,
    template: &str,
) -> Response {
    let job = match job_progress(&console.app, job_id).await {
        Ok(job) => job,
        Err(e) => return job_error(console, &e),
    };
    let may_cancel = authorize(signed.principal.role, console.cancel_role).is_ok();
    let context = json!({"session": signed.context(), "job": job, "may_cancel": may_cancel});
    console.pages.render(StatusCode::OK, template, &context)
}

/// The job's page: its filters, the progress bar, and Cancel while it runs.
pub(super) async fn job(
    State(console): State<Console>,
    signed: Signed,
    Path(job_id): Path<String>,
) -> Response {
    render_job(&console, &signed, job_id, "retry_job.html").await
}

/// The progress fragment the job's page polls; it stops polling once the job has ended.
pub(super) async fn progress(
    State(console): State<Console>,
    signed: Signed,
    Path(job_id): Path<String>,
) -> Response {
    render_job(&console, &signed, job_id, "retry_progress.html").await
}

/// Cancels the job, as the API's cancel does (one that has ended already is left as it is),
/// then shows its progress: in place for htmx, else on its page.
pub(super) async fn cancel(
    State(console): State<Console>,
    signed: Signed,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.cancel_role) {
        return refused;
    }
    match cancel_job(&console.app, job_id.clone()).await {
        Ok(_) => {}
        Err(e) if e.code == ApiErrorCode::JobEnded => {}
        Err(e) => return job_error(&console, &e),
    }
    if headers.contains_key("hx-request") {
        return render_job(&console, &signed, job_id, "retry_progress.html").await;
    }
    Redirect::to(&format!("/console/retry/{job_id}")).into_response()
}
