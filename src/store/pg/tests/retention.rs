//! Retention on PostgreSQL through the store: logs go only past their window and once
//! counted, messages past theirs unless a delivery is pending (with their deliveries), content
//! past its window unless a pending message's payload (with the uploaded files it holds), each
//! in batches that page through the whole window.

use std::sync::Arc;

use super::ops::log_pg;
use super::store::open;
use super::{admin, server, Fresh};
use crate::ids::{AutomationId, DeliveryId, LogId, MessageId};
use crate::time::UnixMs;

const HOUR: i64 = 3_600_000;

/// An id of kind `K` made at `ms`, its last bytes `n`.
fn id_at<K: crate::ids::IdKind>(ms: i64, n: u64) -> crate::ids::Id<K> {
    let mut bytes = *crate::ids::Id::<K>::time_bound(ms).stored_bytes();
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    crate::ids::Id::from_bytes(bytes)
}

/// A message made at `ms` with payload `hash` and a delivery of each status of `statuses`.
async fn message(url: &str, ms: i64, n: u64, hash: &[u8], statuses: &[&str]) -> MessageId {
    let c = admin(url).await;
    let id: MessageId = id_at(ms, n);
    c.execute(
        "INSERT INTO messages (id, processor_id, payload_hash, created_at) VALUES ($1, 'p', $2, $3)",
        &[&id, &hash, &ms],
    )
    .await
    .unwrap();
    for (i, status) in statuses.iter().enumerate() {
        let delivery: DeliveryId = id_at(ms, n * 10 + i as u64);
        c.execute(
            "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
             next_attempt_at, next_trigger, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, 'initial', $5, $5)",
            &[&delivery, &id, &AutomationId::new(), status, &ms],
        )
        .await
        .unwrap();
    }
    id
}

async fn body(url: &str, hash: &[u8], used_at: i64) {
    admin(url)
        .await
        .execute(
            "INSERT INTO bodies (hash, data, used_at) VALUES ($1, '\\x01', $2)",
            &[&hash, &used_at],
        )
        .await
        .unwrap();
}

async fn count(url: &str, sql: &str) -> i64 {
    admin(url).await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn retention_deletes_only_what_is_past_its_window_and_keeps_pending_payloads() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let now = UnixMs::now().as_ms();
    let (old, recent) = (now - 48 * HOUR, now - HOUR);
    let before = UnixMs::from_ms(now - 24 * HOUR);
    let automation = AutomationId::new();

    // Logs: 5 old and counted, 2 old past the rollup's cursor, 2 recent.
    for n in 0..9u64 {
        let at = if n < 7 { old + n as i64 } else { recent };
        let id: LogId = id_at(at, n);
        log_pg(&db.url, &id, &automation, (0, 0, 200, 1.0, None)).await;
        if n == 4 {
            admin(&db.url)
                .await
                .execute("INSERT INTO rollup_cursor (id, last_log_id) VALUES (1, $1)", &[&id])
                .await
                .unwrap();
        }
    }
    assert_eq!(store.delete_logs_before(before, 2).await.unwrap(), 2);
    assert_eq!(store.delete_logs_before(before, 2).await.unwrap(), 2);
    assert_eq!(store.delete_logs_before(before, 2).await.unwrap(), 1);
    assert_eq!(store.delete_logs_before(before, 2).await.unwrap(), 0, "uncounted stay");
    assert_eq!(count(&db.url, "SELECT count(*) FROM logs").await, 4);

    // Messages: old ones done (two deliveries), one old pending, one recent.
    let (done, pending, kept) = ([1u8; 16], [2u8; 16], [3u8; 16]);
    let mut gone = Vec::new();
    for n in 0..5 {
        gone.push(message(&db.url, old + n, n as u64, &done, &["succeeded", "failed"]).await);
    }
    let waiting = message(&db.url, old + 10, 10, &pending, &["exhausted", "pending"]).await;
    let young = message(&db.url, recent, 11, &kept, &["succeeded"]).await;
    let mut after = None;
    let (mut messages, mut deliveries) = (0, 0);
    loop {
        let batch = store.delete_messages_before(before, after, 2).await.unwrap();
        messages += batch.messages;
        deliveries += batch.deliveries;
        if batch.examined < 2 {
            break;
        }
        after = batch.last;
    }
    assert_eq!((messages, deliveries), (5, 10));
    let left: Vec<MessageId> = admin(&db.url)
        .await
        .query("SELECT id FROM messages ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| MessageId::from_bytes(r.get::<_, Vec<u8>>(0).try_into().unwrap()))
        .collect();
    assert_eq!(left, [waiting, young]);
    assert_eq!(count(&db.url, "SELECT count(*) FROM deliveries").await, 3, "the kept ones'");

    // Content: old bodies (one the pending message's payload, one an upload's), a recent one.
    body(&db.url, &done, old).await;
    body(&db.url, &pending, old).await;
    body(&db.url, &kept, recent).await;
    for n in 10..15u8 {
        body(&db.url, &[n; 16], old).await;
    }
    admin(&db.url)
        .await
        .execute(
            "INSERT INTO upload_files (id, app_id, name, size, extension, mime_type, created_by, \
             data_hash, created_at) VALUES ('f1', 'app', 'a.txt', 1, 'txt', 'text/plain', 'u', \
             $1, 0)",
            &[&[12u8; 16].as_slice()],
        )
        .await
        .unwrap();
    let keep = store.pending_payloads(before).await.unwrap();
    assert_eq!(*keep, [pending.to_vec()].into_iter().collect());
    let mut after = None;
    let (mut bodies, mut files, mut examined) = (0, 0, 0);
    loop {
        let batch = store.delete_bodies_before(before, after, 2, Arc::clone(&keep)).await.unwrap();
        bodies += batch.bodies;
        files += batch.upload_files;
        examined += batch.examined;
        if batch.examined < 2 {
            break;
        }
        after = batch.last;
    }
    assert_eq!((examined, bodies, files), (7, 6, 1));
    let hashes: Vec<Vec<u8>> = admin(&db.url)
        .await
        .query("SELECT hash FROM bodies ORDER BY hash", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(hashes, [pending.to_vec(), kept.to_vec()]);
    assert_eq!(count(&db.url, "SELECT count(*) FROM upload_files").await, 0);

    let stats = store.file_stats().await.unwrap();
    assert!(stats.size_bytes > 1_000_000, "the database's size: {stats:?}");
    assert_eq!((stats.free_pages, store.give_back_free_pages().await.unwrap()), (0, 0));
    db.drop_now().await;
}
