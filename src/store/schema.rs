//! Applies `schema.sql` and upgrades older databases in place (`PRAGMA user_version`).

use rusqlite::{Connection, OptionalExtension};

use super::{stored_ids, StoreError, StoreResult};

/// The schema this build writes.
pub const VERSION: i64 = 15;

/// `schema.sql` is the whole current schema, written idempotently; upgrades from older
/// versions run first, in order, each keyed by the version it upgrades from. Version 2 only
/// added tables (workflow runs), which the idempotent schema itself creates. Versions 3 and 4
/// redefine an index: the old one is dropped, and the schema creates the new one. Version 4
/// also gives `deliveries.claimed` the value 2 (held, call not started); a 1 written by an
/// older build keeps its meaning (call may have started); and it adds the snapshot_headers
/// table. Version 5 adds columns (`messages.automation_id`; `recover_jobs.kind`, `cursor`
/// and `ended`, for replay jobs), the two message-list indexes, and replaces the index on
/// `deliveries(message_id)` by a unique one on `(message_id, automation_id)`. It also adds
/// `logs.event_type` (the message's, filled in on existing logs) and the log filters' partial
/// indexes. Messages
/// stored before 5 have no `automation_id`: those addressed to one automation cannot be
/// told from those sent to their processor, and are taken for the latter.
/// Version 6 adds constraints (CHECKs, foreign keys) and makes `logs.status_class` a
/// generated column; SQLite cannot add those to a table, so [`rebuild`] remakes the tables.
/// Version 7 makes `bodies` a rowid table with a `used_at` column: the old one is set aside
/// before the schema runs and copied into the new one after ([`BODIES_V7_COPY`]), and adds
/// `messages.content_expunged_at` (none of the messages before it was expunged).
/// Version 8 stores ids as 16 bytes: an older database's are converted in place, after
/// every earlier step ([`stored_ids::convert`]); the tables' definitions do not change.
/// Version 9 gives API keys an id, a role (the keys stored before it are admin keys), an
/// expiry, a last use and a revocation time.
/// Version 10 gives recover jobs the logs filters they match (on a delivery's last attempt)
/// and a cancellation time; a job stored before it has no filter and was never cancelled.
/// Version 11 adds the console's sessions, a new table only: no upgrade step.
/// Version 12 adds `logs.request_headers_implied`: the logs stored before it keep their
/// headers whole (0).
/// Version 13 adds an index on `logs(delivery_id, id)` (the chain of attempts), which the
/// idempotent schema creates: no upgrade step.
/// Version 14 adds `workflow_runs.nodes`, the node executions of a run stored when it ends:
/// the runs stored before it have none (`[]`).
/// Version 15 adds the overview's per-minute rollup (src/store/rollup.rs), new tables only:
/// no upgrade step; the rollup job counts an existing database's logs from the first, in
/// bounded batches.
const SCHEMA: &str = include_str!("../../schema.sql");
const UPGRADES: &[(i64, &str)] = &[
    (2, "DROP INDEX IF EXISTS deliveries_due;"),
    (3, "DROP INDEX IF EXISTS deliveries_due;"),
    (
        4,
        "ALTER TABLE messages ADD COLUMN automation_id TEXT; \
         ALTER TABLE recover_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'recover'; \
         ALTER TABLE recover_jobs ADD COLUMN cursor TEXT; \
         ALTER TABLE recover_jobs ADD COLUMN ended TEXT; \
         DROP INDEX IF EXISTS deliveries_message; \
         ALTER TABLE logs ADD COLUMN event_type TEXT; \
         UPDATE logs SET event_type = (SELECT event_type FROM messages WHERE id = logs.message_id);",
    ),
    (
        6,
        "ALTER TABLE bodies RENAME TO bodies_before_v7; \
         ALTER TABLE messages ADD COLUMN content_expunged_at INTEGER;",
    ),
    // Version 9: keys with roles (see api_keys in schema.sql).
    (
        8,
        "ALTER TABLE api_keys RENAME COLUMN label TO name; \
         ALTER TABLE api_keys ADD COLUMN id TEXT; \
         ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' \
             CHECK (role IN ('viewer', 'operator', 'admin')); \
         ALTER TABLE api_keys ADD COLUMN expires_at INTEGER; \
         ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER; \
         ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;",
    ),
    // Version 10: recover jobs with filters and a cancel (see recover_jobs in schema.sql).
    (
        9,
        "ALTER TABLE recover_jobs ADD COLUMN status_code INTEGER; \
         ALTER TABLE recover_jobs ADD COLUMN status_class INTEGER; \
         ALTER TABLE recover_jobs ADD COLUMN error_code TEXT; \
         ALTER TABLE recover_jobs ADD COLUMN event_type TEXT; \
         ALTER TABLE recover_jobs ADD COLUMN cancelled_at INTEGER;",
    ),
    // Version 12: logs may leave out implied request headers (see logs in schema.sql).
    (
        11,
        "ALTER TABLE logs ADD COLUMN request_headers_implied INTEGER NOT NULL DEFAULT 0 \
             CHECK (request_headers_implied IN (0, 1));",
    ),
];

