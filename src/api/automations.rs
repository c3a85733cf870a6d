//! `/v1/processors/automations/endpoints`: create, list, get, update, enable/disable, delete,
//! secret rotation (the test call is in [`super::test_call`]).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::automation_health::{refuse_operational, shown};
use super::extract::{
    list_body, path_id, ApiQuery, JsonBody, NoBody, NoQuery, PageParams, QueryParams,
};
use super::openapi_fields as f;
use super::{ApiError, ApiResult, AppState};
use crate::auth::Principal;
use crate::delivery::rate_limit::{RateLimit, MAX_PER_SEC};
use crate::delivery::signing;
use crate::ids::{self, AutomationId};
use crate::redact::{HeaderRedaction, REDACTED};
use crate::store::{Actor, Automation, AutomationFilter, AutomationSettings, DeliveryOrder};
use crate::time::UnixMs;

/// A rotated-out secret keeps signing this long, so receivers can switch over.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

/// Headers hookrelay sets itself; an automation may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// Create or update body; on update every field is optional and absent ones keep their value.
/// Any other field is refused: a misspelt one (`enable` for `enabled`) must not be ignored.
/// The console's forms fill the same fields, so they are judged by the same rules.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "An automation to create (`name`, `processor_id`, `webhook_url` required) \
    or the fields to change (absent ones keep their value). Any other field is refused.")]
