//! Schema types for the recover jobs' answers (`/v1/processors/automations/logs/recover`),
//! built by `super::recover` with `serde_json::json!`; as [`super::openapi_schemas`], never
//! constructed, read by `utoipa::ToSchema` only.
#![allow(dead_code)] // Read by `utoipa::ToSchema` only.

use utoipa::ToSchema;

use super::openapi_schemas::ListMetadata;

/// The filters a job was made with (`null`: not filtered on).
#[derive(ToSchema)]
pub struct RecoverFilters {
    #[schema(required)]
    automation_id: Option<String>,
    #[schema(required)]
    status_code: Option<i64>,
    /// `2xx` … `5xx`.
    #[schema(required)]
    status_class: Option<String>,
    #[schema(required)]
    error_code: Option<String>,
    #[schema(required)]
    event_type: Option<String>,
}

/// Where a job stands.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecoverJobStatus {
    Running,
    Completed,
    Cancelled,
}

/// A recover job: the ended deliveries of its window it re-queues, and how far it got.
#[derive(ToSchema)]
pub struct RecoverJob {
    /// Always `recover_job`.
    object: String,
    id: String,
    status: RecoverJobStatus,
    total: i64,
    requeued: i64,
    done: i64,
    failed: i64,
    pending: i64,
    /// Whether the window held more than a job takes.
    capped: bool,
    #[schema(format = DateTime)]
    since: String,
    #[schema(format = DateTime)]
    until: String,
    #[schema(required)]
    automation_id: Option<String>,
    filters: RecoverFilters,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required, format = DateTime)]
    cancelled_at: Option<String>,
}

/// A job with the deliveries of its window that still retry (recover takes only those
/// that have ended), and a note when they explain a job that matched less than expected.
#[derive(ToSchema)]
pub struct RecoverJobProgress {
    #[serde(flatten)]
    job: RecoverJob,
    still_retrying: i64,
    #[schema(required, format = DateTime)]
    next_retry_at: Option<String>,
    #[schema(required, format = DateTime)]
    retrying_until: Option<String>,
    #[schema(required)]
    note: Option<String>,
}

/// What a job would take (`dry_run: true`): nothing is stored or sent.
#[derive(ToSchema)]
pub struct RecoverDryRun {
    /// Always `recover_dry_run`.
    object: String,
    dry_run: bool,
    total: i64,
    capped: bool,
    #[schema(format = DateTime)]
    since: String,
    #[schema(format = DateTime)]
    until: String,
    filters: RecoverFilters,
    still_retrying: i64,
    #[schema(required, format = DateTime)]
    next_retry_at: Option<String>,
    #[schema(required, format = DateTime)]
    retrying_until: Option<String>,
    #[schema(required)]
    note: Option<String>,
}

/// A page of recover jobs (without the still-retrying part).
#[derive(ToSchema)]
pub struct RecoverJobList {
    object: String,
    data: Vec<RecoverJob>,
    list_metadata: ListMetadata,
}
