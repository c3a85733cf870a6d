//! The rollup, the reads over it and the duty leases on PostgreSQL: the same logs counted on
//! both backends read back the same overview, automations' health and endpoint health; two
//! instances counting at once count each log once; logs not yet settled wait; a duty is held
//! by one instance until its lease ends.

use std::time::Duration;

use rusqlite::params;

use super::store::{automation, open};
use super::{admin, server, Fresh};
use crate::config::StoreConfig;
use crate::ids::{AutomationId, LogId, MessageId};
use crate::outbound::ErrorCode;
use crate::redact::HeaderRedaction;
use crate::store::pg::{duties, rollup, Pg};
use crate::store::{Duty, Store};
use crate::time::UnixMs;

const TIMEOUT: &str = ErrorCode::Timeout.as_str();

/// One call of the fixture: (automation, minutes ago, status, ms, error code).
type Call = (usize, i64, u16, f64, Option<&'static str>);

/// Calls over the last day, of three automations: in the last hour and before it, several
/// in one minute, successes, HTTP failures and calls without an answer.
const CALLS: [Call; 12] = [
    (0, 300, 200, 12.0, None),
    (0, 300, 500, 40.0, Some("http_status")),
    (0, 90, 200, 3.0, None),
    (0, 30, 503, 900.0, Some("http_status")),
    (0, 30, 200, 8.0, None),
    (1, 200, 0, 30_000.0, Some(TIMEOUT)),
    (1, 45, 0, 5.0, Some("connection")),
    (1, 2, 404, 70.0, Some("http_status")),
    (1, 2, 200, 20.0, None),
    (2, 1_500, 200, 10.0, None),
    (2, 10, 302, 1.5, None),
    (2, 1, 200, 2_500.0, None),
];

/// The id of the `n`th log of the fixture, made `ago` minutes before `now`: its time is the
/// minute it counts in, its last bytes keep the fixture's order.
fn log_id(now: UnixMs, ago: i64, n: usize) -> LogId {
    let mut bytes = *LogId::time_bound(now.as_ms() - ago * 60_000).stored_bytes();
    bytes[8..].copy_from_slice(&(n as u64).to_be_bytes());
    LogId::from_bytes(bytes)
}

const INSERT_PG: &str = "INSERT INTO logs (id, message_id, automation_id, processor_id, \
    attempt, trigger, webhook_url, request_headers, request_body_hash, request_at, response_at, \
    status_code, response_headers, response_truncated, duration_ms, error_code, snapshot_hash) \
    VALUES ($1, $2, $3, 'p', 1, 'initial', 'http://x', '{}', '\\x00', 0, 0, $4, '{}', false, \
    $5, $6, '\\x00')";

/// Stores log `id` of `automation` directly on PostgreSQL (ingest is another family's).
pub(super) async fn log_pg(url: &str, id: &LogId, automation: &AutomationId, call: Call) {
    let status = i32::from(call.2);
    admin(url)
        .await
        .execute(INSERT_PG, &[id, &MessageId::new(), automation, &status, &call.3, &call.4])
        .await
        .unwrap();
}

/// Stores log `id` of `automation` on SQLite.
async fn log_sqlite(store: &Store, id: LogId, automation: AutomationId, call: Call) {
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO logs (id, message_id, automation_id, processor_id, attempt, trigger, \
                 webhook_url, request_headers, request_body_hash, request_at, response_at, \
                 status_code, response_headers, response_truncated, duration_ms, error_code, \
                 snapshot_hash) VALUES (?1, ?2, ?3, 'p', 1, 'initial', 'http://x', '{}', x'00', \
                 0, 0, ?4, '{}', 0, ?5, ?6, x'00')",
                params![id, MessageId::new(), automation, call.2, call.3, call.4],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

/// Counts every log, `limit` at a time; returns how many were counted.
async fn roll_up_all(store: &Store, limit: usize) -> usize {
    let mut total = 0;
    loop {
        let n = store.roll_up_logs(limit).await.unwrap();
        total += n;
        if n < limit {
            return total;
        }
    }
}

#[tokio::test]
async fn the_rollup_counts_what_sqlite_counts_and_both_read_it_back_alike() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let pg = open(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let lite =
        Store::open(&dir.path().join("r.db"), &StoreConfig::default(), &HeaderRedaction::default())
            .unwrap();
    let ids: Vec<AutomationId> = (0..3).map(|_| AutomationId::new()).collect();
    for (i, id) in ids.iter().enumerate() {
        let made = automation(id.clone(), &format!("proc_{i}"));
        pg.create_automation(made.clone()).await.unwrap();
        lite.create_automation(made).await.unwrap();
    }
    let now = UnixMs::now();
    for (n, call) in CALLS.iter().enumerate() {
        let id = log_id(now, call.1, n);
        log_pg(&db.url, &id, &ids[call.0], *call).await;
        log_sqlite(&lite, id, ids[call.0].clone(), *call).await;
    }
    // A run of failures, the same on both.
    let health = "INSERT INTO automation_health (automation_id, last_success_at, \
                  last_failure_at, consecutive_failures, failing_since) VALUES";
    admin(&db.url)
        .await
        .execute(&format!("{health} ($1, 1000, 5000, 2, 4000)"), &[&ids[1]])
        .await
        .unwrap();
    let second = ids[1].clone();
    lite.write(move |c| Ok(c.execute(&format!("{health} (?1, 1000, 5000, 2, 4000)"), [second])?))
        .await
        .unwrap();
    assert_eq!(roll_up_all(&pg, 5).await, CALLS.len());
    assert_eq!(roll_up_all(&lite, 5).await, CALLS.len());

    let (a, b) = (pg.overview(now, 10).await.unwrap(), lite.overview(now, 10).await.unwrap());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.failing.len(), 2, "{a:?}");
    assert_eq!(a.minutes.iter().map(|m| m.succeeded + m.failed).sum::<i64>(), 11, "one is older");
    let (a, b) = (
        pg.automation_health(ids.clone(), now).await.unwrap(),
        lite.automation_health(ids.clone(), now).await.unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a[&ids[0]].failed, 2);
    for id in &ids {
        let (a, b) = (
            pg.endpoint_health(id.clone()).await.unwrap(),
            lite.endpoint_health(id.clone()).await.unwrap(),
        );
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    let second = pg.endpoint_health(ids[1].clone()).await.unwrap();
    assert_eq!(second.consecutive_failures, 2);
    assert_eq!((second.windows[0].total, second.windows[1].total), (3, 4), "{second:?}");
    assert!(matches!(
        pg.endpoint_health(AutomationId::new()).await,
        Err(crate::store::StoreError::NotFound("automation"))
    ));

    // Calls after the cursor are read from the logs until counted, then from the rollup.
    let late = (2, 0, 500, 1.0, Some("http_status"));
    log_pg(&db.url, &log_id(now, 0, 99), &ids[2], late).await;
    let before = pg.endpoint_health(ids[2].clone()).await.unwrap();
    assert_eq!(before.windows[0].failed, 1, "{before:?}");
    lite.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn two_instances_counting_at_once_count_each_log_once_and_unsettled_logs_wait() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (a, b) = (open(&db).await, open(&db).await);
    let automation_id = AutomationId::new();
    let now = UnixMs::now();
    for n in 0..200 {
        let call = (0, (n % 50) as i64 + 1, 200, 1.0, None);
        log_pg(&db.url, &log_id(now, call.1, n), &automation_id, call).await;
    }
    // Not settled: drawn just now, it may still commit behind logs with later ids.
    let fresh = LogId::new();
    log_pg(&db.url, &fresh, &automation_id, (0, 0, 200, 1.0, None)).await;
    let (x, y) = tokio::join!(roll_up_all(&a, 7), roll_up_all(&b, 7));
    assert_eq!(x + y, 200, "each log once: {x} + {y}");
    let (pg, _) = Pg::open(&db.url, 2).await.unwrap();
    let client = pg.client().await.unwrap();
    let counted: i64 = client
        .query_one("SELECT sum(succeeded)::bigint FROM rollup_minutes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 200);
    let classes: i64 = client
        .query_one("SELECT sum(calls)::bigint FROM rollup_classes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(classes, 200);
    let cursor = rollup::cursor(&pg, &**client).await.unwrap().unwrap();
    assert!(cursor < fresh, "the unsettled log is after the cursor");
    let later = UnixMs::from_ms(UnixMs::now().as_ms() + rollup::SETTLE_MS + 1_000);
    assert_eq!(rollup::roll_up(&pg, 10, later).await.unwrap(), 1, "settled, it is counted");
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn old_rollup_rows_are_deleted_in_batches() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let automation_id = AutomationId::new();
    let now = UnixMs::now();
    for n in 0..6 {
        let call = (0, n as i64 * 10 + 1, 500, 1.0, Some("http_status"));
        log_pg(&db.url, &log_id(now, call.1, n), &automation_id, call).await;
    }
    roll_up_all(&store, 100).await;
    // Minutes 1, 11, 21 ago are kept; 31, 41, 51 go: 3 rows in each of 4 tables.
    let before = now.minus_ms(25 * 60_000);
    assert_eq!(store.delete_rollup_before(before, 2).await.unwrap(), 8);
    assert_eq!(store.delete_rollup_before(before, 2).await.unwrap(), 4);
    assert_eq!(store.delete_rollup_before(before, 2).await.unwrap(), 0);
    let o = store.overview(now, 10).await.unwrap();
    assert_eq!(o.minutes.len(), 3, "{o:?}");
    assert_eq!(o.errors, [("http_status".to_string(), 3)]);
    db.drop_now().await;
}

#[tokio::test]
async fn a_held_duty_goes_to_another_instance_only_when_its_lease_ends() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 4).await.unwrap();
    let (a, b) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let (a, b) = (a.as_str(), b.as_str());
    let lease = Duration::from_millis(1_500);
    assert!(duties::hold(&pg, "rollup", a, lease).await.unwrap(), "free: taken");
    assert!(!duties::hold(&pg, "rollup", b, lease).await.unwrap(), "held by a");
    assert!(duties::hold(&pg, "retention", b, lease).await.unwrap(), "another duty is free");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(duties::hold(&pg, "rollup", a, lease).await.unwrap(), "a renews");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!duties::hold(&pg, "rollup", b, lease).await.unwrap(), "renewed: still a's");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(duties::hold(&pg, "rollup", b, lease).await.unwrap(), "lapsed: b takes it");
    assert!(!duties::hold(&pg, "rollup", a, lease).await.unwrap(), "now b's");

    // Many asking at once on a free duty: one holds it.
    let ids: Vec<String> = (0..8).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let asks = ids.iter().map(|id| duties::hold(&pg, "operational", id, lease));
    let held = futures_util::future::join_all(asks).await;
    assert_eq!(held.iter().filter(|h| *h.as_ref().unwrap()).count(), 1, "{held:?}");

    // Through the store, the process's own id holds it again and again.
    let store = open(&db).await;
    tokio::time::sleep(lease).await;
    assert!(store.hold_duty(Duty::Retention, lease).await.unwrap(), "lapsed: taken");
    assert!(store.hold_duty(Duty::Retention, lease).await.unwrap(), "its own: renewed");
    db.drop_now().await;
}
