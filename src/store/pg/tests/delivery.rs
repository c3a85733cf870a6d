//! The delivery path on PostgreSQL through `Store`'s public methods: ingest and its
//! Idempotency-Key across concurrent transactions, claims by two instances
//! (`FOR UPDATE SKIP LOCKED`: never the same delivery), a lease that ran out taken by
//! another instance (whose claim the first one's outcome then leaves alone), and logs read
//! back with their bodies.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{admin, server, Fresh};
use crate::delivery::ticket::{FixedIntake, Intake};
use crate::ids::AutomationId;
use crate::redact::HeaderRedaction;
use crate::store::{
    Automation, AutomationSettings, ClaimRequest, ClaimedDelivery, Conflict, DeliveryOrder,
    DeliveryStatus, LogFilter, NewLog, NewMessage, Outcome, PageRequest, Store, StoreError, Take,
};
use crate::time::UnixMs;

pub(super) fn automation(processor: &str) -> Automation {
    Automation {
        id: AutomationId::new(),
        settings: AutomationSettings {
            name: "pg".into(),
            processor_id: processor.into(),
            webhook_url: "http://127.0.0.1:9/pg".into(),
            webhook_headers: BTreeMap::from([("X-Token".into(), "t0ken".into())]),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: None,
            ordering: DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: "whsec_AAAAAAAAAAAAAAAAAAAAAA==".into(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: UnixMs::from_ms(1_000),
        updated_at: UnixMs::from_ms(1_000),
    }
}

pub(super) async fn open(db: &Fresh) -> Store {
    Store::open_postgres(&db.url, 8, &HeaderRedaction::default()).await.unwrap()
}

pub(super) fn message(processor: &str, payload: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        processor_id: Some(processor.into()),
        automation_id: None,
        event_type: Some("a.b".into()),
        payload: payload.as_bytes().to_vec(),
        idempotency_key: key.map(str::to_string),
    }
}

pub(super) fn intake(take: Option<Take>, lease_ms: i64) -> Arc<dyn Intake> {
    Arc::new(FixedIntake { take, lease_ms })
}

pub(super) fn request(want: usize, take: Take, lease_ms: i64) -> ClaimRequest {
    ClaimRequest {
        want,
        scan: want * 4,
        saturated: Vec::new(),
        intake: intake(Some(take), lease_ms),
        line: None,
    }
}

async fn count(db: &Fresh, sql: &str) -> i64 {
    admin(&db.url).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// The outcome of a successful call of `d`.
pub(super) fn succeeded(d: &ClaimedDelivery) -> Outcome {
    let now = UnixMs::now();
    Outcome {
        delivery_id: d.id.clone(),
        log: NewLog {
            delivery_id: Some(d.id.clone()),
            message_id: d.message_id.clone(),
            automation_id: d.automation.id.clone(),
            processor_id: d.automation.settings.processor_id.clone(),
            attempt: d.attempt,
            trigger: d.trigger,
            rerun_of: None,
            webhook_url: d.automation.settings.webhook_url.clone(),
            request_headers: r#"{"content-type":"application/json"}"#.into(),
            request_headers_implied: false,
            request_body_hash: d.payload_hash,
            request_at: now,
            response_at: now,
            status_code: 200,
            response_headers: r#"{"x-answer":"yes"}"#.into(),
            response_body: Some(b"{\"ok\":true}".to_vec()),
            response_truncated: false,
            duration_ms: 1.5,
            error_code: None,
            error_message: None,
            snapshot_hash: d.snapshot_hash,
        },
        status: DeliveryStatus::Succeeded,
        next_attempt_at: now,
        snapshot: None,
        called: true,
    }
}

/// Eight transactions posting one Idempotency-Key at once store one message: the others
/// wait at the unique key, then answer with the winner's result, marked replayed. The key
/// with another payload is the 409 conflict, and stores nothing.
#[tokio::test]
async fn concurrent_posts_with_one_idempotency_key_store_one_message() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    store.create_automation(automation("proc_pg")).await.unwrap();
    let posts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let msg = message("proc_pg", r#"{"n":1}"#, Some("key-1"));
                store.ingest(msg, intake(None, 30_000)).await.unwrap().receipt
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for post in posts {
        receipts.push(post.await.unwrap());
    }
    let first = &receipts.iter().find(|r| !r.replayed).expect("one stored it").result;
    assert_eq!(receipts.iter().filter(|r| !r.replayed).count(), 1, "exactly one stored it");
    for r in &receipts {
        assert_eq!(r.result.message_id, first.message_id);
        assert_eq!(r.result.deliveries, first.deliveries);
    }
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM deliveries").await, 1);

    let other = message("proc_pg", r#"{"n":2}"#, Some("key-1"));
    match store.ingest(other, intake(None, 30_000)).await {
        Err(StoreError::Conflict(Conflict::IdempotencyKeyReused, _)) => {}
        other => panic!("expected the key's conflict, got {other:?}"),
    }
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 1);

    // A message and its delivery read back; the page lists it.
    let detail = store.message(first.message_id.clone()).await.unwrap();
    assert_eq!(detail.payload.as_deref(), Ok(br#"{"n":1}"#.as_slice()));
    assert_eq!(detail.deliveries.len(), 1);
    assert_eq!(detail.deliveries[0].status, DeliveryStatus::Pending);
    let page = PageRequest { before: None, after: None, limit: 10, desc: true };
    let listed = store.list_messages(Default::default(), page).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].delivery_count, 1);
    drop(store);
    db.drop_now().await;
}

/// Two instances claiming the same backlog at once never get the same delivery, and
/// between them get all of it; each claim names its instance.
#[tokio::test]
async fn two_instances_never_claim_the_same_delivery() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (one, two) = (open(&db).await, open(&db).await);
    one.create_automation(automation("proc_pg")).await.unwrap();
    const MESSAGES: usize = 60;
    for i in 0..MESSAGES {
        let msg = message("proc_pg", &format!(r#"{{"n":{i}}}"#), None);
        let accepted = one.ingest(msg, intake(None, 30_000)).await.unwrap();
        assert!(accepted.handover.ready.is_empty() && accepted.handover.unclaimed);
    }
    let claimer = |store: Store| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claimed = store.claim_due(request(4, Take::Call, 60_000)).await.unwrap();
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|d| d.id));
            }
        })
    };
    let (a, b) = (claimer(one.clone()), claimer(two.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let all: HashSet<_> = a.iter().chain(&b).cloned().collect();
    assert_eq!(all.len(), a.len() + b.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), MESSAGES);
    let sql = "SELECT count(DISTINCT claimed_by) FROM deliveries WHERE claimed = 1";
    let holders = count(&db, sql).await;
    let expected = i64::from(!a.is_empty()) + i64::from(!b.is_empty());
    assert_eq!(holders, expected, "each instance claims under its own id");
    assert_eq!(one.backlog().await.unwrap(), (MESSAGES as i64, 0));
    drop((one, two));
    db.drop_now().await;
}

