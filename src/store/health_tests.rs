//! The success path writes an automation's health only when it changes something the health
//! endpoint shows: a run of failures ended at once, `last_success_at` to the second.

use rusqlite::{params, Connection};

use super::super::operational::Operations;
use super::super::{schema, DeliveryStatus, NewLog, Outcome, Trigger};
use super::{after_attempt, LAST_SUCCESS_RESOLUTION_MS};
use crate::ids::{AutomationId, DeliveryId, LogId};
use crate::time::UnixMs;

fn db(automation: &AutomationId) -> Connection {
    let conn = Connection::open_in_memory().expect("open");
    schema::apply(&conn).expect("schema");
    conn.execute(
        "INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers, \
         need_validation, default_language, enabled, secret, created_at, updated_at) \
         VALUES (?1, 'a', 'p', 'http://192.0.2.1/', '{}', 0, 'en', 1, 'whsec_x', 0, 0)",
        params![automation],
    )
    .expect("automation");
    conn
}

/// Records a sent attempt of `automation` answered `status` at `at` ms.
fn attempt(conn: &Connection, automation: &AutomationId, status: u16, at: i64) {
    let ok = (200..300).contains(&status);
    let at = UnixMs::from_ms(at);
    let log = NewLog {
        delivery_id: None,
        message_id: "msg_0192f0c4a9e07c3b8a1d2e3f4a5b6c7d".parse().expect("id"),
        automation_id: automation.clone(),
        processor_id: "p".into(),
        attempt: 1,
        trigger: Trigger::Initial,
        rerun_of: None,
        webhook_url: "http://192.0.2.1/".into(),
        request_headers: "{}".into(),
        request_headers_implied: false,
        request_body_hash: [0; 16],
        request_at: at,
        response_at: at,
        status_code: status,
        response_headers: "{}".into(),
        response_body: None,
        response_truncated: false,
        duration_ms: 1.0,
        error_code: (!ok).then_some(crate::outbound::ErrorCode::HttpStatus),
        error_message: (!ok).then(|| format!("HTTP {status}")),
        snapshot_hash: [0; 16],
    };
    let outcome = Outcome {
        delivery_id: DeliveryId::new(),
        log,
        status: if ok { DeliveryStatus::Succeeded } else { DeliveryStatus::Pending },
        next_attempt_at: at,
        snapshot: None,
        called: true,
    };
    let ops = Operations {
        disable_after_ms: None,
        failing_after_attempts: 0,
        webhook: None,
        sends: false,
    };
    after_attempt(conn, &ops, &outcome, &LogId::new()).expect("recorded");
}

/// (last_success_at, consecutive_failures, failing_since) as stored.
fn health(conn: &Connection, automation: &AutomationId) -> (Option<i64>, i64, Option<i64>) {
    conn.query_row(
        "SELECT last_success_at, consecutive_failures, failing_since FROM automation_health \
         WHERE automation_id = ?1",
        params![automation],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("health row")
}

#[test]
fn successes_move_last_success_at_once_a_second_and_end_a_run_of_failures_at_once() {
    let id = AutomationId::new();
    let conn = db(&id);
    let t = 1_764_567_890_000;
    attempt(&conn, &id, 200, t);
    assert_eq!(health(&conn, &id), (Some(t), 0, None), "a first success is written");

    attempt(&conn, &id, 204, t + LAST_SUCCESS_RESOLUTION_MS - 1);
    assert_eq!(conn.changes(), 0, "within the resolution: no row written");
    assert_eq!(health(&conn, &id), (Some(t), 0, None), "and nothing changed");

    attempt(&conn, &id, 200, t + LAST_SUCCESS_RESOLUTION_MS);
    let later = t + LAST_SUCCESS_RESOLUTION_MS;
    assert_eq!(health(&conn, &id), (Some(later), 0, None), "a second on: moved");

    attempt(&conn, &id, 500, later + 10);
    assert_eq!(health(&conn, &id), (Some(later), 1, Some(later + 10)));
    attempt(&conn, &id, 200, later + 20);
    assert_eq!(
        health(&conn, &id),
        (Some(later + 20), 0, None),
        "a success after a failure is written at once, however recent the last success"
    );
}
