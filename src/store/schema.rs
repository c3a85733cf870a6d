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

/// Columns added to a table after its creation: `(table, column, type, fill)`. An existing
/// table without the column gets it (`ALTER TABLE … ADD COLUMN` appends it, where schema.sql
/// declares it last), then `fill` sets its value on the rows it already has. Checked rather
/// than keyed by version, as SQLite has no `ADD COLUMN IF NOT EXISTS`: the step is idempotent
/// like schema.sql, and a table schema.sql creates has the column already.
const ADDED_COLUMNS: &[(&str, &str, &str, &str)] = &[(
    "logs",
    "event_type",
    "TEXT",
    "UPDATE logs SET event_type = (SELECT event_type FROM messages WHERE id = logs.message_id)",
)];

/// Adds each of [`ADDED_COLUMNS`] missing from an existing table, and fills it.
fn add_columns(conn: &Connection) -> StoreResult<()> {
    for (table, column, kind, fill) in ADDED_COLUMNS {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !columns.is_empty() && !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {kind}; {fill};"
            ))?;
        }
    }
    Ok(())
}

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
    add_columns(&tx)?;
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

    /// A version 4 database (no logs.event_type, no log filter indexes) gets the column,
    /// filled from its messages, and the indexes; applying again (every start) changes nothing.
    #[test]
    fn a_version_4_database_gets_the_log_filters() {
        let conn = Connection::open_in_memory().unwrap();
        let (v4, _) = SCHEMA.split_once("-- Version 5 (log filters)").unwrap();
        let v4 = v4.replace(
            "snapshot_hash       BLOB NOT NULL,          -- automation as it was when the call was made\n    event_type          TEXT                    -- the message's (version 5; see below)",
            "snapshot_hash       BLOB NOT NULL",
        );
        assert!(!v4.contains("event_type          TEXT "), "the column removed from version 4");
        conn.execute_batch(&v4).unwrap();
        conn.execute_batch(
            "INSERT INTO messages VALUES ('msg_1', 'p', 'invoice.paid', x'00', 0), ('msg_2', 'p', NULL, x'00', 0);
             INSERT INTO logs (id, message_id, automation_id, processor_id, attempt, trigger,
                 webhook_url, request_headers, request_body_hash, request_at, response_at,
                 status_code, status_class, response_headers, response_truncated, duration_ms,
                 snapshot_hash)
             VALUES ('log_1', 'msg_1', 'a', 'p', 1, 'initial', 'u', '{}', x'00', 0, 0, 200, 2, '{}', 0, 1, x'00'),
                    ('log_2', 'msg_2', 'a', 'p', 1, 'initial', 'u', '{}', x'00', 0, 0, 200, 2, '{}', 0, 1, x'00');",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 4).unwrap();
        for _ in 0..2 {
            apply(&conn).unwrap();
        }
        let types: Vec<Option<String>> = conn
            .prepare("SELECT event_type FROM logs ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(types, [Some("invoice.paid".to_string()), None]);
        for index in ["logs_failed", "logs_error_code", "logs_trigger", "logs_event_type"] {
            let found: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [index], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(found, 1, "{index}");
        }
    }
}
