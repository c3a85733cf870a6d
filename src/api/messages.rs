//! `POST /v1/messages`, the one ingest path; the message views (`GET /v1/messages`,
//! `GET /v1/messages/{id}`: every accepted message, delivered to any automation or none);
//! and the delivery views (`GET /v1/deliveries`, `GET /v1/deliveries/{id}`).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::extract::{
    body_bytes, decode_object, list_body, parse_time_param, path_id, ApiQuery, NoQuery, PageParams,
    QueryParams,
};
use super::stored_text::refuse_nul_in;
use super::{ApiError, ApiResult, AppState};
use crate::ids::{self, AutomationId};
use crate::store::{
    DeliveryRow, DeliveryStatus, IngestResult, MessageFilter, MessageRow, NewMessage,
    OPERATIONAL_PROCESSOR,
};
use crate::time::UnixMs;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "A message: to `processor_id`'s automations, or to one `automation_id` \
    (one of the two is required). Any other field is refused.")]
pub(super) struct MessageBody<'a> {
    processor_id: Option<String>,
    automation_id: Option<String>,
    event_type: Option<String>,
    /// Kept as the producer's bytes: sent and signed exactly as received, never re-encoded.
    #[serde(borrow)]
    #[schema(required, nullable = false, value_type = Object)]
    payload: Option<&'a RawValue>,
}

const MAX_IDEMPOTENCY_KEY: usize = 256;

fn message_json(r: &IngestResult) -> Value {
    let deliveries: Vec<Value> = r
        .deliveries
        .iter()
        .map(|(id, automation_id)| json!({"id": id, "automation_id": automation_id}))
        .collect();
    json!({
        "object": "message",
        "id": r.message_id,
        "processor_id": r.processor_id,
        "event_type": r.event_type,
        "delivery_ids": r.deliveries.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "deliveries": deliveries,
        "created_at": r.created_at.rfc3339(),
    })
}

/// Event types the relay writes itself (`hookrelay.test`); refused at ingest.
const RESERVED_EVENT_PREFIX: &str = "hookrelay.";

/// The request's `Idempotency-Key`, if it has one: visible ASCII, 1 to
/// [`MAX_IDEMPOTENCY_KEY`] characters, else a 400 naming it (a key that is not one must never
/// be ignored: the retry it was meant for would be taken twice).
pub(super) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// Answers 202 only after the message and its deliveries are committed.
pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: NoQuery,
    req: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let bytes = body_bytes(req, &state).await?;
    let body: MessageBody<'_> = decode_object(&bytes, state.config.limits.max_json_depth)?;
    let payload = body.payload.ok_or_else(|| ApiError::invalid("payload", "is required"))?;
    if !payload.get().starts_with('{') {
        return Err(ApiError::invalid("payload", "must be a JSON object"));
    }
    match (&body.processor_id, &body.automation_id) {
        (None, None) => {
            return Err(ApiError::invalid(
                "processor_id",
                "processor_id or automation_id is required",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "automation_id",
                "give processor_id or automation_id, not both",
            ))
        }
        (Some(p), _) if p.is_empty() || p.len() > 256 => {
            return Err(ApiError::invalid("processor_id", "1 to 256 bytes of UTF-8"))
        }
        _ => {}
    }
    if body.event_type.as_ref().is_some_and(|t| t.is_empty() || t.len() > 128) {
        return Err(ApiError::invalid("event_type", "1 to 128 bytes of UTF-8"));
    }
    refuse_nul_in("processor_id", body.processor_id.as_deref())?;
    refuse_nul_in("event_type", body.event_type.as_deref())?;
    // The relay's own messages (test calls) are told apart by this prefix: replay-missing
    // never sends them to other automations, so a producer's message must not wear it.
    if body.event_type.as_ref().is_some_and(|t| t.starts_with(RESERVED_EVENT_PREFIX)) {
        return Err(ApiError::invalid(
            "event_type",
            format!(
                "the prefix `{RESERVED_EVENT_PREFIX}` is reserved for the relay's own messages"
            ),
        ));
    }
    let automation_id = body.automation_id.map(|a| path_id(a, "automation")).transpose()?;
    if let Some(id) = &automation_id {
        refuse_operational_message(&state, id)?;
    }
    if body.processor_id.as_deref() == Some(OPERATIONAL_PROCESSOR) {
        return Err(ApiError::invalid(
            "processor_id",
            format!("`{OPERATIONAL_PROCESSOR}` is reserved for the relay's operational events"),
        ));
    }
    let message = NewMessage {
        processor_id: body.processor_id,
        automation_id,
        event_type: body.event_type,
        payload: payload.get().as_bytes().to_vec(),
        idempotency_key,
    };
    let receipt = state.relay.accept(message).await?;
    let mut response_headers = HeaderMap::new();
    if receipt.replayed {
        response_headers
            .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    } else {
        state.metrics.messages_accepted.inc();
    }
    Ok((StatusCode::ACCEPTED, response_headers, Json(message_json(&receipt.result))))
}

