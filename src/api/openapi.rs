//! The OpenAPI 3.1 document at `GET /openapi.json` (its docs page: [`super::openapi_docs`]).
//!
//! Its paths come from the route table ([`super::routes::table`]), the one list the router
//! is built from: every route served is in the document, with its method, path parameters,
//! the credential it takes (security schemes) and the role it needs (`x-hookrelay-role`),
//! so the two cannot drift. What a route takes and answers beyond that is in
//! [`super::openapi_ops`]; the body schemas are the handlers' own request types and the
//! response types of [`super::openapi_schemas`], described by `utoipa`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, Paths, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::OpenApi as _;

use super::openapi_health as h;
use super::openapi_ops::{doc_of, OpDoc};
use super::openapi_recover as r;
use super::openapi_schemas as s;
use super::routes::{table, Credential, Route};
use super::{automations, keys, messages, recover, rerun, ApiErrorCode};
use crate::auth::Role;
use crate::outbound::ErrorCode;

/// The extension naming the role a keyed route needs (`viewer`, `operator`, `admin`), or
/// the kind of credential of the others (`app`, `sink`, `public`).
pub const ROLE_EXTENSION: &str = "x-hookrelay-role";

/// The schema of every error answer.
const ERROR_SCHEMA: &str = "Error";

/// Every schema the document holds, with the schemas they refer to.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    automations::AutomationBody,
    keys::CreateBody,
    messages::MessageBody,
    rerun::RerunBody,
    s::AutomationCreateBody,
    s::Automation,
    s::AutomationCreated,
    s::AutomationList,
    s::AutomationDeleted,
    s::AutomationSecret,
    s::ApiKey,
    s::ApiKeyCreated,
    s::ApiKeyList,
    s::MessageReceipt,
    s::Message,
    s::MessageDetail,
    s::MessageList,
    s::Delivery,
    s::DeliveryList,
    s::AutomationLog,
    s::AutomationLogList,
    s::RerunResult,
    recover::RecoverBody,
    r::RecoverJob,
    r::RecoverJobProgress,
    r::RecoverDryRun,
    r::RecoverJobList,
    h::AutomationHealth,
    h::AutomationEventList,
)))]
struct Schemas;

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> OpenApi {
    let mut doc = Schemas::openapi();
    doc.info = InfoBuilder::new()
        .title("hookrelay")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Webhook relay: Svix-style automations and deliveries, uiform/retab automation \
             logs, a Dify-compatible Workflow App API. Every error answer is an `Error`.",
        ))
        .build();
    let mut paths = Paths::new();
    for route in table(1) {
        let method = http_method(&route);
        paths.add_path_operation(route.path, vec![method], operation(&route));
    }
    doc.paths = paths;
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(ERROR_SCHEMA.into(), RefOr::T(error_schema()));
    components.security_schemes =
        security_schemes().into_iter().map(|(n, s)| (n, RefOr::T(s))).collect();
    doc
}

fn http_method(route: &Route) -> HttpMethod {
    match route.method.as_str() {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        _ => HttpMethod::Post,
    }
}

/// The security schemes, by name.
fn security_schemes() -> Vec<(String, SecurityScheme)> {
    let header = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, description)))
    };
    let bearer = |format: &str, description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .description(Some(description))
                .build(),
        )
    };
    vec![
        ("ApiKey".into(), header("Api-Key", "An API key (viewer, operator or admin role).")),
        ("BearerApiKey".into(), bearer("API key", "An API key, as `Authorization: Bearer <key>`.")),
        (
            "AppKey".into(),
            bearer(
                "app-…",
                "A workflow app's key (`Authorization: Bearer app-…`): it selects the app. \
                 An API key is refused (403 `forbidden`).",
            ),
        ),
        (
            "SinkSignature".into(),
            header(
                "webhook-signature",
                "A signed spreadsheet's call: Standard Webhooks headers `webhook-id`, \
                 `webhook-timestamp` (integer seconds, within 5 minutes) and \
                 `webhook-signature` (`v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`) \
                 under the spreadsheet's signer secret. An unsigned spreadsheet takes an \
                 admin-role API key instead.",
            ),
        ),
    ]
}

