//! Retention: deletes logs, messages (with their deliveries) and content past their windows,
//! one small batch per write, and gives freed pages back to the file system. The task that
//! paces the batches is `crate::retention`; each function here is one batch.
//!
//! Every batch reads its rows through an index in key order from where the last one stopped
//! (logs and messages by their time-sortable ids, content by `bodies_used`), never a scan of
//! the table.
//!
//! What is left behind, on purpose:
//! - `recover_job_deliveries` rows of deleted deliveries: a recover job's counts join
//!   `deliveries`, so they count only the deliveries still stored, and a deleted one was never
//!   pending (a message with a pending delivery is kept), so no job's state changes. Deleting
//!   them would take an index on `delivery_id` that every re-queue would pay for.
//! - Content a delivery re-queued (by a recover or replay job) after a pass read the pending
//!   payloads may be deleted by that pass; such a delivery is then in the state of any whose
//!   content is past its window.

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::params;

use super::{pg, Backend, Store, StoreResult, USE_REFRESH_MS};
use crate::ids::{LogId, MessageId};
use crate::time::UnixMs;

/// How much newer than its content's `used_at` a message referring to it can be: storing a
/// payload refreshes `used_at` only when it is [`USE_REFRESH_MS`] old (`bodies::put`), so a
/// message is at most that much newer. Twice that, for the clock.
const USED_AT_SLACK_MS: i64 = 2 * USE_REFRESH_MS;

/// Pages one `incremental_vacuum` write gives back at most. Each page given back moves a
/// page from the file's end into a free slot (about one page of WAL and a parent's pointer
/// per page): a step of 1,024 held the writer 100–200 ms on a loaded machine, which every
/// write queued behind it waited for; 32 is a few milliseconds.
const VACUUM_PAGES: i64 = 32;

/// Free pages kept for reuse, per 100 pages in use. Under a steady load with retention on,
/// the pages a pass frees are what the next inserts take again: giving them back only to
/// grow the file again would be I/O for nothing. Only the free pages past this share (a
/// backlog deleted, traffic that fell) are given back, so at most this share of the file
/// is dead space.
const KEPT_FREE_PER_100_IN_USE: i64 = 10;

/// What one batch of messages did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessagesBatch {
    /// Messages examined: when fewer than asked, the window is done.
    pub examined: usize,
    /// Messages deleted (those examined without a pending delivery).
    pub messages: usize,
    /// Their deliveries, deleted with them.
    pub deliveries: usize,
    /// The last message examined, where the next batch starts.
    pub last: Option<MessageId>,
}

/// What one batch of content did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BodiesBatch {
    /// Bodies examined: when fewer than asked, the window is done.
    pub examined: usize,
    /// Bodies deleted (those examined that are not a pending delivery's payload).
    pub bodies: usize,
    /// Uploaded files whose content was deleted, deleted with it.
    pub upload_files: usize,
    /// `(used_at, rowid)` of the last body examined, where the next batch starts.
    pub last: Option<(i64, i64)>,
}

/// The database file's size and free pages, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStats {
    /// Pages in use or free, times the page size: the file's size once checkpointed.
    pub size_bytes: i64,
    /// Pages on the freelist (freed by deletes, not yet given back or reused).
    pub free_pages: i64,
    /// Whether freed pages can be given back (`auto_vacuum = INCREMENTAL`; always on
    /// PostgreSQL, whose autovacuum does it: its free pages are always 0).
    pub incremental_vacuum: bool,
}

