//! Content that was stored and is gone: a message's payload (and the request bodies of its
//! logs, which are that payload), a response body, a snapshot or an uploaded file whose body
//! row no longer exists. Content retention deletes bodies no longer used within its window,
//! even when rows still refer to them; an expunge (`DELETE /v1/messages/{id}/content`)
//! erases one message's content at once. Either way the rows that referred to the content
//! stay readable, and say which of the two happened ([`GoneReason`]) rather than failing as
//! a corrupt database would.
//!
//! Bodies are content-addressed: a message whose payload is byte-identical to an expunged
//! one shares its body. An expunge deletes the body only when nothing else ever stored the
//! same bytes (`bodies.shared`); otherwise the bytes stay for the others that posted them,
//! until content retention, and the expunged message never shows them again (it is marked,
//! and the mark is read before its payload).

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, StoreResult};
use crate::ids::MessageId;
use crate::outbound::ErrorCode;
use crate::time::UnixMs;

/// Why content that was stored is no longer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// Content retention deleted it (or, in a database damaged by an older build, it went
    /// missing: the two cannot be told apart, and either way it is not coming back).
    Expired,
    /// Its message's content was expunged on request.
    Expunged,
}

impl GoneReason {
    /// As shown in a `*_state` field of the API (`"expired"`, `"expunged"`).
    pub fn as_str(self) -> &'static str {
        match self {
            GoneReason::Expired => "expired",
            GoneReason::Expunged => "expunged",
        }
    }

    /// The code of the log that ends a delivery which cannot be sent for this reason.
    pub fn error_code(self) -> ErrorCode {
        match self {
            GoneReason::Expired => ErrorCode::PayloadMissing,
            GoneReason::Expunged => ErrorCode::ContentExpunged,
        }
    }
}

/// Whether message `message_id`'s content was expunged (false when the message is gone).
/// Asked before its payload is read, not only once it is found missing: a message posted
/// later with the same bytes stores that body again, which must not bring the expunged
/// message's content back.
pub(super) fn expunged(conn: &Connection, message_id: &MessageId) -> StoreResult<bool> {
    let expunged_at: Option<Option<i64>> = conn
        .prepare_cached("SELECT content_expunged_at FROM messages WHERE id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?;
    Ok(expunged_at.flatten().is_some())
}

/// The payload of message `message_id` (stored under `hash`), or why it is gone.
pub(super) fn payload(
    conn: &Connection,
    message_id: &MessageId,
    hash: &[u8],
) -> StoreResult<Vec<u8>> {
    let gone = |why| StoreError::ContentGone { what: "the message's payload", why };
    if expunged(conn, message_id)? {
        return Err(gone(GoneReason::Expunged));
    }
    super::bodies::find(conn, hash)?.ok_or_else(|| gone(GoneReason::Expired))
}

/// Erases message `message_id`'s content: deletes its payload body, which is also the
/// request body of every log of it (every call made for a message sends its payload, reruns
/// included), unless another message, log, snapshot or upload stored the same bytes too
/// (see the module doc), marks it expunged, and makes its pending deliveries that are not held by the
/// dispatcher due now, so they end at once rather than at their next retry: the dispatcher
/// ends each `failed` with an `E_CONTENT_EXPUNGED` log (a held one as its call would start;
/// one whose call is in flight ends as that call does, or at its next attempt). Returns
/// when the content was first expunged: calling it again changes nothing.
///
/// Response bodies are kept: they are the receivers' answers, not the producer's content,
/// and content-addressed answers such as `{"ok":true}` are shared by the logs of many other
/// messages (one identical to the payload, an echo, makes the payload shared: both stay until
/// content retention). Content retention removes them in time.
fn expunge(conn: &Connection, message_id: &MessageId, now: UnixMs) -> StoreResult<UnixMs> {
    let found: Option<(Vec<u8>, Option<UnixMs>)> = conn
        .prepare_cached("SELECT payload_hash, content_expunged_at FROM messages WHERE id = ?1")?
        .query_row([message_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (payload_hash, expunged_at) = found.ok_or(StoreError::NotFound("message"))?;
    conn.prepare_cached("DELETE FROM bodies WHERE hash = ?1 AND shared = 0")?
        .execute([&payload_hash])?;
    let expunged_at = match expunged_at {
        Some(at) => at,
        None => {
            conn.prepare_cached("UPDATE messages SET content_expunged_at = ?2 WHERE id = ?1")?
                .execute(params![message_id, now])?;
            now
        }
    };
    // A FIFO delivery waiting its turn keeps waiting: it ends when its turn comes.
    conn.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2 \
         WHERE message_id = ?1 AND status = 'pending' AND claimed = 0 AND next_attempt_at != ?3",
    )?
    .execute(params![message_id, now, super::WAITING_AT])?;
    Ok(expunged_at)
}

impl super::Store {
    /// Erases message `id`'s content (see [`expunge`]); [`StoreError::NotFound`] for an
    /// unknown message.
    pub async fn expunge_message(&self, id: MessageId) -> StoreResult<UnixMs> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::message_views::expunge(p, &id, UnixMs::now()).await
            }
        };
        db.write(move |c| expunge(c, &id, UnixMs::now())).await
    }
}
