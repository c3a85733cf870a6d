//! One attempt of a delivery taken by the dispatcher: the automation read again when it may
//! have changed, the payload of a delivery that waited in memory, the call and its outcome.
//! A delivery whose payload is gone (content retention, an expunge) is not called: its
//! attempt is logged with the code saying why, and it ends `failed`, since the payload will
//! not come back.

use bytes::Bytes;

use super::Dispatcher;
use crate::delivery::attempt::{self, CallContext};
use crate::delivery::failure_log::{AfterFailure, FailedAttempt};
use crate::delivery::rate_limit_stamp::StartStamp;
use crate::delivery::retry::Next;
use crate::metrics::DeliveryOutcome;
use crate::outbound::CallResult;
use crate::outbound::ErrorCode;
use crate::store::{
    Automation, ClaimedDelivery, DeliveryOrder, DeliveryStatus, GoneReason, Outcome, Snapshot,
    StoreError, Trigger,
};

/// What an attempt has to send.
pub(super) enum Body {
    /// The payload, read.
    Send(Bytes),
    /// Nothing: the payload is gone, for this reason.
    Gone(GoneReason),
}

impl Dispatcher {
    /// The automation as it is now, when it may have changed since `d` was stored or claimed
    /// (a delivery can wait in memory while its automation is disabled, moved or deleted),
    /// with the snapshot to store for its log; a deleted one comes back disabled, with the
    /// snapshot already stored (nothing of it is written again).
    async fn current_automation(
        &self,
        d: &ClaimedDelivery,
    ) -> Option<(Automation, Option<Snapshot>)> {
        if self.store.automations_version() == d.automation_version {
            return None;
        }
        match self.store.automation(d.automation.id.clone()).await {
            Ok(automation) => {
                let snapshot = self.store.snapshot_of(&automation);
                Some((automation, Some(snapshot)))
            }
            Err(StoreError::NotFound(_)) => {
                let mut gone = (*d.automation).clone();
                gone.settings.enabled = false;
                Some((gone, None))
            }
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "cannot read the automation again; calling with the copy held");
                None
            }
        }
    }

    /// The payload of delivery `d`, read as its call starts, or why it is gone; `None` (and
    /// `d` released) when it cannot be read.
    pub(super) async fn read_payload(&self, d: &ClaimedDelivery) -> Option<Body> {
        match self.store.payload(d.message_id.clone(), d.payload_hash).await {
            Ok(payload) => Some(Body::Send(payload)),
            Err(StoreError::ContentGone { why, .. }) => Some(Body::Gone(why)),
            Err(e) => {
                tracing::error!(delivery = %d.id, error = %e, "reading a payload failed; not calling it");
                self.release_unsent(vec![d.id.clone()]).await;
                None
            }
        }
    }

    /// One attempt with `body`: the call (or, not sent, a gone payload or a disabled
    /// automation); returns its log and the delivery's next state, to be written together,
    /// and the ordering of the automation as it was called (read again if it changed since
    /// `d` was claimed: a switch to `fifo` applies to the hand-over after this call).
    /// `stamp`, the start taken from the shared rate window, is stamped as the call arrives;
    /// a call not sent leaves it counting from its take.
    pub(super) async fn attempt(
        &self,
        d: &ClaimedDelivery,
        body: Body,
        stamp: Option<StartStamp>,
    ) -> (Outcome, DeliveryOrder) {
        self.metrics.in_flight.inc();
        let current = self.current_automation(d).await;
        let context = CallContext {
            delivery_id: Some(d.id.clone()),
            message_id: d.message_id.clone(),
            attempt: d.attempt,
            trigger: d.trigger,
            rerun_of: None,
            body_hash: d.payload_hash,
            snapshot_hash: match &current {
                Some((_, Some(snapshot))) => snapshot.hash,
                _ => d.snapshot_hash,
            },
        };
        let automation = current.as_ref().map_or(&*d.automation, |(a, _)| a);
        let url = &automation.settings.webhook_url;
        // One that cannot be sent now (payload gone, automation disabled) ends `failed`: a
        // later attempt could not send it either.
        let sendable = automation.settings.enabled && matches!(body, Body::Send(_));
        let not_sent = |code: ErrorCode, detail: String| {
            let result = CallResult::not_sent(code, detail);
            (attempt::log_of(automation, url, "{}".into(), result, context.clone()), None)
        };
        let (log, retry_after) = match body {
            Body::Gone(why) => not_sent(
                why.error_code(),
                format!("the message's payload is no longer stored ({})", why.as_str()),
            ),
            Body::Send(_) if !automation.settings.enabled => {
                not_sent(ErrorCode::AutomationDisabled, "automation is disabled".into())
            }
            Body::Send(payload) => {
                let ua = &self.config.user_agent;
                let context = context.clone();
                attempt::call(&self.sender, ua, automation, url, payload, context, stamp).await
            }
        };
        self.metrics.in_flight.dec();

        let (status, next_attempt_at, outcome) = if log.error_code.is_none() {
            (DeliveryStatus::Succeeded, log.response_at, DeliveryOutcome::Succeeded)
        } else if !sendable || d.trigger == Trigger::Recover {
            // A recover job gives each delivery one more attempt; it does not restart the schedule.
            (DeliveryStatus::Failed, log.response_at, DeliveryOutcome::Failed)
        } else {
            match self.policy.next(d.attempt, d.created_at, log.response_at, retry_after) {
                Next::RetryAt(at) => (DeliveryStatus::Pending, at, DeliveryOutcome::RetryScheduled),
                Next::Exhausted => {
                    (DeliveryStatus::Exhausted, log.response_at, DeliveryOutcome::Exhausted)
                }
            }
        };
        self.metrics.record_delivery(&d.automation.id, outcome, log.duration_ms);
        if let Some(code) = log.error_code {
            self.failures.record(FailedAttempt {
                automation_id: &d.automation.id,
                delivery_id: &d.id,
                attempt: d.attempt,
                code,
                status: log.status_code,
                after: match outcome {
                    DeliveryOutcome::RetryScheduled => AfterFailure::RetryAt(next_attempt_at),
                    DeliveryOutcome::Exhausted => AfterFailure::Exhausted,
                    DeliveryOutcome::Succeeded | DeliveryOutcome::Failed => AfterFailure::Failed,
                },
            });
        }
        let ordering = automation.settings.ordering;
        let snapshot = current.and_then(|(_, snapshot)| snapshot);
        let called = sendable;
        let outcome =
            Outcome { delivery_id: d.id.clone(), log, status, next_attempt_at, snapshot, called };
        (outcome, ordering)
    }
}
