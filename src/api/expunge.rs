//! `DELETE /v1/messages/{id}/content`: erases a message's content on request (GDPR
//! erasure). The message, its deliveries and its logs stay, marked expunged; what a client
//! then reads or asks of them says so (see `store::content`). Idempotent: the same answer
//! every time, with when the content was first expunged.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::extract::{path_id, NoBody, NoQuery};
use super::{ApiResult, AppState};

/// Deletes the message's payload (the request body of all its logs), marks it expunged,
/// and ends its deliveries still to be sent: they are due at once, and the dispatcher, woken
/// here, ends each `failed` with an `E_CONTENT_EXPUNGED` log.
pub(super) async fn expunge_content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let id = path_id(id, "message")?;
    let expunged_at = state.store.expunge_message(id.clone()).await?;
    state.dispatcher.wake();
    Ok(Json(json!({
        "object": "message.content_expunged",
        "id": id,
        "content_expunged_at": expunged_at.rfc3339(),
    })))
}
