//! Tests of the schema and its upgrades (`schema.rs`).

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

/// Takes version 18's column (rate limits) out of a new database, making it look older.
const UNDO_V18: &str = "ALTER TABLE automations DROP COLUMN rate_limit_per_sec;";
/// Takes version 17's columns, index and triggers (FIFO automations) out of a new database,
/// to make it one of an older version (with version 21's trigger, which reads its column).
const UNDO_V17: &str = "DROP TRIGGER deliveries_fifo_kept_waiting; \
    DROP TRIGGER deliveries_fifo_stored; DROP TRIGGER deliveries_fifo_requeued; \
    DROP TRIGGER deliveries_fifo_ended; DROP TRIGGER deliveries_fifo_deleted; \
    DROP INDEX deliveries_fifo; \
    ALTER TABLE automations DROP COLUMN ordering; ALTER TABLE deliveries DROP COLUMN fifo;";

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
    let kind: String = conn.query_row("SELECT kind FROM recover_jobs", [], |r| r.get(0)).unwrap();
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
    conn.execute_batch(&format!(
        "{UNDO_V18} {UNDO_V17} DROP INDEX logs_delivery; \
         ALTER TABLE workflow_runs DROP COLUMN nodes; PRAGMA user_version = 12;"
    ))
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
    conn.execute_batch(&format!(
        "{UNDO_V18} {UNDO_V17} ALTER TABLE workflow_runs DROP COLUMN nodes;
         PRAGMA user_version = 13;
         INSERT INTO workflow_runs (id, app_id, task_id, status, inputs, outputs, error, user,
             files, elapsed_time, total_tokens, total_steps, created_at, finished_at)
         VALUES ('r1', 'demo', 't1', 'succeeded', '{{}}', '{{}}', NULL, 'u', '[]', 0.5, 0, 3, 0, 1);"
    ))
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

/// A version 16 database: its automations become parallel, its deliveries are parallel ones,
/// and the line's index and triggers exist.
#[test]
fn a_version_16_database_stays_parallel() {
    let conn = Connection::open_in_memory().unwrap();
    apply(&conn).unwrap();
    conn.execute_batch(&format!("{UNDO_V18} {UNDO_V17} PRAGMA user_version = 16;")).unwrap();
    conn.execute(
        "INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers, \
         need_validation, default_language, enabled, secret, created_at, updated_at) \
         VALUES (?1, 'a', 'p', 'http://x/', '{}', 0, 'en', 1, 'whsec_x', 0, 0)",
        ["endp_0000000000000000000000000000000a"],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO messages (id, processor_id, payload_hash, created_at) VALUES ('m', 'p', x'00', 0)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         next_trigger, created_at, updated_at) VALUES ('d', 'm', ?1, 'pending', 0, 1, 'initial', 1, 1)",
        ["endp_0000000000000000000000000000000a"],
    )
    .unwrap();
    apply(&conn).unwrap();
    let ordering: crate::store::DeliveryOrder =
        conn.query_row("SELECT ordering FROM automations", [], |r| r.get(0)).unwrap();
    assert_eq!(ordering, crate::store::DeliveryOrder::Parallel);
    let fifo: bool = conn.query_row("SELECT fifo FROM deliveries", [], |r| r.get(0)).unwrap();
    assert!(!fifo);
    let objects: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'deliveries_fifo%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(objects, 6, "the index and its four triggers, and version 21's");
    let set = "UPDATE automations SET ordering = ?1";
    assert!(conn.execute(set, ["lifo"]).is_err(), "the CHECK refuses another ordering");
    conn.execute(set, ["fifo"]).unwrap();
}

/// A version 17 database's automations get version 18's rate limit column, empty (no
/// limit); a limit outside 1 to 10 000 is refused.
#[test]
fn a_version_17_database_leaves_its_automations_unlimited() {
    let conn = Connection::open_in_memory().unwrap();
    apply(&conn).unwrap();
    conn.execute_batch(
        "ALTER TABLE automations DROP COLUMN rate_limit_per_sec; PRAGMA user_version = 17;
         INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers,
             need_validation, default_language, enabled, event_types, secret, created_at,
             updated_at)
         VALUES ('a1', 'n', 'p', 'http://x/', '{}', 0, 'en', 1, NULL, 'whsec_x', 0, 0);",
    )
    .unwrap();
    apply(&conn).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, VERSION);
    let limit: Option<i64> =
        conn.query_row("SELECT rate_limit_per_sec FROM automations", [], |r| r.get(0)).unwrap();
    assert_eq!(limit, None);
    let set = "UPDATE automations SET rate_limit_per_sec = ?1";
    for allowed in [1, 10_000] {
        conn.execute(set, [allowed]).unwrap();
    }
    for refused in [0, -1, 10_001] {
        assert!(conn.execute(set, [refused]).is_err(), "{refused} stored");
    }
    assert!(conn.execute(set, [1.5]).is_err(), "1.5 stored");
}

