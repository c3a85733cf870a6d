//! Retention (`[retention]`): a relay deletes the logs, messages and content past their
//! windows in batches, keeps what is newer and what is still to be sent, and gives the freed
//! pages of its database file back.
//!
//! Data is made old by rewriting it while the relay is stopped: the time digits of a
//! message's and its logs' ids (ids are time-sortable, and retention reads them) and the
//! `used_at` of their content are set in 1970-72, far outside any window.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rusqlite::Connection;
use serde_json::json;

use crate::common::{Receiver, Relay, LOGS, WAIT};

/// A day: the windows the relay runs with, against data decades old.
const RETENTION: &str = "
[retention]
logs_secs = 86400
messages_secs = 86400
payload_secs = 86400
batch_rows = 2
batch_pause_ms = 1
interval_ms = 100
";

/// Retention off, for the relay that makes the data.
const KEEP_ALL: &str = "
[retention]
logs_secs = 0
messages_secs = 0
payload_secs = 0
";

/// Retries an hour apart: a failed first attempt leaves its delivery pending.
const SLOW_RETRIES: &str = "
[delivery]
initial_backoff_ms = 3600000
";

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Makes message `id`, its deliveries' and logs' references to it, its logs and its
/// payload decades old (their ids' first three hex digits zeroed); returns its new id.
fn age_message(conn: &Connection, id: &str) -> String {
    let hex = &id[4..];
    let old_hex = format!("000{}", &hex[3..]);
    // Ids are stored as the bytes their hex digits spell: safe to quote as they are.
    let sql = format!(
        "UPDATE bodies SET used_at = 0 WHERE hash = (SELECT payload_hash FROM messages WHERE id = unhex('{hex}'));
         UPDATE messages SET id = unhex('{old_hex}'), created_at = 1000 WHERE id = unhex('{hex}');
         UPDATE deliveries SET message_id = unhex('{old_hex}'),
             last_log_id = unhex('000' || substr(hex(last_log_id), 4)) WHERE message_id = unhex('{hex}');
         UPDATE logs SET message_id = unhex('{old_hex}'), id = unhex('000' || substr(hex(id), 4))
             WHERE message_id = unhex('{hex}');"
    );
    conn.execute_batch(&sql).expect("age a message");
    format!("msg_{old_hex}")
}

