//! SQLite storage: one writer thread with group commit, a pool of read-only connections,
//! and one module per table family. Callers hand closures to [`Store::write`] and
//! [`Store::read`]; nothing else touches a connection.

mod automation_events;
mod automations;
mod bodies;
mod cache;
mod calls_in_flight;
mod checkpoint;
mod claims;
mod content;
mod decode;
mod deliveries;
mod delivery_status;
mod failure;
mod fifo;
mod files;
mod health;
mod health_windows;
pub mod implied_headers;
mod keys;
mod lock;
mod log_filters;
mod logs;
mod message_views;
mod messages;
mod operational;
mod page;
pub mod pg;
mod readers;
mod recover;
mod replay;
mod reruns;
mod retention;
mod rollup;
mod rollup_reads;
mod run_pages;
mod runs;
mod schema;
mod sessions;
mod sheet_signers;
mod sheets;
mod snapshots;
mod stored_ids;
mod writer;

pub use automation_events::{Actor, AutomationEvent};
pub use automations::{Automation, AutomationFilter, AutomationSettings};
pub use bodies::{body_hash, BodyHash, USE_REFRESH_MS};
pub use cache::Target;
pub use calls_in_flight::{InFlight, StartingCall};
pub use claims::{ClaimRequest, Take};
pub use content::GoneReason;
pub use decode::CorruptValue;
pub use deliveries::{ClaimedDelivery, DeliveryRow, Outcome, Recorded};
pub use delivery_status::DeliveryStatus;
pub use failure::StorageFailure;
pub use fifo::{DeliveryOrder, WAITING_AT};
pub use files::UploadFile;
pub use health::{EndpointHealth, HealthWindow};
pub use keys::StoredKey;
pub use log_filters::LogFilter;
pub use logs::{GoneBodies, LogRecord, NewLog, Trigger};
pub use message_views::{MessageDetail, MessageFilter, MessageRow};
pub use messages::{Accepted, Handover, IngestResult, NewMessage, Receipt};
pub use operational::{Operations, OPERATIONAL_NAME, OPERATIONAL_PROCESSOR};
pub use page::{Conditions, Page, PageRequest, SCAN_BUDGET};
pub use recover::{BackgroundJob, CancelOutcome, RecoverFilter, RecoverJob, StillRetrying};
pub use replay::ReplayJob;
pub use reruns::RerunDelivery;
pub use retention::{BodiesBatch, FileStats, MessagesBatch};
pub use rollup::{Latency, LatencyBound, LATENCY_BOUNDS_MS, MINUTE_MS, ROLLUP_KEEP_MS};
pub use rollup_reads::{AutomationHealth, MinuteCounts, Overview};
pub use run_pages::{RunCursor, RunPageFilter};
pub use runs::{NodeRun, NodeStatus, RunFilter, RunOutcome, RunRecord, RunStatus};
/// The schema version this build writes (`PRAGMA user_version`).
pub use schema::VERSION as SCHEMA_VERSION;
pub use sessions::{ConsoleSession, SessionKey};
pub use sheets::{Appended, NewRow, SheetRow, Spreadsheet, Worksheet};
pub use snapshots::Snapshot;

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::config::{StoreConfig, Synchronous};
use crate::redact::HeaderRedaction;
use readers::Readers;
use writer::Writer;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite itself failed.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored value is not what its column holds (see `decode`).
    #[error(transparent)]
    CorruptValue(Box<CorruptValue>),
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write conflicts with the current state, for the reason given (each is answered
    /// with its own API code).
    #[error("{1}")]
    Conflict(Conflict, String),
    /// The transaction this write was part of could not be committed (nothing it wrote was kept).
    #[error("nothing was written: {0}")]
    Commit(StorageFailure),
    /// Content that was stored is gone, for the reason given: not a fault of the database
    /// (see `content`), so never taken for [`StoreError::Corrupt`].
    #[error("{what} is no longer stored ({})", why.as_str())]
    ContentGone {
        /// What is gone, e.g. "the message's payload".
        what: &'static str,
        /// Why.
        why: GoneReason,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A message addressed to neither a processor nor an automation (the API refuses one
    /// before it reaches the store).
    #[error("processor_id or automation_id is required")]
    Unaddressed,
    /// The write would pass a documented limit.
    #[error("{0}")]
    Limit(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// Another process holds the database (see `lock`).
    #[error("{0}")]
    InUse(String),
}

/// Why a write conflicts with the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// An idempotency key used within its window for a different request.
    IdempotencyKeyReused,
    /// The automation addressed is disabled.
    AutomationDisabled,
    /// The run has finished already.
    RunNotRunning,
}

impl From<rusqlite::Error> for StoreError {
    /// A [`CorruptValue`] comes through rusqlite's row mapping as a conversion failure; it is
    /// taken out again so that it is never mistaken for a failure of SQLite itself.
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(idx, ty, source) => {
                match source.downcast::<CorruptValue>() {
                    Ok(corrupt) => StoreError::CorruptValue(corrupt),
                    Err(source) => StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
                        idx, ty, source,
                    )),
                }
            }
            other => StoreError::Sqlite(other),
        }
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database: cheap to clone, safe to share.
#[derive(Clone)]
pub struct Store {
    writer: Writer,
    readers: Readers,
    cache: cache::SharedCache,
    rule: HeaderRedaction,
    /// What the writes need of `[operational]`, set once at start-up (see `operational`).
    ops: std::sync::Arc<std::sync::OnceLock<Operations>>,
    /// Held while any clone of the store lives.
    _lock: std::sync::Arc<lock::DatabaseLock>,
}

