//! Who a request is, and whether its role may do what it asks. Every keyed route is checked
//! here, in two steps: [`require_key`] authenticates the key (once per request, on every
//! keyed path) and leaves its [`Principal`]; [`require_role`], on each route with the role its
//! row of the route table names, authorizes it. A console session can leave the Principal of
//! the key it was made with (checked with `Keys::role_of`) and go through the same
//! [`require_role`], so both refuse the same things with the same answer.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiErrorCode, AppState};
use crate::auth::{self, Principal, Role, APP_KEY_PREFIX};
use crate::ids::ApiKeyId;
use crate::time::UnixMs;

/// The key `headers` present, if it is valid: 401 without a key or with an unknown, revoked
/// or expired one; 403 for an app key (the wrong kind for this API). A valid key's use is
/// noted (see [`note_use`]).
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(key) = auth::presented_key(headers) else {
        return Err(ApiError::unauthorized(
            "missing API key: send `Api-Key: <key>` or `Authorization: Bearer <key>`",
        ));
    };
    let now = UnixMs::now();
    match state.keys.authenticate(key, now) {
        Some(principal) => {
            if let Some(id) = &principal.key_id {
                note_use(state, id, now);
            }
            Ok(principal)
        }
        None if key.starts_with(APP_KEY_PREFIX) => Err(ApiError::forbidden(
            "an app key cannot use this API; use an API key (viewer, operator or admin)",
        )),
        None => Err(ApiError::unauthorized("invalid API key")),
    }
}

/// 403 `insufficient_role` unless `role` may do what needs `needed`, naming the role needed.
pub fn authorize(role: Role, needed: Role) -> Result<(), ApiError> {
    if role.allows(needed) {
        return Ok(());
    }
    Err(ApiError::new(
        ApiErrorCode::InsufficientRole,
        format!(
            "this needs the {} role (or a higher one); the key's role is {}",
            needed.as_str(),
            role.as_str()
        ),
    ))
}

/// Writes the key's last-used time, at most once per key per
/// [`auth::LAST_USED_RESOLUTION_MS`], through the store's writer, without holding up the
/// request. A failed write loses one last-used time and is logged (never the key).
fn note_use(state: &AppState, id: &ApiKeyId, now: UnixMs) {
    if !state.keys.first_use_in_period(id, now) {
        return;
    }
    let (store, id) = (state.store.clone(), id.clone());
    tokio::spawn(async move {
        if let Err(e) = store.note_key_used(id.clone(), now).await {
            tracing::warn!(key_id = %id, error = %e, "recording a key's last use failed");
        }
    });
}

/// The layer on every keyed path: the request's key must be valid ([`authenticate`]); who
/// it is, a [`Principal`], is left in the request's extensions for [`require_role`].
pub(super) async fn require_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match authenticate(&state, req.headers()) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The layer on each keyed route, with the role its row in the route table names: the
/// [`Principal`] that [`require_key`] (or, later, a console session) left must hold it.
/// Without one the request was not authenticated at all: 401.
pub(super) async fn require_role(State(needed): State<Role>, req: Request, next: Next) -> Response {
    let checked = match req.extensions().get::<Principal>() {
        Some(principal) => authorize(principal.role, needed),
        None => Err(ApiError::unauthorized("missing API key")),
    };
    match checked {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
