//! Which failures of a write are tried again, and how long to wait between tries: a write
//! refused because the database is away, full or locked may succeed unchanged later. A
//! workflow run's finish (its final state and completion, committed together) is tried until
//! it is stored, so the run leaves `running` with its webhook once the database answers; an
//! attempt's outcome while its claim's lease lasts (`delivery::dispatcher_line`), so a call
//! the receiver answered is logged once rather than made again.

use std::time::Duration;

use super::pg::PgError;
use super::{StorageFailure, StoreError};

/// The wait before the second try; each later wait doubles, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between two tries: the run ends at most this long after the database
/// answers again.
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// The waits between tries: 100 ms, doubling to 5 s, then 5 s each.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A backoff whose first wait is [`FIRST_WAIT`].
    pub(crate) fn new() -> Self {
        Self { next: FIRST_WAIT }
    }

    /// The wait before the next try.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(LONGEST_WAIT);
        wait
    }
}

/// Whether a write that failed with `e` may succeed unchanged later: the database was away,
/// full or busy, not the write at fault. Tried again:
/// - SQLite: a full disk, or the write lock held by another process
///   ([`StorageFailure::DiskFull`], [`StorageFailure::Locked`]);
/// - PostgreSQL: no connection to be had ([`PgError::Unavailable`]), a connection lost
///   mid-statement ([`PgError::Lost`]: closed, an I/O error, the server going away), and the
///   server's answers that it ran short of resources such as disk space (class `53`) or
///   rolled the transaction back for a concurrent one (class `40`: serialization failure,
///   deadlock).
///
/// Everything else is the write's own fault and fails the same way every time (a value the
/// column refuses, a constraint, a closed store at shutdown): it is not tried again.
pub(crate) fn is_passing(e: &StoreError) -> bool {
    if let Some(failure) = e.storage_failure() {
        return matches!(failure, StorageFailure::DiskFull | StorageFailure::Locked);
    }
    match e {
        StoreError::Postgres(PgError::Unavailable { .. } | PgError::Lost { .. }) => true,
        StoreError::Postgres(PgError::Query { source, .. }) => {
            source.code().is_some_and(|state| matches!(state.code().get(..2), Some("40" | "53")))
        }
        _ => false,
    }
}

/// Whether a write that failed with `e` surely stored nothing and may succeed unchanged
/// later: [`is_passing`], but for a connection lost mid-statement ([`PgError::Lost`]), which
/// may have ended after a COMMIT the server carried out. Such a write is tried again only
/// where writing it twice does no harm; an attempt's outcome is not one (its log would be
/// written twice).
pub(crate) fn surely_unwritten(e: &StoreError) -> bool {
    is_passing(e) && !matches!(e, StoreError::Postgres(PgError::Lost { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::Target;
    use crate::store::Conflict;

    #[test]
    fn waits_double_from_100_ms_to_5_s() {
        let mut backoff = Backoff::new();
        let waits: Vec<u64> = (0..9).map(|_| backoff.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn a_database_away_or_full_is_tried_again_and_the_writes_own_fault_is_not() {
        let target = Target::of_url("postgres://u@127.0.0.1:5432/db").expect("a URL");
        let away = PgError::Unavailable { target, reason: "Connection refused".into() };
        assert!(is_passing(&StoreError::Postgres(away)));
        let target = Target::of_url("postgres://u@127.0.0.1:5432/db").expect("a URL");
        let lost = PgError::Lost { target, reason: "connection closed".into() };
        let lost = StoreError::Postgres(lost);
        assert!(is_passing(&lost));
        assert!(!surely_unwritten(&lost), "a lost COMMIT may have been carried out");
        assert!(surely_unwritten(&StoreError::Commit(StorageFailure::DiskFull)));
        assert!(surely_unwritten(&StoreError::Commit(StorageFailure::Locked)));
        assert!(!is_passing(&StoreError::Commit(StorageFailure::Other("I/O".into()))));
        assert!(!is_passing(&StoreError::Closed));
        let ended = StoreError::Conflict(Conflict::RunNotRunning, "run r is not running".into());
        assert!(!is_passing(&ended));
    }
}
