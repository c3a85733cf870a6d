//! Storage failures: the database refusing writes as a whole (a full disk, a lock held by
//! another process), as opposed to one write's own error. They are answered for what they
//! are (507, 503) and make `/readyz` report the store not writable until a write succeeds.

use rusqlite::ErrorCode;

use super::StoreError;

/// Why the database refused writes, whatever they were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageFailure {
    /// The disk holding the database (or its write-ahead log) has no room left.
    #[error("the disk holding the database is full")]
    DiskFull,
    /// Another process held the database's write lock for longer than the busy timeout.
    #[error("the database is locked by another process")]
    Locked,
    /// Anything else that failed a whole transaction (an I/O error, say).
    #[error("{0}")]
    Other(String),
}

impl StorageFailure {
    /// Classifies an error from SQLite that failed a whole transaction.
    pub(super) fn of(e: &rusqlite::Error) -> Self {
        Self::classify(e).unwrap_or_else(|| StorageFailure::Other(e.to_string()))
    }

    /// `Some` when `e` is a storage failure rather than the statement's own fault.
    fn classify(e: &rusqlite::Error) -> Option<Self> {
        match e.sqlite_error_code()? {
            ErrorCode::DiskFull => Some(StorageFailure::DiskFull),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Some(StorageFailure::Locked),
            ErrorCode::SystemIoFailure => Some(StorageFailure::Other(e.to_string())),
            _ => None,
        }
    }
}

impl StoreError {
    /// The storage failure behind this error, if it is one.
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        match self {
            StoreError::Sqlite(e) => StorageFailure::classify(e),
            StoreError::Commit(failure) => Some(failure.clone()),
            _ => None,
        }
    }

    /// Whether this is one row's own fault (a stored value that cannot be read, a row whose
    /// parent is missing), as opposed to the database failing: work that meets one passes
    /// over that row and goes on with the others.
    pub fn is_unreadable_row(&self) -> bool {
        match self {
            StoreError::CorruptValue(_) | StoreError::Corrupt(_) | StoreError::NotFound(_) => true,
            StoreError::Sqlite(e) => matches!(
                e,
                rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::QueryReturnedNoRows
            ),
            _ => false,
        }
    }
}
