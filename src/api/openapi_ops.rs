//! What the OpenAPI document says of each route beyond its row of the route table: a
//! summary, the query parameters (read from each handler's own `QueryParams::ACCEPTED`, the
//! list its extractor enforces, so the two cannot differ), the request body's schema and the
//! success answer's. A route without an entry here is still documented, from its row, with
//! a generic JSON answer; an entry for a route the router does not serve fails a test.

use super::extract::PageParams;
use super::extract::{NoParams, QueryParams};
use super::{automation_health, automations, logs, messages};

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
    /// The request body's schema, and whether a body is required.
    pub body: Option<(&'static str, bool)>,
    /// The success status.
    pub status: u16,
    /// The success body's schema.
    pub answer: &'static str,
    /// Other success answers: status and schema.
    pub also: &'static [(u16, &'static str)],
}

const NONE: &[&[&str]] = NoParams::ACCEPTED;
const AUTOMATION_QUERY: &[&[&str]] = <automations::ListQuery as QueryParams>::ACCEPTED;
const MESSAGE_QUERY: &[&[&str]] = <messages::MessageQuery as QueryParams>::ACCEPTED;
const DELIVERY_QUERY: &[&[&str]] = <messages::DeliveryQuery as QueryParams>::ACCEPTED;
const LOG_QUERY: &[&[&str]] = <logs::ListQuery as QueryParams>::ACCEPTED;
const PAGE_QUERY: &[&[&str]] = <PageParams as QueryParams>::ACCEPTED;
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
    OpDoc { method, path, summary, query, body, status, answer, also: &[] }
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
];

/// The documentation of `method path`, if it has an entry.
pub(super) fn doc_of(method: &str, path: &str) -> Option<&'static OpDoc> {
    DOCS.iter().find(|d| d.method == method && d.path == path)
}
