//! The workflow service: finds the app of an app key, starts runs in their own tasks (a run
//! goes on when its client disconnects), stops them, and on each final state commits the
//! run and its completion together through [`Relay`], which hands the deliveries to the
//! dispatcher. A run whose code panics ends `failed` like any other failure, and a final
//! state the database could not take at once (away, full) is written again until it is: a
//! run never stays `running`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};

use futures_util::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, oneshot, watch};

use super::app::AppDefinition;
use super::completion;
use super::error::RunError;
use super::events::{EventSender, Events};
use super::runner::{self, RunOutcome, RunSpec, RunStatus};
use crate::auth::key_hash;
use crate::outbound::Sender;
use crate::relay::Relay;
use crate::store::retry;
use crate::store::{Conflict, NewMessage, RunRecord, Store, StoreError, StoreResult};
use crate::time::UnixMs;

/// See the module doc.
pub struct Workflows {
    apps: HashMap<[u8; 32], Arc<AppDefinition>>,
    store: Store,
    sender: Arc<Sender>,
    relay: Relay,
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// `limits.max_body_bytes`: the longest completion webhook body, and the longest llm
    /// reply a run accumulates.
    max_body_bytes: usize,
}

/// A started run: its spec, and (for new runs) where its outcome will arrive.
pub struct Started {
    /// The run.
    pub spec: RunSpec,
    /// Resolves when the run's final state is committed; `None` for an idempotent replay.
    pub outcome: Option<oneshot::Receiver<RunOutcome>>,
    /// For a replay: the stored run.
    pub existing: Option<RunRecord>,
}

impl Workflows {
    /// The service over the configured apps; runs' outputs are bounded by `max_body_bytes`
    /// (`limits.max_body_bytes`).
    pub fn new(
        apps: &[AppDefinition],
        store: Store,
        sender: Arc<Sender>,
        relay: Relay,
        max_body_bytes: usize,
    ) -> Arc<Self> {
        let mut by_key = HashMap::new();
        for app in apps {
            let app = Arc::new(app.clone());
            for key in &app.api_keys {
                by_key.insert(key_hash(key), app.clone());
            }
        }
        let stops = store.stop_requests();
        let this = Arc::new(Self {
            apps: by_key,
            store,
            sender,
            relay,
            running: Mutex::new(HashMap::new()),
            max_body_bytes,
        });
        if let Some(stops) = stops {
            tokio::spawn(stop_when_asked(Arc::downgrade(&this), stops));
        }
        this
    }

    /// The app an app key selects. The key is hashed first, so the lookup reveals nothing
    /// about the key by its timing.
    pub fn app_for_key(&self, key: &str) -> Option<Arc<AppDefinition>> {
        self.apps.get(&key_hash(key)).cloned()
    }

    /// Stores the run and starts it. With an idempotency key the app already used, nothing
    /// starts and the stored run is returned.
    pub async fn start(
        self: &Arc<Self>,
        app: Arc<AppDefinition>,
        inputs: Map<String, Value>,
        user: String,
        files: Vec<Value>,
        idempotency_key: Option<String>,
        sink: Option<EventSender>,
    ) -> StoreResult<Started> {
        let asked = idempotency_key.as_ref().map(|_| (user.clone(), inputs.clone()));
        let record = RunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            app_id: app.id.clone(),
            task_id: uuid::Uuid::now_v7().to_string(),
            status: RunStatus::Running,
            inputs,
            outputs: None,
            error: None,
            user,
            files,
            elapsed_time: 0.0,
            total_tokens: 0,
            total_steps: 0,
            created_at: UnixMs::now(),
            finished_at: None,
        };
        let (record, is_new) = self.store.create_run(record, idempotency_key).await?;
        let spec = RunSpec {
            app,
            run_id: record.id.clone(),
            task_id: record.task_id.clone(),
            inputs: record.inputs.clone(),
            user: record.user.clone(),
            files: record.files.clone(),
            created_at: record.created_at,
        };
        if !is_new {
            if asked.is_some_and(|(user, inputs)| record.user != user || record.inputs != inputs) {
                return Err(StoreError::Conflict(
                    Conflict::IdempotencyKeyReused,
                    "Idempotency-Key was already used for a different run request".into(),
                ));
            }
            return Ok(Started { spec, outcome: None, existing: Some(record) });
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Ok(mut running) = self.running.lock() {
            running.insert(spec.task_id.clone(), stop_tx);
        }
        let (done_tx, done_rx) = oneshot::channel();
        let this = self.clone();
        let task_spec = spec.clone();
        tokio::spawn(async move {
            let events = Events::new(&task_spec, sink);
            let run = runner::run(&task_spec, &this.sender, &events, this.max_body_bytes, stop_rx);
            let outcome = this.supervise(&task_spec, &events, run).await;
            let _ = done_tx.send(outcome);
        });
        Ok(Started { spec, outcome: Some(done_rx), existing: None })
    }

