//! A synchronous call outside the dispatcher (a rerun or a test call): made within the
//! delivery concurrency bounds, logged, and, for a rerun, settling the delivery it repeats.

use bytes::Bytes;

use crate::api::{ApiError, ApiResult, AppState};
use crate::delivery::attempt::{self, CallContext};
use crate::store::Trigger;
use crate::store::{Automation, BodyHash, LogRecord, RerunDelivery, Snapshot, StartingCall};

/// A synchronous call outside the dispatcher (rerun or test).
pub(crate) struct OneCall {
    /// `webhook-id`.
    pub message_id: String,
    /// Body sent.
    pub body: Vec<u8>,
    /// Its hash (already stored).
    pub body_hash: BodyHash,
    /// URL called.
    pub url: String,
    /// `rerun` or `test`.
    pub trigger: Trigger,
    /// For reruns, the original log.
    pub rerun_of: Option<String>,
}

/// Makes the call within the delivery concurrency bounds (waiting for a slot, 503 when none
/// comes free in time), stores its log, and returns the log as stored, with the delivery a
/// rerun settled (see `store::reruns`; a test call has none). The call is recorded as in
/// flight before it starts, so that even a crash during it leaves a log. The call and its log run in a
/// task of their own: a client that goes away mid-call must not leave a call the receiver
/// saw without its log (dropping the handler's future would cancel both).
pub(crate) async fn send_one(
    state: &AppState,
    automation: &Automation,
    call: OneCall,
) -> ApiResult<(LogRecord, Option<RerunDelivery>)> {
    let (state, automation) = (state.clone(), automation.clone());
    tokio::spawn(async move { call_and_log(&state, &automation, call).await })
        .await
        .map_err(ApiError::internal)?
}

async fn call_and_log(
    state: &AppState,
    automation: &Automation,
    call: OneCall,
) -> ApiResult<(LogRecord, Option<RerunDelivery>)> {
    let rule = &state.config.security.redact_headers;
    let snapshot = Snapshot::of(automation, rule);
    let starting = StartingCall {
        message_id: call.message_id.clone(),
        automation_id: automation.id.clone(),
        processor_id: automation.processor_id.clone(),
        trigger: call.trigger,
        rerun_of: call.rerun_of.clone(),
        webhook_url: call.url.clone(),
        request_body_hash: call.body_hash,
    };
    let context = CallContext {
        delivery_id: None,
        message_id: call.message_id,
        attempt: 1,
        trigger: call.trigger,
        rerun_of: call.rerun_of,
        body_hash: call.body_hash,
        snapshot_hash: snapshot.hash,
    };
    let ua = &state.config.delivery.user_agent;
    let body = Bytes::from(call.body);
    let slot = state.dispatcher.call_slot(&automation.id).await?;
    // Committed before the call starts: a crash during the call leaves it to be logged
    // E_INTERRUPTED at the next start (see `store::calls_in_flight`).
    let in_flight = state.store.start_call(starting, snapshot.clone()).await?;
    let (log, _) =
        attempt::call(&state.sender, ua, automation, &call.url, body.clone(), context).await;
    drop(slot);
    state.metrics.record_attempt(call.trigger.as_str(), log.duration_ms);
    // The id (and a rerun's delivery) come from the write that records the log.
    let (id, delivery) = state.store.finish_call(in_flight, log.clone(), snapshot).await?;
    let mut record = log.to_record(id, body.to_vec(), automation.snapshot_json(rule));
    record.delivery_id = delivery.as_ref().map(|d| d.id.clone());
    Ok((record, delivery))
}
