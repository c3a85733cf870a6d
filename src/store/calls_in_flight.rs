//! Calls in flight outside the dispatcher (reruns and test calls), and the `E_INTERRUPTED`
//! log of any call the relay stopped during.
//!
//! A rerun or test call is recorded in `calls_in_flight` by a write that commits before the
//! call starts, and the row is deleted by the write that stores the call's log. So a row
//! found at start-up is a call that may have reached the receiver but has no log: it is
//! logged `E_INTERRUPTED`, as a delivery's call in flight is (`deliveries::release_claims`).
//! A call that never started (no slot, the write failed) leaves no row; one whose log could
//! not be stored leaves its row, and is logged at the next start.

use rusqlite::{params, Connection};

use super::logs::{self, NewLog, Trigger};
use super::reruns::{self, RerunDelivery};
use super::{decode, BodyHash, Snapshot, Store, StoreResult};
use crate::ids::{AutomationId, DeliveryId, LogId, MessageId};

use crate::time::UnixMs;

/// A call about to start (a rerun or test call; a delivery's attempt inside the store): what
/// its log needs if the relay stops during it.
#[derive(Debug, Clone)]
pub struct StartingCall {
    /// The message sent (`webhook-id`).
    pub message_id: MessageId,
    /// The automation called.
    pub automation_id: AutomationId,
    /// Its processor.
    pub processor_id: String,
    /// Why it is made (`rerun` or `test` outside the store).
    pub trigger: Trigger,
    /// For reruns, the log rerun.
    pub rerun_of: Option<LogId>,
    /// The URL called.
    pub webhook_url: String,
    /// Hash of the body sent (stored already).
    pub request_body_hash: BodyHash,
}

/// The row of a call in flight, to hand back when its log is stored.
#[derive(Debug, Clone, Copy)]
pub struct InFlight(pub(super) i64);

/// What an interrupted call's log says beside the interruption itself: the call, and what
/// only its log records.
pub(super) struct InterruptedCall {
    /// The call.
    pub call: StartingCall,
    /// For a delivery's attempt, the delivery.
    pub delivery_id: Option<DeliveryId>,
    /// See [`NewLog::attempt`].
    pub attempt: u32,
    /// See [`NewLog::snapshot_hash`].
    pub snapshot_hash: BodyHash,
    /// When the call started, or when it was found interrupted if that is not known.
    pub at: UnixMs,
}

/// The `E_INTERRUPTED` log of a call the relay stopped during. Its request headers are only
/// what was certainly sent: the timestamp and signature of the lost call are unknown.
pub(super) fn interrupted_log(interrupted: InterruptedCall) -> NewLog {
    let InterruptedCall { call, delivery_id, attempt, snapshot_hash, at } = interrupted;
    let headers =
        serde_json::json!({"content-type": "application/json", "webhook-id": call.message_id});
    NewLog {
        delivery_id,
        message_id: call.message_id,
        automation_id: call.automation_id,
        processor_id: call.processor_id,
        attempt,
        trigger: call.trigger,
        rerun_of: call.rerun_of,
        webhook_url: call.webhook_url,
        request_headers: headers.to_string(),
        request_headers_implied: false,
        request_body_hash: call.request_body_hash,
        request_at: at,
        response_at: at,
        status_code: 0,
        response_headers: "{}".into(),
        response_body: None,
        response_truncated: false,
        duration_ms: 0.0,
        error_code: Some(crate::outbound::ErrorCode::Interrupted),
        error_message: Some(
            "the relay stopped while this call was in flight; the receiver may have got it".into(),
        ),
        snapshot_hash,
    }
}

