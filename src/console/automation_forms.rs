//! The automation create and edit forms, and "Rotate secret". A form's fields are the API's
//! body fields, handed to the API's own create, update and rotate services
//! ([`crate::api::automations`]): the same rules judge them, and an error names the same
//! field the API would. Headers, event types and the rate limit are typed as text; turning
//! that text into the API's map, list and number is all this file decides.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::automations::action_error;
use super::session::{action_refusal, Signed, CSRF_FIELD};
use super::Console;
use crate::api::access::authorize;
use crate::api::automations::{
    automation_id, create_automation, rotate_secret, update_automation, AutomationBody,
};
use crate::api::ApiError;
use crate::auth::Role;
use crate::redact::HeaderRedaction;
use crate::store::{Automation, DeliveryOrder};

/// The form's fields as typed, kept to show them again with an error.
#[derive(Debug, Serialize)]
struct FormInput {
    name: String,
    processor_id: String,
    webhook_url: String,
    /// One `Name: value` a line.
    webhook_headers: String,
    /// Comma-separated; empty for every event type.
    event_types: String,
    default_language: String,
    need_validation: bool,
    enabled: bool,
    /// `parallel` or `fifo`; empty (a form without the field) keeps the stored one.
    ordering: String,
    /// Calls per second; empty for no limit.
    rate_limit_per_sec: String,
}

/// The form fields an API error may name; an error naming another (none does) is shown above
/// the form.
const FIELDS: &[&str] = &[
    "name",
    "processor_id",
    "webhook_url",
    "webhook_headers",
    "event_types",
    "default_language",
    "ordering",
    "rate_limit_per_sec",
];

impl FormInput {
    /// An empty create form, with the API's defaults.
    fn blank() -> Self {
        Self {
            name: String::new(),
            processor_id: String::new(),
            webhook_url: String::new(),
            webhook_headers: String::new(),
            event_types: String::new(),
            default_language: "en".into(),
            need_validation: false,
            enabled: true,
            ordering: DeliveryOrder::Parallel.as_str().into(),
            rate_limit_per_sec: String::new(),
        }
    }

    /// The posted form (a checkbox not sent is unchecked).
    fn posted(body: &[u8]) -> Self {
        let mut input = Self {
            default_language: String::new(),
            enabled: false,
            ordering: String::new(),
            ..Self::blank()
        };
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "name" => input.name = value,
                "processor_id" => input.processor_id = value,
                "webhook_url" => input.webhook_url = value,
                "webhook_headers" => input.webhook_headers = value,
                "event_types" => input.event_types = value,
                "default_language" => input.default_language = value,
                "need_validation" => input.need_validation = true,
                "enabled" => input.enabled = true,
                "ordering" => input.ordering = value,
                "rate_limit_per_sec" => input.rate_limit_per_sec = value,
                _ => {}
            }
        }
        input
    }

    /// The automation's settings as the form shows them, secret header values redacted as
    /// the API shows them (sent back unchanged, the API keeps the stored value).
    fn of(a: &Automation, rule: &HeaderRedaction) -> Self {
        let s = &a.settings;
        let headers: Vec<String> =
            s.webhook_headers.iter().map(|(k, v)| format!("{k}: {}", rule.shown(k, v))).collect();
        Self {
            name: s.name.clone(),
            processor_id: s.processor_id.clone(),
            webhook_url: s.webhook_url.clone(),
            webhook_headers: headers.join("\n"),
            event_types: s.event_types.as_ref().map(|t| t.join(", ")).unwrap_or_default(),
            default_language: s.default_language.clone(),
            need_validation: s.need_validation,
            enabled: s.enabled,
            ordering: s.ordering.as_str().into(),
            rate_limit_per_sec: s
                .rate_limit_per_sec
                .map(|l| l.per_sec().to_string())
                .unwrap_or_default(),
        }
    }

    /// The API's body for these fields; every field is given, so an update sets them all.
    fn body(&self) -> Result<AutomationBody, ApiError> {
        let event_types = if self.event_types.trim().is_empty() {
            None
        } else {
            Some(self.event_types.split(',').map(|t| t.trim().to_string()).collect())
        };
        let ordering = match self.ordering.as_str() {
            "" => None,
            given => Some(DeliveryOrder::parse(given).ok_or_else(|| {
                ApiError::invalid(
                    "ordering",
                    format!("must be \"parallel\" or \"fifo\", not `{given}`"),
                )
            })?),
        };
        // Digits go as a number; other text as typed, for the API to refuse naming the field.
        let rate = self.rate_limit_per_sec.trim();
        let rate_limit_per_sec = match rate.parse::<u64>() {
            _ if rate.is_empty() => None,
            Ok(n) => Some(json!(n)),
            Err(_) => Some(json!(rate)),
        };
        Ok(AutomationBody {
            name: Some(self.name.clone()),
            processor_id: Some(self.processor_id.clone()),
            webhook_url: Some(self.webhook_url.clone()),
            webhook_headers: Some(header_lines(&self.webhook_headers)?),
            need_validation: Some(self.need_validation),
            default_language: Some(self.default_language.clone()),
            enabled: Some(self.enabled),
            event_types: Some(event_types),
            ordering,
            rate_limit_per_sec: Some(rate_limit_per_sec),
            ..Default::default()
        })
    }
}