pub(crate) struct AutomationBody {
    #[schema(schema_with = f::name_or_null)]
    pub(crate) name: Option<String>,
    #[schema(schema_with = f::name_or_null)]
    pub(crate) processor_id: Option<String>,
    #[schema(schema_with = f::webhook_url_or_null)]
    pub(crate) webhook_url: Option<String>,
    #[schema(schema_with = f::header_map)]
    pub(crate) webhook_headers: Option<BTreeMap<String, String>>,
    pub(crate) need_validation: Option<bool>,
    #[schema(schema_with = f::language_or_null)]
    pub(crate) default_language: Option<String>,
    pub(crate) enabled: Option<bool>,
    /// The event types it receives: `null` (`Some(None)`) is every one.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = f::event_types)]
    pub(crate) event_types: Option<Option<Vec<String>>>,
    /// `parallel` (the default) or `fifo`: one message at a time, in ingest order; a change
    /// applies to the messages already waiting (see `store::fifo`). `null` is refused rather
    /// than read as "keep": it names no ordering.
    #[serde(default, deserialize_with = "ordering_field")]
    #[schema(value_type = super::openapi_schemas::AutomationOrdering)]
    pub(crate) ordering: Option<DeliveryOrder>,
    // Read as any JSON value and judged by `rate_limit`, so that `"5"`, `1.5` or `0` are
    // refused with the same message naming the field.
    /// At most this many calls start in any second (1 to 10 000); `null` removes the limit.
    #[serde(default, deserialize_with = "any_or_null")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1, maximum = 10000)]
    pub(crate) rate_limit_per_sec: Option<Option<Value>>,
    /// Accepted and ignored: retab 0.0.49's `endpoints.create` sends the model's computed
    /// `"object": "automation.endpoint"`. (uiform's and retab's `endpoints.update` send only
    /// fields above, uiform's with `null` for those not given.)
    #[serde(rename = "object")]
    #[schema(value_type = Option<String>)]
    pub(crate) _object: Option<serde::de::IgnoredAny>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

/// `ordering` as given: `parallel` or `fifo`, anything else (`null`, a number, another name)
/// refused with the field named (the decoder blames the field this fails on).
fn ordering_field<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DeliveryOrder>, D::Error> {
    let value = Value::deserialize(d)?;
    value.as_str().and_then(DeliveryOrder::parse).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("must be \"parallel\" or \"fifo\", not {value}"))
    })
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`), taking any value.
fn any_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

/// The rate limit `given` (a whole number of calls per second, or `null`: none).
fn rate_limit(given: Option<Value>) -> ApiResult<Option<RateLimit>> {
    let Some(value) = given else { return Ok(None) };
    value.as_u64().and_then(RateLimit::new).map(Some).ok_or_else(|| {
        ApiError::invalid(
            "rate_limit_per_sec",
            format!(
                "must be a whole number of calls per second from 1 to {MAX_PER_SEC}, or null \
                 for no limit (got {value})"
            ),
        )
    })
}

/// The automation as the API shows it (uiform `Endpoint` plus hookrelay's fields), header
/// secrets redacted by `rule`.
pub(super) fn automation_json(a: &Automation, rule: &HeaderRedaction) -> Value {
    let headers: BTreeMap<&str, &str> =
        a.settings.webhook_headers.iter().map(|(k, v)| (k.as_str(), rule.shown(k, v))).collect();
    json!({
        "object": "automation.endpoint",
        "id": a.id,
        "name": a.settings.name,
        "processor_id": a.settings.processor_id,
        "webhook_url": a.settings.webhook_url,
        "webhook_headers": headers,
        "need_validation": a.settings.need_validation,
        "default_language": a.settings.default_language,
        "enabled": a.settings.enabled,
        "event_types": a.settings.event_types,
        "ordering": a.settings.ordering.as_str(),
        "rate_limit_per_sec": a.settings.rate_limit_per_sec.map(RateLimit::per_sec),
        "created_at": a.created_at.rfc3339(),
        "updated_at": a.updated_at.rfc3339(),
    })
}

fn check_text(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ApiError::invalid(field, format!("must be at most {max} bytes")));
    }
    // A name is shown in tables, terminals and logs: a control character there could
    // recolour or rewrite what an operator reads.
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, "must not hold control characters"));
    }
    Ok(())
}

/// An absolute http(s) URL with a host. Whether its address may be called is decided at
/// send time (the SSRF guard), so a URL is accepted here even if it will be refused then.
pub(super) fn check_webhook_url(url: &str) -> ApiResult<()> {
    check_text("webhook_url", url, 2048)?;
    // The URL parser would drop surrounding blanks and read `http:///x` or `http:x` as
    // `http://x/`, while the text stored (and shown) is the one given: refuse what is not
    // already what it would be read as.
    if url.trim() != url {
        return Err(ApiError::invalid("webhook_url", "must not begin or end with blanks"));
    }
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if after_scheme.split(['/', '\\', '?', '#']).next().unwrap_or("").is_empty() {
        return Err(ApiError::invalid(
            "webhook_url",
            "must be an absolute http:// or https:// URL with a host after `//`",
        ));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| ApiError::invalid("webhook_url", format!("not an absolute URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ApiError::invalid(
            "webhook_url",
            "must be an absolute http:// or https:// URL",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid(
            "webhook_url",
            "must not carry credentials; use webhook_headers",
        ));
    }
    Ok(())
}

