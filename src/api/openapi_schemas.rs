//! Schema types for the OpenAPI document: the response bodies the handlers build with
//! `serde_json::json!`, field for field. They are never constructed; they exist so that
//! `utoipa` can describe those bodies, and `tests/api/openapi.rs` validates real answers
//! against what they say (so a field added to a `json!` without its row here fails there
//! when the schema forbids it, or when a required one goes missing).
#![allow(dead_code)] // Read by `utoipa::ToSchema` only.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

use super::openapi_fields as f;

/// The cursors of a list page: ids to pass as `before` / `after`, `null` at an end.
#[derive(ToSchema)]
pub struct ListMetadata {
    #[schema(required)]
    before: Option<String>,
    #[schema(required)]
    after: Option<String>,
}

/// An automation (uiform's `Endpoint` plus hookrelay's fields); header values matching
/// `security.redact_headers` are shown as `[REDACTED]`.
#[derive(ToSchema)]
pub struct Automation {
    /// Always `automation.endpoint`.
    #[schema(pattern = "^automation\\.endpoint$")]
    object: String,
    #[schema(pattern = "^endp_")]
    id: String,
    name: String,
    processor_id: String,
    webhook_url: String,
    webhook_headers: BTreeMap<String, String>,
    need_validation: bool,
    default_language: String,
    enabled: bool,
    /// The event types it receives; `null`: every one.
    #[schema(required)]
    event_types: Option<Vec<String>>,
    ordering: AutomationOrdering,
    /// At most this many calls start in any second; `null`: no limit.
    #[schema(required, minimum = 1, maximum = 10000)]
    rate_limit_per_sec: Option<u32>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Whether it is the relay's own automation for `[operational] webhook_url`: set by the
    /// configuration, it can only be enabled or disabled through the API.
    operational: bool,
}

/// A new automation, with its signing secret (`whsec_…`), also shown by `GET …/secret`.
#[derive(ToSchema)]
pub struct AutomationCreated {
    #[serde(flatten)]
    automation: Automation,
    #[schema(pattern = "^whsec_")]
    secret: String,
}

/// An automation to create: the create's stricter reading of the handler's
/// `AutomationBody` (same fields, checked by a test), whose `name`, `processor_id` and
/// `webhook_url` are required here. Any other field is refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationCreateBody {
    #[schema(schema_with = f::name)]
    name: String,
    #[schema(schema_with = f::name)]
    processor_id: String,
    #[schema(schema_with = f::webhook_url)]
    webhook_url: String,
    #[schema(schema_with = f::header_map)]
    webhook_headers: Option<BTreeMap<String, String>>,
    need_validation: Option<bool>,
    #[schema(schema_with = f::language_or_null)]
    default_language: Option<String>,
    enabled: Option<bool>,
    #[schema(schema_with = f::event_types)]
    event_types: Option<Vec<String>>,
    /// Absent: `parallel`.
    #[serde(default)]
    ordering: AutomationOrdering,
    /// At most this many calls start in any second (1 to 10 000); `null` or absent: no
    /// limit.
    #[schema(minimum = 1, maximum = 10000)]
    rate_limit_per_sec: Option<u32>,
    /// Accepted and ignored (retab 0.0.49 sends `automation.endpoint`).
    object: Option<String>,
}

/// How an automation's deliveries go out: `parallel`, or `fifo` (one message at a time, in
/// ingest order: message n+1 is sent only once message n succeeded or ended exhausted or
/// failed; reruns and test calls are outside the order). A change applies to the messages
/// already waiting: made `fifo`, those not yet being sent line up in ingest order (calls in
/// flight finish as they are); made `parallel`, the waiting ones go at once.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutomationOrdering {
    Parallel,
    Fifo,
}

/// A page of automations.
#[derive(ToSchema)]
pub struct AutomationList {
    /// Always `list`.
    object: String,
    data: Vec<Automation>,
    list_metadata: ListMetadata,
}

/// What `DELETE` of an automation answers.
#[derive(ToSchema)]
pub struct AutomationDeleted {
    object: String,
    id: String,
    deleted: bool,
}

/// An automation's signing secret; after a rotation the previous one keeps signing until
/// `previous_secret_expires_at`.
#[derive(ToSchema)]
pub struct AutomationSecret {
    #[schema(pattern = "^whsec_")]
    secret: String,
    #[schema(required, format = DateTime)]
    previous_secret_expires_at: Option<String>,
}

/// A key's role: viewer < operator < admin.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    Viewer,
    Operator,
    Admin,
}

/// A stored API key: everything but its hash.
#[derive(ToSchema)]
pub struct ApiKey {
    /// Always `api_key`.
    object: String,
    id: String,
    name: String,
    role: KeyRole,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required, format = DateTime)]
    expires_at: Option<String>,
    #[schema(required, format = DateTime)]
    last_used_at: Option<String>,
    #[schema(required, format = DateTime)]
    revoked_at: Option<String>,
}

/// A new API key, with the key itself, shown this once.
#[derive(ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    api_key: ApiKey,
    key: String,
}

/// Every stored key (one page; the cursors are `null`).
#[derive(ToSchema)]
pub struct ApiKeyList {
    object: String,
    data: Vec<ApiKey>,
    list_metadata: ListMetadata,
}

/// One delivery a message made: to which automation.
#[derive(ToSchema)]
pub struct MessageDeliveryRef {
    id: String,
    automation_id: String,
}

