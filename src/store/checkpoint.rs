//! WAL checkpoints off the writer thread. A checkpoint copies committed pages from the WAL
//! into the database file and syncs both; run by the writer (SQLite's default, after the
//! commit that passes 1,000 WAL pages) it stalls every write queued behind it for those
//! copies and syncs. Here a thread of its own checkpoints the WAL often, beside the writer
//! (a passive checkpoint takes no lock a writer needs). The writer still checkpoints, rarely
//! ([`WRITER_CHECKPOINT_BYTES`]): by then most pages are copied already, and a checkpoint the
//! writer runs is one no commit can overtake, which lets the WAL start over from its
//! beginning instead of growing while writes never pause.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::sqlite::open_connection;
use super::StoreResult;
use crate::config::StoreConfig;

/// WAL size after which the writer checkpoints itself (32 MB, whatever the page size).
pub(super) const WRITER_CHECKPOINT_BYTES: i64 = 32 * 1024 * 1024;

/// [`WRITER_CHECKPOINT_BYTES`] in pages of `conn`'s database (SQLite counts the WAL in pages).
pub(super) fn writer_checkpoint_pages(conn: &Connection) -> StoreResult<i64> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok(WRITER_CHECKPOINT_BYTES / page_size.max(512))
}

/// How often the checkpoint thread copies what was committed since its last pass.
const INTERVAL: Duration = Duration::from_millis(50);

/// Starts the checkpoint thread on a connection of its own. It stops once `alive` has no
/// strong reference left (the store and all its clones are gone).
pub(super) fn start<T: Send + Sync + 'static>(
    path: &Path,
    config: &StoreConfig,
    alive: &Arc<T>,
) -> StoreResult<()> {
    let conn = open_connection(path, OpenFlags::default(), config)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let alive: Weak<T> = Arc::downgrade(alive);
    std::thread::Builder::new()
        .name("hookrelay-checkpoint".into())
        .spawn(move || run(&conn, &alive))
        .map_err(|e| {
            super::StoreError::Commit(super::StorageFailure::Other(format!(
                "cannot start the checkpoint thread: {e}"
            )))
        })?;
    Ok(())
}

/// How long the thread stands aside once the WAL has passed the writer's threshold (see
/// [`run`]).
const STAND_ASIDE: Duration = Duration::from_millis(250);

/// Checkpoints every [`INTERVAL`]. Once a pass finds the WAL past the writer's threshold,
/// the writer's own checkpoint is due at its next commit; a checkpoint already running here
/// would make it give up (one checkpoint at a time) and the WAL grow by another commit, so
/// the thread stands aside for [`STAND_ASIDE`]. Without it a loaded machine, where a pass
/// takes long, saw the WAL reach 56 MB for a 32 MB threshold.
fn run<T>(conn: &Connection, alive: &Weak<T>) {
    let mut failing = false;
    let writer_pages = writer_checkpoint_pages(conn).unwrap_or(i64::MAX);
    while alive.strong_count() > 0 {
        std::thread::sleep(INTERVAL);
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                failing = false;
                if frames >= writer_pages {
                    std::thread::sleep(STAND_ASIDE);
                }
            }
            // Logged once per run of failures: a full disk fails every pass until it is not.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; the writer checkpoints instead");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::HeaderRedaction;
    use crate::store::{bodies, Store};

    /// Under writes that never pause, far more than the WAL bound, the WAL file stays near
    /// it: the checkpoint thread copies pages beside the writer, and the writer's own rare
    /// checkpoint lets the WAL start over. A WAL that only grew would reach the data size.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let store =
            Store::open(&path, &StoreConfig::default(), &HeaderRedaction::default()).expect("open");
        // The WAL grows by whole commits: the one that crosses the threshold can hold a full
        // batch (1,024 of these writes, each a 4 KB body on an 8 KB page of its own: ~9 MB),
        // and the writer's checkpoint after it can find the thread's pass still running once
        // more, and on a loaded machine (CI's) a few more: 68.8 MB was seen there. So up to
        // three times the threshold; a WAL that only grew would reach the 210 MB of pages
        // written, more than twice that.
        let bound = 3 * WRITER_CHECKPOINT_BYTES as u64;
        let bodies_written = 25_600usize;
        let mut tasks = Vec::new();
        for task in 0..32usize {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..bodies_written / 32 {
                    let body = bodies::incompressible((task * 1_000_000 + i) as u64, 4096);
                    store.write(move |c| bodies::put(c, &body).map(|_| ())).await.expect("write");
                }
            }));
        }
        let wal = path.with_extension("db-wal");
        let mut largest = 0;
        while tasks.iter().any(|t| !t.is_finished()) {
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        // Each 4 KB body (incompressible, so stored at its size) takes a page of its own.
        let written = bodies_written as u64 * crate::store::sqlite::PAGE_SIZE as u64;
        assert!(written > 2 * bound, "the test writes well past the bound");
        assert!(largest <= bound, "WAL reached {largest} bytes, bound {bound}");
        store.close().await;
    }

    /// A new database gets 8 KB pages; one made with SQLite's default 4 KB pages keeps them
    /// and works. Either way the writer checkpoints at the same WAL size in bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_database_has_8_kb_pages_and_an_older_one_keeps_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let older = dir.path().join("older.db");
        Connection::open(&older).expect("create").execute_batch("CREATE TABLE t (x)").expect("t");
        for (path, page_size) in [(dir.path().join("new.db"), 8192), (older, 4096)] {
            let store = Store::open(&path, &StoreConfig::default(), &HeaderRedaction::default())
                .expect("open");
            let id = store.write(|c| bodies::put(c, b"kept")).await.expect("a write");
            let (size, pages): (i64, i64) = store
                .read(|c| {
                    let size = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
                    Ok((size, writer_checkpoint_pages(c)?))
                })
                .await
                .expect("read");
            assert_eq!(size, page_size, "{}", path.display());
            assert_eq!(size * pages, WRITER_CHECKPOINT_BYTES, "{}", path.display());
            let kept = store.read(move |c| bodies::find(c, &id)).await.expect("read");
            assert_eq!(kept.as_deref(), Some(&b"kept"[..]), "{}", path.display());
            store.close().await;
        }
    }
}