/// A claim whose lease ran out is claimed again by another instance (its old attempt logged
/// `E_INTERRUPTED`, see `lease_expiry`). The first one's late outcome is logged (the call
/// was made) but leaves the delivery to its new holder; its release changes nothing either.
/// The new holder's outcome ends it, with its log and response body read back.
#[tokio::test]
async fn a_lease_that_ran_out_is_taken_over_and_left_to_its_new_holder() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (one, two) = (open(&db).await, open(&db).await);
    one.create_automation(automation("proc_pg")).await.unwrap();
    let msg = message("proc_pg", r#"{"lease":true}"#, None);
    let accepted = one.ingest(msg, intake(Some(Take::Call), 1)).await.unwrap();
    let [first] = <[ClaimedDelivery; 1]>::try_from(accepted.handover.ready).unwrap();
    assert_eq!(first.payload.as_deref(), Some(br#"{"lease":true}"#.as_slice()));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let taken = two.claim_due(request(10, Take::Call, 60_000)).await.unwrap();
    assert_eq!(taken.len(), 1, "the expired lease is due again");
    assert_eq!(taken[0].id, first.id);
    assert!(one.claim_due(request(10, Take::Call, 60_000)).await.unwrap().is_empty());

    one.record_outcome(succeeded(&first).into(), None).await.unwrap();
    one.release_deliveries(vec![first.id.clone()]).await.unwrap();
    let row = one.delivery(first.id.clone()).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Pending, "left to the new holder");
    assert_eq!(count(&db, "SELECT count(*) FROM deliveries WHERE claimed = 1").await, 1);
    let late = "SELECT count(*) FROM logs WHERE error_code IS NULL";
    assert_eq!(count(&db, late).await, 1, "the late attempt is logged");

    two.record_outcome(succeeded(&taken[0]).into(), None).await.unwrap();
    let row = two.delivery(first.id.clone()).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Succeeded);
    assert_eq!(row.attempts, 2, "the interrupted attempt and the new holder's");
    assert_eq!(count(&db, "SELECT count(*) FROM deliveries WHERE claimed <> 0").await, 0);
    let page = PageRequest { before: None, after: None, limit: 10, desc: true };
    let logs = two.list_logs(LogFilter::default(), page).await.unwrap().items;
    assert_eq!(logs.len(), 3, "two answered calls and the interrupted attempt");
    let logs: Vec<_> = logs.into_iter().filter(|l| l.log.error_code.is_none()).collect();
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_eq!(log.request_body.as_deref(), Some(br#"{"lease":true}"#.as_slice()));
        assert_eq!(log.log.response_body.as_deref(), Some(br#"{"ok":true}"#.as_slice()));
        assert!(!log.snapshot.is_empty(), "the snapshot is stored with the claim");
    }
    let one_log = two.log(logs[0].id.clone()).await.unwrap();
    assert_eq!(one_log.log.status_code, 200);
    let sent = two.sent_headers(logs[0].id.clone()).await.unwrap();
    assert_eq!(sent.get("X-Token").map(String::as_str), Some("t0ken"));
    drop((one, two));
    db.drop_now().await;
}

/// An instance that stops beating is dead to the others: one of them hands its started
/// claim back with an `E_INTERRUPTED` log of the attempt, due now, and deletes its row.
/// Another instance's ingest leaving a delivery unclaimed wakes this one (`NOTIFY`).
#[tokio::test]
async fn a_dead_instances_claims_are_taken_over_and_another_instances_ingest_wakes() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (one, two) = (open(&db).await, open(&db).await);
    one.create_automation(automation("proc_pg")).await.unwrap();
    let woken = Arc::new(tokio::sync::Notify::new());
    let wake = woken.clone();
    two.on_due_elsewhere(move || wake.notify_one());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let notified = woken.notified();
    let msg = message("proc_pg", r#"{"wake":1}"#, None);
    one.ingest(msg, intake(None, 30_000)).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(2), notified)
        .await
        .expect("the other instance's ingest woke this one");

    let msg = message("proc_pg", r#"{"dead":1}"#, None);
    let accepted = one.ingest(msg, intake(Some(Take::Call), 600_000)).await.unwrap();
    let id = accepted.handover.ready[0].id.clone();
    let c = admin(&db.url).await;
    let sql = "SELECT count(*) FROM instances";
    assert_eq!(c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0), 2);
    // `one` stops beating (as if killed): its heartbeat is made old, and stays so.
    let stopped = "UPDATE instances SET started_at = 0, heartbeat_at = 0 WHERE id = \
                   (SELECT claimed_by FROM deliveries WHERE claimed = 1)";
    let mut taken_over = false;
    for _ in 0..40 {
        c.execute(stopped, &[]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if two.delivery(id.clone()).await.unwrap().last_log_id.is_some() {
            taken_over = true;
            break;
        }
    }
    assert!(taken_over, "the survivor took the dead instance's claim over");
    let row = two.delivery(id.clone()).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Pending);
    assert_eq!(row.attempts, 1, "the interrupted attempt counts");
    let interrupted = crate::outbound::ErrorCode::Interrupted.as_str();
    assert_eq!(row.last_error_code.as_deref(), Some(interrupted));
    assert!(row.next_attempt_at.is_some_and(|at| at <= UnixMs::now()), "due now");
    assert_eq!(c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0), 1, "its row is gone");
    let sql = "SELECT count(*) FROM deliveries WHERE claimed <> 0";
    assert_eq!(c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0), 0);
    drop((one, two));
    db.drop_now().await;
}
