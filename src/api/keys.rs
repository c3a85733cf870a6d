//! `/v1/keys`: create an API key of a role (shown once, stored hashed), list the keys (never
//! a key itself), revoke one. Creating and revoking change the set requests are judged by in
//! the same request: a revoked key is refused from its revocation's answer on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{list_body, path_id, ApiQuery, JsonBody, NoBody, NoQuery, PageParams};
use super::{ApiError, ApiResult, AppState};
use crate::auth::{self, ActiveKey, Role};
use crate::ids::{ApiKey, ApiKeyId, IdKind};
use crate::store::StoredKey;
use crate::time::UnixMs;

/// The longest key name, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// A key to create. `name` and `role` are optional here only so that a missing one is
/// answered naming it (serde's own error names no field).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyCreateBody, description = "An API key to create. Any other field is refused.")]
pub(crate) struct CreateBody {
    /// 1 to 256 bytes of UTF-8, not only blanks, no control character.
    #[schema(required, nullable = false, schema_with = super::openapi_fields::name)]
    pub(crate) name: Option<String>,
    #[schema(required, nullable = false, value_type = super::openapi_schemas::KeyRole)]
    pub(crate) role: Option<String>,
    /// When it stops working (RFC 3339, in the future); `null`: never.
    #[schema(format = DateTime)]
    pub(crate) expires_at: Option<String>,
}

/// The key as the API lists it: everything stored but its hash.
fn key_json(k: &StoredKey) -> Value {
    json!({
        "object": "api_key",
        "id": k.id,
        "name": k.name,
        "role": k.role.as_str(),
        "created_at": k.created_at.rfc3339(),
        "expires_at": k.expires_at.map(UnixMs::rfc3339),
        "last_used_at": k.last_used_at.map(UnixMs::rfc3339),
        "revoked_at": k.revoked_at.map(UnixMs::rfc3339),
    })
}

/// The body's fields, checked: a name of 1 to [`MAX_NAME_BYTES`] bytes that is not only
/// blanks, a known role, an expiry in the future.
fn checked(body: CreateBody, now: UnixMs) -> ApiResult<(String, Role, Option<UnixMs>)> {
    let name = body.name.ok_or_else(|| ApiError::invalid("name", "is required"))?;
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {MAX_NAME_BYTES} bytes, without control characters"),
        ));
    }
    let role = body.role.ok_or_else(|| ApiError::invalid("role", "is required"))?;
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::invalid("role", format!("`{role}` is not a role: viewer, operator or admin"))
    })?;
    let expires_at = body
        .expires_at
        .map(|at| {
            UnixMs::parse(&at).ok_or_else(|| {
                ApiError::invalid(
                    "expires_at",
                    format!("`{at}` is not an RFC 3339 time or Unix seconds, up to year 9999"),
                )
            })
        })
        .transpose()?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    Ok((name, role, expires_at))
}

/// 201 with the new key, the only time it is shown.
pub(super) async fn create(
    State(state): State<AppState>,
    _: NoQuery,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (stored, key) = create_key(&state, body).await?;
    let mut body = key_json(&stored);
    body["key"] = key.into();
    Ok((StatusCode::CREATED, Json(body)))
}

/// Checks `body`, stores the new key's hash and adds it to the live key set: the stored key
/// and the key itself, to be shown once. The API's create, also the console's form.
pub(crate) async fn create_key(
    state: &AppState,
    body: CreateBody,
) -> ApiResult<(StoredKey, String)> {
    let now = UnixMs::now();
    let (name, role, expires_at) = checked(body, now)?;
    let key = auth::generate_key(role);
    let hash = auth::key_hash(&key);
    let stored = StoredKey {
        id: ApiKeyId::new(),
        name,
        role,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    state.store.add_key(hash, stored.clone()).await?;
    state.keys.add(ActiveKey { hash, id: Some(stored.id.clone()), role, expires_at });
    Ok((stored, key))
}

/// The stored keys, revoked ones included (with `revoked_at`), in cursor pages like every
/// list (newest first by default). The keys of the config are not stored, so not listed.
pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = page.to_request(ApiKey::PREFIX, state.config.limits.max_list_limit)?;
    let page = state.store.list_keys(page).await?;
    Ok(Json(list_body(page.items.iter().map(key_json).collect(), page.before, page.after)))
}

/// Revokes the key: refused from this answer on. Revoking it again changes nothing.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    Ok(Json(key_json(&revoke_key(&state, id).await?)))
}

/// Revokes the key `id` in the store and the live key set (sessions made with it end at
/// their next request): the API's revoke, also the console's button.
pub(crate) async fn revoke_key(state: &AppState, id: String) -> ApiResult<StoredKey> {
    let id: ApiKeyId = path_id(id, "key")?;
    let revoked = state.store.revoke_key(id.clone(), UnixMs::now()).await?;
    state.keys.revoke(&id);
    Ok(revoked)
}
