//! The dispatcher: claims due deliveries in batches and sends each under a global and a
//! per-automation concurrency bound. Ingest wakes it at once; a timer covers retries that
//! come due. The schedule lives in the database, never in a sleeping task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep, timeout};

use super::attempt::{self, CallContext};
use super::lanes::{Admit, Lanes};
use super::retry::{Next, RetryPolicy};
use super::sender::{codes, CallResult, Sender};
use crate::config::DeliveryConfig;
use crate::metrics::Metrics;
use crate::store::{ClaimedDelivery, DeliveryStatus, Outcome, Store, Trigger};
use crate::time::now_ms;

/// Most deliveries claimed in one write.
const CLAIM_BATCH: usize = 512;
/// Deliveries handed over by ingest and waiting for a global slot.
const READY_QUEUE: usize = 4096;
/// Lease beyond the request timeout.
const LEASE_SLACK_MS: i64 = 60_000;
/// A delivery that finds the lanes' backlog full is handed back for this long.
const BUSY_DEFER_MS: i64 = 200;
/// Ingest hands deliveries over only while the ready queue and the lanes' backlog both have
/// this much room (a message may fan out to many automations); otherwise it stores them
/// unclaimed for the claim loop, instead of handing them over only to release them again.
const HANDOVER_HEADROOM: usize = 256;
/// How long the claim loop waits while the lanes' backlog is full (it drains meanwhile).
const BACKLOG_FULL_WAIT: Duration = Duration::from_millis(20);

/// Shared dispatcher state; see the module doc.
pub struct Dispatcher {
    store: Store,
    sender: Arc<Sender>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
    config: DeliveryConfig,
    global: Arc<Semaphore>,
    lanes: Lanes,
    wake: Notify,
    stop: Notify,
    ready_tx: mpsc::Sender<ClaimedDelivery>,
    ready_rx: tokio::sync::Mutex<mpsc::Receiver<ClaimedDelivery>>,
    stopping: AtomicBool,
    running: AtomicBool,
}

impl Dispatcher {
    /// A dispatcher over `store`, sending with `sender`.
    pub fn new(
        store: Store,
        sender: Arc<Sender>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let (ready_tx, ready_rx) = mpsc::channel(READY_QUEUE);
        Arc::new(Self {
            ready_tx,
            ready_rx: tokio::sync::Mutex::new(ready_rx),
            store,
            sender,
            policy: RetryPolicy::from_config(&config),
            metrics,
            global: Arc::new(Semaphore::new(config.global_concurrency)),
            lanes: Lanes::new(config.per_automation_concurrency),
            config,
            wake: Notify::new(),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
            running: AtomicBool::new(false),
        })
    }

