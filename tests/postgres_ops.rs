//! The rollup and retention of `hookrelay serve` on PostgreSQL (issue 15, step 5): two
//! instances on one database, logs written into it directly (ingest on PostgreSQL is not yet
//! on this branch). Between them the logs are counted once, the logs past their window are
//! deleted once counted, each duty has one holder, and either instance's health endpoint
//! answers the same counts.
//!
//! It uses the server `HOOKRELAY_TEST_DATABASE` names (`source .ci/postgres.sh`); without it
//! it is skipped, saying so, except under `CI=true`, where it fails.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookrelay::ids::{LogId, MessageId};
use hookrelay_testkit::postgres::{required_server as server, FreshDatabase};
use tokio_postgres::NoTls;

const KEY: &str = "pg-ops-key-0123456789";
const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// A relay process, killed when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on `database` with `config`; returns the process and its base URL.
fn serve(database: &str, config: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("HOOKRELAY_DATABASE", database)
        .env("HOOKRELAY_LISTEN", "127.0.0.1:0")
        .env("HOOKRELAY_API_KEYS", KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hookrelay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("hookrelay exited before listening").expect("read");
        if let Some(url) = line.strip_prefix("hookrelay listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Running(child), base)
}

/// A log id made `ago_ms` before now, its last bytes `n`.
fn log_id(ago_ms: i64, n: u64) -> LogId {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let ms = now.as_millis() as i64 - ago_ms;
    let mut bytes = *LogId::time_bound(ms).stored_bytes();
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    LogId::from_bytes(bytes)
}

async fn one(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test]
async fn two_instances_count_each_log_once_and_delete_old_logs_once_counted() {
    let Some(server) = server() else { return };
    let db = FreshDatabase::create(&server);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[retention]\nlogs_secs = 3600\ninterval_ms = 300\n").expect("config");
    let (a, base_a) = serve(&db.url, &config);
    let (b, base_b) = serve(&db.url, &config);
    let http = hookrelay_testkit::client();
    let created: serde_json::Value = http
        .post(format!("{base_a}{ENDPOINTS}"))
        .header("Api-Key", KEY)
        .json(&serde_json::json!({
            "name": "ops", "processor_id": "proc_pg", "webhook_url": "https://example.com/h"
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("an id").to_string();
    let automation = hookrelay::ids::AutomationId::parse(&id).expect("an automation id");

    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    // 30 calls two hours ago (past the logs' window), 6 ten minutes ago; a third fails.
    for n in 0..36u64 {
        let ago = if n < 30 { 2 * 3_600_000 } else { 600_000 };
        let (status, error) = if n % 3 == 0 { (500, Some("http_status")) } else { (200, None) };
        client
            .execute(
                "INSERT INTO logs (id, message_id, automation_id, processor_id, attempt, \
                 trigger, webhook_url, request_headers, request_body_hash, request_at, \
                 response_at, status_code, response_headers, response_truncated, duration_ms, \
                 error_code, snapshot_hash) VALUES ($1, $2, $3, 'proc_pg', 1, 'initial', \
                 'https://example.com/h', '{}', '\\x00', 0, 0, $4, '{}', false, 12.5, $5, \
                 '\\x00')",
                &[&log_id(ago, n), &MessageId::new(), &automation, &status, &error],
            )
            .await
            .expect("insert log");
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counted =
            one(&client, "SELECT coalesce(sum(succeeded + failed), 0)::bigint FROM rollup_minutes")
                .await;
        let logs = one(&client, "SELECT count(*) FROM logs").await;
        if counted >= 36 && logs == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "counted {counted} of 36, {logs} logs left of 6");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another pass of each instance's tasks, then: still counted once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counted =
        one(&client, "SELECT coalesce(sum(succeeded + failed), 0)::bigint FROM rollup_minutes")
            .await;
    assert_eq!(counted, 36, "each log counted once between the two instances");
    assert_eq!(one(&client, "SELECT count(*) FROM logs").await, 6, "the recent logs stay");
    let holders =
        one(&client, "SELECT count(*) FROM duty_leases WHERE duty IN ('rollup', 'retention')")
            .await;
    assert_eq!(holders, 2, "one lease row per duty");

    for base in [&base_a, &base_b] {
        let health: serde_json::Value = http
            .get(format!("{base}{ENDPOINTS}/{id}/health"))
            .header("Api-Key", KEY)
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        let text = health.to_string();
        assert!(text.contains("\"total\":36"), "the day's 36 calls on {base}: {text}");
        assert!(text.contains("\"total\":6"), "the hour's 6 calls on {base}: {text}");
    }
    drop((a, b));
}
