//! Lanes: the concurrency bound per automation, the backlog behind it, and shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Admit, Lanes, BACKLOG_TOTAL};
use crate::store::{Automation, ClaimedDelivery, Trigger};

fn delivery(automation: &str, n: usize) -> ClaimedDelivery {
    ClaimedDelivery {
        id: format!("dlv_{automation}_{n}"),
        message_id: format!("msg_{n}"),
        automation: Arc::new(Automation {
            id: automation.to_string(),
            name: "lane test".into(),
            processor_id: "proc".into(),
            webhook_url: "http://127.0.0.1:9/hook".into(),
            webhook_headers: BTreeMap::new(),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: None,
            secret: "whsec_dGVzdHRlc3R0ZXN0dGVzdA==".into(),
            previous_secret: None,
            previous_secret_until: None,
            created_at: 0,
            updated_at: 0,
        }),
        snapshot_hash: [0; 16],
        payload: Bytes::from_static(b"{}"),
        payload_hash: [0; 16],
        attempt: 1,
        trigger: Trigger::Initial,
        recover_job_id: None,
        created_at: 0,
    }
}

fn id_of(admit: Admit) -> Option<String> {
    match admit {
        Admit::Go(d) => Some(d.id),
        Admit::Queued | Admit::Refused(_) => None,
    }
}

#[test]
fn calls_past_the_bound_queue_and_the_finishing_call_takes_them_in_order() {
    let lanes = Lanes::new(2);
    assert_eq!(id_of(lanes.admit(delivery("a", 1))).as_deref(), Some("dlv_a_1"));
    assert_eq!(id_of(lanes.admit(delivery("a", 2))).as_deref(), Some("dlv_a_2"));
    assert!(matches!(lanes.admit(delivery("a", 3)), Admit::Queued));
    assert!(matches!(lanes.admit(delivery("a", 4)), Admit::Queued));
    assert_eq!(lanes.room(), BACKLOG_TOTAL - 2);
    assert_eq!(lanes.queued(), 2);
    // Another automation is not held up by a's backlog.
    assert_eq!(id_of(lanes.admit(delivery("b", 1))).as_deref(), Some("dlv_b_1"));
    assert_eq!(lanes.finish("a").map(|d| d.id).as_deref(), Some("dlv_a_3"));
    assert_eq!(lanes.finish("a").map(|d| d.id).as_deref(), Some("dlv_a_4"));
    assert_eq!(lanes.room(), BACKLOG_TOTAL);
    // Backlog empty: the slots free up, and a new call goes straight through.
    assert!(lanes.finish("a").is_none());
    assert!(lanes.finish("a").is_none());
    assert_eq!(id_of(lanes.admit(delivery("a", 5))).as_deref(), Some("dlv_a_5"));
}

#[test]
fn a_full_backlog_refuses_and_closing_returns_what_was_queued() {
    let lanes = Lanes::new(1);
    assert!(matches!(lanes.admit(delivery("a", 0)), Admit::Go(_)));
    for n in 1..=BACKLOG_TOTAL {
        assert!(matches!(lanes.admit(delivery("a", n)), Admit::Queued), "delivery {n}");
    }
    assert_eq!(lanes.room(), 0);
    assert!(matches!(lanes.admit(delivery("b", 0)), Admit::Go(_)), "b has a free slot");
    assert!(matches!(lanes.admit(delivery("b", 1)), Admit::Refused(_)), "no backlog room");

    let queued = lanes.close();
    assert_eq!(queued.len(), BACKLOG_TOTAL);
    assert_eq!(queued.first().map(String::as_str), Some("dlv_a_1"));
    // Closed: nothing is admitted, and a finishing call takes nothing more.
    assert!(matches!(lanes.admit(delivery("c", 0)), Admit::Refused(_)));
    assert!(lanes.finish("a").is_none());
    assert_eq!(lanes.room(), 0);
}