impl Store {
    /// Deletes up to `limit` of the oldest logs recorded before `before`, by id range on the
    /// primary key; returns how many. Only logs the overview's rollup has counted (at or
    /// before its cursor) go: with a window shorter than the rollup's pace, logs deleted
    /// first were never counted.
    pub async fn delete_logs_before(&self, before: UnixMs, limit: usize) -> StoreResult<usize> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::retention::delete_logs(p, before, limit).await,
        };
        db.write(move |c| {
            Ok(c.prepare_cached(
                "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE id >= ?1 AND id < ?2 \
                 AND id <= (SELECT last_log_id FROM rollup_cursor WHERE id = 1) \
                 ORDER BY id LIMIT ?3)",
            )?
            .execute(params![
                LogId::time_bound(0),
                LogId::time_bound(before.as_ms()),
                limit as i64
            ])?)
        })
        .await
    }

    /// Examines up to `limit` messages created before `before`, in id order after `after`,
    /// and deletes those without a pending delivery, with their deliveries. A message with a
    /// pending delivery is kept: it is still to be sent, and its payload with it.
    pub async fn delete_messages_before(
        &self,
        before: UnixMs,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<MessagesBatch> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::retention::delete_messages(p, before, after, limit).await
            }
        };
        db.write(move |c| {
            let after = after.unwrap_or_else(|| MessageId::time_bound(0));
            let examined: Vec<(MessageId, bool)> = c
                .prepare_cached(
                    "SELECT id, EXISTS (SELECT 1 FROM deliveries d \
                     WHERE d.message_id = m.id AND d.status = 'pending') \
                     FROM messages m WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3",
                )?
                .query_map(
                    params![after, MessageId::time_bound(before.as_ms()), limit as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            let mut batch = MessagesBatch {
                examined: examined.len(),
                last: examined.last().map(|(id, _)| id.clone()),
                ..MessagesBatch::default()
            };
            // Deliveries first, counted: a foreign-key cascade would delete them unseen.
            let mut deliveries =
                c.prepare_cached("DELETE FROM deliveries WHERE message_id = ?1")?;
            let mut messages = c.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
            for (id, pending) in &examined {
                if !pending {
                    batch.deliveries += deliveries.execute([id])?;
                    batch.messages += messages.execute([id])?;
                }
            }
            Ok(batch)
        })
        .await
    }

    /// The payloads of messages with a pending delivery that may have been last used before
    /// `before` (only messages at most [`USED_AT_SLACK_MS`] newer can refer to such a body):
    /// content retention keeps them, as they are still to be sent. Read once a pass, through
    /// the pending deliveries' own index, so its cost is the backlog's, never the table's.
    pub async fn pending_payloads(&self, before: UnixMs) -> StoreResult<Arc<HashSet<Vec<u8>>>> {
        let newest = MessageId::time_bound(before.plus_ms(USED_AT_SLACK_MS).as_ms());
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::retention::pending_payloads(p, newest).await,
        };
        db.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT m.payload_hash FROM deliveries d INDEXED BY deliveries_due \
                 JOIN messages m ON m.id = d.message_id \
                 WHERE d.status = 'pending' AND d.message_id < ?1",
            )?;
            let hashes = stmt.query_map([newest], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(Arc::new(hashes))
        })
        .await
    }

    /// Examines up to `limit` bodies last used before `before`, in `used_at` order after
    /// `after`, and deletes them, with the uploaded files they hold, except those in `keep`
    /// (see [`Store::pending_payloads`]).
    pub async fn delete_bodies_before(
        &self,
        before: UnixMs,
        after: Option<(i64, i64)>,
        limit: usize,
        keep: Arc<HashSet<Vec<u8>>>,
    ) -> StoreResult<BodiesBatch> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::retention::delete_bodies(p, before, after, limit, keep).await
            }
        };
        db.write(move |c| {
            let (after_used, after_row) = after.unwrap_or((i64::MIN, i64::MIN));
            let examined: Vec<(i64, i64, Vec<u8>)> = c
                .prepare_cached(
                    "SELECT used_at, rowid, hash FROM bodies WHERE used_at < ?1 \
                     AND (used_at, rowid) > (?2, ?3) ORDER BY used_at, rowid LIMIT ?4",
                )?
                .query_map(params![before, after_used, after_row, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut batch = BodiesBatch {
                examined: examined.len(),
                last: examined.last().map(|(used, row, _)| (*used, *row)),
                ..BodiesBatch::default()
            };
            let mut files = c.prepare_cached("DELETE FROM upload_files WHERE data_hash = ?1")?;
            let mut bodies = c.prepare_cached("DELETE FROM bodies WHERE rowid = ?1")?;
            for (_, rowid, hash) in &examined {
                if !keep.contains(hash) {
                    batch.upload_files += files.execute([hash])?;
                    batch.bodies += bodies.execute([rowid])?;
                }
            }
            Ok(batch)
        })
        .await
    }

    /// Gives up to [`VACUUM_PAGES`] free pages back to the file system, of those past the
    /// share kept for reuse ([`KEPT_FREE_PER_100_IN_USE`]); returns how many are still past
    /// it. Elsewhere than in a database made with `auto_vacuum = INCREMENTAL` the pragma does
    /// nothing. The pragma gives back one page per step, so it is stepped to its end: run
    /// once, as `execute_batch` does, it gave back one page per write.
    pub async fn give_back_free_pages(&self) -> StoreResult<i64> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            // Autovacuum makes freed space reusable; the relay has nothing to give back.
            Backend::Postgres(_) => return Ok(0),
        };
        db.write(|c| {
            let excess = |c: &rusqlite::Connection| -> StoreResult<i64> {
                let (in_use, free) = pages(c)?;
                Ok((free - in_use * KEPT_FREE_PER_100_IN_USE / 100).max(0))
            };
            let to_give = excess(c)?.min(VACUUM_PAGES);
            if to_give > 0 {
                // Not cached: the count is part of the text, and this runs a few times a pass.
                let mut vacuum = c.prepare(&format!("PRAGMA incremental_vacuum({to_give})"))?;
                let mut steps = vacuum.raw_query();
                while steps.next()?.is_some() {}
            }
            excess(c)
        })
        .await
    }

    /// The database file's size and free pages (PostgreSQL: the database's size, no free
    /// pages).
    pub async fn file_stats(&self) -> StoreResult<FileStats> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::retention::file_stats(p).await,
        };
        db.read(|c| {
            Ok(FileStats {
                size_bytes: pragma(c, "page_count")?.saturating_mul(pragma(c, "page_size")?),
                free_pages: pragma(c, "freelist_count")?,
                incremental_vacuum: pragma(c, "auto_vacuum")? == INCREMENTAL,
            })
        })
        .await
    }
}