impl Store {
    /// Opens (creating or upgrading) the database at `path` and starts the writer thread;
    /// automation snapshots are stored with header secrets redacted by `rule`.
    pub fn open(path: &Path, config: &StoreConfig, rule: &HeaderRedaction) -> StoreResult<Self> {
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
        let cache = cache::SharedCache::new(rule.clone());
        let cleared = cache.clone();
        let on_rollback = Box::new(move || cleared.lock().clear());
        let checkpoint_pages = checkpoint::writer_checkpoint_pages(&conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
        let writer = Writer::start(conn, config.max_batch, on_rollback)?;
        let _lock = std::sync::Arc::new(lock);
        checkpoint::start(path, config, &_lock)?;
        let mut readers = Vec::with_capacity(config.reader_connections);
        for _ in 0..config.reader_connections {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            readers.push(open_connection(path, flags, config)?);
        }
        let ops = Default::default();
        Ok(Self { writer, readers: Readers::new(readers), cache, rule: rule.clone(), ops, _lock })
    }

    /// Runs `f` inside the next group-commit transaction, in a savepoint of its own: when it
    /// returns an error, its writes are rolled back and the rest of the batch commits.
    /// Resolves only after the batch is committed.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_in(f, true).await
    }

    /// Like [`Store::write`] without the savepoint, for the hot path. Only for writes that
    /// can fail after their first change solely through a storage failure: such a failure
    /// rolls back the whole group-commit transaction (see `writer`'s module doc).
    pub(crate) async fn write_unguarded<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_in(f, false).await
    }

    async fn write_in<T, F>(&self, f: F, guarded: bool) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(f, guarded).await
    }

    /// How many group-commit transactions were rolled back since start (each one failed
    /// writes that were not at fault; a healthy relay keeps this at zero).
    pub fn rollbacks(&self) -> u64 {
        self.writer.rollbacks()
    }

    /// Runs `f` on a read-only connection from the pool (on a blocking thread).
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.readers.read(f).await
    }

    /// The version of the automations: it changes whenever any automation may have changed,
    /// so a copy taken at another version must be read again before it is relied on.
    pub fn automations_version(&self) -> u64 {
        self.cache.version()
    }

    /// The snapshot of `automation` as this store records it (header secrets redacted).
    pub fn snapshot_of(&self, automation: &Automation) -> Snapshot {
        Snapshot::of(automation, &self.rule)
    }

    /// Whether writes are failing: the database refused a write as a whole (a full disk, a
    /// lock held by another process) within the last few seconds.
    pub fn writes_failing(&self) -> bool {
        self.writer.failing()
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await.is_ok()
    }

    /// Stops accepting writes and waits for the writer to commit what it has.
    pub async fn close(&self) {
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
const PAGE_SIZE: i64 = 8192;

fn open_connection(path: &Path, flags: OpenFlags, config: &StoreConfig) -> StoreResult<Connection> {
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
