//! A database written by the previous schema version (tests/fixtures/v5.sqlite, made by
//! tests/fixtures/make_v5.sh) is upgraded in place at start-up: every row kept, and the new
//! constraints hold from then on. A version 7 database keeps its stored key, as an admin key.

use reqwest::Method;
use rusqlite::Connection;

use crate::common::Relay;

/// Tables the relay does not change by starting, compared row for row across the upgrade.
const KEPT: &[&str] = &[
    "automations",
    "messages",
    "deliveries",
    "logs",
    "workflow_runs",
    "spreadsheets",
    "worksheets",
    "sheet_rows",
    "spreadsheet_signers",
    "snapshot_headers",
    "recover_job_deliveries",
    "bodies",
];

/// The rows of `table` in `conn`, each as the quoted values of the columns `table` has in
/// `columns_of` (the old database: a column a later version added is not compared), an id
/// shown as its hex digits whether stored as text (before version 8) or as its bytes (after;
/// `deliveries.recover_job_id` with a first byte for its kind). `logs.status_class` is
/// included: stored before, computed after.
fn rows(conn: &Connection, columns_of: &Connection, table: &str) -> Vec<String> {
    let columns: Vec<String> = columns_of
        .prepare("SELECT name FROM pragma_table_xinfo(?1)")
        .expect("columns")
        .query_map([table], |r| r.get(0))
        .expect("columns")
        .collect::<Result<_, _>>()
        .expect("columns");
    let hex = "[0-9a-f]".repeat(32);
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "CASE WHEN typeof({c}) = 'blob' AND length({c}) = 16 THEN 'id:' || lower(hex({c})) \
                 WHEN typeof({c}) = 'blob' AND length({c}) = 17 \
                     THEN 'id:' || lower(hex(substr({c}, 2))) \
                 WHEN typeof({c}) = 'text' AND {c} GLOB '*_{hex}' THEN 'id:' || substr({c}, -32) \
                 ELSE quote({c}) END"
            )
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}", quoted.join(" || '|' || "));
    conn.prepare(&sql)
        .expect("select")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_database_is_upgraded_in_place_with_its_rows_and_the_new_constraints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("v5.sqlite");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v5.sqlite");
    std::fs::copy(fixture, &db).expect("copy the fixture");
    let before = Connection::open(fixture).expect("open the fixture");
    assert_eq!(count(&before, "PRAGMA user_version"), 5);

    let mut relay = Relay::start_with_database(&db, "");
    let automations = relay.get_json("/v1/processors/automations/endpoints?limit=100").await;
    assert_eq!(automations["data"].as_array().expect("data").len(), 4, "{automations}");
    let ledger = automations["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|a| a["name"] == "ledger")
        .expect("the ledger automation");
    assert_eq!(ledger["event_types"], serde_json::json!(["invoice.paid"]), "{ledger}");
    assert_eq!(relay.all_logs("").await.len(), 18);

    let sheet = "ss_01a22e85791573a08caef35487d5b693";
    let sheet_hex = &sheet[3..];
    let values = relay.get_json(&format!("/v1/spreadsheets/{sheet}/values/Sheet1")).await;
    assert_eq!(
        values["values"].as_array().expect("values").len(),
        3,
        "header and 2 rows: {values}"
    );
    let resp = relay
        .req(Method::DELETE, &format!("/v1/spreadsheets/{sheet}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 200);
    relay.terminate();

    let after = Connection::open(&db).expect("open the upgraded database");
    assert_eq!(count(&after, "PRAGMA user_version"), 12);
    // Version 8: every id is stored as its 16 bytes.
    for (table, column) in [
        ("automations", "id"),
        ("messages", "id"),
        ("deliveries", "message_id"),
        ("logs", "id"),
        ("logs", "automation_id"),
        ("spreadsheets", "id"),
    ] {
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE typeof({column}) <> 'blob' OR length({column}) <> 16"
        );
        assert_eq!(count(&after, &sql), 0, "{table}.{column} holds ids as text");
        let rows = format!("SELECT count(*) FROM {table}");
        assert!(count(&after, &rows) > 0, "{table} has no row: nothing was checked");
    }
    for table in KEPT {
        let mut expected = rows(&before, &before, table);
        let mut got = rows(&after, &before, table);
        if matches!(*table, "worksheets" | "sheet_rows") {
            // The deleted spreadsheet's worksheets and rows went with it (ON DELETE CASCADE).
            expected.retain(|r| !r.contains(sheet_hex));
            assert!(got.iter().all(|r| !r.contains(sheet_hex)), "{table}: {got:?}");
        }
        if *table == "spreadsheets" {
            expected.retain(|r| !r.contains(sheet_hex));
        }
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{table}");
    }
    assert_eq!(count(&after, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    let integrity: String =
        after.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity");
    assert_eq!(integrity, "ok");
    // Version 7: bodies in a rowid table, each counted as used at the upgrade.
    let bodies_sql =
        "SELECT count(*) FROM sqlite_master WHERE name = 'bodies' AND sql LIKE '%WITHOUT ROWID%'";
    assert_eq!(count(&after, bodies_sql), 0, "bodies is still a WITHOUT ROWID table");
    let unused = "SELECT count(*) FROM bodies WHERE used_at < 1767225600000";
    assert_eq!(count(&after, unused), 0, "a body kept no time of use");
    let bad_status = after.execute("UPDATE deliveries SET status = 'sent'", []);
    assert!(bad_status.is_err(), "a delivery status outside its enum was stored");
    let bad_trigger = after.execute("UPDATE logs SET trigger = 'manual'", []);
    assert!(bad_trigger.is_err(), "a log trigger outside its enum was stored");
    let bad_headers = after.execute("UPDATE automations SET webhook_headers = '{'", []);
    assert!(bad_headers.is_err(), "invalid JSON was stored");
}

/// Issue 13: a key stored by version 7 (the admin key generated at first start, which had no
/// id nor role) still works after the upgrade, as an admin key, and is listed with an id
/// that stays the same across starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_7_database_keeps_its_stored_key_as_an_admin_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("v7.sqlite");
    let key = "hr_admin_0123456789abcdef0123456789abcdef0123456789abcdef";
    {
        let conn = Connection::open(&db).expect("create");
        conn.execute_batch(include_str!("../fixtures/schema_v7.sql")).expect("schema v7");
        conn.execute(
            "INSERT INTO api_keys (key_hash, label, created_at) VALUES (?1, 'generated at first start', 1)",
            [hookrelay::auth::key_hash(key).to_vec()],
        )
        .expect("a stored key");
        conn.pragma_update(None, "user_version", 7).expect("version");
    }
    let mut relay = Relay::start_with_database(&db, "");
    let as_stored = |method: Method, path: &str| {
        crate::common::client().request(method, relay.url(path)).bearer_auth(key)
    };
    let list = as_stored(Method::GET, "/v1/keys").send().await.expect("list");
    assert_eq!(list.status(), 200, "the stored key is no longer an admin key");
    let list: serde_json::Value = list.json().await.expect("json");
    let data = list["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(
        (&data[0]["role"], &data[0]["name"]),
        (&"admin".into(), &"generated at first start".into())
    );
    let id = data[0]["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("key_"), "{id}");
    let body = serde_json::json!({"name": "made by the old key", "role": "viewer"});
    let created = as_stored(Method::POST, "/v1/keys").json(&body).send().await.expect("create");
    assert_eq!(created.status(), 201, "an admin-only route");

    relay.restart();
    let list = relay.get_json("/v1/keys").await;
    assert_eq!(list["data"][0]["id"], id.as_str(), "the id changed: {list}");
    relay.terminate();
    let after = Connection::open(&db).expect("open the upgraded database");
    assert_eq!(count(&after, "PRAGMA user_version"), 12);
    assert_eq!(count(&after, "SELECT count(*) FROM api_keys WHERE id IS NULL"), 0);
    let bad_role = after.execute("UPDATE api_keys SET role = 'root'", []);
    assert!(bad_role.is_err(), "a role outside its enum was stored");
}