fn delivery_json(d: &DeliveryRow) -> Value {
    json!({
        "object": "delivery",
        "id": d.id,
        "message_id": d.message_id,
        "automation_id": d.automation_id,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.map(UnixMs::rfc3339),
        "last_log_id": d.last_log_id,
        "last_error_code": d.last_error_code,
        "last_error_message": d.last_error_message,
        "created_at": d.created_at.rfc3339(),
        "updated_at": d.updated_at.rfc3339(),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct DeliveryQuery {
    #[serde(flatten)]
    page: PageParams,
    status: Option<String>,
    automation_id: Option<String>,
    message_id: Option<String>,
}

impl QueryParams for DeliveryQuery {
    const ACCEPTED: &'static [&'static [&'static str]] =
        &[PageParams::NAMES, &["status", "automation_id", "message_id"]];
}

pub(super) async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.to_request(ids::DELIVERY, state.config.limits.max_list_limit)?;
    let status = q
        .status
        .map(|s| {
            DeliveryStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    format!("`{s}` is not pending, succeeded, exhausted or failed"),
                )
            })
        })
        .transpose()?;
    let page = state.store.list_deliveries(status, q.automation_id, q.message_id, page).await?;
    Ok(Json(list_body(page.items.iter().map(delivery_json).collect(), page.before, page.after)))
}

pub(super) async fn show_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    Ok(Json(delivery_json(&state.store.delivery(path_id(id, "delivery")?).await?)))
}

/// A message as listed. `automation_id` is the one automation it was addressed to (`null`:
/// it went to its processor's automations); `delivery_count` 0 means it reached none;
/// `content_expunged_at` is when its content was erased (`null`: it was not).
fn message_row_json(m: &MessageRow) -> Value {
    json!({
        "object": "message",
        "id": m.id,
        "processor_id": m.processor_id,
        "automation_id": m.automation_id,
        "event_type": m.event_type,
        "delivery_count": m.delivery_count,
        "created_at": m.created_at.rfc3339(),
        "content_expunged_at": m.content_expunged_at.map(|at| at.rfc3339()),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct MessageQuery {
    #[serde(flatten)]
    page: PageParams,
    processor_id: Option<String>,
    event_type: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
}

impl QueryParams for MessageQuery {
    const ACCEPTED: &'static [&'static [&'static str]] =
        &[PageParams::NAMES, &["processor_id", "event_type", "created_after", "created_before"]];
}

pub(super) async fn list_messages(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.to_request(ids::MESSAGE, state.config.limits.max_list_limit)?;
    let filter = MessageFilter {
        processor_id: q.processor_id,
        event_type: q.event_type,
        created_after: parse_time_param("created_after", q.created_after)?,
        created_before: parse_time_param("created_before", q.created_before)?,
    };
    let page = state.store.list_messages(filter, page).await?;
    Ok(Json(list_body(page.items.iter().map(message_row_json).collect(), page.before, page.after)))
}

/// `GET /v1/messages/{id}`: the listed fields, then the payload exactly as accepted (never
/// re-encoded: numbers and key order as the producer sent them) and every delivery of it.
#[derive(Serialize)]
struct MessageView<'a> {
    #[serde(flatten)]
    message: Value,
    payload: Payload<'a>,
    /// `stored`, or why `payload` is `null`: `expired` (content retention removed it) or
    /// `expunged` (`DELETE /v1/messages/{id}/content`).
    payload_state: &'static str,
    deliveries: Vec<Value>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    /// The accepted JSON object.
    Json(&'a RawValue),
    /// A stored payload that is no longer JSON (a damaged row), shown as text.
    Text(String),
    /// A payload that is no longer stored, shown as `null` (`payload_state` says why).
    Gone,
}

pub(super) async fn show_message(
    State(state): State<AppState>,
    _: NoQuery,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let detail = state.store.message(path_id(id, "message")?).await?;
    let text = detail.payload.as_deref().map(String::from_utf8_lossy);
    let payload = match text.as_deref().map(|t| (t, serde_json::from_str::<&RawValue>(t))) {
        Ok((_, Ok(raw))) => Payload::Json(raw),
        Ok((t, Err(_))) => Payload::Text(t.to_string()),
        Err(_) => Payload::Gone,
    };
    let view = MessageView {
        message: message_row_json(&detail.message),
        payload,
        payload_state: match detail.payload {
            Ok(_) => "stored",
            Err(why) => why.as_str(),
        },
        deliveries: detail.deliveries.iter().map(delivery_json).collect(),
    };
    // Serialized here, while the payload it borrows lives.
    Ok(Json(view).into_response())
}

/// 403 for a message addressed to the operational automation: it would reach the operational
/// receiver signed with the operational secret, as if the relay had sent it.
fn refuse_operational_message(state: &AppState, id: &AutomationId) -> ApiResult<()> {
    if state.store.operations().is_operational(id) {
        return Err(ApiError::forbidden(format!(
            "automation {id} is the relay's operational automation: it takes only the relay's \
             own operational events"
        ))
        .with_field("automation_id"));
    }
    Ok(())
}
