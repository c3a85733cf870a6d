//! Reruns and the delivery they repeat. A rerun is a call of its own, not an attempt of the
//! delivery (it does not count in its attempts), but its log names that delivery, which a
//! client following a delivery's `last_log_id` back needs. One that got a 2xx has delivered the message to the automation: it ends
//! the delivery of that message for that automation `succeeded`, in the same write as its
//! log, so that no retry or recover sends it again. A failed rerun changes nothing.
//!
//! Whatever the delivery's claim (see `claims`), `succeeded` is final from that write on:
//! - not claimed: claims take only `pending` deliveries, so it is never called again;
//! - held in memory (`claimed = 2`): its call never starts, as marking it started requires
//!   `pending`, and the dispatcher drops a delivery it cannot mark;
//! - call in flight (`claimed = 1`): that call cannot be taken back, and the receiver may get
//!   the message twice (with the same `webhook-id`, so it can de-duplicate); its outcome is
//!   logged but does not move the delivery out of `succeeded` (see `deliveries::record`).
//!
//! Its claim is cleared, so a restart finds nothing to release or to log `E_INTERRUPTED`.

use rusqlite::{params, Connection, OptionalExtension};

use super::delivery_status::DeliveryStatus;
use super::logs::{self, NewLog};
use super::{decode, Snapshot, StoreResult};
use crate::ids::{AutomationId, DeliveryId, LogId, MessageId};

/// The delivery a rerun repeated, as it stands after the rerun was recorded.
#[derive(Debug, Clone)]
pub struct RerunDelivery {
    /// `dlv_…`
    pub id: DeliveryId,
    /// Its status now.
    pub status: DeliveryStatus,
}

/// Records rerun `log` with the snapshot of the automation it was sent for, and settles the
/// delivery it repeated (see the module doc); returns that delivery, if there is one.
pub(super) fn record(
    conn: &Connection,
    mut log: NewLog,
    snapshot: &Snapshot,
) -> StoreResult<(LogId, Option<RerunDelivery>)> {
    snapshot.put(conn)?;
    let found = repeated_delivery(conn, &log.message_id, &log.automation_id)?;
    log.delivery_id = found.as_ref().map(|(id, _)| id.clone());
    let log_id = logs::insert(conn, &log)?;
    let Some((id, status)) = found else { return Ok((log_id, None)) };
    if log.error_code.is_some() || status == DeliveryStatus::Succeeded {
        return Ok((log_id, Some(RerunDelivery { id, status })));
    }
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'succeeded', claimed = 0, last_log_id = ?2, \
         updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, log_id, log.response_at])?;
    Ok((log_id, Some(RerunDelivery { id, status: DeliveryStatus::Succeeded })))
}

/// The id and status of the delivery of `message_id` to `automation_id`, which a rerun of
/// that message to that automation repeats (none for a message sent before the automation
/// existed, or whose delivery was deleted with its automation).
pub(super) fn repeated_delivery(
    conn: &Connection,
    message_id: &MessageId,
    automation_id: &AutomationId,
) -> StoreResult<Option<(DeliveryId, DeliveryStatus)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, status FROM deliveries WHERE message_id = ?1 AND automation_id = ?2",
        )?
        .query_row(params![message_id, automation_id], |r| {
            let id: DeliveryId = decode::key(r, 0, "deliveries")?;
            Ok((decode::value(r, 1, "deliveries", &id)?, id))
        })
        .optional()?
        .map(|(status, id)| (id, status)))
}

#[cfg(test)]
#[path = "reruns_tests.rs"]
mod tests;
