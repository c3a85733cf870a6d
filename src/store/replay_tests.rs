//! Replay chunks on a real schema: what counts as missing, how far one write goes, and how a
//! job ends.

use super::*;
use crate::store::BackgroundJob;

const PROCESSOR: &str = "proc_r";
/// The automation replayed to.
const A: &str = "endp_0000000000000000000000000000000a";
/// Another automation of the processor.
const B: &str = "endp_0000000000000000000000000000000b";

fn automation(id: &str, enabled: bool) -> Automation {
    Automation {
        id: AutomationId::parse(id).expect("a valid id"),
        settings: crate::store::AutomationSettings {
            name: "r".into(),
            processor_id: PROCESSOR.into(),
            webhook_url: "http://127.0.0.1:9/r".into(),
            webhook_headers: Default::default(),
            need_validation: false,
            default_language: "en".into(),
            enabled,
            event_types: None,
            ordering: crate::store::DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: "whsec_AAAAAAAAAAAAAAAAAAAAAA==".into(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: crate::time::UnixMs::EPOCH,
        updated_at: crate::time::UnixMs::EPOCH,
    }
}

fn message(
    conn: &Connection,
    processor: &str,
    event_type: &str,
    addressed: Option<&str>,
) -> MessageId {
    let id = MessageId::new();
    let addressed = addressed.map(|a| AutomationId::parse(a).expect("a valid id"));
    conn.execute(
        "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, automation_id) \
         VALUES (?1, ?2, ?3, x'00', 0, ?4)",
        params![id, processor, event_type, addressed],
    )
    .unwrap();
    id
}

fn deliver(conn: &Connection, message_id: &MessageId, automation_id: &str) {
    let automation_id = AutomationId::parse(automation_id).expect("a valid id");
    conn.execute(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         next_trigger, created_at, updated_at) VALUES (?1, ?2, ?3, 'succeeded', 1, 0, 'retry', 0, 0)",
        params![DeliveryId::new(), message_id, automation_id],
    )
    .unwrap();
}

/// A database with automations [`A`] (replayed) and [`B`], and messages of every kind;
/// returns it with the ids of the messages `A` is missing, in order.
fn setup() -> (Connection, Vec<MessageId>) {
    let conn = Connection::open_in_memory().unwrap();
    super::super::schema::apply(&conn).unwrap();
    automations::insert(&conn, &automation(A, true)).unwrap();
    automations::insert(&conn, &automation(B, true)).unwrap();
    let mut missing = Vec::new();
    for i in 0..12 {
        let id = message(&conn, PROCESSOR, "e", None);
        match i % 4 {
            // Already delivered to a: not missing.
            0 => deliver(&conn, &id, A),
            // Delivered to b only: missing for a.
            1 => {
                deliver(&conn, &id, B);
                missing.push(id);
            }
            _ => missing.push(id),
        }
        // Around each: messages a must never get.
        message(&conn, PROCESSOR, "e", Some(B));
        message(&conn, PROCESSOR, TEST_EVENT_TYPE, None);
        message(&conn, "proc_other", "e", None);
    }
    (conn, missing)
}

const UNTIL: UnixMs = UnixMs::from_ms(i64::MAX / 2);

fn job(conn: &Connection, cap: i64) -> ReplayJobId {
    insert_job(conn, &A.parse().expect("a valid id"), UnixMs::EPOCH, UNTIL, cap).unwrap()
}

fn delivered_to_a(conn: &Connection) -> Vec<MessageId> {
    let mut stmt = conn
        .prepare(
            "SELECT message_id FROM deliveries WHERE automation_id = ?1 \
             AND next_trigger = 'replay' ORDER BY message_id",
        )
        .unwrap();
    let a = AutomationId::parse(A).expect("a valid id");
    stmt.query_map([a], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Chunks of one delivery examine at most SCAN_PER_DELIVERY messages each, skip what is
/// not missing, and create each missing delivery once; a second job finds nothing.
#[test]
fn chunks_create_each_missing_delivery_once_within_their_bound() {
    let (conn, missing) = setup();
    let id = job(&conn, 100);
    let before = progress(&conn, &id).unwrap();
    assert_eq!(
        (before.created, before.scanned_through, before.status()),
        (0, UnixMs::EPOCH, "running")
    );
    let mut chunks = 0;
    loop {
        let examined = replay_chunk(&conn, &id, 1).unwrap();
        assert!(examined <= SCAN_PER_DELIVERY, "one write examined {examined}");
        if examined == 0 {
            break;
        }
        chunks += 1;
        assert!(chunks < 100, "the job never ends");
    }
    assert_eq!(delivered_to_a(&conn), missing);
    let done = progress(&conn, &id).unwrap();
    assert_eq!((done.created, done.pending, done.ended.as_deref()), (9, 9, Some(COMPLETED)));
    assert_eq!((done.capped, done.scanned_through), (false, UNTIL));
    let again = job(&conn, 100);
    while replay_chunk(&conn, &again, 500).unwrap() > 0 {}
    let again = progress(&conn, &again).unwrap();
    assert_eq!((again.created, again.ended.as_deref()), (0, Some(COMPLETED)));
    assert_eq!(delivered_to_a(&conn).len(), 9);
}

/// The cap bounds the deliveries one job creates, the oldest first; a job from where it
/// stopped creates the rest.
#[test]
fn a_capped_job_creates_the_oldest_missing_deliveries_and_says_where_it_stopped() {
    let (conn, missing) = setup();
    let id = job(&conn, 4);
    while replay_chunk(&conn, &id, 500).unwrap() > 0 {}
    assert_eq!(delivered_to_a(&conn), missing[..4]);
    let j = progress(&conn, &id).unwrap();
    assert_eq!((j.created, j.capped, j.ended.as_deref()), (4, true, Some(COMPLETED)));
    assert_eq!(Some(j.scanned_through), Some(UnixMs::from_ms(missing[3].time_of())));
    let rest =
        insert_job(&conn, &A.parse().expect("a valid id"), j.scanned_through, UNTIL, 100).unwrap();
    while replay_chunk(&conn, &rest, 500).unwrap() > 0 {}
    assert_eq!(delivered_to_a(&conn), missing);
    assert_eq!(progress(&conn, &rest).unwrap().created, 5);
}

/// An automation disabled or deleted while its job runs stops the job (its deliveries would
/// only fail); creation by the API is refused for a disabled one.
#[test]
fn a_job_stops_when_its_automation_is_disabled_or_deleted() {
    let (conn, _) = setup();
    let id = job(&conn, 100);
    assert!(replay_chunk(&conn, &id, 1).unwrap() > 0);
    conn.execute(
        "UPDATE automations SET enabled = 0 WHERE id = ?1",
        [AutomationId::parse(A).expect("a valid id")],
    )
    .unwrap();
    assert_eq!(replay_chunk(&conn, &id, 500).unwrap(), 0);
    let j = progress(&conn, &id).unwrap();
    assert_eq!((j.created, j.ended.as_deref()), (1, Some(AUTOMATION_DISABLED)));
    let tag = BackgroundJob::Replay(id.clone());
    conn.execute("UPDATE deliveries SET status = 'succeeded' WHERE recover_job_id = ?1", [&tag])
        .unwrap();
    assert_eq!(progress(&conn, &id).unwrap().status(), "stopped");
    assert!(matches!(
        insert_job(&conn, &A.parse().expect("a valid id"), UnixMs::EPOCH, UnixMs::from_ms(1), 100),
        Err(StoreError::Conflict(Conflict::AutomationDisabled, m)) if m.contains("disabled")
    ));

    conn.execute(
        "UPDATE automations SET enabled = 1 WHERE id = ?1",
        [AutomationId::parse(A).expect("a valid id")],
    )
    .unwrap();
    let id = job(&conn, 100);
    conn.execute(
        "DELETE FROM automations WHERE id = ?1",
        [AutomationId::parse(A).expect("a valid id")],
    )
    .unwrap();
    assert_eq!(replay_chunk(&conn, &id, 500).unwrap(), 0);
    assert_eq!(progress(&conn, &id).unwrap().ended.as_deref(), Some(AUTOMATION_DELETED));
}

/// The deliveries a replay job creates carry its `rpl_` id where recover jobs put theirs;
/// it reads back as that job (the claim reads it with every delivery it takes).
#[test]
fn a_replay_jobs_deliveries_read_back_its_id() {
    let (conn, _) = setup();
    let id = job(&conn, 100);
    assert!(replay_chunk(&conn, &id, 500).unwrap() > 0);
    let tagged: Vec<Option<BackgroundJob>> = conn
        .prepare("SELECT recover_job_id FROM deliveries WHERE automation_id = ?1")
        .unwrap()
        .query_map([AutomationId::parse(A).expect("a valid id")], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tagged.len(), 12, "the 9 replayed and the 3 delivered before");
    let replayed = tagged.iter().filter(|t| **t == Some(BackgroundJob::Replay(id.clone())));
    assert_eq!(replayed.count(), 9);
}

/// An unfinished replay job is resumed at start-up as a replay job, and no longer once it
/// has ended.
#[test]
fn an_unfinished_replay_job_resumes_as_one() {
    let (conn, _) = setup();
    let id = job(&conn, 100);
    let resumed = crate::store::recover::unfinished(&conn).unwrap();
    assert_eq!(resumed, [BackgroundJob::Replay(id.clone())]);
    while replay_chunk(&conn, &id, 500).unwrap() > 0 {}
    assert_eq!(crate::store::recover::unfinished(&conn).unwrap(), []);
}
