//! Retention on PostgreSQL: `store::retention`'s batches, beside them, each its own short
//! transaction, reading through the same indexes (logs and messages by their time-sortable
//! ids, content by `bodies_used`). Run by the instance holding the `retention` duty; what
//! another instance writes meanwhile is re-checked by each delete's own condition:
//! - a message gets a delivery made pending again (a recover) after it was examined: its
//!   deliveries are deleted only while none is pending, and the message only if it has none
//!   left, so it is kept with its pending delivery;
//! - a body is stored again (its `used_at` refreshed) after it was examined: the delete asks
//!   `used_at` to be still before the window, so the refreshed body stays.
//!
//! Content has no rowid here (its key is its hash): a batch's place is `(used_at, the first 8
//! bytes of the hash)`, carried in `BodiesBatch::last` as two i64 as SQLite's `(used_at,
//! rowid)`. Bodies of one `used_at` whose hashes share those 8 bytes with the last one
//! examined wait for the next pass.

use std::collections::HashSet;
use std::sync::Arc;

use super::{OrStore, Pg};
use crate::ids::{LogId, MessageId};
use crate::store::column::Column;
use crate::store::{BodiesBatch, FileStats, MessagesBatch, StoreResult};
use crate::time::UnixMs;

/// `limit` as a bound parameter.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Deletes up to `limit` of the oldest logs before `before` that the rollup has counted.
pub(crate) async fn delete_logs(pg: &Pg, before: UnixMs, limit: usize) -> StoreResult<usize> {
    let client = pg.client().await?;
    let deleted = client
        .execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE id >= $1::bytea \
             AND id < $2::bytea AND id <= (SELECT last_log_id FROM rollup_cursor WHERE id = 1) \
             ORDER BY id LIMIT $3)",
            &[&LogId::time_bound(0), &LogId::time_bound(before.as_ms()), &sql_limit(limit)],
        )
        .await
        .at(pg)?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}

/// Examines up to `limit` messages before `before` after `after`, and deletes those without a
/// pending delivery, with their deliveries (see `Store::delete_messages_before`).
pub(crate) async fn delete_messages(
    pg: &Pg,
    before: UnixMs,
    after: Option<MessageId>,
    limit: usize,
) -> StoreResult<MessagesBatch> {
    let mut client = pg.client().await?;
    let after = after.unwrap_or_else(|| MessageId::time_bound(0));
    let tx = client.transaction().await.at(pg)?;
    let rows = tx
        .query(
            "SELECT id, EXISTS (SELECT 1 FROM deliveries d \
             WHERE d.message_id = m.id AND d.status = 'pending') \
             FROM messages m WHERE id > $1::bytea AND id < $2::bytea ORDER BY id LIMIT $3",
            &[&after, &MessageId::time_bound(before.as_ms()), &sql_limit(limit)],
        )
        .await
        .at(pg)?;
    let mut examined = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: MessageId = row.key(0, "messages")?;
        let pending = row.flag(1, "messages", &id.to_string())?;
        examined.push((id, pending));
    }
    let gone: Vec<&MessageId> =
        examined.iter().filter(|(_, pending)| !pending).map(|(id, _)| id).collect();
    let mut batch = MessagesBatch {
        examined: examined.len(),
        last: examined.last().map(|(id, _)| id.clone()),
        ..MessagesBatch::default()
    };
    if !gone.is_empty() {
        // Deliveries first, counted: the foreign key's cascade would delete them unseen.
        let deliveries = tx
            .execute(
                "DELETE FROM deliveries d WHERE d.message_id = ANY($1::bytea[]) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries p \
                 WHERE p.message_id = d.message_id AND p.status = 'pending')",
                &[&gone],
            )
            .await
            .at(pg)?;
        let messages = tx
            .execute(
                "DELETE FROM messages m WHERE m.id = ANY($1::bytea[]) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)",
                &[&gone],
            )
            .await
            .at(pg)?;
        batch.deliveries = usize::try_from(deliveries).unwrap_or(usize::MAX);
        batch.messages = usize::try_from(messages).unwrap_or(usize::MAX);
    }
    tx.commit().await.at(pg)?;
    Ok(batch)
}

