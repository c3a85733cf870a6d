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
use super::{BodyHash, Snapshot, Store, StoreError, StoreResult};

/// A rerun or test call about to start: what its log needs if the relay stops during it.
#[derive(Debug, Clone)]
pub struct StartingCall {
    /// The message sent (`webhook-id`).
    pub message_id: String,
    /// The automation called.
    pub automation_id: String,
    /// Its processor.
    pub processor_id: String,
    /// `rerun` or `test`.
    pub trigger: Trigger,
    /// For reruns, the log rerun.
    pub rerun_of: Option<String>,
    /// The URL called.
    pub webhook_url: String,
    /// Hash of the body sent (stored already).
    pub request_body_hash: BodyHash,
}

/// The row of a call in flight, to hand back when its log is stored.
#[derive(Debug, Clone, Copy)]
pub struct InFlight(i64);

/// What an interrupted call's log says beside the interruption itself.
pub(super) struct InterruptedCall {
    /// For a delivery's attempt, the delivery.
    pub delivery_id: Option<String>,
    /// See [`NewLog::message_id`].
    pub message_id: String,
    /// See [`NewLog::automation_id`].
    pub automation_id: String,
    /// See [`NewLog::processor_id`].
    pub processor_id: String,
    /// See [`NewLog::attempt`].
    pub attempt: u32,
    /// See [`NewLog::trigger`].
    pub trigger: Trigger,
    /// See [`NewLog::rerun_of`].
    pub rerun_of: Option<String>,
    /// See [`NewLog::webhook_url`].
    pub webhook_url: String,
    /// See [`NewLog::request_body_hash`].
    pub request_body_hash: BodyHash,
    /// See [`NewLog::snapshot_hash`].
    pub snapshot_hash: BodyHash,
    /// When the call started, or when it was found interrupted if that is not known (Unix ms).
    pub at: i64,
}

/// The `E_INTERRUPTED` log of a call the relay stopped during. Its request headers are only
/// what was certainly sent: the timestamp and signature of the lost call are unknown.
pub(super) fn interrupted_log(call: InterruptedCall) -> NewLog {
    let headers =
        serde_json::json!({"content-type": "application/json", "webhook-id": call.message_id});
    NewLog {
        delivery_id: call.delivery_id,
        message_id: call.message_id,
        automation_id: call.automation_id,
        processor_id: call.processor_id,
        attempt: call.attempt,
        trigger: call.trigger,
        rerun_of: call.rerun_of,
        webhook_url: call.webhook_url,
        request_headers: headers.to_string(),
        request_body_hash: call.request_body_hash,
        request_at: call.at,
        response_at: call.at,
        status_code: 0,
        response_headers: "{}".into(),
        response_body: None,
        response_truncated: false,
        duration_ms: 0.0,
        error_code: Some(crate::outbound::ErrorCode::Interrupted),
        error_message: Some(
            "the relay stopped while this call was in flight; the receiver may have got it".into(),
        ),
        snapshot_hash: call.snapshot_hash,
    }
}

fn hash_of(bytes: Vec<u8>) -> StoreResult<BodyHash> {
    bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt("body hash".into()))
}

/// A `calls_in_flight` row as read back.
type Row = (String, String, String, String, Option<String>, String, Vec<u8>, Vec<u8>, i64);

/// Logs every call left in flight `E_INTERRUPTED` (a rerun so logged settles nothing, like
/// any failed rerun) and deletes the rows, in `conn`'s open transaction; returns how many.
pub(super) fn release(conn: &Connection) -> StoreResult<usize> {
    let rows = conn
        .prepare(
            "SELECT message_id, automation_id, processor_id, trigger, rerun_of, webhook_url, \
             request_body_hash, snapshot_hash, request_at FROM calls_in_flight ORDER BY id",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })?
        .collect::<Result<Vec<Row>, _>>()?;
    let count = rows.len();
    for (message_id, automation_id, processor_id, trigger, rerun_of, url, body, snapshot, at) in
        rows
    {
        let trigger = Trigger::parse(&trigger)
            .ok_or_else(|| StoreError::Corrupt(format!("call trigger `{trigger}`")))?;
        // A rerun's log names the delivery it repeated, interrupted or not (see `reruns`).
        let delivery_id = if trigger == Trigger::Rerun {
            reruns::repeated_delivery(conn, &message_id, &automation_id)?.map(|(id, _)| id)
        } else {
            None
        };
        let call = InterruptedCall {
            delivery_id,
            message_id,
            automation_id,
            processor_id,
            attempt: 1,
            trigger,
            rerun_of,
            webhook_url: url,
            request_body_hash: hash_of(body)?,
            snapshot_hash: hash_of(snapshot)?,
            at,
        };
        logs::insert(conn, &interrupted_log(call))?;
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
                call.trigger.as_str(),
                call.rerun_of,
                call.webhook_url,
                &call.request_body_hash[..],
                &snapshot.hash[..],
                crate::time::now_ms()
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
) -> StoreResult<(String, Option<RerunDelivery>)> {
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
        self.write(move |c| start(c, &call, &snapshot)).await
    }

    /// Stores the log of call `in_flight` and forgets it was in flight, in one write; a rerun
    /// also settles the delivery it repeated (see `reruns`). Returns the log's id (taken in
    /// that write) and that delivery.
    pub async fn finish_call(
        &self,
        in_flight: InFlight,
        log: NewLog,
        snapshot: Snapshot,
    ) -> StoreResult<(String, Option<RerunDelivery>)> {
        self.write(move |c| finish(c, in_flight, log, &snapshot)).await
    }
}