    /// Tells the dispatcher that new deliveries were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How long a claim holds a delivery: past the whole-call timeout, so only a crashed or
    /// stuck attempt ever lets the lease run out.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.request_timeout_ms)
            .unwrap_or(i64::MAX / 2)
            .saturating_add(LEASE_SLACK_MS)
    }

    /// The claim lease for ingest to store new deliveries under and hand them straight over,
    /// or none when the dispatcher has no room for them now (they are then stored due and
    /// unclaimed, and the claim loop picks them up).
    pub fn handover_lease(&self) -> Option<i64> {
        let room =
            self.ready_tx.capacity() >= HANDOVER_HEADROOM && self.lanes.room() >= HANDOVER_HEADROOM;
        room.then(|| self.lease_ms())
    }

    /// Takes deliveries that ingest stored already claimed; `unclaimed` says ingest stored
    /// some unclaimed instead (see [`Dispatcher::handover_lease`]), and wakes the claim loop
    /// for them. Those that do not fit in the bounded ready queue are released to the
    /// database, where the claim loop finds them.
    pub fn submit(self: &Arc<Self>, ready: Vec<ClaimedDelivery>, unclaimed: bool) {
        if unclaimed {
            self.wake();
        }
        let mut overflow = Vec::new();
        for delivery in ready {
            if let Err(e) = self.ready_tx.try_send(delivery) {
                let (mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d)) = e;
                overflow.push(d.id);
            }
        }
        if !overflow.is_empty() {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.store.release_deliveries(overflow).await {
                    tracing::error!(error = %e, "releasing deliveries failed; their lease expires instead");
                }
                this.wake();
            });
        }
    }

    /// Sends what ingest handed over, as global slots free up. On shutdown, what was never
    /// sent is released (not left claimed, which the next start would log as interrupted).
    async fn run_ready(self: Arc<Self>) {
        let mut ready = self.ready_rx.lock().await;
        let mut unsent = Vec::new();
        loop {
            let stop = self.stop.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.stopping.load(Ordering::Relaxed) {
                break;
            }
            let delivery = tokio::select! {
                d = ready.recv() => d,
                () = stop => None,
            };
            let Some(delivery) = delivery else { break };
            match self.global.clone().acquire_owned().await {
                Ok(permit) if !self.stopping.load(Ordering::Relaxed) => {
                    self.dispatch(delivery, permit);
                }
                _ => {
                    unsent.push(delivery.id);
                    break;
                }
            }
        }
        while let Ok(delivery) = ready.try_recv() {
            unsent.push(delivery.id);
        }
        self.release_unsent(unsent).await;
    }

    async fn release_unsent(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.store.release_deliveries(ids).await {
            tracing::error!(error = %e, "releasing unsent deliveries failed; the next start logs them as interrupted");
        }
    }

    /// Deliveries waiting in memory behind automations at their concurrency bound.
    pub fn lane_backlog(&self) -> usize {
        self.lanes.queued()
    }

    /// Whether the claim loop is running (for `/readyz`).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// The dispatcher: the ready-queue loop and the claim loop (due retries, recovered and
    /// released deliveries); returns after [`Dispatcher::shutdown`].
    pub async fn run(self: Arc<Self>) {
        self.running.store(true, Ordering::Relaxed);
        let ready_loop = tokio::spawn(self.clone().run_ready());
        self.clone().run_claims().await;
        let _ = ready_loop.await;
        self.running.store(false, Ordering::Relaxed);
    }

    async fn run_claims(self: Arc<Self>) {
        let lease_ms = self.lease_ms();
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        while !self.stopping.load(Ordering::Relaxed) {
            let Ok(first) = self.global.clone().acquire_owned().await else { break };
            let want =
                (1 + self.global.available_permits()).min(CLAIM_BATCH).min(self.lanes.room());
            if want == 0 {
                drop(first);
                sleep(BACKLOG_FULL_WAIT).await;
                continue;
            }
            let claimed = match self.store.claim_due(want, lease_ms).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due deliveries failed");
                    drop(first);
                    sleep(poll).await;
                    continue;
                }
            };
            let full_batch = claimed.len() == want;
            let mut first = Some(first);
            let mut unsent = Vec::new();
            for delivery in claimed {
                let permit = match first.take() {
                    Some(p) => Ok(p),
                    None => self.global.clone().acquire_owned().await,
                };
                match permit {
                    Ok(permit) if !self.stopping.load(Ordering::Relaxed) => {
                        self.dispatch(delivery, permit);
                    }
                    _ => unsent.push(delivery.id),
                }
            }
            drop(first);
            self.release_unsent(unsent).await;
            if !full_batch {
                let _ = timeout(poll, self.wake.notified()).await;
            }
        }
    }

    /// Stops claiming and waits up to `grace` for calls in flight; the rest stay pending
    /// (their claim is released at the next start).
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::Relaxed);
        let queued = self.lanes.close();
        self.release_unsent(queued).await;
        self.wake.notify_one();
        self.stop.notify_waiters();
        let all = u32::try_from(self.config.global_concurrency).unwrap_or(u32::MAX);
        if timeout(grace, self.global.acquire_many(all)).await.is_err() {
            tracing::warn!(
                "shutdown grace period over with calls still in flight; they stay pending"
            );
        }
        self.global.close();
    }

    /// Admits `delivery` to its automation's lane here, in the order deliveries arrive (so
    /// an automation's backlog is first come, first sent), then calls it on a task of its
    /// own; see [`Lanes`]. A queued delivery gives its global slot back at once.
    fn dispatch(self: &Arc<Self>, delivery: ClaimedDelivery, global: OwnedSemaphorePermit) {
        match self.lanes.admit(delivery) {
            Admit::Go(d) => {
                let this = self.clone();
                tokio::spawn(async move { this.run_lane(d, global).await });
            }
            Admit::Queued => {}
            Admit::Refused(d) => {
                let this = self.clone();
                tokio::spawn(async move {
                    let deferred =
                        this.store.defer_delivery(d.id.clone(), now_ms() + BUSY_DEFER_MS);
                    if let Err(e) = deferred.await {
                        tracing::error!(delivery = %d.id, error = %e, "deferring a delivery failed");
                    }
                });
            }
        }
    }

    /// Calls `first`, then whatever queued behind it in its lane, holding one global slot.
    async fn run_lane(&self, first: ClaimedDelivery, _global: OwnedSemaphorePermit) {
        let mut next = first;
        loop {
            let automation_id = next.automation.id.clone();
            self.attempt(next).await;
            match self.lanes.finish(&automation_id) {
                Some(d) => next = d,
                None => return,
            }
        }
    }

    /// One attempt: the call (or its refusal for a disabled automation), then its log and the
    /// delivery's next state in one write.
    async fn attempt(&self, d: ClaimedDelivery) {
        self.metrics.in_flight.inc();
        let context = CallContext {
            delivery_id: Some(d.id.clone()),
            message_id: d.message_id.clone(),
            attempt: d.attempt,
            trigger: d.trigger,
            rerun_of: None,
            body_hash: d.payload_hash,
            snapshot_hash: d.snapshot_hash,
        };
        let automation = &d.automation;
        let (log, retry_after) = if automation.enabled {
            let ua = &self.config.user_agent;
            attempt::call(
                &self.sender,
                ua,
                automation,
                &automation.webhook_url,
                d.payload.clone(),
                context,
            )
            .await
        } else {
            let result =
                CallResult::not_sent(codes::AUTOMATION_DISABLED, "automation is disabled".into());
            (
                attempt::log_of(automation, &automation.webhook_url, "{}".into(), result, context),
                None,
            )
        };
        self.metrics.in_flight.dec();

        let (status, next_attempt_at, outcome) = if log.error_code.is_none() {
            (DeliveryStatus::Succeeded, log.response_at, "succeeded")
        } else if !automation.enabled || d.trigger == Trigger::Recover {
            // A recover job gives each delivery one more attempt; it does not restart the schedule.
            (DeliveryStatus::Failed, log.response_at, "failed")
        } else {
            match self.policy.next(d.attempt, d.created_at, log.response_at, retry_after) {
                Next::RetryAt(at) => (DeliveryStatus::Pending, at, "retry_scheduled"),
                Next::Exhausted => (DeliveryStatus::Exhausted, log.response_at, "exhausted"),
            }
        };
        self.metrics.record_attempt(outcome, log.duration_ms);
        let outcome = Outcome { delivery_id: d.id.clone(), log, status, next_attempt_at };
        if let Err(e) = self.store.record_outcome(outcome).await {
            // The claim lease makes it due again later; nothing is lost.
            tracing::error!(delivery = %d.id, error = %e, "recording an attempt failed");
        }
    }
}
