//! Schema types for an automation's health and enable/disable trail
//! (`…/endpoints/{id}/health`, `…/endpoints/{id}/events`), built by
//! `super::automation_health` with `serde_json::json!`; as [`super::openapi_schemas`], never
//! constructed, read by `utoipa::ToSchema` only.
#![allow(dead_code)] // Read by `utoipa::ToSchema` only.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::openapi_schemas::ListMetadata;

/// An automation's calls over one window (every call: attempts, reruns, test calls).
#[derive(ToSchema)]
pub struct HealthWindow {
    /// The window, in hours back from now (1 or 24).
    hours: u32,
    total: i64,
    /// Calls answered 2xx, whole.
    succeeded: i64,
    failed: i64,
    /// `succeeded / total`; `null` without a call.
    #[schema(required)]
    success_ratio: Option<f64>,
    /// Calls by status class: `no_response`, `1xx`, `2xx`, `3xx`, `4xx`, `5xx`.
    status_classes: BTreeMap<String, i64>,
}

/// An automation's health: its run of delivery attempts (reruns and test calls aside) and
/// its calls of the last hour and day.
#[derive(ToSchema)]
pub struct AutomationHealth {
    /// Always `automation.health`.
    object: String,
    #[schema(pattern = "^endp_")]
    automation_id: String,
    enabled: bool,
    /// Why it was disabled, while it is (`null` when enabled).
    #[schema(required)]
    disabled_reason: Option<String>,
    /// Its last successful attempt, to the second: while it keeps succeeding, this moves
    /// once a second at most.
    #[schema(required, format = DateTime)]
    last_success_at: Option<String>,
    #[schema(required, format = DateTime)]
    last_failure_at: Option<String>,
    /// Failed attempts since its last success.
    consecutive_failures: i64,
    /// The first failed attempt since its last success (or its last enable): the clock of
    /// `operational.disable_after_hours`.
    #[schema(required, format = DateTime)]
    failing_since: Option<String>,
    /// The last hour, then the last 24 hours.
    windows: Vec<HealthWindow>,
}

/// Whether an automation was enabled or disabled.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutomationEventKind {
    Enabled,
    Disabled,
}

/// One enable or disable of an automation.
#[derive(ToSchema)]
pub struct AutomationEvent {
    /// Always `automation.event`.
    object: String,
    #[schema(pattern = "^aevt_")]
    id: String,
    #[schema(pattern = "^endp_")]
    automation_id: String,
    kind: AutomationEventKind,
    /// `system` (the relay: `operational.disable_after_hours`), `config_key` (an admin key
    /// of the configuration) or the id of the stored key (`key_…`).
    actor: String,
    reason: String,
    #[schema(format = DateTime)]
    at: String,
}

/// A page of an automation's enable/disable trail.
#[derive(ToSchema)]
pub struct AutomationEventList {
    /// Always `list`.
    object: String,
    data: Vec<AutomationEvent>,
    list_metadata: ListMetadata,
}