/// `Name: value` lines (blank lines skipped) as the API's headers map; whether a name or
/// value is acceptable is the API's rule, checked after.
fn header_lines(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut headers = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            let message = format!("line {}: expected `Name: value`", n + 1);
            return Err(ApiError::invalid("webhook_headers", message));
        };
        let name = name.trim();
        if headers.insert(name.to_string(), value.trim().to_string()).is_some() {
            let message = format!("line {}: the header `{name}` is given twice", n + 1);
            return Err(ApiError::invalid("webhook_headers", message));
        }
    }
    Ok(headers)
}

/// The form page: `input` in the fields, `error` next to the field it names.
fn form_page(
    console: &Console,
    signed: &Signed,
    status: StatusCode,
    automation: Option<&str>,
    input: &FormInput,
    error: Option<&ApiError>,
) -> Response {
    let field = error.and_then(|e| e.field.as_deref()).map(|f| f.split('.').next().unwrap_or(f));
    let field = field.filter(|f| FIELDS.contains(f));
    let context = json!({
        "session": signed.context(),
        "csrf_field": CSRF_FIELD,
        "automation_id": automation,
        "action": match automation {
            Some(id) => format!("/console/automations/{id}/edit"),
            None => "/console/automations/new".to_string(),
        },
        "input": input,
        "error": error.map(|e| json!({"field": field, "message": e.message})),
    });
    console.pages.render(status, "automation_form.html", &context)
}

/// The refusal of a page needing `role` to a session below it.
fn role_refusal(console: &Console, signed: &Signed, role: Role) -> Option<Response> {
    let denied = authorize(signed.principal.role, role).err()?;
    Some(console.pages.error(StatusCode::FORBIDDEN, &denied.message))
}

/// The page showing an automation's secret, the only time the console shows it.
fn secret_page(console: &Console, signed: &Signed, a: &Automation, what: &str) -> Response {
    let context = json!({
        "session": signed.context(),
        "what": what,
        "automation": {"id": a.id, "name": a.settings.name},
        "secret": a.secret,
        "previous_until": a.previous_secret_until.map(|t| t.rfc3339()),
    });
    console.pages.render(StatusCode::OK, "secret_once.html", &context)
}

/// The empty create form.
pub(super) async fn new_form(State(console): State<Console>, signed: Signed) -> Response {
    if let Some(refused) = role_refusal(&console, &signed, console.create_role) {
        return refused;
    }
    form_page(&console, &signed, StatusCode::OK, None, &FormInput::blank(), None)
}

/// Creates the automation as the API's create does, then shows its secret once; on an error
/// nothing is stored and the form is shown again as typed.
pub(super) async fn create(
    State(console): State<Console>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.create_role) {
        return refused;
    }
    let input = FormInput::posted(&body);
    let created = match input.body() {
        Ok(api_body) => create_automation(&console.app, api_body).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(a) => secret_page(&console, &signed, &a, "created"),
        Err(e) => form_page(&console, &signed, e.status(), None, &input, Some(&e)),
    }
}

/// The edit form, filled with the automation's settings.
pub(super) async fn edit_form(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = role_refusal(&console, &signed, console.edit_role) {
        return refused;
    }
    let found = match automation_id(id) {
        Ok(id) => console.app.store.automation(id).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match found {
        Ok(a) => {
            let input = FormInput::of(&a, &console.app.config.security.redact_headers);
            form_page(&console, &signed, StatusCode::OK, Some(a.id.as_str()), &input, None)
        }
        Err(e) => action_error(&console, &e),
    }
}

/// Updates the automation as the API's update does, then shows the list; on an error
/// nothing is changed and the form is shown again as typed.
pub(super) async fn update(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.edit_role) {
        return refused;
    }
    let input = FormInput::posted(&body);
    let updated = match input.body() {
        Ok(api_body) => {
            update_automation(&console.app, id.clone(), api_body, &signed.principal).await
        }
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Redirect::to("/console/automations").into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => action_error(&console, &e),
        Err(e) => form_page(&console, &signed, e.status(), Some(&id), &input, Some(&e)),
    }
}

/// Rotates the secret as the API's rotate does and shows the new one, once.
pub(super) async fn rotate(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, console.rotate_role) {
        return refused;
    }
    match rotate_secret(&console.app, id).await {
        Ok(a) => secret_page(&console, &signed, &a, "rotated"),
        Err(e) => action_error(&console, &e),
    }
}