/// Version 14's step (see the doc of [`SCHEMA`]), kept out of [`UPGRADES`] because its table
/// came with version 2: a database older than that has none to alter, and gets the table,
/// column included, from the schema. Keyed by the version it upgrades from, like a step.
const RUN_NODES: (i64, &str) = (
    13,
    "ALTER TABLE workflow_runs ADD COLUMN nodes TEXT NOT NULL DEFAULT '[]' \
         CHECK (json_valid(nodes) AND json_type(nodes) = 'array');",
);

/// Version 7's copy of the bodies set aside by its upgrade step: every one counts as used at
/// the upgrade, so content retention starts counting from there, and as shared, since who
/// else stored it was never recorded (an expunge then leaves it to retention).
const BODIES_V7_COPY: &str = "INSERT INTO bodies (hash, data, used_at, shared) \
     SELECT hash, data, unixepoch() * 1000, 1 FROM bodies_before_v7 ORDER BY hash; \
     DROP TABLE bodies_before_v7;";

/// The tables version 6 gave constraints or a generated column, rebuilt from an older
/// database (see [`rebuild`]).
const REBUILT: &[&str] = &[
    "automations",
    "idempotency_keys",
    "deliveries",
    "logs",
    "recover_jobs",
    "workflow_runs",
    "worksheets",
    "sheet_rows",
    "snapshot_headers",
    "spreadsheet_signers",
    "calls_in_flight",
];

/// Rows of an older database whose parent is gone, which version 6's foreign keys refuse,
/// deleted as `ON DELETE CASCADE` would have (children after their parents). None can be
/// reached through the API; an older build could leave the snapshot headers of an automation
/// deleted while its call was in flight, secrets that should have gone with it.
const ORPHANS: &[&str] = &[
    "DELETE FROM worksheets WHERE spreadsheet_id NOT IN (SELECT id FROM spreadsheets)",
    "DELETE FROM sheet_rows WHERE NOT EXISTS (SELECT 1 FROM worksheets w \
        WHERE w.spreadsheet_id = sheet_rows.spreadsheet_id AND w.sheet_id = sheet_rows.sheet_id)",
    "DELETE FROM spreadsheet_signers WHERE spreadsheet_id NOT IN (SELECT id FROM spreadsheets) \
        OR automation_id NOT IN (SELECT id FROM automations)",
    "DELETE FROM snapshot_headers WHERE automation_id NOT IN (SELECT id FROM automations)",
    "DELETE FROM deliveries WHERE message_id NOT IN (SELECT id FROM messages)",
];

/// The name an old table has while its rows are copied into its new definition.
fn old_name(table: &str) -> String {
    format!("{table}_before_v6")
}

pub(super) fn apply(conn: &Connection) -> StoreResult<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {found} is newer than this build ({VERSION})"
        )));
    }
    // Foreign keys are off while tables are remade (SQLite's documented procedure: dropping
    // an old parent table must not cascade into its children), and are checked as a whole
    // before the upgrade commits. The pragma is a no-op inside a transaction, hence here.
    conn.pragma_update(None, "foreign_keys", false)?;
    let applied = upgrade(conn, found);
    conn.pragma_update(None, "foreign_keys", true)?;
    applied
}

fn upgrade(conn: &Connection, found: i64) -> StoreResult<()> {
    let tx = conn.unchecked_transaction()?;
    for (from, sql) in UPGRADES {
        if found != 0 && *from >= found {
            tx.execute_batch(sql)?;
        }
    }
    if found >= 2 && RUN_NODES.0 >= found {
        tx.execute_batch(RUN_NODES.1)?;
    }
    let rebuilt = if found != 0 && found < 6 { set_aside(&tx)? } else { Vec::new() };
    tx.execute_batch(SCHEMA)?;
    rebuild(&tx, &rebuilt)?;
    if found != 0 && found < 7 {
        tx.execute_batch(BODIES_V7_COPY)?;
    }
    if found != 0 && found < 8 {
        stored_ids::convert(&tx)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Renames each table of [`REBUILT`] the database has out of the way, and drops its indexes
/// (their names are the new tables'); returns the tables set aside.
fn set_aside(conn: &Connection) -> StoreResult<Vec<&'static str>> {
    let mut set_aside = Vec::new();
    for &table in REBUILT {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            continue;
        }
        let old = old_name(table);
        conn.execute_batch(&format!("ALTER TABLE {table} RENAME TO {old}"))?;
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                 AND sql IS NOT NULL",
            )?
            .query_map([&old], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for index in indexes {
            conn.execute_batch(&format!("DROP INDEX {index}"))?;
        }
        set_aside.push(table);
    }
    Ok(set_aside)
}