async fn status_of(relay: &Relay, path: &str) -> StatusCode {
    relay.req(Method::GET, path).send().await.expect("send").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_logs_messages_and_content_are_deleted_in_batches_and_newer_or_pending_ones_kept() {
    let ok = Receiver::ok().await;
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let mut maker = Relay::start(&format!("{KEEP_ALL}{SLOW_RETRIES}"));
    maker.create_automation("p", &ok.url("/ok")).await;
    maker.create_automation("q", &failing.url("/fail")).await;
    let mut sent = Vec::new();
    for n in 0..9 {
        let body = maker.send_message("p", json!({ "n": n })).await;
        sent.push(body["id"].as_str().expect("message id").to_string());
    }
    let pending = maker.send_message("q", json!({ "still": "to send" })).await;
    let pending = pending["id"].as_str().expect("message id").to_string();
    maker.wait_logs_exactly("", 10).await;
    assert!(maker.terminate().success());

    let db = maker.dir.path().join("hookrelay.db");
    let conn = Connection::open(&db).expect("open");
    // A message's id changes under its deliveries: they are moved to the new one after.
    conn.execute_batch("PRAGMA foreign_keys = OFF").expect("foreign keys off");
    // Three times the batch of 2 old messages (and logs, and payloads); three new ones.
    let old: Vec<String> = sent[..6].iter().map(|id| age_message(&conn, id)).collect();
    let pending = age_message(&conn, &pending);
    let old_logs: Vec<String> = conn
        .prepare("SELECT id FROM logs WHERE id < x'0010' ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get::<_, hookrelay::ids::LogId>(0).map(String::from))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("old logs");
    assert_eq!(old_logs.len(), 7, "6 old messages' logs and the pending one's");
    assert_eq!(count(&conn, "SELECT count(*) FROM bodies WHERE used_at = 0"), 7);

    let relay = Relay::start_with_database(&db, &format!("{RETENTION}{SLOW_RETRIES}"));
    relay
        .wait_for(WAIT, "retention to delete the old content", || async {
            (count(&conn, "SELECT count(*) FROM bodies WHERE used_at = 0") == 1).then_some(())
        })
        .await;

    for id in &old {
        assert_eq!(status_of(&relay, &format!("/v1/messages/{id}")).await, 404, "{id}");
    }
    for id in &old_logs {
        assert_eq!(status_of(&relay, &format!("{LOGS}/{id}")).await, 404, "{id}");
    }
    let listed = relay.list_all("/v1/messages?processor_id=p").await;
    let listed: Vec<&str> = listed.iter().map(|m| m["id"].as_str().expect("id")).collect();
    assert_eq!(listed, sent[6..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        relay.list_all("/v1/processors/p/automations/logs?").await.len(),
        3,
        "the new messages' logs"
    );
    // The message still to be sent is kept, with its payload, and its delivery is pending.
    let kept = relay.get_json(&format!("/v1/messages/{pending}")).await;
    assert_eq!(kept["payload"], json!({ "still": "to send" }), "{kept}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM deliveries WHERE status = 'pending'"),
        1,
        "the pending delivery is kept"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM deliveries"), 4, "3 new ones and the pending");

    let deleted =
        |table: &str| format!("hookrelay_retention_deleted_rows_total{{table=\"{table}\"}}");
    assert_eq!(relay.metric(&deleted("logs")).await, 7.0);
    assert_eq!(relay.metric(&deleted("messages")).await, 6.0);
    assert_eq!(relay.metric(&deleted("deliveries")).await, 6.0);
    assert_eq!(relay.metric(&deleted("bodies")).await, 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gives_the_pages_retention_freed_back_to_the_file_system() {
    let mut maker = Relay::start(KEEP_ALL);
    // Every table's series is there from the start, at 0, before any pass deleted a row.
    for table in hookrelay::metrics::RETENTION_TABLES {
        let series = format!("hookrelay_retention_deleted_rows_total{{table=\"{table}\"}}");
        assert_eq!(maker.metric(&series).await, 0.0, "{series}");
    }
    maker.kill9();
    let db = maker.dir.path().join("hookrelay.db");
    let conn = Connection::open(&db).expect("open");
    assert_eq!(count(&conn, "PRAGMA auto_vacuum"), 2, "incremental");
    // 8 MB of content nothing has used for decades.
    let tx = conn.unchecked_transaction().expect("begin");
    for n in 0..1000u32 {
        let mut hash = [0u8; 16];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        tx.execute(
            "INSERT INTO bodies (hash, data, used_at) VALUES (?1, zeroblob(8000), 0)",
            [&hash[..]],
        )
        .expect("insert");
    }
    // An uploaded file whose content goes, and one whose content is new and stays.
    let upload = "INSERT INTO upload_files (id, app_id, name, size, extension, mime_type, \
        created_by, data_hash, created_at) VALUES (?1, 'demo', 'a.pdf', 1, 'pdf', \
        'application/pdf', 'user', ?2, 0)";
    tx.execute(upload, rusqlite::params!["old-file", &[0u8; 16][..]]).expect("old upload");
    tx.execute(
        "INSERT INTO bodies (hash, data, used_at) VALUES (x'ff', x'00', unixepoch() * 1000)",
        [],
    )
    .expect("new content");
    tx.execute(upload, rusqlite::params!["new-file", &[0xffu8][..]]).expect("new upload");
    tx.commit().expect("commit");
    let size =
        |conn: &Connection| count(conn, "PRAGMA page_count") * count(conn, "PRAGMA page_size");
    let before = size(&conn);
    assert!(before > 8_000_000, "{before}");

    let relay =
        Relay::start_with_database(&db, &RETENTION.replace("batch_rows = 2", "batch_rows = 200"));
    // The gauges are set after each pass (0 before the first), and the relay's own writes
    // move the pages in use a little between passes: wait for the gauges to show the file.
    let (free, in_use) = relay
        .wait_for(Duration::from_secs(15), "the freed pages to be given back", || async {
            let deleted =
                relay.metric("hookrelay_retention_deleted_rows_total{table=\"bodies\"}").await;
            let free = relay.metric("hookrelay_database_free_pages").await as i64;
            let shown = relay.metric("hookrelay_database_size_bytes").await as i64;
            let file_free = count(&conn, "PRAGMA freelist_count");
            let in_use = count(&conn, "PRAGMA page_count") - file_free;
            (deleted == 1000.0 && shown == size(&conn) && free == file_free)
                .then_some((free, in_use))
        })
        .await;
    assert!(size(&conn) < before - 7_000_000, "{} bytes left of {before}", size(&conn));
    // At most a tenth of the pages in use stay free, for reuse: the other 990 went.
    assert!(free <= in_use / 10, "{free} free pages, {in_use} in use");
    // The uploaded file went with its content, the other one stayed.
    let files: String =
        conn.query_row("SELECT group_concat(id) FROM upload_files", [], |r| r.get(0)).expect("ids");
    assert_eq!(files, "new-file");
    let deleted = "hookrelay_retention_deleted_rows_total{table=\"upload_files\"}";
    assert_eq!(relay.metric(deleted).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_database_keeps_its_vacuum_mode_and_the_log_says_so_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("v5.sqlite");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v5.sqlite");
    std::fs::copy(fixture, &db).expect("copy the fixture");
    let db_name = db.to_str().expect("a UTF-8 path");
    let env = [("HOOKRELAY_DATABASE", db_name), ("RUST_LOG", "info")];
    let relay = Relay::start_capturing_log(RETENTION, &env);
    let said = "created without incremental auto-vacuum";
    relay
        .wait_for(WAIT, "the start-up line about vacuum", || async {
            relay.log().contains(said).then_some(())
        })
        .await;
    // Several passes later (one each 100 ms), still once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(relay.log().matches(said).count(), 1, "{}", relay.log());
    assert!(relay.metric("hookrelay_database_size_bytes").await > 0.0, "a pass ended");
    let conn = Connection::open(&db).expect("open");
    assert_eq!(count(&conn, "PRAGMA auto_vacuum"), 0, "no VACUUM at start-up");
}
