//! Storage: one module per table family, on one of two backends (see [`Backend`]): SQLite
//! (`sqlite`: one writer thread with group commit, a pool of read-only connections) or
//! PostgreSQL (`pg`: a connection pool shared by several instances).

mod automation_events;
mod automations;
mod automations_store;
mod bodies;
mod cache;
mod calls_in_flight;
mod checkpoint;
mod claims;
mod column;
mod content;
mod decode;
mod deliveries;
mod delivery_status;
mod duties;
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
mod rate_starts;
mod readers;
mod recover;
mod replay;
mod reruns;
mod retention;
pub(crate) mod retry;
mod rollup;
mod rollup_reads;
mod run_pages;
mod runs;
mod schema;
mod sessions;
mod sheet_signers;
mod sheets;
mod snapshots;
mod sqlite;
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
pub use duties::Duty;
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
pub use rate_starts::SharedStart;
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

use rusqlite::Connection;

use crate::config::StoreConfig;
use crate::redact::HeaderRedaction;

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
    /// PostgreSQL could not be reached, refused, or failed a statement (never naming the
    /// password: see [`pg::PgError`]).
    #[error(transparent)]
    Postgres(#[from] pg::PgError),
    /// The method named is not yet written for PostgreSQL (issue 15 is adding the table
    /// families one by one; docs/postgres.md lists which).
    #[error("{0} is not yet available on PostgreSQL")]
    NotOnPostgres(&'static str),
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
    backend: Backend,
    cache: cache::SharedCache,
    rule: HeaderRedaction,
    /// What the writes need of `[operational]`, set once at start-up (see `operational`).
    ops: std::sync::Arc<std::sync::OnceLock<Operations>>,
}

/// Where the store keeps its tables. Each public method of [`Store`] is a match on it: an
/// enum rather than a trait object keeps the SQLite path statically dispatched (no boxed
/// futures on the hot path). Per table family, the PostgreSQL SQL sits in `pg/<family>.rs`
/// beside the SQLite SQL of `<family>.rs`.
#[derive(Clone)]
enum Backend {
    /// An embedded SQLite file (one server per file).
    Sqlite(sqlite::Sqlite),
    /// A PostgreSQL database, shared by every instance.
    Postgres(pg::Pg),
}

impl Store {
    /// Opens (creating or upgrading) the SQLite database at `path` and starts the writer
    /// thread; automation snapshots are stored with header secrets redacted by `rule`.
    pub fn open(path: &Path, config: &StoreConfig, rule: &HeaderRedaction) -> StoreResult<Self> {
        let cache = cache::SharedCache::new(rule.clone());
        let cleared = cache.clone();
        let on_rollback = Box::new(move || cleared.lock().clear());
        let sqlite = sqlite::Sqlite::open(path, config, rule, on_rollback)?;
        Ok(Self::with(Backend::Sqlite(sqlite), cache, rule))
    }

    /// Opens a pool of at most `pool_size` connections to the PostgreSQL database at `url`,
    /// bringing its schema up to date (see [`pg::Pg::open`]). No lock file: several
    /// instances sharing the database is the point.
    pub async fn open_postgres(
        url: &str,
        pool_size: usize,
        rule: &HeaderRedaction,
    ) -> StoreResult<Self> {
        let (pg, _) = pg::Pg::open(url, pool_size).await?;
        pg.start_beating(rule.clone());
        let cache = cache::SharedCache::new(rule.clone());
        Ok(Self::with(Backend::Postgres(pg), cache, rule))
    }

    fn with(backend: Backend, cache: cache::SharedCache, rule: &HeaderRedaction) -> Self {
        Self { backend, cache, rule: rule.clone(), ops: Default::default() }
    }

    /// The SQLite backend, for a method not yet written for PostgreSQL: on PostgreSQL the
    /// error [`StoreError::NotOnPostgres`] naming `method`.
    fn on_sqlite(&self, method: &'static str) -> StoreResult<&sqlite::Sqlite> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s),
            Backend::Postgres(_) => Err(StoreError::NotOnPostgres(method)),
        }
    }

    /// Runs `wake` whenever another instance may have made deliveries due now (PostgreSQL's
    /// `NOTIFY`, see `pg::listen`), for the dispatcher's claim loop. Nothing on SQLite: one
    /// server per file, whose own writes wake its dispatcher in memory.
    pub fn on_due_elsewhere(&self, wake: impl Fn() + Send + Sync + 'static) {
        if let Backend::Postgres(p) = &self.backend {
            p.listen(wake, self.cache.clone());
        }
    }

    /// Whether the store is PostgreSQL (start-up leaves out what it cannot do yet).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Runs `f` inside the next group-commit transaction, in a savepoint of its own: when it
    /// returns an error, its writes are rolled back and the rest of the batch commits.
    /// Resolves only after the batch is committed. SQLite only (tests and the bench).
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.on_sqlite("write")?.write(f).await
    }

    /// Runs `f` on a read-only connection from the pool (on a blocking thread). SQLite only
    /// (tests and the bench).
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.on_sqlite("read")?.read(f).await
    }

    /// How many group-commit transactions were rolled back since start (each one failed
    /// writes that were not at fault; a healthy relay keeps this at zero). Always zero on
    /// PostgreSQL, which has no group commit.
    pub fn rollbacks(&self) -> u64 {
        match &self.backend {
            Backend::Sqlite(s) => s.rollbacks(),
            Backend::Postgres(_) => 0,
        }
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
    /// lock held by another process) within the last few seconds. On PostgreSQL a failing
    /// server shows in [`Store::ping`] instead.
    pub fn writes_failing(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => s.writes_failing(),
            Backend::Postgres(_) => false,
        }
    }

    /// Whether the database answers a trivial query (on PostgreSQL: a connection of the
    /// pool does).
    pub async fn ping(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await.is_ok()
            }
            Backend::Postgres(p) => p.check().await.is_ok(),
        }
    }

    /// Stops accepting writes and waits for the writer to commit what it has (on
    /// PostgreSQL: hands this instance's claims back, as SQLite does at the next start, and
    /// closes the pool; every write has committed by the time it answered).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => {
                p.leave(&self.rule).await;
                p.close();
            }
        }
    }
}
