//! Applies `schema.sql` and upgrades older databases in place (`PRAGMA user_version`).

use rusqlite::Connection;

use super::{StoreError, StoreResult};

/// The schema this build writes.
pub const VERSION: i64 = 4;

/// `schema.sql` is the whole current schema, written idempotently; upgrades from older
/// versions run first, in order, each keyed by the version it upgrades from. Version 2 only
/// added tables (workflow runs), which the idempotent schema itself creates. Versions 3 and 4
/// redefine an index: the old one is dropped, and the schema creates the new one. Version 4
/// also gives `deliveries.claimed` the value 2 (held, call not started); a 1 written by an
/// older build keeps its meaning (call may have started); and it adds the snapshot_headers
/// table.
const SCHEMA: &str = include_str!("../../schema.sql");
const UPGRADES: &[(i64, &str)] =
    &[(2, "DROP INDEX IF EXISTS deliveries_due;"), (3, "DROP INDEX IF EXISTS deliveries_due;")];

pub(super) fn apply(conn: &Connection) -> StoreResult<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {found} is newer than this build ({VERSION})"
        )));
    }
    let tx = conn.unchecked_transaction()?;
    for (from, sql) in UPGRADES {
        if found != 0 && *from >= found {
            tx.execute_batch(sql)?;
        }
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 2 database gets the redefined deliveries_due index.
    #[test]
    fn a_version_2_database_is_upgraded_in_place() {
        let conn = Connection::open_in_memory().unwrap();
        let v2 = SCHEMA.replace(
            "deliveries(next_attempt_at, automation_id, claimed)",
            "deliveries(next_attempt_at)",
        );
        assert_ne!(v2, SCHEMA, "the old index definition replaced");
        conn.execute_batch(&v2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        apply(&conn).unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info('deliveries_due')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(columns, ["next_attempt_at", "automation_id", "claimed"]);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION);
    }
}