/// The payloads of messages before `newest` with a pending delivery.
pub(crate) async fn pending_payloads(
    pg: &Pg,
    newest: MessageId,
) -> StoreResult<Arc<HashSet<Vec<u8>>>> {
    let client = pg.client().await?;
    let rows = client
        .query(
            "SELECT DISTINCT m.payload_hash FROM deliveries d \
             JOIN messages m ON m.id = d.message_id \
             WHERE d.status = 'pending' AND d.message_id < $1::bytea",
            &[&newest],
        )
        .await
        .at(pg)?;
    let mut hashes = HashSet::with_capacity(rows.len());
    for row in &rows {
        hashes.insert(row.bytes(0, "messages", "payload_hash")?);
    }
    Ok(Arc::new(hashes))
}

/// The 8 bytes of a hash that stand for it in a batch's place (see the module doc).
fn place_of(hash: &[u8]) -> i64 {
    let mut prefix = [0u8; 8];
    let n = hash.len().min(8);
    prefix[..n].copy_from_slice(&hash[..n]);
    i64::from_be_bytes(prefix)
}

/// Examines up to `limit` bodies last used before `before`, in `(used_at, hash)` order after
/// `after`, and deletes them with the uploaded files they hold, except those in `keep`.
pub(crate) async fn delete_bodies(
    pg: &Pg,
    before: UnixMs,
    after: Option<(i64, i64)>,
    limit: usize,
    keep: Arc<HashSet<Vec<u8>>>,
) -> StoreResult<BodiesBatch> {
    let mut client = pg.client().await?;
    let (after_used, after_place) = after.unwrap_or((i64::MIN, i64::MIN));
    let after_prefix = after.map(|_| after_place.to_be_bytes().to_vec()).unwrap_or_default();
    let tx = client.transaction().await.at(pg)?;
    // `used_at >= $2` lets the index start at the last place; the order within one `used_at`
    // is an incremental sort of a few rows.
    let rows = tx
        .query(
            "SELECT used_at, hash FROM bodies WHERE used_at < $1 AND used_at >= $2 \
             AND (used_at > $2 OR substring(hash FROM 1 FOR 8) > $3) \
             ORDER BY used_at, hash LIMIT $4",
            &[&before.as_ms(), &after_used, &after_prefix, &sql_limit(limit)],
        )
        .await
        .at(pg)?;
    let mut examined = Vec::with_capacity(rows.len());
    for row in &rows {
        let hash = row.bytes(1, "bodies", "hash")?;
        examined.push((row.int(0, "bodies", "used_at")?, hash));
    }
    let gone: Vec<&[u8]> =
        examined.iter().map(|(_, h)| h.as_slice()).filter(|h| !keep.contains(*h)).collect();
    let mut batch = BodiesBatch {
        examined: examined.len(),
        last: examined.last().map(|(used, hash)| (*used, place_of(hash))),
        ..BodiesBatch::default()
    };
    if !gone.is_empty() {
        let bodies = tx
            .query(
                "DELETE FROM bodies WHERE hash = ANY($1::bytea[]) AND used_at < $2 \
                 RETURNING hash",
                &[&gone, &before.as_ms()],
            )
            .await
            .at(pg)?;
        let deleted: Vec<Vec<u8>> =
            bodies.iter().map(|r| r.bytes(0, "bodies", "hash")).collect::<StoreResult<_>>()?;
        let files = tx
            .execute("DELETE FROM upload_files WHERE data_hash = ANY($1::bytea[])", &[&deleted])
            .await
            .at(pg)?;
        batch.bodies = deleted.len();
        batch.upload_files = usize::try_from(files).unwrap_or(usize::MAX);
    }
    tx.commit().await.at(pg)?;
    Ok(batch)
}

/// The database's size (`pg_database_size`); no free pages: PostgreSQL's autovacuum makes
/// freed space reusable, and there is nothing for the relay to give back.
pub(crate) async fn file_stats(pg: &Pg) -> StoreResult<FileStats> {
    let client = pg.client().await?;
    let row = client.query_one("SELECT pg_database_size(current_database())", &[]).await.at(pg)?;
    Ok(FileStats {
        size_bytes: row.int(0, "pg_database_size", "current")?,
        free_pages: 0,
        incremental_vacuum: true,
    })
}
