//! Logs written straight into a stopped relay's database, to reach past bounds (such as the
//! scan budget of `url_contains`) in a test's time: copies of one log, newer than every log,
//! in its SQLite file or its PostgreSQL database.

use std::path::Path;

/// [`copy_newest`] on the stopped `relay`'s database, whichever backend it runs on.
pub async fn copy_newest_of(relay: &hookrelay_testkit::Relay, url_part: &str, n: i64) -> usize {
    match relay.postgres_url() {
        Some(url) => copy_newest_on_postgres(url, url_part, n).await,
        None => copy_newest(&relay.dir.path().join("hookrelay.db"), url_part, n),
    }
}

/// Writes `n` copies of the log whose URL contains `url_part` (there must be one), with ids
/// one millisecond after the newest log's, in order; returns how many were written.
fn copy_newest(db: &Path, url_part: &str, n: i64) -> usize {
    let db = rusqlite::Connection::open(db).expect("db");
    let newest: Vec<u8> = db.query_row("SELECT max(id) FROM logs", [], |r| r.get(0)).expect("id");
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&newest[..6]);
    let prefix = format!("{:012x}", u64::from_be_bytes(ms) + 1);
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1),
             original AS (SELECT * FROM logs WHERE instr(webhook_url, ?3) > 0 LIMIT 1)
         INSERT INTO logs SELECT unhex(?2 || printf('%020x', i)),
             delivery_id, message_id, automation_id, processor_id, attempt, trigger,
             rerun_of, webhook_url, request_headers, request_body_hash, request_at,
             response_at, status_code, response_headers, response_body_hash,
             response_truncated, duration_ms, error_code, error_message, snapshot_hash,
             event_type, request_headers_implied
         FROM n, original",
        rusqlite::params![n, prefix, url_part],
    )
    .expect("copies")
}

/// [`copy_newest`] on a PostgreSQL database (ids are `hr_id`, which has no `max`).
async fn copy_newest_on_postgres(url: &str, url_part: &str, n: i64) -> usize {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let newest: Vec<u8> = client
        .query_one("SELECT id::bytea FROM logs ORDER BY id DESC LIMIT 1", &[])
        .await
        .expect("id")
        .get(0);
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&newest[..6]);
    let prefix = (u64::from_be_bytes(ms) + 1).to_be_bytes()[2..].to_vec();
    let copied = client
        .execute(
            "WITH original AS (SELECT * FROM logs WHERE strpos(webhook_url, $3) > 0 LIMIT 1)
             INSERT INTO logs (id, delivery_id, message_id, automation_id, processor_id,
                 attempt, trigger, rerun_of, webhook_url, request_headers, request_body_hash,
                 request_at, response_at, status_code, response_headers, response_body_hash,
                 response_truncated, duration_ms, error_code, error_message, snapshot_hash,
                 event_type, request_headers_implied)
             SELECT ($2::bytea || '\\x0000'::bytea || int8send(i))::hr_id, delivery_id,
                 message_id, automation_id, processor_id, attempt, trigger, rerun_of,
                 webhook_url, request_headers, request_body_hash, request_at, response_at,
                 status_code, response_headers, response_body_hash, response_truncated,
                 duration_ms, error_code, error_message, snapshot_hash, event_type,
                 request_headers_implied
             FROM generate_series(1::bigint, $1::bigint) AS i, original",
            &[&n, &prefix, &url_part],
        )
        .await
        .expect("copies");
    copied as usize
}