/// The names of the schemes a credential accepts (any one of them), and its role name.
fn credential(c: Credential) -> (&'static [&'static str], &'static str, String) {
    const KEY: &[&str] = &["ApiKey", "BearerApiKey"];
    match c {
        Credential::Key(role) => (
            KEY,
            role.as_str(),
            format!(
                "Needs an API key of the {} role or a higher one (viewer < operator < admin).",
                role.as_str()
            ),
        ),
        Credential::App => (&["AppKey"], "app", "Needs a workflow app's key.".into()),
        Credential::Sink => (
            &["SinkSignature", "ApiKey", "BearerApiKey"],
            "sink",
            format!(
                "A signature of the spreadsheet's signer, or an API key of the {} role.",
                Role::Admin.as_str()
            ),
        ),
        Credential::Public => (&[], "public", "Open: no key.".into()),
    }
}

/// The `{name}` captures of a path template.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn string_schema() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())
}

/// What a query parameter takes: the values its parser accepts (an empty value is refused
/// by every parser but the free-text filters').
fn query_schema(name: &str) -> Schema {
    let triggers = ["initial", "retry", "rerun", "recover", "replay", "test"];
    let error_codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let schema = match name {
        "before" | "after" => json!({"type": "string", "minLength": 1,
            "description": "A cursor: an id from `list_metadata`. Give `before` or `after`, not both."}),
        "limit" => json!({"type": "integer", "minimum": 1,
            "description": "Page size, at most `limits.max_list_limit` (default 10 a page)."}),
        "order" => json!({"type": "string", "enum": ["asc", "desc"]}),
        "status" => {
            json!({"type": "string", "enum": ["pending", "succeeded", "exhausted", "failed"]})
        }
        "status_code" => json!({"type": "integer", "minimum": 0, "maximum": 599,
            "description": "0 (no HTTP response) or an HTTP status, 100 to 599."}),
        "status_class" => json!({"type": "string", "enum": ["2xx", "3xx", "4xx", "5xx"]}),
        "success" => json!({"type": "boolean"}),
        "trigger" => json!({"type": "string", "enum": triggers}),
        "error_code" => json!({"type": "string", "enum": error_codes}),
        "created_after" | "created_before" => json!({"type": "string", "format": "date-time",
            "description": "An RFC 3339 time (Unix seconds are accepted too)."}),
        "event_type" => json!({"type": "string", "minLength": 1, "maxLength": 128}),
        "url_contains" => json!({"type": "string", "minLength": 1, "maxLength": 200}),
        "schema_id" | "schema_data_id" => json!({"type": "string",
            "description": "Accepted and ignored (the uiform and retab SDKs send it)."}),
        _ => json!({"type": "string"}),
    };
    serde_json::from_value(schema).unwrap_or_else(|_| string_schema())
}

fn operation(route: &Route) -> Operation {
    let method = route.method.as_str();
    let doc = doc_of(method, route.path);
    let (schemes, role, needs) = credential(route.credential);
    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(method, route.path)))
        .tag(tag_of(route.path))
        .summary(doc.map(|d| d.summary))
        .description(Some(needs))
        .extensions(Some(ExtensionsBuilder::new().add(ROLE_EXTENSION, role).build()));
    for scheme in schemes {
        op = op.security(SecurityRequirement::new(*scheme, Vec::<String>::new()));
    }
    for name in path_params(route.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string_schema())),
        );
    }
    for name in doc.map_or(&[][..], |d| d.query).iter().flat_map(|g| g.iter()) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(query_schema(name))),
        );
    }
    if let Some((schema, required)) = doc.and_then(|d| d.body) {
        let required = if required { Required::True } else { Required::False };
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", content)
                .required(Some(required))
                .build(),
        ));
    }
    let (status, success) = success(route, doc);
    op = op.response(status.to_string(), success);
    for (status, schema) in doc.map_or(&[][..], |d| d.also) {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(*schema))).build();
        let answer =
            ResponseBuilder::new().description("Success").content("application/json", content);
        op = op.response(status.to_string(), answer.build());
    }
    for status in error_statuses(route) {
        let answer = error_response(&status);
        op = op.response(status, answer);
    }
    op.build()
}

