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

use super::openapi_extra as x;
use super::openapi_fields;
use super::openapi_health as h;
use super::openapi_ops::{doc_of, query_required, query_schema, OpDoc};
use super::openapi_recover as r;
use super::openapi_schemas as s;
use super::routes::{table, Credential, Route};
use super::{
    automations, keys, messages, recover, replay, rerun, sheet_signer, sheets, workflow_inputs,
    workflows, ApiErrorCode,
};
use crate::auth::Role;

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
    s::AutomationOrdering,
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
    replay::ReplayBody,
    sheets::CreateBody,
    sheet_signer::SignerBody,
    workflows::RunBody,
    workflows::StopBody,
    workflow_inputs::FileItem,
    x::ReplayJob,
    x::ContentExpunged,
    x::Spreadsheet,
    x::SpreadsheetList,
    x::SpreadsheetDeleted,
    x::SheetValues,
    x::SheetAppended,
    x::SheetRow,
    x::WorkflowRunResult,
    x::WorkflowRunStarted,
    x::WorkflowRunDetail,
    x::WorkflowStopped,
    x::WorkflowLogList,
    x::WorkflowParameters,
    x::UploadForm,
    x::UploadedFile,
    x::Health,
    x::Readiness,
    x::OpenApiDocument,
    x::Text,
    x::Binary,
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
    for r in openapi_fields::refinements() {
        if let Some(schema) = components.schemas.get_mut(r.schema) {
            let refined = serde_json::to_value(&*schema)
                .map(|base| openapi_fields::refine(base, &r))
                .and_then(serde_json::from_value);
            if let Ok(refined) = refined {
                *schema = refined;
            }
        }
    }
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
        // The key schemes first: schemathesis's `ignored_auth` spoils the first scheme only;
        // were it the signature, the admin key it still sends would rightly be taken.
        Credential::Sink => (
            &["ApiKey", "BearerApiKey", "SinkSignature"],
            "sink",
            format!(
                "A signed spreadsheet (a webhook secret or a signer automation) takes only \
                 calls signed with its secret; an unsigned one, an API key of the {} role.",
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

pub(super) fn string_schema() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())
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
                .required(if query_required(route.path, name) {
                    Required::True
                } else {
                    Required::False
                })
                .schema(Some(query_schema(route.path, name))),
        );
    }
    if let Some(d) = doc {
        if let Some((schema, required)) = d.body {
            let required = if required { Required::True } else { Required::False };
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(d.body_type, content(schema))
                    .required(Some(required))
                    .build(),
            ));
        }
    }
    let (status, success) = success(route, doc);
    op = op.response(status.to_string(), success);
    for status in error_statuses(route) {
        let answer = error_response(&status);
        op = op.response(status, answer);
    }
    // After the errors: an `also` at an error status (`/readyz`'s 503) replaces `Error`.
    for (status, schema) in doc.map_or(&[][..], |d| d.also) {
        let described = if *status < 400 { "Success" } else { "Not ready" };
        let answer = ResponseBuilder::new().description(described).content(JSON, content(schema));
        op = op.response(status.to_string(), answer.build());
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

/// JSON, the content type of most bodies and of every error.
const JSON: &str = "application/json";

/// A content of the schema named `schema`.
fn content(schema: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build()
}

/// The success answer: the entry's schema (in each of its content types), or any JSON for
/// a route without an entry (`every_route_has_an_entry` fails on one).
fn success(route: &Route, doc: Option<&OpDoc>) -> (u16, utoipa::openapi::Response) {
    let Some(d) = doc else {
        let any = ContentBuilder::new().schema(Some(Schema::Object(Object::new()))).build();
        let r = ResponseBuilder::new().description(format!("{} (not described)", route.path));
        return (200, r.content(JSON, any).build());
    };
    let mut response =
        ResponseBuilder::new().description("Success").content(d.answer_type, content(d.answer));
    if let Some((content_type, schema)) = d.alternative {
        response = response.content(content_type, content(schema));
    }
    (d.status, response.build())
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
    ResponseBuilder::new().description(description).content(JSON, content(ERROR_SCHEMA)).build()
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