/// SQLite's 12-step table rebuild, steps 4 to 10, for the tables [`set_aside`] renamed:
/// each one's rows are copied into its new definition in one `INSERT … SELECT` (however
/// large the table), under its constraints, and the old table dropped. A row they refuse
/// stops the upgrade (nothing of it is kept, the database stays as it was) naming its table:
/// such a value would be misread later. Rows whose parent is gone are deleted ([`ORPHANS`]).
fn rebuild(conn: &Connection, tables: &[&str]) -> StoreResult<()> {
    for &table in tables {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 0")?
            .query_map([table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let columns = columns.join(", ");
        let old = old_name(table);
        conn.execute_batch(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}; DROP TABLE {old};"
        ))
        .map_err(|e| {
            StoreError::Corrupt(format!(
                "upgrading the database to version {VERSION}: a row of table {table} breaks \
                 its constraints ({e}); nothing was changed"
            ))
        })?;
    }
    if !tables.is_empty() {
        let mut orphans = 0;
        for sql in ORPHANS {
            orphans += conn.execute(sql, [])?;
        }
        if orphans > 0 {
            tracing::warn!(rows = orphans, "upgrade: deleted rows whose parent was gone");
        }
        let orphan: Option<String> = conn
            .query_row("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = orphan {
            return Err(StoreError::Corrupt(format!(
                "upgrading the database to version {VERSION}: a row of table {table} refers \
                 to a row that does not exist; nothing was changed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `schema.sql` as version 5 had it.
    const SCHEMA_V5: &str = include_str!("../../tests/fixtures/schema_v5.sql");

    /// The schema of version 4, derived from this one: without version 5's columns and
    /// indexes, with the index on `deliveries(message_id)` it replaced.
    fn version_4_schema() -> String {
        let cut = SCHEMA_V5.find("-- Version 5.").expect("the version 5 section");
        let new_columns = [
            "    automation_id   TEXT\n",
            "    kind ",
            "    cursor ",
            "    ended ",
            "    event_type          TEXT ",
        ];
        let v4: String = SCHEMA_V5[..cut]
            .split_inclusive('\n')
            .filter(|line| !new_columns.iter().any(|c| line.starts_with(c)))
            .collect();
        // The column before the removed ones lost its successor.
        let v4 = v4.replace(",\n)", "\n)").replace(
            "BLOB NOT NULL,          -- automation as it was when the call was made\n)",
            "BLOB NOT NULL\n)",
        );
        assert!(!v4.contains("kind") && !v4.contains("TEXT\n)"), "{v4}");
        v4 + "CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id);"
    }

    fn names(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn open_at(version: i64, schema: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(schema).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        conn
    }

    /// A version 2 database gets the redefined deliveries_due index.
    #[test]
    fn a_version_2_database_is_upgraded_in_place() {
        let v4 = version_4_schema();
        let v2 = v4.replace(
            "deliveries(next_attempt_at, automation_id, claimed)",
            "deliveries(next_attempt_at)",
        );
        assert_ne!(v2, v4, "the old index definition replaced");
        let conn = open_at(2, &v2);
        apply(&conn).unwrap();
        let columns = names(&conn, "SELECT name FROM pragma_index_info('deliveries_due')");
        assert_eq!(columns, ["next_attempt_at", "automation_id", "claimed"]);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION);
    }

    /// A version 4 database gets version 5's columns and indexes; its recover jobs stay
    /// recover jobs, and a second delivery of a message to the same automation is refused.
    #[test]
    fn a_version_4_database_is_upgraded_to_5() {
        let conn = open_at(4, &version_4_schema());
        conn.execute(
            "INSERT INTO recover_jobs (id, since, until, total, requeued, capped, created_at) \
             VALUES ('rcv_1', 0, 1, 0, 0, 0, 0)",
            [],
        )
        .unwrap();
        assert!(names(&conn, "SELECT name FROM pragma_table_info('messages')")
            .iter()
            .all(|c| c != "automation_id"));
        apply(&conn).unwrap();
        let message_columns = names(&conn, "SELECT name FROM pragma_table_info('messages')");
        assert!(message_columns.contains(&"automation_id".to_string()), "{message_columns:?}");
        let job_columns = names(&conn, "SELECT name FROM pragma_table_info('recover_jobs')");
        for c in ["kind", "cursor", "ended"] {
            assert!(job_columns.contains(&c.to_string()), "{c}: {job_columns:?}");
        }
        let kind: String =
            conn.query_row("SELECT kind FROM recover_jobs", [], |r| r.get(0)).unwrap();
        assert_eq!(kind, "recover");
        let indexes = names(&conn, "SELECT name FROM sqlite_master WHERE type = 'index'");
        for i in ["messages_processor", "messages_event_type", "deliveries_message_automation"] {
            assert!(indexes.contains(&i.to_string()), "{i}: {indexes:?}");
        }
        assert!(!indexes.contains(&"deliveries_message".to_string()), "{indexes:?}");
        let insert = "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
            next_attempt_at, next_trigger, created_at, updated_at) \
            VALUES (?1, 'msg_1', 'endp_1', 'pending', 0, 0, 'initial', 0, 0)";
        conn.execute(
            "INSERT INTO messages (id, payload_hash, created_at) VALUES ('msg_1', x'00', 0)",
            [],
        )
        .unwrap();
        conn.execute(insert, ["dlv_1"]).unwrap();
        assert!(conn.execute(insert, ["dlv_2"]).is_err(), "a second delivery was stored");
    }

    /// A fresh database and an upgraded one end up with the same tables and indexes.
    #[test]
    fn an_upgraded_database_matches_a_new_one() {
        let fresh = Connection::open_in_memory().unwrap();
        apply(&fresh).unwrap();
        let upgraded = open_at(4, &version_4_schema());
        apply(&upgraded).unwrap();
        let shape = "SELECT m.name || ':' || group_concat(p.name) FROM sqlite_master m, \
            pragma_table_info(m.name) p WHERE m.type = 'table' GROUP BY m.name ORDER BY m.name";
        assert_eq!(names(&fresh, shape), names(&upgraded, shape));
        let indexes = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name";
        assert_eq!(names(&fresh, indexes), names(&upgraded, indexes));
        // The same definitions of the rebuilt tables and of every index: constraints, foreign
        // keys and generated columns included. (Tables given a column by ALTER TABLE keep an
        // older text, with the same meaning.)
        let definitions = "SELECT name || ': ' || sql FROM sqlite_master WHERE sql IS NOT NULL \
            AND (type = 'index' OR name IN (SELECT value FROM json_each(?1))) ORDER BY name";
        let rebuilt = serde_json::json!(REBUILT).to_string();
        let definitions_in = |conn: &Connection| -> Vec<String> {
            conn.prepare(definitions)
                .unwrap()
                .query_map([&rebuilt], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(definitions_in(&fresh), definitions_in(&upgraded));
        assert!(definitions_in(&fresh).len() > REBUILT.len(), "the indexes compared too");
    }

    /// A version 4 database (no logs.event_type, no log filter indexes) gets the column,
    /// filled from its messages, and the indexes; applying again (every start) changes nothing.
    #[test]
    fn a_version_4_database_gets_the_log_filters() {
        let conn = open_at(4, &version_4_schema());
        assert!(names(&conn, "SELECT name FROM pragma_table_info('logs')")
            .iter()
            .all(|c| c != "event_type"));
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
        let indexes = names(&conn, "SELECT name FROM sqlite_master WHERE type = 'index'");
        for index in ["logs_failed", "logs_error_code", "logs_trigger", "logs_event_type"] {
            assert!(indexes.contains(&index.to_string()), "{index}: {indexes:?}");
        }
    }

    /// A version 12 database gets version 13's index of the chain of attempts.
    #[test]
    fn a_version_12_database_gets_the_delivery_index_of_logs() {
        let conn = Connection::open_in_memory().unwrap();
        apply(&conn).unwrap();
        conn.execute_batch(
            "DROP INDEX logs_delivery; ALTER TABLE workflow_runs DROP COLUMN nodes; \
             PRAGMA user_version = 12;",
        )
        .unwrap();
        apply(&conn).unwrap();
        let indexes = names(&conn, "SELECT name FROM sqlite_master WHERE type = 'index'");
        assert!(indexes.contains(&"logs_delivery".to_string()), "{indexes:?}");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION);
    }

    /// A version 13 database's runs get version 14's node executions column, empty (`[]`);
    /// a run finished after the upgrade stores its nodes, and a value that is not an array
    /// is refused.
    #[test]
    fn a_version_13_database_gives_its_runs_no_nodes() {
        let conn = Connection::open_in_memory().unwrap();
        apply(&conn).unwrap();
        conn.execute_batch(
            "ALTER TABLE workflow_runs DROP COLUMN nodes; PRAGMA user_version = 13;
             INSERT INTO workflow_runs (id, app_id, task_id, status, inputs, outputs, error, user,
                 files, elapsed_time, total_tokens, total_steps, created_at, finished_at)
             VALUES ('r1', 'demo', 't1', 'succeeded', '{}', '{}', NULL, 'u', '[]', 0.5, 0, 3, 0, 1);",
        )
        .unwrap();
        apply(&conn).unwrap();
        assert_eq!(names(&conn, "SELECT nodes FROM workflow_runs"), ["[]"]);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION);
        let set = "UPDATE workflow_runs SET nodes = ?1";
        conn.execute(set, [r#"[{"node_id":"start"}]"#]).unwrap();
        for refused in ["{}", "not json"] {
            assert!(conn.execute(set, [refused]).is_err(), "{refused} stored");
        }
    }

    /// A version 1 database (before workflow runs) still upgrades: version 14's step skips
    /// it, and the schema gives it the runs table with its nodes column.
    #[test]
    fn a_version_1_database_gets_the_runs_table_with_nodes() {
        let conn = open_at(1, include_str!("../../tests/fixtures/schema_v1.sql"));
        apply(&conn).unwrap();
        let columns = names(&conn, "SELECT name FROM pragma_table_info('workflow_runs')");
        assert!(columns.contains(&"nodes".to_string()), "{columns:?}");
    }

    /// Rows an older build left without their parent go (as the cascade would have deleted
    /// them); those with one stay.
    #[test]
    fn the_upgrade_to_6_deletes_rows_whose_parent_is_gone() {
        let conn = open_at(5, SCHEMA_V5);
        conn.execute_batch(
            "INSERT INTO automations VALUES ('endp_1', 'n', 'p', 'u', '{}', 0, 'en', 1, NULL, 'whsec_AAAAAAAAAAAAAAAAAAAAAA==', NULL, NULL, 0, 0);
             INSERT INTO messages VALUES ('msg_1', 'p', NULL, x'00', 0, NULL);
             INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, next_trigger, created_at, updated_at)
                 VALUES ('dlv_1', 'msg_1', 'endp_1', 'pending', 0, 0, 'initial', 0, 0), ('dlv_2', 'msg_gone', 'endp_1', 'pending', 0, 0, 'initial', 0, 0);
             INSERT INTO snapshot_headers VALUES (x'01', 'endp_1', '{}'), (x'02', 'endp_gone', '{\"a\":\"b\"}');
             INSERT INTO spreadsheets VALUES ('ss_1', 't', NULL, 0, 0);
             INSERT INTO worksheets VALUES ('ss_1', 0, 'Sheet1', '[]', 2), ('ss_gone', 0, 'Sheet1', '[]', 2);
             INSERT INTO sheet_rows VALUES ('ss_1', 0, 2, '[]', NULL, NULL, '{}'), ('ss_gone', 0, 2, '[]', NULL, NULL, '{}');",
        )
        .unwrap();
        apply(&conn).unwrap();
        let kept = "SELECT (SELECT group_concat(automation_id) FROM snapshot_headers) || ' ' || \
            (SELECT group_concat(spreadsheet_id) FROM worksheets) || ' ' || \
            (SELECT group_concat(spreadsheet_id) FROM sheet_rows) || ' ' || \
            (SELECT group_concat(id) FROM deliveries)";
        assert_eq!(names(&conn, kept), ["endp_1 ss_1 ss_1 dlv_1"]);
        assert!(names(&conn, "SELECT \"table\" FROM pragma_foreign_key_check").is_empty());
    }

    /// A stored value the new constraints refuse stops the upgrade, naming its table, and
    /// leaves the database as it was.
    #[test]
    fn a_value_the_constraints_refuse_stops_the_upgrade() {
        let conn = open_at(5, SCHEMA_V5);
        conn.execute_batch(
            "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
             next_attempt_at, next_trigger, created_at, updated_at) \
             VALUES ('dlv_1', 'msg_1', 'endp_1', 'sent', 0, 0, 'initial', 0, 0);",
        )
        .unwrap();
        let err = apply(&conn).unwrap_err().to_string();
        assert!(err.contains("table deliveries"), "{err}");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 5);
        assert_eq!(names(&conn, "SELECT status FROM deliveries"), ["sent"]);
    }
}
