//! A synchronous call outside the dispatcher (a rerun or a test call): made within the
//! delivery concurrency bounds, logged, and, for a rerun, settling the delivery it repeats.

use std::sync::Arc;

use bytes::Bytes;

use super::Sender;
use crate::config::Config;
use crate::delivery::attempt::{self, CallContext};
use crate::delivery::{Dispatcher, NoSlot};
use crate::ids::{LogId, MessageId};
use crate::metrics::Metrics;
use crate::redact::HeaderRedaction;
use crate::store::{
    Automation, BodyHash, LogRecord, RerunDelivery, Snapshot, StartingCall, Store, StoreError,
    Trigger,
};

/// A synchronous call outside the dispatcher (rerun or test).
pub struct OneCall {
    /// `webhook-id`.
    pub message_id: MessageId,
    /// Body sent.
    pub body: Vec<u8>,
    /// Its hash (already stored).
    pub body_hash: BodyHash,
    /// URL called.
    pub url: String,
    /// `rerun` or `test`.
    pub trigger: Trigger,
    /// For reruns, the original log.
    pub rerun_of: Option<LogId>,
}

/// Why a call was not made or not recorded.
#[derive(Debug, thiserror::Error)]
pub enum OneCallError {
    /// No call slot came free in time, or the relay is stopping.
    #[error(transparent)]
    NoSlot(#[from] NoSlot),
    /// Recording the call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task making the call ended without an answer (it panicked).
    #[error("the call's task ended without an answer: {0}")]
    Lost(#[from] tokio::task::JoinError),
}

/// Makes calls now and records their logs; cheap to clone.
#[derive(Clone)]
pub struct OneCalls {
    store: Store,
    dispatcher: Arc<Dispatcher>,
    sender: Arc<Sender>,
    metrics: Arc<Metrics>,
    user_agent: Arc<str>,
    redaction: HeaderRedaction,
}

impl OneCalls {
    /// Calls with `sender`, within `dispatcher`'s bounds, logged in `store`.
    pub fn new(
        store: Store,
        dispatcher: Arc<Dispatcher>,
        sender: Arc<Sender>,
        metrics: Arc<Metrics>,
        config: &Config,
    ) -> Self {
        Self {
            store,
            dispatcher,
            sender,
            metrics,
            user_agent: config.delivery.user_agent.as_str().into(),
            redaction: config.security.redact_headers.clone(),
        }
    }

    /// Makes the call within the delivery concurrency bounds (waiting for a slot), stores its
    /// log, and returns the log as stored, with the delivery a rerun settled (see
    /// `store::reruns`; a test call has none). The call is recorded as in flight before it
    /// starts, so that even a crash during it leaves a log. The call and its log run in a
    /// task of their own: a client that goes away mid-call must not leave a call the
    /// receiver saw without its log (dropping the caller's future would cancel both).
    pub async fn send(
        &self,
        automation: &Automation,
        call: OneCall,
    ) -> Result<(LogRecord, Option<RerunDelivery>), OneCallError> {
        let (this, automation) = (self.clone(), automation.clone());
        tokio::spawn(async move { this.call_and_log(&automation, call).await }).await?
    }

    async fn call_and_log(
        &self,
        automation: &Automation,
        call: OneCall,
    ) -> Result<(LogRecord, Option<RerunDelivery>), OneCallError> {
        let snapshot = Snapshot::of(automation, &self.redaction);
        let starting = StartingCall {
            message_id: call.message_id.clone(),
            automation_id: automation.id.clone(),
            processor_id: automation.settings.processor_id.clone(),
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
        let body = Bytes::from(call.body);
        let mut slot = self.dispatcher.call_slot(&automation.id).await?;
        // Committed before the call starts: a crash during the call leaves it to be logged
        // E_INTERRUPTED at the next start (see `store::calls_in_flight`).
        let in_flight = self.store.start_call(starting, snapshot.clone()).await?;
        let stamp = slot.start();
        let (log, _) = attempt::call(
            &self.sender,
            &self.user_agent,
            automation,
            &call.url,
            body.clone(),
            context,
            stamp,
        )
        .await;
        drop(slot);
        self.metrics.record_attempt(call.trigger.as_str(), log.duration_ms);
        // The id (and a rerun's delivery) come from the write that records the log.
        let (id, delivery) = self.store.finish_call(in_flight, log.clone(), snapshot).await?;
        let mut record =
            log.into_record(id, body.to_vec(), automation.snapshot_json(&self.redaction));
        record.log.delivery_id = delivery.as_ref().map(|d| d.id.clone());
        Ok((record, delivery))
    }
}
