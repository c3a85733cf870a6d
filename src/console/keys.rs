//! The Keys page: the stored keys (never a key itself, only ever stored hashed), a create form
//! whose new key is shown once, and a Revoke button, through the API's own key services
//! ([`crate::api::keys`]). A revoked key's sessions end at their next request (the session
//! check asks the live key set), so revoking the key of the session in use signs it out.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::session::{action_refusal, form_field, Signed};
use super::Console;
use crate::api::access::authorize;
use crate::api::keys::{create_key, revoke_key, CreateBody};
use crate::api::ApiError;
use crate::auth::Role;
use crate::ids::{self, ApiKey, IdKind};
use crate::store::{PageRequest, StoredKey};
use crate::time::UnixMs;

/// The create form's fields an API error may name.
const FIELDS: &[&str] = &["name", "role", "expires_at"];

/// A key as the page lists it.
fn key_row(k: &StoredKey, now: UnixMs) -> Value {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "enabled"
    };
    json!({
        "id": k.id,
        "name": k.name,
        "role": k.role.as_str(),
        "created_at": k.created_at.rfc3339(),
        "expires_at": k.expires_at.map(UnixMs::rfc3339),
        "last_used_at": k.last_used_at.map(UnixMs::rfc3339),
        "revoked_at": k.revoked_at.map(UnixMs::rfc3339),
        "state": state,
    })
}

/// Keys a page lists, newest first.
const PAGE_SIZE: u32 = 100;

/// What the page shows besides the list: the form as typed, an error next to its field, or
/// the key just created; and the page of the list, after the key `after` (none: the first).
struct Extra {
    input: Value,
    error: Option<ApiError>,
    created: Option<(StoredKey, String)>,
    after: Option<String>,
}

/// The list page's query: the key the page starts after.
#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    after: Option<String>,
}

/// The page, answered with `status`.
async fn page(console: &Console, signed: &Signed, status: StatusCode, extra: Extra) -> Response {
    if extra.after.as_deref().is_some_and(|a| !ids::is_valid(ApiKey::PREFIX, a)) {
        return console.pages.error(StatusCode::BAD_REQUEST, "after: not a key id");
    }
    let request = PageRequest { before: None, after: extra.after, limit: PAGE_SIZE, desc: true };
    let keys = match console.app.store.list_keys(request).await {
        Ok(keys) => keys,
        Err(e) => return console.failed(e),
    };
    let now = UnixMs::now();
    let role = signed.principal.role;
    let error = extra.error.map(|e| {
        let field = e.field.as_deref().filter(|f| FIELDS.contains(f));
        json!({"field": field, "message": e.message})
    });
    let context = json!({
        "session": signed.context(),
        "keys": keys.items.iter().map(|k| key_row(k, now)).collect::<Vec<_>>(),
        "older": keys.after,
        "roles": Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "may_create": authorize(role, console.keys_create_role).is_ok(),
        "may_revoke": authorize(role, console.keys_revoke_role).is_ok(),
        "input": extra.input,
        "error": error,
        "created": extra.created.map(|(k, key)| json!({"name": k.name, "role": k.role.as_str(),
                                                        "key": key})),
    });
    console.pages.render(status, "keys.html", &context)
}

/// The list and the create form.
pub(super) async fn list(
    State(console): State<Console>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(denied) = authorize(signed.principal.role, console.keys_list_role) {
        return console.pages.error(StatusCode::FORBIDDEN, &denied.message);
    }
    let input = json!({"role": "viewer"});
    let extra = Extra { input, error: None, created: None, after: query.after };
    page(&console, &signed, StatusCode::OK, extra).await
}

/// Creates a key as the API's create does and shows it, once; on an error nothing is stored
/// and the form is shown again as typed.
pub(super) async fn create(
    State(console): State<Console>,
    signed: Signed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = console.keys_create_role;
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, role) {
        return refused;
    }
    let field = |name: &str| form_field(&body, name);
    // An empty expiry field is no expiry; anything else is the API's to judge.
    let expires_at = field("expires_at").filter(|at| !at.trim().is_empty());
    let api_body = CreateBody { name: field("name"), role: field("role"), expires_at };
    let input = json!({"name": api_body.name, "role": api_body.role,
                       "expires_at": api_body.expires_at});
    match create_key(&console.app, api_body).await {
        Ok(created) => {
            let input = json!({"role": "viewer"});
            let extra = Extra { input, error: None, created: Some(created), after: None };
            page(&console, &signed, StatusCode::OK, extra).await
        }
        Err(e) => {
            let status = e.status();
            let extra = Extra { input, error: Some(e), created: None, after: None };
            page(&console, &signed, status, extra).await
        }
    }
}

/// Revokes the key as the API's revoke does. Revoking the session's own key ends the session:
/// the browser is sent to sign-in.
pub(super) async fn revoke(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let role = console.keys_revoke_role;
    if let Some(refused) = action_refusal(&console, &signed, &headers, &body, role) {
        return refused;
    }
    match revoke_key(&console.app, id).await {
        Ok(revoked) if signed.principal.key_id.as_ref() == Some(&revoked.id) => {
            Redirect::to("/console/sign-in").into_response()
        }
        Ok(_) => Redirect::to("/console/keys").into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            console.pages.error(StatusCode::NOT_FOUND, "There is no key with this id.")
        }
        Err(e) => console.pages.error(e.status(), &e.message),
    }
}