    /// Drives `run` to the run's final state: a panic inside it is contained and ends the
    /// run `failed` ([`RunError::Panicked`]), like any failure, and outputs too large for a
    /// completion webhook end it `failed` ([`RunError::OutputsTooLarge`]). Then commits the
    /// final state with its completion, forgets the task, and emits `workflow_finished`;
    /// returns the outcome.
    async fn supervise<F>(&self, spec: &RunSpec, events: &Events, run: F) -> RunOutcome
    where
        F: Future<Output = RunOutcome>,
    {
        let outcome = match AssertUnwindSafe(run).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                tracing::error!(run = %spec.run_id, panic = %detail, "a workflow run panicked");
                failed_now(spec, &RunError::Panicked)
            }
        };
        let (outcome, payload) = completion::bounded_webhook(spec, outcome, self.max_body_bytes);
        self.finish(spec, &outcome, payload).await;
        if let Ok(mut running) = self.running.lock() {
            running.remove(&spec.task_id);
        }
        events.finished(spec, &outcome);
        outcome
    }

    /// Asks a running task to stop; false when no such task runs here (on PostgreSQL it may
    /// run on another instance: see `Store::stop_elsewhere`).
    pub fn stop(&self, task_id: &str) -> bool {
        let running = self.running.lock().ok();
        match running.as_ref().and_then(|r| r.get(task_id)) {
            Some(stop) => stop.send(true).is_ok(),
            None => false,
        }
    }

    /// Commits the final state with its completion body `payload` (whose deliveries go out
    /// at once). A write the database refused for being away or full is tried again, with
    /// [`retry::Backoff`]'s waits, until it is stored (see [`retry::is_passing`] for which
    /// failures those are): the run then ends and its webhook goes out once the database
    /// answers. The tries end with the process. Any other failure is logged and not tried
    /// again, nor is a run found ended already on a later try (an earlier try committed but
    /// its answer was lost, or another instance failed the run meanwhile).
    async fn finish(&self, spec: &RunSpec, outcome: &RunOutcome, payload: Vec<u8>) {
        let message = NewMessage {
            processor_id: Some(spec.app.id.clone()),
            automation_id: None,
            event_type: Some(completion::event_type(outcome)),
            payload,
            idempotency_key: None,
        };
        let mut backoff = retry::Backoff::new();
        for attempt in 1u32.. {
            let run_id = spec.run_id.clone();
            let Err(e) = self.relay.finish_run(run_id, outcome.clone(), message.clone()).await
            else {
                if attempt > 1 {
                    tracing::info!(run = %spec.run_id, attempt, "a finished run was recorded");
                }
                return;
            };
            let run = &spec.run_id;
            match e {
                StoreError::Conflict(Conflict::RunNotRunning, _) if attempt > 1 => {
                    tracing::info!(run = %run, attempt, "a finished run had been recorded already");
                    return;
                }
                e if retry::is_passing(&e) => {
                    if attempt == 1 {
                        tracing::warn!(run = %run, error = %e,
                            "recording a finished run failed; trying again until it is stored");
                    } else {
                        tracing::debug!(run = %run, attempt, error = %e,
                            "recording a finished run failed again");
                    }
                    tokio::time::sleep(backoff.next_wait()).await;
                }
                e => {
                    tracing::error!(run = %run, error = %e, "recording a finished run failed");
                    return;
                }
            }
        }
    }

    /// Runs left `running` by a crash end `failed`, each with its completion webhook.
    pub async fn fail_interrupted_runs(&self) -> StoreResult<usize> {
        let runs = self.store.running_runs().await?;
        let count = runs.len();
        for run in runs {
            let apps: Vec<&Arc<AppDefinition>> =
                self.apps.values().filter(|a| a.id == run.app_id).collect();
            let Some(app) = apps.first() else {
                tracing::warn!(run = %run.id, app = %run.app_id, "interrupted run of an app no longer configured");
                continue;
            };
            let spec = RunSpec {
                app: (*app).clone(),
                run_id: run.id,
                task_id: run.task_id,
                inputs: run.inputs,
                user: run.user,
                files: run.files,
                created_at: run.created_at,
            };
            let failed = failed_now(&spec, &RunError::Interrupted);
            let payload = completion::webhook_request(&spec, &failed).to_string().into_bytes();
            self.finish(&spec, &failed, payload).await;
        }
        Ok(count)
    }
}

/// Stops each task another instance asks every instance to stop (PostgreSQL's
/// `hookrelay_stop`, see `Store::stop_requests`) when it runs here, until the service is gone.
async fn stop_when_asked(service: Weak<Workflows>, mut stops: broadcast::Receiver<Arc<str>>) {
    loop {
        match stops.recv().await {
            Ok(task_id) => match service.upgrade() {
                Some(service) => {
                    service.stop(&task_id);
                }
                None => return,
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "stop requests from other instances were dropped unread");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A failed outcome of `spec`, now, with `error`.
fn failed_now(spec: &RunSpec, error: &RunError) -> RunOutcome {
    let now = UnixMs::now();
    RunOutcome {
        status: RunStatus::Failed,
        outputs: None,
        error: Some(error.to_string()),
        elapsed_time: now.since(spec.created_at).max(0) as f64 / 1000.0,
        total_tokens: 0,
        prompt_tokens: 0,
        total_steps: 0,
        finished_at: now,
        first_token_at: None,
        last_token_at: None,
        // A panicked run's nodes went with it; an interrupted one's were never stored.
        nodes: Vec::new(),
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