/// The integer value of PRAGMA `name`.
fn pragma(c: &rusqlite::Connection, name: &str) -> StoreResult<i64> {
    Ok(c.pragma_query_value(None, name, |r| r.get(0))?)
}

/// (pages in use, free pages) of the database file.
fn pages(c: &rusqlite::Connection) -> StoreResult<(i64, i64)> {
    let free = pragma(c, "freelist_count")?;
    Ok((pragma(c, "page_count")? - free, free))
}

/// `PRAGMA auto_vacuum`'s value for incremental.
const INCREMENTAL: i64 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::redact::HeaderRedaction;
    use crate::store::bodies;

    async fn store_with_bodies(dir: &tempfile::TempDir, n: u32) -> Store {
        let store = Store::open(
            &dir.path().join("r.db"),
            &StoreConfig::default(),
            &HeaderRedaction::default(),
        )
        .expect("open");
        store
            .write(move |c| {
                for i in 0..n {
                    bodies::put(c, &bodies::incompressible(u64::from(i), 4096))?;
                }
                Ok(())
            })
            .await
            .expect("store bodies");
        store
    }

    /// (pages in use, free pages).
    async fn pages(store: &Store) -> (i64, i64) {
        store.read(super::pages).await.expect("page counts")
    }

    /// One step gives back as many free pages as it says, not one, and never more: each
    /// step is one write that every other write waits for.
    #[tokio::test]
    async fn one_step_gives_back_up_to_its_pages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_bodies(&dir, 3_000).await;
        store.write(|c| Ok(c.execute("DELETE FROM bodies", [])?)).await.expect("delete");
        let (in_use, freed) = pages(&store).await;
        let kept = in_use * KEPT_FREE_PER_100_IN_USE / 100;
        assert!(freed > kept + 2 * VACUUM_PAGES, "{freed} free pages, {in_use} in use");
        let left = store.give_back_free_pages().await.expect("vacuum");
        assert_eq!(pages(&store).await, (in_use, freed - VACUUM_PAGES), "one step");
        assert_eq!(left, freed - VACUUM_PAGES - kept, "still past the kept share");
        store.close().await;
    }

    /// Free pages within the share kept for reuse stay; past it, steps give back down to it
    /// and stop there.
    #[tokio::test]
    async fn free_pages_are_given_back_down_to_the_share_kept_for_reuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_bodies(&dir, 3_000).await;
        let delete = |n: i64| {
            let store = store.clone();
            async move {
                store
                    .write(move |c| {
                        Ok(c.execute(
                            "DELETE FROM bodies WHERE rowid IN \
                             (SELECT rowid FROM bodies ORDER BY rowid LIMIT ?1)",
                            [n],
                        )?)
                    })
                    .await
                    .expect("delete")
            }
        };
        delete(200).await;
        let (in_use, free) = pages(&store).await;
        assert!(free >= 200 && free < in_use / 10, "{free} free, {in_use} in use");
        assert_eq!(store.give_back_free_pages().await.expect("vacuum"), 0);
        assert_eq!(pages(&store).await, (in_use, free), "nothing given back");

        delete(1_000).await;
        let (in_use, free) = pages(&store).await;
        let kept = in_use * KEPT_FREE_PER_100_IN_USE / 100;
        assert!(free > kept + 10 * VACUUM_PAGES, "{free} free, {in_use} in use");
        let mut steps = 0;
        while store.give_back_free_pages().await.expect("vacuum") > 0 {
            steps += 1;
            assert!(steps < 1_000, "the steps end");
        }
        assert_eq!(pages(&store).await, (in_use, kept), "down to the kept share");
        assert_eq!(store.give_back_free_pages().await.expect("vacuum"), 0, "and no further");
        assert_eq!(pages(&store).await, (in_use, kept));
        store.close().await;
    }
}
