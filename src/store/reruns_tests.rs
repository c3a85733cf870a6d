//! A delivery a successful rerun settled stays settled whatever its claim was: one held in
//! memory (claimed 2) can no longer be marked started, and the outcome of an attempt in
//! flight (claimed 1) does not make it due again. A failed rerun changes nothing.

use std::collections::BTreeMap;

use rusqlite::params;

use super::super::{
    Automation, DeliveryStatus, NewLog, Outcome, Snapshot, StartingCall, Store, Trigger,
};
use crate::config::StoreConfig;
use crate::redact::HeaderRedaction;
use crate::time::UnixMs;

const MESSAGE: &str = "msg_0192f0c4a9e07c3b8a1d2e3f4a5b6c7d";

fn automation() -> Automation {
    Automation {
        id: crate::ids::AutomationId::new(),
        settings: crate::store::AutomationSettings {
            name: "settle".into(),
            processor_id: "proc".into(),
            webhook_url: "http://192.0.2.1/hook".into(),
            webhook_headers: BTreeMap::new(),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: None,
            ordering: crate::store::DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: crate::delivery::signing::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: crate::time::UnixMs::EPOCH,
        updated_at: crate::time::UnixMs::EPOCH,
    }
}

/// A call's log for `automation`, answered `status` (an error below 200 or from 300).
fn call_log(a: &Automation, trigger: Trigger, attempt: u32, status: u16) -> NewLog {
    let now = UnixMs::now();
    let ok = (200..300).contains(&status);
    NewLog {
        delivery_id: None,
        message_id: MESSAGE.parse().expect("a valid id"),
        automation_id: a.id.clone(),
        processor_id: a.settings.processor_id.clone(),
        attempt,
        trigger,
        rerun_of: None,
        webhook_url: a.settings.webhook_url.clone(),
        request_headers: "{}".into(),
        request_headers_implied: false,
        request_body_hash: [0; 16],
        request_at: now,
        response_at: now,
        status_code: status,
        response_headers: "{}".into(),
        response_body: None,
        response_truncated: false,
        duration_ms: 1.0,
        error_code: (!ok).then_some(crate::outbound::ErrorCode::HttpStatus),
        error_message: (!ok).then(|| format!("HTTP {status}")),
        snapshot_hash: Snapshot::of(a, &HeaderRedaction::default()).hash,
    }
}

fn message_id() -> crate::ids::MessageId {
    MESSAGE.parse().expect("a valid id")
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    automation: Automation,
    delivery: crate::ids::DeliveryId,
}

/// A store holding one pending delivery of `MESSAGE`, one attempt made, with `claimed`.
async fn world(claimed: i64) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &dir.path().join("reruns.db"),
        &StoreConfig::default(),
        &HeaderRedaction::default(),
    )
    .expect("store");
    let automation = automation();
    let delivery = crate::ids::DeliveryId::new();
    let (id, automation_id) = (delivery.clone(), automation.id.clone());
    store
        .write(move |c| {
            let now = UnixMs::now();
            c.execute(
                "INSERT INTO messages (id, processor_id, payload_hash, created_at) \
                 VALUES (?1, 'proc', x'00', ?2)",
                params![message_id(), now],
            )?;
            c.execute(
                "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
                 next_attempt_at, claimed, next_trigger, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'pending', 1, ?4, ?5, 'retry', ?4, ?4)",
                params![id, message_id(), automation_id, now, claimed],
            )?;
            Ok(())
        })
        .await
        .expect("delivery");
    World { _dir: dir, store, automation, delivery }
}

impl World {
    async fn rerun(&self, status: u16) -> (crate::ids::DeliveryId, DeliveryStatus) {
        let log = call_log(&self.automation, Trigger::Rerun, 1, status);
        let snapshot = Snapshot::of(&self.automation, &HeaderRedaction::default());
        let starting = StartingCall {
            message_id: log.message_id.clone(),
            automation_id: log.automation_id.clone(),
            processor_id: log.processor_id.clone(),
            trigger: log.trigger,
            rerun_of: None,
            webhook_url: log.webhook_url.clone(),
            request_body_hash: log.request_body_hash,
        };
        let in_flight =
            self.store.start_call(starting, snapshot.clone()).await.expect("call starting");
        let (_, settled) = self.store.finish_call(in_flight, log, snapshot).await.expect("rerun");
        let settled = settled.expect("the delivery of the message");
        assert_eq!(settled.id, self.delivery);
        (settled.id, settled.status)
    }

    /// (status, attempts, claimed, last_log_id) as stored.
    async fn stored(&self) -> (String, i64, i64, Option<crate::ids::LogId>) {
        let id = self.delivery.clone();
        self.store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT status, attempts, claimed, last_log_id FROM deliveries WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?)
            })
            .await
            .expect("read")
    }
}

#[tokio::test]
async fn a_held_delivery_settled_by_a_rerun_is_never_marked_started() {
    let w = world(2).await;
    assert_eq!(w.rerun(500).await.1, DeliveryStatus::Pending, "a failed rerun changes nothing");
    assert_eq!(w.stored().await, ("pending".into(), 1, 2, None));
    assert_eq!(w.rerun(200).await.1, DeliveryStatus::Succeeded);
    let lease = UnixMs::now().plus_ms(60_000);
    let marked = w.store.mark_started(w.delivery.clone(), lease).await.expect("mark");
    assert!(!marked, "a settled delivery was marked to be called");
    let (status, attempts, claimed, _) = w.stored().await;
    assert_eq!((status.as_str(), attempts, claimed), ("succeeded", 1, 0));
}

#[tokio::test]
async fn the_outcome_of_an_attempt_in_flight_does_not_reopen_a_settled_delivery() {
    let w = world(1).await;
    w.rerun(200).await;
    let rerun_log = w.stored().await.3.expect("the rerun's log");
    let mut failed = call_log(&w.automation, Trigger::Retry, 2, 503);
    failed.delivery_id = Some(w.delivery.clone());
    let outcome = Outcome {
        delivery_id: w.delivery.clone(),
        next_attempt_at: failed.response_at.plus_ms(400),
        log: failed,
        status: DeliveryStatus::Pending,
        snapshot: None,
        called: true,
    };
    w.store.record_outcome(outcome.into(), None).await.expect("outcome");
    assert_eq!(w.stored().await, ("succeeded".into(), 2, 0, Some(rerun_log)));
    let due = w.store.oldest_due_at().await.expect("due");
    assert_eq!(due, None, "the settled delivery is due again");
}
