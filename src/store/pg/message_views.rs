//! Messages read back on PostgreSQL: `store::message_views`' and `store::content`'s reads,
//! beside them, into the same row types.

use tokio_postgres::{GenericClient, Row};

use super::page::read_page;
use super::{bodies, deliveries, OrStore, Pg};
use crate::ids::MessageId;
use crate::store::column::Column;
use crate::store::message_views::{conditions, MessageDetail, MessageFilter, MessageRow};
use crate::store::page::{Page, PageRequest};
use crate::store::{GoneReason, StoreError, StoreResult, WAITING_AT};
use crate::time::UnixMs;

/// `store::message_views`' columns, the count cast to bigint.
const COLUMNS: &str = "id, processor_id, automation_id, event_type, created_at, \
    (SELECT count(*) FROM deliveries WHERE deliveries.message_id = messages.id), \
    content_expunged_at";

fn from_row(r: &Row) -> StoreResult<MessageRow> {
    let id: MessageId = r.key(0, "messages")?;
    let count = r.int(5, "messages", &id)?;
    Ok(MessageRow {
        processor_id: r.opt_text(1, "messages", &id)?,
        automation_id: r.opt_id(2, "messages", &id)?,
        event_type: r.opt_text(3, "messages", &id)?,
        created_at: r.time(4, "messages", &id)?,
        delivery_count: u32::try_from(count).unwrap_or(u32::MAX),
        content_expunged_at: r.opt_time(6, "messages", &id)?,
        id,
    })
}

/// One page of messages.
pub(crate) async fn list(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    filter: &MessageFilter,
    page: &PageRequest,
) -> StoreResult<Page<MessageRow>> {
    read_page(pg, c, "messages", COLUMNS, &conditions(filter), page, from_row, |m| m.id.as_str())
        .await
}

/// One message with its payload (or why it is gone) and deliveries.
pub(crate) async fn detail(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &MessageId,
) -> StoreResult<MessageDetail> {
    let sql = format!("SELECT {COLUMNS}, payload_hash FROM messages WHERE id = $1");
    let row = c.query_opt(sql.as_str(), &[id]).await.at(pg)?;
    let row = row.ok_or(StoreError::NotFound("message"))?;
    let message = from_row(&row)?;
    let hash = row.bytes(7, "messages", id)?;
    let payload = match payload(pg, c, id, &hash).await {
        Ok(data) => Ok(data),
        Err(StoreError::ContentGone { why, .. }) => Err(why),
        Err(e) => return Err(e),
    };
    let deliveries = deliveries::of_message(pg, c, id).await?;
    Ok(MessageDetail { message, payload, deliveries })
}

/// `store::content::payload` on PostgreSQL: the payload, or why it is gone.
pub(crate) async fn payload(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &MessageId,
    hash: &[u8],
) -> StoreResult<Vec<u8>> {
    let gone = |why| StoreError::ContentGone { what: "the message's payload", why };
    if is_expunged(pg, c, id).await? {
        return Err(gone(GoneReason::Expunged));
    }
    bodies::find(pg, c, hash).await?.ok_or_else(|| gone(GoneReason::Expired))
}

/// `store::content::expunged` on PostgreSQL: whether message `id`'s content was expunged
/// (false when the message is gone).
pub(crate) async fn is_expunged(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &MessageId,
) -> StoreResult<bool> {
    let row = c
        .query_opt("SELECT content_expunged_at FROM messages WHERE id = $1", &[id])
        .await
        .at(pg)?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).is_some())
}

/// `store::content::expunge` on PostgreSQL: deletes message `id`'s payload body unless
/// another stored the same bytes (`shared`), marks the message, and makes its unclaimed
/// pending deliveries due now (a FIFO one waiting its turn keeps waiting). Returns when it
/// was first expunged.
pub(crate) async fn expunge(pg: &Pg, id: &MessageId, now: UnixMs) -> StoreResult<UnixMs> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let row = tx
        .query_opt(
            "SELECT payload_hash, content_expunged_at FROM messages WHERE id = $1 FOR UPDATE",
            &[id],
        )
        .await
        .at(pg)?
        .ok_or(StoreError::NotFound("message"))?;
    let hash = row.bytes(0, "messages", id)?;
    tx.execute("DELETE FROM bodies WHERE hash = $1 AND NOT shared", &[&hash]).await.at(pg)?;
    let expunged_at = match row.opt_time(1, "messages", id)? {
        Some(at) => at,
        None => {
            tx.execute(
                "UPDATE messages SET content_expunged_at = $2 WHERE id = $1",
                &[id, &now.as_ms()],
            )
            .await
            .at(pg)?;
            now
        }
    };
    let due = tx
        .execute(
            "UPDATE deliveries SET next_attempt_at = $2 WHERE message_id = $1 \
             AND status = 'pending' AND claimed = 0 AND next_attempt_at <> $3",
            &[id, &now.as_ms(), &WAITING_AT.as_ms()],
        )
        .await
        .at(pg)?;
    if due > 0 {
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    tx.commit().await.at(pg)?;
    Ok(expunged_at)
}
