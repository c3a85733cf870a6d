//! The dispatcher: claims due deliveries in batches and sends each under a global and a
//! per-automation concurrency bound. Ingest hands over what it stores when there is room
//! for it; a timer covers retries that come due. The schedule lives in the database, never
//! in a sleeping task.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep, timeout};

use super::failure_log::FailureLog;
use super::lanes::{Admit, Bounds, Lanes};
use super::rate_limit::RateWindows;
use super::retry::RetryPolicy;
use super::ticket::Intake;
use super::ticket::{Capacity, Returned, Ticket};
use crate::config::DeliveryConfig;
use crate::ids::DeliveryId;
use crate::metrics::Metrics;
use crate::outbound::Sender;
use crate::store::{
    Accepted, ClaimRequest, ClaimedDelivery, DeliveryOrder, DeliveryStatus, Receipt, Store,
    StoreResult,
};
use crate::time::UnixMs;

#[path = "dispatcher_attempt.rs"]
mod dispatcher_attempt;
use dispatcher_attempt::Body;
#[path = "dispatcher_line.rs"]
mod dispatcher_line;

#[path = "dispatcher_rate.rs"]
mod dispatcher_rate;

/// Most deliveries claimed in one write.
const CLAIM_BATCH: usize = 512;
/// Most candidates one claim looks at, per delivery it wants (see `ClaimRequest::scan`).
const SCAN_PER_WANTED: usize = 4;
/// Lease beyond the request timeout.
const LEASE_SLACK_MS: i64 = 60_000;

/// First and longest waits between tries of a refused release (see `release_unsent`).
const RELEASE_RETRY_FIRST: Duration = Duration::from_millis(200);
const RELEASE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Shared dispatcher state; see the module doc.
pub struct Dispatcher {
    store: Store,
    sender: Arc<Sender>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
    failures: FailureLog,
    pub(super) config: DeliveryConfig,
    pub(super) capacity: Arc<Capacity>,
    wake: Arc<Notify>,
    stop: Notify,
    returns: tokio::sync::Mutex<mpsc::UnboundedReceiver<Returned>>,
    stopping: AtomicBool,
    running: AtomicBool,
    /// The recent starts of rate-limited automations (see `dispatcher_rate`).
    rate_windows: Arc<RateWindows>,
}