fn check_headers(headers: &BTreeMap<String, String>, max: usize) -> ApiResult<()> {
    if headers.len() > max {
        return Err(ApiError::invalid("webhook_headers", format!("at most {max} headers")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in headers {
        let field = format!("webhook_headers.{name}");
        // Names are case-insensitive on the wire: of `X-A` and `x-a` a receiver would get one,
        // the other dropped without a word.
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(ApiError::invalid(field, "is given twice (header names ignore case)"));
        }
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::invalid(field, "not a valid header name"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ApiError::invalid(field, "is set by hookrelay and cannot be overridden"));
        }
        // `HeaderValue` also takes bytes past ASCII (obs-text), which receivers read
        // differently; only visible ASCII, spaces and tabs are sent as given.
        let visible = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !visible || value.len() > 4096 {
            return Err(ApiError::invalid(
                field,
                "not a valid header value (visible ASCII, at most 4096 bytes)",
            ));
        }
    }
    Ok(())
}

/// Merges `body` over `current` (or defaults, on create) and validates the result.
fn merged_input(
    body: AutomationBody,
    current: Option<&Automation>,
    max_headers: usize,
) -> ApiResult<AutomationSettings> {
    let required =
        |value: Option<String>, old: Option<&String>, field: &str| -> ApiResult<String> {
            value.or_else(|| old.cloned()).ok_or_else(|| ApiError::invalid(field, "is required"))
        };
    let name = required(body.name, current.map(|c| &c.settings.name), "name")?;
    let processor_id =
        required(body.processor_id, current.map(|c| &c.settings.processor_id), "processor_id")?;
    let webhook_url =
        required(body.webhook_url, current.map(|c| &c.settings.webhook_url), "webhook_url")?;
    check_text("name", &name, 256)?;
    check_text("processor_id", &processor_id, 256)?;
    check_webhook_url(&webhook_url)?;
    let mut webhook_headers = body
        .webhook_headers
        .unwrap_or_else(|| current.map(|c| c.settings.webhook_headers.clone()).unwrap_or_default());
    // A value shown redacted and sent back unchanged keeps the stored secret.
    for (name, value) in webhook_headers.iter_mut() {
        if value == REDACTED {
            match current.and_then(|c| c.settings.webhook_headers.get(name)) {
                Some(old) => value.clone_from(old),
                None => {
                    return Err(ApiError::invalid(
                        format!("webhook_headers.{name}"),
                        "a redacted value needs a stored one",
                    ))
                }
            }
        }
    }
    check_headers(&webhook_headers, max_headers)?;
    let event_types = match body.event_types {
        Some(types) => types,
        None => current.and_then(|c| c.settings.event_types.clone()),
    };
    if let Some(types) = &event_types {
        if types.is_empty()
            || types.len() > 64
            || types.iter().any(|t| t.is_empty() || t.len() > 128)
        {
            return Err(ApiError::invalid(
                "event_types",
                "1 to 64 non-empty names (or null for every event type)",
            ));
        }
    }
    let default_language = body
        .default_language
        .or_else(|| current.map(|c| c.settings.default_language.clone()))
        .unwrap_or_else(|| "en".into());
    check_text("default_language", &default_language, 16)?;
    let rate_limit_per_sec = match body.rate_limit_per_sec {
        Some(given) => rate_limit(given)?,
        None => current.and_then(|c| c.settings.rate_limit_per_sec),
    };
    Ok(AutomationSettings {
        name,
        processor_id,
        webhook_url,
        webhook_headers,
        need_validation: body
            .need_validation
            .or(current.map(|c| c.settings.need_validation))
            .unwrap_or(false),
        default_language,
        enabled: body.enabled.or(current.map(|c| c.settings.enabled)).unwrap_or(true),
        event_types,
        ordering: body
            .ordering
            .or(current.map(|c| c.settings.ordering))
            .unwrap_or(DeliveryOrder::Parallel),
        rate_limit_per_sec,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    _: NoQuery,
    JsonBody(body): JsonBody<AutomationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let automation = create_automation(&state, body).await?;
    let mut body = shown(&state, &automation);
    body["secret"] = automation.secret.clone().into();
    Ok((StatusCode::CREATED, Json(body)))
}

/// Validates `body` as a new automation and stores it with a new secret: the API's create,
/// also the console's form.
pub(crate) async fn create_automation(
    state: &AppState,
    body: AutomationBody,
) -> ApiResult<Automation> {
    let settings = merged_input(body, None, state.config.limits.max_webhook_headers)?;
    let now = UnixMs::now();
    let automation = Automation {
        id: AutomationId::new(),
        settings,
        secret: signing::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: now,
        updated_at: now,
    };
    Ok(state.store.create_automation(automation).await?)
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(flatten)]
    page: PageParams,
    name: Option<String>,
    webhook_url: Option<String>,
    processor_id: Option<String>,
}

impl QueryParams for ListQuery {
    const ACCEPTED: &'static [&'static [&'static str]] =
        &[PageParams::NAMES, &["name", "webhook_url", "processor_id"]];
}

pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.to_request(ids::AUTOMATION, state.config.limits.max_list_limit)?;
    let filter =
        AutomationFilter { name: q.name, webhook_url: q.webhook_url, processor_id: q.processor_id };
    let page = state.store.list_automations(filter, page).await?;
    let items = page.items.iter().map(|a| shown(&state, a)).collect();
    Ok(Json(list_body(items, page.before, page.after)))
}

/// Validates an automation id from the path (404 when malformed, like an unknown id).
pub(crate) fn automation_id(id: String) -> ApiResult<AutomationId> {
    path_id(id, "automation")
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let automation = state.store.automation(automation_id(id)?).await?;
    Ok(Json(shown(&state, &automation)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    _: NoQuery,
    JsonBody(body): JsonBody<AutomationBody>,
) -> ApiResult<Json<Value>> {
    apply_update(&state, id, body, &principal).await
}

/// Enables (`ON`) or disables the automation: the update `{"enabled": ON}` alone, which an
/// operator may make (a PUT needs an admin).
pub(super) async fn set_enabled<const ON: bool>(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    switch(&state, id, ON, &principal).await
}

/// Enables or disables the automation `id` for `principal`: what the API's enable/disable
/// and the console's buttons both do (the change is recorded in its trail).
pub(crate) async fn switch(
    state: &AppState,
    id: String,
    enabled: bool,
    principal: &Principal,
) -> ApiResult<Json<Value>> {
    let body = AutomationBody { enabled: Some(enabled), ..Default::default() };
    apply_update(state, id, body, principal).await
}

/// PUT's update, also enable/disable's, answered as the API shows an automation.
async fn apply_update(
    state: &AppState,
    id: String,
    body: AutomationBody,
    principal: &Principal,
) -> ApiResult<Json<Value>> {
    let updated = update_automation(state, id, body, principal).await?;
    Ok(Json(shown(state, &updated)))
}

/// Merges `body` over the automation `id`, validates the result and stores it as made by
/// `principal` (an enable or disable is recorded with its key): the API's update, also the
/// console's edit form.
pub(crate) async fn update_automation(
    state: &AppState,
    id: String,
    body: AutomationBody,
    principal: &Principal,
) -> ApiResult<Automation> {
    let current = state.store.automation(automation_id(id)?).await?;
    // Compared whole (its Debug form), so a field added to the body later is covered too.
    let only_enabled =
        AutomationBody { enabled: body.enabled, _object: body._object, ..Default::default() };
    if format!("{body:?}") != format!("{only_enabled:?}") {
        refuse_operational(state, &current.id, "edited")?;
    }
    let input = merged_input(body, Some(&current), state.config.limits.max_webhook_headers)?;
    let actor = Actor::of_key(principal.key_id.as_ref());
    let updated = state.store.update_automation(current.id, input, actor).await?;
    // An enable or disable may have queued an operational webhook.
    state.dispatcher.wake();
    Ok(updated)
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let id = automation_id(id)?;
    refuse_operational(&state, &id, "deleted")?;
    state.store.delete_automation(id.clone()).await?;
    Ok(Json(json!({"object": "automation.endpoint", "id": id, "deleted": true})))
}

pub(super) async fn secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let a = state.store.automation(automation_id(id)?).await?;
    Ok(Json(
        json!({"secret": a.secret, "previous_secret_expires_at": a.previous_secret_until.map(UnixMs::rfc3339)}),
    ))
}

pub(super) async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let a = rotate_secret(&state, id).await?;
    Ok(Json(
        json!({"secret": a.secret, "previous_secret_expires_at": a.previous_secret_until.map(UnixMs::rfc3339)}),
    ))
}

/// Gives the automation `id` a new secret; the old one keeps signing for
/// [`ROTATION_OVERLAP_MS`]: the API's rotate, also the console's button.
pub(crate) async fn rotate_secret(state: &AppState, id: String) -> ApiResult<Automation> {
    let id = automation_id(id)?;
    refuse_operational(state, &id, "given a new secret (set operational.secret)")?;
    Ok(state.store.rotate_automation_secret(id, signing::new_secret(), ROTATION_OVERLAP_MS).await?)
}
