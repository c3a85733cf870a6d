//! The FIFO line on a real schema: the triggers move it on every path (an end, a retry, a
//! recover, a delete), and the lookups use its index. (The upgrade to version 17 is tested in
//! schema_tests.rs.)

use rusqlite::{params, Connection};

use super::*;
use crate::ids::{DeliveryId, MessageId};

const A: &str = "endp_0000000000000000000000000000000a";

fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    super::super::schema::apply(&conn).unwrap();
    conn
}

fn automation() -> AutomationId {
    AutomationId::parse(A).unwrap()
}

/// Stores a pending delivery of `A` (`fifo` says whether in its line) due at 1, as ingest
/// would once it found the line busy or not; returns its id.
fn store(conn: &Connection, fifo: bool) -> DeliveryId {
    let (message, id) = (MessageId::new(), DeliveryId::new());
    conn.execute(
        "INSERT INTO messages (id, processor_id, payload_hash, created_at) VALUES (?1, 'p', x'00', 0)",
        [&message],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, next_attempt_at, \
         next_trigger, created_at, updated_at, fifo) \
         VALUES (?1, ?2, ?3, 'pending', 0, 1, 'initial', 1, 1, ?4)",
        params![id, message, automation(), fifo],
    )
    .unwrap();
    id
}

/// Which of `ids` are due (not waiting their turn), in order.
fn due(conn: &Connection, ids: &[DeliveryId]) -> Vec<bool> {
    ids.iter()
        .map(|id| {
            conn.query_row("SELECT next_attempt_at FROM deliveries WHERE id = ?1", [id], |r| {
                r.get::<_, UnixMs>(0)
            })
            .unwrap()
                != WAITING_AT
        })
        .collect()
}

fn set_status(conn: &Connection, id: &DeliveryId, status: &str) {
    conn.execute("UPDATE deliveries SET status = ?2 WHERE id = ?1", params![id, status]).unwrap();
}

/// Only the head is due; a retry keeps the others waiting; each end lets the next go, in id
/// order, whichever way it ended; a delete does too.
#[test]
fn the_line_moves_one_at_a_time_on_every_end() {
    let conn = database();
    let ids: Vec<_> = (0..5).map(|_| store(&conn, true)).collect();
    assert_eq!(due(&conn, &ids), [true, false, false, false, false]);
    assert!(line_busy(&conn, &automation()).unwrap());
    // A retry: still pending, its schedule changed, nothing behind it moves.
    conn.execute(
        "UPDATE deliveries SET next_attempt_at = 99, status = 'pending' WHERE id = ?1",
        [&ids[0]],
    )
    .unwrap();
    assert_eq!(due(&conn, &ids), [true, false, false, false, false]);
    set_status(&conn, &ids[0], "exhausted");
    assert_eq!(due(&conn, &ids[1..]), [true, false, false, false]);
    set_status(&conn, &ids[1], "succeeded");
    assert_eq!(due(&conn, &ids[2..]), [true, false, false]);
    conn.execute("DELETE FROM deliveries WHERE id = ?1", [&ids[2]]).unwrap();
    assert_eq!(due(&conn, &ids[3..]), [true, false]);
    set_status(&conn, &ids[3], "failed");
    assert_eq!(due(&conn, &ids[4..]), [true]);
    set_status(&conn, &ids[4], "succeeded");
    assert!(!line_busy(&conn, &automation()).unwrap());
}

/// Recovered deliveries wait behind the head in flight, then go before later messages, in
/// their own order; with no head, the first of them is due at once.
#[test]
fn recovered_deliveries_go_back_to_their_place() {
    let conn = database();
    let ids: Vec<_> = (0..4).map(|_| store(&conn, true)).collect();
    set_status(&conn, &ids[0], "exhausted");
    set_status(&conn, &ids[1], "exhausted");
    assert_eq!(due(&conn, &ids[2..]), [true, false]);
    conn.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = 5 WHERE id IN (?1, ?2)",
        params![ids[0], ids[1]],
    )
    .unwrap();
    assert_eq!(due(&conn, &ids), [false, false, true, false], "behind the head");
    set_status(&conn, &ids[2], "succeeded");
    assert_eq!(due(&conn, &[ids[0].clone(), ids[1].clone(), ids[3].clone()]), [true, false, false]);
    set_status(&conn, &ids[0], "failed");
    assert_eq!(due(&conn, &[ids[1].clone(), ids[3].clone()]), [true, false]);

    let empty = database();
    let ids: Vec<_> = (0..2).map(|_| store(&empty, true)).collect();
    for id in &ids {
        set_status(&empty, id, "exhausted");
    }
    empty.execute("UPDATE deliveries SET status = 'pending', next_attempt_at = 5", []).unwrap();
    assert_eq!(due(&empty, &ids), [true, false], "the first recovered is the head");
}

