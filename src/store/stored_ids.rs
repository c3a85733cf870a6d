//! Schema version 8: ids stored as the 16 bytes of their UUID instead of their text (see
//! `crate::ids`). An older database's id columns are converted in place at start-up, in the
//! upgrade's transaction. A value that is not an id of its column's kind is left as it was:
//! it then reads as a corrupt value naming its row, as it did before.

use rusqlite::Connection;

use super::StoreResult;
use crate::ids;

/// Every column holding one of our ids: table, column, the prefixes its ids have.
const ID_COLUMNS: &[(&str, &str, &[&str])] = &[
    ("automations", "id", &[ids::AUTOMATION]),
    ("messages", "id", &[ids::MESSAGE]),
    ("messages", "automation_id", &[ids::AUTOMATION]),
    ("deliveries", "id", &[ids::DELIVERY]),
    ("deliveries", "message_id", &[ids::MESSAGE]),
    ("deliveries", "automation_id", &[ids::AUTOMATION]),
    ("deliveries", "last_log_id", &[ids::LOG]),
    ("logs", "id", &[ids::LOG]),
    ("logs", "delivery_id", &[ids::DELIVERY]),
    ("logs", "message_id", &[ids::MESSAGE]),
    ("logs", "automation_id", &[ids::AUTOMATION]),
    ("logs", "rerun_of", &[ids::LOG]),
    ("recover_jobs", "id", &[ids::RECOVER_JOB, ids::REPLAY_JOB]),
    ("recover_jobs", "automation_id", &[ids::AUTOMATION]),
    ("recover_jobs", "cursor", &[ids::MESSAGE]),
    ("snapshot_headers", "automation_id", &[ids::AUTOMATION]),
    ("spreadsheets", "id", &[ids::SPREADSHEET]),
    ("worksheets", "spreadsheet_id", &[ids::SPREADSHEET]),
    ("sheet_rows", "spreadsheet_id", &[ids::SPREADSHEET]),
    ("spreadsheet_signers", "spreadsheet_id", &[ids::SPREADSHEET]),
    ("spreadsheet_signers", "automation_id", &[ids::AUTOMATION]),
    ("calls_in_flight", "message_id", &[ids::MESSAGE]),
    ("calls_in_flight", "automation_id", &[ids::AUTOMATION]),
    ("calls_in_flight", "rerun_of", &[ids::LOG]),
    ("recover_job_deliveries", "job_id", &[ids::RECOVER_JOB]),
    ("recover_job_deliveries", "delivery_id", &[ids::DELIVERY]),
];

/// `deliveries.recover_job_id` holds a recover or a replay job, stored with a first byte
/// saying which (`store::recover::BackgroundJob`): its tag's hex digits, by prefix.
const JOB_TAGS: &[(&str, &str)] = &[(ids::RECOVER_JOB, "01"), (ids::REPLAY_JOB, "02")];

/// A GLOB matching 32 lowercase hex digits.
fn hex_digits_glob() -> String {
    "[0-9a-f]".repeat(32)
}

/// Converts every id column of an older database to the stored bytes, one `UPDATE` per
/// table.
pub(super) fn convert(conn: &Connection) -> StoreResult<()> {
    let glob = hex_digits_glob();
    let mut tables: Vec<&str> = ID_COLUMNS.iter().map(|(table, _, _)| *table).collect();
    tables.dedup();
    for table in tables {
        let mut sets: Vec<String> = ID_COLUMNS
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, column, prefixes)| {
                let cases: String = prefixes.iter().map(|p| when(column, p, &glob, "")).collect();
                format!("{column} = CASE {cases} ELSE {column} END")
            })
            .collect();
        if table == "deliveries" {
            let cases: String =
                JOB_TAGS.iter().map(|(p, tag)| when("recover_job_id", p, &glob, tag)).collect();
            sets.push(format!("recover_job_id = CASE {cases} ELSE recover_job_id END"));
        }
        conn.execute_batch(&format!("UPDATE {table} SET {};", sets.join(", ")))?;
    }
    Ok(())
}

/// The `WHEN` of a `CASE` turning `column`, when it is `prefix` and 32 hex digits, into the
/// bytes of `tag` (hex, maybe empty) followed by those the digits spell.
fn when(column: &str, prefix: &str, glob: &str, tag: &str) -> String {
    let from = prefix.len() + 1;
    format!(" WHEN {column} GLOB '{prefix}{glob}' THEN unhex('{tag}' || substr({column}, {from}))")
}
