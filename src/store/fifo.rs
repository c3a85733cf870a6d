//! FIFO automations (`ordering = "fifo"`): an automation's messages are delivered one at a
//! time, in ingest order; message n+1 is not sent before message n succeeded or ended
//! (exhausted, failed: it then stays recoverable).
//!
//! The line is held by the database, so it survives restarts and `kill -9`: each delivery
//! records whether it is in its automation's line (`deliveries.fifo`, fixed when it is
//! created), and every one of the line but its head waits with `next_attempt_at` =
//! [`WAITING_AT`], past every real time, so no claim ever sees it. Triggers (schema.sql,
//! version 17) move the line on whichever code ends, deletes, stores or re-queues a
//! delivery, so no write path can forget to. The claim loop's query is the parallel one:
//! only a head is ever due, and at most one delivery per FIFO automation is ever claimed, so
//! its calls are one at a time whatever `per_automation_concurrency` says. When a head ends,
//! the dispatcher claims the next of its line in the write recording it
//! (`ClaimRequest::line`, one seek of this line's index), so a message costs one write.
//!
//! Ingest hands new deliveries straight to the dispatcher (see `messages`); a FIFO one goes
//! that way only when its line was empty, otherwise it is stored waiting. Reruns and test
//! calls are outside the line (a person asked for them). A recover job's deliveries of a
//! FIFO automation go back into the line at their place (by id, i.e. creation order): behind
//! the call in flight, before every later message. A replay job's new deliveries join the
//! end of the line.
//!
//! Changing `ordering` applies to the backlog too, in the write storing the change. Made
//! FIFO ([`line_up`]), an automation's pending deliveries whose call has not started join
//! its line in id order (creation order: ingest order for the messages' own deliveries).
//! Those already in flight finish as they are, beside the line's head, and one of them that
//! fails retries as the parallel delivery it was. Made parallel ([`dissolve`]), its whole
//! line goes at once.

use rusqlite::{params, Connection, OptionalExtension};

use super::decode;
use super::StoreResult;
use crate::ids::{AutomationId, DeliveryId};
use crate::time::UnixMs;

decode::stored_enum! {
    /// How an automation's deliveries go out (`automations.ordering`).
    pub enum DeliveryOrder {
        /// As many at once as the concurrency bounds allow, each on its own retry schedule.
        Parallel = "parallel",
        /// One at a time, in ingest order (see the module doc).
        Fifo = "fifo",
    }
}

/// `next_attempt_at` of a delivery waiting its turn in a FIFO line: 9999-12-31T23:59:59.999Z.
/// The triggers in schema.sql spell the same number.
pub const WAITING_AT: UnixMs = UnixMs::from_ms(253_402_300_799_999);

/// Whether `automation_id` has a pending FIFO delivery: a new one then waits behind it (the
/// `deliveries_fifo_stored` trigger makes it wait; ingest asks first, so that it does not
/// hand the dispatcher a delivery that is not the head). One index seek.
pub(super) fn line_busy(conn: &Connection, automation_id: &AutomationId) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM deliveries INDEXED BY deliveries_fifo \
             WHERE automation_id = ?1 AND status = 'pending' AND fifo = 1 LIMIT 1",
        )?
        .exists([automation_id])?)
}

/// Lets the whole line of `automation_id` go, as parallel deliveries: its ordering became
/// `parallel`. The waiting ones are due now; the head keeps its schedule.
pub(super) fn dissolve(
    conn: &Connection,
    automation_id: &AutomationId,
    now: UnixMs,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE deliveries INDEXED BY deliveries_fifo SET fifo = 0, \
         next_attempt_at = CASE WHEN next_attempt_at = ?2 THEN ?3 ELSE next_attempt_at END \
         WHERE automation_id = ?1 AND status = 'pending' AND fifo = 1",
    )?
    .execute(params![automation_id, WAITING_AT, now])?;
    Ok(())
}

/// Puts the pending deliveries of `automation_id` whose call has not started into its FIFO
/// line, in id order: its ordering became `fifo`. The first of them is the head (due when it
/// was due) unless the line already has one; every other waits its turn. Those held in the
/// dispatcher's memory (`claimed` 2) are taken back: their copy there is dropped when its
/// turn comes, since marking it started finds it no longer held, and the
/// `deliveries_fifo_kept_waiting` trigger keeps one handed back (a shutdown) waiting. Those
/// in flight (`claimed` 1) are left as they are (see the module doc). Returns how many joined.
/// Walks the pending deliveries (the `deliveries_due` index), not the automation's history.
pub(super) fn line_up(conn: &Connection, automation_id: &AutomationId) -> StoreResult<usize> {
    let has_head = conn
        .prepare_cached(
            "SELECT 1 FROM deliveries INDEXED BY deliveries_fifo \
             WHERE automation_id = ?1 AND status = 'pending' AND fifo = 1 \
             AND next_attempt_at < ?2 LIMIT 1",
        )?
        .exists(params![automation_id, WAITING_AT])?;
    let first: Option<DeliveryId> = conn
        .prepare_cached(
            "SELECT id FROM deliveries INDEXED BY deliveries_due \
             WHERE status = 'pending' AND automation_id = ?1 AND fifo = 0 AND claimed != 1 \
             ORDER BY id LIMIT 1",
        )?
        .query_row([automation_id], |r| r.get(0))
        .optional()?;
    let Some(first) = first else { return Ok(0) };
    let head = (!has_head).then_some(first);
    Ok(conn
        .prepare_cached(
            "UPDATE deliveries INDEXED BY deliveries_due SET fifo = 1, claimed = 0, \
             next_attempt_at = CASE WHEN id IS ?3 THEN next_attempt_at ELSE ?2 END \
             WHERE status = 'pending' AND automation_id = ?1 AND fifo = 0 AND claimed != 1",
        )?
        .execute(params![automation_id, WAITING_AT, head])?)
}

#[cfg(test)]
#[path = "fifo_tests.rs"]
mod tests;
