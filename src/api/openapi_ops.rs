//! What the OpenAPI document says of each route beyond its row of the route table: a
//! summary, the query parameters (read from each handler's own `QueryParams::ACCEPTED`, the
//! list its extractor enforces, so the two cannot differ), the request body's schema and the
//! success answer's. Every route served has an entry (a test fails otherwise), and an
//! entry for a route the router does not serve fails a test too.

use super::extract::PageParams;
use super::extract::{NoParams, QueryParams};
use serde_json::json;
use utoipa::openapi::schema::Schema;

use super::openapi::string_schema;
use super::{automation_health, automations, logs, messages, sheet_values, sink, workflows};
use crate::outbound::ErrorCode;

/// The documentation of one operation.
pub(super) struct OpDoc {
    /// `METHOD /path`, as in the route table.
    pub method: &'static str,
    /// The path template, as in the route table.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The query parameters it accepts (groups, as `QueryParams::ACCEPTED` holds them).
    pub query: &'static [&'static [&'static str]],
    /// The request body's schema, and whether a body is required; `None`: it takes none.
    pub body: Option<(&'static str, bool)>,
    /// The request body's content type.
    pub body_type: &'static str,
    /// The success status.
    pub status: u16,
    /// The success body's schema.
    pub answer: &'static str,
    /// The success body's content type.
    pub answer_type: &'static str,
    /// The same success answered in another content type: type and schema.
    pub alternative: Option<(&'static str, &'static str)>,
    /// Other answers in JSON: status and schema (for an error status, in place of `Error`).
    pub also: &'static [(u16, &'static str)],
}