/// `get_v1_processors_automations_logs_log_id`: unique, as the table's (method, path) is.
fn operation_id(method: &str, path: &str) -> String {
    let words = path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty());
    std::iter::once(method.to_ascii_lowercase())
        .chain(words.map(str::to_string))
        .collect::<Vec<_>>()
        .join("_")
}

/// The group a path is listed under.
fn tag_of(path: &str) -> &'static str {
    match path {
        p if p.contains("/logs") => "logs",
        p if p.contains("/automations/") => "automations",
        p if p.starts_with("/v1/messages") || p.starts_with("/v1/deliveries") => "messages",
        p if p.starts_with("/v1/spreadsheets") || p.starts_with("/v1/integrations") => "sheets",
        p if p.starts_with("/v1/keys") => "keys",
        p if p.starts_with("/v1/") => "workflows",
        _ => "operations",
    }
}

/// The success answer: the entry's schema, or any JSON (text for `/metrics`, HTML for the
/// docs page).
fn success(route: &Route, doc: Option<&OpDoc>) -> (u16, utoipa::openapi::Response) {
    let (status, content_type, schema): (u16, &str, RefOr<Schema>) = match (doc, route.path) {
        (Some(d), _) => (d.status, "application/json", Ref::from_schema_name(d.answer).into()),
        (None, "/metrics") => (200, "text/plain", string_schema().into()),
        (None, p) if p.starts_with("/docs") => (200, "text/html", string_schema().into()),
        (None, _) => (200, "application/json", Schema::Object(Object::new()).into()),
    };
    let description = if doc.is_some() { "Success" } else { "Success (body not yet described)" };
    let response = ResponseBuilder::new()
        .description(description)
        .content(content_type, ContentBuilder::new().schema(Some(schema)).build())
        .build();
    (status, response)
}

/// The error statuses a route documents: its credential's, the ones every route can answer,
/// and `4XX`/`5XX` for the rest (every error is an `Error`).
fn error_statuses(route: &Route) -> Vec<String> {
    let mut statuses: BTreeSet<u16> = [400, 404, 500, 503].into();
    if route.credential != Credential::Public {
        statuses.extend([401, 403]);
    }
    if route.under_api_timeout {
        statuses.insert(504);
    }
    let mut out: Vec<String> = statuses.into_iter().map(|s| s.to_string()).collect();
    out.extend(["4XX".to_string(), "5XX".to_string()]);
    out
}

/// An error answer: the codes answered with that status, and the `Error` schema.
fn error_response(status: &str) -> utoipa::openapi::Response {
    let codes: Vec<String> = ApiErrorCode::ALL
        .iter()
        .filter(|c| c.status().as_str() == status)
        .map(|c| format!("`{}`: {}", c.as_str(), c.meaning()))
        .collect();
    let description = if codes.is_empty() { "Error".to_string() } else { codes.join("\n\n") };
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(ERROR_SCHEMA))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
}

/// `{code, message, status, field?}`, with every registered code.
fn error_schema() -> Schema {
    let codes: Vec<&str> = ApiErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let statuses: BTreeSet<u16> = ApiErrorCode::ALL.iter().map(|c| c.status().as_u16()).collect();
    serde_json::from_value(json!({
        "type": "object",
        "description": "Every error answer (see the README's table of codes).",
        "required": ["code", "message", "status"],
        "additionalProperties": false,
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "status": {"type": "integer", "enum": statuses},
            "field": {"type": "string", "description": "The request field at fault."},
        },
    }))
    .unwrap_or_else(|_| Schema::Object(Object::new()))
}

/// `GET /openapi.json`.
pub(super) async fn openapi_json() -> Response {
    static JSON: OnceLock<Value> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_value(document()).unwrap_or(Value::Null));
    axum::Json(body).into_response()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
