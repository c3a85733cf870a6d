//! The SQLite backend of [`super::Store`]: one writer thread with group commit, a pool of
//! read-only connections, and the lock file that keeps a second server off the database.
//! The table families run their SQL through [`Sqlite::write`] and [`Sqlite::read`].

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

use super::readers::Readers;
use super::writer::{OnRollback, Writer};
use super::{calls_in_flight, checkpoint, deliveries, lock, schema, StoreResult};
use crate::config::{StoreConfig, Synchronous};
use crate::redact::HeaderRedaction;

/// An open SQLite database: cheap to clone (the clones share the writer and the readers).
#[derive(Clone)]
pub(crate) struct Sqlite {
    writer: Writer,
    readers: Readers,
    /// Held while any clone of the store lives.
    _lock: Arc<lock::DatabaseLock>,
}

impl Sqlite {
    /// Opens (creating or upgrading) the database at `path`, releases the claims and calls
    /// a previous run left in flight, and starts the writer thread; `on_rollback` runs on it
    /// after anything was rolled back.
    pub(super) fn open(
        path: &Path,
        config: &StoreConfig,
        rule: &HeaderRedaction,
        on_rollback: OnRollback,
    ) -> StoreResult<Self> {
        let lock = lock::DatabaseLock::acquire(path)?;
        let conn = open_connection(path, OpenFlags::default(), config)?;
        schema::apply(&conn)?;
        let interrupted = deliveries::release_claims(&conn, rule)? + release_calls(&conn)?;
        if interrupted > 0 {
            tracing::warn!(
                calls = interrupted,
                "calls in flight when the relay last stopped were logged {}; their deliveries \
                 are due again, reruns and test calls are not repeated (the receivers may \
                 have got them)",
                crate::outbound::ErrorCode::Interrupted
            );
        }
        let checkpoint_pages = checkpoint::writer_checkpoint_pages(&conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
        let writer = Writer::start(conn, config.max_batch, on_rollback)?;
        let _lock = Arc::new(lock);
        checkpoint::start(path, config, &_lock)?;
        let mut readers = Vec::with_capacity(config.reader_connections);
        for _ in 0..config.reader_connections {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            readers.push(open_connection(path, flags, config)?);
        }
        Ok(Self { writer, readers: Readers::new(readers), _lock })
    }

    /// A guarded write (see [`super::Store::write`]).
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(f, true).await
    }

    /// An unguarded write, for the hot path (see [`super::Store::write_unguarded`]).
    pub(crate) async fn write_unguarded<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(f, false).await
    }

    /// Runs `f` on a read-only connection from the pool (on a blocking thread).
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.readers.read(f).await
    }

    /// Group-commit transactions rolled back since start.
    pub(super) fn rollbacks(&self) -> u64 {
        self.writer.rollbacks()
    }

    /// Whether the database refused a write as a whole within the last few seconds.
    pub(super) fn writes_failing(&self) -> bool {
        self.writer.failing()
    }

    /// Stops accepting writes and waits for the writer to commit what it has.
    pub(super) async fn close(&self) {
        self.writer.close().await;
    }
}

/// Logs the reruns and test calls left in flight `E_INTERRUPTED` (see `calls_in_flight`).
fn release_calls(conn: &Connection) -> StoreResult<usize> {
    let tx = conn.unchecked_transaction()?;
    let released = calls_in_flight::release(&tx)?;
    tx.commit()?;
    Ok(released)
}

/// Page size of a new database. A payload is stored whole in a row of `bodies`, and a 4 KB
/// page (SQLite's default) holds three 1 KB payloads and leaves a quarter of itself empty;
/// an 8 KB page holds seven. Measured with unique 1 KB payloads (`hookrelay-bench e2e`):
/// 2,533 → 2,340 bytes per delivered message, throughput unchanged within the machine's
/// noise; 16 KB saved 46 bytes more but writes twice the WAL per page touched.
pub(super) const PAGE_SIZE: i64 = 8192;

pub(super) fn open_connection(
    path: &Path,
    flags: OpenFlags,
    config: &StoreConfig,
) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))?;
    let synchronous = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
        // Both take effect only on a database with no table yet (a new one), so they come
        // before anything is written; an older database keeps its own (changing either would
        // take a full VACUUM). Freed pages can then be given back (see `retention`).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -32000; PRAGMA mmap_size = {};",
        config.mmap_size_mb.saturating_mul(1024 * 1024)
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