/// The 202 of an ingest: the message and the deliveries it made, committed.
#[derive(ToSchema)]
pub struct MessageReceipt {
    /// Always `message`.
    object: String,
    id: String,
    processor_id: String,
    #[schema(required)]
    event_type: Option<String>,
    delivery_ids: Vec<String>,
    deliveries: Vec<MessageDeliveryRef>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A message as listed.
#[derive(ToSchema)]
pub struct Message {
    /// Always `message`.
    object: String,
    id: String,
    processor_id: String,
    /// The one automation it was addressed to; `null`: its processor's automations.
    #[schema(required)]
    automation_id: Option<String>,
    #[schema(required)]
    event_type: Option<String>,
    /// 0: it reached no automation.
    delivery_count: i64,
    #[schema(format = DateTime)]
    created_at: String,
    /// When its content was erased; `null`: it was not.
    #[schema(required, format = DateTime)]
    content_expunged_at: Option<String>,
}

/// Why a message's payload is or is not shown.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadState {
    Stored,
    Expired,
    Expunged,
}

/// A message with its payload as accepted (`null` when gone: `payload_state` says why) and
/// every delivery of it.
#[derive(ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    message: Message,
    /// The JSON accepted, byte for byte; a damaged row is shown as text.
    #[schema(required)]
    payload: Option<Value>,
    payload_state: PayloadState,
    deliveries: Vec<Delivery>,
}

/// A page of messages.
#[derive(ToSchema)]
pub struct MessageList {
    object: String,
    data: Vec<Message>,
    list_metadata: ListMetadata,
}

/// Where a delivery stands.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Exhausted,
    Failed,
}

/// One message's delivery to one automation, with its attempts so far.
#[derive(ToSchema)]
pub struct Delivery {
    /// Always `delivery`.
    object: String,
    id: String,
    message_id: String,
    automation_id: String,
    status: DeliveryStatus,
    attempts: i64,
    #[schema(required, format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(required)]
    last_log_id: Option<String>,
    #[schema(required)]
    last_error_code: Option<String>,
    #[schema(required)]
    last_error_message: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A page of deliveries.
#[derive(ToSchema)]
pub struct DeliveryList {
    object: String,
    data: Vec<Delivery>,
    list_metadata: ListMetadata,
}

/// Whether a logged body is the one stored: `stored`, `none` (no response came), or gone
/// (`expired` by content retention, `expunged`).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyState {
    Stored,
    None,
    Expired,
    Expunged,
}

/// uiform's `ExternalRequestLog`: one call as sent and its answer as received; header
/// secrets redacted. A gone body is shown as `{}`.
#[derive(ToSchema)]
pub struct ExternalRequestLog {
    webhook_url: String,
    request_body: BTreeMap<String, Value>,
    request_body_state: BodyState,
    request_headers: BTreeMap<String, Value>,
    #[schema(format = DateTime)]
    request_at: String,
    response_body: BTreeMap<String, Value>,
    response_body_state: BodyState,
    response_headers: BTreeMap<String, Value>,
    #[schema(format = DateTime)]
    response_at: String,
    /// The receiver's status; 0 when no answer came.
    status_code: i64,
    /// `code: message` of a failed call; `null` when it succeeded.
    #[schema(required)]
    error: Option<String>,
    duration_ms: f64,
}

/// Which URL a rerun called: the logged one, or the automation's current one.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RerunTarget {
    Original,
    Current,
}

/// A rerun's answer: the call made (uiform's `ExternalRequestLog`, as the SDKs read it at
/// top level), with the new log's id and the delivery it settled, if any.
#[derive(ToSchema)]
pub struct RerunResult {
    #[serde(flatten)]
    request: ExternalRequestLog,
    /// Always `automation_log.rerun`.
    object: String,
    id: String,
    #[schema(required)]
    rerun_of: Option<String>,
    target: RerunTarget,
    #[schema(required)]
    delivery_id: Option<String>,
    #[schema(required)]
    delivery_status: Option<DeliveryStatus>,
}

/// Why a call was made.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogTrigger {
    Initial,
    Retry,
    Rerun,
    Recover,
    Replay,
    Test,
}

/// uiform's `AutomationLog` with hookrelay's extras (`delivery_id`, `attempt`, `trigger`,
/// …). The nested uiform objects are described by their SDK; here only as objects.
#[derive(ToSchema)]
pub struct AutomationLog {
    /// Always `automation_log`.
    object: String,
    id: String,
    #[schema(required)]
    user_email: Option<String>,
    organization_id: String,
    #[schema(format = DateTime)]
    created_at: String,
    automation_snapshot: BTreeMap<String, Value>,
    snapshot_state: BodyState,
    /// A chat completion: the payload's own, or one carrying the payload as its message.
    completion: BTreeMap<String, Value>,
    #[schema(required)]
    file_metadata: Option<BTreeMap<String, Value>>,
    external_request_log: ExternalRequestLog,
    #[schema(required)]
    extraction_id: Option<Value>,
    automation_id: String,
    processor_id: String,
    /// The delivery it is a call of; `null` for a call of none (a test call, a rerun of one).
    #[schema(required)]
    delivery_id: Option<String>,
    message_id: String,
    /// 1-based attempt within the delivery (a rerun: 1).
    attempt: i64,
    trigger: LogTrigger,
    /// For a rerun: the log rerun.
    #[schema(required)]
    rerun_of: Option<String>,
    /// Why the call failed (`timeout`, `connect`, `http_status`, …); `null` on success.
    #[schema(required)]
    error_code: Option<String>,
    /// Whether the response body was cut at `delivery.max_response_body_bytes`.
    response_truncated: bool,
}

/// A page of logs.
#[derive(ToSchema)]
pub struct AutomationLogList {
    object: String,
    data: Vec<AutomationLog>,
    list_metadata: ListMetadata,
}
