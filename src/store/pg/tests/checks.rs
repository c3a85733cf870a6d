//! Every CHECK of the PostgreSQL schema refuses a bad row: one valid row per table, then each
//! case changes one column of it to a value its CHECK must refuse. The cases must name every
//! CHECK the catalog holds (tables' and the id domain's), so a CHECK added without a case
//! fails here. JSON columns refuse text that is not JSON (SQLite's json_valid, here the type).

use std::collections::BTreeSet;

use super::{admin, server, Fresh};
use crate::store::pg::Pg;

const A: &str = r"'\x00000000000000000000000000000001'::bytea";
const M: &str = r"'\x00000000000000000000000000000002'::bytea";

/// One valid row in every table with a CHECK.
fn valid_rows() -> String {
    format!(
        "INSERT INTO api_keys (key_hash, name, created_at, id, role) VALUES ('\\x01', 'k', 0, {A}, 'viewer');
         INSERT INTO bodies (hash, data, used_at) VALUES ('\\x01', '\\x01', 0);
         INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers, need_validation,
             default_language, enabled, secret, created_at, updated_at)
             VALUES ({A}, 'a', 'p', 'http://r', '{{}}', false, 'en', true, 'whsec_x', 0, 0);
         INSERT INTO messages (id, payload_hash, created_at) VALUES ({M}, '\\x01', 0);
         INSERT INTO idempotency_keys (key, request_hash, response, created_at) VALUES ('i', '\\x01', '{{}}', 0);
         INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at,
             next_trigger, created_at, updated_at) VALUES ({M}, {M}, {A}, 'pending', 0, 0, 'initial', 0, 0);
         INSERT INTO logs (id, message_id, automation_id, processor_id, attempt, trigger, webhook_url,
             request_headers, request_body_hash, request_at, response_at, status_code, response_headers,
             response_truncated, duration_ms, snapshot_hash)
             VALUES ({M}, {M}, {A}, 'p', 1, 'initial', 'http://r', '{{}}', '\\x01', 0, 0, 200, '{{}}', false, 1, '\\x01');
         INSERT INTO recover_jobs (id, since, until, automation_id, total, requeued, capped, created_at)
             VALUES ({M}, 0, 1, {A}, 0, 0, false, 0);
         INSERT INTO workflow_runs (id, app_id, task_id, status, inputs, \"user\", files, elapsed_time,
             total_tokens, total_steps, created_at) VALUES ('r', 'app', 't', 'running', '{{}}', 'u', '[]', 0, 0, 0, 0);
         INSERT INTO spreadsheets (id, title, created_at, updated_at) VALUES ({A}, 's', 0, 0);
         INSERT INTO worksheets (spreadsheet_id, sheet_id, title, header, last_row) VALUES ({A}, 0, 'w', '[]', 1);
         INSERT INTO sheet_rows (spreadsheet_id, sheet_id, row_number, cells, append_result)
             VALUES ({A}, 0, 2, '[]', '{{}}');
         INSERT INTO snapshot_headers (snapshot_hash, automation_id, headers) VALUES ('\\x01', {A}, '{{}}');
         INSERT INTO calls_in_flight (message_id, automation_id, processor_id, trigger, webhook_url,
             request_body_hash, snapshot_hash, request_at) VALUES ({M}, {A}, 'p', 'test', 'http://r', '\\x01', '\\x01', 0);
         INSERT INTO console_sessions (token_hash, key_id, role, csrf_token, created_at, last_seen_at)
             VALUES ('\\x01', {A}, 'admin', 'c', 0, 0);
         INSERT INTO rollup_cursor (id, last_log_id) VALUES (1, {M});
         INSERT INTO rollup_minutes (minute, automation_id, succeeded, failed, last_status_code)
             VALUES (0, {A}, 1, 0, 200);
         INSERT INTO rollup_latency (minute, bucket, calls) VALUES (0, 0, 1);
         INSERT INTO rollup_errors (minute, error_code, calls) VALUES (0, 'some_code', 1);
         INSERT INTO rollup_classes (automation_id, minute, status_class, succeeded, calls)
             VALUES ({A}, 0, 2, true, 1);
         INSERT INTO automation_health (automation_id) VALUES ({A});
         INSERT INTO automation_events (id, automation_id, kind, actor, reason, at)
             VALUES ({M}, {A}, 'disabled', 'key_x', 'r', 0);
         INSERT INTO operational_automation (id, automation_id) VALUES (1, {A});
         INSERT INTO instances (id, started_at, heartbeat_at, host) VALUES (gen_random_uuid(), 0, 0, 'h');
         INSERT INTO duty_leases (duty, held_by, lease_until) VALUES ('retention', gen_random_uuid(), 0);"
    )
}