const NONE: &[&[&str]] = NoParams::ACCEPTED;
const AUTOMATION_QUERY: &[&[&str]] = <automations::ListQuery as QueryParams>::ACCEPTED;
const MESSAGE_QUERY: &[&[&str]] = <messages::MessageQuery as QueryParams>::ACCEPTED;
const DELIVERY_QUERY: &[&[&str]] = <messages::DeliveryQuery as QueryParams>::ACCEPTED;
const LOG_QUERY: &[&[&str]] = <logs::ListQuery as QueryParams>::ACCEPTED;
const PAGE_QUERY: &[&[&str]] = <PageParams as QueryParams>::ACCEPTED;
const SPREADSHEET_QUERY: &[&[&str]] = <PageParams as QueryParams>::ACCEPTED;
const EXPORT_QUERY: &[&[&str]] = <sheet_values::ExportQuery as QueryParams>::ACCEPTED;
const RUN_QUERY: &[&[&str]] = <workflows::RunQuery as QueryParams>::ACCEPTED;
const WORKFLOW_LOGS_QUERY: &[&[&str]] = <workflows::LogsQuery as QueryParams>::ACCEPTED;
const PARAMETERS_QUERY: &[&[&str]] = <workflows::ParametersQuery as QueryParams>::ACCEPTED;
const SINK_QUERY: &[&[&str]] = &[sink::SINK_PARAMS];
const JSON: &str = "application/json";
const REPLAY: &str = "/v1/processors/automations/endpoints/{id}/replay-missing";
const SHEET: &str = "/v1/spreadsheets/{id}";
const EVENTS_QUERY: &[&[&str]] = <automation_health::EventsQuery as QueryParams>::ACCEPTED;
const RECOVER: &str = "/v1/processors/automations/logs/recover";
const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// An entry: `method path`, summary, query, body, status, answer.
const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: &'static [&'static [&'static str]],
    body: Option<(&'static str, bool)>,
    status: u16,
    answer: &'static str,
) -> OpDoc {
    OpDoc {
        method,
        path,
        summary,
        query,
        body,
        body_type: JSON,
        status,
        answer,
        answer_type: JSON,
        alternative: None,
        also: &[],
    }
}

/// The documented operations.
#[rustfmt::skip] // One entry per line, as a table.
pub(super) const DOCS: &[OpDoc] = &[
    op("GET", ENDPOINTS, "List automations", AUTOMATION_QUERY, None, 200, "AutomationList"),
    op("POST", ENDPOINTS, "Create an automation (its secret is shown)", NONE, Some(("AutomationCreateBody", true)), 201, "AutomationCreated"),
    op("GET", "/v1/processors/automations/endpoints/{id}", "Get an automation", NONE, None, 200, "Automation"),
    op("PUT", "/v1/processors/automations/endpoints/{id}", "Update an automation (absent fields keep their value)", NONE, Some(("AutomationBody", true)), 200, "Automation"),
    op("DELETE", "/v1/processors/automations/endpoints/{id}", "Delete an automation", NONE, None, 200, "AutomationDeleted"),
    op("POST", "/v1/processors/automations/endpoints/{id}/enable", "Enable an automation", NONE, None, 200, "Automation"),
    op("POST", "/v1/processors/automations/endpoints/{id}/disable", "Disable an automation", NONE, None, 200, "Automation"),
    op("GET", "/v1/processors/automations/endpoints/{id}/secret", "Get an automation's signing secret", NONE, None, 200, "AutomationSecret"),
    op("POST", "/v1/processors/automations/endpoints/{id}/secret/rotate", "Rotate the signing secret (the old one signs 24 h more)", NONE, None, 200, "AutomationSecret"),
    op("GET", "/v1/processors/automations/endpoints/{id}/health", "An automation's health: its run of attempts, its calls of the last hour and day", NONE, None, 200, "AutomationHealth"),
    op("GET", "/v1/processors/automations/endpoints/{id}/events", "An automation's enable/disable trail (who, why, when)", EVENTS_QUERY, None, 200, "AutomationEventList"),
    op("POST", "/v1/messages", "Ingest a message: 202 once it and its deliveries are committed", NONE, Some(("MessageBody", true)), 202, "MessageReceipt"),
    op("GET", "/v1/messages", "List messages", MESSAGE_QUERY, None, 200, "MessageList"),
    op("GET", "/v1/messages/{id}", "Get a message, its payload and its deliveries", NONE, None, 200, "MessageDetail"),
    op("GET", "/v1/deliveries", "List deliveries", DELIVERY_QUERY, None, 200, "DeliveryList"),
    op("GET", "/v1/deliveries/{id}", "Get a delivery", NONE, None, 200, "Delivery"),
    op("GET", "/v1/processors/automations/logs", "List automation logs (uiform `logs.list`)", LOG_QUERY, None, 200, "AutomationLogList"),
    op("GET", "/v1/processors/automations/logs/{log_id}", "Get an automation log (uiform `logs.get`)", NONE, None, 200, "AutomationLog"),
    op("POST", "/v1/processors/automations/logs/{log_id}/rerun", "Rerun a logged call (uiform `logs.rerun`; the body is optional)", NONE, Some(("RerunBody", false)), 200, "RerunResult"),
    op("GET", "/v1/processors/{processor_id}/automations/logs", "List a processor's automation logs (retab 0.0.37-0.0.49)", LOG_QUERY, None, 200, "AutomationLogList"),
    op("GET", "/v1/processors/{processor_id}/automations/logs/{log_id}", "Get a processor's automation log", NONE, None, 200, "AutomationLog"),
    op("POST", "/v1/processors/{processor_id}/automations/logs/{log_id}/rerun", "Rerun a processor's logged call (the body is optional)", NONE, Some(("RerunBody", false)), 200, "RerunResult"),
    OpDoc { also: &[(200, "RecoverDryRun")], ..op("POST", RECOVER, "Start a recover job (202), or with `dry_run` count what it would take (200)", NONE, Some(("RecoverBody", true)), 202, "RecoverJobProgress") },
    op("GET", RECOVER, "List recover jobs", PAGE_QUERY, None, 200, "RecoverJobList"),
    op("GET", "/v1/processors/automations/logs/recover/{job_id}", "Get a recover job's progress", NONE, None, 200, "RecoverJobProgress"),
    op("POST", "/v1/processors/automations/logs/recover/{job_id}/cancel", "Cancel a running recover job (409 `job_ended` once it has ended)", NONE, None, 200, "RecoverJob"),
    op("POST", "/v1/keys", "Create an API key (the key is shown this once)", NONE, Some(("KeyCreateBody", true)), 201, "ApiKeyCreated"),
    op("GET", "/v1/keys", "List the stored API keys", NONE, None, 200, "ApiKeyList"),
    op("DELETE", "/v1/keys/{id}", "Revoke an API key", NONE, None, 200, "ApiKey"),
    op("POST", "/v1/processors/automations/tests/webhook/{id}", "Send a sample call to an automation now; answers its log", NONE, None, 200, "AutomationLog"),
    op("POST", REPLAY, "Start a replay job: the messages of a window the automation never got (409 when it is disabled)", NONE, Some(("ReplayBody", true)), 202, "ReplayJob"),
    op("GET", "/v1/processors/automations/endpoints/{id}/replay-missing/{job_id}", "Get a replay job's progress", NONE, None, 200, "ReplayJob"),
    op("DELETE", "/v1/messages/{id}/content", "Erase a message's content (idempotent); its pending deliveries end failed", NONE, None, 200, "ContentExpunged"),
    op("GET", "/v1/spreadsheets", "List spreadsheets", SPREADSHEET_QUERY, None, 200, "SpreadsheetList"),
    op("POST", "/v1/spreadsheets", "Create a spreadsheet", NONE, Some(("SpreadsheetCreateBody", true)), 201, "Spreadsheet"),
    op("GET", SHEET, "Get a spreadsheet", NONE, None, 200, "Spreadsheet"),
    op("DELETE", SHEET, "Delete a spreadsheet and its rows", NONE, None, 200, "SpreadsheetDeleted"),
    op("PUT", "/v1/spreadsheets/{id}/signer", "Accept the calls an automation signs (it must send to this spreadsheet's sink)", NONE, Some(("SignerBody", true)), 200, "Spreadsheet"),
    op("DELETE", "/v1/spreadsheets/{id}/signer", "Unlink the signer automation (404 when there is none)", NONE, None, 200, "Spreadsheet"),
    op("GET", "/v1/spreadsheets/{id}/values/{range}", "Read a range of a worksheet (A1 notation)", NONE, None, 200, "SheetValues"),
    OpDoc { answer_type: "text/csv", alternative: Some(("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Binary")), ..op("GET", "/v1/spreadsheets/{id}/export", "Download a worksheet as CSV (the default) or XLSX", EXPORT_QUERY, None, 200, "Binary") },
    OpDoc { alternative: Some(("text/event-stream", "Text")), also: &[(202, "WorkflowRunStarted")], ..op("POST", "/v1/workflows/run", "Run the key's workflow app: blocking (200 JSON), streaming (200 event stream) or async (202)", RUN_QUERY, Some(("WorkflowRunBody", true)), 200, "WorkflowRunResult") },
    op("GET", "/v1/workflows/run/{id}", "Get a workflow run", NONE, None, 200, "WorkflowRunDetail"),
    op("POST", "/v1/workflows/tasks/{task_id}/stop", "Stop a running workflow task", NONE, Some(("WorkflowStopBody", true)), 200, "WorkflowStopped"),
    op("GET", "/v1/workflows/logs", "List the app's workflow runs", WORKFLOW_LOGS_QUERY, None, 200, "WorkflowLogList"),
    op("GET", "/v1/parameters", "The app's input form and upload settings", PARAMETERS_QUERY, None, 200, "WorkflowParameters"),
    OpDoc { body_type: "multipart/form-data", ..op("POST", "/v1/files/upload", "Upload a file for a run (multipart: `file`, `user`)", NONE, Some(("UploadForm", true)), 201, "UploadedFile") },
    op("POST", "/v1/integrations/google_sheets/webhook", "Append a webhook call's JSON body to a worksheet as one row", SINK_QUERY, Some(("SheetRow", true)), 200, "SheetAppended"),
    op("GET", "/healthz", "The process is up", NONE, None, 200, "Health"),
    OpDoc { also: &[(503, "Readiness")], ..op("GET", "/readyz", "Ready to work (503, the same body, when not)", NONE, None, 200, "Readiness") },
    OpDoc { answer_type: "text/plain", ..op("GET", "/metrics", "Prometheus metrics (the per-automation series only with an API key)", NONE, None, 200, "Text") },
    op("GET", "/openapi.json", "This document", NONE, None, 200, "OpenApiDocument"),
    OpDoc { answer_type: "text/html", ..op("GET", "/docs", "Swagger UI over this document", NONE, None, 200, "Text") },
];

/// What a query parameter of `path` takes: the values its parser accepts (an empty value
/// is refused by every parser but the free-text filters'). Lengths are counted in bytes by
/// the relay and in characters by JSON Schema, so a `maxLength` here is the byte limit over
/// 4 (safe for any text), and the description gives the byte limit.
pub(super) fn query_schema(path: &str, name: &str) -> Schema {
    let triggers = ["initial", "retry", "rerun", "recover", "replay", "test"];
    let error_codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let workflow = path.starts_with("/v1/workflows");
    let schema = match name {
        "before" | "after" => json!({"type": "string", "minLength": 1,
            "description": "A cursor: an id from `list_metadata`, of the listed kind. Give \
                `before` or `after`, not both (400 `invalid_param` naming `before`)."}),
        "limit" if workflow => json!({"type": "integer", "minimum": 1, "maximum": 100,
            "description": "Page size (default 20)."}),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 100,
            "description": "Page size (default 10), at most `limits.max_list_limit`: 100 by \
                default, configurable (a larger configured maximum allows more)."}),
        "page" => json!({"type": "integer", "minimum": 1, "maximum": 99_999}),
        "order" => json!({"type": "string", "enum": ["asc", "desc"]}),
        "status" if workflow => {
            json!({"type": "string", "enum": ["running", "succeeded", "failed", "stopped"]})
        }
        "status" => {
            json!({"type": "string", "enum": ["pending", "succeeded", "exhausted", "failed"]})
        }
        "status_code" => json!({"anyOf": [{"type": "integer", "const": 0},
                {"type": "integer", "minimum": 100, "maximum": 599}],
            "description": "0 (no HTTP response) or an HTTP status, 100 to 599."}),
        "status_class" => json!({"type": "string", "enum": ["2xx", "3xx", "4xx", "5xx"]}),
        "success" => json!({"type": "boolean"}),
        "trigger" => json!({"type": "string", "enum": triggers}),
        "error_code" => json!({"type": "string", "enum": error_codes}),
        "created_after" | "created_before" | "created_at__after" | "created_at__before" => {
            json!({"type": "string", "format": "date-time",
                "description": "An RFC 3339 time (Unix seconds are accepted too)."})
        }
        "event_type" => json!({"type": "string", "minLength": 1, "maxLength": 32,
            "description": "1 to 128 bytes of UTF-8."}),
        "url_contains" => json!({"type": "string", "minLength": 1, "maxLength": 200,
            "description": "1 to 200 characters."}),
        "schema_id" | "schema_data_id" => json!({"type": "string",
            "description": "Accepted and ignored (the uiform and retab SDKs send it)."}),
        "trace_id" | "user" => json!({"type": "string",
            "description": "Accepted and ignored (Dify clients send it)."}),
        "format" => json!({"type": "string", "enum": ["csv", "xlsx"], "default": "csv"}),
        "worksheet_id" => json!({"type": "integer", "minimum": 0, "maximum": u32::MAX,
            "default": 0}),
        "color_by_likelihood" => json!({"type": "boolean", "default": false,
            "description": "Colour each cell by its likelihood (`true`/`false`, `1`/`0`)."}),
        "spreadsheet_id" => json!({"type": "string", "minLength": 1}),
        _ => json!({"type": "string"}),
    };
    serde_json::from_value(schema).unwrap_or_else(|_| string_schema())
}

/// Whether a query parameter is required (the sink's `spreadsheet_id`).
pub(super) fn query_required(path: &str, name: &str) -> bool {
    path == sink::SINK_PATH && name == "spreadsheet_id"
}

/// The documentation of `method path`, if it has an entry.
pub(super) fn doc_of(method: &str, path: &str) -> Option<&'static OpDoc> {
    DOCS.iter().find(|d| d.method == method && d.path == path)
}