/// Logs every call left in flight `E_INTERRUPTED` (a rerun so logged settles nothing, like
/// any failed rerun) and deletes the rows, in `conn`'s open transaction; returns how many.
pub(super) fn release(conn: &Connection) -> StoreResult<usize> {
    let rows = conn
        .prepare(
            "SELECT id, message_id, automation_id, processor_id, trigger, rerun_of, webhook_url, \
             request_body_hash, snapshot_hash, request_at FROM calls_in_flight ORDER BY id",
        )?
        .query_map([], |r| {
            let id = r.get::<_, i64>(0)?.to_string();
            let call = StartingCall {
                message_id: decode::value(r, 1, "calls_in_flight", &id)?,
                automation_id: decode::value(r, 2, "calls_in_flight", &id)?,
                processor_id: r.get(3)?,
                trigger: decode::value(r, 4, "calls_in_flight", &id)?,
                rerun_of: decode::value(r, 5, "calls_in_flight", &id)?,
                webhook_url: r.get(6)?,
                request_body_hash: decode::hash(r, 7, "calls_in_flight", &id)?,
            };
            Ok((call, decode::hash(r, 8, "calls_in_flight", &id)?, r.get::<_, UnixMs>(9)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let count = rows.len();
    for (call, snapshot_hash, at) in rows {
        // A rerun's log names the delivery it repeated, interrupted or not (see `reruns`).
        let delivery_id = if call.trigger == Trigger::Rerun {
            reruns::repeated_delivery(conn, &call.message_id, &call.automation_id)?
                .map(|(id, _)| id)
        } else {
            None
        };
        let interrupted = InterruptedCall { call, delivery_id, attempt: 1, snapshot_hash, at };
        logs::insert(conn, &interrupted_log(interrupted))?;
    }
    conn.execute("DELETE FROM calls_in_flight", [])?;
    Ok(count)
}

fn start(conn: &Connection, call: &StartingCall, snapshot: &Snapshot) -> StoreResult<InFlight> {
    snapshot.put(conn)?;
    let id = conn
        .prepare_cached(
            "INSERT INTO calls_in_flight (message_id, automation_id, processor_id, trigger, \
             rerun_of, webhook_url, request_body_hash, snapshot_hash, request_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                call.message_id,
                call.automation_id,
                call.processor_id,
                call.trigger,
                call.rerun_of,
                call.webhook_url,
                &call.request_body_hash[..],
                &snapshot.hash[..],
                UnixMs::now()
            ],
            |r| r.get(0),
        )?;
    Ok(InFlight(id))
}

fn finish(
    conn: &Connection,
    in_flight: InFlight,
    log: NewLog,
    snapshot: &Snapshot,
) -> StoreResult<(LogId, Option<RerunDelivery>)> {
    conn.prepare_cached("DELETE FROM calls_in_flight WHERE id = ?1")?.execute([in_flight.0])?;
    if log.trigger == Trigger::Rerun {
        return reruns::record(conn, log, snapshot);
    }
    snapshot.put(conn)?;
    Ok((logs::insert(conn, &log)?, None))
}

impl Store {
    /// Records that `call` is starting, with the snapshot of the automation it is made for;
    /// resolves once that is committed, so the call may start.
    pub async fn start_call(
        &self,
        call: StartingCall,
        snapshot: Snapshot,
    ) -> StoreResult<InFlight> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::calls_in_flight::start(p, &call, &snapshot).await
            }
        };
        db.write(move |c| start(c, &call, &snapshot)).await
    }

    /// Stores the log of call `in_flight` and forgets it was in flight, in one write; a rerun
    /// also settles the delivery it repeated (see `reruns`). Returns the log's id (taken in
    /// that write) and that delivery.
    pub async fn finish_call(
        &self,
        in_flight: InFlight,
        log: NewLog,
        snapshot: Snapshot,
    ) -> StoreResult<(LogId, Option<RerunDelivery>)> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let id = super::pg::calls_in_flight::finish(p, in_flight, &log, &snapshot).await?;
                return Ok((id, None));
            }
        };
        db.write(move |c| finish(c, in_flight, log, &snapshot)).await
    }
}