/// (constraint, the UPDATE its CHECK must refuse).
const CASES: &[(&str, &str)] = &[
    ("hr_id_check", r"UPDATE messages SET automation_id = '\x0001'"),
    ("api_keys_role_check", "UPDATE api_keys SET role = 'root'"),
    ("bodies_encoding_check", "UPDATE bodies SET encoding = 2"),
    ("automations_webhook_headers_check", "UPDATE automations SET webhook_headers = '[]'"),
    ("automations_event_types_check", "UPDATE automations SET event_types = '{}'"),
    ("automations_secret_check", "UPDATE automations SET secret = 'whsecXabc'"),
    ("automations_previous_secret_check", "UPDATE automations SET previous_secret = 'abc'"),
    ("automations_ordering_check", "UPDATE automations SET ordering = 'lifo'"),
    ("automations_rate_limit_per_sec_check", "UPDATE automations SET rate_limit_per_sec = 0"),
    ("deliveries_status_check", "UPDATE deliveries SET status = 'lost'"),
    (
        "deliveries_claimed_check",
        "UPDATE deliveries SET claimed = 3, claimed_by = gen_random_uuid()",
    ),
    ("deliveries_next_trigger_check", "UPDATE deliveries SET next_trigger = 'rerun'"),
    ("deliveries_recover_job_id_check", r"UPDATE deliveries SET recover_job_id = '\x01'"),
    ("deliveries_check", "UPDATE deliveries SET claimed = 1"),
    ("logs_trigger_check", "UPDATE logs SET trigger = 'manual'"),
    ("logs_request_headers_check", "UPDATE logs SET request_headers = '\"x\"'"),
    ("logs_response_headers_check", "UPDATE logs SET response_headers = 'null'"),
    ("recover_jobs_kind_check", "UPDATE recover_jobs SET kind = 'purge'"),
    ("recover_jobs_ended_check", "UPDATE recover_jobs SET ended = 'gone'"),
    ("recover_jobs_check", "UPDATE recover_jobs SET kind = 'replay', automation_id = NULL"),
    ("workflow_runs_status_check", "UPDATE workflow_runs SET status = 'paused'"),
    ("workflow_runs_inputs_check", "UPDATE workflow_runs SET inputs = '[]'"),
    ("workflow_runs_outputs_check", "UPDATE workflow_runs SET outputs = '1'"),
    ("workflow_runs_files_check", "UPDATE workflow_runs SET files = '{}'"),
    ("workflow_runs_nodes_check", "UPDATE workflow_runs SET nodes = '{}'"),
    (
        "workflow_runs_check",
        "UPDATE workflow_runs SET status = 'succeeded', run_by = gen_random_uuid()",
    ),
    ("worksheets_header_check", "UPDATE worksheets SET header = '{}'"),
    ("sheet_rows_cells_check", "UPDATE sheet_rows SET cells = '{}'"),
    ("sheet_rows_likelihoods_check", "UPDATE sheet_rows SET likelihoods = '{}'"),
    ("snapshot_headers_headers_check", "UPDATE snapshot_headers SET headers = '[]'"),
    ("calls_in_flight_trigger_check", "UPDATE calls_in_flight SET trigger = 'initial'"),
    ("console_sessions_role_check", "UPDATE console_sessions SET role = 'owner'"),
    ("console_sessions_check", r"UPDATE console_sessions SET config_key_hash = '\x01'"),
    ("rollup_cursor_id_check", "UPDATE rollup_cursor SET id = 2"),
    ("rollup_minutes_succeeded_check", "UPDATE rollup_minutes SET succeeded = -1"),
    ("rollup_minutes_failed_check", "UPDATE rollup_minutes SET failed = -1"),
    ("rollup_latency_bucket_check", "UPDATE rollup_latency SET bucket = 27"),
    ("rollup_latency_calls_check", "UPDATE rollup_latency SET calls = -1"),
    ("rollup_errors_calls_check", "UPDATE rollup_errors SET calls = -1"),
    ("rollup_classes_status_class_check", "UPDATE rollup_classes SET status_class = 6"),
    ("rollup_classes_calls_check", "UPDATE rollup_classes SET calls = -1"),
    (
        "automation_health_consecutive_failures_check",
        "UPDATE automation_health SET consecutive_failures = -1",
    ),
    ("automation_events_kind_check", "UPDATE automation_events SET kind = 'deleted'"),
    ("automation_events_actor_check", "UPDATE automation_events SET actor = 'keyX'"),
    ("operational_automation_id_check", "UPDATE operational_automation SET id = 2"),
    ("instances_check", "UPDATE instances SET heartbeat_at = -1"),
    ("duty_leases_duty_check", "UPDATE duty_leases SET duty = 'everything'"),
];

#[tokio::test]
async fn every_check_constraint_refuses_a_bad_row() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    let mut client = admin(&db.url).await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&valid_rows()).await.unwrap();
    let mut refused = BTreeSet::new();
    for (constraint, update) in CASES {
        tx.batch_execute("SAVEPOINT bad_row").await.unwrap();
        let err = tx.batch_execute(update).await.expect_err(update);
        let db_err = err.as_db_error().unwrap_or_else(|| panic!("{update}: {err}"));
        assert_eq!(
            (db_err.code().code(), db_err.constraint()),
            ("23514", Some(*constraint)),
            "{update}: {db_err}"
        );
        refused.insert(constraint.to_string());
        tx.batch_execute("ROLLBACK TO SAVEPOINT bad_row").await.unwrap();
    }
    let declared: BTreeSet<String> = tx
        .query(
            "SELECT conname::text FROM pg_constraint WHERE contype = 'c' \
             AND connamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(refused, declared, "every CHECK of the schema has a case, and only those");
    drop(tx);
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn every_json_column_refuses_text_that_is_not_json() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    let mut client = admin(&db.url).await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&valid_rows()).await.unwrap();
    let columns = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'json' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(columns.len(), 14, "the JSON columns of schema.sql");
    for row in columns {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        tx.batch_execute("SAVEPOINT bad_row").await.unwrap();
        let err = tx
            .batch_execute(&format!("UPDATE {table} SET {column} = '{{\"a\": '"))
            .await
            .expect_err(&column);
        let code = err.as_db_error().map(|e| e.code().code().to_string());
        assert_eq!(code.as_deref(), Some("22P02"), "{table}.{column}: {err}");
        tx.batch_execute("ROLLBACK TO SAVEPOINT bad_row").await.unwrap();
    }
    drop(tx);
    drop(client);
    db.drop_now().await;
}