impl Dispatcher {
    /// A dispatcher over `store`, sending with `sender`.
    pub fn new(
        store: Store,
        sender: Arc<Sender>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let wake = Arc::new(Notify::new());
        let bounds = Bounds {
            per_automation_calls: config.per_automation_concurrency,
            per_automation_backlog: config.per_automation_backlog,
            total_backlog: config.lane_backlog,
        };
        let (returns_tx, returns_rx) = mpsc::unbounded_channel();
        let capacity = Arc::new(Capacity {
            global: Arc::new(Semaphore::new(config.global_concurrency)),
            lanes: Lanes::new(bounds, wake.clone()),
            returns: returns_tx,
        });
        Arc::new(Self {
            store,
            sender,
            policy: RetryPolicy::from_config(&config),
            metrics,
            failures: FailureLog::new(Duration::from_millis(config.failure_log_interval_ms)),
            config,
            capacity,
            wake,
            stop: Notify::new(),
            returns: tokio::sync::Mutex::new(returns_rx),
            stopping: AtomicBool::new(false),
            running: AtomicBool::new(false),
            rate_windows: Arc::new(RateWindows::after_start()),
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

    /// Runs `write`, a write that stores deliveries (an ingest), under a ticket of its own:
    /// the dispatcher takes each delivery it has room for as the write runs, and once the
    /// write is committed, starts or queues them. This is the only way to get an [`Intake`]
    /// for a write, so nothing can store deliveries without handing them over (producers
    /// call it through `relay::Relay`).
    pub(crate) async fn produce<F, Fut>(self: &Arc<Self>, write: F) -> StoreResult<Receipt>
    where
        F: FnOnce(Arc<dyn Intake>) -> Fut,
        Fut: Future<Output = StoreResult<Accepted>>,
    {
        let ticket = Arc::new(Ticket::new(self.capacity.clone(), self.lease_ms(), None));
        let Accepted { receipt, handover } = write(ticket.clone()).await?;
        self.admit(&ticket, handover.ready, handover.unclaimed);
        Ok(receipt)
    }

    /// Starts or queues the deliveries a write stored or claimed under `ticket`. `unclaimed`
    /// says the write also stored some unclaimed; the claim loop is woken for them when they
    /// were only short of a global slot.
    fn admit(self: &Arc<Self>, ticket: &Ticket, ready: Vec<ClaimedDelivery>, unclaimed: bool) {
        if unclaimed && ticket.short_of_slots() {
            self.wake();
        }
        if self.stopping.load(Ordering::Relaxed) {
            return; // the ticket, once dropped, gives everything back
        }
        let mut refused = Vec::new();
        for delivery in ready {
            let Some(reservation) = ticket.redeem(&delivery.id) else {
                refused.push(delivery.id);
                continue;
            };
            match reservation.global {
                Some(global) => {
                    let this = self.clone();
                    tokio::spawn(async move { this.run_lane(delivery, global).await });
                }
                None => match self.capacity.lanes.enqueue(delivery) {
                    Admit::Go(d) => self.run_later(d, None),
                    Admit::Queued => {}
                    Admit::Refused(d) => refused.push(d.id),
                },
            }
        }
        if !refused.is_empty() {
            let _ = self.capacity.returns.send(Returned::Release(refused));
        }
    }

    /// Calls `delivery`, which holds a lane slot, once it has a global slot.
    fn run_later(
        self: &Arc<Self>,
        delivery: ClaimedDelivery,
        global: Option<OwnedSemaphorePermit>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let global = match global {
                Some(g) => Ok(g),
                None => this.capacity.global.clone().acquire_owned().await,
            };
            match global {
                Ok(global) if !this.stopping.load(Ordering::Relaxed) => {
                    this.run_lane(delivery, global).await
                }
                _ => this.release_unsent(vec![delivery.id]).await,
            }
        });
    }

    /// Finishes what code that could not wait handed over (see [`Returned`]).
    async fn run_returns(self: Arc<Self>) {
        let mut returns = self.returns.lock().await;
        loop {
            let stop = self.stop.notified();
            tokio::pin!(stop);
            stop.as_mut().enable();
            if self.stopping.load(Ordering::Relaxed) {
                break;
            }
            let returned = tokio::select! {
                r = returns.recv() => r,
                () = stop => None,
            };
            match returned {
                Some(Returned::Release(ids)) => self.release_unsent(ids).await,
                Some(Returned::Run(delivery, global)) => self.run_later(*delivery, global),
                None => break,
            }
        }
        let mut unsent = Vec::new();
        while let Ok(returned) = returns.try_recv() {
            match returned {
                Returned::Release(ids) => unsent.extend(ids),
                Returned::Run(delivery, _) => unsent.push(delivery.id),
            }
        }
        self.release_unsent(unsent).await;
    }

    /// Hands deliveries the dispatcher will not call now back to the database, due now. A
    /// write refused (a full disk, a lock held elsewhere) is tried again until it is taken:
    /// a delivery held in memory (`claimed` 2) is not claimed again until it is released, so
    /// giving up would leave it unsent until the next start. Once stopping, one try: the next
    /// start releases what is left. Ids whose write was refused (a refused ingest) match no
    /// row, which costs nothing.
    async fn release_unsent(&self, ids: Vec<DeliveryId>) {
        if ids.is_empty() {
            return;
        }
        let mut wait = RELEASE_RETRY_FIRST;
        let mut failures = 0u32;
        loop {
            match self.store.release_deliveries(ids.clone()).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(
                            deliveries = ids.len(),
                            tries = failures + 1,
                            "unsent deliveries handed back to the database"
                        );
                    }
                    return;
                }
                Err(e) if self.stopping.load(Ordering::Relaxed) => {
                    tracing::warn!(deliveries = ids.len(), error = %e, "could not hand unsent deliveries back while stopping; the next start does");
                    return;
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(deliveries = ids.len(), error = %e, "could not hand unsent deliveries back to the database; retrying until it takes them (they are not sent until then)");
                    }
                    failures += 1;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RELEASE_RETRY_MAX);
                }
            }
        }
    }

    /// Deliveries waiting in memory behind automations at their concurrency bound.
    pub fn lane_backlog(&self) -> usize {
        self.capacity.lanes.queued()
    }

    /// Whether the claim loop is running (for `/readyz`).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// The dispatcher: the claim loop (due retries, recovered and released deliveries, and
    /// what ingest had no room for) and the loop finishing returned room; returns after
    /// [`Dispatcher::shutdown`].
    pub async fn run(self: Arc<Self>) {
        self.running.store(true, Ordering::Relaxed);
        let returns_loop = tokio::spawn(self.clone().run_returns());
        let failure_summaries = tokio::spawn(self.clone().summarize_failures());
        self.clone().run_claims().await;
        let _ = returns_loop.await;
        failure_summaries.abort();
        self.failures.flush(true);
        self.running.store(false, Ordering::Relaxed);
    }

    /// Writes the failure log's summaries as its windows end (see `failure_log`).
    async fn summarize_failures(self: Arc<Self>) {
        loop {
            sleep(self.failures.flush_every()).await;
            self.failures.flush(false);
        }
    }

    /// Claims while a global slot is free, as much as the lanes take. It goes on at once
    /// while a claim filled its batch or ran short of global slots (the next one waits for a
    /// slot), and otherwise waits for a wake (ingest left deliveries unclaimed, a saturated
    /// lane drained) or the poll interval (retries coming due).
    async fn run_claims(self: Arc<Self>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        while !self.stopping.load(Ordering::Relaxed) {
            let Ok(first) = self.capacity.global.clone().acquire_owned().await else { break };
            if self.stopping.load(Ordering::Relaxed) {
                break;
            }
            let lanes = &self.capacity.lanes;
            let want =
                (1 + self.capacity.global.available_permits() + lanes.room()).min(CLAIM_BATCH);
            let ticket = Arc::new(Ticket::new(self.capacity.clone(), self.lease_ms(), Some(first)));
            let request = ClaimRequest {
                want,
                scan: want * SCAN_PER_WANTED,
                saturated: lanes.saturated(),
                intake: ticket.clone(),
                line: None,
            };
            let claimed = match self.store.claim_due(request).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due deliveries failed");
                    drop(ticket);
                    sleep(poll).await;
                    continue;
                }
            };
            let go_on = claimed.len() == want || ticket.short_of_slots();
            self.admit(&ticket, claimed, false);
            drop(ticket);
            if !go_on {
                let _ = timeout(poll, self.wake.notified()).await;
            }
        }
    }

    /// Stops claiming and waits up to `grace` for calls in flight; the rest stay pending
    /// (their claim is released at the next start).
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::Relaxed);
        let queued = self.capacity.lanes.close();
        self.release_unsent(queued).await;
        self.wake.notify_one();
        self.stop.notify_waiters();
        let all = u32::try_from(self.config.global_concurrency).unwrap_or(u32::MAX);
        if timeout(grace, self.capacity.global.acquire_many(all)).await.is_err() {
            tracing::warn!(
                "shutdown grace period over with calls still in flight; they stay pending"
            );
        }
        self.capacity.global.close();
    }

    /// Calls `first`, then whatever queued behind it in its lane, holding one global slot.
    /// A held delivery (see `store::claims`) is called only once the database records its
    /// call as started: the write recording the call before it in the lane does so (the
    /// lane's next delivery is taken before that write), and failing that, a write of its own.
    /// A rate-limited one is held while it waits for its start, giving the global slot back,
    /// and marked started in a write of its own once its turn comes.
    async fn run_lane(self: &Arc<Self>, first: ClaimedDelivery, mut global: OwnedSemaphorePermit) {
        let mut next = Some(first);
        while let Some(mut delivery) = next.take() {
            let automation_id = delivery.automation.id.clone();
            // Read before the turn, so that the start a rate limit records is the call's.
            let payload = match delivery.payload.take() {
                Some(payload) => Some(Body::Send(payload)),
                None => self.read_payload(&delivery).await,
            };
            let Some(payload) = payload else {
                next = self.capacity.lanes.finish(&automation_id);
                continue;
            };
            let Some((slot, stamp)) = self.take_turn(&mut delivery, global).await else {
                // Stopping: this one and the rest of its lane go back to the database.
                self.release_unsent(vec![delivery.id.clone()]).await;
                self.capacity.free_slot(&automation_id, None);
                return;
            };
            global = slot;
            if !delivery.started {
                next = self.capacity.lanes.finish(&automation_id);
                continue;
            }
            let (outcome, ordering) = self.attempt(&delivery, payload, stamp).await;
            // The end of a FIFO head makes the next of its line due (see `store::fifo`),
            // taken in the write recording it.
            let line = (ordering == DeliveryOrder::Fifo
                && outcome.status != DeliveryStatus::Pending)
                .then(|| automation_id.clone());
            next = self.capacity.lanes.finish(&automation_id);
            let lease_until = UnixMs::now().plus_ms(self.lease_ms());
            // Not a rate-limited one: it is marked when its turn comes (see `take_turn`).
            let mark = next
                .as_ref()
                .filter(|n| !n.started && n.automation.settings.rate_limit_per_sec.is_none())
                .map(|n| (n.id.clone(), lease_until));
            let marked = self.record(outcome, mark, line).await;
            if let Some(n) = next.as_mut() {
                n.started |= marked;
            }
        }
    }

    /// Records that held delivery `id` is about to be called; false when it must not be (it
    /// was released or its automation deleted meanwhile, or the write failed: then it is
    /// released, or stays held in the database until the next start).
    async fn mark_started(&self, id: &DeliveryId) -> bool {
        let lease_until = UnixMs::now().plus_ms(self.lease_ms());
        match self.store.mark_started(id.clone(), lease_until).await {
            Ok(marked) => marked,
            Err(e) => {
                tracing::error!(delivery = %id, error = %e, "marking a call started failed; not calling it");
                self.release_unsent(vec![id.clone()]).await;
                false
            }
        }
    }
}
