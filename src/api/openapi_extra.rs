//! Schema types for the answers of the spreadsheets, sheets sink, workflow app, file upload,
//! replay, expunge and operations routes, built by their handlers with `serde_json::json!`;
//! as [`super::openapi_schemas`], never constructed, read by `utoipa::ToSchema` only, and
//! checked against real answers by `tests/api/openapi.rs` and schemathesis (`.ci/run`).
#![allow(dead_code)] // Read by `utoipa::ToSchema` only.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

use super::openapi_schemas::ListMetadata;

/// Where a replay job stands: `stopped` when its automation was disabled or deleted first.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplayJobStatus {
    Running,
    Completed,
    Stopped,
}

/// Why a replay job ended.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayJobEnd {
    Completed,
    AutomationDisabled,
    AutomationDeleted,
}

/// A replay job: the messages of a window an automation never got a delivery of, given one.
#[derive(ToSchema)]
pub struct ReplayJob {
    /// Always `replay_job`.
    object: String,
    id: String,
    status: ReplayJobStatus,
    automation_id: String,
    #[schema(format = DateTime)]
    since: String,
    #[schema(format = DateTime)]
    until: String,
    /// How far the scan of the window got.
    #[schema(format = DateTime)]
    scanned_through: String,
    /// Whether the window held more than a job takes.
    capped: bool,
    /// Deliveries made so far.
    created: i64,
    done: i64,
    failed: i64,
    pending: i64,
    /// `null` while it creates deliveries; then why it ended.
    #[schema(required)]
    ended: Option<ReplayJobEnd>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// What `DELETE /v1/messages/{id}/content` answers, the same every time.
#[derive(ToSchema)]
pub struct ContentExpunged {
    /// Always `message.content_expunged`.
    object: String,
    id: String,
    /// When the content was first expunged.
    #[schema(format = DateTime)]
    content_expunged_at: String,
}

/// A worksheet's size, as the Sheets API words it.
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct GridProperties {
    rowCount: i64,
    columnCount: i64,
}

/// A worksheet's properties.
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct WorksheetProperties {
    sheetId: i64,
    title: String,
    index: i64,
    gridProperties: GridProperties,
}

/// A worksheet: its properties and its header row (the column names).
#[derive(ToSchema)]
pub struct Worksheet {
    properties: WorksheetProperties,
    header: Vec<String>,
}

/// A spreadsheet's own properties.
#[derive(ToSchema)]
pub struct SpreadsheetProperties {
    title: String,
}

/// A spreadsheet (a Sheets-API-like shape) and how its sink authenticates calls.
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct Spreadsheet {
    spreadsheetId: String,
    properties: SpreadsheetProperties,
    sheets: Vec<Worksheet>,
    /// Whether the sink takes signed calls only (a webhook secret or a signer automation).
    signed: bool,
    #[schema(required)]
    signer_automation_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A page of spreadsheets.
#[derive(ToSchema)]
pub struct SpreadsheetList {
    /// Always `list`.
    object: String,
    data: Vec<Spreadsheet>,
    list_metadata: ListMetadata,
}

/// What `DELETE /v1/spreadsheets/{id}` answers.
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct SpreadsheetDeleted {
    spreadsheetId: String,
    deleted: bool,
}

/// A range's cells, row by row (the Sheets API's `ValueRange`).
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct SheetValues {
    range: String,
    /// Always `ROWS`.
    majorDimension: String,
    values: Vec<Vec<String>>,
}

/// What an append wrote (the Sheets API's `UpdateValuesResponse`).
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct SheetUpdates {
    spreadsheetId: String,
    updatedRange: String,
    updatedRows: i64,
    updatedColumns: i64,
    updatedCells: i64,
}

/// The sink's answer (the Sheets API's `AppendValuesResponse`); `tableRange` is absent when
/// this call wrote the header.
#[derive(ToSchema)]
#[allow(non_snake_case)] // The Sheets API's names.
pub struct SheetAppended {
    spreadsheetId: String,
    tableRange: Option<String>,
    updates: SheetUpdates,
}

/// What the sheets sink takes: a JSON object (a webhook call's body), flattened into one row
/// whose columns are its paths.
#[derive(ToSchema)]
pub struct SheetRow(BTreeMap<String, Value>);

/// Where a workflow run stands.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowRunStatus {
    Running,
    Succeeded,
    Failed,
    Stopped,
}

/// A run as a blocking run's `data` and `workflow_finished` event carry it.
#[derive(ToSchema)]
pub struct WorkflowRunData {
    id: String,
    workflow_id: String,
    status: WorkflowRunStatus,
    #[schema(required)]
    outputs: Option<BTreeMap<String, Value>>,
    #[schema(required)]
    error: Option<String>,
    elapsed_time: f64,
    total_tokens: i64,
    total_steps: i64,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds; `null` while it runs.
    #[schema(required)]
    finished_at: Option<i64>,
}

/// A blocking run's answer (`response_mode` `blocking`, the default). A streaming run
/// answers `text/event-stream`: `data: {json}` events, `event: ping` between them.
#[derive(ToSchema)]
pub struct WorkflowRunResult {
    workflow_run_id: String,
    task_id: String,
    data: WorkflowRunData,
}

/// An async run's 202: where to follow it.
#[derive(ToSchema)]
pub struct WorkflowRunStarted {
    workflow_run_id: String,
    task_id: String,
}

/// `GET /v1/workflows/run/{id}` (Dify's run detail).
#[derive(ToSchema)]
pub struct WorkflowRunDetail {
    id: String,
    workflow_id: String,
    status: WorkflowRunStatus,
    /// The inputs as a JSON text, as Dify gives them.
    inputs: String,
    #[schema(required)]
    outputs: Option<BTreeMap<String, Value>>,
    #[schema(required)]
    error: Option<String>,
    total_steps: i64,
    total_tokens: i64,
    created_at: i64,
    #[schema(required)]
    finished_at: Option<i64>,
    elapsed_time: f64,
}

/// What a stop answers.
#[derive(ToSchema)]
pub struct WorkflowStopped {
    /// Always `success`.
    result: String,
}

/// A run as the logs list shows it.
#[derive(ToSchema)]
pub struct WorkflowLogRun {
    id: String,
    version: String,
    status: WorkflowRunStatus,
    #[schema(required)]
    error: Option<String>,
    elapsed_time: f64,
    total_tokens: i64,
    total_steps: i64,
    created_at: i64,
    #[schema(required)]
    finished_at: Option<i64>,
}

/// The end user a run was made for.
#[derive(ToSchema)]
pub struct WorkflowEndUser {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    is_anonymous: bool,
    session_id: String,
}

/// One entry of the workflow logs.
#[derive(ToSchema)]
pub struct WorkflowLog {
    id: String,
    workflow_run: WorkflowLogRun,
    created_from: String,
    created_by_role: String,
    /// Always `null`: runs are made by end users only.
    #[schema(required)]
    created_by_account: Option<String>,
    created_by_end_user: WorkflowEndUser,
    created_at: i64,
}

/// A page of workflow logs (Dify's page-numbered list).
#[derive(ToSchema)]
pub struct WorkflowLogList {
    page: i64,
    limit: i64,
    total: i64,
    has_more: bool,
    data: Vec<WorkflowLog>,
}

/// The app's input form and upload settings (Dify's `GET /parameters`).
#[derive(ToSchema)]
pub struct WorkflowParameters {
    opening_statement: String,
    /// One object per input, keyed by its kind (`text-input`, `select`, …).
    user_input_form: Vec<BTreeMap<String, Value>>,
    file_upload: BTreeMap<String, Value>,
    system_parameters: BTreeMap<String, Value>,
}

/// The multipart form of an upload. (Other parts are read and ignored, as Dify does, but
/// are not part of the form.)
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadForm {
    /// The file (one), within the app's kinds and size limits.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The end user uploading (1 to 256 characters).
    #[schema(min_length = 1, max_length = 256)]
    user: String,
}

/// An uploaded file (Dify's answer).
#[derive(ToSchema)]
pub struct UploadedFile {
    id: String,
    name: String,
    size: i64,
    extension: String,
    mime_type: String,
    created_by: String,
    /// Unix seconds.
    created_at: i64,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: String,
}

/// `GET /readyz`: 200 when `ready`, 503 (this same body) when `not_ready`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: String,
    database: bool,
    writable: bool,
    dispatcher: bool,
}

/// This OpenAPI 3.1 document.
#[derive(ToSchema)]
pub struct OpenApiDocument(BTreeMap<String, Value>);

/// A text body (`/metrics`, `/docs`, an event stream).
#[derive(ToSchema)]
pub struct Text(String);

/// A file's bytes (a worksheet's CSV or XLSX export).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(Vec<u8>);
