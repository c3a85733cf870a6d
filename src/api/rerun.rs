//! `POST /v1/processors/automations/logs/{log_id}/rerun` and the processor-scoped
//! `POST /v1/processors/{processor_id}/automations/logs/{log_id}/rerun` (retab
//! 0.0.37–0.0.49): send a logged request again, synchronously. The answer is the
//! `ExternalRequestLog` the SDKs parse, plus the new log's `id`, `rerun_of`, the `target`
//! used and the delivery the rerun settled.

use axum::extract::{Path, Request, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{body_bytes, decode_object, NoQuery};
use super::logs::find;
use super::logs_view::external_request_log;
use super::{ApiError, ApiErrorCode, ApiResult, AppState};
use crate::outbound::OneCall;
use crate::store::{body_hash, GoneReason, LogRecord, RerunDelivery, StoreError, Trigger};

/// Where a rerun goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The log's URL with the custom headers sent with that call (uiform's meaning): never
    /// the automation's current headers, which may hold a credential for another receiver.
    Original,
    /// The automation's current URL and headers.
    Current,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Original => "original",
            Target::Current => "current",
        }
    }
}

/// A rerun's body. Any other field is refused, and `target` given twice too, so that a
/// misspelt or ambiguous option is not silently ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RerunBody {
    /// `original` (default: the logged URL) or `current` (the automation's URL now).
    #[schema(value_type = Option<super::openapi_schemas::RerunTarget>)]
    target: Option<Value>,
}

/// The rerun options: none, an empty or blank body (the uiform and retab SDKs post nothing,
/// with `Content-Type: application/json`), `{}` or `{"target": null}` mean the original
/// target.
async fn target_of(req: Request, state: &AppState) -> ApiResult<Target> {
    let bytes = body_bytes(req, state).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Target::Original);
    }
    let body: RerunBody = decode_object(&bytes, state.config.limits.max_json_depth)?;
    match body.target {
        None | Some(Value::Null) => Ok(Target::Original),
        Some(Value::String(t)) if t == "original" => Ok(Target::Original),
        Some(Value::String(t)) if t == "current" => Ok(Target::Current),
        Some(other) => Err(ApiError::invalid(
            "target",
            format!("{other} is not \"original\" (the log's URL and headers) or \"current\" (the automation's)"),
        )),
    }
}

/// Sends the stored body of log `log_id` again with the stored `webhook-id`, a fresh
/// timestamp and a signature by the automation's current secret, to `target`: the new log
/// and the delivery it settled. The API's rerun and the console's Rerun button.
pub(crate) async fn send_rerun(
    state: &AppState,
    log_id: String,
    processor_id: Option<&str>,
    target: Target,
) -> ApiResult<(LogRecord, Option<RerunDelivery>)> {
    let original = find(state, log_id, processor_id).await?;
    let Some(body) = original.request_body else {
        let why = original.gone.request.unwrap_or(GoneReason::Expired);
        let mut gone = ApiError::gone(why, "the request body of this log");
        gone.message.push_str("; the log cannot be rerun");
        return Err(gone);
    };
    let mut automation =
        state.store.automation(original.log.automation_id.clone()).await.map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::new(ApiErrorCode::AutomationDeleted, match target {
                Target::Original => {
                    "the automation of this log was deleted; there is no secret to sign a rerun with"
                }
                Target::Current => {
                    "the automation of this log was deleted; it has no current URL, headers or \
                     secret to rerun with"
                }
            }),
            other => other.into(),
        })?;
    if target == Target::Original {
        automation.settings.webhook_headers = state.store.sent_headers(original.id.clone()).await?;
        automation.settings.webhook_url = original.log.webhook_url;
    }
    let call = OneCall {
        message_id: original.log.message_id.clone(),
        body_hash: body_hash(&body),
        body,
        url: automation.settings.webhook_url.clone(),
        trigger: Trigger::Rerun,
        rerun_of: Some(original.id),
    };
    Ok(state.one_calls.send(&automation, call).await?)
}

async fn rerun_log(
    state: AppState,
    log_id: String,
    processor_id: Option<String>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let target = target_of(req, &state).await?;
    let (record, delivery) = send_rerun(&state, log_id, processor_id.as_deref(), target).await?;
    let mut answer = external_request_log(&record, &state.config.security.redact_headers);
    answer["id"] = record.id.clone().into();
    answer["object"] = "automation_log.rerun".into();
    answer["rerun_of"] = record.log.rerun_of.clone().into();
    answer["target"] = target.as_str().into();
    answer["delivery_id"] = delivery.as_ref().map(|d| d.id.clone()).into();
    answer["delivery_status"] = delivery.map(|d| d.status.as_str()).into();
    Ok(Json(answer))
}

pub(super) async fn rerun(
    State(state): State<AppState>,
    Path(log_id): Path<String>,
    _: NoQuery,
    req: Request,
) -> ApiResult<Json<Value>> {
    rerun_log(state, log_id, None, req).await
}

pub(super) async fn rerun_scoped(
    State(state): State<AppState>,
    Path((processor_id, log_id)): Path<(String, String)>,
    _: NoQuery,
    req: Request,
) -> ApiResult<Json<Value>> {
    rerun_log(state, log_id, Some(processor_id), req).await
}