/// Parallel deliveries are never held; dissolving a line makes every waiting one due.
#[test]
fn parallel_deliveries_never_wait_and_a_dissolved_line_goes_at_once() {
    let conn = database();
    let parallel: Vec<_> = (0..3).map(|_| store(&conn, false)).collect();
    assert_eq!(due(&conn, &parallel), [true, true, true]);
    assert!(!line_busy(&conn, &automation()).unwrap());
    let line: Vec<_> = (0..3).map(|_| store(&conn, true)).collect();
    assert_eq!(due(&conn, &line), [true, false, false]);
    dissolve(&conn, &automation(), UnixMs::from_ms(7)).unwrap();
    assert_eq!(due(&conn, &line), [true, true, true]);
    assert!(!line_busy(&conn, &automation()).unwrap());
}

/// Made FIFO, the backlog lines up in id order: the first not in flight is the head (due
/// when it was), held and unclaimed ones wait, the one in flight is left as it is; the line
/// then moves one at a time, and a waiting one handed back by the dispatcher waits again.
#[test]
fn a_backlog_made_fifo_lines_up_in_id_order() {
    let conn = database();
    let ids: Vec<_> = (0..5).map(|_| store(&conn, false)).collect();
    // ids[0] in flight, ids[1] and ids[2] held in memory, the rest unclaimed.
    conn.execute(
        "UPDATE deliveries SET claimed = 1, next_attempt_at = 50 WHERE id = ?1",
        [&ids[0]],
    )
    .unwrap();
    conn.execute("UPDATE deliveries SET claimed = 2 WHERE id IN (?1, ?2)", params![ids[1], ids[2]])
        .unwrap();
    assert_eq!(line_up(&conn, &automation()).unwrap(), 4);
    assert_eq!(due(&conn, &ids), [true, true, false, false, false]);
    let (fifo, claimed): (Vec<bool>, Vec<i64>) = ids
        .iter()
        .map(|id| {
            conn.query_row("SELECT fifo, claimed FROM deliveries WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?))
            })
            .unwrap()
        })
        .unzip();
    assert_eq!(fifo, [false, true, true, true, true], "the call in flight stays parallel");
    assert_eq!(claimed, [1, 0, 0, 0, 0], "the held ones are taken back");
    // The dispatcher hands its copy of ids[2] back (a shutdown): it waits again.
    conn.execute("UPDATE deliveries SET claimed = 0, next_attempt_at = 9 WHERE id = ?1", [&ids[2]])
        .unwrap();
    assert_eq!(due(&conn, &ids[1..]), [true, false, false, false]);
    set_status(&conn, &ids[1], "succeeded");
    assert_eq!(due(&conn, &ids[2..]), [true, false, false]);
    set_status(&conn, &ids[0], "succeeded");
    assert_eq!(due(&conn, &ids[2..]), [true, false, false], "the parallel one moves nothing");
    // Lined up again (nothing left to line up), the line keeps its one head.
    assert_eq!(line_up(&conn, &automation()).unwrap(), 0);
    let late = store(&conn, false);
    assert_eq!(line_up(&conn, &automation()).unwrap(), 1);
    assert_eq!(due(&conn, &[ids[2].clone(), ids[3].clone(), late]), [true, false, false]);
}

/// The lookups use the line's index, never a walk of the automation's history.
#[test]
fn the_lookups_seek_the_line_index() {
    let conn = database();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT 1 FROM deliveries INDEXED BY deliveries_fifo \
             WHERE automation_id = ?1 AND status = 'pending' AND fifo = 1 LIMIT 1",
        )
        .unwrap()
        .query_map([A], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(plan.iter().any(|p| p.contains("SEARCH") && p.contains("deliveries_fifo")), "{plan:?}");
}

/// The triggers spell the same waiting time as the code.
#[test]
fn the_schema_spells_the_waiting_time() {
    let schema = include_str!("../../schema.sql");
    let spelled = WAITING_AT.as_ms().to_string();
    assert!(schema.matches(&spelled).count() >= 6, "schema.sql spells {spelled}");
    assert_eq!(WAITING_AT.rfc3339(), "9999-12-31T23:59:59.999000Z");
}