/// A version 20 database gets `bodies.encoding`: the bodies stored before it read back as
/// they were stored (0), and a body stored after the upgrade is compressed.
#[test]
fn a_version_20_database_keeps_its_bodies_as_given() {
    let conn = Connection::open_in_memory().unwrap();
    apply(&conn).unwrap();
    let before = vec![b'a'; 4096];
    conn.execute_batch("ALTER TABLE bodies DROP COLUMN encoding; PRAGMA user_version = 20;")
        .unwrap();
    conn.execute(
        "INSERT INTO bodies (hash, data, used_at) VALUES (?1, ?2, 0)",
        rusqlite::params![&crate::store::body_hash(&before)[..], &before],
    )
    .unwrap();
    apply(&conn).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, VERSION);
    let hash = crate::store::body_hash(&before);
    assert_eq!(super::super::bodies::find(&conn, &hash).unwrap(), Some(before));
    let after = vec![b'b'; 4096];
    super::super::bodies::put(&conn, &after).unwrap();
    let encodings = names(&conn, "SELECT CAST(encoding AS TEXT) FROM bodies ORDER BY rowid");
    assert_eq!(encodings, ["0", "1"]);
}

/// The opcodes SQLite runs for `sql`, its parameters bound to NULL.
fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Whether writing a row of each table builds a temporary index (`OpenEphemeral`): a CHECK
/// with an `IN` list of three or more values does, for every row (see
/// [`CHECKS_WITHOUT_LISTS`]). Returns the tables that do.
fn tables_checked_through_a_temporary_index(conn: &Connection) -> Vec<String> {
    let tables = names(conn, "SELECT name FROM sqlite_master WHERE type = 'table'");
    assert!(tables.len() > 20, "{tables:?}");
    tables
        .into_iter()
        .filter(|table| {
            let columns = names(
                conn,
                &format!("SELECT name FROM pragma_table_xinfo('{table}') WHERE hidden = 0"),
            );
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                vec!["?"; columns.len()].join(", ")
            );
            opcodes(conn, &insert).iter().any(|op| op == "OpenEphemeral")
        })
        .collect()
}

/// Writing a row of any table of a new database builds no temporary index.
#[test]
fn no_check_builds_a_temporary_index_when_a_row_is_written() {
    let conn = Connection::open_in_memory().unwrap();
    apply(&conn).unwrap();
    assert_eq!(tables_checked_through_a_temporary_index(&conn), Vec::<String>::new());
}

/// A version 22 database (CHECKs with IN lists) gets version 23's definitions, the same
/// text as a new database's, in place: its rows stay, and the rules still hold.
#[test]
fn a_version_22_database_gets_its_checks_spelled_without_lists() {
    let fresh = Connection::open_in_memory().unwrap();
    apply(&fresh).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    apply(&conn).unwrap();
    let version: i64 = conn.pragma_query_value(None, "schema_version", |r| r.get(0)).unwrap();
    conn.pragma_update(None, "writable_schema", true).unwrap();
    for (table, old, new) in CHECKS_WITHOUT_LISTS {
        let undone = conn
            .execute(
                "UPDATE sqlite_schema SET sql = replace(sql, ?3, ?2) WHERE name = ?1",
                [table, old, new],
            )
            .unwrap();
        assert_eq!(undone, 1, "{table}: {new}");
    }
    conn.pragma_update(None, "schema_version", version + 1).unwrap();
    conn.pragma_update(None, "writable_schema", false).unwrap();
    conn.pragma_update(None, "user_version", 22).unwrap();
    let older = tables_checked_through_a_temporary_index(&conn);
    for table in ["api_keys", "console_sessions", "deliveries", "logs", "recover_jobs"] {
        assert!(older.contains(&table.to_string()), "{table} in {older:?}");
    }
    conn.execute_batch(
        "INSERT INTO messages (id, payload_hash, created_at) VALUES (x'01', x'02', 0); \
         INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
             next_attempt_at, claimed, next_trigger, created_at, updated_at) \
         VALUES (x'03', x'01', x'04', 'pending', 0, 0, 0, 'initial', 0, 0);",
    )
    .unwrap();

    apply(&conn).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, VERSION);
    assert_eq!(tables_checked_through_a_temporary_index(&conn), Vec::<String>::new());
    let definitions = "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'table' \
        ORDER BY name";
    assert_eq!(names(&fresh, definitions), names(&conn, definitions));
    let kept: i64 = conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1);
    let set = |column: &str, value: &dyn rusqlite::ToSql| {
        conn.execute(&format!("UPDATE deliveries SET {column} = ?1"), [value])
    };
    assert!(set("status", &"bogus").is_err(), "an unknown status stored");
    assert!(set("claimed", &3).is_err(), "claimed = 3 stored");
    assert!(set("next_trigger", &"rerun").is_err(), "a delivery's trigger cannot be rerun");
    set("status", &"exhausted").unwrap();
    set("claimed", &2).unwrap();
    set("next_trigger", &"replay").unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}
