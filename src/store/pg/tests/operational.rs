//! Operational webhooks with several instances on one database: instances starting together
//! make one operational automation (and one generated secret); an event is queued once, by
//! the transaction whose write causes it (however many instances record attempts of the
//! failing automation at once), and each queued event is claimed by one instance.

use std::collections::HashSet;

use super::delivery::{automation, intake, message, succeeded};
use super::{admin, server, Fresh};
use crate::ids::AutomationId;
use crate::outbound::ErrorCode;
use crate::redact::HeaderRedaction;
use crate::store::{ClaimRequest, ClaimedDelivery, DeliveryStatus, Outcome, Store, Take};
use crate::time::UnixMs;

const URL: &str = "http://127.0.0.1:9/ops";

async fn open(db: &Fresh) -> Store {
    Store::open_postgres(&db.url, 4, &HeaderRedaction::default()).await.unwrap()
}

async fn count(db: &Fresh, sql: &str) -> i64 {
    admin(&db.url).await.query_one(sql, &[]).await.unwrap().get(0)
}

fn request(want: usize) -> ClaimRequest {
    ClaimRequest {
        want,
        scan: want * 4,
        saturated: Vec::new(),
        intake: intake(Some(Take::Call), 60_000),
        line: None,
    }
}

/// A failed first attempt of `d` answered at `at`, retried a minute later.
fn failed(d: &ClaimedDelivery, at: UnixMs) -> Outcome {
    let mut outcome = succeeded(d);
    let log = &mut outcome.log;
    (log.request_at, log.response_at, log.status_code, log.response_body) = (at, at, 500, None);
    log.error_code = Some(ErrorCode::HttpStatus);
    log.error_message = Some("receiver answered HTTP 500".into());
    outcome.status = DeliveryStatus::Pending;
    outcome.next_attempt_at = at.plus_ms(60_000);
    outcome
}

#[tokio::test]
async fn instances_starting_together_make_one_operational_automation() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let stores = [open(&db).await, open(&db).await, open(&db).await, open(&db).await];
    let configure = |s: &Store| {
        let s = s.clone();
        async move { s.configure_operations(None, 4, Some((URL.into(), None))).await.unwrap().unwrap() }
    };
    let (a, b, c, d) = tokio::join!(
        configure(&stores[0]),
        configure(&stores[1]),
        configure(&stores[2]),
        configure(&stores[3])
    );
    let installed = [a, b, c, d];
    let ids: HashSet<&AutomationId> = installed.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 1, "one automation: {installed:?}");
    assert_eq!(installed.iter().filter(|(_, generated)| *generated).count(), 1, "one secret");
    for store in &stores {
        assert_eq!(store.operational_automation().as_ref(), Some(&installed[0].0));
    }
    let made = "SELECT count(*) FROM automations WHERE processor_id = 'hookrelay.operational'";
    assert_eq!(count(&db, made).await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM operational_automation").await, 1);
    db.drop_now().await;
}

#[tokio::test]
async fn an_event_is_queued_once_by_the_write_causing_it_and_claimed_by_one_instance() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (one, two) = (open(&db).await, open(&db).await);
    // Disabled after 1 ms of failures; `message.attempt.failing` at the first failed attempt.
    for store in [&one, &two] {
        store.configure_operations(Some(1), 1, Some((URL.into(), None))).await.unwrap();
    }
    let target = one.create_automation(automation("proc_ops")).await.unwrap();
    for n in 0..3 {
        let payload = format!(r#"{{"n":{n}}}"#);
        one.ingest(message("proc_ops", &payload, None), intake(None, 0)).await.unwrap();
    }
    let mut first = one.claim_due(request(1)).await.unwrap();
    let mut second = two.claim_due(request(2)).await.unwrap();
    assert_eq!((first.len(), second.len()), (1, 2));
    let now = UnixMs::now();
    // The run of failures starts; then both instances record a failure past the limit at once.
    let first = first.remove(0);
    one.record_outcome(failed(&first, now.minus_ms(1_000)).into(), None).await.unwrap();
    let (x, y) = (second.remove(0), second.remove(0));
    let (a, b) = tokio::join!(
        one.record_outcome(failed(&x, now).into(), None),
        two.record_outcome(failed(&y, now).into(), None)
    );
    a.unwrap();
    b.unwrap();

    let events = |kind: &str| {
        format!(
            "SELECT count(*) FROM messages m JOIN deliveries d ON d.message_id = m.id \
             WHERE m.processor_id = 'hookrelay.operational' AND m.event_type = '{kind}'"
        )
    };
    assert_eq!(count(&db, &events("endpoint.disabled")).await, 1, "one disable, one event");
    assert_eq!(count(&db, &events("message.attempt.failing")).await, 3, "one per attempt");
    assert_eq!(count(&db, "SELECT count(*) FROM automation_events").await, 1);
    assert!(!one.automation(target.id.clone()).await.unwrap().settings.enabled, "disabled");

    let (a, b) = tokio::join!(one.claim_due(request(10)), two.claim_due(request(10)));
    let claimed: Vec<ClaimedDelivery> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    let op = one.operational_automation().unwrap();
    assert!(claimed.iter().all(|d| d.automation.id == op), "only the events are due");
    let ids: HashSet<_> = claimed.iter().map(|d| d.id.clone()).collect();
    assert_eq!((claimed.len(), ids.len()), (4, 4), "each event claimed once");
    drop((one, two));
    db.drop_now().await;
}
