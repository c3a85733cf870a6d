//! Applies `schema.sql` and upgrades older databases in place (`PRAGMA user_version`).

use rusqlite::{Connection, OptionalExtension};

use super::{stored_ids, StoreError, StoreResult};

/// The schema this build writes.
pub const VERSION: i64 = 26;

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
/// Version 16 replaces the index of running runs by two on status (the runs list's status
/// filter); the schema creates them.
/// Version 17 adds FIFO automations (src/store/fifo.rs): `automations.ordering` (the
/// automations stored before it stay `parallel`), `deliveries.fifo` (theirs are parallel
/// deliveries, 0), and the index and triggers holding each FIFO automation's line, which the
/// idempotent schema creates.
/// Version 18 adds `automations.rate_limit_per_sec`: the automations stored before it have
/// no limit (NULL).
/// Version 19 adds endpoint health, the enable/disable trail and the operational automation
/// (see schema.sql), new tables only: no upgrade step.
/// Version 20 adds the rollup of calls by automation, minute and status class (the health
/// endpoint's windows), a new table only: no upgrade step; it counts from the upgrade on.
/// Version 21 adds a trigger keeping a waiting FIFO delivery waiting while its line has a
/// head (see `store::fifo::line_up`), which the idempotent schema creates: no upgrade step.
/// Version 22 adds `bodies.encoding` ([`BODIES_ENCODING`]): the bodies stored before it stay
/// as they were given (0), readable as ever; those stored from then on are compressed.
/// Version 23 spells the CHECKs that listed three or more values with OR instead
/// ([`CHECKS_WITHOUT_LISTS`]): the same rules, checked without a temporary index.
/// Version 24 adds PostgreSQL's shared window of rate limits (`pg/rate_starts.sql`); nothing
/// changes on SQLite, whose one process keeps the whole window in memory.
/// Version 25 adds PostgreSQL's `recover_jobs.run_by` (the instance running a job, which a
/// survivor adopts when it dies); nothing changes on SQLite, where one process runs them all.
/// Version 26 stamps PostgreSQL's shared starts as their calls arrive
/// (`pg/rate_starts_stamped.sql`); again nothing on SQLite.
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
    // Version 16: runs indexed by status (see workflow_runs in schema.sql).
    (15, "DROP INDEX IF EXISTS workflow_runs_running;"),
    // Version 17: FIFO automations (see automations.ordering and deliveries.fifo in schema.sql).
    (
        16,
        "ALTER TABLE automations ADD COLUMN ordering TEXT NOT NULL DEFAULT 'parallel' \
             CHECK (ordering IN ('parallel', 'fifo')); \
         ALTER TABLE deliveries ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0 \
             CHECK (fifo IN (0, 1));",
    ),
    // Version 18: a rate limit per automation (see automations in schema.sql).
    (
        17,
        "ALTER TABLE automations ADD COLUMN rate_limit_per_sec INTEGER \
             CHECK (rate_limit_per_sec IS NULL OR (typeof(rate_limit_per_sec) = 'integer' \
             AND rate_limit_per_sec BETWEEN 1 AND 10000));",
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

/// Version 22's step, kept out of [`UPGRADES`] because the `bodies` of a database older than
/// 7 is set aside and made anew by the schema, column included. Keyed like a step. It runs
/// only where the column is missing: upgrade tests make a new database look older by taking
/// out what later versions added, and a column of compressed rows cannot be taken out.
const BODIES_ENCODING: (i64, &str) = (
    21,
    "ALTER TABLE bodies ADD COLUMN encoding INTEGER NOT NULL DEFAULT 0 \
         CHECK (encoding IN (0, 1));",
);

/// Version 23's rewrites, `(table, as older versions spelled it, as schema.sql does)`. SQLite
/// builds a temporary index for a CHECK's `IN` list of three or more values every time it
/// checks a row: ~5 us, three times for each delivery stored and again for each outcome
/// recorded. Every row meets the new spelling, which means the same, so the stored
/// definitions are rewritten in place ([`spell_checks_without_lists`]) rather than the tables
/// remade; a definition spelled otherwise (not found) is left as it is.
const CHECKS_WITHOUT_LISTS: &[(&str, &str, &str)] = &[
    (
        "api_keys",
        "CHECK (role IN ('viewer', 'operator', 'admin'))",
        "CHECK (role = 'viewer' OR role = 'operator' OR role = 'admin')",
    ),
    (
        "console_sessions",
        "CHECK (role IN ('viewer', 'operator', 'admin'))",
        "CHECK (role = 'viewer' OR role = 'operator' OR role = 'admin')",
    ),
    (
        "deliveries",
        "CHECK (status IN ('pending', 'succeeded', 'exhausted', 'failed'))",
        "CHECK (status = 'pending' OR status = 'succeeded' OR status = 'exhausted'\n            \
         OR status = 'failed')",
    ),
    ("deliveries", "CHECK (claimed IN (0, 1, 2))", "CHECK (claimed = 0 OR claimed = 1 OR claimed = 2)"),
    (
        "deliveries",
        "CHECK (next_trigger IN ('initial', 'retry', 'recover', 'replay'))",
        "CHECK (next_trigger = 'initial' OR next_trigger = 'retry' OR next_trigger = 'recover'\n            \
         OR next_trigger = 'replay')",
    ),
    (
        "logs",
        "CHECK (trigger IN ('initial', 'retry', 'rerun', 'recover', 'replay', 'test'))",
        "CHECK (trigger = 'initial' OR trigger = 'retry' OR trigger = 'rerun' OR trigger = 'recover'\n            \
         OR trigger = 'replay' OR trigger = 'test')",
    ),
    (
        "recover_jobs",
        "CHECK (ended IS NULL OR ended IN ('completed', 'automation_disabled', 'automation_deleted'))",
        "CHECK (ended IS NULL OR ended = 'completed' OR ended = 'automation_disabled'\n            \
         OR ended = 'automation_deleted')",
    ),
    (
        "workflow_runs",
        "CHECK (status IN ('running', 'succeeded', 'failed', 'stopped'))",
        "CHECK (status = 'running' OR status = 'succeeded' OR status = 'failed' OR status = 'stopped')",
    ),
];

/// Version 23's step: rewrites the stored table definitions ([`CHECKS_WITHOUT_LISTS`]) by
/// SQLite's documented procedure for a change every existing row still meets
/// (`writable_schema`, then a new `schema_version`, which makes every connection read the
/// definitions again).
fn spell_checks_without_lists(conn: &Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "schema_version", |r| r.get(0))?;
    conn.pragma_update(None, "writable_schema", true)?;
    let mut rewritten = 0;
    for (table, old, new) in CHECKS_WITHOUT_LISTS {
        rewritten += conn.execute(
            "UPDATE sqlite_schema SET sql = replace(sql, ?2, ?3) \
             WHERE type = 'table' AND name = ?1 AND instr(sql, ?2) > 0",
            [table, old, new],
        )?;
    }
    if rewritten > 0 {
        conn.pragma_update(None, "schema_version", version + 1)?;
    }
    conn.pragma_update(None, "writable_schema", false)?;
    Ok(())
}

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
    if found >= 7 && BODIES_ENCODING.0 >= found && !has_column(&tx, "bodies", "encoding")? {
        tx.execute_batch(BODIES_ENCODING.1)?;
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
    if found != 0 && found < 23 {
        spell_checks_without_lists(&tx)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Whether `table` has `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, column])?)
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
#[path = "schema_tests.rs"]
mod tests;
